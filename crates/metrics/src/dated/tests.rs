//! The dated answers against the fold ([`Snapshot::as_of`]) for random
//! histories: reports published, corrected to another date, undated or
//! never announced, recorded late; items opened from them, closed by
//! back-dated verifications and by later reports, superseded, reopened,
//! moved to a renamed organisation; events arriving in any order and
//! batching.

use super::*;
use crate::queries;
use crate::tally;
use closeout_proto as pb;
use closeout_testkit::TestDatabase;
use proptest::prelude::*;
use uuid::Uuid;

/// A small deterministic generator (the seed comes from proptest).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn date(&mut self) -> pb::CalendarDate {
        pb::CalendarDate::new(
            2018 + self.roll(6) as i32,
            1 + self.roll(12) as u32,
            1 + self.roll(28) as u32,
        )
    }

    fn seconds(&mut self) -> i64 {
        // 2018-01-01 .. about 2026-03.
        1_514_764_800 + self.roll(3_000) as i64 * 86_400 + self.roll(86_400) as i64
    }
}

const INSPECTIONS: [(&str, &str); 5] = [
    ("i1", "herts"),
    ("i2", "herts"),
    ("k1", "kent"),
    ("n1", "national"),
    ("silent", "herts"),
];
const PUBLISHED: [&str; 5] = [
    "2019-09",
    "2020-03-05",
    "2021-07",
    "not a date",
    "2023-01-31",
];

fn envelope(
    org: &str,
    aggregate: &str,
    version: u64,
    seconds: i64,
    payload: Payload,
) -> EventEnvelope {
    closeout_bus::recorded_at(org, aggregate, version, seconds, payload)
}

/// A random history, in a random arrival order.
fn history(seed: u64, items: usize) -> Vec<EventEnvelope> {
    let mut dice = Dice(seed | 1);
    let mut out = Vec::new();
    for org in ["herts", "kent"] {
        let registered = Payload::OrganisationRegistered(pb::OrganisationRegistered {
            organisation: Some(pb::Organisation {
                id: org.into(),
                name: org.into(),
                kind: 1,
                most_similar_group: vec!["herts".into(), "kent".into(), "herts-fire".into()],
            }),
        });
        let at = dice.seconds();
        out.push(envelope(org, org, 1, at, registered));
    }
    // "silent" never announces itself: items of it are dated by the day
    // they were opened.
    for (id, org) in &INSPECTIONS[..4] {
        let versions = 1 + dice.roll(2) as u64;
        for version in 1..=versions {
            if dice.roll(5) == 0 {
                continue; // this version's announcement not (yet) seen
            }
            let published = PUBLISHED[dice.roll(PUBLISHED.len())];
            let at = dice.seconds();
            out.push(envelope(
                org,
                id,
                version,
                at,
                Payload::InspectionPublished(pb::InspectionPublished {
                    inspection_id: (*id).into(),
                    organisation_id: (*org).into(),
                    programme: "PEEL".into(),
                    period: "2019/20".into(),
                    published: published.into(),
                    ..Default::default()
                }),
            ));
            let at = dice.seconds();
            out.push(envelope(
                org,
                id,
                version,
                at,
                Payload::JudgmentRecorded(pb::JudgmentRecorded {
                    judgment_id: format!("{id}-j{version}"),
                    inspection_id: (*id).into(),
                    organisation_id: (*org).into(),
                    pillar: "Effectiveness".into(),
                    grade: 1 + dice.roll(4) as i32,
                    scale: pb::GradeScale::FourTier as i32,
                    published: published.into(),
                    period: "2019/20".into(),
                    ..Default::default()
                }),
            ));
        }
    }
    use pb::ItemStatus as S;
    for n in 0..items {
        let item = format!("item{n}");
        let org = if dice.roll(3) == 0 { "kent" } else { "herts" };
        let mut at = dice.seconds();
        let mut version = 1u64;
        let mut events: Vec<(String, u64, i64, Payload)> = Vec::new();
        let mut push = |org: &str, version: &mut u64, at: i64, payload: Payload| {
            events.push((org.to_string(), *version, at, payload));
            *version += 1;
        };
        push(
            org,
            &mut version,
            at,
            Payload::ItemOpened(pb::ItemOpened {
                item_id: item.clone(),
                organisation_id: org.into(),
                inspection_id: INSPECTIONS[dice.roll(INSPECTIONS.len())].0.into(),
                kind: 1 + dice.roll(3) as i32,
                pillar: ["Effectiveness", "Efficiency"][dice.roll(2)].into(),
                status: S::Open as i32,
                due_date: (dice.roll(2) == 0).then(|| dice.date()),
                ..Default::default()
            }),
        );
        let mut org = org.to_string();
        let mut status = S::Open;
        for _ in 0..dice.roll(6) {
            at += dice.roll(400) as i64 * 86_400;
            let to = match dice.roll(8) {
                0 | 1 => {
                    let to = [S::InProgress, S::AwaitingVerification][dice.roll(2)];
                    push(
                        &org,
                        &mut version,
                        at,
                        Payload::StatusChanged(pb::StatusChanged {
                            item_id: item.clone(),
                            from_status: status as i32,
                            to_status: to as i32,
                            ..Default::default()
                        }),
                    );
                    to
                }
                2 | 3 => {
                    let by = ["", "i2", "k1", "silent"][dice.roll(4)];
                    push(
                        &org,
                        &mut version,
                        at,
                        Payload::ItemVerified(pb::ItemVerified {
                            item_id: item.clone(),
                            closure_reference: "letter".into(),
                            closed_by_inspection_id: by.into(),
                            effective_date: (dice.roll(2) == 0).then(|| dice.date()),
                        }),
                    );
                    push(
                        &org,
                        &mut version,
                        at,
                        Payload::StatusChanged(pb::StatusChanged {
                            item_id: item.clone(),
                            from_status: status as i32,
                            to_status: S::Closed as i32,
                            ..Default::default()
                        }),
                    );
                    S::Closed
                }
                4 => {
                    let by = format!("item{}", dice.roll(items.max(1)));
                    push(
                        &org,
                        &mut version,
                        at,
                        Payload::ItemSuperseded(pb::ItemSuperseded {
                            item_id: item.clone(),
                            superseding_item_id: by,
                            ..Default::default()
                        }),
                    );
                    push(
                        &org,
                        &mut version,
                        at,
                        Payload::StatusChanged(pb::StatusChanged {
                            item_id: item.clone(),
                            from_status: status as i32,
                            to_status: S::Superseded as i32,
                            ..Default::default()
                        }),
                    );
                    S::Superseded
                }
                5 => {
                    push(
                        &org,
                        &mut version,
                        at,
                        Payload::ItemReopened(pb::ItemReopened {
                            item_id: item.clone(),
                            ..Default::default()
                        }),
                    );
                    push(
                        &org,
                        &mut version,
                        at,
                        Payload::StatusChanged(pb::StatusChanged {
                            item_id: item.clone(),
                            from_status: status as i32,
                            to_status: S::InProgress as i32,
                            ..Default::default()
                        }),
                    );
                    S::InProgress
                }
                6 => {
                    push(
                        &org,
                        &mut version,
                        at,
                        Payload::DueDateChanged(pb::DueDateChanged {
                            item_id: item.clone(),
                            due_date: Some(dice.date()),
                            ..Default::default()
                        }),
                    );
                    status
                }
                _ => {
                    if org == "herts" {
                        org = "herts-fire".into();
                        push(
                            &org,
                            &mut version,
                            at,
                            Payload::ItemOrganisationChanged(pb::ItemOrganisationChanged {
                                item_id: item.clone(),
                                organisation_id: org.clone(),
                                ..Default::default()
                            }),
                        );
                    }
                    status
                }
            };
            status = to;
        }
        for (org, version, at, payload) in events {
            out.push(envelope(&org, &item, version, at, payload));
        }
    }
    // Any arrival order.
    for i in (1..out.len()).rev() {
        let j = dice.roll(i + 1);
        out.swap(i, j);
    }
    out
}

fn facts_of(envelopes: &[EventEnvelope]) -> Vec<Fact> {
    envelopes
        .iter()
        .filter_map(|e| Fact::from_envelope(e).ok())
        .collect()
}

/// The tallies of the folded snapshot's items as of `day`.
fn folded_tallies(facts: &[Fact], day: NaiveDate) -> Tallies {
    let snapshot = Snapshot::as_of(facts.iter().cloned(), day);
    let mut tallies = Tallies::default();
    for item in snapshot.items.values() {
        tallies.add(item, 1);
    }
    tallies.without_zeros()
}

/// The deltas of a whole history at once (no upkeep).
/// Each item's facts, and the inspection each item was opened from.
fn by_item(facts: &[Fact]) -> (BTreeMap<String, Vec<Fact>>, HashMap<&str, &str>) {
    let mut items: BTreeMap<String, Vec<Fact>> = BTreeMap::new();
    for fact in facts {
        if let Target::Item(id) = fact.target() {
            items.entry(id).or_default().push(fact.clone());
        }
    }
    let item_inspection = facts
        .iter()
        .filter_map(|f| match &f.payload {
            Payload::ItemOpened(o) => Some((f.aggregate_id.as_str(), o.inspection_id.as_str())),
            _ => None,
        })
        .collect();
    (items, item_inspection)
}

fn deltas_of(facts: &[Fact]) -> BTreeMap<NaiveDate, Tallies> {
    let dates = inspection_dates(facts);
    let (items, item_inspection) = by_item(facts);
    let mut deltas = BTreeMap::new();
    for facts in items.values() {
        add_deltas(&mut deltas, &timeline(facts, &dates, &item_inspection), 1);
    }
    deltas
}

fn days() -> Vec<NaiveDate> {
    let mut out: Vec<NaiveDate> = (2018..=2026)
        .flat_map(|y| {
            [(1, 1), (3, 5), (6, 30), (9, 1), (12, 31)]
                .into_iter()
                .filter_map(move |(m, d)| NaiveDate::from_ymd_opt(y, m, d))
        })
        .collect();
    out.push(NaiveDate::MAX);
    out
}

proptest! {
    #[test]
    fn summed_deltas_equal_the_tallies_of_the_fold(seed in any::<u64>(), items in 1usize..30) {
        let facts = facts_of(&history(seed, items));
        let deltas = deltas_of(&facts);
        for day in days() {
            prop_assert_eq!(tallies_as_of(&deltas, day), folded_tallies(&facts, day), "{}", day);
        }
    }
}

#[test]
fn a_renamed_item_counts_under_the_new_id_from_its_opening() {
    let facts = facts_of(&history(11, 40));
    let moved: BTreeSet<String> = facts
        .iter()
        .filter(|f| matches!(f.payload, Payload::ItemOrganisationChanged(_)))
        .map(|f| f.aggregate_id.clone())
        .collect();
    assert!(!moved.is_empty(), "the history renames some items");
    for day in days() {
        let snapshot = Snapshot::as_of(facts.iter().cloned(), day);
        for id in &moved {
            if let Some(item) = snapshot.items.get(id) {
                assert_eq!(item.organisation_id, "herts-fire", "{id} on {day}");
            }
        }
    }
}

/// Applies `envelopes` in batches through the store, as the consumers do.
async fn apply_in_batches(pool: &PgPool, envelopes: &[EventEnvelope], batch: usize) {
    for chunk in envelopes.chunks(batch.max(1)) {
        let (mut heads, mut facts) = (Vec::new(), Vec::new());
        for e in chunk {
            facts.push(Fact::from_envelope(e).expect("a checked envelope"));
            heads.push((Uuid::parse_str(&e.event_id).expect("a UUID"), e));
        }
        // A deadlock between two writers is broken by PostgreSQL and the
        // batch retried, as the consumers do (see `recompute_items`).
        loop {
            let mut tx = pool.begin().await.expect("begin");
            let fresh = store::record_batch(&mut tx, &heads, facts.clone())
                .await
                .expect("record");
            match store::apply(&mut tx, &fresh).await {
                Ok(()) => {
                    tx.commit().await.expect("commit");
                    break;
                }
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40P01") => {
                    tx.rollback().await.expect("rollback");
                }
                Err(e) => panic!("apply: {e}"),
            }
        }
    }
}

async fn empty(pool: &PgPool) {
    sqlx::query(&format!("TRUNCATE {}", store::READ_MODEL_TABLES.join(", ")))
        .execute(pool)
        .await
        .expect("truncate");
}

/// The service's as-of answers against the fold's, for each organisation
/// and day.
async fn check_answers(pool: &PgPool, facts: &[Fact]) -> Result<(), TestCaseError> {
    for day in days() {
        let folded = Snapshot::as_of(facts.iter().cloned(), day);
        for org in ["herts", "kent", "herts-fire", "nobody"] {
            let scope = Scope {
                organisation: Some(org),
                content: true,
                items: false,
            };
            let (snapshot, tallies) = load_as_of(pool, scope, day).await.expect("load");
            prop_assert_eq!(
                tally::scorecard(&snapshot, &tallies, org, day).ok(),
                queries::scorecard(&folded, org, day).ok(),
                "scorecard of {} on {}",
                org,
                day
            );
            prop_assert_eq!(
                tally::closure_stats(&snapshot, &tallies, org, ""),
                queries::closure_stats(&folded, org, ""),
                "closure stats of {} on {}",
                org,
                day
            );
            // From the checkpoints' histograms, as the service answers.
            let (snapshot, tallies) = load_scorecard_as_of(pool, org, day).await.expect("load");
            prop_assert_eq!(
                tally::scorecard(&snapshot, &tallies, org, day).ok(),
                queries::scorecard(&folded, org, day).ok(),
                "scorecard of {} on {} from the histogram",
                org,
                day
            );
            let (snapshot, tallies) = load_peers_as_of(pool, org, day).await.expect("load");
            prop_assert_eq!(
                tally::peer_comparison(&snapshot, &tallies, org, day).ok(),
                queries::peer_comparison(&folded, org, day).ok(),
                "peers of {} on {} from the histograms",
                org,
                day
            );
        }
        let (snapshot, tallies) = load_as_of(pool, Scope::default(), day).await.expect("load");
        prop_assert_eq!(
            tally::peer_comparison(&snapshot, &tallies, "herts", day).ok(),
            queries::peer_comparison(&folded, "herts", day).ok(),
            "peers on {}",
            day
        );
        prop_assert_eq!(
            tally::closure_stats(&snapshot, &tallies, "", ""),
            queries::closure_stats(&folded, "", ""),
            "everyone's closure stats on {}",
            day
        );
    }
    Ok(())
}

/// Runs `test` on a fresh migrated database, dropped afterwards whatever
/// the outcome; a failed case fails the test.
fn on_database<F>(test: F)
where
    F: FnOnce(&tokio::runtime::Runtime, &PgPool) -> Result<(), TestCaseError>,
{
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(TestDatabase::create());
    runtime
        .block_on(crate::MIGRATOR.run(db.pool()))
        .expect("migrations");
    let pool = db.pool().clone();
    let result = test(&runtime, &pool);
    runtime.block_on(db.drop_database());
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Runs the property `case` for `cases` generated inputs on one database.
fn run_cases<S, F>(cases: u32, strategy: &S, case: F) -> Result<(), TestCaseError>
where
    S: Strategy,
    F: Fn(S::Value) -> Result<(), TestCaseError>,
{
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    runner
        .run(strategy, case)
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

#[test]
fn dated_answers_equal_the_fold_whatever_the_arrival_order_and_batching() {
    on_database(|runtime, pool| {
        run_cases(
            12,
            &(any::<u64>(), 1usize..25, 1usize..40),
            |(seed, items, batch)| {
                runtime.block_on(applied_and_filled_equal_the_fold(pool, seed, items, batch))
            },
        )
    });
}

/// Cases the property found: a supersession dated by the superseding
/// item's inspection, whose date arrived in a later batch than the item.
#[test]
fn a_date_arriving_later_redates_the_supersessions_it_dates() {
    on_database(|runtime, pool| {
        runtime.block_on(async {
            for (seed, items, batch) in
                [(1778946280969840195, 22, 12), (2630566904775886166, 20, 16)]
            {
                applied_and_filled_equal_the_fold(pool, seed, items, batch).await?;
            }
            Ok(())
        })
    });
}

/// Applies the generated history in batches, checks the as-of answers,
/// then fills the dated tables from the stored events alone (as after a
/// rebuild's reset: no fill row, tables empty) and checks again.
async fn applied_and_filled_equal_the_fold(
    pool: &PgPool,
    seed: u64,
    items: usize,
    batch: usize,
) -> Result<(), TestCaseError> {
    empty(pool).await;
    let envelopes = history(seed, items);
    apply_in_batches(pool, &envelopes, batch).await;
    check_answers(pool, &facts_of(&envelopes)).await?;
    sqlx::query("TRUNCATE dated_fill, dated_tallies, dated_items, dated_refs, dated_inspections")
        .execute(pool)
        .await
        .expect("empty dated tables");
    fill_if_pending(pool).await.expect("fill");
    check_answers(pool, &facts_of(&envelopes)).await
}

thread_local! {
    /// Items the upkeep extended without their history, on this thread
    /// (the tests' `block_on` runs the upkeep on the calling thread).
    pub(super) static EXTENDED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Each aggregate's events in version order, aggregates interleaved as
/// `envelopes` has them: what the live consumers see (each service
/// publishes an aggregate's events in order).
fn in_version_order(envelopes: Vec<EventEnvelope>) -> Vec<EventEnvelope> {
    let mut slots: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, e) in envelopes.iter().enumerate() {
        slots.entry(e.aggregate_id.clone()).or_default().push(i);
    }
    let mut out: Vec<Option<EventEnvelope>> = envelopes.iter().map(|_| None).collect();
    let mut by_aggregate: BTreeMap<String, Vec<EventEnvelope>> = BTreeMap::new();
    for e in envelopes {
        by_aggregate
            .entry(e.aggregate_id.clone())
            .or_default()
            .push(e);
    }
    for (id, mut events) in by_aggregate {
        events.sort_by_key(|e| e.aggregate_version);
        for (slot, e) in slots[&id].iter().zip(events) {
            out[*slot] = Some(e);
        }
    }
    out.into_iter().flatten().collect()
}

/// Every item's history cut anywhere and extended by the next events
/// gives the timeline and head of recomputing it, whenever [`extend`]
/// takes the case (and it takes many).
#[test]
fn extending_a_timeline_equals_recomputing_it() {
    let mut extended = 0;
    let mut declined = 0;
    for seed in 0..150u64 {
        let facts = facts_of(&history(seed, 12));
        let dates = inspection_dates(&facts);
        let (items, item_inspection) = by_item(&facts);
        for (id, mut facts) in items {
            facts.sort_by(fold_order);
            for cut in 1..facts.len() {
                let (old, head) = timeline_and_head(&facts[..cut], &dates, &item_inspection);
                let head = head.expect("opened by its first event");
                let before = model::fold_item(&facts[..cut]);
                for end in cut + 1..=facts.len() {
                    let new: Vec<&Fact> = facts[cut..end].iter().collect();
                    let Some((entries, new_head)) = extend(&head, &before, &new, &dates) else {
                        declined += 1;
                        continue;
                    };
                    extended += 1;
                    let (whole, whole_head) =
                        timeline_and_head(&facts[..end], &dates, &item_inspection);
                    let mut merged: BTreeMap<NaiveDate, ItemState> = old.iter().cloned().collect();
                    merged.extend(entries);
                    assert_eq!(
                        merged.into_iter().collect::<Vec<_>>(),
                        whole,
                        "{id} of seed {seed}, events {cut}..{end}"
                    );
                    assert_eq!(Some(new_head), whole_head, "{id} of seed {seed}");
                }
            }
        }
    }
    assert!(
        extended > 1_000 && declined > 100,
        "extended {extended}, declined {declined}"
    );
}

/// The dated tables as text rows, sorted (zero sums left out: a live
/// upkeep leaves them, a fill never makes them).
async fn dated_rows(pool: &PgPool) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (table, sql) in [
        ("dated_items", "SELECT row(t.*)::text FROM dated_items t"),
        (
            "dated_item_heads",
            "SELECT row(t.*)::text FROM dated_item_heads t",
        ),
        ("dated_refs", "SELECT row(t.*)::text FROM dated_refs t"),
        (
            "dated_inspections",
            "SELECT row(t.*)::text FROM dated_inspections t",
        ),
        (
            "dated_tallies",
            "SELECT row(t.*)::text FROM dated_tallies t WHERE n <> 0",
        ),
        (
            "dated_checkpoints",
            "SELECT row(t.*)::text FROM dated_checkpoints t WHERE n <> 0",
        ),
        (
            "dated_checkpoint_days",
            "SELECT row(t.*)::text FROM dated_checkpoint_days t",
        ),
    ] {
        let mut rows: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(pool)
            .await
            .expect("dated rows");
        rows.sort();
        out.push((table.to_string(), rows));
    }
    out
}

/// Applies a history as the consumers do, each aggregate in version order
/// (items: by one writer, or the inspections and the items by two at the
/// same time), checks the answers against the fold and the dated tables
/// against a refill from the history alone.
async fn live_equals_refill(
    pool: &PgPool,
    seed: u64,
    items: usize,
    batch: usize,
    side_by_side: bool,
) -> Result<(), TestCaseError> {
    empty(pool).await;
    let envelopes = in_version_order(history(seed, items));
    if side_by_side {
        let (of_items, others): (Vec<EventEnvelope>, Vec<EventEnvelope>) =
            envelopes.iter().cloned().partition(|e| {
                Fact::from_envelope(e).is_ok_and(|f| matches!(f.target(), Target::Item(_)))
            });
        tokio::join!(
            apply_in_batches(pool, &of_items, batch),
            apply_in_batches(pool, &others, 1 + batch / 3)
        );
    } else {
        apply_in_batches(pool, &envelopes, batch).await;
    }
    check_answers(pool, &facts_of(&envelopes)).await?;
    let live = dated_rows(pool).await;
    refill(pool).await.expect("refill");
    let filled = dated_rows(pool).await;
    for ((table, live), (_, filled)) in live.iter().zip(&filled) {
        prop_assert_eq!(live, filled, "{} after seed {}", table, seed);
    }
    Ok(())
}

#[test]
fn live_upkeep_leaves_what_a_refill_makes() {
    let before = EXTENDED.with(|n| n.get());
    on_database(|runtime, pool| {
        run_cases(
            10,
            &(any::<u64>(), 1usize..25, 1usize..40, any::<bool>()),
            |(seed, items, batch, side_by_side)| {
                runtime.block_on(live_equals_refill(pool, seed, items, batch, side_by_side))
            },
        )
    });
    assert!(
        EXTENDED.with(|n| n.get()) > before,
        "no item was extended without its history"
    );
}

/// A history with a verification dated years before it was recorded (so
/// before checkpoints already kept) and a report whose date is corrected:
/// the checkpoints the live upkeep moved equal a refill's, and the answers
/// on and around checkpoint days equal the fold's.
#[test]
fn checkpoints_follow_back_dated_events_and_corrected_dates() {
    let seed = (0..500u64)
        .find(|seed| {
            let facts = facts_of(&history(*seed, 20));
            let back_dated = facts.iter().any(|f| match &f.payload {
                Payload::ItemVerified(v) => v
                    .effective_date
                    .as_ref()
                    .and_then(model::calendar_date)
                    .is_some_and(|d| d.year() < f.occurred_at.date_naive().year()),
                _ => false,
            });
            let mut published: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for f in &facts {
                if let Payload::InspectionPublished(p) = &f.payload {
                    published
                        .entry(p.inspection_id.as_str())
                        .or_default()
                        .insert(p.published.as_str());
                }
            }
            back_dated && published.values().any(|texts| texts.len() > 1)
        })
        .expect("a generated history with both");
    on_database(|runtime, pool| {
        runtime.block_on(async {
            for batch in [1, 7, 40] {
                live_equals_refill(pool, seed, 20, batch, false).await?;
                applied_and_filled_equal_the_fold(pool, seed, 20, batch).await?;
            }
            let days: i64 = sqlx::query_scalar("SELECT count(*) FROM dated_checkpoint_days")
                .fetch_one(pool)
                .await
                .expect("checkpoint days");
            prop_assert!(days > 10, "checkpoints kept: {}", days);
            migration_makes_the_histograms_the_upkeep_keeps(pool).await?;
            migration_makes_the_quarters_the_upkeep_keeps(pool).await
        })
    });
}

/// Migration 0011 fills the checkpoints' histograms from their closings in
/// SQL: the same rows as the upkeep and the seal keep (closings dated by
/// `DaysToClose::add`).
async fn migration_makes_the_histograms_the_upkeep_keeps(
    pool: &PgPool,
) -> Result<(), TestCaseError> {
    let kept = dated_rows(pool).await;
    let histograms: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM dated_checkpoints WHERE tally IN ({DAYS}, {DAYS_ALL}) AND n <> 0"
    ))
    .fetch_one(pool)
    .await
    .expect("histogram rows");
    prop_assert!(histograms > 0, "the checkpoints hold histograms");
    sqlx::query(&format!(
        "DELETE FROM dated_checkpoints WHERE tally IN ({DAYS}, {DAYS_ALL})"
    ))
    .execute(pool)
    .await
    .expect("histograms taken away");
    refill_as_migration(
        pool,
        &kept,
        include_str!("../../migrations/0011_dated_checkpoint_days_to_close.sql"),
        "INSERT",
        "the migration's fill",
    )
    .await
}

/// Runs `migration` from its first `fill` statement on (its fill of what
/// the test took away) in one transaction, whose end drops a temporary
/// table it makes, and checks the dated tables hold `kept` again.
async fn refill_as_migration(
    pool: &PgPool,
    kept: &[(String, Vec<String>)],
    migration: &str,
    fill: &str,
    name: &str,
) -> Result<(), TestCaseError> {
    let fill = &migration[migration.find(fill).expect("the migration fills")..];
    let mut tx = pool.begin().await.expect("begin");
    sqlx::raw_sql(fill)
        .execute(&mut *tx)
        .await
        .expect("the migration's fill");
    tx.commit().await.expect("commit");
    let filled = dated_rows(pool).await;
    for ((table, kept), (_, filled)) in kept.iter().zip(&filled) {
        prop_assert_eq!(kept, filled, "{} after {}", table, name);
    }
    Ok(())
}

/// Migration 0013 adds, in SQL, the quarterly checkpoints missing between
/// yearly ones: taken away (all but those of the first of January and the
/// last), it puts back the rows the upkeep and the seal kept.
async fn migration_makes_the_quarters_the_upkeep_keeps(pool: &PgPool) -> Result<(), TestCaseError> {
    let kept = dated_rows(pool).await;
    let quarters = "day < (SELECT max(day) FROM dated_checkpoint_days) \
         AND extract(month FROM day) <> 1";
    let taken = sqlx::query(&format!("DELETE FROM dated_checkpoints WHERE {quarters}"))
        .execute(pool)
        .await
        .expect("quarters' rows taken away")
        .rows_affected();
    prop_assert!(taken > 0, "the upkeep kept quarterly checkpoints");
    sqlx::query(&format!(
        "DELETE FROM dated_checkpoint_days WHERE {quarters}"
    ))
    .execute(pool)
    .await
    .expect("quarters taken away");
    refill_as_migration(
        pool,
        &kept,
        include_str!("../../migrations/0013_dated_checkpoints_quarterly.sql"),
        "CREATE TEMPORARY",
        "migration 0013",
    )
    .await
}

/// The lock order of two writers: a batch recomputing an item superseded
/// earlier locked the superseding item's inspection after the item's row,
/// while a batch changing that inspection's date takes its lock first and
/// then the rows of the items it dates (a deadlock). The item's committed
/// refs hold the inspection, so the recompute takes no lock on it: the
/// batch changing the date waits for the row instead.
#[test]
fn recomputing_a_superseded_item_leaves_its_dates_unlocked() {
    use pb::ItemStatus as S;
    on_database(|runtime, pool| {
        runtime.block_on(async {
            empty(pool).await;
            let at = 1_600_000_000;
            let opened = |item: &str, inspection: &str| {
                Payload::ItemOpened(pb::ItemOpened {
                    item_id: item.into(),
                    organisation_id: "herts".into(),
                    inspection_id: inspection.into(),
                    kind: 1,
                    pillar: "Effectiveness".into(),
                    status: S::Open as i32,
                    ..Default::default()
                })
            };
            let published = Payload::InspectionPublished(pb::InspectionPublished {
                inspection_id: "z1".into(),
                organisation_id: "herts".into(),
                programme: "PEEL".into(),
                published: "2021-07".into(),
                ..Default::default()
            });
            let superseded = Payload::ItemSuperseded(pb::ItemSuperseded {
                item_id: "old".into(),
                superseding_item_id: "new".into(),
                ..Default::default()
            });
            let status = Payload::StatusChanged(pb::StatusChanged {
                item_id: "old".into(),
                from_status: S::Open as i32,
                to_status: S::Superseded as i32,
                ..Default::default()
            });
            let due = |version| {
                let payload = Payload::DueDateChanged(pb::DueDateChanged {
                    item_id: "old".into(),
                    due_date: Some(pb::CalendarDate::new(2022, 3, 31)),
                    ..Default::default()
                });
                envelope("herts", "old", version, at + 3_000, payload)
            };
            let first = vec![
                envelope("herts", "z1", 1, at, published),
                envelope("herts", "new", 1, at + 1_000, opened("new", "z1")),
                envelope("herts", "old", 1, at - 1_000, opened("old", "i1")),
                envelope("herts", "old", 2, at + 2_000, superseded),
                envelope("herts", "old", 3, at + 2_000, status),
            ];
            apply_in_batches(pool, &first, first.len()).await;
            // Version 5 before 4: the item is recomputed from its history.
            let late = due(5);
            let fact = Fact::from_envelope(&late).expect("a checked envelope");
            let head = (Uuid::parse_str(&late.event_id).expect("a UUID"), &late);
            let mut tx = pool.begin().await.expect("begin");
            let fresh = store::record_batch(&mut tx, &[head], vec![fact])
                .await
                .expect("record");
            store::apply(&mut tx, &fresh).await.expect("apply");
            let key = ref_key("z1") as u64;
            let held: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid() AND objsubid = 1 \
                 AND classid::bigint = $1 AND objid::bigint = $2",
            )
            .bind((key >> 32) as i64)
            .bind((key & 0xffff_ffff) as i64)
            .fetch_one(&mut *tx)
            .await
            .expect("locks");
            tx.commit().await.expect("commit");
            prop_assert_eq!(
                held,
                0,
                "the recompute locked the superseding item's inspection"
            );
            let mut all = first;
            all.push(late);
            all.push(due(4));
            apply_in_batches(pool, &all[5..], 1).await;
            check_answers(pool, &facts_of(&all)).await
        })
    });
}
