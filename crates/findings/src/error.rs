//! The findings service's one error enum, and its single mapping onto the
//! shared [`ApiError`] (and so onto gRPC status codes). Errors that are
//! already an [`ApiError`] (paging, identity, field checks) pass through
//! unchanged: there is no mapping back.

use closeout_service::ApiError;
use closeout_service::error::FieldViolation;

/// Everything that can go wrong in the findings service.
#[derive(Debug, thiserror::Error)]
pub enum FindingsError {
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event outbox: {0}")]
    Outbox(String),
    /// An error already in the shared form (paging, identity), passed on.
    #[error("{0}")]
    Api(ApiError),
}

impl FindingsError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        FindingsError::Invalid(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// An unknown id.
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        FindingsError::NotFound {
            what,
            id: id.into(),
        }
    }
}

impl From<FindingsError> for ApiError {
    fn from(error: FindingsError) -> ApiError {
        match error {
            FindingsError::Invalid(violations) => ApiError::InvalidArgument(violations),
            FindingsError::NotFound { what, id } => ApiError::NotFound { what, id },
            FindingsError::Conflict(message) => ApiError::FailedPrecondition(message),
            FindingsError::AlreadyExists(message) => ApiError::AlreadyExists(message),
            FindingsError::PermissionDenied(message) => ApiError::PermissionDenied(message),
            FindingsError::Database(e) => e.into(),
            FindingsError::Outbox(message) => ApiError::Internal(message),
            FindingsError::Api(error) => error,
        }
    }
}

impl From<ApiError> for FindingsError {
    fn from(error: ApiError) -> FindingsError {
        FindingsError::Api(error)
    }
}

impl From<FindingsError> for tonic::Status {
    fn from(error: FindingsError) -> tonic::Status {
        ApiError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;
    use tonic_types::StatusExt;

    fn code(error: FindingsError) -> Code {
        tonic::Status::from(error).code()
    }

    #[test]
    fn each_error_has_its_code() {
        assert_eq!(
            code(FindingsError::invalid("text", "empty")),
            Code::InvalidArgument
        );
        assert_eq!(
            code(FindingsError::not_found("inspection", "x")),
            Code::NotFound
        );
        assert_eq!(
            code(FindingsError::Conflict("edited".into())),
            Code::FailedPrecondition
        );
        assert_eq!(
            code(FindingsError::AlreadyExists("dup".into())),
            Code::AlreadyExists
        );
        assert_eq!(
            code(FindingsError::PermissionDenied("no".into())),
            Code::PermissionDenied
        );
        assert_eq!(code(FindingsError::Outbox("down".into())), Code::Internal);
        assert_eq!(code(sqlx::Error::PoolTimedOut.into()), Code::Unavailable);
    }

    #[test]
    fn shared_errors_pass_through_with_their_code_and_field() {
        for (api, expected) in [
            (
                ApiError::Unauthenticated("who?".into()),
                Code::Unauthenticated,
            ),
            (ApiError::AlreadyExists("dup".into()), Code::AlreadyExists),
            (ApiError::Unavailable("db".into()), Code::Unavailable),
            (ApiError::Aborted("stale".into()), Code::Aborted),
            (
                ApiError::ResourceExhausted("big".into()),
                Code::ResourceExhausted,
            ),
        ] {
            assert_eq!(code(FindingsError::from(api)), expected);
        }
        let status = tonic::Status::from(FindingsError::from(ApiError::invalid(
            "page_token",
            "not a token",
        )));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("field violations");
        assert_eq!(bad.field_violations[0].field, "page_token");
    }
}
