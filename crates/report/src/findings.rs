//! Findings: the items the report asks the inspected body (or every body) to
//! act on, one finding per item, in document order.
//!
//! Rules:
//! * **Areas for improvement**: the items after an "Areas for improvement"
//!   heading. An item is a list item (any bullet style) or, for reports written
//!   without bullets, a paragraph that directs ("… should …", "… needs to …",
//!   "… must …"); the list ends at the first unit that is neither (the sample's
//!   "We set out our detailed findings below…"), a heading or a grade.
//! * **Causes of concern**: the paragraphs after a "Cause of concern" heading up
//!   to its "Recommendations" heading (or an introduction such as "To address
//!   this cause of concern, we recommend that the force should:") are one
//!   CAUSE_OF_CONCERN. Each item of the recommendations that follow is a
//!   RECOMMENDATION whose `parent` is the cause's text.
//! * **Deadlines**: an introduction ending in ":" ("Within six months, the
//!   force should:") sets the deadline of the items after it, unless an item
//!   states its own ("The force should immediately …"). When a list of
//!   lowercase fragments has no introductory deadline and only its last
//!   fragment states one ("…; and publish the analysis by July 2018."), the
//!   deadline is the whole list's. See [`crate::deadline`] for the clauses.
//! * **National recommendations**: the items of a "Recommendation(s) to all
//!   forces" / "National recommendation(s)" section, and a present-tense "We
//!   recommend that all forces …" paragraph (its list items, if it ends in
//!   ":"). A past-tense "In our 2017 legitimacy report, we recommended that all
//!   forces should …" is *not* a finding of this report but a follow-up of an
//!   earlier one (see [`crate::followups`]).
//! * **Noteworthy practice**: the paragraphs after a "Noteworthy practice" (or
//!   "Innovative practice", "Promising practice") heading, as one finding.
//! * **Framework boilerplate** ("All fire and rescue services should identify
//!   and assess …", "Each fire and rescue service should …", "National
//!   guidance says that each force should …", "The Fire and Rescue National
//!   Framework … should …"), before or after a list, directs no one in
//!   particular: it ends a list and is explained as boilerplate, not a
//!   finding (under a recommendations heading it is the recommendation).
//!   A paragraph that refers back to an earlier inspection ("In 2018, we said
//!   the service should …") ends a list too: it is a follow-up.
//! * **Letters**: an accelerated cause-of-concern letter's causes are the items
//!   after "We've decided to issue the service with two accelerated causes of
//!   concern:"; its recommendations are grouped under sub-headings, each
//!   group's parent the cause its heading names. A revisit letter's quoted
//!   causes and recommendations ("Cause of concern" sections, "We said:",
//!   "We made the following recommendations:") are `references`, not
//!   findings.
//! * **National reports**: under "Recommendations to all chief constables" (or
//!   "… all fire and rescue services"), each "Recommendation N" is a
//!   NATIONAL_RECOMMENDATION; one to another body ("Recommendation to the
//!   College of Policing") is not recorded (a warning says so).
//! * Every finding takes the pillar and question of the unit it is written in
//!   ([`crate::sections`]): the nearest preceding question heading.

use closeout_proto::{FindingKind, ParsedExplanation, ParsedFinding};

use crate::deadline;
use crate::explain::{Element, explanation};
use crate::followups;
use crate::profile::{self, Profile};
use crate::sections::Outline;
use crate::text::{self, fold};
use crate::units::{Kind, Unit};

/// What a section heading opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    AreasForImprovement,
    CauseOfConcern,
    Recommendations,
    National,
    Noteworthy,
}

/// The findings and what was expected and not found.
#[derive(Debug, Default)]
pub(crate) struct Extracted {
    pub findings: Vec<ParsedFinding>,
    pub warnings: Vec<String>,
    /// Earlier items quoted word for word (revisit letters): references to
    /// them, not findings of this document.
    pub references: Vec<ParsedFinding>,
    pub explanations: Vec<ParsedExplanation>,
}

/// One list item before it becomes a finding.
#[derive(Debug, Clone)]
struct Item {
    unit: usize,
    text: String,
    first_line: u32,
    last_line: u32,
    deadline: String,
}

/// Extracts every finding (see the module documentation).
pub(crate) fn extract(units: &[Unit], outline: &Outline, profile: Option<Profile>) -> Extracted {
    let mut out = Extracted::default();
    let mut rules: Vec<&'static str> = Vec::new();
    let national = profile == Some(Profile::National);
    let accelerated = profile == Some(Profile::LetterAcceleratedCauseOfConcern);
    let revisit = profile == Some(Profile::LetterRevisit);
    // National reports: whether the recommendations being read are addressed
    // to every force or service (None until a heading says).
    let mut audience_all: Option<bool> = None;
    let mut causes: Vec<String> = Vec::new();
    // Under a recommendations heading, "All fire and rescue services should
    // …" is a recommendation, not the framework's boilerplate.
    let mut in_recommendations = false;
    let mut i = 0;
    while i < units.len() {
        let unit = &units[i];
        if outline.in_contents(i) {
            i += 1;
            continue;
        }
        let followed_by_heading = units.get(i + 1).is_some_and(Unit::is_heading);
        if unit.is_heading() {
            in_recommendations = matches!(
                section_of(unit),
                Some(Section::Recommendations | Section::National)
            ) || recommendation_audience(&unit.text).is_some();
        }
        if !in_recommendations && unit.is_prose() && is_boilerplate(&unit.text) {
            out.explanations.push(explanation(
                unit.first_line,
                unit.last_line,
                Element::Boilerplate,
                "framework-boilerplate",
                &unit.text,
            ));
            i += 1;
            continue;
        }
        if national && unit.is_heading() {
            if let Some(all) = recommendation_audience(&unit.text) {
                audience_all = Some(all);
            }
        }
        match section_of(unit) {
            Some(Section::AreasForImprovement) => {
                let (items, next) = list(units, i + 1);
                if items.is_empty() && !followed_by_heading {
                    out.warnings.push(format!(
                        "“{}” at line {} is followed by no items",
                        unit.text, unit.first_line
                    ));
                }
                for item in items {
                    out.findings
                        .push(finding(FindingKind::AreaForImprovement, &item, "", outline));
                    rules.push("improvement-list");
                }
                i = next.max(i + 1);
            }
            Some(Section::CauseOfConcern) => {
                i = cause_of_concern(units, i, outline, &mut out, &mut rules);
            }
            Some(Section::Recommendations) if accelerated && !causes.is_empty() => {
                i = letter_recommendations(units, i + 1, &causes, outline, &mut out, &mut rules);
            }
            Some(Section::Recommendations) if national => {
                let (items, next) = list_in(units, i + 1, false);
                for item in items {
                    let to_all = audience_all.unwrap_or(false)
                        || profile::is_national_audience(&item.text)
                        || is_present_national(&item.text);
                    if to_all && audience_all != Some(false) {
                        out.findings.push(finding(
                            FindingKind::NationalRecommendation,
                            &item,
                            "",
                            outline,
                        ));
                        rules.push("national-recommendation");
                    } else {
                        out.warnings.push(format!(
                            "the recommendation at line {} is addressed to another body, not to every force or \
                             service; it is not recorded as a finding",
                            item.first_line
                        ));
                    }
                }
                i = next.max(i + 1);
            }
            Some(Section::Recommendations) => {
                let (items, next) = list(units, i + 1);
                if items.is_empty() && !followed_by_heading {
                    out.warnings.push(format!(
                        "“{}” at line {} is followed by no recommendations",
                        unit.text, unit.first_line
                    ));
                }
                for item in items {
                    out.findings
                        .push(finding(FindingKind::Recommendation, &item, "", outline));
                    rules.push("recommendation-list");
                }
                i = next.max(i + 1);
            }
            Some(Section::National) => {
                audience_all = Some(true);
                let (items, next) = list(units, i + 1);
                if items.is_empty() && !followed_by_heading {
                    out.warnings.push(format!(
                        "“{}” at line {} is followed by no recommendations",
                        unit.text, unit.first_line
                    ));
                }
                for item in items {
                    out.findings.push(finding(
                        FindingKind::NationalRecommendation,
                        &item,
                        "",
                        outline,
                    ));
                    rules.push("national-section");
                }
                i = next.max(i + 1);
            }
            Some(Section::Noteworthy) => {
                // The practice's own title may head its paragraphs.
                let title = units
                    .get(i + 1)
                    .filter(|u| u.is_heading() && section_of(u).is_none());
                let from = i + 1 + usize::from(title.is_some());
                let (text, first, last, next) = paragraphs(units, from, false);
                let (text, first) = match title {
                    Some(t) if !text.is_empty() => (format!("{}. {text}", t.text), t.first_line),
                    Some(t) => (t.text.clone(), t.first_line),
                    None => (text, first),
                };
                let last = if last == 0 { first } else { last };
                if !text.is_empty() {
                    let item = Item {
                        unit: i + 1,
                        text,
                        first_line: first,
                        last_line: last,
                        deadline: String::new(),
                    };
                    out.findings
                        .push(finding(FindingKind::NoteworthyPractice, &item, "", outline));
                    rules.push("noteworthy-practice");
                }
                i = next.max(i + 1);
            }
            // A revisit letter's "We said:" quotes the earlier cause of
            // concern; "We made the following recommendations:" its
            // recommendations (both references once read).
            None if revisit
                && unit.kind == Kind::Text
                && fold(&unit.text).ends_with("we said:") =>
            {
                let (text, first, last, next) = paragraphs(units, i + 1, true);
                if !text.is_empty() {
                    let item = Item {
                        unit: i + 1,
                        text: text.clone(),
                        first_line: first,
                        last_line: last,
                        deadline: String::new(),
                    };
                    let kind = if fold(&unit.text).contains("recommend") {
                        FindingKind::Recommendation
                    } else {
                        FindingKind::CauseOfConcern
                    };
                    if kind == FindingKind::CauseOfConcern {
                        causes.push(text);
                    }
                    out.findings.push(finding(kind, &item, "", outline));
                    rules.push("quoted-item");
                }
                i = next.max(i + 1);
            }
            None if revisit
                && unit.kind == Kind::Text
                && is_introduction(&unit.text)
                && fold(&unit.text).contains("recommend") =>
            {
                let (items, next) = list(units, i);
                let parent = causes.last().cloned().unwrap_or_default();
                for item in items {
                    out.findings.push(finding(
                        FindingKind::Recommendation,
                        &item,
                        &parent,
                        outline,
                    ));
                    rules.push("quoted-item");
                }
                i = next.max(i + 1);
            }
            None if accelerated && unit.is_prose() && is_accelerated_intro(&unit.text) => {
                let (items, next) = list(units, i + 1);
                for item in items {
                    causes.push(item.text.clone());
                    out.findings
                        .push(finding(FindingKind::CauseOfConcern, &item, "", outline));
                    rules.push("accelerated-causes-of-concern");
                }
                i = next.max(i + 1);
            }
            None if unit.is_prose() && is_present_national(&unit.text) => {
                if text::ends_clause(&unit.text) && unit.text.trim_end().ends_with(':') {
                    let (items, next) = list(units, i);
                    for item in items {
                        out.findings.push(finding(
                            FindingKind::NationalRecommendation,
                            &item,
                            "",
                            outline,
                        ));
                        rules.push("we-recommend-all");
                    }
                    i = next.max(i + 1);
                } else {
                    let item = item_of(units, i, deadline::find(&unit.text).unwrap_or_default());
                    out.findings.push(finding(
                        FindingKind::NationalRecommendation,
                        &item,
                        "",
                        outline,
                    ));
                    rules.push("we-recommend-all");
                    i += 1;
                }
            }
            None => i += 1,
        }
    }
    if profile == Some(Profile::LetterRevisit) {
        // A revisit letter quotes the earlier items: references, not findings.
        let (quoted, kept): (Vec<_>, Vec<_>) = out
            .findings
            .drain(..)
            .zip(rules.drain(..))
            .partition(|(f, _)| {
                matches!(
                    f.kind(),
                    FindingKind::CauseOfConcern
                        | FindingKind::Recommendation
                        | FindingKind::AreaForImprovement
                )
            });
        for (f, _) in quoted {
            out.explanations.push(explanation(
                f.line_start,
                f.line_end,
                Element::Reference,
                "letter.quoted-earlier-item",
                &format!("{}: {}", kind_word(f.kind()), f.text),
            ));
            out.references.push(f);
        }
        for (f, rule) in kept {
            out.findings.push(f);
            rules.push(rule);
        }
    }
    let prefix = profile.map_or("report", rule_prefix);
    for (f, rule) in out.findings.iter().zip(&rules) {
        out.explanations.push(explanation(
            f.line_start,
            f.line_end,
            Element::Finding,
            &format!("{prefix}.{rule}"),
            &format!("{}: {}", kind_word(f.kind()), f.text),
        ));
    }
    out
}

/// The first part of a rule name for a profile.
fn rule_prefix(profile: Profile) -> &'static str {
    if profile.is_frs() {
        "frs"
    } else if profile.is_letter() {
        "letter"
    } else if profile == Profile::National {
        "national"
    } else {
        "peel"
    }
}

/// A finding kind in the inspectorate's words.
pub(crate) fn kind_word(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::AreaForImprovement => "area for improvement",
        FindingKind::CauseOfConcern => "cause of concern",
        FindingKind::Recommendation => "recommendation",
        FindingKind::NationalRecommendation => "national recommendation",
        FindingKind::NoteworthyPractice => "noteworthy practice",
        FindingKind::Unspecified => "item",
    }
}

/// The framework's statement of what every service (or force) should do,
/// printed after or before a list: "All fire and rescue services should
/// identify and assess …", "Each fire and rescue service should …",
/// "National guidance says that each force should …". It directs no one in
/// particular and sets no deadline, so it is not a finding.
pub(crate) fn is_boilerplate(text: &str) -> bool {
    const LEADS: &[&str] = &[
        "all fire and rescue services should",
        "each fire and rescue service should",
        "every fire and rescue service should",
        "all fire and rescue services must",
        "national guidance says",
        "national guidance states",
    ];
    // Only the opening words matter, compared without folding the text.
    let starts = |lead: &str| crate::units::starts_with_ignoring_case(text, lead);
    let framework = starts("the fire and rescue national framework") && text.contains(" should ");
    (framework || LEADS.iter().any(|lead| starts(lead))) && deadline::find(text).is_none()
}

/// A national report's heading saying to whom the recommendations after it
/// are addressed: Some(true) for every force or service, Some(false) for
/// another body ("Recommendation to the College of Policing").
fn recommendation_audience(heading: &str) -> Option<bool> {
    let lower = fold(heading);
    let rest = [
        "recommendations to ",
        "recommendation to ",
        "recommendations for ",
        "recommendation for ",
    ]
    .iter()
    .find_map(|lead| lower.strip_prefix(lead))?;
    Some(
        rest.starts_with("all ")
            || rest.starts_with("chief constables")
            || rest.starts_with("every ")
            || rest.starts_with("fire and rescue services"),
    )
}

/// "We've decided to issue the service with two accelerated causes of
/// concern:" — the causes follow as a list.
fn is_accelerated_intro(text: &str) -> bool {
    let lower = fold(text);
    text.trim_end().ends_with(':')
        && lower.contains("cause")
        && lower.contains("concern")
        && (lower.contains("decided to issue")
            || lower.contains("we are issuing")
            || lower.contains("we have issued"))
}

/// A letter's recommendations, grouped under sub-headings named after each
/// cause of concern; each group's parent is the cause its heading names (or
/// the cause in the same position). Returns the index after them.
fn letter_recommendations(
    units: &[Unit],
    from: usize,
    causes: &[String],
    outline: &Outline,
    out: &mut Extracted,
    rules: &mut Vec<&'static str>,
) -> usize {
    let mut j = from;
    let mut group = 0usize;
    loop {
        let mut heading: Option<&str> = None;
        while let Some(u) = units
            .get(j)
            .filter(|u| u.is_heading() && section_of(u).is_none())
        {
            heading = Some(&u.text);
            j += 1;
        }
        let (items, next) = list(units, j);
        if items.is_empty() {
            return j;
        }
        let parent = heading
            .and_then(|h| best_match(h, causes))
            .or_else(|| causes.get(group).map(String::as_str))
            .unwrap_or("");
        for item in items {
            out.findings
                .push(finding(FindingKind::Recommendation, &item, parent, outline));
            rules.push("letter-recommendations");
        }
        group += 1;
        j = next;
    }
}

/// Most words of a text compared when linking texts.
const MATCH_WORDS: usize = 120;
/// Most candidates a text is compared with.
const MATCH_CANDIDATES: usize = 200;

/// Words too common in the inspectorate's prose to link two texts.
const COMMON_WORDS: &[&str] = &[
    "with",
    "that",
    "this",
    "have",
    "from",
    "their",
    "they",
    "were",
    "been",
    "should",
    "make",
    "sure",
    "service",
    "force",
    "services",
    "forces",
    "which",
    "what",
    "will",
    "there",
    "these",
    "those",
    "about",
    "into",
    "than",
    "them",
    "recommendation",
    "cause",
    "concern",
    "where",
    "within",
    "months",
    "because",
    "still",
    "made",
];

/// The candidate sharing the most words (of four letters or more) with
/// `text`, if any shares one.
pub(crate) fn best_match<'a, S: AsRef<str>>(text: &str, candidates: &'a [S]) -> Option<&'a str> {
    // Bounded, so that an adversarial letter with thousands of quoted items
    // and paragraphs stays linear.
    // Words of four letters or more, without a plural "s" ("calls" and
    // "call", "abandons" and "abandon" are the same word here), each once.
    let words = |t: &str| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for word in fold(t)
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() >= 4 && !COMMON_WORDS.contains(w))
            .take(MATCH_WORDS)
        {
            let stem = match word.strip_suffix('s') {
                Some(stem) if stem.len() >= 4 && !stem.ends_with('s') => stem,
                _ => word,
            };
            if !out.iter().any(|w| w == stem) {
                out.push(stem.to_string());
            }
        }
        out
    };
    let own = words(text);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates.iter().take(MATCH_CANDIDATES) {
        let candidate = candidate.as_ref();
        let theirs = words(candidate);
        let score = own.iter().filter(|w| theirs.contains(w)).count();
        // Ties go to the first.
        if score > 0 && best.is_none_or(|(top, _)| score > top) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Reads a cause of concern at `heading` and its recommendations; returns the
/// index after them.
fn cause_of_concern(
    units: &[Unit],
    heading: usize,
    outline: &Outline,
    out: &mut Extracted,
    rules: &mut Vec<&'static str>,
) -> usize {
    let line = units.get(heading).map_or(0, |u| u.first_line);
    let (text, first, last, next) = paragraphs(units, heading + 1, true);
    if text.is_empty() {
        out.warnings.push(format!(
            "“Cause of concern” at line {line} is followed by no statement of the concern"
        ));
        return heading + 1;
    }
    if is_none_statement(&text) {
        return next;
    }
    let cause = Item {
        unit: heading + 1,
        text: text.clone(),
        first_line: first,
        last_line: last,
        deadline: String::new(),
    };
    out.findings
        .push(finding(FindingKind::CauseOfConcern, &cause, "", outline));
    rules.push("cause-of-concern");
    let recommendations_at = match units.get(next) {
        Some(u) if section_of(u) == Some(Section::Recommendations) => Some(next + 1),
        Some(u) if is_introduction(&u.text) => Some(next),
        _ => None,
    };
    let Some(start) = recommendations_at else {
        out.warnings.push(format!(
            "the cause of concern at line {first} is followed by no recommendations"
        ));
        return next;
    };
    let (items, after) = list(units, start);
    if items.is_empty() {
        out.warnings.push(format!(
            "the cause of concern at line {first} is followed by no recommendations"
        ));
    }
    for item in items {
        out.findings
            .push(finding(FindingKind::Recommendation, &item, &text, outline));
        rules.push("cause-of-concern-recommendations");
    }
    after.max(start)
}

/// A finding from an item, in the item's pillar and question.
fn finding(kind: FindingKind, item: &Item, parent: &str, outline: &Outline) -> ParsedFinding {
    ParsedFinding {
        kind: kind as i32,
        pillar: outline.pillar_of(item.unit).to_string(),
        question: outline.question_of(item.unit).to_string(),
        text: item.text.clone(),
        deadline: item.deadline.clone(),
        parent: parent.to_string(),
        line_start: item.first_line,
        line_end: item.last_line,
    }
}

fn item_of(units: &[Unit], i: usize, deadline: String) -> Item {
    let unit = &units[i];
    Item {
        unit: i,
        text: unit.text.clone(),
        first_line: unit.first_line,
        last_line: unit.last_line,
        deadline,
    }
}

/// The section a unit's text opens, if it is a section title.
fn section_of(unit: &Unit) -> Option<Section> {
    if unit.kind != Kind::Text || unit.text.len() > 60 {
        return None;
    }
    let lower = fold(&unit.text);
    let title = lower
        .trim_end_matches(|c: char| c == ':' || c.is_ascii_digit() || c.is_whitespace())
        .trim();
    Some(match title {
        "areas for improvement" | "area for improvement" => Section::AreasForImprovement,
        "cause of concern" | "causes of concern" => Section::CauseOfConcern,
        "recommendations" | "recommendation" => Section::Recommendations,
        "recommendations to all forces"
        | "recommendation to all forces"
        | "recommendations for all forces"
        | "recommendation for all forces"
        | "national recommendations"
        | "national recommendation"
        | "recommendations to all fire and rescue services"
        | "recommendation to all fire and rescue services"
        | "recommendations to all chief constables"
        | "recommendation to all chief constables"
        | "recommendations to chief constables" => Section::National,
        "noteworthy practice" | "innovative practice" | "promising practice" => Section::Noteworthy,
        _ => return None,
    })
}

/// A present-tense recommendation to every force or service.
fn is_present_national(text: &str) -> bool {
    if !crate::units::starts_with_ignoring_case(text, "we recommend that") {
        return false;
    }
    let lower = fold(text);
    lower.starts_with("we recommend that")
        && [
            "all forces",
            "every force",
            "all chief constables",
            "all fire and rescue services",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

/// A sentence that introduces a list of recommendations ("Within six months,
/// the force should:", "To address this cause of concern, we recommend that
/// the force should:").
fn is_introduction(text: &str) -> bool {
    text.trim_end().ends_with(':') && (is_directive(text) || fold(text).contains("recommend"))
}

/// A sentence that tells someone to act.
fn is_directive(text: &str) -> bool {
    let lower = fold(text);
    [" should ", " should:", " needs to ", " need to ", " must "]
        .iter()
        .any(|w| lower.contains(w))
        || lower.starts_with("should ")
}

/// "We did not identify any causes of concern."
fn is_none_statement(text: &str) -> bool {
    let lower = fold(text);
    lower.starts_with("none")
        || lower.contains("did not identify any")
        || lower.contains("no causes of concern")
}

/// Reads list items from `from` (see the module documentation); returns them
/// and the index of the first unit after the list.
fn list(units: &[Unit], from: usize) -> (Vec<Item>, usize) {
    list_in(units, from, true)
}

/// [`list`], where `framework_ends_list` says whether the framework's
/// boilerplate ends the list (not under a recommendation heading, where "All
/// fire and rescue services should …" is the recommendation itself).
fn list_in(units: &[Unit], from: usize, framework_ends_list: bool) -> (Vec<Item>, usize) {
    let mut items: Vec<Item> = Vec::new();
    let mut group_start = 0;
    let mut intro_deadline: Option<String> = None;
    let mut intro_seen = false;
    let mut j = from;
    while let Some(unit) = units.get(j) {
        if unit.kind == Kind::Row
            || unit.grade.is_some()
            || (j > from && section_of(unit).is_some())
        {
            break;
        }
        let is_item = match unit.kind {
            Kind::Bullet => true,
            Kind::Text if is_introduction(&unit.text) => {
                finish_group(&mut items[group_start..], intro_deadline.is_some());
                group_start = items.len();
                intro_deadline = deadline::find(&unit.text);
                intro_seen = true;
                j += 1;
                continue;
            }
            Kind::Text
                if (framework_ends_list && is_boilerplate(&unit.text))
                    || followups::refers_back(&unit.text) =>
            {
                false
            }
            Kind::Text => {
                is_directive(&unit.text)
                    || is_present_national(&unit.text)
                    || (intro_seen && text::starts_lowercase(&unit.text))
            }
            Kind::Row => false,
        };
        if !is_item {
            break;
        }
        let own = deadline::find(&unit.text);
        let deadline = own.or_else(|| intro_deadline.clone()).unwrap_or_default();
        items.push(item_of(units, j, deadline));
        j += 1;
    }
    finish_group(&mut items[group_start..], intro_deadline.is_some());
    (items, j)
}

/// Gives a list of fragments the deadline its last fragment states, when no
/// introduction gave one.
fn finish_group(group: &mut [Item], had_intro_deadline: bool) {
    if had_intro_deadline || group.len() < 2 {
        return;
    }
    if !group.iter().all(|item| text::starts_lowercase(&item.text)) {
        return;
    }
    let Some(last) = group.last().map(|item| item.deadline.clone()) else {
        return;
    };
    if last.is_empty() {
        return;
    }
    for item in group.iter_mut() {
        if item.deadline.is_empty() {
            item.deadline = last.clone();
        }
    }
}

/// The prose units from `from` up to a heading, grade, table, section title or
/// (when `stop_at_introduction`) a list introduction, joined by a space:
/// (text, first line, last line, next index).
fn paragraphs(
    units: &[Unit],
    from: usize,
    stop_at_introduction: bool,
) -> (String, u32, u32, usize) {
    let mut text = String::new();
    let (mut first, mut last) = (0, 0);
    let mut j = from;
    while let Some(unit) = units.get(j) {
        let stop = !unit.is_prose()
            || unit.is_heading()
            || unit.grade.is_some()
            || section_of(unit).is_some()
            || (stop_at_introduction && is_introduction(&unit.text));
        if stop {
            break;
        }
        if text.is_empty() {
            first = unit.first_line;
        } else {
            text.push(' ');
        }
        text.push_str(&unit.text);
        last = unit.last_line;
        j += 1;
    }
    (text, first, last, j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_and_introductions() {
        assert!(is_directive("The force should refresh guidance."));
        assert!(is_directive("The force needs to develop a cyber strategy."));
        assert!(!is_directive("We set out our detailed findings below."));
        assert!(is_introduction("Within six months, the force should:"));
        assert!(is_introduction(
            "To address this cause of concern, we recommend that the force:"
        ));
        assert!(!is_introduction("The force should act."));
        assert!(is_present_national(
            "We recommend that all forces should, by 31 March 2020:"
        ));
        assert!(!is_present_national(
            "In our 2017 legitimacy report, we recommended that all forces should:"
        ));
    }

    #[test]
    fn fragments_share_a_final_deadline() {
        let mut group: Vec<Item> = ["monitor data;", "take action on those; and", "publish it"]
            .iter()
            .map(|t| Item {
                unit: 0,
                text: (*t).to_string(),
                first_line: 1,
                last_line: 1,
                deadline: String::new(),
            })
            .collect();
        group[2].deadline = "by July 2018".to_string();
        finish_group(&mut group, false);
        assert!(group.iter().all(|i| i.deadline == "by July 2018"));
    }
}
