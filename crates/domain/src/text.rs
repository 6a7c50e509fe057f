//! Limits and Unicode hygiene for every text a caller sends: how long a
//! field may be, which characters it may hold, which evidence addresses are
//! acceptable and which due-date years are sane. Pure rules, so that every
//! service refuses the same hostile input with the same words, before it
//! touches anything. A problem is a [`TextProblem`]; the service names the
//! field and answers INVALID_ARGUMENT.
//!
//! Bidirectional controls can make a note or an organisation's name read
//! differently from what is stored ("trojan source"), and text made only of
//! zero-width characters looks empty while not being so: both are refused.
//! Organisation names are normalised ([`normalise_name`]) before they are
//! turned into slugs, so look-alike names land on the same organisation.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use unicode_normalization::UnicodeNormalization;

/// Longest free text (notes, reasons, references, evidence descriptions).
pub const MAX_TEXT: usize = 10_000;
/// Longest short text: owner names, filters, names.
pub const MAX_SHORT_TEXT: usize = 200;
/// Longest evidence address.
pub const MAX_URI: usize = 2048;
/// Longest id of any kind (item, finding, inspection, proposal ids are
/// UUIDs; organisation ids are at most 64 characters).
pub const MAX_ID: usize = 100;
/// The earliest due-date year anyone may set.
pub const MIN_DUE_YEAR: i32 = 1900;
/// The latest due-date year anyone may set.
pub const MAX_DUE_YEAR: i32 = 2200;
/// The schemes an evidence address may use.
pub const EVIDENCE_SCHEMES: [&str; 4] = ["https", "http", "mailto", "urn"];

/// What is wrong with a piece of text, in words fit for a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextProblem {
    TooLong { max: usize },
    ControlCharacter,
    BidiControl,
    InvisibleOnly,
    Scheme(String),
    NotAnAddress,
    YearOutOfRange(i32),
}

impl fmt::Display for TextProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextProblem::TooLong { max } => write!(f, "must be at most {max} characters"),
            TextProblem::ControlCharacter => f.write_str("must not contain control characters"),
            TextProblem::BidiControl => f.write_str(
                "must not contain bidirectional control characters (U+202A to U+202E, U+2066 to U+2069)",
            ),
            TextProblem::InvisibleOnly => {
                f.write_str("must not be made only of zero-width or invisible characters")
            }
            TextProblem::Scheme(scheme) => write!(
                f,
                "scheme {scheme:?} is not allowed; use one of {}",
                EVIDENCE_SCHEMES.join(", ")
            ),
            TextProblem::NotAnAddress => {
                f.write_str("must be an address such as https://example.org/evidence")
            }
            TextProblem::YearOutOfRange(year) => write!(
                f,
                "year {year} is outside {MIN_DUE_YEAR} to {MAX_DUE_YEAR}"
            ),
        }
    }
}

impl std::error::Error for TextProblem {}

/// A bidirectional embedding, override or isolate control.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A zero-width character (space, joiners, word joiner, byte-order mark).
pub fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Checks free text of at most `max` characters: no control characters
/// but newlines and tabs, no bidirectional controls, and, when not empty,
/// at least one visible character. Emptiness itself is the caller's to
/// judge (optional fields may be empty).
pub fn check_text(value: &str, max: usize) -> Result<(), TextProblem> {
    if value.chars().count() > max {
        return Err(TextProblem::TooLong { max });
    }
    if value.chars().any(is_bidi_control) {
        return Err(TextProblem::BidiControl);
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(TextProblem::ControlCharacter);
    }
    if !value.is_empty()
        && value.chars().any(is_zero_width)
        && value.chars().all(|c| is_zero_width(c) || c.is_whitespace())
    {
        return Err(TextProblem::InvisibleOnly);
    }
    Ok(())
}

/// Checks a one-line text (an owner's name, a filter, an id): as
/// [`check_text`], and no line breaks or tabs either.
pub fn check_line(value: &str, max: usize) -> Result<(), TextProblem> {
    check_text(value, max)?;
    if value.chars().any(|c| c.is_control()) {
        return Err(TextProblem::ControlCharacter);
    }
    Ok(())
}

/// Checks an evidence address: at most [`MAX_URI`] characters, no spaces
/// or controls, and one of the [`EVIDENCE_SCHEMES`] (so no `javascript:`
/// or `data:`). An empty address is the caller's to judge.
pub fn check_evidence_uri(value: &str) -> Result<(), TextProblem> {
    check_line(value, MAX_URI)?;
    if value.is_empty() {
        return Ok(());
    }
    if value.chars().any(char::is_whitespace) {
        return Err(TextProblem::NotAnAddress);
    }
    let Some((scheme, rest)) = value.split_once(':') else {
        return Err(TextProblem::NotAnAddress);
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(TextProblem::NotAnAddress);
    }
    let scheme = scheme.to_ascii_lowercase();
    if !EVIDENCE_SCHEMES.contains(&scheme.as_str()) {
        return Err(TextProblem::Scheme(scheme));
    }
    let hierarchical = scheme == "https" || scheme == "http";
    if hierarchical {
        let host = rest
            .strip_prefix("//")
            .map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
        if host.is_none_or(str::is_empty) {
            return Err(TextProblem::NotAnAddress);
        }
    } else if rest.is_empty() {
        return Err(TextProblem::NotAnAddress);
    }
    Ok(())
}

/// Checks that a due date's year is sane ([`MIN_DUE_YEAR`] to
/// [`MAX_DUE_YEAR`]), for every role.
pub fn check_due_year(date: NaiveDate) -> Result<(), TextProblem> {
    check_year(date.year())
}

/// As [`check_due_year`], for a year not yet made into a date.
pub fn check_year(year: i32) -> Result<(), TextProblem> {
    if (MIN_DUE_YEAR..=MAX_DUE_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(TextProblem::YearOutOfRange(year))
    }
}

/// An organisation's name as compared: compatibility-normalised (NFKC, so
/// full-width and ligature look-alikes become plain letters) with
/// zero-width and bidirectional controls removed.
pub fn normalise_name(name: &str) -> String {
    name.nfkc()
        .filter(|&c| !is_zero_width(c) && !is_bidi_control(c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits() {
        assert_eq!(check_text("fine\nnote\twith tab", 100), Ok(()));
        assert_eq!(check_text("", 100), Ok(()));
        assert_eq!(check_text("   ", 100), Ok(()));
        assert_eq!(
            check_text(&"x".repeat(101), 100),
            Err(TextProblem::TooLong { max: 100 })
        );
        assert_eq!(
            check_text("a\u{0}b", 100),
            Err(TextProblem::ControlCharacter)
        );
        for bidi in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'] {
            assert_eq!(
                check_text(&format!("done{bidi}enod"), 100),
                Err(TextProblem::BidiControl)
            );
        }
        for zw in ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'] {
            assert_eq!(
                check_text(&format!("{zw}{zw} {zw}"), 100),
                Err(TextProblem::InvisibleOnly)
            );
        }
        // A joiner inside real words is fine (some scripts need it).
        assert_eq!(check_text("pre\u{200D}fix", 100), Ok(()));
        assert_eq!(check_line("a\nb", 100), Err(TextProblem::ControlCharacter));
    }

    #[test]
    fn evidence_addresses() {
        for ok in [
            "https://example.org/report.pdf",
            "http://intranet.local/x?y=1",
            "HTTPS://EXAMPLE.ORG",
            "mailto:chief@example.org",
            "urn:isbn:0451450523",
            "",
        ] {
            assert_eq!(check_evidence_uri(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check_evidence_uri("javascript:alert(1)"),
            Err(TextProblem::Scheme("javascript".into()))
        );
        assert_eq!(
            check_evidence_uri("data:text/html,<b>x</b>"),
            Err(TextProblem::Scheme("data".into()))
        );
        assert_eq!(
            check_evidence_uri("JavaScript:alert(1)"),
            Err(TextProblem::Scheme("javascript".into()))
        );
        for bad in [
            "no scheme",
            "https:",
            "https:///path",
            "1http://x",
            "http://a b",
        ] {
            assert!(check_evidence_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn due_years() {
        let d = |y| NaiveDate::from_ymd_opt(y, 1, 1).unwrap();
        assert_eq!(check_due_year(d(2026)), Ok(()));
        assert_eq!(check_due_year(d(1900)), Ok(()));
        assert_eq!(check_due_year(d(2200)), Ok(()));
        assert_eq!(
            check_due_year(d(9999)),
            Err(TextProblem::YearOutOfRange(9999))
        );
        assert_eq!(check_due_year(d(0)), Err(TextProblem::YearOutOfRange(0)));
        assert_eq!(check_due_year(d(-1)), Err(TextProblem::YearOutOfRange(-1)));
    }

    #[test]
    fn names_normalise() {
        assert_eq!(normalise_name("Hertford\u{202E}shire"), "Hertfordshire");
        assert_eq!(normalise_name("Hertford\u{200B}shire"), "Hertfordshire");
        assert_eq!(
            normalise_name("Ｈｅｒｔｆｏｒｄｓｈｉｒｅ"),
            "Hertfordshire"
        );
        assert_eq!(normalise_name("ﬁre"), "fire");
    }
}
