//! The read models as pure folds over events, with no I/O.
//!
//! Both the live read model (the tables kept up to date by the consumers,
//! see [`crate::store`]) and the as-of queries (which fold the stored event
//! history up to a date, see [`Snapshot::fold`]) go through the functions of
//! this module, so they cannot disagree.
//!
//! Versions: every event carries the version of its aggregate after it.
//!
//! * An **item** is the fold of its events in version order
//!   ([`ItemState::apply`]). The live model applies an event directly only
//!   when it is the next version ([`item_applies_in_order`]); otherwise (a
//!   late, early or repeated version) it re-folds the item's whole stored
//!   history ([`fold_item`]), so the result never depends on arrival order.
//! * An **inspection** has metadata and content (judgments, indicators).
//!   Its content is the set of children recorded at its highest version:
//!   a replacement re-records everything at the next version
//!   ([`apply_inspection`] returns the [`ContentChange`] to make).
//! * An **organisation** keeps the registration of the highest version.

use chrono::{DateTime, NaiveDate, Utc};
use closeout_proto::event_envelope::Payload;
use closeout_proto::{self as pb, EventEnvelope};
use std::collections::{BTreeMap, HashSet};

/// An envelope checked for what the read models need.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub organisation_id: String,
    pub aggregate_id: String,
    /// Version of the aggregate after this event (1 for the first).
    pub version: u64,
    pub payload: Payload,
}

impl Fact {
    /// Checks an envelope: it needs a payload, a valid `occurred_at` and a
    /// version of at least 1. The error says what is wrong; such an event
    /// can never be applied.
    pub fn from_envelope(envelope: &EventEnvelope) -> Result<Fact, String> {
        let payload = envelope
            .payload
            .clone()
            .ok_or_else(|| format!("event {} has no payload", envelope.event_id))?;
        let at = envelope
            .occurred_at
            .as_ref()
            .ok_or_else(|| format!("event {} has no occurred_at", envelope.event_id))?;
        // Microseconds, as PostgreSQL stores them, so that the live model
        // and a fold of the history hold the same instants.
        let occurred_at = u32::try_from(at.nanos)
            .ok()
            .filter(|n| *n < 1_000_000_000)
            .map(|n| n / 1_000 * 1_000)
            .and_then(|nanos| DateTime::from_timestamp(at.seconds, nanos))
            .ok_or_else(|| format!("event {} has an invalid occurred_at", envelope.event_id))?;
        if envelope.aggregate_version == 0 {
            return Err(format!(
                "event {} has aggregate_version 0 (versions start at 1)",
                envelope.event_id
            ));
        }
        Ok(Fact {
            event_id: envelope.event_id.clone(),
            occurred_at,
            organisation_id: envelope.organisation_id.clone(),
            aggregate_id: envelope.aggregate_id.clone(),
            version: envelope.aggregate_version,
            payload,
        })
    }

    /// The read model this event changes.
    pub fn target(&self) -> Target {
        let or_aggregate = |id: &str| {
            if id.is_empty() {
                self.aggregate_id.clone()
            } else {
                id.to_string()
            }
        };
        match &self.payload {
            Payload::OrganisationRegistered(r) => Target::Organisation(or_aggregate(
                r.organisation.as_ref().map(|o| o.id.as_str()).unwrap_or(""),
            )),
            Payload::InspectionPublished(p) => Target::Inspection(or_aggregate(&p.inspection_id)),
            Payload::InspectionReplaced(p) => Target::Inspection(or_aggregate(&p.inspection_id)),
            Payload::JudgmentRecorded(p) => Target::Inspection(or_aggregate(&p.inspection_id)),
            Payload::IndicatorRecorded(p) => Target::Inspection(or_aggregate(&p.inspection_id)),
            Payload::FollowUpRecorded(p) => Target::Inspection(or_aggregate(&p.inspection_id)),
            Payload::ItemOpened(p) => Target::Item(or_aggregate(&p.item_id)),
            Payload::StatusChanged(p) => Target::Item(or_aggregate(&p.item_id)),
            Payload::OwnerAssigned(p) => Target::Item(or_aggregate(&p.item_id)),
            Payload::DueDateChanged(p) => Target::Item(or_aggregate(&p.item_id)),
            Payload::ProgressNoted(p) => Target::Item(or_aggregate(&p.item_id)),
            Payload::CompletionClaimed(p) => Target::Item(or_aggregate(&p.item_id)),
            Payload::ClaimRejected(p) => Target::Item(or_aggregate(&p.item_id)),
            Payload::ItemVerified(p) => Target::Item(or_aggregate(&p.item_id)),
            Payload::ItemSuperseded(p) => Target::Item(or_aggregate(&p.item_id)),
            Payload::ItemReopened(p) => Target::Item(or_aggregate(&p.item_id)),
            Payload::ItemOverdue(p) => Target::Item(or_aggregate(&p.item_id)),
            // Findings and proposals are kept in the history only: the
            // figures come from items, which carry what they need.
            Payload::FindingRecorded(_)
            | Payload::FindingWithdrawn(_)
            | Payload::OrganisationSucceeded(_)
            | Payload::ProposalMade(_)
            | Payload::ProposalAccepted(_)
            | Payload::ProposalRejected(_)
            | Payload::ProposalWithdrawn(_) => Target::HistoryOnly,
        }
    }
}

/// Which read model an event folds into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Organisation(String),
    Inspection(String),
    Item(String),
    HistoryOnly,
}

/// The order events of one aggregate are folded in: version, then time,
/// then id (only versions matter; the rest makes the order total).
pub fn fold_order(a: &Fact, b: &Fact) -> std::cmp::Ordering {
    (a.version, a.occurred_at, &a.event_id).cmp(&(b.version, b.occurred_at, &b.event_id))
}

// ---------------------------------------------------------------- items

/// A tracked item as the metrics see it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ItemState {
    pub item_id: String,
    pub organisation_id: String,
    pub inspection_id: String,
    pub finding_id: String,
    /// `FindingKind` number.
    pub kind: i32,
    pub pillar: String,
    pub question: String,
    /// `ItemStatus` number.
    pub status: i32,
    /// True once its `ItemOpened` has been seen; items without one are not
    /// counted.
    pub opened: bool,
    pub opened_at: Option<DateTime<Utc>>,
    /// When it was last closed; `None` unless its status is CLOSED.
    pub closed_at: Option<DateTime<Utc>>,
    pub due_date: Option<NaiveDate>,
    /// Raised by ItemOverdue, cleared by a new due date.
    pub overdue: bool,
    /// Set when a later inspection closed it.
    pub closed_by_inspection_id: String,
    pub version: u64,
}

/// Open in the domain's sense (`closeout_domain::is_open`): not closed and
/// not superseded. A status the wire does not name (not yet known) counts
/// as open.
pub fn status_is_open(status: i32) -> bool {
    closeout_domain::wire::item_status(status).is_none_or(closeout_domain::is_open)
}

impl ItemState {
    /// Not closed and not superseded.
    pub fn is_open(&self) -> bool {
        status_is_open(self.status)
    }

    /// Overdue counts only while open.
    pub fn is_overdue(&self) -> bool {
        self.is_open() && self.overdue
    }

    /// Folds one event of this item in (events must come in version order).
    pub fn apply(&mut self, fact: &Fact) {
        self.version = fact.version;
        if self.organisation_id.is_empty() {
            self.organisation_id.clone_from(&fact.organisation_id);
        }
        if self.item_id.is_empty()
            && let Target::Item(id) = fact.target()
        {
            self.item_id = id;
        }
        match &fact.payload {
            Payload::ItemOpened(o) => {
                if !o.organisation_id.is_empty() {
                    self.organisation_id.clone_from(&o.organisation_id);
                }
                self.inspection_id.clone_from(&o.inspection_id);
                self.finding_id.clone_from(&o.finding_id);
                self.kind = o.kind;
                self.pillar.clone_from(&o.pillar);
                self.question.clone_from(&o.question);
                self.due_date = o.due_date.as_ref().and_then(calendar_date);
                self.opened = true;
                self.opened_at = Some(fact.occurred_at);
                let status = if o.status == pb::ItemStatus::Unspecified as i32 {
                    pb::ItemStatus::Open as i32
                } else {
                    o.status
                };
                self.set_status(status, fact.occurred_at);
            }
            Payload::StatusChanged(c) => self.set_status(c.to, fact.occurred_at),
            Payload::DueDateChanged(c) => {
                self.due_date = c.due_date.as_ref().and_then(calendar_date);
                self.overdue = false;
            }
            Payload::ItemVerified(v) => {
                self.closed_by_inspection_id
                    .clone_from(&v.closed_by_inspection_id);
            }
            Payload::ItemReopened(_) => self.closed_by_inspection_id.clear(),
            Payload::ItemOverdue(_) => self.overdue = true,
            _ => {}
        }
    }

    fn set_status(&mut self, status: i32, at: DateTime<Utc>) {
        let was_closed = self.status == pb::ItemStatus::Closed as i32;
        self.status = status;
        if status == pb::ItemStatus::Closed as i32 {
            if !was_closed || self.closed_at.is_none() {
                self.closed_at = Some(at);
            }
        } else {
            self.closed_at = None;
        }
    }
}

/// True when the live model may apply `fact_version` directly onto a state
/// at `state_version`; otherwise it must re-fold the stored history.
pub fn item_applies_in_order(state_version: u64, fact_version: u64) -> bool {
    fact_version == state_version + 1
}

/// The state of an item from all its events, in any order (duplicates by
/// event id count once).
pub fn fold_item<'a>(facts: impl IntoIterator<Item = &'a Fact>) -> ItemState {
    let mut seen = HashSet::new();
    let mut facts: Vec<&Fact> = facts
        .into_iter()
        .filter(|f| seen.insert(f.event_id.as_str()))
        .collect();
    facts.sort_by(|a, b| fold_order(a, b));
    let mut state = ItemState::default();
    for fact in facts {
        state.apply(fact);
    }
    state
}

/// A wire date as a calendar date; `None` when unset or impossible.
pub fn calendar_date(date: &pb::CalendarDate) -> Option<NaiveDate> {
    let month = u32::try_from(date.month).ok()?;
    let day = u32::try_from(date.day).ok()?;
    NaiveDate::from_ymd_opt(date.year, month, day)
}

// ---------------------------------------------------------- inspections

/// What an inspection is, without its content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InspectionMeta {
    pub inspection_id: String,
    pub organisation_id: String,
    pub programme: String,
    pub period: String,
    pub title: String,
    /// "YYYY-MM" or "YYYY-MM-DD" as the report states it.
    pub published: String,
    /// Version of the event `published` and `period` were taken from.
    pub published_version: u64,
    /// True once InspectionPublished was seen.
    pub announced: bool,
    /// The version whose judgments and indicators are current.
    pub content_version: u64,
}

/// A graded judgment of an inspection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Judgment {
    pub judgment_id: String,
    pub pillar: String,
    /// Empty for a pillar-level judgment.
    pub question: String,
    /// `Grade` number.
    pub grade: i32,
    /// `GradeScale` number.
    pub scale: i32,
    pub carried_over: bool,
    pub last_inspected: String,
}

/// A context indicator of an inspection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Indicator {
    pub indicator_id: String,
    pub measure: String,
    pub period: String,
    pub value: f64,
    pub unit: String,
    pub comparator: String,
    pub comparator_value: Option<f64>,
}

/// One child of an inspection's content.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    Judgment(Judgment),
    Indicator(Indicator),
}

/// What an inspection event does to the inspection's content.
#[derive(Clone, Debug, PartialEq)]
pub enum ContentChange {
    /// Nothing (an older version's content, or an event without content).
    Keep,
    /// Add a child to the current version's content.
    Add(Content),
    /// A newer version: drop all children, then add this one if any.
    Replace(Option<Content>),
}

/// Folds an inspection event into `meta` and says what happens to the
/// content. Events may come in any order: content of a version older than
/// the current one is ignored, a newer version replaces the content.
pub fn apply_inspection(meta: &mut InspectionMeta, fact: &Fact) -> ContentChange {
    if meta.inspection_id.is_empty()
        && let Target::Inspection(id) = fact.target()
    {
        meta.inspection_id = id;
    }
    if meta.organisation_id.is_empty() {
        meta.organisation_id.clone_from(&fact.organisation_id);
    }
    let newest = fact.version >= meta.published_version;
    let set_published = |meta: &mut InspectionMeta, period: Option<&str>, published: &str| {
        if newest && !published.is_empty() {
            meta.published = published.to_string();
            if let Some(period) = period.filter(|p| !p.is_empty()) {
                meta.period = period.to_string();
            }
            meta.published_version = fact.version;
        }
    };
    let content = match &fact.payload {
        Payload::InspectionPublished(p) => {
            meta.announced = true;
            meta.programme.clone_from(&p.programme);
            if !p.title.is_empty() {
                meta.title.clone_from(&p.title);
            }
            if meta.period.is_empty() {
                meta.period.clone_from(&p.period);
            }
            set_published(meta, Some(&p.period), &p.published);
            None
        }
        Payload::JudgmentRecorded(j) => {
            set_published(meta, Some(&j.period), &j.published);
            Some(Content::Judgment(Judgment {
                judgment_id: j.judgment_id.clone(),
                pillar: j.pillar.clone(),
                question: j.question.clone(),
                grade: j.grade,
                scale: j.scale,
                carried_over: j.carried_over,
                last_inspected: j.last_inspected.clone(),
            }))
        }
        Payload::IndicatorRecorded(n) => {
            set_published(meta, None, &n.published);
            Some(Content::Indicator(Indicator {
                indicator_id: n.indicator_id.clone(),
                measure: n.measure.clone(),
                period: n.period.clone(),
                value: n.value,
                unit: n.unit.clone(),
                comparator: n.comparator.clone(),
                comparator_value: n.comparator_value,
            }))
        }
        _ => None,
    };
    if fact.version < meta.content_version {
        ContentChange::Keep
    } else if fact.version > meta.content_version {
        meta.content_version = fact.version;
        ContentChange::Replace(content)
    } else {
        content.map_or(ContentChange::Keep, ContentChange::Add)
    }
}

/// An inspection with its current content.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InspectionState {
    pub meta: InspectionMeta,
    pub judgments: Vec<Judgment>,
    pub indicators: Vec<Indicator>,
}

impl InspectionState {
    /// Applies an event to the metadata and the content.
    pub fn apply(&mut self, fact: &Fact) {
        match apply_inspection(&mut self.meta, fact) {
            ContentChange::Keep => {}
            ContentChange::Add(content) => self.add(content),
            ContentChange::Replace(content) => {
                self.judgments.clear();
                self.indicators.clear();
                if let Some(content) = content {
                    self.add(content);
                }
            }
        }
    }

    fn add(&mut self, content: Content) {
        match content {
            Content::Judgment(j) => {
                if !self
                    .judgments
                    .iter()
                    .any(|x| x.judgment_id == j.judgment_id)
                {
                    self.judgments.push(j);
                }
            }
            Content::Indicator(n) => {
                if !self
                    .indicators
                    .iter()
                    .any(|x| x.indicator_id == n.indicator_id)
                {
                    self.indicators.push(n);
                }
            }
        }
    }

    /// Puts children in their canonical order (ids are time-ordered UUIDs,
    /// so this is the order of the report).
    pub fn normalise(&mut self) {
        self.judgments
            .sort_by(|a, b| a.judgment_id.cmp(&b.judgment_id));
        self.indicators
            .sort_by(|a, b| a.indicator_id.cmp(&b.indicator_id));
    }
}

// -------------------------------------------------------- organisations

/// An organisation as registered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrganisationState {
    pub id: String,
    pub name: String,
    /// `OrganisationKind` number.
    pub kind: i32,
    pub most_similar_group: Vec<String>,
    pub version: u64,
}

/// Folds a registration in; an older version never overwrites a newer one.
/// Returns whether the state changed.
pub fn apply_organisation(state: &mut OrganisationState, fact: &Fact) -> bool {
    let Payload::OrganisationRegistered(r) = &fact.payload else {
        return false;
    };
    if fact.version < state.version {
        return false;
    }
    let organisation = r.organisation.clone().unwrap_or_default();
    state.id = if organisation.id.is_empty() {
        fact.aggregate_id.clone()
    } else {
        organisation.id
    };
    state.name = organisation.name;
    state.kind = organisation.kind;
    state.most_similar_group = organisation.most_similar_group;
    state.version = fact.version;
    true
}

// ------------------------------------------------------------- snapshot

/// Every read model at one moment: what the queries compute from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub organisations: BTreeMap<String, OrganisationState>,
    pub inspections: BTreeMap<String, InspectionState>,
    pub items: BTreeMap<String, ItemState>,
}

impl Snapshot {
    /// Folds events, in any order and with duplicates, into read models.
    pub fn fold(facts: impl IntoIterator<Item = Fact>) -> Snapshot {
        let mut seen = HashSet::new();
        let mut facts: Vec<Fact> = facts
            .into_iter()
            .filter(|f| seen.insert(f.event_id.clone()))
            .collect();
        facts.sort_by(fold_order);
        let mut snapshot = Snapshot::default();
        for fact in &facts {
            match fact.target() {
                Target::Organisation(id) => {
                    apply_organisation(snapshot.organisations.entry(id).or_default(), fact);
                }
                Target::Inspection(id) => {
                    snapshot.inspections.entry(id).or_default().apply(fact);
                }
                Target::Item(id) => snapshot.items.entry(id).or_default().apply(fact),
                Target::HistoryOnly => {}
            }
        }
        snapshot.normalise();
        snapshot
    }

    /// Canonical order of every inspection's children.
    pub fn normalise(&mut self) {
        for inspection in self.inspections.values_mut() {
            inspection.normalise();
        }
    }

    /// True if anything is known about the organisation.
    pub fn knows(&self, organisation_id: &str) -> bool {
        self.organisations.contains_key(organisation_id)
            || self
                .items
                .values()
                .any(|i| i.opened && i.organisation_id == organisation_id)
            || self
                .inspections
                .values()
                .any(|i| i.meta.organisation_id == organisation_id)
    }

    /// Every organisation known: registered, or with items or inspections.
    pub fn organisation_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .organisations
            .keys()
            .cloned()
            .chain(
                self.items
                    .values()
                    .filter(|i| i.opened)
                    .map(|i| i.organisation_id.clone()),
            )
            .chain(
                self.inspections
                    .values()
                    .map(|i| i.meta.organisation_id.clone()),
            )
            .filter(|id| !id.is_empty())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pb::ItemStatus as S;
    use proptest::prelude::*;

    pub(crate) fn at(day: &str) -> DateTime<Utc> {
        let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("test date");
        date.and_hms_opt(12, 0, 0).expect("noon").and_utc()
    }

    pub(crate) fn fact(
        id: &str,
        aggregate: &str,
        version: u64,
        day: &str,
        payload: Payload,
    ) -> Fact {
        Fact {
            event_id: id.to_string(),
            occurred_at: at(day),
            organisation_id: "herts".into(),
            aggregate_id: aggregate.into(),
            version,
            payload,
        }
    }

    fn opened(item: &str) -> Payload {
        Payload::ItemOpened(pb::ItemOpened {
            item_id: item.into(),
            organisation_id: "herts".into(),
            inspection_id: "i1".into(),
            kind: pb::FindingKind::AreaForImprovement as i32,
            pillar: "Effectiveness".into(),
            status: S::Open as i32,
            ..Default::default()
        })
    }

    fn status(item: &str, from: S, to: S) -> Payload {
        Payload::StatusChanged(pb::StatusChanged {
            item_id: item.into(),
            from: from as i32,
            to: to as i32,
            ..Default::default()
        })
    }

    fn item_history() -> Vec<Fact> {
        vec![
            fact("e1", "a", 1, "2020-01-01", opened("a")),
            fact(
                "e2",
                "a",
                2,
                "2020-01-05",
                status("a", S::Open, S::InProgress),
            ),
            fact(
                "e3",
                "a",
                3,
                "2020-02-01",
                Payload::ItemOverdue(pb::ItemOverdue {
                    item_id: "a".into(),
                    ..Default::default()
                }),
            ),
            fact(
                "e4",
                "a",
                4,
                "2020-03-01",
                status("a", S::InProgress, S::Closed),
            ),
        ]
    }

    #[test]
    fn item_fold_follows_the_lifecycle() {
        let history = item_history();
        let state = fold_item(&history);
        assert!(state.opened);
        assert_eq!(state.status, S::Closed as i32);
        assert_eq!(state.opened_at, Some(at("2020-01-01")));
        assert_eq!(state.closed_at, Some(at("2020-03-01")));
        assert!(state.overdue);
        assert!(!state.is_overdue(), "closed items are not overdue");
        assert_eq!(state.version, 4);
        assert_eq!(state.item_id, "a");
    }

    #[test]
    fn item_fold_ignores_arrival_order_and_duplicates() {
        let history = item_history();
        let expected = fold_item(&history);
        let mut shuffled = vec![
            history[3].clone(),
            history[1].clone(),
            history[3].clone(),
            history[0].clone(),
            history[2].clone(),
            history[1].clone(),
        ];
        assert_eq!(fold_item(&shuffled), expected);
        shuffled.reverse();
        assert_eq!(fold_item(&shuffled), expected);
    }

    #[test]
    fn reopening_clears_the_closure_and_a_new_due_date_the_overdue_flag() {
        let mut history = item_history();
        history.push(fact(
            "e5",
            "a",
            5,
            "2020-04-01",
            Payload::ItemReopened(pb::ItemReopened::default()),
        ));
        history.push(fact(
            "e6",
            "a",
            6,
            "2020-04-01",
            status("a", S::Closed, S::InProgress),
        ));
        history.push(fact(
            "e7",
            "a",
            7,
            "2020-04-02",
            Payload::DueDateChanged(pb::DueDateChanged {
                item_id: "a".into(),
                due_date: Some(pb::CalendarDate::new(2021, 1, 31)),
                ..Default::default()
            }),
        ));
        let state = fold_item(&history);
        assert_eq!(state.status, S::InProgress as i32);
        assert_eq!(state.closed_at, None);
        assert!(!state.overdue);
        assert_eq!(state.due_date, NaiveDate::from_ymd_opt(2021, 1, 31));
    }

    #[test]
    fn in_order_means_exactly_the_next_version() {
        assert!(item_applies_in_order(0, 1));
        assert!(item_applies_in_order(3, 4));
        assert!(!item_applies_in_order(3, 3));
        assert!(!item_applies_in_order(3, 5));
        assert!(!item_applies_in_order(3, 2));
    }

    fn judgment(id: &str, question: &str, grade: pb::Grade) -> Payload {
        Payload::JudgmentRecorded(pb::JudgmentRecorded {
            judgment_id: id.into(),
            inspection_id: "i1".into(),
            organisation_id: "herts".into(),
            pillar: "Effectiveness".into(),
            question: question.into(),
            grade: grade as i32,
            scale: pb::GradeScale::FourTier as i32,
            published: "2019-09".into(),
            period: "2018/19".into(),
            ..Default::default()
        })
    }

    #[test]
    fn inspection_content_is_that_of_the_newest_version_in_any_order() {
        let published = Payload::InspectionPublished(pb::InspectionPublished {
            inspection_id: "i1".into(),
            organisation_id: "herts".into(),
            programme: "PEEL".into(),
            period: "2018/19".into(),
            published: "2019-09".into(),
            ..Default::default()
        });
        let replaced = Payload::InspectionReplaced(pb::InspectionReplaced {
            inspection_id: "i1".into(),
            ..Default::default()
        });
        let events = [
            fact(
                "j1",
                "i1",
                1,
                "2019-09-01",
                judgment("j1", "Q", pb::Grade::Good),
            ),
            fact("p1", "i1", 1, "2019-09-01", published),
            fact(
                "j2",
                "i1",
                2,
                "2019-10-01",
                judgment("j2", "Q", pb::Grade::Outstanding),
            ),
            fact("r2", "i1", 2, "2019-10-01", replaced),
        ];
        let check = |order: &[usize]| {
            let mut state = InspectionState::default();
            for &i in order {
                state.apply(&events[i]);
            }
            state.normalise();
            assert_eq!(state.meta.content_version, 2, "{order:?}");
            assert_eq!(state.judgments.len(), 1, "{order:?}");
            assert_eq!(state.judgments[0].judgment_id, "j2", "{order:?}");
            assert_eq!(state.meta.programme, "PEEL");
            assert_eq!(state.meta.published, "2019-09");
            assert!(state.meta.announced);
        };
        check(&[0, 1, 2, 3]);
        check(&[3, 2, 1, 0]);
        check(&[2, 0, 3, 1]);
        check(&[1, 3, 0, 2]);
    }

    #[test]
    fn apply_inspection_says_what_to_do_with_content() {
        let mut meta = InspectionMeta::default();
        let j = |v| {
            fact(
                "x",
                "i1",
                v,
                "2019-09-01",
                judgment("x", "Q", pb::Grade::Good),
            )
        };
        assert!(matches!(
            apply_inspection(&mut meta, &j(1)),
            ContentChange::Replace(Some(_))
        ));
        assert!(matches!(
            apply_inspection(&mut meta, &j(1)),
            ContentChange::Add(_)
        ));
        assert!(matches!(
            apply_inspection(&mut meta, &j(3)),
            ContentChange::Replace(Some(_))
        ));
        assert_eq!(apply_inspection(&mut meta, &j(2)), ContentChange::Keep);
        assert_eq!(meta.content_version, 3);
    }

    #[test]
    fn organisation_keeps_the_newest_registration() {
        let registration = |name: &str| {
            Payload::OrganisationRegistered(pb::OrganisationRegistered {
                organisation: Some(pb::Organisation {
                    id: "herts".into(),
                    name: name.into(),
                    kind: 1,
                    most_similar_group: vec!["kent".into()],
                }),
            })
        };
        let mut state = OrganisationState::default();
        assert!(apply_organisation(
            &mut state,
            &fact("o2", "herts", 2, "2020-01-01", registration("New"))
        ));
        assert!(!apply_organisation(
            &mut state,
            &fact("o1", "herts", 1, "2019-01-01", registration("Old"))
        ));
        assert_eq!(state.name, "New");
        assert_eq!(state.most_similar_group, vec!["kent".to_string()]);
    }

    #[test]
    fn envelopes_without_what_the_models_need_are_refused() {
        let good = EventEnvelope {
            event_id: "e".into(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_600_000_000,
                nanos: 0,
            }),
            aggregate_version: 1,
            payload: Some(opened("a")),
            ..Default::default()
        };
        assert!(Fact::from_envelope(&good).is_ok());
        let mut bad = good.clone();
        bad.payload = None;
        assert!(Fact::from_envelope(&bad).is_err());
        let mut bad = good.clone();
        bad.occurred_at = None;
        assert!(Fact::from_envelope(&bad).is_err());
        let mut bad = good.clone();
        bad.occurred_at = Some(prost_types::Timestamp {
            seconds: 0,
            nanos: -5,
        });
        assert!(Fact::from_envelope(&bad).is_err());
        let mut bad = good;
        bad.aggregate_version = 0;
        assert!(Fact::from_envelope(&bad).is_err());
    }

    /// The live model's algorithm for items, as `store::apply_item` runs
    /// it: apply when the version is the next one, else re-fold the history
    /// received so far.
    fn live_item(arrivals: &[Fact]) -> ItemState {
        let mut state = ItemState::default();
        let mut history: Vec<Fact> = Vec::new();
        for fact in arrivals {
            if history.iter().any(|f| f.event_id == fact.event_id) {
                continue; // the history table's primary key
            }
            history.push(fact.clone());
            if item_applies_in_order(state.version, fact.version) {
                state.apply(fact);
            } else {
                state = fold_item(&history);
            }
        }
        state
    }

    fn long_item_history() -> Vec<Fact> {
        let mut history = item_history();
        history.push(fact(
            "e5",
            "a",
            5,
            "2020-04-01",
            Payload::ItemReopened(pb::ItemReopened::default()),
        ));
        history.push(fact(
            "e6",
            "a",
            6,
            "2020-04-01",
            status("a", S::Closed, S::InProgress),
        ));
        history.push(fact(
            "e7",
            "a",
            7,
            "2020-04-02",
            Payload::DueDateChanged(pb::DueDateChanged {
                item_id: "a".into(),
                due_date: Some(pb::CalendarDate::new(2021, 1, 31)),
                ..Default::default()
            }),
        ));
        history.push(fact(
            "e8",
            "a",
            8,
            "2020-05-01",
            status("a", S::InProgress, S::Superseded),
        ));
        history
    }

    proptest! {
        #[test]
        fn live_items_equal_the_fold_whatever_the_arrival_order(
            order in proptest::sample::subsequence((0..16usize).collect::<Vec<_>>(), 8..=16)
                .prop_shuffle()
        ) {
            let history = long_item_history();
            // Indices 8..16 repeat events: duplicates.
            let arrivals: Vec<Fact> = order.iter().map(|i| history[i % 8].clone()).collect();
            let mut complete = arrivals.clone();
            complete.extend(history.iter().cloned());
            prop_assert_eq!(live_item(&complete), fold_item(&history));
            prop_assert_eq!(fold_item(&arrivals), fold_item(&arrivals.iter().rev().cloned().collect::<Vec<_>>()));
        }

        #[test]
        fn inspections_fold_the_same_in_any_order(
            order in proptest::sample::subsequence((0..6usize).collect::<Vec<_>>(), 6).prop_shuffle()
        ) {
            let j = |id: &str, v, grade| fact(id, "i1", v, "2019-09-01", judgment(id, "Q", grade));
            let events = [
                j("a1", 1, pb::Grade::Good),
                j("a2", 1, pb::Grade::Inadequate),
                j("b1", 2, pb::Grade::Outstanding),
                j("b2", 2, pb::Grade::RequiresImprovement),
                fact("r2", "i1", 2, "2019-10-01", Payload::InspectionReplaced(pb::InspectionReplaced::default())),
                j("a3", 1, pb::Grade::Good),
            ];
            let mut expected = InspectionState::default();
            for e in &events {
                expected.apply(e);
            }
            expected.normalise();
            let mut state = InspectionState::default();
            for &i in &order {
                state.apply(&events[i]);
            }
            state.normalise();
            prop_assert_eq!(&state.judgments, &expected.judgments);
            prop_assert_eq!(state.meta.content_version, 2);
            let ids: Vec<&str> = state.judgments.iter().map(|j| j.judgment_id.as_str()).collect();
            prop_assert_eq!(ids, vec!["b1", "b2"]);
        }
    }

    #[test]
    fn snapshot_fold_routes_events_to_their_models() {
        let mut facts = item_history();
        facts.push(fact(
            "j1",
            "i1",
            1,
            "2019-09-01",
            judgment("j1", "Q", pb::Grade::Good),
        ));
        let snapshot = Snapshot::fold(facts);
        assert_eq!(snapshot.items.len(), 1);
        assert_eq!(snapshot.inspections["i1"].judgments.len(), 1);
        assert!(snapshot.knows("herts"));
        assert!(!snapshot.knows("kent"));
        assert_eq!(snapshot.organisation_ids(), vec!["herts".to_string()]);
    }
}
