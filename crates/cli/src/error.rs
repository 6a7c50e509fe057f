//! The command line's one error type: every failure becomes one line.

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read.
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// The report could not be parsed.
    #[error("{path}: {reason}")]
    Parse { path: String, reason: String },
    /// The server could not be reached.
    #[error("cannot reach {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The server refused or failed the call.
    #[error("{code}: {message}")]
    Rpc { code: String, message: String },
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        // A call that failed in the transport (a refused handshake) says
        // why only in its sources.
        let message = match std::error::Error::source(&status) {
            Some(source) => format!(
                "{}: {}",
                status.message(),
                crate::commands::transport_reason(source)
            ),
            None => status.message().to_string(),
        };
        CliError::Rpc {
            code: format!("{:?}", status.code()),
            message,
        }
    }
}
