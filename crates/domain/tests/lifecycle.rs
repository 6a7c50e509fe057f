//! The tracked-item lifecycle against DESIGN.md's table, written here again
//! as data (independently of the crate's own table) and checked both by
//! examples and by property tests over arbitrary sequences of commands.

use chrono::NaiveDate;
use closeout_domain::{
    Actor, Change, Command, CommandKind, Evidence, ItemState, ItemStatus, OrganisationId, Refusal,
    Role, apply, apply_all, decide, evolve, is_open, is_overdue, mark_overdue,
};
use proptest::prelude::*;

use ItemStatus::{AwaitingVerification as Awaiting, Closed, InProgress, Open, Superseded};

const ACTIVE: [ItemStatus; 3] = [Open, InProgress, Awaiting];
const BOTH: [Role; 3] = [Role::InspectedBody, Role::Inspectorate, Role::System];
const INSPECTORATE: [Role; 2] = [Role::Inspectorate, Role::System];

/// One row: the command, the statuses it is allowed from, the status it
/// leads to (None = unchanged), and who may issue it.
type Row = (
    CommandKind,
    &'static [ItemStatus],
    Option<ItemStatus>,
    &'static [Role],
);

/// DESIGN.md's table: (command, from) -> (to, who). None = unchanged.
fn table(command: CommandKind, from: ItemStatus) -> Option<(ItemStatus, &'static [Role])> {
    use CommandKind::*;
    let rows: &[Row] = &[
        (Start, &[Open], Some(InProgress), &BOTH),
        (NoteProgress, &ACTIVE, None, &BOTH),
        (AssignOwner, &ACTIVE, None, &BOTH),
        (SetDueDate, &ACTIVE, None, &BOTH),
        (
            ClaimCompletion,
            &[InProgress],
            Some(Awaiting),
            &[Role::InspectedBody],
        ),
        (RejectClaim, &[Awaiting], Some(InProgress), &INSPECTORATE),
        (Verify, &ACTIVE, Some(Closed), &INSPECTORATE),
        (Supersede, &ACTIVE, Some(Superseded), &INSPECTORATE),
        (
            Reopen,
            &[Closed, Superseded],
            Some(InProgress),
            &INSPECTORATE,
        ),
    ];
    rows.iter()
        .find(|(c, froms, _, _)| *c == command && froms.contains(&from))
        .map(|(_, _, to, who)| (to.unwrap_or(from), *who))
}

fn org(slug: &str) -> OrganisationId {
    OrganisationId::parse(slug).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn today() -> NaiveDate {
    day(2020, 1, 15)
}

fn actor(role: Role, organisation: Option<&str>) -> Actor {
    Actor {
        subject: format!("test:{role}"),
        role,
        organisation: organisation.map(org),
    }
}

fn herts_body() -> Actor {
    actor(Role::InspectedBody, Some("hertfordshire"))
}

fn inspector() -> Actor {
    actor(Role::Inspectorate, None)
}

fn evidence() -> Evidence {
    Evidence {
        description: "Action plan signed off".into(),
        uri: Some("https://example.org/plan.pdf".into()),
        sha256: "AB".repeat(32),
    }
}

fn item() -> ItemState {
    ItemState::open(org("hertfordshire"), Some(day(2020, 3, 31)))
}

fn run(state: &ItemState, actor: &Actor, command: Command) -> Result<ItemState, Refusal> {
    decide(state, actor, &command, today()).map(|changes| apply_all(state, &changes))
}

#[test]
fn happy_path_to_closure_and_back() {
    let s = run(
        &item(),
        &herts_body(),
        Command::Start {
            note: Some("plan agreed".into()),
        },
    )
    .unwrap();
    assert_eq!(s.status, InProgress);
    let s = run(
        &s,
        &herts_body(),
        Command::AssignOwner {
            owner: " DCI Smith ".into(),
        },
    )
    .unwrap();
    assert_eq!(s.owner.as_deref(), Some("DCI Smith"));
    let s = run(
        &s,
        &herts_body(),
        Command::ClaimCompletion {
            evidence: evidence(),
            note: None,
        },
    )
    .unwrap();
    assert_eq!(s.status, Awaiting);
    assert_eq!(
        s.evidence[0].sha256,
        "ab".repeat(32),
        "sha256 is stored lowercase"
    );
    let s = run(
        &s,
        &inspector(),
        Command::RejectClaim {
            reason: "no audit".into(),
        },
    )
    .unwrap();
    assert_eq!(s.status, InProgress);
    let s = run(
        &s,
        &herts_body(),
        Command::ClaimCompletion {
            evidence: evidence(),
            note: None,
        },
    )
    .unwrap();
    let s = run(
        &s,
        &inspector(),
        Command::Verify {
            closure_reference: "Letter 2020/14".into(),
            closed_by_inspection: None,
        },
    )
    .unwrap();
    assert_eq!(s.status, Closed);
    assert_eq!(s.closure_reference.as_deref(), Some("Letter 2020/14"));
    assert_eq!(s.evidence.len(), 2);
    let s = run(
        &s,
        &inspector(),
        Command::Reopen {
            reason: "re-raised in 2021".into(),
        },
    )
    .unwrap();
    assert_eq!(s.status, InProgress);
    assert_eq!(s.closure_reference, None);
}

#[test]
fn changes_name_the_events_in_order() {
    let s = run(&item(), &herts_body(), Command::Start { note: None }).unwrap();
    let changes = decide(
        &s,
        &herts_body(),
        &Command::ClaimCompletion {
            evidence: evidence(),
            note: Some(" ".into()),
        },
        today(),
    )
    .unwrap();
    assert_eq!(changes.len(), 2);
    assert!(matches!(
        &changes[0],
        Change::CompletionClaimed { note: None, .. }
    ));
    assert_eq!(
        changes[1],
        Change::StatusChanged {
            from: InProgress,
            to: Awaiting,
            command: CommandKind::ClaimCompletion,
            reason: None
        }
    );
    let start = decide(
        &item(),
        &inspector(),
        &Command::Start {
            note: Some("kick-off".into()),
        },
        today(),
    )
    .unwrap();
    assert_eq!(
        start.iter().map(Change::name).collect::<Vec<_>>(),
        ["ProgressNoted", "StatusChanged"]
    );
}

#[test]
fn refusals_are_clear() {
    let err = decide(
        &item(),
        &herts_body(),
        &Command::ClaimCompletion {
            evidence: evidence(),
            note: None,
        },
        today(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Refusal::IllegalTransition {
            command: CommandKind::ClaimCompletion,
            status: Open
        }
    );
    assert_eq!(
        err.to_string(),
        "ClaimCompletion is not allowed on an item that is OPEN (only from IN_PROGRESS)"
    );

    let err = decide(
        &item(),
        &herts_body(),
        &Command::Verify {
            closure_reference: "x".into(),
            closed_by_inspection: None,
        },
        today(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Refusal::NotPermitted {
            command: CommandKind::Verify,
            role: Role::InspectedBody
        }
    );
    assert!(err.to_string().contains("inspected-body") && err.to_string().contains("Verify"));

    let viewer = actor(Role::Viewer, Some("hertfordshire"));
    assert!(matches!(
        decide(&item(), &viewer, &Command::Start { note: None }, today()),
        Err(Refusal::NotPermitted { .. })
    ));

    let essex = actor(Role::InspectedBody, Some("essex"));
    let err = decide(&item(), &essex, &Command::Start { note: None }, today()).unwrap_err();
    assert_eq!(
        err,
        Refusal::WrongOrganisation {
            item: org("hertfordshire"),
            actor: Some(org("essex"))
        }
    );
    assert!(err.to_string().contains("hertfordshire") && err.to_string().contains("essex"));
    let nobody = actor(Role::InspectedBody, None);
    assert!(matches!(
        decide(&item(), &nobody, &Command::Start { note: None }, today()),
        Err(Refusal::WrongOrganisation { actor: None, .. })
    ));
    // The inspectorate acts on any organisation's items.
    assert!(
        decide(
            &item(),
            &actor(Role::Inspectorate, Some("essex")),
            &Command::Start { note: None },
            today()
        )
        .is_ok()
    );
}

#[test]
fn invalid_fields_are_named() {
    let in_progress = run(&item(), &herts_body(), Command::Start { note: None }).unwrap();
    let field = |state: &ItemState, who: &Actor, command: Command| match decide(
        state,
        who,
        &command,
        today(),
    ) {
        Err(Refusal::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert_eq!(
        field(
            &in_progress,
            &herts_body(),
            Command::NoteProgress { note: "  ".into() }
        ),
        "note"
    );
    assert_eq!(
        field(
            &in_progress,
            &herts_body(),
            Command::AssignOwner {
                owner: String::new()
            }
        ),
        "owner"
    );
    let mut bad = evidence();
    bad.sha256 = "abc".into();
    assert_eq!(
        field(
            &in_progress,
            &herts_body(),
            Command::ClaimCompletion {
                evidence: bad.clone(),
                note: None
            }
        ),
        "evidence.sha256"
    );
    bad.sha256 = "g".repeat(64);
    assert_eq!(
        field(
            &in_progress,
            &herts_body(),
            Command::ClaimCompletion {
                evidence: bad,
                note: None
            }
        ),
        "evidence.sha256"
    );
    let mut bad = evidence();
    bad.description = " ".into();
    assert_eq!(
        field(
            &in_progress,
            &herts_body(),
            Command::ClaimCompletion {
                evidence: bad,
                note: None
            }
        ),
        "evidence.description"
    );
    let awaiting = run(
        &in_progress,
        &herts_body(),
        Command::ClaimCompletion {
            evidence: evidence(),
            note: None,
        },
    )
    .unwrap();
    assert_eq!(
        field(
            &awaiting,
            &inspector(),
            Command::RejectClaim { reason: "".into() }
        ),
        "reason"
    );
    assert_eq!(
        field(
            &awaiting,
            &inspector(),
            Command::Verify {
                closure_reference: " ".into(),
                closed_by_inspection: None
            }
        ),
        "closure_reference"
    );
    assert_eq!(
        field(
            &awaiting,
            &inspector(),
            Command::Supersede {
                superseding_finding_id: "".into(),
                reason: None
            }
        ),
        "superseding_finding_id"
    );
    let closed = run(
        &awaiting,
        &inspector(),
        Command::Verify {
            closure_reference: "PEEL 2021/22".into(),
            closed_by_inspection: None,
        },
    )
    .unwrap();
    assert_eq!(
        field(
            &closed,
            &inspector(),
            Command::Reopen {
                reason: "\t".into()
            }
        ),
        "reason"
    );
}

#[test]
fn due_dates_first_set_freely_then_revised_with_a_reason() {
    let undated = ItemState::open(org("hertfordshire"), None);
    let set = Command::SetDueDate {
        due_date: day(2020, 6, 30),
        reason: None,
    };
    let dated = run(&undated, &herts_body(), set).unwrap();
    assert_eq!(dated.due_date, Some(day(2020, 6, 30)));

    let revise = |reason: Option<&str>| Command::SetDueDate {
        due_date: day(2020, 9, 30),
        reason: reason.map(String::from),
    };
    assert!(matches!(
        decide(&dated, &herts_body(), &revise(None), today()),
        Err(Refusal::Invalid {
            field: "reason",
            ..
        })
    ));
    assert!(matches!(
        decide(&dated, &herts_body(), &revise(Some(" ")), today()),
        Err(Refusal::Invalid {
            field: "reason",
            ..
        })
    ));
    let changes = decide(
        &dated,
        &herts_body(),
        &revise(Some("new IT system late")),
        today(),
    )
    .unwrap();
    assert_eq!(
        changes,
        [Change::DueDateChanged {
            previous: Some(day(2020, 6, 30)),
            new: day(2020, 9, 30),
            reason: Some("new IT system late".into())
        }]
    );
    // Same date again: nothing to record.
    let same = Command::SetDueDate {
        due_date: day(2020, 6, 30),
        reason: Some("again".into()),
    };
    assert!(matches!(
        decide(&dated, &herts_body(), &same, today()),
        Err(Refusal::Invalid {
            field: "due_date",
            ..
        })
    ));
    // An inspected body cannot promise a date already past; the inspectorate can correct records.
    let past = Command::SetDueDate {
        due_date: day(2019, 6, 30),
        reason: None,
    };
    assert!(matches!(
        decide(&undated, &herts_body(), &past, today()),
        Err(Refusal::Invalid {
            field: "due_date",
            ..
        })
    ));
    assert!(decide(&undated, &inspector(), &past, today()).is_ok());
}

#[test]
fn open_and_overdue() {
    assert!(is_open(Open) && is_open(InProgress) && is_open(Awaiting));
    assert!(!is_open(Closed) && !is_open(Superseded));
    let mut s = item(); // due 2020-03-31
    assert!(
        !is_overdue(&s, day(2020, 3, 31)),
        "due on a day is not overdue that day"
    );
    assert!(is_overdue(&s, day(2020, 4, 1)));
    s.status = Closed;
    assert!(!is_overdue(&s, day(2020, 4, 1)));
    assert!(!is_overdue(
        &ItemState::open(org("essex"), None),
        day(2030, 1, 1)
    ));
}

#[test]
fn an_item_is_opened_then_marked_overdue_once_per_due_date() {
    let opened = Change::Opened {
        organisation: org("hertfordshire"),
        due_date: Some(day(2020, 3, 31)),
    };
    assert_eq!(
        evolve(None, &Change::ProgressNoted { note: "x".into() }),
        None,
        "nothing but Opened applies before an item exists"
    );
    let s = evolve(None, &opened).unwrap();
    assert_eq!(s, item());
    assert_eq!(mark_overdue(&s, day(2020, 3, 31)), None);
    let marked = mark_overdue(&s, day(2020, 4, 1)).unwrap();
    assert_eq!(
        marked,
        Change::MarkedOverdue {
            due_date: day(2020, 3, 31)
        }
    );
    let s = evolve(Some(&s), &marked).unwrap();
    assert!(s.overdue);
    assert_eq!(mark_overdue(&s, day(2020, 5, 1)), None, "marked once");
    // A new due date clears the mark; missing it is announced again.
    let s = apply(
        &s,
        &Change::DueDateChanged {
            previous: Some(day(2020, 3, 31)),
            new: day(2020, 6, 30),
            reason: Some("agreed".into()),
        },
    );
    assert!(!s.overdue);
    assert!(mark_overdue(&s, day(2020, 7, 1)).is_some());
    // Closed items are never overdue.
    let closed = ItemState {
        status: Closed,
        ..s.clone()
    };
    assert_eq!(mark_overdue(&closed, day(2020, 7, 1)), None);
    // Opening starts afresh.
    assert_eq!(apply(&closed, &opened), item());
}

#[test]
fn the_crate_table_matches_the_design_table() {
    for command in CommandKind::ALL {
        for from in ItemStatus::ALL {
            let expected = table(command, from);
            assert_eq!(
                command.target(from),
                expected.map(|(to, _)| to),
                "{command} from {from}"
            );
            if let Some((_, who)) = expected {
                for role in Role::ALL {
                    assert_eq!(
                        command.is_permitted_for(role),
                        who.contains(&role),
                        "{command} by {role}"
                    );
                }
            }
        }
    }
}

// ---- property tests ----

fn arb_role() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

fn arb_actor() -> impl Strategy<Value = Actor> {
    (
        arb_role(),
        prop::option::of(prop::sample::select(vec!["hertfordshire", "essex"])),
    )
        .prop_map(|(role, o)| actor(role, o))
}

fn arb_text() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "  ", "reason", " padded note "]).prop_map(String::from)
}

fn arb_opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(arb_text())
}

fn arb_command() -> impl Strategy<Value = Command> {
    let date = (2019i32..=2021, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| day(y, m, d));
    let sha = prop::sample::select(vec![
        "ab".repeat(32),
        "AB".repeat(32),
        "abc".into(),
        "zz".repeat(32),
        String::new(),
    ]);
    let ev = (arb_text(), arb_opt_text(), sha).prop_map(|(description, uri, sha256)| Evidence {
        description,
        uri,
        sha256,
    });
    prop_oneof![
        arb_opt_text().prop_map(|note| Command::Start { note }),
        arb_text().prop_map(|note| Command::NoteProgress { note }),
        arb_text().prop_map(|owner| Command::AssignOwner { owner }),
        (date, arb_opt_text())
            .prop_map(|(due_date, reason)| Command::SetDueDate { due_date, reason }),
        (ev, arb_opt_text())
            .prop_map(|(evidence, note)| Command::ClaimCompletion { evidence, note }),
        arb_text().prop_map(|reason| Command::RejectClaim { reason }),
        arb_text().prop_map(|closure_reference| Command::Verify {
            closure_reference,
            closed_by_inspection: None
        }),
        (arb_text(), arb_opt_text()).prop_map(|(superseding_finding_id, reason)| {
            Command::Supersede {
                superseding_finding_id,
                reason,
            }
        }),
        arb_text().prop_map(|reason| Command::Reopen { reason }),
    ]
}

fn blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// Whether the command's fields are acceptable, judged independently.
fn fields_valid(state: &ItemState, actor: &Actor, command: &Command) -> bool {
    match command {
        Command::Start { .. } => true,
        Command::NoteProgress { note } => !blank(note),
        Command::AssignOwner { owner } => !blank(owner),
        Command::SetDueDate { due_date, reason } => {
            let has_reason = reason.as_deref().is_some_and(|r| !blank(r));
            state.due_date != Some(*due_date)
                && (state.due_date.is_none() || has_reason)
                && (actor.role != Role::InspectedBody || *due_date >= today())
        }
        Command::ClaimCompletion { evidence, .. } => {
            !blank(&evidence.description)
                && evidence.sha256.len() == 64
                && evidence.sha256.chars().all(|c| c.is_ascii_hexdigit())
        }
        Command::RejectClaim { reason } | Command::Reopen { reason } => !blank(reason),
        Command::Verify {
            closure_reference, ..
        } => !blank(closure_reference),
        Command::Supersede {
            superseding_finding_id,
            ..
        } => !blank(superseding_finding_id),
    }
}

fn arb_start() -> impl Strategy<Value = ItemState> {
    (
        prop::sample::select(ItemStatus::ALL.to_vec()),
        prop::option::of(Just(day(2020, 3, 31))),
    )
        .prop_map(|(status, due)| {
            let mut s = ItemState::open(org("hertfordshire"), due);
            s.status = status;
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_step_follows_the_design_table(
        start in arb_start(),
        steps in prop::collection::vec((arb_actor(), arb_command()), 1..40),
    ) {
        let mut state = start;
        for (who, command) in steps {
            let kind = command.kind();
            let before = state.clone();
            let outcome = decide(&state, &who, &command, today());
            // decide is pure: the state it was given is untouched, and asking
            // again gives the same answer.
            prop_assert_eq!(&state, &before);
            prop_assert_eq!(&outcome, &decide(&state, &who, &command, today()));

            let row = table(kind, state.status);
            let permitted = row.is_some_and(|(_, who_may)| who_may.contains(&who.role));
            let own_org = who.role != Role::InspectedBody || who.organisation.as_ref() == Some(&state.organisation);
            let should_accept = permitted && own_org && fields_valid(&state, &who, &command);

            match outcome {
                Ok(changes) => {
                    prop_assert!(should_accept, "{kind} by {} from {} was accepted", who.role, state.status);
                    let (to, _) = row.expect("accepted so in the table");
                    let next = apply_all(&state, &changes);
                    // (a) the reached status is the table's.
                    prop_assert_eq!(next.status, to);
                    // A status change is announced exactly when it happens.
                    let announced: Vec<_> = changes.iter().filter_map(|c| match c {
                        Change::StatusChanged { from, to, command, .. } => Some((*from, *to, *command)),
                        _ => None,
                    }).collect();
                    if to == state.status {
                        prop_assert!(announced.is_empty());
                    } else {
                        prop_assert_eq!(announced, vec![(state.status, to, kind)]);
                    }
                    // (c) Closed and Superseded are left only by Reopen.
                    if !is_open(state.status) {
                        prop_assert!(kind == CommandKind::Reopen, "{kind} accepted on a {} item", state.status);
                    }
                    // (d) only the inspectorate (or System) closes.
                    if next.status == Closed && state.status != Closed {
                        prop_assert!(matches!(who.role, Role::Inspectorate | Role::System));
                    }
                    // Viewers never change anything.
                    prop_assert!(who.role != Role::Viewer);
                    state = next;
                }
                Err(refusal) => {
                    // (b) refused: nothing applied, state exactly unchanged.
                    prop_assert!(!should_accept, "{kind} by {} from {} refused: {}", who.role, state.status, refusal);
                    prop_assert_eq!(&state, &before);
                    // The refusal says why, checked in the documented order.
                    let role_may = permitted_for_some(kind, who.role);
                    let expected = if !role_may {
                        "NotPermitted"
                    } else if !own_org {
                        "WrongOrganisation"
                    } else if row.is_none() {
                        "IllegalTransition"
                    } else {
                        "Invalid"
                    };
                    let actual = match refusal {
                        Refusal::NotPermitted { .. } => "NotPermitted",
                        Refusal::WrongOrganisation { .. } => "WrongOrganisation",
                        Refusal::IllegalTransition { .. } => "IllegalTransition",
                        Refusal::Invalid { .. } => "Invalid",
                    };
                    prop_assert_eq!(actual, expected);
                }
            }
        }
    }
}

fn permitted_for_some(kind: CommandKind, role: Role) -> bool {
    ItemStatus::ALL
        .into_iter()
        .filter_map(|from| table(kind, from))
        .any(|(_, who)| who.contains(&role))
}
