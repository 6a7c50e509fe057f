//! The metrics service's one error enum and its single mapping onto the
//! shared [`ApiError`] (and so onto gRPC status codes).

use crate::queries::UnknownOrganisation;
use closeout_service::ApiError;
use closeout_service::error::FieldViolation;

/// Everything that can go wrong answering a query.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    #[error("organisation {0} not found")]
    UnknownOrganisation(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<UnknownOrganisation> for MetricsError {
    fn from(e: UnknownOrganisation) -> Self {
        MetricsError::UnknownOrganisation(e.0)
    }
}

impl From<MetricsError> for ApiError {
    fn from(error: MetricsError) -> ApiError {
        match error {
            MetricsError::Invalid(violations) => ApiError::InvalidArgument(violations),
            MetricsError::UnknownOrganisation(id) => ApiError::not_found("organisation", id),
            MetricsError::Database(e) => e.into(),
        }
    }
}

impl From<ApiError> for MetricsError {
    fn from(error: ApiError) -> MetricsError {
        match error {
            ApiError::InvalidArgument(v) => MetricsError::Invalid(v),
            other => MetricsError::Invalid(vec![FieldViolation {
                field: String::new(),
                description: other.to_string(),
            }]),
        }
    }
}

impl From<MetricsError> for tonic::Status {
    fn from(error: MetricsError) -> tonic::Status {
        ApiError::from(error).into()
    }
}
