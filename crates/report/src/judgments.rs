//! Judgments: the graded questions with the year each was last inspected.
//!
//! The "Overall summary" table is the authority where there is one: rows of
//! question, grade and last-inspected period under pillar header rows
//! (`\tEffectiveness\t\tLast inspected`). Its columns are not aligned the same
//! way in every row — Effectiveness rows read `question\tGood\t\t2016`,
//! Legitimacy rows `question\t Good\t2017\t` — so a row is read by what its
//! non-empty cells *are* (the first is the question, then the first grade and
//! the first period), not by column position.
//!
//! A report without such a table (the web layout, the five-tier reports) gets
//! its judgments from the graded question headings of its body, last inspected
//! in the inspection's own period unless the text under the grade says the
//! judgment was carried over from an earlier inspection.
//!
//! `carried_over` is `last_inspected != period`: a judgment not re-made in this
//! inspection.

use closeout_proto::Grade;

use crate::grades::parse_grade;
use crate::sections::{Outline, PILLARS};
use crate::text;
use crate::units::{Kind, Unit};

/// A judgment before the scale is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawJudgment {
    pub pillar: String,
    pub question: String,
    pub grade: Grade,
    pub last_inspected: String,
    /// 1-based line of the row or heading.
    pub line: u32,
    /// Short rule name, for the explanation.
    pub rule: &'static str,
}

/// The judgments of the summary table, if the report has one.
pub(crate) fn from_table(units: &[Unit], outline: &Outline) -> Option<Vec<RawJudgment>> {
    let start = units
        .iter()
        .enumerate()
        .position(|(i, u)| u.kind == Kind::Row && !outline.in_contents(i) && is_header(u))?;
    let mut pillar = String::new();
    let mut out = Vec::new();
    for unit in &units[start..] {
        if unit.kind != Kind::Row {
            break;
        }
        if is_header(unit) {
            if let Some(p) = unit
                .filled_cells()
                .find_map(|c| PILLARS.iter().find(|p| p.eq_ignore_ascii_case(c)))
            {
                pillar = (*p).to_string();
            }
            continue;
        }
        let cells: Vec<&str> = unit.filled_cells().collect();
        let Some((question, rest)) = cells.split_first() else {
            continue;
        };
        let Some(grade) = rest.iter().find_map(|c| parse_grade(c)) else {
            continue;
        };
        let last_inspected = rest
            .iter()
            .find_map(|c| text::period(c))
            .unwrap_or_default()
            .to_string();
        out.push(RawJudgment {
            pillar: pillar.clone(),
            question: (*question).to_string(),
            grade,
            last_inspected,
            line: unit.first_line,
            rule: "judgment.summary-table",
        });
    }
    (!out.is_empty()).then_some(out)
}

/// A pillar header row of the summary table.
fn is_header(unit: &Unit) -> bool {
    unit.filled_cells()
        .any(|c| c.eq_ignore_ascii_case("last inspected"))
}

/// The judgments of the graded question headings of the body, each followed
/// by the earlier round's judgment where the report states it ("… was good in
/// its 2018/19 assessment"): a judgment carried over from that period.
pub(crate) fn from_body(units: &[Unit], outline: &Outline, period: &str) -> Vec<RawJudgment> {
    let mut out = Vec::new();
    for q in &outline.graded {
        let pillar = q
            .pillar
            .and_then(|p| PILLARS.get(p))
            .map_or(String::new(), |p| (*p).to_string());
        out.push(RawJudgment {
            pillar: pillar.clone(),
            question: q.name.clone(),
            grade: q.grade,
            last_inspected: q.carried_from.clone().unwrap_or_else(|| period.to_string()),
            line: units.get(q.unit).map_or(0, |u| u.first_line),
            rule: q.rule,
        });
        if let Some((grade, earlier, line)) = &q.previous {
            out.push(RawJudgment {
                pillar,
                question: q.name.clone(),
                grade: *grade,
                last_inspected: earlier.clone(),
                line: *line,
                rule: "frs.previous-grade-sentence",
            });
        }
    }
    out
}
