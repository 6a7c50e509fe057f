//! Conversions between the domain's types and the wire types of
//! `closeout-proto`, in one place so that every service reads and writes
//! them the same way: enums, dates, callers, evidence, a tracked item's
//! lifecycle state, and an item's events as domain changes.
//!
//! Domain → wire always succeeds. Wire → domain gives None for an enum's
//! UNSPECIFIED and for numbers the proto does not define (the caller decides
//! whether that is an error); the richer conversions return a [`WireError`]
//! naming the field.

use chrono::{Datelike, NaiveDate};
use closeout_proto::{self as pb, event_envelope::Payload};

use crate::{
    Actor, Change, CommandKind, Evidence, FindingKind, Grade, GradeScale, InspectionId, ItemState,
    ItemStatus, OrganisationId, OrganisationKind, Role,
};

/// Why a wire value has no domain meaning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{field} is not set")]
    Missing { field: &'static str },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl ToString) -> WireError {
    WireError::Invalid {
        field,
        reason: reason.to_string(),
    }
}

/// A wire date as a calendar day; None when no such day exists.
pub fn date(date: &pb::CalendarDate) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(
        date.year,
        u32::try_from(date.month).ok()?,
        u32::try_from(date.day).ok()?,
    )
}

/// A calendar day on the wire.
pub fn calendar_date(date: NaiveDate) -> pb::CalendarDate {
    pb::CalendarDate::new(date.year(), date.month(), date.day())
}

impl From<OrganisationKind> for pb::OrganisationKind {
    fn from(kind: OrganisationKind) -> Self {
        match kind {
            OrganisationKind::PoliceForce => Self::PoliceForce,
            OrganisationKind::FireAndRescueService => Self::FireAndRescueService,
        }
    }
}

/// The organisation kind a wire value names; None when unspecified.
pub fn organisation_kind(value: i32) -> Option<OrganisationKind> {
    match pb::OrganisationKind::try_from(value).ok()? {
        pb::OrganisationKind::PoliceForce => Some(OrganisationKind::PoliceForce),
        pb::OrganisationKind::FireAndRescueService => Some(OrganisationKind::FireAndRescueService),
        pb::OrganisationKind::Unspecified => None,
    }
}

/// The wire value of an optional organisation kind (UNSPECIFIED for None).
pub fn organisation_kind_to_wire(kind: Option<OrganisationKind>) -> pb::OrganisationKind {
    kind.map_or(pb::OrganisationKind::Unspecified, Into::into)
}

impl From<Grade> for pb::Grade {
    fn from(grade: Grade) -> Self {
        match grade {
            Grade::Outstanding => Self::Outstanding,
            Grade::Good => Self::Good,
            Grade::Adequate => Self::Adequate,
            Grade::RequiresImprovement => Self::RequiresImprovement,
            Grade::Inadequate => Self::Inadequate,
            Grade::Ungraded => Self::Ungraded,
        }
    }
}

/// The grade a wire value names; None when unspecified.
pub fn grade(value: i32) -> Option<Grade> {
    match pb::Grade::try_from(value).ok()? {
        pb::Grade::Outstanding => Some(Grade::Outstanding),
        pb::Grade::Good => Some(Grade::Good),
        pb::Grade::Adequate => Some(Grade::Adequate),
        pb::Grade::RequiresImprovement => Some(Grade::RequiresImprovement),
        pb::Grade::Inadequate => Some(Grade::Inadequate),
        pb::Grade::Ungraded => Some(Grade::Ungraded),
        pb::Grade::Unspecified => None,
    }
}

impl From<GradeScale> for pb::GradeScale {
    fn from(scale: GradeScale) -> Self {
        match scale {
            GradeScale::FourTier => Self::FourTier,
            GradeScale::FiveTier => Self::FiveTier,
        }
    }
}

/// The grading scale a wire value names; None when unspecified.
pub fn grade_scale(value: i32) -> Option<GradeScale> {
    match pb::GradeScale::try_from(value).ok()? {
        pb::GradeScale::FourTier => Some(GradeScale::FourTier),
        pb::GradeScale::FiveTier => Some(GradeScale::FiveTier),
        pb::GradeScale::Unspecified => None,
    }
}

impl From<FindingKind> for pb::FindingKind {
    fn from(kind: FindingKind) -> Self {
        match kind {
            FindingKind::AreaForImprovement => Self::AreaForImprovement,
            FindingKind::CauseOfConcern => Self::CauseOfConcern,
            FindingKind::Recommendation => Self::Recommendation,
            FindingKind::NationalRecommendation => Self::NationalRecommendation,
            FindingKind::NoteworthyPractice => Self::NoteworthyPractice,
        }
    }
}

/// The finding kind a wire value names; None when unspecified.
pub fn finding_kind(value: i32) -> Option<FindingKind> {
    match pb::FindingKind::try_from(value).ok()? {
        pb::FindingKind::AreaForImprovement => Some(FindingKind::AreaForImprovement),
        pb::FindingKind::CauseOfConcern => Some(FindingKind::CauseOfConcern),
        pb::FindingKind::Recommendation => Some(FindingKind::Recommendation),
        pb::FindingKind::NationalRecommendation => Some(FindingKind::NationalRecommendation),
        pb::FindingKind::NoteworthyPractice => Some(FindingKind::NoteworthyPractice),
        pb::FindingKind::Unspecified => None,
    }
}

impl From<ItemStatus> for pb::ItemStatus {
    fn from(status: ItemStatus) -> Self {
        match status {
            ItemStatus::Open => Self::Open,
            ItemStatus::InProgress => Self::InProgress,
            ItemStatus::AwaitingVerification => Self::AwaitingVerification,
            ItemStatus::Closed => Self::Closed,
            ItemStatus::Superseded => Self::Superseded,
        }
    }
}

/// The item status a wire value names; None when unspecified.
pub fn item_status(value: i32) -> Option<ItemStatus> {
    match pb::ItemStatus::try_from(value).ok()? {
        pb::ItemStatus::Open => Some(ItemStatus::Open),
        pb::ItemStatus::InProgress => Some(ItemStatus::InProgress),
        pb::ItemStatus::AwaitingVerification => Some(ItemStatus::AwaitingVerification),
        pb::ItemStatus::Closed => Some(ItemStatus::Closed),
        pb::ItemStatus::Superseded => Some(ItemStatus::Superseded),
        pb::ItemStatus::Unspecified => None,
    }
}

impl From<Role> for pb::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Inspectorate => Self::Inspectorate,
            Role::InspectedBody => Self::InspectedBody,
            Role::Viewer => Self::Viewer,
            Role::System => Self::System,
        }
    }
}

/// The role a wire value names; None when unspecified.
pub fn role(value: i32) -> Option<Role> {
    match pb::Role::try_from(value).ok()? {
        pb::Role::Inspectorate => Some(Role::Inspectorate),
        pb::Role::InspectedBody => Some(Role::InspectedBody),
        pb::Role::Viewer => Some(Role::Viewer),
        pb::Role::System => Some(Role::System),
        pb::Role::Unspecified => None,
    }
}

/// The domain's view of a caller: a role is required; the organisation, when
/// given, must be a valid organisation id.
pub fn actor(actor: &pb::Actor) -> Result<Actor, WireError> {
    let role = role(actor.role).ok_or(WireError::Missing {
        field: "actor.role",
    })?;
    let organisation = if actor.organisation_id.is_empty() {
        None
    } else {
        Some(
            OrganisationId::parse(&actor.organisation_id)
                .map_err(|e| invalid("actor.organisation_id", e))?,
        )
    };
    Ok(Actor {
        subject: actor.subject.clone(),
        role,
        organisation,
    })
}

/// Text that proto cannot leave null: empty means absent.
fn some_text(text: &str) -> Option<String> {
    Some(text.to_string()).filter(|t| !t.is_empty())
}

/// Evidence in the domain's terms (an empty link means none).
pub fn evidence(evidence: &pb::Evidence) -> Evidence {
    Evidence {
        description: evidence.description.clone(),
        uri: some_text(&evidence.uri),
        sha256: evidence.sha256.clone(),
    }
}

impl From<Evidence> for pb::Evidence {
    fn from(evidence: Evidence) -> Self {
        Self {
            description: evidence.description,
            uri: evidence.uri.unwrap_or_default(),
            sha256: evidence.sha256,
        }
    }
}

/// The lifecycle state of a stored item. The item records the superseding
/// *item* rather than the finding, and not the inspection that closed it:
/// `superseded_by` is that item's id (present while the supersession stands
/// and an item was found) and `closed_by_inspection` is None. The lifecycle
/// reads neither.
pub fn item_state(item: &pb::TrackedItem) -> Result<ItemState, WireError> {
    Ok(ItemState {
        status: item_status(item.status).ok_or(WireError::Missing { field: "status" })?,
        organisation: OrganisationId::parse(&item.organisation_id)
            .map_err(|e| invalid("organisation_id", e))?,
        owner: some_text(&item.owner),
        due_date: match &item.due_date {
            Some(due) => Some(date(due).ok_or_else(|| invalid("due_date", due.iso()))?),
            None => None,
        },
        evidence: item.evidence.iter().map(evidence).collect(),
        closure_reference: some_text(&item.closure_reference),
        closed_by_inspection: None,
        superseded_by: some_text(&item.superseded_by_item_id),
        overdue: item.overdue,
    })
}

/// Writes a lifecycle state into a stored item: its status, organisation,
/// owner, due date, overdue mark, evidence and closure reference. The
/// superseding item's id is the caller's to set (the state names the
/// finding); it is cleared here when the supersession no longer stands.
pub fn write_state(state: &ItemState, item: &mut pb::TrackedItem) {
    item.status = pb::ItemStatus::from(state.status) as i32;
    item.organisation_id = state.organisation.as_str().to_string();
    item.owner = state.owner.clone().unwrap_or_default();
    item.due_date = state.due_date.map(calendar_date);
    item.overdue = state.overdue;
    item.evidence = state.evidence.iter().cloned().map(Into::into).collect();
    item.closure_reference = state.closure_reference.clone().unwrap_or_default();
    if state.superseded_by.is_none() {
        item.superseded_by_item_id.clear();
    }
}

/// The domain change an item event records; None for an event that is not a
/// change of an item's lifecycle (a proposal, an organisation, a finding).
pub fn change(payload: &Payload) -> Result<Option<Change>, WireError> {
    let status = |value: i32, field| item_status(value).ok_or(WireError::Missing { field });
    let day = |value: &Option<pb::CalendarDate>, field| match value {
        Some(d) => date(d).map(Some).ok_or_else(|| invalid(field, d.iso())),
        None => Ok(None),
    };
    Ok(Some(match payload {
        Payload::ItemOpened(opened) => Change::Opened {
            organisation: OrganisationId::parse(&opened.organisation_id)
                .map_err(|e| invalid("organisation_id", e))?,
            due_date: day(&opened.due_date, "due_date")?,
        },
        Payload::ItemOverdue(overdue) => Change::MarkedOverdue {
            due_date: day(&overdue.due_date, "due_date")?
                .ok_or(WireError::Missing { field: "due_date" })?,
        },
        Payload::StatusChanged(changed) => Change::StatusChanged {
            from: status(changed.from_status, "from_status")?,
            to: status(changed.to_status, "to_status")?,
            command: CommandKind::ALL
                .into_iter()
                .find(|k| k.as_str() == changed.command)
                .ok_or_else(|| invalid("command", &changed.command))?,
            reason: some_text(&changed.reason),
        },
        Payload::OwnerAssigned(assigned) => Change::OwnerAssigned {
            owner: assigned.owner.clone(),
            previous: some_text(&assigned.previous_owner),
        },
        Payload::DueDateChanged(changed) => Change::DueDateChanged {
            previous: day(&changed.previous_due_date, "previous_due_date")?,
            new: day(&changed.due_date, "due_date")?
                .ok_or(WireError::Missing { field: "due_date" })?,
            reason: some_text(&changed.reason),
        },
        Payload::ProgressNoted(noted) => Change::ProgressNoted {
            note: noted.note.clone(),
        },
        Payload::CompletionClaimed(claimed) => Change::CompletionClaimed {
            evidence: claimed
                .evidence
                .as_ref()
                .map(evidence)
                .ok_or(WireError::Missing { field: "evidence" })?,
            note: some_text(&claimed.note),
        },
        Payload::ClaimRejected(rejected) => Change::ClaimRejected {
            reason: rejected.reason.clone(),
        },
        Payload::ItemVerified(verified) => Change::Verified {
            closure_reference: verified.closure_reference.clone(),
            closed_by_inspection: match verified.closed_by_inspection_id.as_str() {
                "" => None,
                id => Some(
                    InspectionId::parse(id).map_err(|e| invalid("closed_by_inspection_id", e))?,
                ),
            },
        },
        Payload::ItemSuperseded(superseded) => Change::Superseded {
            finding: superseded.superseding_finding_id.clone(),
            reason: some_text(&superseded.reason),
        },
        Payload::ItemReopened(reopened) => Change::Reopened {
            reason: reopened.reason.clone(),
        },
        _ => return Ok(None),
    }))
}

/// The event that records `change` of item `item_id`. An ItemSuperseded
/// names the superseding finding; its superseding item, which only the
/// tracker can look up, is left empty for the caller to fill in.
pub fn payload(item_id: &str, change: Change) -> Payload {
    let item_id = item_id.to_string();
    match change {
        Change::Opened {
            organisation,
            due_date,
        } => Payload::ItemOpened(pb::ItemOpened {
            item_id,
            organisation_id: organisation.as_str().to_string(),
            due_date: due_date.map(calendar_date),
            status: pb::ItemStatus::Open as i32,
            ..Default::default()
        }),
        Change::MarkedOverdue { due_date } => Payload::ItemOverdue(pb::ItemOverdue {
            item_id,
            due_date: Some(calendar_date(due_date)),
        }),
        Change::StatusChanged {
            from,
            to,
            command,
            reason,
        } => Payload::StatusChanged(pb::StatusChanged {
            item_id,
            from_status: pb::ItemStatus::from(from) as i32,
            to_status: pb::ItemStatus::from(to) as i32,
            command: command.as_str().to_string(),
            reason: reason.unwrap_or_default(),
        }),
        Change::OwnerAssigned { owner, previous } => Payload::OwnerAssigned(pb::OwnerAssigned {
            item_id,
            owner,
            previous_owner: previous.unwrap_or_default(),
        }),
        Change::DueDateChanged {
            previous,
            new,
            reason,
        } => Payload::DueDateChanged(pb::DueDateChanged {
            item_id,
            due_date: Some(calendar_date(new)),
            previous_due_date: previous.map(calendar_date),
            reason: reason.unwrap_or_default(),
        }),
        Change::ProgressNoted { note } => {
            Payload::ProgressNoted(pb::ProgressNoted { item_id, note })
        }
        Change::CompletionClaimed { evidence, note } => {
            Payload::CompletionClaimed(pb::CompletionClaimed {
                item_id,
                evidence: Some(evidence.into()),
                note: note.unwrap_or_default(),
            })
        }
        Change::ClaimRejected { reason } => {
            Payload::ClaimRejected(pb::ClaimRejected { item_id, reason })
        }
        Change::Verified {
            closure_reference,
            closed_by_inspection,
        } => Payload::ItemVerified(pb::ItemVerified {
            item_id,
            closure_reference,
            closed_by_inspection_id: closed_by_inspection
                .map(|i| i.to_string())
                .unwrap_or_default(),
            effective_date: None,
        }),
        Change::Superseded { finding, reason } => Payload::ItemSuperseded(pb::ItemSuperseded {
            item_id,
            superseding_finding_id: finding,
            superseding_item_id: String::new(),
            reason: reason.unwrap_or_default(),
        }),
        Change::Reopened { reason } => Payload::ItemReopened(pb::ItemReopened { item_id, reason }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_and_unspecified_is_none() {
        for kind in [
            OrganisationKind::PoliceForce,
            OrganisationKind::FireAndRescueService,
        ] {
            assert_eq!(
                organisation_kind(pb::OrganisationKind::from(kind) as i32),
                Some(kind)
            );
        }
        for g in Grade::ALL {
            assert_eq!(grade(pb::Grade::from(g) as i32), Some(g));
        }
        for s in [GradeScale::FourTier, GradeScale::FiveTier] {
            assert_eq!(grade_scale(pb::GradeScale::from(s) as i32), Some(s));
        }
        for k in FindingKind::ALL {
            assert_eq!(finding_kind(pb::FindingKind::from(k) as i32), Some(k));
        }
        for s in ItemStatus::ALL {
            assert_eq!(item_status(pb::ItemStatus::from(s) as i32), Some(s));
        }
        for r in Role::ALL {
            assert_eq!(role(pb::Role::from(r) as i32), Some(r));
        }
        for unknown in [0, 99, -1] {
            assert_eq!(organisation_kind(unknown), None);
            assert_eq!(grade(unknown), None);
            assert_eq!(grade_scale(unknown), None);
            assert_eq!(finding_kind(unknown), None);
            assert_eq!(item_status(unknown), None);
            assert_eq!(role(unknown), None);
        }
        assert_eq!(
            organisation_kind_to_wire(None),
            pb::OrganisationKind::Unspecified
        );
    }
}
