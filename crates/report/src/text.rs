//! Small, pure text helpers shared by the modules that read prose: sentence
//! boundaries, words with their byte offsets, months, years, dates and
//! periods as the inspectorate writes them.
//!
//! Every offset returned here is a byte offset on a character boundary of the
//! string it was computed on, so callers can slice without panicking. Pattern
//! matching lowercases with [`str::to_ascii_lowercase`], which keeps byte
//! offsets unchanged (all patterns are ASCII).

/// Words that end with a full stop without ending a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "eg", "ie", "mr", "mrs", "ms", "dr", "st", "no", "nos", "vs", "cf", "approx",
    "inc", "ltd", "co", "etc", "para", "paras", "fig", "figs",
];

/// Byte ranges of the sentences of `text`, trimmed. A sentence ends at `.`,
/// `!` or `?` (after any closing quotes or brackets) followed by whitespace
/// and a capital letter, digit or opening quote or bracket, or by the end of
/// the text; a full stop after a known abbreviation or a single letter does
/// not end one.
///
/// One pass over the bytes: the terminators are ASCII, so only the text
/// after one is decoded (the sentence splitter runs over every prose unit,
/// and decoding every character into a vector first was a third of a
/// parse).
pub(crate) fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut from = 0;
    while let Some(found) = text
        .get(from..)
        .and_then(|rest| rest.bytes().position(|b| matches!(b, b'.' | b'!' | b'?')))
    {
        let i = from + found;
        // The terminator is one byte, so i + 1 is a character boundary.
        let after = &text[i + 1..];
        let closers = after
            .char_indices()
            .find(|&(_, c)| !matches!(c, '’' | '”' | '"' | '\'' | ')' | ']'))
            .map_or(after.len(), |(at, _)| at);
        let end = i + 1 + closers;
        let boundary = match text[end..].chars().next() {
            None => true,
            Some(c) if c.is_whitespace() => text[end..]
                .chars()
                .find(|c| !c.is_whitespace())
                .is_none_or(starts_sentence),
            Some(_) => false,
        };
        if boundary && !(text.as_bytes()[i] == b'.' && is_abbreviation(&text[start..i])) {
            push_trimmed(&mut out, text, start, end);
            start = end;
        }
        from = end.max(i + 1);
    }
    push_trimmed(&mut out, text, start, text.len());
    out
}

fn starts_sentence(c: char) -> bool {
    c.is_uppercase() || c.is_ascii_digit() || matches!(c, '(' | '[' | '‘' | '“' | '"' | '\'')
}

/// Whether the text before a full stop ends with an abbreviation or a single
/// letter (an initial).
fn is_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    if word.chars().count() == 1 && word.chars().all(char::is_alphabetic) {
        return true;
    }
    ABBREVIATIONS.iter().any(|a| a.eq_ignore_ascii_case(word))
}

fn push_trimmed(out: &mut Vec<(usize, usize)>, text: &str, start: usize, end: usize) {
    let piece = &text[start..end];
    let lead = piece.len() - piece.trim_start().len();
    let trail = piece.len() - piece.trim_end().len();
    if lead + trail < piece.len() {
        out.push((start + lead, end - trail));
    }
}

/// A word of a text: its byte range, without surrounding punctuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word {
    pub start: usize,
    pub end: usize,
}

impl Word {
    pub fn of<'a>(&self, text: &'a str) -> &'a str {
        text.get(self.start..self.end).unwrap_or("")
    }
}

/// The words of `text` (runs of non-whitespace with leading and trailing
/// punctuation removed; empty runs skipped).
pub(crate) fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::with_capacity(text.len() / 6 + 1);
    let mut run: Option<usize> = None;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some(start) = run.take() {
                push_word(&mut out, text, start, at);
            }
        } else if run.is_none() {
            run = Some(at);
        }
    }
    if let Some(start) = run {
        push_word(&mut out, text, start, text.len());
    }
    out
}

/// Adds the run `start..end` of non-whitespace, without its edge
/// punctuation, unless nothing is left.
fn push_word(out: &mut Vec<Word>, text: &str, start: usize, end: usize) {
    let core = &text[start..end];
    let trimmed_start = core.trim_start_matches(is_edge_punctuation);
    let lead = core.len() - trimmed_start.len();
    let trimmed = trimmed_start.trim_end_matches(is_edge_punctuation);
    if !trimmed.is_empty() {
        out.push(Word {
            start: start + lead,
            end: start + lead + trimmed.len(),
        });
    }
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

// Months, years, days of the month and the first year of a period are the
// domain's vocabulary, one rule for every crate.
pub(crate) use closeout_domain::period::{
    day_of_month as day, first_year, month_number as month, year,
};

/// An inspection period as written: "2018/19", "2021/22", "2023–25",
/// "2023-2025", or a single year "2017". Returns the period as written.
pub(crate) fn period(word: &str) -> Option<&str> {
    if year(word).is_some() {
        return Some(word);
    }
    let (first, rest) = split_period(word)?;
    year(first)?;
    let ok = (rest.len() == 2 || (rest.len() == 4 && year(rest).is_some()))
        && rest.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(word)
}

/// Splits "2018/19" or "2023–25" at its separator.
fn split_period(word: &str) -> Option<(&str, &str)> {
    for separator in ['/', '–', '-', '—'] {
        if let Some((a, b)) = word.split_once(separator) {
            return Some((a, b));
        }
    }
    None
}

/// Every period-like word of `text`, in order, as byte ranges.
pub(crate) fn periods_in(text: &str) -> Vec<Word> {
    words(text)
        .into_iter()
        .filter(|w| period(w.of(text)).is_some())
        .collect()
}

/// A date written "31 March 2019", "31st March 2019" or "March 2019" starting
/// at word `i` of `all`: returns (year, month, day if given, words used).
pub(crate) fn date_at(
    text: &str,
    all: &[Word],
    i: usize,
) -> Option<(i32, u32, Option<u32>, usize)> {
    let w = |k: usize| all.get(k).map(|w| w.of(text));
    if let Some(d) = w(i).and_then(day) {
        let m = w(i + 1).and_then(month)?;
        let y = w(i + 2).and_then(year)?;
        return Some((y, m, Some(d), 3));
    }
    let m = w(i).and_then(month)?;
    let y = w(i + 1).and_then(year)?;
    Some((y, m, None, 2))
}

/// Formats a date as "YYYY-MM" or "YYYY-MM-DD".
pub(crate) fn iso(year: i32, month: u32, day: Option<u32>) -> String {
    match day {
        Some(d) => format!("{year:04}-{month:02}-{d:02}"),
        None => format!("{year:04}-{month:02}"),
    }
}

/// `text` with ASCII letters lowercased and curly apostrophes made straight,
/// for matching phrases (not for offsets: ’ is three bytes, ' one).
pub(crate) fn fold(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    // Most text has no curly apostrophe: one search each (by byte) rather
    // than a second copy decoded character by character.
    if lower.contains('’') || lower.contains('‘') {
        lower.replace(['’', '‘'], "'")
    } else {
        lower
    }
}

/// Whether the first letter of `text` is lowercase.
pub(crate) fn starts_lowercase(text: &str) -> bool {
    text.chars()
        .find(|c| c.is_alphanumeric())
        .is_some_and(char::is_lowercase)
}

/// Whether `text` ends a sentence or clause: its last character, after closing
/// quotes and brackets, is one of `. ! ? : ;`.
pub(crate) fn ends_clause(text: &str) -> bool {
    text.trim_end()
        .trim_end_matches(['’', '”', '"', '\'', ')', ']'])
        .ends_with(['.', '!', '?', ':', ';'])
}

/// `text` with its first character uppercased.
pub(crate) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `text` with its first character lowercased (deadline clauses are quoted
/// mid-sentence: "Within six months" → "within six months").
pub(crate) fn decapitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        sentences(text).iter().map(|&(a, b)| &text[a..b]).collect()
    }

    #[test]
    fn splits_sentences_but_not_numbers_or_abbreviations() {
        assert_eq!(
            split("It rose by 1.6 percent. We saw it, e.g. here. It has made these improvements."),
            vec![
                "It rose by 1.6 percent.",
                "We saw it, e.g. here.",
                "It has made these improvements."
            ]
        );
        assert_eq!(split("Is it? (Yes.) done"), vec!["Is it?", "(Yes.) done"]);
        assert_eq!(split("   "), Vec::<&str>::new());
        assert_eq!(split("ending über. Ärger"), vec!["ending über.", "Ärger"]);
    }

    #[test]
    fn reads_periods_and_dates() {
        assert_eq!(period("2018/19"), Some("2018/19"));
        assert_eq!(period("2023–25"), Some("2023–25"));
        assert_eq!(period("2023-2025"), Some("2023-2025"));
        assert_eq!(period("2017"), Some("2017"));
        assert_eq!(period("20189"), None);
        assert_eq!(period("2018/1"), None);
        assert_eq!(first_year("2021/22"), Some(2021));
        let text = "on 31st March 2019 and September 2019";
        let all = words(text);
        assert_eq!(date_at(text, &all, 1), Some((2019, 3, Some(31), 3)));
        assert_eq!(date_at(text, &all, 5), Some((2019, 9, None, 2)));
        assert_eq!(iso(2019, 9, None), "2019-09");
    }

    #[test]
    fn words_strip_punctuation() {
        let text = "(ARVs) respond, “quickly”.";
        let got: Vec<&str> = words(text).iter().map(|w| w.of(text)).collect();
        assert_eq!(got, vec!["ARVs", "respond", "quickly"]);
    }
}
