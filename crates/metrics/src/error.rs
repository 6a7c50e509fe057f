//! The metrics service's one error enum and its single mapping onto the
//! shared [`ApiError`] (and so onto gRPC status codes). Errors that are
//! already an [`ApiError`] (field checks) pass through unchanged: there is
//! no mapping back.

use crate::queries::UnknownOrganisation;
use closeout_service::ApiError;

/// Everything that can go wrong answering a query.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("organisation {0} not found")]
    UnknownOrganisation(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// An error already in the shared form, passed on unchanged.
    #[error("{0}")]
    Api(ApiError),
}

impl From<UnknownOrganisation> for MetricsError {
    fn from(e: UnknownOrganisation) -> Self {
        MetricsError::UnknownOrganisation(e.0)
    }
}

impl From<MetricsError> for ApiError {
    fn from(error: MetricsError) -> ApiError {
        match error {
            MetricsError::UnknownOrganisation(id) => ApiError::not_found("organisation", id),
            MetricsError::Database(e) => e.into(),
            MetricsError::Api(error) => error,
        }
    }
}

impl From<ApiError> for MetricsError {
    fn from(error: ApiError) -> MetricsError {
        MetricsError::Api(error)
    }
}

impl From<MetricsError> for tonic::Status {
    fn from(error: MetricsError) -> tonic::Status {
        ApiError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;
    use tonic_types::StatusExt;

    fn status(error: impl Into<MetricsError>) -> tonic::Status {
        tonic::Status::from(error.into())
    }

    #[test]
    fn unknown_organisation_is_not_found() {
        let s = status(UnknownOrganisation("nobody".into()));
        assert_eq!(s.code(), Code::NotFound);
        assert!(s.message().contains("nobody"), "{}", s.message());
    }

    #[test]
    fn field_errors_keep_their_field() {
        let s = status(ApiError::invalid("as_of", "not a calendar date"));
        assert_eq!(s.code(), Code::InvalidArgument);
        let details = s.get_error_details();
        let bad = details.bad_request().expect("field violations");
        assert_eq!(bad.field_violations[0].field, "as_of");
    }

    #[test]
    fn other_shared_errors_keep_their_code() {
        // These all became INVALID_ARGUMENT with an empty field when shared
        // errors were mapped back.
        for (api, expected) in [
            (ApiError::not_found("organisation", "x"), Code::NotFound),
            (
                ApiError::Unauthenticated("who?".into()),
                Code::Unauthenticated,
            ),
            (
                ApiError::PermissionDenied("no".into()),
                Code::PermissionDenied,
            ),
            (ApiError::Unavailable("db".into()), Code::Unavailable),
            (ApiError::Internal("bug".into()), Code::Internal),
        ] {
            let s = status(api);
            assert_eq!(s.code(), expected);
            assert!(s.get_error_details().bad_request().is_none());
        }
        assert_eq!(status(sqlx::Error::PoolTimedOut).code(), Code::Unavailable);
        assert_eq!(status(sqlx::Error::RowNotFound).code(), Code::Internal);
    }
}
