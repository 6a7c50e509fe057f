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
//! 2. `units`: paragraphs, list items and table rows, headings and grade lines
//!    (a "Last updated" line is a date, never a heading);
//! 3. `identity`: organisation, programme, period, title, publication date,
//!    most similar group; `dating`: the dates a page or letter states
//!    elsewhere ("Last updated 20/12/2018", "Sent on"), and a period from the
//!    programme and date;
//! 4. `profile`: which of the inspectorate's layouts the text is (PEEL
//!    2014–17 … 2023–25, fire and rescue 2018/19 … 2023–25, letters,
//!    national reports); `options`: what the caller supplies where the
//!    document is silent ([`ParseOptions`]);
//! 5. `sections` (with `grade_sentences`): the pillar and question every unit
//!    belongs to, and the graded headings and grade sentences;
//! 6. `judgments`: the "Overall summary" table (or the graded headings, and
//!    the previous grades they state);
//! 7. `findings` (with `deadline`): the items to act on, the framework's
//!    boilerplate that is not one, and a revisit letter's quoted items;
//! 8. `followups`: what the report says about earlier items;
//! 9. `indicators`: the "Force in context" figures;
//! 10. `summary` and `explain`: the text renderings for people — the summary,
//!     and line by line which rule read what ([`render_explanation`]).
//!
//! What the parser expected and did not find goes into `warnings`; a text with
//! too little of a report in it is refused with a [`ParseError`].

mod dating;
mod deadline;
mod error;
mod explain;
mod findings;
mod followups;
mod grade_sentences;
mod grades;
mod identity;
mod indicators;
mod judgments;
mod lines;
mod options;
mod profile;
mod sections;
mod summary;
mod text;
mod units;

use closeout_proto::{
    FollowUpOutcome, Grade, OrganisationKind, ParsedExplanation, ParsedInspection,
    ParsedOrganisation, ParsedReport, PillarJudgment, QuestionJudgment,
};

use explain::Element;
use profile::Profile;

pub use error::ParseError;
pub use explain::render_explanation;
pub use options::ParseOptions;
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
    parse_with(text, &ParseOptions::default())
}

/// Parses an inspection report's text, using `options` for what the document
/// does not state (each use, and each supplied value the document
/// contradicts, is a warning; the document wins).
///
/// Returns [`ParseError::BadOption`] for a malformed supplied value, and
/// otherwise the errors of [`parse`].
pub fn parse_with(text: &str, options: &ParseOptions) -> Result<ParsedReport, ParseError> {
    options::check(options)?;
    check_text(text)?;
    let lines = lines::split(text);
    let units = units::build(&lines);
    let identity::Identity {
        mut organisation,
        mut inspection,
        most_similar_group,
    } = identity::identify(&units);
    let mut explanations: Vec<ParsedExplanation> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();

    // A date the document states outside the usual places.
    let mut published_rule = "identity.published";
    if inspection.published.is_empty()
        && let Some(found) = dating::last_updated(&units)
    {
        inspection.published = found.date;
        published_rule = found.rule;
    }
    let mut detection = profile::detect(
        &units,
        &inspection.programme,
        &inspection.period,
        &inspection.published,
        organisation.is_some(),
    );
    let profile_of = |d: &Option<profile::Detection>| d.as_ref().map(|d| d.profile);
    if profile_of(&detection).is_some_and(Profile::is_letter) {
        // A letter's date is its publication; its period is the letter's year.
        if let Some(found) = dating::letter_date(&units) {
            inspection.published = found.date;
            published_rule = found.rule;
        }
        if let Some(period) =
            profile_of(&detection).and_then(|p| dating::period_for(p, &inspection.published))
        {
            inspection.period = period;
        }
    }
    if profile_of(&detection) == Some(Profile::National) {
        // A national report inspects no one organisation, and belongs to no
        // one programme's round.
        organisation = None;
        inspection.programme = String::new();
    }
    options::apply(&mut organisation, &mut inspection, &mut warnings, options);
    if detection.is_none() {
        detection = profile::detect(
            &units,
            &inspection.programme,
            &inspection.period,
            &inspection.published,
            organisation.is_some(),
        );
    }
    let profile = profile_of(&detection);
    let mut period_rule = "identity.period";
    if inspection.period.is_empty()
        && let Some(period) = profile.and_then(|p| dating::period_for(p, &inspection.published))
    {
        inspection.period = period;
        period_rule = "date.period-from-programme-and-date";
    }
    explain_identity(
        &units,
        detection.as_ref(),
        organisation.as_ref(),
        &inspection,
        (published_rule, period_rule),
        &mut explanations,
    );

    let kind = organisation
        .as_ref()
        .map_or(OrganisationKind::Unspecified, |o| o.kind());
    let outline = sections::outline(&units, kind, profile);
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
            explanations.push(explain::explanation(
                p.line,
                p.line,
                Element::Judgment,
                p.rule,
                &format!("pillar {name}: {}", grades::grade_name(p.grade)),
            ));
        }
    }
    let judgments: Vec<QuestionJudgment> = raw
        .iter()
        .map(|j| {
            let carried_over =
                !j.last_inspected.is_empty() && !period.is_empty() && j.last_inspected != period;
            // A judgment of an earlier round is on that round's scale.
            let scale = if carried_over {
                grades::scale_for(
                    &inspection.programme,
                    &j.last_inspected,
                    j.grade == Grade::Adequate,
                )
            } else {
                scale
            };
            explanations.push(explain::explanation(
                j.line,
                j.line,
                Element::Judgment,
                j.rule,
                &format!(
                    "{}{}: {}{}",
                    if j.pillar.is_empty() {
                        String::new()
                    } else {
                        format!("{} / ", j.pillar)
                    },
                    j.question,
                    grades::grade_name(j.grade),
                    if carried_over {
                        format!(" (carried over from {})", j.last_inspected)
                    } else {
                        String::new()
                    }
                ),
            ));
            QuestionJudgment {
                pillar: j.pillar.clone(),
                question: j.question.clone(),
                grade: j.grade as i32,
                scale: scale as i32,
                last_inspected: j.last_inspected.clone(),
                carried_over,
            }
        })
        .collect();

    let extracted = findings::extract(&units, &outline, profile);
    let follow_ups = followups::extract(
        &units,
        &outline,
        &period,
        &inspection.published,
        profile,
        &extracted.references,
    );
    let indicators = indicators::extract(&units, &outline);
    explanations.extend(extracted.explanations.iter().cloned());
    for f in &follow_ups {
        explanations.push(explain::explanation(
            f.line_start,
            f.line_end,
            Element::FollowUp,
            &f.rule,
            &format!(
                "{} ({}): {}",
                outcome_word(f.outcome()),
                if f.referenced_period.is_empty() {
                    "earlier"
                } else {
                    f.referenced_period.as_str()
                },
                f.text
            ),
        ));
    }
    for i in &indicators {
        explanations.push(explain::explanation(
            i.line,
            i.line,
            Element::Indicator,
            "indicator.context-figure",
            &format!("{}: {} {}", i.measure, i.value, i.unit),
        ));
    }

    if organisation.is_none() && profile != Some(Profile::National) {
        warnings.push(
            "no inspected organisation found (expected “An inspection of <name>” near the top); \
             supply it with --organisation <id>, e.g. --organisation avon-and-somerset"
                .to_string(),
        );
    }
    if inspection.programme.is_empty() && profile != Some(Profile::National) {
        warnings.push(
            "no inspection programme found (expected “PEEL” or a fire and rescue inspection title)"
                .to_string(),
        );
    }
    if period.is_empty() {
        warnings.push(
            "no inspection period found (expected e.g. “2018/19” in the title); supply it with \
             --period, e.g. --period 2018/19"
                .to_string(),
        );
    }
    if inspection.published.is_empty() {
        warnings.push(
            "no publication date found (expected “Published on: <date>”, “Last updated DD/MM/YYYY”, \
             a letter's date or a closing “<Month> <year> | ©HMICFRS <year>” line); the text may be \
             truncated; supply it with --published, e.g. --published 2018-12-20"
                .to_string(),
        );
    }
    let graded_layout = !profile.is_some_and(|p| p.is_letter() || p == Profile::National);
    if graded_layout && judgments.is_empty() && pillars.is_empty() {
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

    let mut report = ParsedReport {
        organisation,
        inspection: Some(inspection),
        pillars,
        judgments,
        findings: extracted.findings,
        follow_ups,
        indicators,
        warnings,
        most_similar_group,
        profile: profile.map_or(String::new(), |p| p.id().to_string()),
        explanations,
    };
    report
        .explanations
        .sort_by_key(|e| (e.line_start, e.line_end));
    check_is_report(&report)?;
    Ok(report)
}

/// The outcome in a word or two, for the explanation.
fn outcome_word(outcome: FollowUpOutcome) -> &'static str {
    match outcome {
        FollowUpOutcome::Addressed => "addressed",
        FollowUpOutcome::PartiallyAddressed => "partially addressed",
        FollowUpOutcome::NotAddressed => "not addressed",
        FollowUpOutcome::Unclear | FollowUpOutcome::Unspecified => "unclear",
    }
}

/// Explanation lines for the profile and the identity.
fn explain_identity(
    units: &[units::Unit],
    detection: Option<&profile::Detection>,
    organisation: Option<&ParsedOrganisation>,
    inspection: &ParsedInspection,
    (published_rule, period_rule): (&'static str, &'static str),
    out: &mut Vec<ParsedExplanation>,
) {
    let line_of = |needle: &str| {
        if needle.is_empty() {
            return None;
        }
        units
            .iter()
            .find(|u| u.text.contains(needle))
            .map(|u| u.first_line)
    };
    let first_line = units.first().map_or(1, |u| u.first_line);
    if let Some(d) = detection {
        let line = if d.line == 0 { first_line } else { d.line };
        out.push(explain::explanation(
            line,
            line,
            Element::Identity,
            d.rule,
            &format!("profile {}: {}", d.profile.id(), d.summary),
        ));
    }
    if let Some(o) = organisation {
        let line = line_of(&o.name).unwrap_or(first_line);
        out.push(explain::explanation(
            line,
            line,
            Element::Identity,
            "identity.organisation",
            &format!("organisation {} ({})", o.name, o.id),
        ));
    }
    if !inspection.published.is_empty() {
        let line = match published_rule {
            "identity.published" => units
                .iter()
                .find(|u| {
                    let lower = u.text.to_ascii_lowercase();
                    lower.starts_with("published") || u.text.contains('©')
                })
                .map_or(first_line, |u| u.first_line),
            _ => units
                .iter()
                .find(|u| {
                    let lower = u.text.to_ascii_lowercase();
                    lower.starts_with("last updated") || lower.starts_with("sent on")
                })
                .map_or(first_line, |u| u.first_line),
        };
        out.push(explain::explanation(
            line,
            line,
            Element::Identity,
            published_rule,
            &format!("published {}", inspection.published),
        ));
    }
    if !inspection.period.is_empty() {
        let line = line_of(&inspection.period).unwrap_or(first_line);
        out.push(explain::explanation(
            line,
            line,
            Element::Identity,
            period_rule,
            format!("{} period {}", inspection.programme, inspection.period).trim(),
        ));
    }
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
    if report.profile == "national" {
        found.push("recommendations to every force or service".to_string());
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
