//! The answers of the metrics service, computed from a [`Snapshot`] with no
//! I/O: the same functions answer live queries (a snapshot loaded from the
//! read-model tables) and as-of queries (a snapshot folded from the event
//! history up to the end of that day).
//!
//! Definitions (dates are those of the documents and of the recorded
//! actions, see [`Snapshot::as_of`], never the day of the import):
//!
//! * **open**: neither closed nor superseded. **closure rate**: closed ÷
//!   (open + closed); superseded items count in neither (0 with no items).
//! * **age** of an open item: whole days from the day it came to exist (its
//!   report's publication date, [`Snapshot::opened_on`]) to the as-of day
//!   (today for live queries). **days to close**: whole days from that day
//!   to the day it was (last) closed ([`Snapshot::closed_on`]). Medians and
//!   the 90th percentile are defined in [`crate::stats`].
//! * **overdue**: open and past its due date on the as-of day (due on a day:
//!   overdue from the day after), the tracker's rule.
//! * **inspection order**: by publication date (the first day of the month
//!   when only a month is given), then the text, the period and the title
//!   (so that import order never decides), then the id.
//! * **closed by the next inspection**: an item of an inspection counts when
//!   it is closed and either it was closed no later than the publication
//!   date of the next inspection of the same organisation (the last day of
//!   the month when only a month is given) or that next inspection is the
//!   one that closed it (`ItemVerified.closed_by_inspection_id`). While there
//!   is no next inspection (as of the day), nothing counts: 0, and
//!   `next_inspection_id` is empty.
//! * **organisations** of a peer group: those with an inspection or an open
//!   item as of the day; a most-similar-group member never heard of does
//!   not count.
//! * **measures** match ignoring case and runs of white space.
//! * **comparator**: the recorded comparator and comparator period. An
//!   event recorded before the comparator period existed may carry the date
//!   as its comparator ("31 March 2014", a workforce table comparing the
//!   organisation with itself): that reads as [`SAME_ORGANISATION`] with the
//!   date as `comparator_period`.
//! * **grade trend**: the latest judgment of a (pillar, question) against
//!   the judgment of the closest earlier inspection that graded it itself
//!   (not carried over); compared with `closeout_domain::compare`, so
//!   grades of the four- and five-tier scales are NOT_COMPARABLE (as is
//!   Ungraded), and FIRST when there is no earlier one.
//! * **indicators** on a scorecard: per measure, the value of the latest
//!   inspection that reported it.

use crate::model::{Indicator, InspectionState, ItemState, Judgment, Snapshot};
use crate::stats::{median, percentile};
use chrono::NaiveDate;
use closeout_domain::{NotComparable, PublishedDate, Trend, compare};
use closeout_proto as pb;
use std::collections::{BTreeMap, HashMap};

/// A query about an organisation nobody has heard of (as of that day).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("organisation {0} not found")]
pub struct UnknownOrganisation(pub String);

/// Group name of the most similar group in a peer comparison.
pub const MOST_SIMILAR_GROUP: &str = "most-similar-group";
/// Group name of all organisations in a peer comparison.
pub const ALL_ORGANISATIONS: &str = "all";
/// Comparator of an indicator compared with the organisation's own value
/// at an earlier date.
pub const SAME_ORGANISATION: &str = "same organisation";

const STATUSES: [pb::ItemStatus; 5] = [
    pb::ItemStatus::Open,
    pb::ItemStatus::InProgress,
    pb::ItemStatus::AwaitingVerification,
    pb::ItemStatus::Closed,
    pb::ItemStatus::Superseded,
];

fn items_of<'a>(
    snapshot: &'a Snapshot,
    organisation_id: &'a str,
) -> impl Iterator<Item = &'a ItemState> {
    snapshot
        .items
        .values()
        .filter(move |i| i.opened && i.organisation_id == organisation_id)
}

fn is_closed(item: &ItemState) -> bool {
    item.status == pb::ItemStatus::Closed as i32
}

/// Whole days from the report's publication to the closure; `None` unless
/// closed.
fn days_to_close(snapshot: &Snapshot, item: &ItemState) -> Option<i64> {
    let opened = snapshot.opened_on(item)?;
    let closed = snapshot.closed_on(item)?;
    Some((closed - opened).num_days().max(0))
}

fn open_age(snapshot: &Snapshot, item: &ItemState, as_of: NaiveDate) -> Option<f64> {
    let opened = snapshot.opened_on(item)?;
    item.is_open()
        .then(|| (as_of - opened).num_days().max(0) as f64)
}

fn check_known(snapshot: &Snapshot, organisation_id: &str) -> Result<(), UnknownOrganisation> {
    if snapshot.knows(organisation_id) {
        Ok(())
    } else {
        Err(UnknownOrganisation(organisation_id.to_string()))
    }
}

/// Sort key of an inspection in time.
fn inspection_order(inspection: &InspectionState) -> (NaiveDate, [String; 4]) {
    let date = PublishedDate::parse(&inspection.meta.published)
        .map(|d| d.earliest())
        .unwrap_or(NaiveDate::MIN);
    let meta = &inspection.meta;
    (
        date,
        [
            meta.published.clone(),
            meta.period.clone(),
            meta.title.clone(),
            meta.inspection_id.clone(),
        ],
    )
}

/// The organisation's inspections, oldest first.
pub fn inspections_of<'a>(
    snapshot: &'a Snapshot,
    organisation_id: &str,
) -> Vec<&'a InspectionState> {
    let mut list: Vec<&InspectionState> = snapshot
        .inspections
        .values()
        .filter(|i| i.meta.organisation_id == organisation_id)
        .collect();
    list.sort_by_cached_key(|i| inspection_order(i));
    list
}

/// The scorecard of an organisation as of `as_of`.
pub fn scorecard(
    snapshot: &Snapshot,
    organisation_id: &str,
    as_of: NaiveDate,
) -> Result<pb::Scorecard, UnknownOrganisation> {
    check_known(snapshot, organisation_id)?;
    let items: Vec<&ItemState> = items_of(snapshot, organisation_id).collect();

    let by_status = STATUSES
        .iter()
        .map(|s| pb::StatusCount {
            status: *s as i32,
            count: items.iter().filter(|i| i.status == *s as i32).count() as u32,
        })
        .collect();

    let mut kinds: BTreeMap<i32, u32> = BTreeMap::new();
    let mut pillars: BTreeMap<&str, pb::PillarCount> = BTreeMap::new();
    for item in &items {
        *kinds.entry(item.kind).or_default() += 1;
        let pillar = pillars
            .entry(item.pillar.as_str())
            .or_insert_with(|| pb::PillarCount {
                pillar: item.pillar.clone(),
                ..Default::default()
            });
        pillar.total += 1;
        if item.is_open() {
            pillar.open += 1;
        }
        if is_closed(item) {
            pillar.closed += 1;
        }
    }
    let ages: Vec<f64> = items
        .iter()
        .filter_map(|i| open_age(snapshot, i, as_of))
        .collect();
    let closing: Vec<f64> = items
        .iter()
        .filter_map(|i| days_to_close(snapshot, i))
        .map(|d| d as f64)
        .collect();

    let inspections = inspections_of(snapshot, organisation_id);
    Ok(pb::Scorecard {
        organisation_id: organisation_id.to_string(),
        as_of: Some(calendar(as_of)),
        by_status,
        by_kind: kinds
            .into_iter()
            .map(|(kind, count)| pb::KindCount { kind, count })
            .collect(),
        by_pillar: pillars.into_values().collect(),
        overdue: items.iter().filter(|i| i.overdue_on(as_of)).count() as u32,
        median_open_age_days: median(&ages),
        p90_open_age_days: percentile(&ages, 90.0),
        median_days_to_close: median(&closing),
        grades: latest_grades(&inspections),
        indicators: latest_indicators(&inspections),
        total_items: items.len() as u32,
    })
}

// Wire dates, grades and scales: the domain's one conversion.
pub use closeout_domain::wire::calendar_date as calendar;
use closeout_domain::wire::{grade as domain_grade, grade_scale as domain_scale};

/// How `later` stands against `earlier`; FIRST without an earlier one.
pub fn grade_trend(earlier: Option<&Judgment>, later: &Judgment) -> pb::GradeTrend {
    let Some(earlier) = earlier else {
        return pb::GradeTrend::First;
    };
    let pair = |j: &Judgment| Some((domain_grade(j.grade)?, domain_scale(j.scale)?));
    let (Some(a), Some(b)) = (pair(earlier), pair(later)) else {
        return pb::GradeTrend::NotComparable;
    };
    match compare(a, b) {
        Ok(Trend::Improved) => pb::GradeTrend::Improved,
        Ok(Trend::Unchanged) => pb::GradeTrend::Unchanged,
        Ok(Trend::Declined) => pb::GradeTrend::Declined,
        Err(NotComparable::DifferentScales { .. })
        | Err(NotComparable::Ungraded)
        | Err(NotComparable::NotOnScale { .. }) => pb::GradeTrend::NotComparable,
    }
}

/// Latest grade per (pillar, question), newest inspection's order first.
pub fn latest_grades(inspections: &[&InspectionState]) -> Vec<pb::QuestionGrade> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut series: HashMap<(String, String), Vec<(&InspectionState, &Judgment)>> = HashMap::new();
    for inspection in inspections.iter().rev() {
        for judgment in &inspection.judgments {
            let key = (judgment.pillar.clone(), judgment.question.clone());
            let entry = series.entry(key.clone()).or_default();
            if entry.is_empty() {
                order.push(key);
            }
            // Newest first.
            entry.push((inspection, judgment));
        }
    }
    order
        .into_iter()
        .filter_map(|key| {
            let list = series.get(&key)?;
            let (latest_inspection, latest) = *list.first()?;
            let previous = list[1..]
                .iter()
                .find(|(i, j)| {
                    !j.carried_over && i.meta.inspection_id != latest_inspection.meta.inspection_id
                })
                .copied();
            Some(pb::QuestionGrade {
                pillar: latest.pillar.clone(),
                question: latest.question.clone(),
                grade: latest.grade,
                scale: latest.scale,
                period: latest_inspection.meta.period.clone(),
                previous_grade: previous.map(|(_, j)| j.grade).unwrap_or_default(),
                previous_scale: previous.map(|(_, j)| j.scale).unwrap_or_default(),
                previous_period: previous
                    .map(|(i, _)| i.meta.period.clone())
                    .unwrap_or_default(),
                trend: grade_trend(previous.map(|(_, j)| j), latest) as i32,
                carried_over: latest.carried_over,
            })
        })
        .collect()
}

/// A measure as matched: lower case, runs of white space as one space.
pub fn measure_key(measure: &str) -> String {
    measure
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Who an indicator is compared with and the comparator's own period: a
/// recorded comparator that is a date is the organisation itself at that
/// date.
pub fn comparator_of(indicator: &Indicator) -> (String, String) {
    let recorded = indicator.comparator.trim();
    if !indicator.comparator_period.is_empty() {
        (
            indicator.comparator.clone(),
            indicator.comparator_period.clone(),
        )
    } else if !recorded.is_empty() && PublishedDate::parse(recorded).is_ok() {
        (SAME_ORGANISATION.to_string(), recorded.to_string())
    } else {
        (indicator.comparator.clone(), String::new())
    }
}

/// Per measure, the latest inspection's value, in that inspection's order.
pub fn latest_indicators(inspections: &[&InspectionState]) -> Vec<pb::IndicatorComparison> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for inspection in inspections.iter().rev() {
        for n in &inspection.indicators {
            if seen.insert(measure_key(&n.measure)) {
                let (comparator, comparator_period) = comparator_of(n);
                out.push(pb::IndicatorComparison {
                    measure: n.measure.clone(),
                    period: n.period.clone(),
                    value: n.value,
                    unit: n.unit.clone(),
                    comparator,
                    comparator_value: n.comparator_value,
                    comparator_period,
                });
            }
        }
    }
    out
}

/// Closure per inspection, for one organisation (or all when empty) and
/// one programme (or all when empty), oldest first per organisation.
pub fn closure_stats(
    snapshot: &Snapshot,
    organisation_id: &str,
    programme: &str,
) -> Vec<pb::InspectionClosure> {
    let organisations = if organisation_id.is_empty() {
        snapshot.organisation_ids()
    } else {
        vec![organisation_id.to_string()]
    };
    let mut out = Vec::new();
    for organisation in organisations {
        let all = inspections_of(snapshot, &organisation);
        let items: Vec<&ItemState> = items_of(snapshot, &organisation).collect();
        for (index, inspection) in all.iter().enumerate() {
            if !programme.is_empty() && inspection.meta.programme != programme {
                continue;
            }
            // The next inspection of the organisation, whatever programme.
            let next = all.get(index + 1);
            let deadline = next.and_then(|n| {
                PublishedDate::parse(&n.meta.published)
                    .ok()
                    .map(|d| d.anchor())
            });
            let mine: Vec<&&ItemState> = items
                .iter()
                .filter(|i| i.inspection_id == inspection.meta.inspection_id)
                .collect();
            let closed_by_next = mine
                .iter()
                .filter(|i| match (next, snapshot.closed_on(i)) {
                    (None, _) | (_, None) => false,
                    (Some(n), Some(closed)) => {
                        i.closed_by_inspection_id == n.meta.inspection_id
                            || deadline.is_some_and(|d| closed <= d)
                    }
                })
                .count() as u32;
            let mut days: Vec<u32> = mine
                .iter()
                .filter_map(|i| days_to_close(snapshot, i))
                .map(|d| u32::try_from(d).unwrap_or(u32::MAX))
                .collect();
            days.sort_unstable();
            let as_f64: Vec<f64> = days.iter().map(|d| f64::from(*d)).collect();
            out.push(pb::InspectionClosure {
                inspection_id: inspection.meta.inspection_id.clone(),
                organisation_id: organisation.clone(),
                period: inspection.meta.period.clone(),
                items: mine.len() as u32,
                closed_by_next_inspection: closed_by_next,
                next_inspection_id: next
                    .map(|n| n.meta.inspection_id.clone())
                    .unwrap_or_default(),
                median_days_to_close: median(&as_f64),
                days_to_close: days,
            });
        }
    }
    out
}

fn headline<'a>(
    snapshot: &Snapshot,
    day: NaiveDate,
    group: &str,
    organisations: usize,
    items: impl Iterator<Item = &'a ItemState>,
) -> pb::HeadlineFigures {
    let (mut open, mut closed, mut overdue) = (0u32, 0u32, 0u32);
    let mut closing = Vec::new();
    for item in items {
        if item.is_open() {
            open += 1;
        }
        if item.overdue_on(day) {
            overdue += 1;
        }
        if is_closed(item) {
            closed += 1;
        }
        if let Some(days) = days_to_close(snapshot, item) {
            closing.push(days as f64);
        }
    }
    let decided = open + closed;
    pb::HeadlineFigures {
        group: group.to_string(),
        organisations: organisations as u32,
        open_items: open,
        closed_items: closed,
        overdue_items: overdue,
        closure_rate: closure_rate(closed, decided),
        median_days_to_close: median(&closing),
    }
}

/// Closed items over open and closed ones together, 0 when there are none.
pub(crate) fn closure_rate(closed: u32, decided: u32) -> f64 {
    if decided == 0 {
        0.0
    } else {
        f64::from(closed) / f64::from(decided)
    }
}

/// Headline figures for the organisation, its most similar group (the
/// organisations its registration names, without itself, that anything is
/// known of as of `day`) and everyone, as of `day`.
pub fn peer_comparison(
    snapshot: &Snapshot,
    organisation_id: &str,
    day: NaiveDate,
) -> Result<pb::GetPeerComparisonResponse, UnknownOrganisation> {
    check_known(snapshot, organisation_id)?;
    let mut group: Vec<String> = snapshot
        .organisations
        .get(organisation_id)
        .map(|o| o.most_similar_group.clone())
        .unwrap_or_default();
    group.retain(|id| id != organisation_id && !id.is_empty() && snapshot.has_history(id));
    group.sort();
    group.dedup();
    let opened = || snapshot.items.values().filter(|i| i.opened);
    Ok(pb::GetPeerComparisonResponse {
        organisation: Some(headline(
            snapshot,
            day,
            organisation_id,
            1,
            opened().filter(|i| i.organisation_id == organisation_id),
        )),
        most_similar_group: Some(headline(
            snapshot,
            day,
            MOST_SIMILAR_GROUP,
            group.len(),
            opened().filter(|i| group.contains(&i.organisation_id)),
        )),
        all_organisations: Some(headline(
            snapshot,
            day,
            ALL_ORGANISATIONS,
            snapshot.organisations_with_history().len(),
            opened(),
        )),
    })
}

/// Every judgment of the organisation's inspections, oldest inspection
/// first, each in report order.
pub fn grade_history(
    snapshot: &Snapshot,
    organisation_id: &str,
) -> Result<Vec<pb::GradePoint>, UnknownOrganisation> {
    check_known(snapshot, organisation_id)?;
    Ok(inspections_of(snapshot, organisation_id)
        .into_iter()
        .flat_map(|inspection| {
            inspection.judgments.iter().map(move |j| pb::GradePoint {
                inspection_id: inspection.meta.inspection_id.clone(),
                period: inspection.meta.period.clone(),
                published: inspection.meta.published.clone(),
                pillar: j.pillar.clone(),
                question: j.question.clone(),
                grade: j.grade,
                scale: j.scale,
                carried_over: j.carried_over,
            })
        })
        .collect())
}

/// The values of one measure (matched by [`measure_key`]; every measure
/// when empty, grouped by measure) over the organisation's inspections,
/// oldest first; each point names its measure.
pub fn indicator_series(
    snapshot: &Snapshot,
    organisation_id: &str,
    measure: &str,
) -> Result<Vec<pb::IndicatorPoint>, UnknownOrganisation> {
    check_known(snapshot, organisation_id)?;
    let wanted = measure_key(measure);
    let mut points: Vec<(String, pb::IndicatorPoint)> = inspections_of(snapshot, organisation_id)
        .into_iter()
        .flat_map(|inspection| {
            let wanted = wanted.clone();
            inspection
                .indicators
                .iter()
                .filter(move |n| wanted.is_empty() || measure_key(&n.measure) == wanted)
                .map(move |n| {
                    let (comparator, comparator_period) = comparator_of(n);
                    (
                        measure_key(&n.measure),
                        pb::IndicatorPoint {
                            inspection_id: inspection.meta.inspection_id.clone(),
                            published: inspection.meta.published.clone(),
                            period: n.period.clone(),
                            value: n.value,
                            unit: n.unit.clone(),
                            comparator,
                            comparator_value: n.comparator_value,
                            measure: n.measure.clone(),
                            comparator_period,
                        },
                    )
                })
        })
        .collect();
    // Stable: keeps inspection order within a measure.
    points.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(points.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judgment(grade: pb::Grade, scale: pb::GradeScale) -> Judgment {
        Judgment {
            grade: grade as i32,
            scale: scale as i32,
            ..Default::default()
        }
    }

    #[test]
    fn trends_refuse_to_compare_across_scales() {
        use pb::Grade as G;
        use pb::GradeScale::{FiveTier, FourTier};
        let good4 = judgment(G::Good, FourTier);
        let ri4 = judgment(G::RequiresImprovement, FourTier);
        let good5 = judgment(G::Good, FiveTier);
        assert_eq!(grade_trend(None, &good4), pb::GradeTrend::First);
        assert_eq!(grade_trend(Some(&ri4), &good4), pb::GradeTrend::Improved);
        assert_eq!(grade_trend(Some(&good4), &ri4), pb::GradeTrend::Declined);
        assert_eq!(grade_trend(Some(&good4), &good4), pb::GradeTrend::Unchanged);
        assert_eq!(
            grade_trend(Some(&good4), &good5),
            pb::GradeTrend::NotComparable
        );
        let ungraded = judgment(G::Ungraded, FourTier);
        assert_eq!(
            grade_trend(Some(&ungraded), &good4),
            pb::GradeTrend::NotComparable
        );
        let unspecified = judgment(G::Unspecified, FourTier);
        assert_eq!(
            grade_trend(Some(&unspecified), &good4),
            pb::GradeTrend::NotComparable
        );
    }

    use crate::model::tests::fact;
    use crate::model::{Fact, Indicator};
    use closeout_proto::event_envelope::Payload;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test day")
    }

    fn published(org: &str, id: &str, published: &str) -> Fact {
        let mut f = fact(
            &format!("p-{id}"),
            id,
            1,
            "2026-11-01",
            Payload::InspectionPublished(pb::InspectionPublished {
                inspection_id: id.into(),
                organisation_id: org.into(),
                programme: "PEEL".into(),
                period: published.into(),
                published: published.into(),
                ..Default::default()
            }),
        );
        f.organisation_id = org.into();
        f
    }

    fn item(org: &str, id: &str, inspection: &str) -> Fact {
        let mut f = fact(
            &format!("o-{id}"),
            id,
            1,
            "2026-11-02",
            Payload::ItemOpened(pb::ItemOpened {
                item_id: id.into(),
                organisation_id: org.into(),
                inspection_id: inspection.into(),
                kind: pb::FindingKind::AreaForImprovement as i32,
                status: pb::ItemStatus::Open as i32,
                ..Default::default()
            }),
        );
        f.organisation_id = org.into();
        f
    }

    fn closed(id: &str, effective: &str) -> Vec<Fact> {
        let effective = day(effective);
        vec![
            fact(
                &format!("v-{id}"),
                id,
                2,
                "2026-11-03",
                Payload::ItemVerified(pb::ItemVerified {
                    item_id: id.into(),
                    closure_reference: "letter".into(),
                    effective_date: Some(calendar(effective)),
                    ..Default::default()
                }),
            ),
            fact(
                &format!("s-{id}"),
                id,
                3,
                "2026-11-03",
                Payload::StatusChanged(pb::StatusChanged {
                    item_id: id.into(),
                    to_status: pb::ItemStatus::Closed as i32,
                    ..Default::default()
                }),
            ),
        ]
    }

    #[test]
    fn closure_by_the_next_inspection_needs_a_next_inspection() {
        let mut facts = vec![
            published("herts", "i1", "2019-09"),
            item("herts", "a", "i1"),
        ];
        facts.extend(closed("a", "2020-01-15"));
        let alone = Snapshot::as_of(facts.clone(), day("2021-01-01"));
        let stats = closure_stats(&alone, "herts", "");
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].closed_by_next_inspection, 0, "no next inspection");
        assert_eq!(stats[0].next_inspection_id, "");
        assert_eq!(
            stats[0].days_to_close,
            vec![136],
            "2019-09-01 to 2020-01-15"
        );

        facts.push(published("herts", "i2", "2021-07"));
        let next = Snapshot::as_of(facts, day("2021-07-01"));
        let stats = closure_stats(&next, "herts", "");
        assert_eq!(stats[0].closed_by_next_inspection, 1);
        assert_eq!(stats[0].next_inspection_id, "i2");
    }

    #[test]
    fn peers_count_only_organisations_known_by_the_day() {
        let registration = fact(
            "r-herts",
            "herts",
            1,
            "2026-11-01",
            Payload::OrganisationRegistered(pb::OrganisationRegistered {
                organisation: Some(pb::Organisation {
                    id: "herts".into(),
                    most_similar_group: ["kent", "essex", "surrey", "herts"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    ..Default::default()
                }),
            }),
        );
        let facts = vec![
            registration,
            published("herts", "i1", "2019-09"),
            published("kent", "k1", "2021-03"),
            item("kent", "k", "k1"),
        ];
        let early = Snapshot::as_of(facts.clone(), day("2020-01-01"));
        let peers = peer_comparison(&early, "herts", day("2020-01-01")).expect("known");
        let group = peers.most_similar_group.expect("group");
        assert_eq!(group.organisations, 0, "none of the group is known yet");
        assert_eq!(peers.all_organisations.expect("all").organisations, 1);
        let later = Snapshot::as_of(facts, day("2021-03-31"));
        let peers = peer_comparison(&later, "herts", day("2021-03-31")).expect("known");
        let group = peers.most_similar_group.expect("group");
        assert_eq!((group.organisations, group.open_items), (1, 1));
    }

    #[test]
    fn measures_match_ignoring_case_and_dates_are_not_comparators() {
        let workforce = Indicator {
            measure: "Police  Officer".into(),
            comparator: "31 March 2014".into(),
            comparator_value: Some(1927.0),
            ..Default::default()
        };
        assert_eq!(
            comparator_of(&workforce),
            (SAME_ORGANISATION.to_string(), "31 March 2014".to_string())
        );
        let recorded = Indicator {
            comparator: SAME_ORGANISATION.into(),
            comparator_period: "31 March 2014".into(),
            comparator_value: Some(1927.0),
            ..Default::default()
        };
        assert_eq!(
            comparator_of(&recorded),
            (SAME_ORGANISATION.to_string(), "31 March 2014".to_string())
        );
        let national = Indicator {
            comparator: "England and Wales".into(),
            ..Default::default()
        };
        assert_eq!(
            comparator_of(&national),
            ("England and Wales".to_string(), String::new())
        );
        assert_eq!(
            measure_key(" Police  officer "),
            measure_key("POLICE OFFICER")
        );
    }

    #[test]
    fn an_as_of_before_anything_is_an_empty_scorecard() {
        let facts = vec![
            published("herts", "i1", "2019-09"),
            item("herts", "a", "i1"),
        ];
        let snapshot = Snapshot::as_of(facts, day("2014-03-31"));
        let card = scorecard(&snapshot, "herts", day("2014-03-31")).expect("known later");
        assert_eq!(card.total_items, 0);
        assert!(card.by_status.iter().all(|s| s.count == 0));
        assert!(card.grades.is_empty());
    }

    #[test]
    fn unknown_organisations_are_refused() {
        let snapshot = Snapshot::default();
        let day = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default();
        assert!(scorecard(&snapshot, "nobody", day).is_err());
        assert!(peer_comparison(&snapshot, "nobody", day).is_err());
        assert!(grade_history(&snapshot, "nobody").is_err());
        assert!(indicator_series(&snapshot, "nobody", "").is_err());
        assert!(closure_stats(&snapshot, "nobody", "").is_empty());
    }
}
