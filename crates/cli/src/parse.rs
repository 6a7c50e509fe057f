//! Typed values as people write them on the command line: dates, item and
//! proposal statuses, finding kinds. One rule each, so every command
//! accepts the same spellings and refuses the same way, naming the flag.

use crate::error::CliError;
use closeout_proto::{CalendarDate, FindingKind, ItemStatus, ProposalStatus};

/// Parses `YYYY-MM-DD` given to `flag` (the server checks that the day
/// exists in its month).
pub fn date(flag: &str, text: &str) -> Result<CalendarDate, CliError> {
    let bad = || CliError::Usage(format!("{flag} {text:?} is not a date like 2024-03-31"));
    let parts: Vec<&str> = text.trim().split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let number = |s: &str| s.parse::<i32>().map_err(|_| bad());
    let date = CalendarDate {
        year: number(y)?,
        month: number(m)?,
        day: number(d)?,
    };
    if !(1..=12).contains(&date.month) || !(1..=31).contains(&date.day) {
        return Err(bad());
    }
    Ok(date)
}

/// A proto enum value typed as `in-progress`, `IN_PROGRESS` or
/// `in progress`; the unspecified value is refused.
fn named<E: PartialEq>(
    flag: &str,
    text: &str,
    prefix: &str,
    from_name: fn(&str) -> Option<E>,
    unspecified: E,
    choices: &str,
) -> Result<E, CliError> {
    let name = format!(
        "{prefix}{}",
        text.trim().to_ascii_uppercase().replace(['-', ' '], "_")
    );
    from_name(&name)
        .filter(|value| *value != unspecified)
        .ok_or_else(|| CliError::Usage(format!("{flag} {text:?} is not one of {choices}")))
}

/// An item status: open, in-progress, awaiting-verification, closed,
/// superseded.
pub fn item_status(text: &str) -> Result<ItemStatus, CliError> {
    named(
        "--status",
        text,
        "ITEM_STATUS_",
        ItemStatus::from_str_name,
        ItemStatus::Unspecified,
        "open, in-progress, awaiting-verification, closed, superseded",
    )
}

/// Item statuses as wire numbers, for a repeated `--status`.
pub fn item_statuses(texts: &[String]) -> Result<Vec<i32>, CliError> {
    texts
        .iter()
        .map(|t| item_status(t).map(|s| s as i32))
        .collect()
}

/// A finding kind: area-for-improvement, cause-of-concern, ….
pub fn finding_kind(text: &str) -> Result<FindingKind, CliError> {
    named(
        "--kind",
        text,
        "FINDING_KIND_",
        FindingKind::from_str_name,
        FindingKind::Unspecified,
        "area-for-improvement, cause-of-concern, recommendation, national-recommendation, noteworthy-practice",
    )
}

/// A reconciliation proposal's status: pending, accepted, rejected,
/// auto-accepted.
pub fn proposal_status(text: &str) -> Result<ProposalStatus, CliError> {
    named(
        "--status",
        text,
        "PROPOSAL_STATUS_",
        ProposalStatus::from_str_name,
        ProposalStatus::Unspecified,
        "pending, accepted, rejected, auto-accepted",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_or_say_what_is_expected() {
        let d = date("--as-of", "2019-10-05").unwrap();
        assert_eq!((d.year, d.month, d.day), (2019, 10, 5));
        for bad in [
            "2019-13-01",
            "2019/10/05",
            "31/03/2020",
            "19-10-05",
            "yesterday",
            "2019-10-5",
        ] {
            let error = date("--as-of", bad).unwrap_err().to_string();
            assert!(error.starts_with("--as-of"), "{error}");
        }
    }

    #[test]
    fn statuses_and_kinds_parse_as_typed() {
        assert_eq!(item_status("in-progress").unwrap(), ItemStatus::InProgress);
        assert_eq!(
            item_status("AWAITING_VERIFICATION").unwrap(),
            ItemStatus::AwaitingVerification
        );
        assert!(item_status("unspecified").is_err());
        assert_eq!(
            finding_kind("area for improvement").unwrap(),
            FindingKind::AreaForImprovement
        );
        assert!(finding_kind("unspecified").is_err());
        assert!(finding_kind("nonsense").is_err());
        assert_eq!(
            proposal_status("auto-accepted").unwrap(),
            ProposalStatus::AutoAccepted
        );
        assert_eq!(proposal_status("PENDING").unwrap(), ProposalStatus::Pending);
        let error = proposal_status("done").unwrap_err().to_string();
        assert!(error.contains("pending, accepted"), "{error}");
    }
}
