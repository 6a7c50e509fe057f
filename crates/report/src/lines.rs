//! Lines: the report's text split into numbered lines, and the plain-text
//! normalisation every other module reads through.
//!
//! Line numbers are 1-based over the *original* text so that a finding's span
//! points at the same lines a person sees in the file. That is why nothing here
//! removes or inserts lines: a leading byte-order mark is dropped from the first
//! line, the `\r` of a Windows `\r\n` is dropped from the end of its line, and a
//! text that uses bare `\r` (classic Mac) as its only line break is split on it.
//!
//! The inspectorate's text exports carry web links as Markdown
//! (`[2017 effectiveness report](#)`); [`plain`] keeps the words and drops the
//! link so that quoted text reads as the report reads.

use std::borrow::Cow;

/// One line of the source, without its line terminator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    /// 1-based line number in the original text.
    pub number: u32,
    pub text: &'a str,
}

/// Splits `text` into numbered lines (see the module documentation).
pub(crate) fn split(text: &str) -> Vec<Line<'_>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let separator = if !text.contains('\n') && text.contains('\r') {
        '\r'
    } else {
        '\n'
    };
    text.split(separator)
        .enumerate()
        .map(|(index, raw)| Line {
            number: line_number(index),
            text: raw.strip_suffix('\r').unwrap_or(raw),
        })
        .collect()
}

/// The 1-based number of the line at `index`, saturating (a text with more
/// than four billion lines cannot be held in memory anyway).
fn line_number(index: usize) -> u32 {
    u32::try_from(index.saturating_add(1)).unwrap_or(u32::MAX)
}

/// Whether a line holds nothing but whitespace (including no-break spaces).
pub(crate) fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

/// Longest link label or target that [`plain`] recognises; bounds the work on
/// adversarial input such as a line of a million `[`.
const MAX_LINK_PART: usize = 400;

/// The text with Markdown links `[label](target)` replaced by their label.
pub(crate) fn plain(text: &str) -> Cow<'_, str> {
    if !text.contains("](") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        // '[' is one byte, so open + 1 is a character boundary.
        let after = &rest[open + 1..];
        if let Some((label, tail_start)) = link_at(after) {
            out.push_str(&rest[..open]);
            out.push_str(label);
            rest = &after[tail_start..];
        } else {
            out.push_str(&rest[..=open]);
            rest = after;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// If `after` (the text after a `[`) continues `label](target)`, the label and
/// the byte offset just past the `)`.
fn link_at(after: &str) -> Option<(&str, usize)> {
    let bytes = after.as_bytes();
    // ']' '(' ')' are ASCII, so every position found here is a char boundary.
    let close = bytes
        .iter()
        .take(MAX_LINK_PART)
        .position(|&b| b == b']' || b == b'[')?;
    if bytes[close] != b']' || bytes.get(close + 1) != Some(&b'(') {
        return None;
    }
    let target_start = close + 2;
    let end = bytes[target_start..]
        .iter()
        .take(MAX_LINK_PART)
        .position(|&b| b == b')' || b == b'\n')?;
    if bytes[target_start + end] != b')' {
        return None;
    }
    Some((&after[..close], target_start + end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lines_from_one_and_keeps_blank_lines() {
        let lines = split("a\n\nb\n");
        let got: Vec<(u32, &str)> = lines.iter().map(|l| (l.number, l.text)).collect();
        assert_eq!(got, vec![(1, "a"), (2, ""), (3, "b"), (4, "")]);
    }

    #[test]
    fn windows_line_endings_and_bom_do_not_shift_lines() {
        let unix: Vec<(u32, String)> = split("PEEL\n\nGood\n")
            .iter()
            .map(|l| (l.number, l.text.to_string()))
            .collect();
        let windows: Vec<(u32, String)> = split("\u{feff}PEEL\r\n\r\nGood\r\n")
            .iter()
            .map(|l| (l.number, l.text.to_string()))
            .collect();
        assert_eq!(unix, windows);
    }

    #[test]
    fn bare_carriage_returns_split_lines_when_there_is_no_newline() {
        let lines = split("a\rb");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].text, "b");
    }

    #[test]
    fn links_keep_their_label() {
        assert_eq!(
            plain("In our [2017 effectiveness report](#), we said"),
            "In our 2017 effectiveness report, we said"
        );
        assert_eq!(plain("a [b] c"), "a [b] c");
        assert_eq!(plain("[x](y"), "[x](y");
        assert_eq!(plain("[[a](b)"), "[a");
        assert_eq!(plain("é[ü](#)ö"), "éüö");
    }
}
