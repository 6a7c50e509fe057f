//! The report parser of Closeout: an inspection report's text in, a
//! [`ParsedReport`] out — the organisation, the inspection, the pillar and
//! question judgments, the findings (areas for improvement, causes of concern
//! and their recommendations, national recommendations, noteworthy practice),
//! the follow-up statements about earlier inspections, and the context
//! indicators. Pure: no I/O, no clock, no global state, and no panics on any
//! input.
//!
//! ```
//! let text = "PEEL\n\nPolice effectiveness, efficiency and legitimacy 2018/19\n\n\
//!             An inspection of Loamshire Constabulary\n\nInvestigating crime\n\nGood\n\n\
//!             Areas for improvement\n\n- The force should improve its cyber strategy.\n";
//! let report = closeout_report::parse(text).unwrap();
//! assert_eq!(report.organisation.unwrap().id, "loamshire");
//! assert_eq!(report.findings[0].question, "Investigating crime");
//! print!("{}", closeout_report::render_summary(&closeout_report::parse(text).unwrap()));
//! ```
//!
//! The pipeline, one module each:
//! 1. `lines`: numbered lines (Windows line endings and a byte-order mark
//!    removed without shifting line numbers), links reduced to their words;
//! 2. `units`: paragraphs, list items and table rows, headings and grade lines;
//! 3. `identity`: organisation, programme, period, title, publication date,
//!    most similar group;
//! 4. `sections`: the pillar and question every unit belongs to, and the
//!    graded headings;
//! 5. `judgments`: the "Overall summary" table (or the graded headings);
//! 6. `findings` (with `deadline`): the items to act on;
//! 7. `followups`: what the report says about earlier items;
//! 8. `indicators`: the "Force in context" figures;
//! 9. `summary`: the text rendering for people.
//!
//! What the parser expected and did not find goes into `warnings`; a text with
//! too little of a report in it is refused with a [`ParseError`].

mod deadline;
mod error;
mod findings;
mod followups;
mod grades;
mod identity;
mod indicators;
mod judgments;
mod lines;
mod sections;
mod summary;
mod text;
mod units;

use closeout_proto::{Grade, OrganisationKind, ParsedReport, PillarJudgment, QuestionJudgment};

pub use error::ParseError;
pub use summary::render_summary;

/// The largest text the parser accepts, in bytes: far above any published
/// report (the reference report is about 100 KB), low enough to bound the work
/// an adversarial input can cause.
pub const MAX_REPORT_BYTES: usize = 32 * 1024 * 1024;

/// Parses an inspection report's text.
///
/// Returns [`ParseError`] when the text is empty, binary, too large, or holds
/// too little of a report (fewer than two of: an inspected organisation, an
/// inspection programme, judgments, findings or follow-ups). Anything else
/// gives a report, with `warnings` for what was expected and not found (a
/// truncated report gives what it has).
pub fn parse(text: &str) -> Result<ParsedReport, ParseError> {
    check_text(text)?;
    let lines = lines::split(text);
    let units = units::build(&lines);
    let identity = identity::identify(&units);
    let kind = identity
        .organisation
        .as_ref()
        .map_or(OrganisationKind::Unspecified, |o| o.kind());
    let outline = sections::outline(&units, kind);
    let inspection = identity.inspection;
    let period = inspection.period.clone();

    let table = judgments::from_table(&units, &outline);
    let from_table = table.is_some();
    let raw = table.unwrap_or_else(|| judgments::from_body(&units, &outline, &period));
    let any_adequate = raw.iter().any(|j| j.grade == Grade::Adequate)
        || outline
            .pillar_grades
            .iter()
            .any(|p| p.grade == Grade::Adequate);
    let scale = grades::scale_for(&inspection.programme, &period, any_adequate);

    let mut pillars: Vec<PillarJudgment> = Vec::new();
    for p in &outline.pillar_grades {
        let name = sections::PILLARS.get(p.pillar).copied().unwrap_or_default();
        if !pillars.iter().any(|seen| seen.pillar == name) {
            pillars.push(PillarJudgment {
                pillar: name.to_string(),
                grade: p.grade as i32,
                scale: scale as i32,
            });
        }
    }
    let judgments: Vec<QuestionJudgment> = raw
        .iter()
        .map(|j| QuestionJudgment {
            pillar: j.pillar.clone(),
            question: j.question.clone(),
            grade: j.grade as i32,
            scale: scale as i32,
            last_inspected: j.last_inspected.clone(),
            carried_over: !j.last_inspected.is_empty()
                && !period.is_empty()
                && j.last_inspected != period,
        })
        .collect();

    let extracted = findings::extract(&units, &outline);
    let follow_ups = followups::extract(&units, &outline, &period, &inspection.published);
    let indicators = indicators::extract(&units, &outline);

    let mut warnings = Vec::new();
    if identity.organisation.is_none() {
        warnings.push(
            "no inspected organisation found (expected “An inspection of <name>” near the top)"
                .to_string(),
        );
    }
    if inspection.programme.is_empty() {
        warnings.push(
            "no inspection programme found (expected “PEEL” or a fire and rescue inspection title)"
                .to_string(),
        );
    }
    if period.is_empty() {
        warnings
            .push("no inspection period found (expected e.g. “2018/19” in the title)".to_string());
    }
    if inspection.published.is_empty() {
        warnings.push(
            "no publication date found (expected a closing “<Month> <year> | ©HMICFRS <year>” line or \
             “Published on: <date>”); the text may be truncated"
                .to_string(),
        );
    }
    if judgments.is_empty() && pillars.is_empty() {
        warnings.push(
            "no graded judgments found (expected an “Overall summary” table or headings followed by a grade)"
                .to_string(),
        );
    }
    if from_table {
        let mut listed: Vec<&str> = Vec::new();
        for j in &judgments {
            if !j.pillar.is_empty() && !listed.contains(&j.pillar.as_str()) {
                listed.push(&j.pillar);
            }
        }
        for pillar in listed {
            if !pillars.iter().any(|p| p.pillar == pillar) {
                warnings.push(format!(
                    "the summary table lists {pillar} judgments but no graded {pillar} section (a pillar \
                     question followed by its grade) was found; the text may be truncated"
                ));
            }
        }
    }
    warnings.extend(extracted.warnings);

    let report = ParsedReport {
        organisation: identity.organisation,
        inspection: Some(inspection),
        pillars,
        judgments,
        findings: extracted.findings,
        follow_ups,
        indicators,
        warnings,
        most_similar_group: identity.most_similar_group,
    };
    check_is_report(&report)?;
    Ok(report)
}

/// Refuses text that cannot be a report before any parsing.
fn check_text(text: &str) -> Result<(), ParseError> {
    if text.len() > MAX_REPORT_BYTES {
        return Err(ParseError::TooLarge {
            bytes: text.len(),
            limit: MAX_REPORT_BYTES,
        });
    }
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    if body.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    if body.contains('\0') {
        return Err(ParseError::Binary {
            reason: "it contains NUL bytes".to_string(),
        });
    }
    let (mut total, mut odd) = (0usize, 0usize);
    for c in body.chars() {
        total += 1;
        if c == char::REPLACEMENT_CHARACTER
            || (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
        {
            odd += 1;
        }
    }
    if odd.saturating_mul(10) > total {
        return Err(ParseError::Binary {
            reason: format!(
                "{odd} of its {total} characters are control characters or invalid UTF-8 replaced"
            ),
        });
    }
    Ok(())
}

/// Refuses a result with fewer than two signs of a report.
fn check_is_report(report: &ParsedReport) -> Result<(), ParseError> {
    let mut found = Vec::new();
    if let Some(o) = &report.organisation {
        found.push(format!("an organisation ({})", o.name));
    }
    if report
        .inspection
        .as_ref()
        .is_some_and(|i| !i.programme.is_empty())
    {
        found.push("a programme".to_string());
    }
    if !report.judgments.is_empty() || !report.pillars.is_empty() {
        found.push("judgments".to_string());
    }
    if !report.findings.is_empty() || !report.follow_ups.is_empty() {
        found.push("findings".to_string());
    }
    if found.len() >= 2 {
        return Ok(());
    }
    Err(ParseError::NotAReport {
        found: if found.is_empty() {
            "nothing recognisable".to_string()
        } else {
            found.join(", ")
        },
    })
}
