//! The crate's one error type for parsing and validation, so that callers map
//! a single enum to `INVALID_ARGUMENT`. Lifecycle refusals are a separate type
//! ([`crate::Refusal`]) because they map to several status codes.

use crate::deadline::DeadlineError;
use crate::grade::NotComparable;

/// A value that is not valid in the inspectorate's domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("invalid organisation id {value:?}: {reason}")]
    InvalidOrganisationId { value: String, reason: &'static str },
    #[error("unknown grade {0:?}")]
    UnknownGrade(String),
    #[error("unknown finding kind {0:?} (expected e.g. \"area-for-improvement\")")]
    UnknownFindingKind(String),
    #[error("unknown item status {0:?}")]
    UnknownStatus(String),
    #[error("unknown role {0:?}")]
    UnknownRole(String),
    #[error("invalid {field}: {value:?} is not a UUID")]
    InvalidId { field: &'static str, value: String },
    #[error(
        "invalid published date {0:?} (expected \"2019-09\", \"2019-09-12\" or \"September 2019\")"
    )]
    InvalidPublishedDate(String),
    #[error("invalid organisation rename: {field} {reason}")]
    InvalidRename { field: &'static str, reason: String },
    #[error(transparent)]
    Deadline(#[from] DeadlineError),
    #[error(transparent)]
    NotComparable(#[from] NotComparable),
}
