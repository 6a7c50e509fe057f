//! Who may do what: the one table of Closeout's authorisation rules, pure,
//! so that every service (and the tests) apply the same answer. A verified
//! [`Identity`] asks for an [`Action`]; [`authorise`] answers with the
//! [`Scope`] of organisations the action may touch, or a [`Denied`].
//!
//! | action | inspectorate | inspected body | viewer | service |
//! |---|---|---|---|---|
//! | read findings (published reports), metrics | all | all | all | all |
//! | parse or import a report, record findings, record successions | yes | – | – | yes |
//! | read items, history, lineage, proposals; watch items | all | own organisation | all, or its organisations | all |
//! | Start, NoteProgress, AssignOwner, SetDueDate | yes | own organisation | – | yes |
//! | ClaimCompletion | – | own organisation | – | – |
//! | RejectClaim, Verify, Supersede, Reopen | yes | – | – | yes |
//! | accept or reject a reconciliation proposal | yes | – | – | yes |
//! | manage notification subscriptions | yes | own organisation | – | yes |
//!
//! An inspected body asking for another organisation's item is told it
//! does not exist ([`Scope::admits`] is false: NOT_FOUND), so it cannot
//! learn whether the item exists. An action the role may never take is
//! [`Denied`] (PERMISSION_DENIED) before anything is looked up.
//!
//! Due-date revisions by an inspected body are bounded
//! ([`check_due_date_revision`]): at most a configured number of days past
//! the current due date (or today, when there is none); beyond that only
//! the inspectorate may set it. Every revision of a set due date carries a
//! reason with some substance (not only punctuation or spaces).

use chrono::NaiveDate;

use crate::{CommandKind, OrganisationId, Role};

/// Longest subject (who, in the audit trail) a credential may carry.
pub const MAX_SUBJECT_CHARS: usize = 200;

/// Most organisations a viewer's credential may be scoped to.
pub const MAX_VIEWER_ORGANISATIONS: usize = 100;

/// A caller whose credential has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Who, as recorded in history and events (at most
    /// [`MAX_SUBJECT_CHARS`] characters).
    pub subject: String,
    pub role: Role,
    /// The organisation an inspected body acts for (required for that
    /// role, none for the others).
    pub organisation: Option<OrganisationId>,
    /// The organisations a viewer may read; empty: all of them.
    pub viewer_organisations: Vec<OrganisationId>,
}

/// Why an identity is not a valid one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the subject is empty")]
    EmptySubject,
    #[error("the subject is longer than {MAX_SUBJECT_CHARS} characters")]
    LongSubject,
    #[error("the subject contains control characters")]
    ControlInSubject,
    #[error("an inspected body's credential must name its organisation")]
    MissingOrganisation,
    #[error("a viewer may be scoped to at most {MAX_VIEWER_ORGANISATIONS} organisations")]
    TooManyOrganisations,
}

impl Identity {
    /// An identity, checked: a subject of 1 to [`MAX_SUBJECT_CHARS`]
    /// characters without control characters, an organisation for an
    /// inspected body (ignored for other roles), a viewer scope of at most
    /// [`MAX_VIEWER_ORGANISATIONS`] (ignored for other roles).
    pub fn new(
        subject: &str,
        role: Role,
        organisation: Option<OrganisationId>,
        viewer_organisations: Vec<OrganisationId>,
    ) -> Result<Identity, IdentityError> {
        let subject = subject.trim();
        if subject.is_empty() {
            return Err(IdentityError::EmptySubject);
        }
        if subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(IdentityError::LongSubject);
        }
        if subject.chars().any(char::is_control) {
            return Err(IdentityError::ControlInSubject);
        }
        let organisation = match role {
            Role::InspectedBody => Some(organisation.ok_or(IdentityError::MissingOrganisation)?),
            _ => None,
        };
        let viewer_organisations = match role {
            Role::Viewer if viewer_organisations.len() > MAX_VIEWER_ORGANISATIONS => {
                return Err(IdentityError::TooManyOrganisations);
            }
            Role::Viewer => viewer_organisations,
            _ => Vec::new(),
        };
        Ok(Identity {
            subject: subject.to_string(),
            role,
            organisation,
            viewer_organisations,
        })
    }

    /// The lifecycle's view of this caller.
    pub fn actor(&self) -> crate::Actor {
        crate::Actor {
            subject: self.subject.clone(),
            role: self.role,
            organisation: self.organisation.clone(),
        }
    }
}

/// What a caller asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read published findings: organisations, inspections, judgments,
    /// findings, follow-ups, indicators, successions.
    ReadFindings,
    /// Parse a report without importing it.
    ParseReport,
    /// Import a report (or replace an imported one).
    ImportReport,
    /// Record an organisation, inspection or finding by hand.
    RecordFindings,
    /// Record that one organisation succeeded others.
    RecordSuccession,
    /// Read tracked items, their history and lineage.
    ReadItems,
    /// Watch tracked items change.
    WatchItems,
    /// A lifecycle command on one item.
    Command(CommandKind),
    /// Read reconciliation proposals.
    ReadProposals,
    /// Accept or reject a reconciliation proposal.
    DecideProposal,
    /// Read metrics.
    ReadMetrics,
    /// Read, create or delete notification subscriptions.
    ManageSubscriptions,
}

impl Action {
    /// What the action is called in messages.
    pub fn describe(self) -> String {
        match self {
            Action::ReadFindings => "read findings".into(),
            Action::ParseReport => "parse reports".into(),
            Action::ImportReport => "import reports".into(),
            Action::RecordFindings => "record findings".into(),
            Action::RecordSuccession => "record successions".into(),
            Action::ReadItems => "read tracked items".into(),
            Action::WatchItems => "watch tracked items".into(),
            Action::Command(kind) => kind.as_str().into(),
            Action::ReadProposals => "read reconciliation proposals".into(),
            Action::DecideProposal => "accept or reject reconciliation proposals".into(),
            Action::ReadMetrics => "read metrics".into(),
            Action::ManageSubscriptions => "manage notification subscriptions".into(),
        }
    }
}

/// The organisations an allowed action may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every organisation.
    All,
    /// Only these (never empty).
    Only(Vec<OrganisationId>),
}

impl Scope {
    /// Whether the action may touch `organisation`'s things. Outside the
    /// scope a thing is NOT_FOUND.
    pub fn admits(&self, organisation: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(organisations) => organisations.iter().any(|o| o.as_str() == organisation),
        }
    }

    /// The organisation filter a listing runs with, given the one the
    /// caller asked for (empty: any): `Ok(None)` when any organisation may
    /// be listed, `Ok(Some(list))` for exactly these, `Err(())` when the
    /// asked organisation is outside the scope (the listing is empty).
    pub fn narrow(&self, asked: &str) -> Result<Option<Vec<String>>, OutOfScope> {
        match (self, asked.is_empty()) {
            (Scope::All, true) => Ok(None),
            (Scope::All, false) => Ok(Some(vec![asked.to_string()])),
            (Scope::Only(list), true) => {
                Ok(Some(list.iter().map(|o| o.as_str().to_string()).collect()))
            }
            (Scope::Only(_), false) if self.admits(asked) => Ok(Some(vec![asked.to_string()])),
            (Scope::Only(_), false) => Err(OutOfScope),
        }
    }
}

/// An organisation asked for lies outside the caller's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfScope;

/// The role may never take the action (PERMISSION_DENIED).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {role} role may not {action}")]
pub struct Denied {
    pub role: Role,
    pub action: String,
}

/// The rules table (see the module documentation): the scope `identity`
/// may take `action` in, or why not.
pub fn authorise(identity: &Identity, action: Action) -> Result<Scope, Denied> {
    let role = identity.role;
    let own = || match &identity.organisation {
        Some(organisation) => Scope::Only(vec![organisation.clone()]),
        // Identity::new never builds an inspected body without one; an
        // empty scope admits nothing.
        None => Scope::Only(Vec::new()),
    };
    let deny = || Denied {
        role,
        action: action.describe(),
    };
    let everyone = matches!(action, Action::ReadFindings | Action::ReadMetrics);
    if everyone {
        return Ok(Scope::All);
    }
    match role {
        Role::Inspectorate | Role::System => match action {
            Action::Command(kind) if !kind.is_permitted_for(role) => Err(deny()),
            _ => Ok(Scope::All),
        },
        Role::InspectedBody => match action {
            Action::ReadItems
            | Action::WatchItems
            | Action::ReadProposals
            | Action::ManageSubscriptions => Ok(own()),
            Action::Command(kind) if kind.is_permitted_for(role) => Ok(own()),
            _ => Err(deny()),
        },
        Role::Viewer => match action {
            Action::ReadItems | Action::WatchItems | Action::ReadProposals => {
                if identity.viewer_organisations.is_empty() {
                    Ok(Scope::All)
                } else {
                    Ok(Scope::Only(identity.viewer_organisations.clone()))
                }
            }
            _ => Err(deny()),
        },
    }
}

/// Why a due-date revision is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DueDateRefusal {
    /// Beyond what an inspected body may set by itself (PERMISSION_DENIED).
    #[error(
        "an inspected body may move a due date at most {max_days} days past {from}; {new} needs the inspectorate"
    )]
    BeyondExtension {
        max_days: u32,
        from: NaiveDate,
        new: NaiveDate,
    },
    /// The reason is missing or says nothing (INVALID_ARGUMENT).
    #[error("revising a due date needs a reason in words")]
    NoReason,
}

/// Whether a reason says something: at least one letter or digit.
pub fn is_substantive(reason: &str) -> bool {
    reason.chars().any(char::is_alphanumeric)
}

/// Checks a due-date revision by `role` from `current` (the item's due
/// date, if it has one) to `new`, on `today`: a revision of a set due
/// date needs a substantive reason; an inspected body may set no date more
/// than `max_extension_days` after the current due date (or after today
/// when there is none, or when the current date has passed).
pub fn check_due_date_revision(
    role: Role,
    current: Option<NaiveDate>,
    new: NaiveDate,
    reason: Option<&str>,
    max_extension_days: u32,
    today: NaiveDate,
) -> Result<(), DueDateRefusal> {
    if current.is_some() && !reason.is_some_and(is_substantive) {
        return Err(DueDateRefusal::NoReason);
    }
    if role == Role::InspectedBody {
        let from = current.map_or(today, |c| c.max(today));
        let limit = from
            .checked_add_days(chrono::Days::new(u64::from(max_extension_days)))
            .unwrap_or(NaiveDate::MAX);
        if new > limit {
            return Err(DueDateRefusal::BeyondExtension {
                max_days: max_extension_days,
                from,
                new,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str) -> OrganisationId {
        OrganisationId::parse(id).unwrap()
    }

    fn who(role: Role) -> Identity {
        Identity::new(
            "test",
            role,
            Some(org("kent")),
            if role == Role::Viewer {
                vec![org("essex")]
            } else {
                Vec::new()
            },
        )
        .unwrap()
    }

    #[test]
    fn the_inspectorate_does_everything_but_claim() {
        let me = who(Role::Inspectorate);
        assert_eq!(me.organisation, None);
        for action in [
            Action::ImportReport,
            Action::ParseReport,
            Action::RecordSuccession,
            Action::DecideProposal,
            Action::WatchItems,
            Action::Command(CommandKind::Verify),
            Action::Command(CommandKind::Reopen),
        ] {
            assert_eq!(authorise(&me, action), Ok(Scope::All), "{action:?}");
        }
        assert!(authorise(&me, Action::Command(CommandKind::ClaimCompletion)).is_err());
    }

    #[test]
    fn an_inspected_body_acts_on_its_own_organisation_only() {
        let me = who(Role::InspectedBody);
        let own = authorise(&me, Action::ReadItems).unwrap();
        assert!(own.admits("kent"));
        assert!(!own.admits("essex"));
        assert_eq!(own.narrow(""), Ok(Some(vec!["kent".to_string()])));
        assert_eq!(own.narrow("essex"), Err(OutOfScope));
        assert!(authorise(&me, Action::Command(CommandKind::ClaimCompletion)).is_ok());
        for action in [
            Action::ImportReport,
            Action::ParseReport,
            Action::DecideProposal,
            Action::RecordSuccession,
            Action::Command(CommandKind::Verify),
            Action::Command(CommandKind::Supersede),
            Action::Command(CommandKind::Reopen),
            Action::Command(CommandKind::RejectClaim),
        ] {
            let denied = authorise(&me, action).unwrap_err();
            assert_eq!(denied.role, Role::InspectedBody);
        }
    }

    #[test]
    fn a_viewer_reads_within_its_scope_and_writes_nothing() {
        let me = who(Role::Viewer);
        let scope = authorise(&me, Action::WatchItems).unwrap();
        assert!(scope.admits("essex") && !scope.admits("kent"));
        let unscoped = Identity::new("v", Role::Viewer, None, Vec::new()).unwrap();
        assert_eq!(authorise(&unscoped, Action::ReadItems), Ok(Scope::All));
        for kind in CommandKind::ALL {
            assert!(authorise(&me, Action::Command(kind)).is_err());
        }
        assert!(authorise(&me, Action::ManageSubscriptions).is_err());
        assert_eq!(authorise(&me, Action::ReadFindings), Ok(Scope::All));
    }

    #[test]
    fn identities_are_checked() {
        assert_eq!(
            Identity::new("x", Role::InspectedBody, None, Vec::new()),
            Err(IdentityError::MissingOrganisation)
        );
        assert_eq!(
            Identity::new(&"a".repeat(201), Role::Viewer, None, Vec::new()),
            Err(IdentityError::LongSubject)
        );
        assert!(Identity::new(&"a".repeat(200), Role::Viewer, None, Vec::new()).is_ok());
        assert_eq!(
            Identity::new(" ", Role::Viewer, None, Vec::new()),
            Err(IdentityError::EmptySubject)
        );
        assert_eq!(
            Identity::new("a\u{7}", Role::Viewer, None, Vec::new()),
            Err(IdentityError::ControlInSubject)
        );
    }

    #[test]
    fn due_date_revisions_are_bounded_and_explained() {
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let today = day("2026-01-10");
        let due = Some(day("2026-02-01"));
        assert_eq!(
            check_due_date_revision(
                Role::InspectedBody,
                due,
                day("2026-03-01"),
                Some("."),
                90,
                today
            ),
            Err(DueDateRefusal::NoReason)
        );
        assert!(
            check_due_date_revision(
                Role::InspectedBody,
                due,
                day("2026-05-02"),
                Some("staff shortage"),
                90,
                today
            )
            .is_ok()
        );
        assert!(matches!(
            check_due_date_revision(
                Role::InspectedBody,
                due,
                day("9999-12-31"),
                Some("later"),
                90,
                today
            ),
            Err(DueDateRefusal::BeyondExtension { .. })
        ));
        assert!(
            check_due_date_revision(
                Role::Inspectorate,
                due,
                day("2030-01-01"),
                Some("agreed"),
                90,
                today
            )
            .is_ok()
        );
        // A first due date needs no reason.
        assert!(
            check_due_date_revision(
                Role::InspectedBody,
                None,
                day("2026-02-01"),
                None,
                90,
                today
            )
            .is_ok()
        );
    }
}
