//! The tracker's request-path connections (GetItem, ListItems and the
//! commands' read and grouped write) are the shared ones
//! (`closeout_service::connections`, which says why they skip sqlx's
//! release ping). Commands came to them in session 6, when each became two
//! statements (see BENCHMARKS.md "Session 6: tracker").

use crate::error::TrackerError;
use closeout_service::connections::Failure;

pub(crate) use closeout_service::connections::Connections;

/// Answers such as NOT_FOUND or a refused command come after the statement
/// completed: only a database error leaves the connection in doubt.
impl Failure for TrackerError {
    fn by_database(&self) -> bool {
        matches!(self, TrackerError::Database(_))
    }
}
