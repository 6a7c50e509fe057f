//! The domain rules of Closeout, and its vocabulary: what an inspectorate's
//! findings are, how its reports write grades, periods and deadlines, and how
//! a tracked item moves to closure. Pure functions and value types only, with
//! no I/O, so that every service applies the same rules and the rules can be
//! tested exhaustively. Conversions to and from the wire types live in one
//! module, [`wire`].

pub mod authorisation;
pub mod deadline;
pub mod error;
pub mod finding;
pub mod grade;
pub mod ids;
pub mod lifecycle;
pub mod organisation;
pub mod period;
pub mod text;
pub mod wire;

pub use deadline::{DeadlineError, PublishedDate, due_date, find_deadline_clause};
pub use error::DomainError;
pub use finding::FindingKind;
pub use grade::{Grade, GradeScale, NotComparable, Trend, compare};
pub use ids::{FindingId, InspectionId, ItemId, ProposalId};
pub use lifecycle::{
    Actor, Change, Command, CommandKind, Evidence, ItemState, ItemStatus, Refusal, Role, apply,
    apply_all, decide, evolve, is_open, is_overdue, mark_overdue,
};
pub use organisation::{
    FIRE_AND_RESCUE_MARK, OrganisationId, OrganisationKind, OrganisationRename, kind_from_name,
    organisation_id_for, slug_from_name,
};
