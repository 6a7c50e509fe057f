//! The tracked-item lifecycle: which command is allowed from which status and
//! for whom, exactly as DESIGN.md's table says. [`decide`] is pure: it checks
//! a command against the state and the actor and returns the changes to
//! record (one per event) or a [`Refusal`]; [`apply`] folds a change into the
//! state. A refusal therefore changes nothing, and replaying recorded changes
//! rebuilds the state: [`evolve`] is the whole fold, from the change that
//! opens an item ([`Change::Opened`]) through the scheduler's
//! [`Change::MarkedOverdue`] ([`mark_overdue`] says when) to the commands'
//! changes. The tracker projects its stored items with it.
//!
//! | command | allowed from | to | who |
//! |---|---|---|---|
//! | Start | OPEN | IN_PROGRESS | inspected body, inspectorate |
//! | NoteProgress, AssignOwner, SetDueDate | OPEN, IN_PROGRESS, AWAITING_VERIFICATION | unchanged | inspected body, inspectorate |
//! | ClaimCompletion | IN_PROGRESS | AWAITING_VERIFICATION | inspected body |
//! | RejectClaim | AWAITING_VERIFICATION | IN_PROGRESS | inspectorate |
//! | Verify | OPEN, IN_PROGRESS, AWAITING_VERIFICATION | CLOSED | inspectorate |
//! | Supersede | OPEN, IN_PROGRESS, AWAITING_VERIFICATION | SUPERSEDED | inspectorate |
//! | Reopen | CLOSED, SUPERSEDED | IN_PROGRESS | inspectorate |
//!
//! `System` (a Closeout service acting on its own) may do what the
//! inspectorate may. Viewers read only. An inspected body acts only on its own
//! organisation's items.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

use crate::{DomainError, InspectionId, OrganisationId};

/// Lifecycle state of a tracked item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemStatus {
    Open,
    InProgress,
    AwaitingVerification,
    Closed,
    Superseded,
}

impl ItemStatus {
    pub const ALL: [ItemStatus; 5] = [
        Self::Open,
        Self::InProgress,
        Self::AwaitingVerification,
        Self::Closed,
        Self::Superseded,
    ];

    /// The name DESIGN.md and error messages use ("AWAITING_VERIFICATION").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::InProgress => "IN_PROGRESS",
            Self::AwaitingVerification => "AWAITING_VERIFICATION",
            Self::Closed => "CLOSED",
            Self::Superseded => "SUPERSEDED",
        }
    }

    /// Still to be closed: not Closed or Superseded.
    pub fn is_open(self) -> bool {
        is_open(self)
    }
}

impl fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ItemStatus {
    type Err = DomainError;
    /// Accepts "IN_PROGRESS", "in-progress", "in progress" alike.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normal = s.trim().to_ascii_uppercase().replace(['-', ' '], "_");
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == normal)
            .ok_or_else(|| DomainError::UnknownStatus(s.to_string()))
    }
}

/// Still to be closed: not Closed or Superseded.
pub fn is_open(status: ItemStatus) -> bool {
    !matches!(status, ItemStatus::Closed | ItemStatus::Superseded)
}

/// Who is acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Verifies, rejects claims, supersedes, reopens.
    Inspectorate,
    /// Acts on its own organisation's items only.
    InspectedBody,
    /// Reads only.
    Viewer,
    /// A Closeout service acting on its own; may do what the inspectorate may.
    System,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Self::Inspectorate,
        Self::InspectedBody,
        Self::Viewer,
        Self::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inspectorate => "inspectorate",
            Self::InspectedBody => "inspected-body",
            Self::Viewer => "viewer",
            Self::System => "system",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normal = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == normal)
            .ok_or_else(|| DomainError::UnknownRole(s.to_string()))
    }
}

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    /// Subject of the credential, e.g. "inspector:jane" or "service:tracker".
    pub subject: String,
    pub role: Role,
    /// The organisation an inspected body acts for; ignored for other roles.
    pub organisation: Option<OrganisationId>,
}

/// Evidence attached to a completion claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Evidence {
    pub description: String,
    /// Link to the document, if there is one.
    pub uri: Option<String>,
    /// Hex sha256 of the document: 64 hex characters (stored lowercase).
    pub sha256: String,
}

/// A lifecycle command, carrying what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Start {
        note: Option<String>,
    },
    NoteProgress {
        note: String,
    },
    AssignOwner {
        owner: String,
    },
    /// Setting the first due date needs no reason; revising one does.
    SetDueDate {
        due_date: NaiveDate,
        reason: Option<String>,
    },
    ClaimCompletion {
        evidence: Evidence,
        note: Option<String>,
    },
    RejectClaim {
        reason: String,
    },
    /// Closure with a reference: a closure letter, a revisit, a later inspection.
    Verify {
        closure_reference: String,
        closed_by_inspection: Option<InspectionId>,
    },
    Supersede {
        superseding_finding_id: String,
        reason: Option<String>,
    },
    Reopen {
        reason: String,
    },
}

impl Command {
    pub fn kind(&self) -> CommandKind {
        match self {
            Self::Start { .. } => CommandKind::Start,
            Self::NoteProgress { .. } => CommandKind::NoteProgress,
            Self::AssignOwner { .. } => CommandKind::AssignOwner,
            Self::SetDueDate { .. } => CommandKind::SetDueDate,
            Self::ClaimCompletion { .. } => CommandKind::ClaimCompletion,
            Self::RejectClaim { .. } => CommandKind::RejectClaim,
            Self::Verify { .. } => CommandKind::Verify,
            Self::Supersede { .. } => CommandKind::Supersede,
            Self::Reopen { .. } => CommandKind::Reopen,
        }
    }
}

/// A command's name, without its data: what the table is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Start,
    NoteProgress,
    AssignOwner,
    SetDueDate,
    ClaimCompletion,
    RejectClaim,
    Verify,
    Supersede,
    Reopen,
}

const ACTIVE: &[ItemStatus] = &[
    ItemStatus::Open,
    ItemStatus::InProgress,
    ItemStatus::AwaitingVerification,
];
const BOTH: &[Role] = &[Role::InspectedBody, Role::Inspectorate, Role::System];
const INSPECTORATE: &[Role] = &[Role::Inspectorate, Role::System];

impl CommandKind {
    pub const ALL: [CommandKind; 9] = [
        Self::Start,
        Self::NoteProgress,
        Self::AssignOwner,
        Self::SetDueDate,
        Self::ClaimCompletion,
        Self::RejectClaim,
        Self::Verify,
        Self::Supersede,
        Self::Reopen,
    ];

    /// The name used in StatusChanged events and messages ("ClaimCompletion").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "Start",
            Self::NoteProgress => "NoteProgress",
            Self::AssignOwner => "AssignOwner",
            Self::SetDueDate => "SetDueDate",
            Self::ClaimCompletion => "ClaimCompletion",
            Self::RejectClaim => "RejectClaim",
            Self::Verify => "Verify",
            Self::Supersede => "Supersede",
            Self::Reopen => "Reopen",
        }
    }

    /// The statuses this command is allowed from.
    pub fn allowed_from(self) -> &'static [ItemStatus] {
        match self {
            Self::Start => &[ItemStatus::Open],
            Self::ClaimCompletion => &[ItemStatus::InProgress],
            Self::RejectClaim => &[ItemStatus::AwaitingVerification],
            Self::Reopen => &[ItemStatus::Closed, ItemStatus::Superseded],
            Self::NoteProgress
            | Self::AssignOwner
            | Self::SetDueDate
            | Self::Verify
            | Self::Supersede => ACTIVE,
        }
    }

    /// The status after the command, from `from`; None where it is not allowed.
    pub fn target(self, from: ItemStatus) -> Option<ItemStatus> {
        if !self.allowed_from().contains(&from) {
            return None;
        }
        Some(match self {
            Self::Start | Self::RejectClaim | Self::Reopen => ItemStatus::InProgress,
            Self::ClaimCompletion => ItemStatus::AwaitingVerification,
            Self::Verify => ItemStatus::Closed,
            Self::Supersede => ItemStatus::Superseded,
            Self::NoteProgress | Self::AssignOwner | Self::SetDueDate => from,
        })
    }

    /// The roles that may issue this command.
    pub fn permitted_roles(self) -> &'static [Role] {
        match self {
            Self::Start | Self::NoteProgress | Self::AssignOwner | Self::SetDueDate => BOTH,
            // Only the inspected body claims its own work complete.
            Self::ClaimCompletion => &[Role::InspectedBody],
            Self::RejectClaim | Self::Verify | Self::Supersede | Self::Reopen => INSPECTORATE,
        }
    }

    pub fn is_permitted_for(self, role: Role) -> bool {
        self.permitted_roles().contains(&role)
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the lifecycle needs to know about an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemState {
    pub status: ItemStatus,
    pub organisation: OrganisationId,
    pub owner: Option<String>,
    pub due_date: Option<NaiveDate>,
    /// Every piece of evidence claimed, oldest first (kept after a rejection).
    pub evidence: Vec<Evidence>,
    pub closure_reference: Option<String>,
    pub closed_by_inspection: Option<InspectionId>,
    /// The finding that superseded the item, while it is superseded.
    pub superseded_by: Option<String>,
    /// Its due date has passed while it was open, and that has been
    /// announced (once per due date: a new due date clears it).
    pub overdue: bool,
}

impl ItemState {
    /// A newly opened item, with the due date from its deadline clause if any.
    pub fn open(organisation: OrganisationId, due_date: Option<NaiveDate>) -> Self {
        Self {
            status: ItemStatus::Open,
            organisation,
            owner: None,
            due_date,
            evidence: Vec::new(),
            closure_reference: None,
            closed_by_inspection: None,
            superseded_by: None,
            overdue: false,
        }
    }
}

/// Past its due date and not yet closed or superseded. Due on a day means
/// overdue from the day after.
pub fn is_overdue(state: &ItemState, today: NaiveDate) -> bool {
    state.status.is_open() && state.due_date.is_some_and(|due| due < today)
}

/// The change that announces a missed due date, when there is one to
/// announce: the item is overdue on `today` and not yet marked (an item is
/// marked once per due date).
pub fn mark_overdue(state: &ItemState, today: NaiveDate) -> Option<Change> {
    let due_date = state.due_date?;
    (!state.overdue && is_overdue(state, today)).then_some(Change::MarkedOverdue { due_date })
}

/// One recorded change; each maps onto one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The item was opened for an organisation, with the due date from its
    /// finding's deadline clause if any. The first change of every item; it
    /// starts the item afresh whatever came before.
    Opened {
        organisation: OrganisationId,
        due_date: Option<NaiveDate>,
    },
    /// The due date passed while the item was open.
    MarkedOverdue {
        due_date: NaiveDate,
    },
    /// Emitted for every change of status, after the command's own change.
    StatusChanged {
        from: ItemStatus,
        to: ItemStatus,
        command: CommandKind,
        reason: Option<String>,
    },
    OwnerAssigned {
        owner: String,
        previous: Option<String>,
    },
    DueDateChanged {
        previous: Option<NaiveDate>,
        new: NaiveDate,
        reason: Option<String>,
    },
    ProgressNoted {
        note: String,
    },
    CompletionClaimed {
        evidence: Evidence,
        note: Option<String>,
    },
    ClaimRejected {
        reason: String,
    },
    Verified {
        closure_reference: String,
        closed_by_inspection: Option<InspectionId>,
    },
    Superseded {
        finding: String,
        reason: Option<String>,
    },
    Reopened {
        reason: String,
    },
}

impl Change {
    /// The change's name, as its event is called ("StatusChanged").
    pub fn name(&self) -> &'static str {
        match self {
            Self::Opened { .. } => "ItemOpened",
            Self::MarkedOverdue { .. } => "ItemOverdue",
            Self::StatusChanged { .. } => "StatusChanged",
            Self::OwnerAssigned { .. } => "OwnerAssigned",
            Self::DueDateChanged { .. } => "DueDateChanged",
            Self::ProgressNoted { .. } => "ProgressNoted",
            Self::CompletionClaimed { .. } => "CompletionClaimed",
            Self::ClaimRejected { .. } => "ClaimRejected",
            Self::Verified { .. } => "Verified",
            Self::Superseded { .. } => "Superseded",
            Self::Reopened { .. } => "Reopened",
        }
    }
}

/// Why a command was refused. Each variant maps to one status code:
/// IllegalTransition to FAILED_PRECONDITION, NotPermitted and
/// WrongOrganisation to PERMISSION_DENIED, Invalid to INVALID_ARGUMENT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{command} is not allowed on an item that is {status} (only from {})", status_list(.command.allowed_from()))]
    IllegalTransition {
        command: CommandKind,
        status: ItemStatus,
    },
    #[error("the {role} role may not {command}")]
    NotPermitted { command: CommandKind, role: Role },
    #[error("the item belongs to {item}; an inspected body acting for {} may not act on it", .actor.as_ref().map_or("no organisation", |o| o.as_str()))]
    WrongOrganisation {
        item: OrganisationId,
        actor: Option<OrganisationId>,
    },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn status_list(statuses: &[ItemStatus]) -> String {
    statuses
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks `command` by `actor` against the item's state and returns the
/// changes to record, in order: the command's own change, then StatusChanged
/// when the status moves. Checks run in this order, so a caller who may not
/// act learns nothing about the item's state: role, organisation,
/// transition, then the command's fields. `today` is the actor's current
/// date (an inspected body may not set a due date that has already passed).
pub fn decide(
    state: &ItemState,
    actor: &Actor,
    command: &Command,
    today: NaiveDate,
) -> Result<Vec<Change>, Refusal> {
    let kind = command.kind();
    if !kind.is_permitted_for(actor.role) {
        return Err(Refusal::NotPermitted {
            command: kind,
            role: actor.role,
        });
    }
    if actor.role == Role::InspectedBody && actor.organisation.as_ref() != Some(&state.organisation)
    {
        return Err(Refusal::WrongOrganisation {
            item: state.organisation.clone(),
            actor: actor.organisation.clone(),
        });
    }
    let from = state.status;
    let to = kind.target(from).ok_or(Refusal::IllegalTransition {
        command: kind,
        status: from,
    })?;
    let status_changed = |reason: Option<String>| Change::StatusChanged {
        from,
        to,
        command: kind,
        reason,
    };
    let changes = match command {
        Command::Start { note } => {
            let mut changes: Vec<Change> = optional(note)
                .map(|note| Change::ProgressNoted { note })
                .into_iter()
                .collect();
            changes.push(status_changed(None));
            changes
        }
        Command::NoteProgress { note } => vec![Change::ProgressNoted {
            note: required("note", note)?,
        }],
        Command::AssignOwner { owner } => vec![Change::OwnerAssigned {
            owner: required("owner", owner)?,
            previous: state.owner.clone(),
        }],
        Command::SetDueDate { due_date, reason } => {
            let reason = optional(reason);
            if state.due_date == Some(*due_date) {
                return Err(invalid(
                    "due_date",
                    format!("{due_date} is already the due date"),
                ));
            }
            if state.due_date.is_some() && reason.is_none() {
                return Err(invalid("reason", "revising a due date needs a reason"));
            }
            if actor.role == Role::InspectedBody && *due_date < today {
                return Err(invalid(
                    "due_date",
                    format!("{due_date} has already passed"),
                ));
            }
            vec![Change::DueDateChanged {
                previous: state.due_date,
                new: *due_date,
                reason,
            }]
        }
        Command::ClaimCompletion { evidence, note } => vec![
            Change::CompletionClaimed {
                evidence: valid_evidence(evidence)?,
                note: optional(note),
            },
            status_changed(None),
        ],
        Command::RejectClaim { reason } => {
            let reason = required("reason", reason)?;
            vec![
                Change::ClaimRejected {
                    reason: reason.clone(),
                },
                status_changed(Some(reason)),
            ]
        }
        Command::Verify {
            closure_reference,
            closed_by_inspection,
        } => vec![
            Change::Verified {
                closure_reference: required("closure_reference", closure_reference)?,
                closed_by_inspection: *closed_by_inspection,
            },
            status_changed(None),
        ],
        Command::Supersede {
            superseding_finding_id,
            reason,
        } => {
            let reason = optional(reason);
            vec![
                Change::Superseded {
                    finding: required("superseding_finding_id", superseding_finding_id)?,
                    reason: reason.clone(),
                },
                status_changed(reason),
            ]
        }
        Command::Reopen { reason } => {
            let reason = required("reason", reason)?;
            vec![
                Change::Reopened {
                    reason: reason.clone(),
                },
                status_changed(Some(reason)),
            ]
        }
    };
    Ok(changes)
}

/// Folds one recorded change into the state. Infallible: changes were
/// checked by [`decide`] (or [`mark_overdue`]) when recorded.
pub fn apply(state: &ItemState, change: &Change) -> ItemState {
    let mut next = state.clone();
    match change {
        Change::Opened {
            organisation,
            due_date,
        } => next = ItemState::open(organisation.clone(), *due_date),
        Change::MarkedOverdue { .. } => next.overdue = true,
        Change::StatusChanged { to, .. } => next.status = *to,
        Change::OwnerAssigned { owner, .. } => next.owner = Some(owner.clone()),
        Change::DueDateChanged { new, .. } => {
            next.due_date = Some(*new);
            // A new date may be missed again; that is announced again.
            next.overdue = false;
        }
        Change::ProgressNoted { .. } | Change::ClaimRejected { .. } => {}
        Change::CompletionClaimed { evidence, .. } => next.evidence.push(evidence.clone()),
        Change::Verified {
            closure_reference,
            closed_by_inspection,
        } => {
            next.closure_reference = Some(closure_reference.clone());
            next.closed_by_inspection = *closed_by_inspection;
        }
        Change::Superseded { finding, .. } => next.superseded_by = Some(finding.clone()),
        // The closure no longer stands; the history keeps it.
        Change::Reopened { .. } => {
            next.closure_reference = None;
            next.closed_by_inspection = None;
            next.superseded_by = None;
        }
    }
    next
}

/// The fold of an item's whole history, one change at a time: `state` is
/// None before the item is opened, when only [`Change::Opened`] applies
/// (None is returned for any other change); after that, [`apply`].
pub fn evolve(state: Option<&ItemState>, change: &Change) -> Option<ItemState> {
    match (state, change) {
        (Some(state), change) => Some(apply(state, change)),
        (
            None,
            Change::Opened {
                organisation,
                due_date,
            },
        ) => Some(ItemState::open(organisation.clone(), *due_date)),
        (None, _) => None,
    }
}

/// Folds changes in order.
pub fn apply_all<'a>(
    state: &ItemState,
    changes: impl IntoIterator<Item = &'a Change>,
) -> ItemState {
    changes
        .into_iter()
        .fold(state.clone(), |acc, change| apply(&acc, change))
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Trimmed text that must not be blank.
fn required(field: &'static str, text: &str) -> Result<String, Refusal> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    Ok(trimmed.to_string())
}

/// Trimmed text, with blank meaning absent (proto strings cannot be null).
fn optional(text: &Option<String>) -> Option<String> {
    text.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn valid_evidence(evidence: &Evidence) -> Result<Evidence, Refusal> {
    let description = required("evidence.description", &evidence.description)?;
    let sha256 = evidence.sha256.trim();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(
            "evidence.sha256",
            "must be 64 hexadecimal characters",
        ));
    }
    Ok(Evidence {
        description,
        uri: optional(&evidence.uri),
        sha256: sha256.to_ascii_lowercase(),
    })
}
