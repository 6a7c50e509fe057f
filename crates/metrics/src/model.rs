//! The read models as pure folds over events, with no I/O.
//!
//! Both the live read model (the tables kept up to date by the consumers,
//! see [`crate::store`]) and the as-of queries (which fold the stored event
//! history as of a date, see [`Snapshot::as_of`]) go through the functions of
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
//!
//! Dates: history is measured from the documents and the recorded actions,
//! not from when Closeout received them (see [`Snapshot::as_of`]). An
//! inspection counts from its publication date ([`published_on`]); an item
//! from its inspection's ([`Snapshot::opened_on`]); a closure from the
//! verification's effective date, else the publication date of the
//! inspection that closed it, else the day it was recorded
//! ([`Snapshot::closed_on`]).

use chrono::{DateTime, NaiveDate, Utc};
use closeout_domain::PublishedDate;
use closeout_proto::event_envelope::Payload;
use closeout_proto::{self as pb, EventEnvelope};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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
            Payload::ItemOrganisationChanged(p) => Target::Item(or_aggregate(&p.item_id)),
            // Findings and proposals are kept in the history only: the
            // figures come from items, which carry what they need.
            Payload::FindingRecorded(_)
            | Payload::FindingWithdrawn(_)
            | Payload::OrganisationSucceeded(_)
            // Applied beside the fold, by `crate::rename`.
            | Payload::OrganisationRenamed(_)
            | Payload::ProposalMade(_)
            | Payload::ProposalAccepted(_)
            | Payload::ProposalRejected(_)
            | Payload::ProposalWithdrawn(_)
            // Notify's subscriptions and redeliveries change no figure.
            | Payload::SubscriptionCreated(_)
            | Payload::SubscriptionPaused(_)
            | Payload::SubscriptionResumed(_)
            | Payload::SubscriptionDeleted(_)
            | Payload::DeliveryRedelivered(_) => Target::HistoryOnly,
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
    /// The effective date its last verification recorded, if any.
    pub verified_on: Option<NaiveDate>,
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

    /// Open and past its due date on `day` (due on a day: overdue from the
    /// day after), the tracker's rule applied to any day in history.
    pub fn overdue_on(&self, day: NaiveDate) -> bool {
        self.is_open() && self.due_date.is_some_and(|due| due < day)
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
            Payload::StatusChanged(c) => self.set_status(c.to_status, fact.occurred_at),
            Payload::DueDateChanged(c) => {
                self.due_date = c.due_date.as_ref().and_then(calendar_date);
                self.overdue = false;
            }
            Payload::ItemVerified(v) => {
                self.closed_by_inspection_id
                    .clone_from(&v.closed_by_inspection_id);
                self.verified_on = v.effective_date.as_ref().and_then(calendar_date);
            }
            Payload::ItemReopened(_) => {
                self.closed_by_inspection_id.clear();
                self.verified_on = None;
            }
            Payload::ItemOverdue(_) => self.overdue = true,
            Payload::ItemOrganisationChanged(c) if !c.organisation_id.is_empty() => {
                self.organisation_id.clone_from(&c.organisation_id);
            }
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

/// The first day a report's publication date ("2019-09", "2019-09-27")
/// covers; `None` when it does not read as a date.
pub fn published_on(published: &str) -> Option<NaiveDate> {
    PublishedDate::parse(published).ok().map(|d| d.earliest())
}

// A wire date as a calendar date (`None` when impossible): the domain's one
// conversion.
pub use closeout_domain::wire::date as calendar_date;

/// The effective day of each of one item's events (in version order), as
/// [`Snapshot::as_of`] defines it. `dates` holds every inspection's date,
/// `item_inspection` every item's inspection.
pub(crate) fn effective_days(
    facts: &[&Fact],
    dates: &BTreeMap<String, NaiveDate>,
    item_inspection: &HashMap<&str, &str>,
) -> Vec<NaiveDate> {
    let date_of = |inspection: &str| dates.get(inspection).copied();
    let opened = facts.iter().find_map(|f| match &f.payload {
        Payload::ItemOpened(o) => {
            Some(date_of(&o.inspection_id).unwrap_or_else(|| f.occurred_at.date_naive()))
        }
        _ => None,
    });
    let mut days: Vec<NaiveDate> = Vec::with_capacity(facts.len());
    let mut previous: Option<(&Fact, NaiveDate)> = None;
    for fact in facts {
        let recorded = fact.occurred_at.date_naive();
        let day = match &fact.payload {
            Payload::ItemOpened(o) => date_of(&o.inspection_id).unwrap_or(recorded),
            Payload::ItemVerified(v) => v
                .effective_date
                .as_ref()
                .and_then(calendar_date)
                .or_else(|| {
                    Some(v.closed_by_inspection_id.as_str())
                        .filter(|id| !id.is_empty())
                        .and_then(date_of)
                })
                .unwrap_or(recorded),
            Payload::ItemSuperseded(s) => item_inspection
                .get(s.superseding_item_id.as_str())
                .and_then(|inspection| date_of(inspection))
                .unwrap_or(recorded),
            Payload::StatusChanged(_) => match previous {
                Some((
                    before @ Fact {
                        payload: Payload::ItemVerified(_) | Payload::ItemSuperseded(_),
                        ..
                    },
                    before_day,
                )) if before.version + 1 == fact.version => before_day,
                _ => recorded,
            },
            // A rename corrects whom the item was always directed at.
            Payload::ItemOrganisationChanged(_) => opened.unwrap_or(recorded),
            _ => recorded,
        };
        let day = opened.map_or(day, |o| day.max(o));
        previous = Some((fact, day));
        days.push(day);
    }
    days
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
    /// The comparator's own date when it differs from the period; empty in
    /// events recorded before the field existed.
    pub comparator_period: String,
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
                comparator_period: n.comparator_period.clone(),
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
    /// Organisations known at any time (set by [`Snapshot::as_of`], so that
    /// a day before anything is known answers empty figures, not "unknown").
    pub ever_known: BTreeSet<String>,
    /// Inspections the snapshot knows the dates of but does not count
    /// (another organisation's report that opened items of this one, a
    /// national report): used only to date items.
    pub dating: BTreeMap<String, NaiveDate>,
}

impl Snapshot {
    /// The snapshot as things stood at the end of `day`, from events in any
    /// order (duplicates count once), dated by what they record:
    ///
    /// * organisation registrations are timeless (the newest version);
    /// * an inspection and its content count from its publication date
    ///   (the newest version's content: a corrected document replaces the
    ///   text as if it had always read so); one whose date does not read
    ///   counts from the day its first event was recorded;
    /// * an item's events count from their effective day: `ItemOpened` the
    ///   publication date of its inspection; `ItemVerified` its
    ///   `effective_date`, else the publication date of the inspection that
    ///   closed it; `ItemSuperseded` the publication date of the
    ///   superseding item's inspection; the `StatusChanged` of the same
    ///   command (the next version) the same day; `ItemOrganisationChanged`
    ///   (a rename corrects whom the item was always directed at) its
    ///   opening day; every other event the day it was recorded. No event
    ///   counts before the item's opening day.
    ///   The item is the fold, in version order, of its events that count
    ///   by `day`.
    pub fn as_of(facts: impl IntoIterator<Item = Fact>, day: NaiveDate) -> Snapshot {
        let mut seen = HashSet::new();
        let mut facts: Vec<Fact> = facts
            .into_iter()
            .filter(|f| seen.insert(f.event_id.clone()))
            .collect();
        facts.sort_by(fold_order);
        let mut snapshot = Snapshot::default();
        let mut first_seen: HashMap<String, NaiveDate> = HashMap::new();
        let mut item_facts: BTreeMap<String, Vec<&Fact>> = BTreeMap::new();
        for fact in &facts {
            match fact.target() {
                Target::Organisation(id) => {
                    apply_organisation(snapshot.organisations.entry(id).or_default(), fact);
                }
                Target::Inspection(id) => {
                    let recorded = fact.occurred_at.date_naive();
                    first_seen
                        .entry(id.clone())
                        .and_modify(|d| *d = (*d).min(recorded))
                        .or_insert(recorded);
                    snapshot.inspections.entry(id).or_default().apply(fact);
                }
                Target::Item(id) => item_facts.entry(id).or_default().push(fact),
                Target::HistoryOnly => {}
            }
        }
        // Every inspection's date, counted or not.
        let dates: BTreeMap<String, NaiveDate> = snapshot
            .inspections
            .iter()
            .filter_map(|(id, inspection)| {
                published_on(&inspection.meta.published)
                    .or_else(|| first_seen.get(id).copied())
                    .map(|d| (id.clone(), d))
            })
            .collect();
        // The inspection each item came from, for supersessions.
        let item_inspection: HashMap<&str, &str> = item_facts
            .iter()
            .flat_map(|(id, facts)| {
                facts.iter().filter_map(move |f| match &f.payload {
                    Payload::ItemOpened(o) => Some((id.as_str(), o.inspection_id.as_str())),
                    _ => None,
                })
            })
            .collect();
        for (id, facts) in &item_facts {
            let days = effective_days(facts, &dates, &item_inspection);
            let mut state = ItemState::default();
            for (fact, effective) in facts.iter().zip(days) {
                if effective <= day {
                    state.apply(fact);
                }
            }
            if state.opened {
                snapshot.items.insert(id.clone(), state);
            }
        }
        snapshot.ever_known = snapshot.organisation_ids().into_iter().collect();
        for (id, date) in &dates {
            if *date > day {
                snapshot.inspections.remove(id);
            }
        }
        snapshot.dating = dates;
        snapshot.normalise();
        snapshot
    }

    /// The day an inspection counts from: its publication date, else (an
    /// inspection known only to date items) the recorded date.
    pub fn inspection_date(&self, inspection_id: &str) -> Option<NaiveDate> {
        self.inspections
            .get(inspection_id)
            .and_then(|i| published_on(&i.meta.published))
            .or_else(|| self.dating.get(inspection_id).copied())
    }

    /// The day an item came to exist: its report's publication date, else
    /// the day it was opened.
    pub fn opened_on(&self, item: &ItemState) -> Option<NaiveDate> {
        self.inspection_date(&item.inspection_id)
            .or_else(|| item.opened_at.map(|t| t.date_naive()))
    }

    /// The day a closed item was closed: the verification's effective date,
    /// else the publication date of the inspection that closed it, else the
    /// day the closure was recorded; never before it was opened. `None`
    /// unless closed.
    pub fn closed_on(&self, item: &ItemState) -> Option<NaiveDate> {
        if item.status != pb::ItemStatus::Closed as i32 {
            return None;
        }
        let closed = item
            .verified_on
            .or_else(|| {
                Some(item.closed_by_inspection_id.as_str())
                    .filter(|id| !id.is_empty())
                    .and_then(|id| self.inspection_date(id))
            })
            .or_else(|| item.closed_at.map(|t| t.date_naive()))?;
        Some(match self.opened_on(item) {
            Some(opened) => closed.max(opened),
            None => closed,
        })
    }

    /// Canonical order of every inspection's children.
    pub fn normalise(&mut self) {
        for inspection in self.inspections.values_mut() {
            inspection.normalise();
        }
    }

    /// True if anything is known about the organisation (at any time, for
    /// an as-of snapshot).
    pub fn knows(&self, organisation_id: &str) -> bool {
        self.ever_known.contains(organisation_id)
            || self.organisations.contains_key(organisation_id)
            || self
                .items
                .values()
                .any(|i| i.opened && i.organisation_id == organisation_id)
            || self
                .inspections
                .values()
                .any(|i| i.meta.organisation_id == organisation_id)
    }

    /// True if the organisation has an inspection or an opened item in this
    /// snapshot (a registration alone does not count).
    pub fn has_history(&self, organisation_id: &str) -> bool {
        self.items
            .values()
            .any(|i| i.opened && i.organisation_id == organisation_id)
            || self
                .inspections
                .values()
                .any(|i| i.meta.organisation_id == organisation_id)
    }

    /// Organisations with an inspection or an opened item, sorted.
    pub fn organisations_with_history(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .items
            .values()
            .filter(|i| i.opened)
            .map(|i| i.organisation_id.clone())
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
            from_status: from as i32,
            to_status: to as i32,
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
        assert!(
            !state.overdue_on(NaiveDate::MAX),
            "closed items are not overdue"
        );
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

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test day")
    }

    fn inspection_published(id: &str, published: &str, recorded: &str) -> Fact {
        fact(
            &format!("p-{id}"),
            id,
            1,
            recorded,
            Payload::InspectionPublished(pb::InspectionPublished {
                inspection_id: id.into(),
                organisation_id: "herts".into(),
                programme: "PEEL".into(),
                published: published.into(),
                ..Default::default()
            }),
        )
    }

    /// Reports of 2019-09 and 2022-06 imported in 2026: item `a` of the
    /// first, started in 2026, verified in 2026 with a closure letter of
    /// 2020-01-15; item `b` of the first closed by the second report.
    fn backfilled() -> Vec<Fact> {
        let verified = |item: &str, effective: Option<pb::CalendarDate>, by: &str| {
            Payload::ItemVerified(pb::ItemVerified {
                item_id: item.into(),
                closure_reference: "letter".into(),
                closed_by_inspection_id: by.into(),
                effective_date: effective,
            })
        };
        vec![
            inspection_published("i1", "2019-09", "2026-11-01"),
            inspection_published("i2", "2022-06", "2026-11-01"),
            fact("a1", "a", 1, "2026-11-02", opened("a")),
            fact(
                "a2",
                "a",
                2,
                "2026-11-03",
                status("a", S::Open, S::InProgress),
            ),
            fact(
                "a3",
                "a",
                3,
                "2026-11-04",
                verified("a", Some(pb::CalendarDate::new(2020, 1, 15)), ""),
            ),
            fact(
                "a4",
                "a",
                4,
                "2026-11-04",
                status("a", S::InProgress, S::Closed),
            ),
            fact("b1", "b", 1, "2026-11-02", opened("b")),
            fact("b2", "b", 2, "2026-11-05", verified("b", None, "i2")),
            fact("b3", "b", 3, "2026-11-05", status("b", S::Open, S::Closed)),
        ]
    }

    #[test]
    fn as_of_dates_items_by_their_report_and_closures_by_what_they_record() {
        let facts = backfilled();
        let before = Snapshot::as_of(facts.clone(), day("2019-08-31"));
        assert!(before.items.is_empty(), "nothing before publication");
        assert!(before.inspections.is_empty());
        assert!(before.knows("herts"), "known at some time");

        let published = Snapshot::as_of(facts.clone(), day("2019-09-01"));
        assert_eq!(published.items.len(), 2);
        assert_eq!(
            published.items["a"].status,
            S::Open as i32,
            "started in 2026"
        );
        assert_eq!(published.inspections.len(), 1);
        let a = &published.items["a"];
        assert_eq!(published.opened_on(a), Some(day("2019-09-01")));

        let letter = Snapshot::as_of(facts.clone(), day("2020-01-15"));
        let a = &letter.items["a"];
        assert_eq!(a.status, S::Closed as i32);
        assert_eq!(letter.closed_on(a), Some(day("2020-01-15")));
        assert_eq!(letter.items["b"].status, S::Open as i32);

        let later = Snapshot::as_of(facts.clone(), day("2022-06-01"));
        let b = &later.items["b"];
        assert_eq!(b.status, S::Closed as i32);
        assert_eq!(later.closed_on(b), Some(day("2022-06-01")));

        let mut reversed = facts;
        reversed.reverse();
        assert_eq!(
            Snapshot::as_of(reversed, day("2020-01-15")),
            letter,
            "arrival order does not matter"
        );
    }

    #[test]
    fn a_supersession_counts_from_the_superseding_report() {
        let mut newer = opened("n");
        if let Payload::ItemOpened(o) = &mut newer {
            o.inspection_id = "i2".into();
        }
        let facts = vec![
            inspection_published("i1", "2019-09", "2026-11-01"),
            inspection_published("i2", "2022-06", "2026-11-01"),
            fact("c1", "c", 1, "2026-11-02", opened("c")),
            fact("n1", "n", 1, "2026-11-02", newer),
            fact(
                "c2",
                "c",
                2,
                "2026-11-03",
                Payload::ItemSuperseded(pb::ItemSuperseded {
                    item_id: "c".into(),
                    superseding_item_id: "n".into(),
                    ..Default::default()
                }),
            ),
            fact(
                "c3",
                "c",
                3,
                "2026-11-03",
                status("c", S::Open, S::Superseded),
            ),
        ];
        let before = Snapshot::as_of(facts.clone(), day("2022-05-31"));
        assert_eq!(before.items["c"].status, S::Open as i32);
        assert!(!before.items.contains_key("n"));
        let after = Snapshot::as_of(facts, day("2022-06-01"));
        assert_eq!(after.items["c"].status, S::Superseded as i32);
        assert_eq!(after.items["n"].status, S::Open as i32);
    }

    #[test]
    fn overdue_is_the_due_date_passed_on_the_day() {
        let item = ItemState {
            status: S::InProgress as i32,
            due_date: Some(day("2020-03-31")),
            ..Default::default()
        };
        assert!(!item.overdue_on(day("2020-03-31")), "due that day");
        assert!(item.overdue_on(day("2020-04-01")));
        let closed = ItemState {
            status: S::Closed as i32,
            ..item
        };
        assert!(!closed.overdue_on(day("2021-01-01")));
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
        let snapshot = Snapshot::as_of(facts, NaiveDate::MAX);
        assert_eq!(snapshot.items.len(), 1);
        assert_eq!(snapshot.inspections["i1"].judgments.len(), 1);
        assert!(snapshot.knows("herts"));
        assert!(!snapshot.knows("kent"));
        assert_eq!(snapshot.organisation_ids(), vec!["herts".to_string()]);
    }
}
