//! The line-by-line account of a parse (`closeout report parse FILE
//! --explain`): which profile was detected, and for each span of lines which
//! rule read it as what — identity, judgment, finding, follow-up, reference,
//! boilerplate or indicator. It lets a person check the reading against the
//! document, and see at once which lines were deliberately not findings.

use std::fmt::Write as _;

use closeout_proto::{ParsedExplanation, ParsedReport};

/// What an explained span was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Element {
    Identity,
    Judgment,
    Finding,
    FollowUp,
    Reference,
    Boilerplate,
    Indicator,
}

impl Element {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Element::Identity => "identity",
            Element::Judgment => "judgment",
            Element::Finding => "finding",
            Element::FollowUp => "follow-up",
            Element::Reference => "reference",
            Element::Boilerplate => "boilerplate",
            Element::Indicator => "indicator",
        }
    }
}

/// Longest summary kept in an explanation, in characters.
const SUMMARY_CHARS: usize = 90;

/// One explanation line.
pub(crate) fn explanation(
    line_start: u32,
    line_end: u32,
    element: Element,
    rule: &str,
    summary: &str,
) -> ParsedExplanation {
    ParsedExplanation {
        line_start,
        line_end: line_end.max(line_start),
        element: element.as_str().to_string(),
        rule: rule.to_string(),
        summary: shorten(summary),
    }
}

/// `text` on one line, cut at [`SUMMARY_CHARS`] with an ellipsis.
pub(crate) fn shorten(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= SUMMARY_CHARS {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(SUMMARY_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// Renders the profile and every explanation line in line order, e.g.
/// `L12–14  finding      frs.improvement-list   The service should …`.
pub fn render_explanation(report: &ParsedReport) -> String {
    let mut out = String::new();
    let profile = if report.profile.is_empty() {
        "none recognised"
    } else {
        report.profile.as_str()
    };
    let _ = writeln!(out, "Profile: {profile}");
    let mut lines: Vec<&ParsedExplanation> = report.explanations.iter().collect();
    lines.sort_by_key(|e| (e.line_start, e.line_end));
    let spans: Vec<String> = lines
        .iter()
        .map(|e| {
            if e.line_end > e.line_start {
                format!("L{}–{}", e.line_start, e.line_end)
            } else {
                format!("L{}", e.line_start)
            }
        })
        .collect();
    let width = |f: &dyn Fn(usize) -> usize| (0..lines.len()).map(f).max().unwrap_or(0);
    let span_w = width(&|i| spans.get(i).map_or(0, |s| s.chars().count()));
    let element_w = width(&|i| lines.get(i).map_or(0, |e| e.element.len()));
    let rule_w = width(&|i| lines.get(i).map_or(0, |e| e.rule.len()));
    for (e, span) in lines.iter().zip(&spans) {
        let line = format!(
            "{span:<span_w$}  {:<element_w$}  {:<rule_w$}  {}",
            e.element, e.rule, e.summary
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if lines.is_empty() {
        let _ = writeln!(out, "(nothing explained)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_profile_then_lines_in_order() {
        let report = ParsedReport {
            profile: "frs-2021-22".into(),
            explanations: vec![
                explanation(
                    12,
                    14,
                    Element::Finding,
                    "frs.improvement-list",
                    "The service should act.",
                ),
                explanation(3, 3, Element::Identity, "identity.title", "Loamshire"),
            ],
            ..Default::default()
        };
        let text = render_explanation(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Profile: frs-2021-22");
        assert!(lines[1].starts_with("L3 "), "{text}");
        assert!(lines[2].starts_with("L12–14  finding "), "{text}");
        assert!(
            lines[2].ends_with("frs.improvement-list  The service should act."),
            "{text}"
        );
    }

    #[test]
    fn long_summaries_are_cut() {
        let long = "word ".repeat(60);
        let short = shorten(&long);
        assert!(short.chars().count() <= SUMMARY_CHARS);
        assert!(short.ends_with('…'));
    }
}
