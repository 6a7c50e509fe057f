//! The tracker service's one error enum, and its single mapping onto the
//! shared [`ApiError`] (and so onto gRPC status codes). Errors that are
//! already an [`ApiError`] (paging, identity, field checks) pass through
//! unchanged: there is no mapping back.

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
    /// The state machine refuses a caller's command in the item's status;
    /// names the status and the commands (RPC names) that status allows.
    #[error("{message}")]
    RefusedInStatus {
        status: String,
        command: String,
        allowed: Vec<String>,
        message: String,
    },
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
    /// An error already in the shared form, passed on unchanged.
    #[error("{0}")]
    Api(ApiError),
}

impl TrackerError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        TrackerError::Invalid(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// The wrong fields this error names, whichever form it has.
    fn violations_mut(&mut self) -> Option<&mut Vec<FieldViolation>> {
        match self {
            TrackerError::Invalid(v) | TrackerError::Api(ApiError::InvalidArgument(v)) => Some(v),
            _ => None,
        }
    }

    /// Both errors' wrong fields when both are about fields, so the client
    /// sees every problem at once; otherwise `self`.
    pub fn merge(mut self, mut other: TrackerError) -> TrackerError {
        if let (Some(mine), Some(theirs)) = (self.violations_mut(), other.violations_mut()) {
            mine.append(theirs);
        }
        self
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
            TrackerError::RefusedInStatus {
                status,
                command,
                allowed,
                message,
            } => ApiError::Refused {
                status,
                command,
                allowed,
                message,
            },
            TrackerError::PermissionDenied(message) => ApiError::PermissionDenied(message),
            TrackerError::Unauthenticated(message) => ApiError::Unauthenticated(message),
            TrackerError::StaleVersion {
                ref item_id,
                actual,
                ..
            } => ApiError::Stale {
                resource: "item",
                id: item_id.clone(),
                current_version: actual,
                message: error.to_string(),
            },
            TrackerError::StaleProposal {
                ref proposal_id,
                actual,
                ..
            } => ApiError::Stale {
                resource: "proposal",
                id: proposal_id.clone(),
                current_version: actual,
                message: error.to_string(),
            },
            TrackerError::Database(e) => e.into(),
            TrackerError::Outbox(message) | TrackerError::Corrupt(message) => {
                ApiError::Internal(message)
            }
            TrackerError::Api(error) => error,
        }
    }
}

impl From<ApiError> for TrackerError {
    fn from(error: ApiError) -> TrackerError {
        TrackerError::Api(error)
    }
}

impl From<TrackerError> for tonic::Status {
    fn from(error: TrackerError) -> tonic::Status {
        ApiError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;
    use tonic_types::StatusExt;

    fn code(error: TrackerError) -> Code {
        tonic::Status::from(error).code()
    }

    #[test]
    fn each_error_has_its_code() {
        assert_eq!(
            code(TrackerError::invalid("reason", "empty")),
            Code::InvalidArgument
        );
        assert_eq!(code(TrackerError::item_not_found("x")), Code::NotFound);
        assert_eq!(
            code(TrackerError::IllegalTransition("closed".into())),
            Code::FailedPrecondition
        );
        assert_eq!(
            code(TrackerError::PermissionDenied("viewer".into())),
            Code::PermissionDenied
        );
        assert_eq!(
            code(TrackerError::Unauthenticated("who?".into())),
            Code::Unauthenticated
        );
        let stale = TrackerError::StaleVersion {
            item_id: "x".into(),
            expected: 1,
            actual: 2,
        };
        assert_eq!(code(stale), Code::Aborted);
        assert_eq!(
            code(TrackerError::Corrupt("bad row".into())),
            Code::Internal
        );
        assert_eq!(code(sqlx::Error::PoolTimedOut.into()), Code::Unavailable);
    }

    #[test]
    fn shared_errors_keep_their_code() {
        // These became INTERNAL when shared errors were mapped back.
        assert_eq!(
            code(ApiError::AlreadyExists("dup".into()).into()),
            Code::AlreadyExists
        );
        assert_eq!(
            code(ApiError::Unavailable("db".into()).into()),
            Code::Unavailable
        );
        assert_eq!(
            code(ApiError::Aborted("stale".into()).into()),
            Code::Aborted
        );
        assert_eq!(
            code(ApiError::FailedPrecondition("state".into()).into()),
            Code::FailedPrecondition
        );
        assert_eq!(
            code(ApiError::ResourceExhausted("big".into()).into()),
            Code::ResourceExhausted
        );
        assert_eq!(
            code(ApiError::not_found("proposal", "p").into()),
            Code::NotFound
        );
    }

    #[test]
    fn merged_field_errors_name_every_field() {
        let merged = TrackerError::invalid("item_id", "not a UUID")
            .merge(ApiError::invalid("reason", "too long").into());
        let status = tonic::Status::from(merged);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .expect("field violations")
            .field_violations
            .iter()
            .map(|v| v.field.clone())
            .collect();
        assert_eq!(fields, ["item_id", "reason"]);
        let not_fields = TrackerError::item_not_found("x").merge(TrackerError::invalid("a", "b"));
        assert_eq!(code(not_fields), Code::NotFound);
    }
}
