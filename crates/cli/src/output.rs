//! Output for people (aligned tables, words for proto values) and for
//! programs (canonical JSON). Every command group prints through these, so
//! a status, a kind, a date or a time reads the same everywhere.

use crate::error::CliError;
use closeout_proto::{self as pb, FindingKind, ItemStatus};

/// A plain text table with a header row; columns sized to their content.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells print empty.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders the table, widest cell per column, two spaces between.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                if i + 1 == columns {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<width$}  "));
                }
            }
            out.trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }
}

/// `message` (proto type `closeout.v1.<type_name>`) as canonical JSON,
/// with every field that has no presence printed even at its default, so
/// a script reads `"count": 0` rather than a missing key.
fn json<M: prost::Message>(type_name: &str, message: &M) -> Result<serde_json::Value, CliError> {
    closeout_proto::json::to_json_value_all_fields(type_name, message)
        .map_err(|e| CliError::Other(e.to_string()))
}

/// Prints `message` as canonical JSON, pretty.
pub fn print_json<M: prost::Message>(type_name: &str, message: &M) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(&json(type_name, message)?)
        .map_err(|e| CliError::Other(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Prints `message` as canonical JSON on one line (a stream of changes).
pub fn print_json_line<M: prost::Message>(type_name: &str, message: &M) -> Result<(), CliError> {
    println!("{}", json(type_name, message)?);
    Ok(())
}

/// Human name of a proto enum value: `FINDING_KIND_AREA_FOR_IMPROVEMENT`
/// with prefix `FINDING_KIND_` becomes `area for improvement`.
pub fn enum_words(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
        .replace('_', " ")
}

/// Words for an item status: `in progress`.
pub fn status_words(status: i32) -> String {
    ItemStatus::try_from(status)
        .map(|s| enum_words(s.as_str_name(), "ITEM_STATUS_"))
        .unwrap_or_else(|_| format!("unknown status {status}"))
}

/// Words for a finding kind: `area for improvement`.
pub fn kind_words(kind: i32) -> String {
    FindingKind::try_from(kind)
        .map(|k| enum_words(k.as_str_name(), "FINDING_KIND_"))
        .unwrap_or_else(|_| format!("unknown kind {kind}"))
}

/// `YYYY-MM-DD`, or nothing for no date.
pub fn date_words(date: Option<&pb::CalendarDate>) -> String {
    date.map(pb::CalendarDate::iso).unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SSZ` of a timestamp (UTC).
pub fn time_words(seconds: Option<i64>) -> String {
    let Some(seconds) = seconds else {
        return String::new();
    };
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `text` on one line, at most `max` characters.
pub fn shorten(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max {
        text
    } else {
        format!(
            "{}…",
            text.chars().take(max.saturating_sub(1)).collect::<String>()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut table = Table::new(&["a", "long header"]);
        table.row(vec!["wide cell".into(), "x".into()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "a          long header");
        assert_eq!(lines[1], "wide cell  x");
    }

    #[test]
    fn formats_times_in_utc() {
        assert_eq!(time_words(Some(1_568_246_400)), "2019-09-12 00:00:00Z");
        assert_eq!(time_words(Some(0)), "1970-01-01 00:00:00Z");
        assert_eq!(time_words(None), "");
    }

    #[test]
    fn words_for_people() {
        assert_eq!(shorten("a  b\nc", 10), "a b c");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(status_words(ItemStatus::InProgress as i32), "in progress");
        assert_eq!(
            kind_words(FindingKind::CauseOfConcern as i32),
            "cause of concern"
        );
        assert_eq!(status_words(99), "unknown status 99");
    }

    #[test]
    fn json_keeps_zero_counts() {
        let response = pb::GetScorecardResponse {
            scorecard: Some(pb::Scorecard {
                organisation_id: "hertfordshire".into(),
                by_status: vec![pb::StatusCount {
                    status: ItemStatus::AwaitingVerification as i32,
                    count: 0,
                }],
                ..Default::default()
            }),
        };
        let value = json("GetScorecardResponse", &response).expect("renders");
        let status = &value["scorecard"]["byStatus"][0];
        assert_eq!(status["status"], "ITEM_STATUS_AWAITING_VERIFICATION");
        assert_eq!(status["count"], 0);
        assert_eq!(value["scorecard"]["overdue"], 0);
    }

    #[test]
    fn enum_words_strips_prefix() {
        assert_eq!(
            enum_words("FINDING_KIND_AREA_FOR_IMPROVEMENT", "FINDING_KIND_"),
            "area for improvement"
        );
    }
}
