//! Deadline clauses: the words of a recommendation that say by when it must be
//! done — "immediately", "within six months", "within the next 3 months",
//! "by 31 March 2020", "by July 2018", "by the end of March 2020", "no later
//! than 30 June 2022". The clause is returned as written, its first letter
//! lowercased ("Within six months, the force should:" → "within six
//! months"), which is the form `closeout_domain::deadline::due_date` turns into
//! a due date against the publication date.

use crate::text::{self, Word};

const NUMBER_WORDS: &[&str] = &[
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "eighteen",
    "twenty",
    "twenty-four",
    "thirty",
    "sixty",
    "ninety",
    "a",
];

const UNITS: &[&str] = &[
    "day", "days", "week", "weeks", "month", "months", "year", "years",
];

/// The first deadline clause in `text`, if any.
pub(crate) fn find(text: &str) -> Option<String> {
    let all = text::words(text);
    let lower = |i: usize| all.get(i).map(|w| w.of(text).to_ascii_lowercase());
    for i in 0..all.len() {
        let Some(word) = lower(i) else { continue };
        let end = match word.as_str() {
            "immediately" => Some(i),
            "within" => within(text, &all, i),
            "by" => by(text, &all, i + 1),
            "no" if lower(i + 1).as_deref() == Some("later")
                && lower(i + 2).as_deref() == Some("than") =>
            {
                by(text, &all, i + 3)
            }
            _ => None,
        };
        if let Some(end) = end {
            let clause = text.get(all[i].start..all[end].end)?;
            return Some(text::decapitalise(clause));
        }
    }
    None
}

/// "within [the next] <number> <unit>": index of the unit word.
fn within(text: &str, all: &[Word], i: usize) -> Option<usize> {
    let lower = |k: usize| all.get(k).map(|w| w.of(text).to_ascii_lowercase());
    let mut k = i + 1;
    if lower(k).as_deref() == Some("the") {
        k += 1;
        if lower(k).as_deref() == Some("next") {
            k += 1;
        }
    }
    let number = lower(k)?;
    let is_number = NUMBER_WORDS.contains(&number.as_str())
        || (!number.is_empty() && number.len() <= 3 && number.bytes().all(|b| b.is_ascii_digit()));
    let unit = lower(k + 1)?;
    (is_number && UNITS.contains(&unit.as_str())).then_some(k + 1)
}

/// A date at word `k` (optionally "the end of <date>"): index of its last
/// word.
fn by(text: &str, all: &[Word], k: usize) -> Option<usize> {
    let lower = |j: usize| all.get(j).map(|w| w.of(text).to_ascii_lowercase());
    let k = if lower(k).as_deref() == Some("the")
        && lower(k + 1).as_deref() == Some("end")
        && lower(k + 2).as_deref() == Some("of")
    {
        k + 3
    } else {
        k
    };
    let (_, _, _, used) = text::date_at(text, all, k)?;
    Some(k + used - 1)
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn clauses() {
        assert_eq!(
            find("Within six months, the force should:").as_deref(),
            Some("within six months")
        );
        assert_eq!(
            find("The force should immediately review its vetting.").as_deref(),
            Some("immediately")
        );
        assert_eq!(
            find("publish the analysis and the action by July 2018.").as_deref(),
            Some("by July 2018")
        );
        assert_eq!(
            find("By 31 March 2020, all forces should:").as_deref(),
            Some("by 31 March 2020")
        );
        assert_eq!(
            find("by the end of March 2020, the force should").as_deref(),
            Some("by the end of March 2020")
        );
        assert_eq!(
            find("within the next 3 months the force should").as_deref(),
            Some("within the next 3 months")
        );
        assert_eq!(
            find("no later than 30 June 2022.").as_deref(),
            Some("no later than 30 June 2022")
        );
        assert_eq!(
            find("The force should improve by working with partners."),
            None
        );
        assert_eq!(find("within reason"), None);
    }
}
