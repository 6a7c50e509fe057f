//! Findings: the items the report asks the inspected body (or every body) to
//! act on, one finding per item, in document order.
//!
//! Rules:
//! * **Areas for improvement**: the items after an "Areas for improvement"
//!   heading. An item is a list item (any bullet style) or, for reports written
//!   without bullets, a paragraph that directs ("… should …", "… needs to …",
//!   "… must …"); the list ends at the first unit that is neither (the sample's
//!   "We set out our detailed findings below…"), a heading or a grade.
//! * **Causes of concern**: the paragraphs after a "Cause of concern" heading up
//!   to its "Recommendations" heading (or an introduction such as "To address
//!   this cause of concern, we recommend that the force should:") are one
//!   CAUSE_OF_CONCERN. Each item of the recommendations that follow is a
//!   RECOMMENDATION whose `parent` is the cause's text.
//! * **Deadlines**: an introduction ending in ":" ("Within six months, the
//!   force should:") sets the deadline of the items after it, unless an item
//!   states its own ("The force should immediately …"). When a list of
//!   lowercase fragments has no introductory deadline and only its last
//!   fragment states one ("…; and publish the analysis by July 2018."), the
//!   deadline is the whole list's. See [`crate::deadline`] for the clauses.
//! * **National recommendations**: the items of a "Recommendation(s) to all
//!   forces" / "National recommendation(s)" section, and a present-tense "We
//!   recommend that all forces …" paragraph (its list items, if it ends in
//!   ":"). A past-tense "In our 2017 legitimacy report, we recommended that all
//!   forces should …" is *not* a finding of this report but a follow-up of an
//!   earlier one (see [`crate::followups`]).
//! * **Noteworthy practice**: the paragraphs after a "Noteworthy practice" (or
//!   "Innovative practice", "Promising practice") heading, as one finding.
//! * Every finding takes the pillar and question of the unit it is written in
//!   ([`crate::sections`]): the nearest preceding question heading.

use closeout_proto::{FindingKind, ParsedFinding};

use crate::deadline;
use crate::sections::Outline;
use crate::text::{self, fold};
use crate::units::{Kind, Unit};

/// What a section heading opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    AreasForImprovement,
    CauseOfConcern,
    Recommendations,
    National,
    Noteworthy,
}

/// The findings and what was expected and not found.
#[derive(Debug, Default)]
pub(crate) struct Extracted {
    pub findings: Vec<ParsedFinding>,
    pub warnings: Vec<String>,
}

/// One list item before it becomes a finding.
#[derive(Debug, Clone)]
struct Item {
    unit: usize,
    text: String,
    first_line: u32,
    last_line: u32,
    deadline: String,
}

/// Extracts every finding (see the module documentation).
pub(crate) fn extract(units: &[Unit], outline: &Outline) -> Extracted {
    let mut out = Extracted::default();
    let mut i = 0;
    while i < units.len() {
        let unit = &units[i];
        if outline.in_contents(i) {
            i += 1;
            continue;
        }
        match section_of(unit) {
            Some(Section::AreasForImprovement) => {
                let (items, next) = list(units, i + 1);
                if items.is_empty() {
                    out.warnings.push(format!(
                        "“{}” at line {} is followed by no items",
                        unit.text, unit.first_line
                    ));
                }
                for item in items {
                    out.findings
                        .push(finding(FindingKind::AreaForImprovement, &item, "", outline));
                }
                i = next.max(i + 1);
            }
            Some(Section::CauseOfConcern) => {
                i = cause_of_concern(units, i, outline, &mut out);
            }
            Some(Section::Recommendations) => {
                let (items, next) = list(units, i + 1);
                if items.is_empty() {
                    out.warnings.push(format!(
                        "“{}” at line {} is followed by no recommendations",
                        unit.text, unit.first_line
                    ));
                }
                for item in items {
                    out.findings
                        .push(finding(FindingKind::Recommendation, &item, "", outline));
                }
                i = next.max(i + 1);
            }
            Some(Section::National) => {
                let (items, next) = list(units, i + 1);
                if items.is_empty() {
                    out.warnings.push(format!(
                        "“{}” at line {} is followed by no recommendations",
                        unit.text, unit.first_line
                    ));
                }
                for item in items {
                    out.findings.push(finding(
                        FindingKind::NationalRecommendation,
                        &item,
                        "",
                        outline,
                    ));
                }
                i = next.max(i + 1);
            }
            Some(Section::Noteworthy) => {
                let (text, first, last, next) = paragraphs(units, i + 1, false);
                if !text.is_empty() {
                    let item = Item {
                        unit: i + 1,
                        text,
                        first_line: first,
                        last_line: last,
                        deadline: String::new(),
                    };
                    out.findings
                        .push(finding(FindingKind::NoteworthyPractice, &item, "", outline));
                }
                i = next.max(i + 1);
            }
            None if unit.is_prose() && is_present_national(&unit.text) => {
                if text::ends_clause(&unit.text) && unit.text.trim_end().ends_with(':') {
                    let (items, next) = list(units, i);
                    for item in items {
                        out.findings.push(finding(
                            FindingKind::NationalRecommendation,
                            &item,
                            "",
                            outline,
                        ));
                    }
                    i = next.max(i + 1);
                } else {
                    let item = item_of(units, i, deadline::find(&unit.text).unwrap_or_default());
                    out.findings.push(finding(
                        FindingKind::NationalRecommendation,
                        &item,
                        "",
                        outline,
                    ));
                    i += 1;
                }
            }
            None => i += 1,
        }
    }
    out
}

/// Reads a cause of concern at `heading` and its recommendations; returns the
/// index after them.
fn cause_of_concern(
    units: &[Unit],
    heading: usize,
    outline: &Outline,
    out: &mut Extracted,
) -> usize {
    let line = units.get(heading).map_or(0, |u| u.first_line);
    let (text, first, last, next) = paragraphs(units, heading + 1, true);
    if text.is_empty() {
        out.warnings.push(format!(
            "“Cause of concern” at line {line} is followed by no statement of the concern"
        ));
        return heading + 1;
    }
    if is_none_statement(&text) {
        return next;
    }
    let cause = Item {
        unit: heading + 1,
        text: text.clone(),
        first_line: first,
        last_line: last,
        deadline: String::new(),
    };
    out.findings
        .push(finding(FindingKind::CauseOfConcern, &cause, "", outline));
    let recommendations_at = match units.get(next) {
        Some(u) if section_of(u) == Some(Section::Recommendations) => Some(next + 1),
        Some(u) if is_introduction(&u.text) => Some(next),
        _ => None,
    };
    let Some(start) = recommendations_at else {
        out.warnings.push(format!(
            "the cause of concern at line {first} is followed by no recommendations"
        ));
        return next;
    };
    let (items, after) = list(units, start);
    if items.is_empty() {
        out.warnings.push(format!(
            "the cause of concern at line {first} is followed by no recommendations"
        ));
    }
    for item in items {
        out.findings
            .push(finding(FindingKind::Recommendation, &item, &text, outline));
    }
    after.max(start)
}

/// A finding from an item, in the item's pillar and question.
fn finding(kind: FindingKind, item: &Item, parent: &str, outline: &Outline) -> ParsedFinding {
    ParsedFinding {
        kind: kind as i32,
        pillar: outline.pillar_of(item.unit).to_string(),
        question: outline.question_of(item.unit).to_string(),
        text: item.text.clone(),
        deadline: item.deadline.clone(),
        parent: parent.to_string(),
        line_start: item.first_line,
        line_end: item.last_line,
    }
}

fn item_of(units: &[Unit], i: usize, deadline: String) -> Item {
    let unit = &units[i];
    Item {
        unit: i,
        text: unit.text.clone(),
        first_line: unit.first_line,
        last_line: unit.last_line,
        deadline,
    }
}

/// The section a unit's text opens, if it is a section title.
fn section_of(unit: &Unit) -> Option<Section> {
    if unit.kind != Kind::Text || unit.text.len() > 60 {
        return None;
    }
    let lower = fold(&unit.text);
    let title = lower
        .trim_end_matches(|c: char| c == ':' || c.is_ascii_digit() || c.is_whitespace())
        .trim();
    Some(match title {
        "areas for improvement" | "area for improvement" => Section::AreasForImprovement,
        "cause of concern" | "causes of concern" => Section::CauseOfConcern,
        "recommendations" | "recommendation" => Section::Recommendations,
        "recommendations to all forces"
        | "recommendation to all forces"
        | "recommendations for all forces"
        | "recommendation for all forces"
        | "national recommendations"
        | "national recommendation"
        | "recommendations to all fire and rescue services"
        | "recommendation to all fire and rescue services" => Section::National,
        "noteworthy practice" | "innovative practice" | "promising practice" => Section::Noteworthy,
        _ => return None,
    })
}

/// A present-tense recommendation to every force or service.
fn is_present_national(text: &str) -> bool {
    let lower = fold(text);
    lower.starts_with("we recommend that")
        && [
            "all forces",
            "every force",
            "all chief constables",
            "all fire and rescue services",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

/// A sentence that introduces a list of recommendations ("Within six months,
/// the force should:", "To address this cause of concern, we recommend that
/// the force should:").
fn is_introduction(text: &str) -> bool {
    text.trim_end().ends_with(':') && (is_directive(text) || fold(text).contains("recommend"))
}

/// A sentence that tells someone to act.
fn is_directive(text: &str) -> bool {
    let lower = fold(text);
    [" should ", " should:", " needs to ", " need to ", " must "]
        .iter()
        .any(|w| lower.contains(w))
        || lower.starts_with("should ")
}

/// "We did not identify any causes of concern."
fn is_none_statement(text: &str) -> bool {
    let lower = fold(text);
    lower.starts_with("none")
        || lower.contains("did not identify any")
        || lower.contains("no causes of concern")
}

/// Reads list items from `from` (see the module documentation); returns them
/// and the index of the first unit after the list.
fn list(units: &[Unit], from: usize) -> (Vec<Item>, usize) {
    let mut items: Vec<Item> = Vec::new();
    let mut group_start = 0;
    let mut intro_deadline: Option<String> = None;
    let mut intro_seen = false;
    let mut j = from;
    while let Some(unit) = units.get(j) {
        if unit.kind == Kind::Row
            || unit.grade.is_some()
            || (j > from && section_of(unit).is_some())
        {
            break;
        }
        let is_item = match unit.kind {
            Kind::Bullet => true,
            Kind::Text if is_introduction(&unit.text) => {
                finish_group(&mut items[group_start..], intro_deadline.is_some());
                group_start = items.len();
                intro_deadline = deadline::find(&unit.text);
                intro_seen = true;
                j += 1;
                continue;
            }
            Kind::Text => {
                is_directive(&unit.text) || (intro_seen && text::starts_lowercase(&unit.text))
            }
            Kind::Row => false,
        };
        if !is_item {
            break;
        }
        let own = deadline::find(&unit.text);
        let deadline = own.or_else(|| intro_deadline.clone()).unwrap_or_default();
        items.push(item_of(units, j, deadline));
        j += 1;
    }
    finish_group(&mut items[group_start..], intro_deadline.is_some());
    (items, j)
}

/// Gives a list of fragments the deadline its last fragment states, when no
/// introduction gave one.
fn finish_group(group: &mut [Item], had_intro_deadline: bool) {
    if had_intro_deadline || group.len() < 2 {
        return;
    }
    if !group.iter().all(|item| text::starts_lowercase(&item.text)) {
        return;
    }
    let Some(last) = group.last().map(|item| item.deadline.clone()) else {
        return;
    };
    if last.is_empty() {
        return;
    }
    for item in group.iter_mut() {
        if item.deadline.is_empty() {
            item.deadline = last.clone();
        }
    }
}

/// The prose units from `from` up to a heading, grade, table, section title or
/// (when `stop_at_introduction`) a list introduction, joined by a space:
/// (text, first line, last line, next index).
fn paragraphs(
    units: &[Unit],
    from: usize,
    stop_at_introduction: bool,
) -> (String, u32, u32, usize) {
    let mut text = String::new();
    let (mut first, mut last) = (0, 0);
    let mut j = from;
    while let Some(unit) = units.get(j) {
        let stop = !unit.is_prose()
            || unit.is_heading()
            || unit.grade.is_some()
            || section_of(unit).is_some()
            || (stop_at_introduction && is_introduction(&unit.text));
        if stop {
            break;
        }
        if text.is_empty() {
            first = unit.first_line;
        } else {
            text.push(' ');
        }
        text.push_str(&unit.text);
        last = unit.last_line;
        j += 1;
    }
    (text, first, last, j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_and_introductions() {
        assert!(is_directive("The force should refresh guidance."));
        assert!(is_directive("The force needs to develop a cyber strategy."));
        assert!(!is_directive("We set out our detailed findings below."));
        assert!(is_introduction("Within six months, the force should:"));
        assert!(is_introduction(
            "To address this cause of concern, we recommend that the force:"
        ));
        assert!(!is_introduction("The force should act."));
        assert!(is_present_national(
            "We recommend that all forces should, by 31 March 2020:"
        ));
        assert!(!is_present_national(
            "In our 2017 legitimacy report, we recommended that all forces should:"
        ));
    }

    #[test]
    fn fragments_share_a_final_deadline() {
        let mut group: Vec<Item> = ["monitor data;", "take action on those; and", "publish it"]
            .iter()
            .map(|t| Item {
                unit: 0,
                text: (*t).to_string(),
                first_line: 1,
                last_line: 1,
                deadline: String::new(),
            })
            .collect();
        group[2].deadline = "by July 2018".to_string();
        finish_group(&mut group, false);
        assert!(group.iter().all(|i| i.deadline == "by July 2018"));
    }
}
