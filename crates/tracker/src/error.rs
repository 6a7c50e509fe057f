//! The tracker service's one error enum, and its single mapping onto the
//! shared [`ApiError`] (and so onto gRPC status codes).

use closeout_service::ApiError;
use closeout_service::error::FieldViolation;

/// Everything that can go wrong in the tracker service.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// Request fields are wrong; each violation names its field.
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    /// An unknown id.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// The state machine refuses the command in the item's state.
    #[error("{0}")]
    IllegalTransition(String),
    /// The caller's role or organisation may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// No usable caller identity.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's expected version is not the item's version.
    #[error("item {item_id} is at version {actual}, not {expected}: reload it and retry")]
    StaleVersion {
        item_id: String,
        expected: u64,
        actual: u64,
    },
    /// The caller's expected version is not the proposal's version.
    #[error("proposal {proposal_id} is at version {actual}, not {expected}: reload it and retry")]
    StaleProposal {
        proposal_id: String,
        expected: u64,
        actual: u64,
    },
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The outbox refused the events.
    #[error("event outbox: {0}")]
    Outbox(String),
    /// Stored data that does not decode (a bug or a manual edit).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

impl TrackerError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        TrackerError::Invalid(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// An unknown item.
    pub fn item_not_found(id: impl Into<String>) -> Self {
        TrackerError::NotFound {
            what: "item",
            id: id.into(),
        }
    }
}

impl From<TrackerError> for ApiError {
    fn from(error: TrackerError) -> ApiError {
        match error {
            TrackerError::Invalid(violations) => ApiError::InvalidArgument(violations),
            TrackerError::NotFound { what, id } => ApiError::NotFound { what, id },
            TrackerError::IllegalTransition(message) => ApiError::FailedPrecondition(message),
            TrackerError::PermissionDenied(message) => ApiError::PermissionDenied(message),
            TrackerError::Unauthenticated(message) => ApiError::Unauthenticated(message),
            stale @ (TrackerError::StaleVersion { .. } | TrackerError::StaleProposal { .. }) => {
                ApiError::Aborted(stale.to_string())
            }
            TrackerError::Database(e) => e.into(),
            TrackerError::Outbox(message) | TrackerError::Corrupt(message) => {
                ApiError::Internal(message)
            }
        }
    }
}

impl From<ApiError> for TrackerError {
    fn from(error: ApiError) -> TrackerError {
        match error {
            ApiError::InvalidArgument(v) => TrackerError::Invalid(v),
            ApiError::Unauthenticated(m) => TrackerError::Unauthenticated(m),
            ApiError::PermissionDenied(m) => TrackerError::PermissionDenied(m),
            ApiError::NotFound { what, id } => TrackerError::NotFound { what, id },
            other => TrackerError::Outbox(other.to_string()),
        }
    }
}

impl From<TrackerError> for tonic::Status {
    fn from(error: TrackerError) -> tonic::Status {
        ApiError::from(error).into()
    }
}
