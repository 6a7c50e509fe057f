//! Context indicators: the "Force in context" figures — a measure, its period,
//! the force's value and a comparator's value.
//!
//! The tables are tab-separated. A table starts at a header row whose first
//! cell is empty (`\tHertfordshire rate\tEngland and Wales rate`); each row
//! after it, up to the next header or non-row, is one measure. Columns:
//! * the first is the organisation's value;
//! * a column headed "… change" is a change (its own indicator, below);
//! * the next other column is the comparator, named by its header without the
//!   trailing "rate", "proportion", "spend" … ("England and Wales", "Most
//!   Similar Forces", "Local population"). A row with no comparator value
//!   ("Not Stated as % of total\t1.1%\t") has no comparator.
//!
//! **Measure**: the row's label without its period, prefixed with the table's
//! caption when there is one ("Victim-based crime per 1,000 population:
//! Violence against the person"), so that rows such as "Other" stay
//! meaningful on their own.
//!
//! **Period**: from the row ("… 12 months ending 31 March 2019", "… as of 31st
//! March 2019" → "31 March 2019", "… 2018/19 projection"), else from the value
//! column's header ("FTE in post on 31 March 2019"), else from the caption lines
//! above the table ("12 months ending 30 September 2018").
//!
//! **Values and units**: "£162" → 162 "GBP", "49%" → 49 "%", "2,009" → 2009;
//! a header "FTE …" gives "FTE", a measure or caption "per 1,000 population"
//! gives "per 1,000 population".
//!
//! **Workforce tables** compare the same measure at two dates
//! (`\tFTE in post on 31 March 2019\tFTE in post on 31 March 2014\tPercentage
//! change`): one indicator per row with the later date as period, unit "FTE",
//! comparator [`SAME_ORGANISATION`] with the earlier date as comparator period
//! and its value as comparator value; the
//! percentage change is a second indicator, measure "… – Percentage change",
//! period "31 March 2014 to 31 March 2019", unit "%", no comparator.
//!
//! Identical figures printed twice (the spend per head appears in the summary
//! and again under Efficiency) are kept once, at their first line.

use std::collections::HashSet;

use closeout_proto::ParsedIndicator;

use crate::sections::{Outline, PILLARS};
use crate::text::{self, fold};
use crate::units::{Kind, Unit};

/// The comparator of a figure compared with the organisation's own figure at
/// an earlier date (the date is the comparator period).
pub(crate) const SAME_ORGANISATION: &str = "same organisation";

/// How many units above a table are searched for its caption and period.
const CAPTION_UNITS: usize = 3;

/// Extracts every indicator (see the module documentation).
pub(crate) fn extract(units: &[Unit], outline: &Outline) -> Vec<ParsedIndicator> {
    let mut out: Vec<ParsedIndicator> = Vec::new();
    let mut seen: HashSet<FigureKey> = HashSet::new();
    for (i, header) in units.iter().enumerate() {
        if outline.in_contents(i) || !is_header(header) {
            continue;
        }
        let table = Table::new(header, caption(units, i));
        for row in units[i + 1..].iter().take_while(|u| is_data_row(u)) {
            for indicator in table.read(row) {
                if seen.insert(key(&indicator)) {
                    out.push(indicator);
                }
            }
        }
    }
    out
}

fn is_header(unit: &Unit) -> bool {
    unit.kind == Kind::Row
        && unit.cells.first().is_some_and(String::is_empty)
        && unit.filled_cells().count() >= 1
        && !unit
            .filled_cells()
            .any(|c| c.eq_ignore_ascii_case("last inspected"))
}

fn is_data_row(unit: &Unit) -> bool {
    unit.kind == Kind::Row && unit.cells.first().is_some_and(|c| !c.is_empty())
}

/// What makes two printed figures the same figure.
type FigureKey = (String, String, u64, String, String, Option<u64>);

fn key(i: &ParsedIndicator) -> FigureKey {
    (
        i.measure.clone(),
        i.period.clone(),
        i.value.to_bits(),
        i.unit.clone(),
        i.comparator.clone(),
        i.comparator_value.map(f64::to_bits),
    )
}

/// A table's caption and caption period.
#[derive(Debug, Default)]
struct Caption {
    title: String,
    period: String,
}

/// The caption lines above the header at `header` (see the module
/// documentation).
fn caption(units: &[Unit], header: usize) -> Caption {
    let mut caption = Caption::default();
    for unit in units[..header].iter().rev().take(CAPTION_UNITS) {
        if unit.kind != Kind::Text || !unit.is_heading() || is_section_heading(&unit.text) {
            break;
        }
        let (title, period) = split_period(&unit.text);
        if caption.period.is_empty() {
            caption.period = period.unwrap_or_default();
        }
        if title.is_empty() {
            continue;
        }
        if caption.title.is_empty() {
            caption.title = title;
        }
        break;
    }
    caption
}

fn is_section_heading(text: &str) -> bool {
    let lower = fold(text);
    lower.ends_with(" in context")
        || lower == "overall summary"
        || lower.ends_with('?')
        || PILLARS.iter().any(|p| p.eq_ignore_ascii_case(&lower))
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Value,
    Comparator,
    Change,
    Other,
}

/// A table's header, read.
#[derive(Debug)]
struct Table {
    roles: Vec<Role>,
    comparator: String,
    /// The value column's date, from its header.
    value_period: String,
    /// The comparator column's date, when the comparator is an earlier date.
    comparator_period: String,
    /// "FTE" from the header.
    header_unit: String,
    change_header: String,
    caption: Caption,
}

impl Table {
    fn new(header: &Unit, caption: Caption) -> Self {
        let mut roles = vec![Role::Other];
        let mut table = Table {
            roles: Vec::new(),
            comparator: String::new(),
            value_period: String::new(),
            comparator_period: String::new(),
            header_unit: String::new(),
            change_header: String::new(),
            caption,
        };
        for cell in header.cells.iter().skip(1) {
            let lower = fold(cell);
            let role = if !roles.contains(&Role::Value) && !cell.is_empty() {
                let (_, period) = split_period(cell);
                table.value_period = period.unwrap_or_default();
                if lower.starts_with("fte") {
                    table.header_unit = "FTE".to_string();
                }
                Role::Value
            } else if lower.contains("change") && (lower.contains("percent") || lower.contains('%'))
            {
                table.change_header = cell.clone();
                Role::Change
            } else if !roles.contains(&Role::Comparator) && !cell.is_empty() {
                let (name, period) = split_period(cell);
                match period {
                    Some(period) => {
                        table.comparator = SAME_ORGANISATION.to_string();
                        table.comparator_period = period;
                    }
                    None => table.comparator = comparator_name(&name),
                }
                Role::Comparator
            } else {
                Role::Other
            };
            roles.push(role);
        }
        table.roles = roles;
        table
    }

    /// The indicators of one data row.
    fn read(&self, row: &Unit) -> Vec<ParsedIndicator> {
        let cell = |role: Role| {
            self.roles
                .iter()
                .position(|r| *r == role)
                .and_then(|c| row.cells.get(c))
                .map_or("", String::as_str)
        };
        let Some(label) = row.cells.first() else {
            return Vec::new();
        };
        let Some(value) = parse_number(cell(Role::Value)) else {
            return Vec::new();
        };
        let (label, row_period) = split_period(label);
        let measure = if self.caption.title.is_empty() {
            label
        } else {
            format!("{}: {label}", self.caption.title)
        };
        let period = row_period
            .or_else(|| (!self.value_period.is_empty()).then(|| self.value_period.clone()))
            .unwrap_or_else(|| self.caption.period.clone());
        let comparator_value = parse_number(cell(Role::Comparator));
        let unit = unit_of(cell(Role::Value), &self.header_unit, &measure);
        let (comparator, comparator_period) = if comparator_value.is_some() {
            (self.comparator.clone(), self.comparator_period.clone())
        } else {
            (String::new(), String::new())
        };
        let mut out = vec![ParsedIndicator {
            measure: measure.clone(),
            period: period.clone(),
            value,
            unit,
            comparator,
            comparator_value,
            line: row.first_line,
            comparator_period,
        }];
        if let Some(change) = parse_number(cell(Role::Change)) {
            let change_period = if self.comparator_period.is_empty() || period.is_empty() {
                period.clone()
            } else {
                format!("{} to {period}", self.comparator_period)
            };
            out.push(ParsedIndicator {
                measure: format!("{measure} – {}", self.change_header),
                period: change_period,
                value: change,
                unit: "%".to_string(),
                comparator: String::new(),
                comparator_value: None,
                line: row.first_line,
                comparator_period: String::new(),
            });
        }
        out
    }
}

/// "England and Wales rate" → "England and Wales".
fn comparator_name(header: &str) -> String {
    const ROLE_WORDS: &[&str] = &[
        "rate",
        "proportion",
        "spend",
        "average",
        "figure",
        "value",
        "percentage",
        "%",
    ];
    let mut name = header.trim();
    while let Some((rest, last)) = name.rsplit_once(' ') {
        if !ROLE_WORDS.iter().any(|w| last.eq_ignore_ascii_case(w)) {
            break;
        }
        name = rest.trim_end();
    }
    name.to_string()
}

fn unit_of(cell: &str, header_unit: &str, measure: &str) -> String {
    if cell.contains('%') {
        "%".to_string()
    } else if cell.contains('£') {
        "GBP".to_string()
    } else if !header_unit.is_empty() {
        header_unit.to_string()
    } else if fold(measure).contains("per 1,000 population") {
        "per 1,000 population".to_string()
    } else {
        String::new()
    }
}

/// A figure as printed: "2,009", "£162", "49%", "5.3%", "-3%".
pub(crate) fn parse_number(cell: &str) -> Option<f64> {
    let cleaned: String = cell
        .trim()
        .chars()
        .filter(|c| !matches!(c, '£' | '%' | ',' | ' ' | '\u{a0}'))
        .map(|c| if c == '−' || c == '–' { '-' } else { c })
        .collect();
    let ok = !cleaned.is_empty()
        && cleaned.len() <= 24
        && cleaned.bytes().any(|b| b.is_ascii_digit())
        && cleaned
            .bytes()
            .enumerate()
            .all(|(k, b)| b.is_ascii_digit() || b == b'.' || (k == 0 && (b == b'-' || b == b'+')));
    if !ok {
        return None;
    }
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Splits a period off a label (see the module documentation): (label,
/// period).
pub(crate) fn split_period(label: &str) -> (String, Option<String>) {
    let lower = label.to_ascii_lowercase();
    for lead in [
        "12 months ending ",
        "12 months to ",
        "year ending ",
        "twelve months ending ",
    ] {
        if let Some(at) = lower.find(lead) {
            let period = label[at..].trim().to_string();
            return (
                label[..at].trim().to_string(),
                Some(normalise_ordinals(&period)),
            );
        }
    }
    let all = text::words(label);
    for k in 0..all.len() {
        let word = all[k].of(label).to_ascii_lowercase();
        let lead_words = match word.as_str() {
            "on" => 1,
            "as" if matches!(
                all.get(k + 1)
                    .map(|w| w.of(label).to_ascii_lowercase())
                    .as_deref(),
                Some("of" | "at")
            ) =>
            {
                2
            }
            _ => continue,
        };
        let at = k + lead_words;
        if let Some((year, month, day, used)) = text::date_at(label, &all, at) {
            if at + used == all.len() {
                let date = match day {
                    Some(d) => format!("{d} {} {year}", month_name(month)),
                    None => format!("{} {year}", month_name(month)),
                };
                return (label[..all[k].start].trim().to_string(), Some(date));
            }
        }
    }
    // "… 2018/19 projection", "… 2018/19"
    let n = all.len();
    if n >= 1 {
        let last = all[n - 1].of(label);
        let (period_word, start) = if last.eq_ignore_ascii_case("projection") && n >= 2 {
            (all[n - 2].of(label), all[n - 2].start)
        } else {
            (last, all[n - 1].start)
        };
        if text::period(period_word).is_some_and(|p| p.len() > 4) {
            return (
                label[..start].trim().to_string(),
                Some(label[start..].trim().to_string()),
            );
        }
    }
    (label.trim().to_string(), None)
}

fn normalise_ordinals(period: &str) -> String {
    period
        .split(' ')
        .map(|w| match text::day(w) {
            Some(d) if w.len() > 2 => d.to_string(),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn month_name(month: u32) -> &'static str {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    usize::try_from(month)
        .ok()
        .and_then(|m| m.checked_sub(1))
        .and_then(|m| NAMES.get(m))
        .copied()
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("2,009"), Some(2009.0));
        assert_eq!(parse_number("£162"), Some(162.0));
        assert_eq!(parse_number("49%"), Some(49.0));
        assert_eq!(parse_number("5.3%"), Some(5.3));
        assert_eq!(parse_number("-3%"), Some(-3.0));
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("Good"), None);
        assert_eq!(parse_number("1-2"), None);
        assert_eq!(parse_number("."), None);
    }

    #[test]
    fn periods_split_from_labels() {
        assert_eq!(
            split_period("999 calls per 1,000 population 12 months ending 31 March 2019"),
            (
                "999 calls per 1,000 population".to_string(),
                Some("12 months ending 31 March 2019".to_string())
            )
        );
        assert_eq!(
            split_period("Proportion of female officers in post as of 31st March 2019"),
            (
                "Proportion of female officers in post".to_string(),
                Some("31 March 2019".to_string())
            )
        );
        assert_eq!(
            split_period("Spend per head of population 2018/19 projection"),
            (
                "Spend per head of population".to_string(),
                Some("2018/19 projection".to_string())
            )
        );
        assert_eq!(
            split_period("FTE in post on 31 March 2014"),
            ("FTE in post".to_string(), Some("31 March 2014".to_string()))
        );
        assert_eq!(
            split_period("Police Officer"),
            ("Police Officer".to_string(), None)
        );
        assert_eq!(split_period("12 months ending 30 September 2018").0, "");
    }

    #[test]
    fn comparator_names() {
        assert_eq!(
            comparator_name("England and Wales rate"),
            "England and Wales"
        );
        assert_eq!(
            comparator_name("Most Similar Forces rate"),
            "Most Similar Forces"
        );
        assert_eq!(
            comparator_name("Local population proportion"),
            "Local population"
        );
    }
}
