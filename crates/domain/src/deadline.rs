//! Deadline clauses ("should immediately", "within six months", "by July
//! 2018") turned into due dates relative to the report's publication date.
//!
//! Rules, in one place so every service derives the same date:
//!
//! * The *publication anchor* is the publication day when the report gives
//!   one, otherwise the **last day of the publication month** (reports are
//!   often dated only "September 2019"; nothing should fall due before the
//!   report could have been read).
//! * `immediately` (or `with immediate effect`): due on the anchor.
//! * `within [the [next]] N days|weeks|months|years` (N in digits, or a word:
//!   a/an, one..twelve, eighteen, twenty, twenty-four, thirty, sixty, ninety):
//!   the anchor plus N. Months and years
//!   are calendar months; from a month-only anchor the result is the last day
//!   of the month N months later (September 2019 + 6 months = 31 March 2020);
//!   from a known day it is the same day of month, clamped to the month's end.
//!   Trailing words ("of the publication of this report") are ignored.
//! * `by 31 March 2020`: that day. `by July 2018` / `by the end of March 2020`:
//!   the last day of that month. `by 2020` / `by the end of 2020`: 31 December.
//! * `by [the end of] spring|summer|autumn|winter YEAR`: the end of the
//!   meteorological season: spring 31 May, summer 31 August, autumn 30
//!   November; winter YEAR (or YEAR/YY) runs December YEAR to February YEAR+1
//!   and ends on the last day of that February.
//! * `by the end of the year`: 31 December of the publication year;
//!   `by the end of the financial year`: the next 31 March on or after the
//!   publication month (the UK public-sector financial year).
//! * "no later than" is read as "by"; a leading "should" is ignored.
//! * A dated clause ("by ...") falling before the publication date is an
//!   error: it is a transcription mistake, not a deadline.
//! * An empty clause means "no deadline": `Ok(None)`. Anything else not
//!   recognised is `Err(DeadlineError::Unrecognised)`.
//!
//! [`find_deadline_clause`] finds the clause in a recommendation's text; every
//! clause it finds is one [`due_date`] recognises.

use std::fmt;

use crate::DomainError;
use crate::period::{self, LATEST_YEAR, day_of_month, month_number};
use chrono::{Datelike, Days, Months, NaiveDate};

/// Why a deadline clause gives no due date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadlineError {
    #[error("unrecognised deadline clause {0:?}")]
    Unrecognised(String),
    #[error("deadline clause {0:?} names a date that does not exist")]
    NoSuchDate(String),
    #[error("deadline clause {0:?} is too far in the future")]
    OutOfRange(String),
    #[error("deadline clause {clause:?} falls due on {due}, before publication in {published}")]
    BeforePublication {
        clause: String,
        due: NaiveDate,
        published: PublishedDate,
    },
}

/// When a report was published: a year and month, and the day when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublishedDate {
    year: i32,
    month: u32,
    day: Option<u32>,
}

impl PublishedDate {
    /// A publication date; the month and (if given) day must exist.
    pub fn new(year: i32, month: u32, day: Option<u32>) -> Result<Self, DomainError> {
        let invalid = || {
            DomainError::InvalidPublishedDate(match day {
                Some(d) => format!("{year:04}-{month:02}-{d:02}"),
                None => format!("{year:04}-{month:02}"),
            })
        };
        if !(period::EARLIEST_YEAR..=LATEST_YEAR).contains(&year) {
            return Err(invalid());
        }
        NaiveDate::from_ymd_opt(year, month, day.unwrap_or(1)).ok_or_else(invalid)?;
        Ok(Self { year, month, day })
    }

    /// Parses "2019-09", "2019-09-12", "September 2019" or "12 September 2019"
    /// (month names case-insensitive, three-letter abbreviations accepted).
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let invalid = || DomainError::InvalidPublishedDate(text.to_string());
        let words: Vec<String> = text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let num = |s: &str, len: usize| {
            (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        let (year, month, day): (Option<i32>, Option<u32>, Option<u32>) = match words.as_slice() {
            [iso] => match iso.split('-').collect::<Vec<_>>().as_slice() {
                [y, m] => (period::year(y), num(m, 2), None),
                [y, m, d] => (
                    period::year(y),
                    num(m, 2),
                    Some(num(d, 2).ok_or_else(invalid)?),
                ),
                _ => return Err(invalid()),
            },
            [m, y] => (period::year(y), month_number(m), None),
            [d, m, y] => (
                period::year(y),
                month_number(m),
                Some(day_of_month(d).ok_or_else(invalid)?),
            ),
            _ => return Err(invalid()),
        };
        let (Some(year), Some(month)) = (year, month) else {
            return Err(invalid());
        };
        Self::new(year, month, day).map_err(|_| invalid())
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn month(&self) -> u32 {
        self.month
    }

    pub fn day(&self) -> Option<u32> {
        self.day
    }

    /// The earliest day the report can have been published: the day, or the
    /// first of the month.
    pub fn earliest(&self) -> NaiveDate {
        ymd(self.year, self.month, self.day.unwrap_or(1))
    }

    /// The day deadlines count from: the day, or the last day of the month.
    pub fn anchor(&self) -> NaiveDate {
        match self.day {
            Some(d) => ymd(self.year, self.month, d),
            None => last_day_of_month(self.year, self.month),
        }
    }
}

impl fmt::Display for PublishedDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.day {
            Some(d) => write!(f, "{:04}-{:02}-{:02}", self.year, self.month, d),
            None => write!(f, "{:04}-{:02}", self.year, self.month),
        }
    }
}

/// A validated date; only called with values checked by construction.
fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or(NaiveDate::MIN)
}

fn last_day_of_month(year: i32, month: u32) -> NaiveDate {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    ymd(ny, nm, 1).pred_opt().unwrap_or(NaiveDate::MIN)
}

/// The due date a deadline clause sets for a report published on `published`.
/// See the module documentation for the rules.
pub fn due_date(
    clause: &str,
    published: PublishedDate,
) -> Result<Option<NaiveDate>, DeadlineError> {
    let words = words_of(clause);
    if words.is_empty() {
        return Ok(None);
    }
    let unrecognised = || DeadlineError::Unrecognised(clause.to_string());
    let start = usize::from(words[0].text == "should");
    let (parsed, used) = parse_clause(&words[start..]).ok_or_else(unrecognised)?;
    let due = match parsed {
        Clause::Immediately | Clause::By(_) if start + used != words.len() => {
            return Err(unrecognised());
        }
        Clause::Immediately => published.anchor(),
        Clause::Within { n, unit } => add(published, n, unit)
            .filter(|due| due.year() <= LATEST_YEAR)
            .ok_or_else(|| DeadlineError::OutOfRange(clause.to_string()))?,
        Clause::By(by) => by
            .resolve(published)
            .ok_or_else(|| DeadlineError::NoSuchDate(clause.to_string()))?,
    };
    if due < published.earliest() {
        return Err(DeadlineError::BeforePublication {
            clause: clause.to_string(),
            due,
            published,
        });
    }
    Ok(Some(due))
}

/// Finds the deadline clause in a recommendation's text and returns it as
/// written (a slice of `text`), or None. The first of these, in order of
/// appearance, is the clause:
///
/// * "immediately";
/// * "within [the [next]] N days|weeks|months|years" (N as in [`due_date`]);
/// * "by [the end of] DATE" and "no later than [the end of] DATE", where DATE
///   is "31 March 2020", "31st March 2020" or "March 2020".
///
/// "The force should immediately …" gives "immediately", "Within six months,
/// the force should:" gives "Within six months", "… by July 2018." gives "by
/// July 2018"; "improve by working with partners" gives None.
pub fn find_deadline_clause(text: &str) -> Option<&str> {
    let words = words_of(text);
    let w = |i: usize| words.get(i).map(|w| w.text.as_str());
    for (i, word) in words.iter().enumerate() {
        let last = match word.text.as_str() {
            "immediately" => Some(i),
            "within" => within_at(&words, i + 1),
            "by" => date_at(&words, i + 1),
            "no" if w(i + 1) == Some("later") && w(i + 2) == Some("than") => date_at(&words, i + 3),
            _ => None,
        };
        if let Some(last) = last {
            return text.get(word.start..words.get(last)?.end);
        }
    }
    None
}

/// After "within": "[the [next]] N <unit>" from word `k`; index of the unit.
fn within_at(words: &[Word], k: usize) -> Option<usize> {
    let k = skip_the_next(words, k);
    let (_, used) = number(words.get(k..)?)?;
    unit(&words.get(k + used)?.text)?;
    Some(k + used)
}

/// Index of the first word after an optional "the" or "the next" at `k`.
fn skip_the_next(words: &[Word], k: usize) -> usize {
    let w = |i: usize| words.get(i).map(|w| w.text.as_str());
    match (w(k), w(k + 1)) {
        (Some("the"), Some("next")) => k + 2,
        (Some("the"), _) => k + 1,
        _ => k,
    }
}

/// "[the end of] 31 March 2020" or "[the end of] March 2020" from word `k`;
/// index of the year.
fn date_at(words: &[Word], k: usize) -> Option<usize> {
    let w = |i: usize| words.get(i).map(|w| w.text.as_str());
    let k = if w(k) == Some("the") && w(k + 1) == Some("end") && w(k + 2) == Some("of") {
        k + 3
    } else {
        k
    };
    let k = if w(k).and_then(day_of_month).is_some() {
        k + 1
    } else {
        k
    };
    w(k).and_then(month_number)?;
    w(k + 1).and_then(period::year)?;
    Some(k + 1)
}

/// A word of the text: lowercased, with its byte range in the text (without
/// surrounding punctuation and quotes).
#[derive(Debug)]
struct Word {
    text: String,
    start: usize,
    end: usize,
}

/// The words of `text`: runs of non-whitespace with leading and trailing
/// punctuation removed; runs of punctuation alone are skipped.
fn words_of(text: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut offset = 0;
    for raw in text.split_inclusive(char::is_whitespace) {
        let raw_start = offset;
        offset += raw.len();
        let trimmed_end = raw.trim_end();
        let after_lead = trimmed_end.trim_start_matches(is_edge_punctuation);
        let lead = trimmed_end.len() - after_lead.len();
        let core = after_lead.trim_end_matches(is_edge_punctuation);
        if core.is_empty() {
            continue;
        }
        words.push(Word {
            text: core.to_lowercase(),
            start: raw_start + lead,
            end: raw_start + lead + core.len(),
        });
    }
    words
}

fn is_edge_punctuation(c: char) -> bool {
    matches!(
        c,
        '.' | ','
            | ';'
            | ':'
            | '!'
            | '?'
            | '('
            | ')'
            | '['
            | ']'
            | '"'
            | '\''
            | '‘'
            | '’'
            | '“'
            | '”'
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Days,
    Weeks,
    Months,
    Years,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Season {
    Spring,
    Summer,
    Autumn,
    Winter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Day(i32, u32, u32),
    MonthEnd(i32, u32),
    YearEnd(i32),
    SeasonEnd(Season, i32),
    EndOfPublicationYear,
    EndOfFinancialYear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    Immediately,
    Within { n: u32, unit: Unit },
    By(By),
}

/// Parses a clause at the start of `words`; returns it with the number of
/// words it used. "within" clauses stop after their unit; "by" clauses take
/// as many words as form a date.
fn parse_clause(words: &[Word]) -> Option<(Clause, usize)> {
    let w = |i: usize| words.get(i).map(|w| w.text.as_str());
    match w(0)? {
        "immediately" => Some((Clause::Immediately, 1)),
        "with" if w(1) == Some("immediate") && w(2) == Some("effect") => {
            Some((Clause::Immediately, 3))
        }
        "within" => {
            let k = skip_the_next(words, 1);
            let (n, used) = number(words.get(k..)?)?;
            let unit = unit(w(k + used)?)?;
            Some((Clause::Within { n, unit }, k + used + 1))
        }
        "by" => parse_by(&words[1..]).map(|(by, used)| (Clause::By(by), 1 + used)),
        "no" if w(1) == Some("later") && w(2) == Some("than") => {
            parse_by(&words[3..]).map(|(by, used)| (Clause::By(by), 3 + used))
        }
        _ => None,
    }
}

/// The date after "by": the longest reading that uses every word offered,
/// trying shorter prefixes so that trailing words are left over.
fn parse_by(words: &[Word]) -> Option<(By, usize)> {
    (1..=words.len().min(6))
        .rev()
        .find_map(|n| by_exactly(&words[..n]).map(|by| (by, n)))
}

fn by_exactly(words: &[Word]) -> Option<By> {
    let t: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    // "the end of", "end of", "the end of the": all mean the end of the period.
    let (end_of, rest): (bool, &[&str]) = match t.as_slice() {
        ["the", "end", "of", rest @ ..] | ["end", "of", rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    match rest {
        ["the", "year"] if end_of => Some(By::EndOfPublicationYear),
        ["the", "financial", "year"] if end_of => Some(By::EndOfFinancialYear),
        // "the end of 31 March 2020" is that day.
        [d, m, y] => Some(By::Day(
            period::year(y)?,
            month_number(m)?,
            day_of_month(d)?,
        )),
        [m, y] => match (month_number(m), season(m)) {
            (Some(m), _) => Some(By::MonthEnd(period::year(y)?, m)),
            (None, Some(s)) => Some(By::SeasonEnd(s, winter_year(y)?)),
            _ => None,
        },
        [y] => Some(By::YearEnd(period::year(y)?)),
        _ => None,
    }
}

impl By {
    fn resolve(self, published: PublishedDate) -> Option<NaiveDate> {
        Some(match self {
            By::Day(y, m, d) => NaiveDate::from_ymd_opt(y, m, d)?,
            By::MonthEnd(y, m) => last_day_of_month(y, m),
            By::YearEnd(y) => ymd(y, 12, 31),
            By::SeasonEnd(Season::Spring, y) => ymd(y, 5, 31),
            By::SeasonEnd(Season::Summer, y) => ymd(y, 8, 31),
            By::SeasonEnd(Season::Autumn, y) => ymd(y, 11, 30),
            By::SeasonEnd(Season::Winter, y) => last_day_of_month(y + 1, 2),
            By::EndOfPublicationYear => ymd(published.year, 12, 31),
            By::EndOfFinancialYear => {
                let y = if published.month <= 3 {
                    published.year
                } else {
                    published.year + 1
                };
                ymd(y, 3, 31)
            }
        })
    }
}

fn add(published: PublishedDate, n: u32, unit: Unit) -> Option<NaiveDate> {
    let anchor = published.anchor();
    match unit {
        Unit::Days => anchor.checked_add_days(Days::new(u64::from(n))),
        Unit::Weeks => anchor.checked_add_days(Days::new(u64::from(n) * 7)),
        Unit::Months | Unit::Years => {
            let months = if unit == Unit::Years {
                n.checked_mul(12)?
            } else {
                n
            };
            if published.day.is_some() {
                anchor.checked_add_months(Months::new(months))
            } else {
                let first = ymd(published.year, published.month, 1)
                    .checked_add_months(Months::new(months))?;
                Some(last_day_of_month(first.year(), first.month()))
            }
        }
    }
}

/// A unit of time, singular or plural.
fn unit(word: &str) -> Option<Unit> {
    match word {
        "day" | "days" => Some(Unit::Days),
        "week" | "weeks" => Some(Unit::Weeks),
        "month" | "months" => Some(Unit::Months),
        "year" | "years" => Some(Unit::Years),
        _ => None,
    }
}

/// A count in digits or words; returns it with the number of words used.
fn number(words: &[Word]) -> Option<(u32, usize)> {
    let first = words.first()?.text.as_str();
    if first.bytes().all(|b| b.is_ascii_digit()) && first.len() <= 4 {
        return first.parse().ok().filter(|n| *n > 0).map(|n| (n, 1));
    }
    if first == "twenty" && words.get(1).map(|w| w.text.as_str()) == Some("four") {
        return Some((24, 2));
    }
    let n = match first {
        "a" | "an" | "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "eighteen" => 18,
        "twenty" => 20,
        "twenty-four" => 24,
        "thirty" => 30,
        "sixty" => 60,
        "ninety" => 90,
        _ => return None,
    };
    Some((n, 1))
}

fn season(word: &str) -> Option<Season> {
    match word {
        "spring" => Some(Season::Spring),
        "summer" => Some(Season::Summer),
        "autumn" | "fall" => Some(Season::Autumn),
        "winter" => Some(Season::Winter),
        _ => None,
    }
}

/// "2020" or, for a winter spanning two years, "2020/21" (its first year).
fn winter_year(word: &str) -> Option<i32> {
    match word.split_once('/') {
        Some((y, _)) => period::year(y),
        None => period::year(word),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn sept_2019() -> PublishedDate {
        PublishedDate::parse("September 2019").unwrap()
    }

    fn due(clause: &str) -> Result<Option<NaiveDate>, DeadlineError> {
        due_date(clause, sept_2019())
    }

    #[test]
    fn parses_published_dates() {
        let p = PublishedDate::parse("2019-09").unwrap();
        assert_eq!((p.year(), p.month(), p.day()), (2019, 9, None));
        assert_eq!(p, sept_2019());
        assert_eq!(PublishedDate::parse("2019-09-12").unwrap().day(), Some(12));
        assert_eq!(
            PublishedDate::parse("12 September 2019").unwrap(),
            PublishedDate::parse("2019-09-12").unwrap()
        );
        assert_eq!(PublishedDate::parse(" sep 2019 ").unwrap(), sept_2019());
        assert_eq!(sept_2019().to_string(), "2019-09");
        assert_eq!(sept_2019().anchor(), d(2019, 9, 30));
        assert_eq!(sept_2019().earliest(), d(2019, 9, 1));
        for bad in [
            "",
            "2019",
            "2019-13",
            "2019-9",
            "2019-02-30",
            "Smarch 2019",
            "September",
            "19-09",
        ] {
            assert!(PublishedDate::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn immediately_is_the_publication_anchor() {
        assert_eq!(due("immediately"), Ok(Some(d(2019, 9, 30))));
        assert_eq!(due("should immediately"), Ok(Some(d(2019, 9, 30))));
        assert_eq!(due("with immediate effect"), Ok(Some(d(2019, 9, 30))));
        let known = PublishedDate::parse("2019-09-12").unwrap();
        assert_eq!(due_date("Immediately.", known), Ok(Some(d(2019, 9, 12))));
    }

    #[test]
    fn within_a_period() {
        assert_eq!(due("within six months"), Ok(Some(d(2020, 3, 31))));
        assert_eq!(due("within 6 months."), Ok(Some(d(2020, 3, 31))));
        assert_eq!(
            due("within three months of the publication of this report"),
            Ok(Some(d(2019, 12, 31)))
        );
        assert_eq!(due("within a year"), Ok(Some(d(2020, 9, 30))));
        assert_eq!(due("within twelve months"), Ok(Some(d(2020, 9, 30))));
        assert_eq!(due("within two years"), Ok(Some(d(2021, 9, 30))));
        assert_eq!(due("within 28 days"), Ok(Some(d(2019, 10, 28))));
        assert_eq!(due("within four weeks"), Ok(Some(d(2019, 10, 28))));
        assert_eq!(due("within twenty four months"), Ok(Some(d(2021, 9, 30))));
        assert_eq!(due("within eighteen months"), Ok(Some(d(2021, 3, 31))));
        // From a known day: same day of month, clamped to the month's end.
        let known = PublishedDate::parse("2019-08-31").unwrap();
        assert_eq!(
            due_date("within six months", known),
            Ok(Some(d(2020, 2, 29)))
        );
        assert_eq!(due_date("within 1 week", known), Ok(Some(d(2019, 9, 7))));
        assert!(matches!(
            due("within 9999 years"),
            Err(DeadlineError::OutOfRange(_))
        ));
        assert!(matches!(
            due("within several months"),
            Err(DeadlineError::Unrecognised(_))
        ));
        assert!(matches!(
            due("within 0 months"),
            Err(DeadlineError::Unrecognised(_))
        ));
    }

    #[test]
    fn by_a_date() {
        assert_eq!(due("by 31 March 2020"), Ok(Some(d(2020, 3, 31))));
        assert_eq!(due("by 1st April 2020."), Ok(Some(d(2020, 4, 1))));
        assert_eq!(due("by July 2020"), Ok(Some(d(2020, 7, 31))));
        assert_eq!(due("By February 2020"), Ok(Some(d(2020, 2, 29))));
        assert_eq!(due("by the end of March 2020"), Ok(Some(d(2020, 3, 31))));
        assert_eq!(due("by the end of 2020"), Ok(Some(d(2020, 12, 31))));
        assert_eq!(due("by 2020"), Ok(Some(d(2020, 12, 31))));
        assert_eq!(due("no later than 30 June 2020"), Ok(Some(d(2020, 6, 30))));
        assert_eq!(due("by the end of the year"), Ok(Some(d(2019, 12, 31))));
        assert_eq!(
            due("by the end of the financial year"),
            Ok(Some(d(2020, 3, 31)))
        );
        let feb = PublishedDate::parse("2020-02").unwrap();
        assert_eq!(
            due_date("by the end of the financial year", feb),
            Ok(Some(d(2020, 3, 31)))
        );
        assert!(matches!(
            due("by 31 February 2020"),
            Err(DeadlineError::NoSuchDate(_))
        ));
    }

    #[test]
    fn by_a_season() {
        assert_eq!(due("by spring 2020"), Ok(Some(d(2020, 5, 31))));
        assert_eq!(due("by summer 2020"), Ok(Some(d(2020, 8, 31))));
        assert_eq!(due("by the end of autumn 2020"), Ok(Some(d(2020, 11, 30))));
        assert_eq!(due("by winter 2019"), Ok(Some(d(2020, 2, 29))));
        assert_eq!(due("by winter 2020/21"), Ok(Some(d(2021, 2, 28))));
    }

    #[test]
    fn a_date_before_publication_is_an_error() {
        assert!(matches!(
            due("by July 2018"),
            Err(DeadlineError::BeforePublication { due, .. }) if due == d(2018, 7, 31)
        ));
        assert!(matches!(
            due("by the end of 2018"),
            Err(DeadlineError::BeforePublication { .. })
        ));
        // Due in the publication month itself is fine.
        assert_eq!(due("by September 2019"), Ok(Some(d(2019, 9, 30))));
        let july_2018 = PublishedDate::parse("2018-01").unwrap();
        assert_eq!(
            due_date("by July 2018", july_2018),
            Ok(Some(d(2018, 7, 31)))
        );
    }

    #[test]
    fn empty_is_no_deadline_and_nonsense_is_unrecognised() {
        assert_eq!(due(""), Ok(None));
        assert_eq!(due("   "), Ok(None));
        for clause in [
            "soon",
            "by the force",
            "by July",
            "immediately and publicly",
            "by 31 March 2020 at the latest",
        ] {
            assert_eq!(
                due(clause),
                Err(DeadlineError::Unrecognised(clause.to_string())),
                "{clause}"
            );
        }
    }

    #[test]
    fn finds_clauses_in_sentences() {
        let cases = [
            (
                "The force should immediately review its approach to vulnerable people.",
                Some("immediately"),
            ),
            (
                "The force should review its crime data within six months.",
                Some("within six months"),
            ),
            (
                "The force should put a plan in place by July 2018.",
                Some("by July 2018"),
            ),
            (
                "All forces should, by 31 March 2020, publish their policies",
                Some("by 31 March 2020"),
            ),
            (
                "It should do so by the end of March 2020 and report back.",
                Some("by the end of March 2020"),
            ),
            (
                "This was inspected by HMICFRS in 2017. The force should improve.",
                None,
            ),
            ("The force should improve how it investigates crime.", None),
            (
                "Within 3 months, the force should act.",
                Some("Within 3 months"),
            ),
            (
                "within the next 3 months the force should",
                Some("within the next 3 months"),
            ),
            (
                "no later than 30 June 2022.",
                Some("no later than 30 June 2022"),
            ),
            (
                "by the end of March 2020, the force should",
                Some("by the end of March 2020"),
            ),
            ("The force should improve by working with partners.", None),
            ("within reason", None),
        ];
        for (text, clause) in cases {
            assert_eq!(find_deadline_clause(text), clause, "{text}");
        }
    }

    #[test]
    fn found_clauses_parse() {
        let text = "Chief constables should, within six months of this report, review vetting.";
        let clause = find_deadline_clause(text).unwrap();
        assert_eq!(due(clause), Ok(Some(d(2020, 3, 31))));
        assert_eq!(due("within the next 3 months"), Ok(Some(d(2019, 12, 31))));
        assert_eq!(due("within thirty days"), Ok(Some(d(2019, 10, 30))));
        assert_eq!(due("by the end of 31 March 2020"), Ok(Some(d(2020, 3, 31))));
    }
}
