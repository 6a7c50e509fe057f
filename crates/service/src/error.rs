//! The one place where errors become gRPC status codes. Each service keeps
//! its own error enum and converts it into [`ApiError`]; this module decides
//! the code, the message and the structured details.

use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The ErrorInfo domain of every Closeout error.
pub const DOMAIN: &str = "closeout.v1";

/// An error as a gRPC client should see it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// One or more request fields are wrong; each names the field.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The named thing does not exist.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// Creating something that exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is well-formed but the current state does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// No usable identity.
    #[error("{0}")]
    Unauthenticated(String),
    /// A concurrent change won (stale expected version).
    #[error("{0}")]
    Aborted(String),
    /// A concurrent change won: the caller's expected version of `resource`
    /// `id` is stale. ABORTED with ErrorInfo (reason `STALE_VERSION`,
    /// metadata `current_version`) and a PreconditionFailure.
    #[error("{message}")]
    Stale {
        resource: &'static str,
        id: String,
        current_version: u64,
        message: String,
    },
    /// The current state refuses the command. FAILED_PRECONDITION with
    /// ErrorInfo (reason `ILLEGAL_TRANSITION`, metadata `status`, `command`
    /// and `allowed_commands`, comma-separated) and a PreconditionFailure.
    #[error("{message}")]
    Refused {
        /// The state the thing is in, e.g. `ITEM_STATUS_CLOSED`.
        status: String,
        /// The refused command, e.g. `VerifyItem`.
        command: String,
        /// The commands the state allows.
        allowed: Vec<String>,
        message: String,
    },
    /// A size or rate limit was exceeded.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A dependency (database, NATS) is unreachable; the client may retry.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; details go to the log, not the client.
    #[error("internal error: {0}")]
    Internal(String),
}

/// One wrong field of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// Proto field path, e.g. `evidence.sha256`.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApiError {
    /// A single-field INVALID_ARGUMENT.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        ApiError::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// NOT_FOUND for `what` with `id`.
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        ApiError::NotFound {
            what,
            id: id.into(),
        }
    }

    /// The gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidArgument(_) => Code::InvalidArgument,
            ApiError::NotFound { .. } => Code::NotFound,
            ApiError::AlreadyExists(_) => Code::AlreadyExists,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::PermissionDenied(_) => Code::PermissionDenied,
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::Aborted(_) | ApiError::Stale { .. } => Code::Aborted,
            ApiError::Refused { .. } => Code::FailedPrecondition,
            ApiError::ResourceExhausted(_) => Code::ResourceExhausted,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        match &error {
            ApiError::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                Status::with_error_details(Code::InvalidArgument, error.to_string(), details)
            }
            ApiError::NotFound { what, id } => {
                let mut details = ErrorDetails::new();
                details.set_resource_info(*what, id.clone(), "", error.to_string());
                Status::with_error_details(Code::NotFound, error.to_string(), details)
            }
            ApiError::Stale {
                resource,
                id,
                current_version,
                message,
            } => {
                let mut details = ErrorDetails::new();
                details.set_error_info(
                    "STALE_VERSION",
                    DOMAIN,
                    HashMap::from([
                        ("current_version".to_string(), current_version.to_string()),
                        ("resource_type".to_string(), resource.to_string()),
                        ("resource_name".to_string(), id.clone()),
                    ]),
                );
                details.add_precondition_failure_violation(
                    "VERSION",
                    format!("{resource}/{id}"),
                    format!("current version is {current_version}"),
                );
                Status::with_error_details(Code::Aborted, message.clone(), details)
            }
            ApiError::Refused {
                status,
                command,
                allowed,
                message,
            } => {
                let mut details = ErrorDetails::new();
                details.set_error_info(
                    "ILLEGAL_TRANSITION",
                    DOMAIN,
                    HashMap::from([
                        ("status".to_string(), status.clone()),
                        ("command".to_string(), command.clone()),
                        ("allowed_commands".to_string(), allowed.join(",")),
                    ]),
                );
                details.add_precondition_failure_violation(
                    "STATUS",
                    status.clone(),
                    format!("allowed commands: {}", allowed.join(", ")),
                );
                Status::with_error_details(Code::FailedPrecondition, message.clone(), details)
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Status::internal("internal error; see the service log")
            }
            _ => Status::new(error.code(), error.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                ApiError::Unavailable(format!("database unavailable: {error}"))
            }
            _ => ApiError::Internal(format!("database: {error}")),
        }
    }
}

/// Collects field violations so a request reports every problem at once.
#[derive(Default, Debug)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// Records a violation of `field`.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Ok when nothing was recorded, else INVALID_ARGUMENT with all of them.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_bad_request_details() {
        let status: Status = ApiError::invalid("text", "must not be empty").into();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("text: must not be empty"));
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        assert_eq!(bad.field_violations[0].field, "text");
    }

    #[test]
    fn not_found_names_the_resource() {
        let status: Status = ApiError::not_found("item", "abc").into();
        assert_eq!(status.code(), Code::NotFound);
        let details = status.get_error_details();
        let info = details.resource_info().expect("resource info");
        assert_eq!(info.resource_type, "item");
        assert_eq!(info.resource_name, "abc");
    }

    #[test]
    fn stale_carries_the_current_version() {
        let status: Status = ApiError::Stale {
            resource: "item",
            id: "x".into(),
            current_version: 7,
            message: "stale".into(),
        }
        .into();
        assert_eq!(status.code(), Code::Aborted);
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.metadata["current_version"], "7");
        assert!(details.precondition_failure().is_some());
    }

    #[test]
    fn refused_names_the_status_and_the_allowed_commands() {
        let status: Status = ApiError::Refused {
            status: "ITEM_STATUS_CLOSED".into(),
            command: "VerifyItem".into(),
            allowed: vec!["ReopenItem".into()],
            message: "closed".into(),
        }
        .into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let info = status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("info");
        assert_eq!(info.metadata["status"], "ITEM_STATUS_CLOSED");
        assert_eq!(info.metadata["allowed_commands"], "ReopenItem");
    }

    #[test]
    fn internal_hides_detail() {
        let status: Status = ApiError::Internal("secret".into()).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
    }
}
