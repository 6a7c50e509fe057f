//! The one error type of the bus. NATS errors are many small types in
//! async-nats; they are kept as text with the operation that failed, since
//! callers only log them or retry.

use std::fmt::Display;

/// Everything that can go wrong in the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A configuration value is unusable (bad durable name, empty prefix, …).
    #[error("invalid bus configuration: {0}")]
    Config(String),
    /// Connecting to NATS failed.
    #[error("connecting to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    /// A JetStream operation failed (stream or consumer management,
    /// publish, ack, fetch).
    #[error("JetStream {operation}: {message}")]
    JetStream {
        operation: &'static str,
        message: String,
    },
    /// A database operation failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// An event could not be turned into a message (no payload, bad id).
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The operation did not finish in time.
    #[error("{0} timed out")]
    Timeout(&'static str),
}

impl BusError {
    /// Wraps any NATS error with the operation that failed.
    pub(crate) fn nats(operation: &'static str, error: impl Display) -> Self {
        BusError::JetStream {
            operation,
            message: error.to_string(),
        }
    }
}

/// Result of the bus.
pub type Result<T, E = BusError> = std::result::Result<T, E>;
