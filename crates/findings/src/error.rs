//! The findings service's one error enum, and its single mapping onto the
//! shared [`ApiError`] (and so onto gRPC status codes).

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
        match error {
            ApiError::InvalidArgument(v) => FindingsError::Invalid(v),
            other => FindingsError::Api(other),
        }
    }
}

impl From<FindingsError> for tonic::Status {
    fn from(error: FindingsError) -> tonic::Status {
        ApiError::from(error).into()
    }
}
