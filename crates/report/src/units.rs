//! Units: the lines grouped into the pieces every later module reasons about —
//! a paragraph of prose, a list item, or a table row — each with its plain text
//! and its line span, and classified as a heading or a grade line.
//!
//! Reports reach us in two shapes: the PDF text export (paragraphs separated
//! by blank lines, often one line each, broken across page boundaries) and the
//! web page (one line per paragraph, often no blank lines at all). So a unit
//! is a *line* unless the line merely continues the previous one: it starts
//! with a lowercase letter and the previous unit does not end a sentence or
//! clause. That joins page breaks ("…can now" / blank / "comprehensively
//! analyse…") and hard-wrapped text, while a heading stays apart from the
//! paragraph after it, which starts with a capital letter.
//!
//! A line containing a tab is a table row. A line starting with a bullet
//! marker (`-`, `•`, `–`, `*`, `·`, `▪`, `1.`, `a)`) is a list item, the marker
//! removed.

use closeout_proto::Grade;

use crate::grades::parse_grade;
use crate::lines::{Line, is_blank, plain};
use crate::text;

/// What a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A paragraph (or heading, or grade line).
    Text,
    /// A list item, bullet marker removed.
    Bullet,
    /// A table row (the line had a tab).
    Row,
}

/// A paragraph, list item or table row.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    pub kind: Kind,
    /// Plain text: links reduced to their label, trimmed, lines joined by one
    /// space, bullet marker removed.
    pub text: String,
    pub first_line: u32,
    pub last_line: u32,
    /// Where each source line's text starts in `text`, with its line number.
    starts: Vec<(usize, u32)>,
    /// A row's cells (split at tabs, trimmed, plain); empty for other kinds.
    pub cells: Vec<String>,
    /// A short line that reads as a heading (see [`looks_like_heading`]).
    pub heading: bool,
    /// The grade, when the whole unit is a grade line.
    pub grade: Option<Grade>,
}

impl Unit {
    fn new(kind: Kind, text: String, line: u32) -> Self {
        Unit {
            kind,
            text,
            first_line: line,
            last_line: line,
            starts: vec![(0, line)],
            cells: Vec::new(),
            heading: false,
            grade: None,
        }
    }

    /// The source line holding byte `offset` of `text`.
    pub fn line_at(&self, offset: usize) -> u32 {
        let index = self.starts.partition_point(|&(start, _)| start <= offset);
        self.starts
            .get(index.saturating_sub(1))
            .map_or(self.first_line, |&(_, line)| line)
    }

    /// Whether this is a prose unit (paragraph or list item).
    pub fn is_prose(&self) -> bool {
        matches!(self.kind, Kind::Text | Kind::Bullet)
    }

    /// Whether this is a paragraph that reads as a heading.
    pub fn is_heading(&self) -> bool {
        self.kind == Kind::Text && self.heading
    }

    /// The row's non-empty cells.
    pub fn filled_cells(&self) -> impl Iterator<Item = &str> {
        self.cells
            .iter()
            .map(String::as_str)
            .filter(|c| !c.is_empty())
    }
}

/// Most blank lines a page break leaves inside a paragraph.
const MAX_PAGE_BREAK_BLANKS: usize = 2;
/// A paragraph continued across blank lines is at least this many words long
/// (a heading followed by a lowercase line is not a page break).
const MIN_WORDS_BEFORE_PAGE_BREAK: usize = 8;

/// Groups lines into units (see the module documentation).
pub(crate) fn build(lines: &[Line<'_>]) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    let mut blanks = 0usize;
    for line in lines {
        if is_blank(line.text) {
            blanks += 1;
            continue;
        }
        let trimmed = line.text.trim();
        if line.text.contains('\t') {
            let cells: Vec<String> = line
                .text
                .split('\t')
                .map(|c| plain(c.trim()).into_owned())
                .collect();
            let mut unit = Unit::new(Kind::Row, plain(trimmed).into_owned(), line.number);
            unit.cells = cells;
            units.push(unit);
        } else if let Some(item) = strip_bullet(trimmed) {
            units.push(Unit::new(
                Kind::Bullet,
                plain(item).into_owned(),
                line.number,
            ));
        } else if let Some(previous) = units
            .last_mut()
            .filter(|previous| continues(previous, trimmed, blanks))
        {
            previous.starts.push((previous.text.len() + 1, line.number));
            previous.text.push(' ');
            previous.text.push_str(&plain(trimmed));
            previous.last_line = line.number;
        } else {
            units.push(Unit::new(
                Kind::Text,
                plain(trimmed).into_owned(),
                line.number,
            ));
        }
        blanks = 0;
    }
    for unit in &mut units {
        if unit.kind == Kind::Text {
            unit.grade = parse_grade(&unit.text);
            unit.heading = unit.grade.is_none() && looks_like_heading(&unit.text);
        }
    }
    units
}

/// Whether `next` continues `previous` (see the module documentation).
fn continues(previous: &Unit, next: &str, blanks: usize) -> bool {
    previous.kind != Kind::Row
        && blanks <= MAX_PAGE_BREAK_BLANKS
        && !text::ends_clause(&previous.text)
        && text::starts_lowercase(next)
        && (blanks == 0
            || previous
                .text
                .split_whitespace()
                .take(MIN_WORDS_BEFORE_PAGE_BREAK)
                .count()
                >= MIN_WORDS_BEFORE_PAGE_BREAK)
}

/// The item text of a list line, if it starts with a bullet marker.
pub(crate) fn strip_bullet(line: &str) -> Option<&str> {
    for marker in ['•', '·', '▪', '◦', '●'] {
        if let Some(rest) = line.strip_prefix(marker) {
            return non_empty(rest.trim_start());
        }
    }
    for marker in ['-', '–', '*', '—'] {
        if let Some(rest) = line.strip_prefix(marker) {
            // "- item", not "-5%" or "--".
            if rest.starts_with(char::is_whitespace) {
                return non_empty(rest.trim_start());
            }
        }
    }
    // "1. item", "12) item", "a) item", "(a) item"
    let unbracketed = line.strip_prefix('(').unwrap_or(line);
    let label_len = unbracketed
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count()
        .clamp(0, 2);
    let label_len = if label_len == 0 {
        usize::from(
            unbracketed
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase()),
        )
    } else {
        label_len
    };
    if label_len == 0 {
        return None;
    }
    let after = unbracketed.get(label_len..)?;
    let digits = unbracketed
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit());
    let rest = after.strip_prefix(')').or_else(|| {
        if digits {
            after.strip_prefix('.')
        } else {
            None
        }
    })?;
    if rest.starts_with(char::is_whitespace) {
        non_empty(rest.trim_start())
    } else {
        None
    }
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// Longest heading, in characters.
const MAX_HEADING_CHARS: usize = 120;
/// Most words in a heading.
const MAX_HEADING_WORDS: usize = 18;
/// Most words in a question heading ("How effective is the fire and rescue
/// service at keeping people safe and secure from fire and other risks?").
const MAX_QUESTION_HEADING_WORDS: usize = 26;

/// Whether a line reads as a heading: short, starting with a capital letter or
/// digit, one sentence at most, and not ending with `.`, `,`, `;`, `:` or `!`
/// (questions, ending `?`, are headings in the inspectorate's layout).
pub(crate) fn looks_like_heading(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    let last = text.chars().last().unwrap_or(first);
    (first.is_uppercase() || first.is_ascii_digit())
        && !is_date_line(text)
        && !matches!(last, '.' | ',' | ';' | ':' | '!')
        && text.chars().count() <= MAX_HEADING_CHARS
        && text.split_whitespace().count()
            <= if last == '?' {
                MAX_QUESTION_HEADING_WORDS
            } else {
                MAX_HEADING_WORDS
            }
        && !text.contains(". ")
}

/// A line that only dates the page or a judgment ("Last updated 20/12/2018",
/// "Published on: 9 June 2023", "Sent on", "Last inspected: 2017"): never a
/// heading, so never a question's name.
pub(crate) fn is_date_line(text: &str) -> bool {
    let text = text.trim_start();
    [
        "last updated",
        "published on",
        "sent on",
        "updated on",
        "last inspected",
    ]
    .iter()
    .any(|lead| starts_with_ignoring_case(text, lead))
}

/// Whether `text` starts with the ASCII `lead`, ignoring ASCII case.
pub(crate) fn starts_with_ignoring_case(text: &str, lead: &str) -> bool {
    text.as_bytes()
        .get(..lead.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(lead.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::split;

    fn units(text: &str) -> Vec<Unit> {
        build(&split(text))
    }

    #[test]
    fn page_breaks_join_a_paragraph_and_keep_line_numbers() {
        let u = units(
            "The force has since made investments and can now\n\ncomprehensively analyse data.\n",
        );
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].first_line, u[0].last_line), (1, 3));
        let offset = u[0].text.find("comprehensively").unwrap_or(0);
        assert_eq!(u[0].line_at(offset), 3);
        assert_eq!(u[0].line_at(0), 1);
    }

    #[test]
    fn headings_grades_bullets_and_rows() {
        let u = units("Investigating crime\n\n\nGood\n\n- The force should act.\n\tA\tB\n");
        assert_eq!(u.len(), 4);
        assert!(u[0].is_heading());
        assert_eq!(u[1].grade, Some(Grade::Good));
        assert_eq!(u[2].kind, Kind::Bullet);
        assert_eq!(u[2].text, "The force should act.");
        assert_eq!(u[3].kind, Kind::Row);
        assert_eq!(u[3].cells, vec!["", "A", "B"]);
    }

    #[test]
    fn a_heading_is_never_merged_with_its_paragraph() {
        let u = units("Areas for improvement\nThe force should act.\nmore text");
        assert_eq!(u.len(), 3);
        assert_eq!(u[1].text, "The force should act.");
        // "more text" follows a finished sentence: a unit of its own.
        assert_eq!(u[2].text, "more text");
    }

    #[test]
    fn bullet_markers() {
        assert_eq!(strip_bullet("• item"), Some("item"));
        assert_eq!(strip_bullet("•item"), Some("item"));
        assert_eq!(strip_bullet("- item"), Some("item"));
        assert_eq!(strip_bullet("-5%"), None);
        assert_eq!(strip_bullet("1. item"), Some("item"));
        assert_eq!(strip_bullet("(a) item"), Some("item"));
        assert_eq!(strip_bullet("a) item"), Some("item"));
        assert_eq!(strip_bullet("2018/19 projection"), None);
        assert_eq!(strip_bullet("A) x"), None);
        assert_eq!(strip_bullet("-"), None);
    }
}
