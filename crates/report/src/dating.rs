//! When a document was published, and which period it covers, where it does
//! not say so in the report's usual places ("Published on", the closing
//! "©HMICFRS" line): a service assessment page's "Last updated 20/12/2018", a
//! letter's "Sent on" date or the date under its signature, and a period
//! taken from the programme's round and the date. A person can read these,
//! so the parser does too.

use crate::profile::Profile;
use crate::text;
use crate::units::{Unit, starts_with_ignoring_case};

/// A date found in the text: "YYYY-MM-DD" or "YYYY-MM", with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dated {
    pub date: String,
    pub line: u32,
    pub rule: &'static str,
}

/// "Last updated 20/12/2018" (or "Last updated 20 December 2018").
pub(crate) fn last_updated(units: &[Unit]) -> Option<Dated> {
    units.iter().find_map(|u| {
        if u.text.len() > 60 || !starts_with_ignoring_case(&u.text, "last updated") {
            return None;
        }
        let rest = u.text.get("last updated".len()..)?;
        let rest = rest.trim_start_matches([':', ' ', '\u{a0}']).trim();
        let date = numeric_date(rest).or_else(|| written_date(rest))?;
        Some(Dated {
            date,
            line: u.first_line,
            rule: "date.last-updated",
        })
    })
}

/// A letter's date: the date on the "Sent on" line (or the line after it),
/// else the last line near the end that is only a date (under the signature).
pub(crate) fn letter_date(units: &[Unit]) -> Option<Dated> {
    for (i, u) in units.iter().enumerate() {
        if u.text.len() > 60 || !starts_with_ignoring_case(&u.text, "sent on") {
            continue;
        }
        let rest = u.text.get("sent on".len()..).unwrap_or("");
        let rest = rest.trim_start_matches([':', ' ']).trim();
        if let Some(date) = written_date(rest).or_else(|| numeric_date(rest)) {
            return Some(Dated {
                date,
                line: u.first_line,
                rule: "date.letter-sent-on",
            });
        }
        if let Some(next) = units.get(i + 1)
            && let Some(date) = only_date(&next.text)
        {
            return Some(Dated {
                date,
                line: next.first_line,
                rule: "date.letter-sent-on",
            });
        }
    }
    // A date on a line of its own before the salutation.
    let salutation = units
        .iter()
        .position(|u| starts_with_ignoring_case(&u.text, "dear "))
        .unwrap_or(0);
    if let Some(found) = units[..salutation].iter().rev().find_map(|u| {
        only_date(&u.text).map(|date| Dated {
            date,
            line: u.first_line,
            rule: "date.letter-heading",
        })
    }) {
        return Some(found);
    }
    units.iter().rev().take(6).find_map(|u| {
        only_date(&u.text).map(|date| Dated {
            date,
            line: u.first_line,
            rule: "date.letter-closing",
        })
    })
}

/// A unit that is a date and nothing else: "16 August 2023".
fn only_date(text: &str) -> Option<String> {
    let trimmed = text.trim().trim_end_matches('.');
    let all = text::words(trimmed);
    let (year, month, day, used) = text::date_at(trimmed, &all, 0)?;
    (used == all.len() && day.is_some()).then(|| text::iso(year, month, day))
}

/// "16 August 2023" at the start of `text`.
fn written_date(text: &str) -> Option<String> {
    let all = text::words(text);
    let (year, month, day, _) = text::date_at(text, &all, 0)?;
    Some(text::iso(year, month, day))
}

/// "20/12/2018" at the start of `text` (day/month/year, as the inspectorate's
/// pages write it).
fn numeric_date(text: &str) -> Option<String> {
    let token = text.split_whitespace().next()?;
    let mut parts = token.split('/');
    let day: u32 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let year_text = parts.next()?;
    if parts.next().is_some() || !(1..=31).contains(&day) || !(1..=12).contains(&month) {
        return None;
    }
    let year = text::year(year_text)?;
    Some(text::iso(year, month, Some(day)))
}

/// The period a document covers when it does not state one: a letter's (or a
/// national report's) year; otherwise the programme's round for the year.
pub(crate) fn period_for(profile: Profile, published: &str) -> Option<String> {
    let year = published.get(..4).and_then(text::year)?;
    let period = match profile {
        Profile::LetterAcceleratedCauseOfConcern
        | Profile::LetterRevisit
        | Profile::National
        | Profile::Peel2014To17 => year.to_string(),
        Profile::Peel2018To19 | Profile::Frs2018To19 => "2018/19".to_string(),
        Profile::Peel2021To22 | Profile::Frs2021To22 => "2021/22".to_string(),
        Profile::Peel2023To25 | Profile::Frs2023To25 => "2023–25".to_string(),
    };
    Some(period)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::split;
    use crate::units::build;

    #[test]
    fn last_updated_lines() {
        let units = build(&split("Loamshire 2018/19\n\nLast updated 20/12/2018\n"));
        let found = last_updated(&units);
        assert_eq!(
            found.map(|d| (d.date, d.line)),
            Some(("2018-12-20".to_string(), 3))
        );
        let units = build(&split("Last updated 31/02/x\n"));
        assert_eq!(last_updated(&units), None);
    }

    #[test]
    fn letter_dates() {
        let units = build(&split(
            "Sent on\n16 August 2023\n\nDear Chief Fire Officer,\n",
        ));
        assert_eq!(
            letter_date(&units).map(|d| d.date),
            Some("2023-08-16".to_string())
        );
        let units = build(&split(
            "Dear Sir,\n\nText.\n\nYours sincerely,\n\n12 February 2024\n",
        ));
        assert_eq!(
            letter_date(&units).map(|d| (d.date, d.rule)),
            Some(("2024-02-12".to_string(), "date.letter-closing"))
        );
    }

    #[test]
    fn periods_from_dates() {
        assert_eq!(
            period_for(Profile::LetterRevisit, "2024-02-12").as_deref(),
            Some("2024")
        );
        assert_eq!(
            period_for(Profile::Frs2018To19, "2018-12-20").as_deref(),
            Some("2018/19")
        );
        assert_eq!(period_for(Profile::National, ""), None);
    }
}
