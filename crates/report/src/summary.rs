//! A readable text summary of a parsed report, for people at a terminal
//! (`closeout report parse FILE`): the header, the judgments as a table, the
//! numbered findings, the follow-ups with their outcomes, the indicators with
//! their comparators, and any warnings. Plain text, no colour, wrapped at
//! [`WIDTH`] columns, so it reads the same in a pager, a log or an e-mail.

use std::fmt::Write as _;

use closeout_proto::{
    FindingKind, FollowUpOutcome, FollowUpScope, GradeScale, OrganisationKind, ParsedReport,
};

use crate::grades::grade_name;

/// Wrap width of prose.
pub const WIDTH: usize = 100;

/// Renders `report` as text (see the module documentation).
pub fn render_summary(report: &ParsedReport) -> String {
    let mut out = String::new();
    header(&mut out, report);
    judgments(&mut out, report);
    findings(&mut out, report);
    follow_ups(&mut out, report);
    indicators(&mut out, report);
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings ({})", report.warnings.len());
        for warning in &report.warnings {
            wrap(&mut out, warning, "  - ", "    ");
        }
    }
    out
}

fn header(out: &mut String, report: &ParsedReport) {
    let organisation = report.organisation.clone().unwrap_or_default();
    let inspection = report.inspection.clone().unwrap_or_default();
    let kind = match organisation.kind() {
        OrganisationKind::PoliceForce => "police force",
        OrganisationKind::FireAndRescueService => "fire and rescue service",
        OrganisationKind::Unspecified => "kind not stated",
    };
    let name = or_unknown(&organisation.name);
    let _ = writeln!(out, "{name} ({}, {kind})", or_unknown(&organisation.id));
    let _ = writeln!(
        out,
        "Inspection: {} {}, published {}",
        or_unknown(&inspection.programme),
        or_unknown(&inspection.period),
        or_unknown(&inspection.published)
    );
    if !inspection.title.is_empty() {
        wrap(out, &inspection.title, "Title: ", "       ");
    }
    let _ = writeln!(
        out,
        "Layout: {}",
        if report.profile.is_empty() {
            "not recognised"
        } else {
            report.profile.as_str()
        }
    );
    if !report.most_similar_group.is_empty() {
        wrap(
            out,
            &report.most_similar_group.join(", "),
            "Most similar group: ",
            "    ",
        );
    }
}

fn judgments(out: &mut String, report: &ParsedReport) {
    if !report.pillars.is_empty() {
        let _ = writeln!(out, "\nPillars");
        for p in &report.pillars {
            let _ = writeln!(
                out,
                "  {:<14} {} ({})",
                p.pillar,
                grade_name(p.grade()),
                scale_name(p.scale())
            );
        }
    }
    if report.judgments.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nJudgments ({})", report.judgments.len());
    let rows: Vec<[String; 5]> = report
        .judgments
        .iter()
        .map(|j| {
            [
                j.pillar.clone(),
                j.question.clone(),
                grade_name(j.grade()).to_string(),
                j.last_inspected.clone(),
                if j.carried_over { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    let head = [
        "Pillar",
        "Question",
        "Grade",
        "Last inspected",
        "Carried over",
    ]
    .map(str::to_string);
    table(out, &head, &rows);
    if let Some(scale) = report.judgments.first().map(|j| j.scale()) {
        let _ = writeln!(out, "  (grades on the {} scale)", scale_name(scale));
    }
}

fn findings(out: &mut String, report: &ParsedReport) {
    let _ = writeln!(out, "\nFindings ({})", report.findings.len());
    for (n, f) in report.findings.iter().enumerate() {
        let place = place(&f.pillar, &f.question);
        let _ = writeln!(
            out,
            "  {}. {}{} (lines {})",
            n + 1,
            kind_name(f.kind()),
            place,
            span(f.line_start, f.line_end)
        );
        wrap(out, &f.text, "     ", "     ");
        if !f.deadline.is_empty() {
            let _ = writeln!(out, "     Deadline: {}", f.deadline);
        }
        if !f.parent.is_empty() {
            wrap(out, &f.parent, "     Cause of concern: ", "       ");
        }
    }
}

fn follow_ups(out: &mut String, report: &ParsedReport) {
    let _ = writeln!(
        out,
        "\nFollow-ups of earlier inspections ({})",
        report.follow_ups.len()
    );
    for (n, f) in report.follow_ups.iter().enumerate() {
        let referenced = match (
            f.referenced_period.is_empty(),
            f.referenced_report.is_empty(),
        ) {
            (false, false) => format!("{} {} report", f.referenced_period, f.referenced_report),
            (false, true) => f.referenced_period.clone(),
            (true, false) => format!("{} report", f.referenced_report),
            (true, true) => "an earlier report".to_string(),
        };
        let _ = writeln!(
            out,
            "  {}. {} — of the {referenced}{} (lines {})",
            n + 1,
            outcome_name(f.outcome()),
            place(&f.pillar, &f.question),
            span(f.line_start, f.line_end)
        );
        wrap(out, &f.text, "     ", "     ");
        let kinds = plural_kind(f.referenced_kind());
        match f.scope() {
            FollowUpScope::AllOfKind if f.stated_count > 0 => {
                let _ = writeln!(
                    out,
                    "     (counted: all {} {kinds} of that inspection)",
                    f.stated_count
                );
            }
            FollowUpScope::AllOfKind => {
                let _ = writeln!(out, "     (every one of that inspection's {kinds})");
            }
            FollowUpScope::Summary => {
                let _ = writeln!(
                    out,
                    "     (a summary of that inspection's {kinds}; no item named)"
                );
            }
            FollowUpScope::Item | FollowUpScope::Unspecified => {}
        }
        if !f.quoted_item.is_empty() {
            wrap(out, &f.quoted_item, "     Quoted earlier item: ", "       ");
        }
    }
}

fn indicators(out: &mut String, report: &ParsedReport) {
    let _ = writeln!(out, "\nIndicators ({})", report.indicators.len());
    for i in &report.indicators {
        let period = if i.period.is_empty() {
            String::new()
        } else {
            format!(" ({})", i.period)
        };
        let comparison = match i.comparator_value {
            Some(v) => format!("; {}: {}", or_unknown(&i.comparator), figure(v, &i.unit)),
            None => String::new(),
        };
        let line = format!(
            "{}{period}: {}{comparison}",
            i.measure,
            figure(i.value, &i.unit)
        );
        wrap(out, &line, "  - ", "    ");
    }
}

/// " — Effectiveness / Investigating crime", or "" when neither is known.
fn place(pillar: &str, question: &str) -> String {
    match (pillar.is_empty(), question.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(" — {pillar}"),
        (true, false) => format!(" — {question}"),
        (false, false) => format!(" — {pillar} / {question}"),
    }
}

fn span(start: u32, end: u32) -> String {
    if start == end {
        start.to_string()
    } else {
        format!("{start}–{end}")
    }
}

fn figure(value: f64, unit: &str) -> String {
    match unit {
        "%" => format!("{value}%"),
        "GBP" => format!("£{value}"),
        "" => format!("{value}"),
        other => format!("{value} {other}"),
    }
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() { "(not found)" } else { text }
}

fn scale_name(scale: GradeScale) -> &'static str {
    match scale {
        GradeScale::FourTier => "four-tier",
        GradeScale::FiveTier => "five-tier",
        GradeScale::Unspecified => "unstated",
    }
}

fn kind_name(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::AreaForImprovement => "Area for improvement",
        FindingKind::CauseOfConcern => "Cause of concern",
        FindingKind::Recommendation => "Recommendation",
        FindingKind::NationalRecommendation => "National recommendation",
        FindingKind::NoteworthyPractice => "Noteworthy practice",
        FindingKind::Unspecified => "Finding",
    }
}

/// A kind of item in the plural, as a sentence speaks of them.
fn plural_kind(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::AreaForImprovement => "areas for improvement",
        FindingKind::CauseOfConcern => "causes of concern",
        FindingKind::Recommendation => "recommendations",
        FindingKind::NationalRecommendation => "national recommendations",
        FindingKind::NoteworthyPractice => "noteworthy practices",
        FindingKind::Unspecified => "items",
    }
}

fn outcome_name(outcome: FollowUpOutcome) -> &'static str {
    match outcome {
        FollowUpOutcome::Addressed => "Addressed",
        FollowUpOutcome::PartiallyAddressed => "Partially addressed",
        FollowUpOutcome::NotAddressed => "Not addressed",
        FollowUpOutcome::Unclear | FollowUpOutcome::Unspecified => "Unclear",
    }
}

/// A left-aligned table with a header row and a rule, indented two spaces.
fn table(out: &mut String, head: &[String; 5], rows: &[[String; 5]]) {
    let mut widths = head.each_ref().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String; 5]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
        format!("  {}", padded.join("  ").trim_end())
    };
    let _ = writeln!(out, "{}", line(head));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let _ = writeln!(out, "  {}", rule.join("  "));
    for row in rows {
        let _ = writeln!(out, "{}", line(row));
    }
}

/// Writes `text` word-wrapped at [`WIDTH`] columns, the first line after
/// `first`, the others after `rest`.
fn wrap(out: &mut String, text: &str, first: &str, rest: &str) {
    let mut line = first.to_string();
    let mut line_len = first.chars().count();
    let mut empty = true;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if !empty && line_len + 1 + len > WIDTH {
            let _ = writeln!(out, "{line}");
            line = rest.to_string();
            line_len = rest.chars().count();
            empty = true;
        }
        if !empty {
            line.push(' ');
            line_len += 1;
        }
        line.push_str(word);
        line_len += len;
        empty = false;
    }
    let _ = writeln!(out, "{}", line.trim_end());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_the_width() {
        let mut out = String::new();
        let text = "word ".repeat(60);
        wrap(&mut out, &text, "  ", "  ");
        assert!(out.lines().count() > 1);
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH));
    }

    #[test]
    fn an_empty_report_renders() {
        let text = render_summary(&ParsedReport::default());
        assert!(text.contains("(not found)"));
        assert!(text.contains("Findings (0)"));
    }
}
