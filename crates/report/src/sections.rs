//! Sections: where each unit sits in the report — which pillar (Effectiveness,
//! Efficiency, Legitimacy; People for fire and rescue services) and which
//! inspected question — and the graded headings that give the pillar and
//! question judgments in the body of the report.
//!
//! Rules:
//! * A **pillar** starts at a heading that is exactly a pillar's name, or at a
//!   graded *pillar question* ("How effectively does the force reduce crime and
//!   keep people safe?", "How efficient is the service at keeping people
//!   safe?", "How legitimately …?", "How well does the service look after its
//!   people?"). An "Annex" or "Appendix" heading ends the pillars.
//! * A **graded heading** is a heading whose next unit is a grade line
//!   ("Investigating crime" … "Good"). Unless it is a pillar question, it is a
//!   question: the question of every unit after it, up to the next question or
//!   pillar. The web layout's "How good is the force at investigating crime?"
//!   is named "Investigating crime" (the words after "How good/effective is
//!   the force at"); other question headings keep their wording.
//! * A heading listed in the **Contents** (a row ending in a page number, or
//!   on a web page a list item) that is not structural ("Summary",
//!   "Force in context", pillar names and questions) also starts a question,
//!   ungraded, inside a pillar: "Armed policing" in PEEL 2018/19 is inspected
//!   but its heading carries no grade.
//! * The line after a grade that says "… our judgment from the 2016
//!   effectiveness inspection has been carried over" (or "Last inspected:
//!   2017") gives the year the judgment was last made.
//! * Fire and rescue layouts: a heading followed by a grade sentence
//!   ("Loamshire Fire and Rescue Service is good at understanding risk.") is
//!   a graded question, and a previous-grade sentence under it ("… was good
//!   in its 2018/19 assessment") the earlier round's judgment; "The extent to
//!   which the service is effective … is good." grades a pillar (see
//!   [`crate::grade_sentences`]). A "Last updated" line between a question
//!   and its grade is skipped.
//! * PEEL 2014–2017: "Overall judgment" followed by a grade grades the pillar
//!   of the question heading before it ("Overview – How effective is the
//!   force at keeping people safe and reducing crime?").
//! * The "Our judgments" list (grade words each followed by the questions
//!   given that grade) is a summary: its lines are not graded headings.

use std::collections::HashSet;

use closeout_proto::{Grade, OrganisationKind};

use crate::grade_sentences;
use crate::profile::Profile;
use crate::text::{self, fold};
use crate::units::{Kind, Unit, is_date_line};

/// Pillar names, in report order.
pub(crate) const PILLARS: [&str; 4] = ["Effectiveness", "Efficiency", "Legitimacy", "People"];
const PEOPLE: usize = 3;

/// Where a unit sits.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ctx {
    /// Index into [`PILLARS`].
    pub pillar: Option<usize>,
    /// Index into [`Outline::questions`].
    pub question: Option<usize>,
    /// Inside the table of contents.
    pub in_contents: bool,
}

/// A pillar's grade from a graded pillar question.
#[derive(Debug, Clone)]
pub(crate) struct PillarGrade {
    pub pillar: usize,
    pub grade: Grade,
    /// 1-based line of the heading or sentence that gave it.
    pub line: u32,
    /// Short rule name, for the explanation.
    pub rule: &'static str,
}

/// A question's grade from a graded heading in the body.
#[derive(Debug, Clone)]
pub(crate) struct GradedQuestion {
    pub pillar: Option<usize>,
    pub name: String,
    pub grade: Grade,
    /// The heading's unit.
    pub unit: usize,
    /// The period of the earlier judgment carried over, if the report says so.
    pub carried_from: Option<String>,
    /// Short rule name, for the explanation.
    pub rule: &'static str,
    /// The grade the body was given in an earlier round ("… was good in its
    /// 2018/19 assessment"): grade, period, line.
    pub previous: Option<(Grade, String, u32)>,
}

/// The report's structure.
#[derive(Debug, Default)]
pub(crate) struct Outline {
    /// One per unit.
    pub ctx: Vec<Ctx>,
    pub questions: Vec<String>,
    pub pillar_grades: Vec<PillarGrade>,
    pub graded: Vec<GradedQuestion>,
    /// Units of an "Our judgments" list (grade words followed by the
    /// questions given that grade): a summary, not the questions themselves.
    pub judgment_list: Option<(usize, usize)>,
}

impl Outline {
    /// The pillar name of unit `i`, or "".
    pub fn pillar_of(&self, i: usize) -> &'static str {
        self.ctx
            .get(i)
            .and_then(|c| c.pillar)
            .and_then(|p| PILLARS.get(p).copied())
            .unwrap_or("")
    }

    /// The question name of unit `i`, or "".
    pub fn question_of(&self, i: usize) -> &str {
        self.ctx
            .get(i)
            .and_then(|c| c.question)
            .and_then(|q| self.questions.get(q))
            .map_or("", String::as_str)
    }

    /// Whether unit `i` is inside the table of contents.
    pub fn in_contents(&self, i: usize) -> bool {
        self.ctx.get(i).is_some_and(|c| c.in_contents)
    }
}

/// Builds the outline (see the module documentation).
pub(crate) fn outline(units: &[Unit], kind: OrganisationKind, profile: Option<Profile>) -> Outline {
    let mut out = Outline {
        ctx: Vec::with_capacity(units.len()),
        judgment_list: judgment_list(units),
        ..Outline::default()
    };
    let frs = profile.is_some_and(Profile::is_frs);
    let mut contents: HashSet<String> = HashSet::new();
    let mut pillar: Option<usize> = None;
    let mut question: Option<usize> = None;
    let mut in_contents = false;
    let mut last_heading: Option<usize> = None;
    for (i, unit) in units.iter().enumerate() {
        if out
            .judgment_list
            .is_some_and(|(from, to)| (from..to).contains(&i))
        {
            out.ctx.push(Ctx {
                pillar,
                question,
                in_contents: true,
            });
            continue;
        }
        if unit.is_heading() {
            let lower = fold(&unit.text);
            if lower == "contents" || lower == "table of contents" {
                in_contents = true;
            } else {
                in_contents = false;
                // The unit after the heading, past a "Last updated" line (the
                // fire and rescue pages put one between a question and its
                // grade).
                let next = i
                    + 1
                    + units
                        .iter()
                        .skip(i + 1)
                        .take_while(|u| u.kind == Kind::Text && is_date_line(&u.text))
                        .count();
                let list_follows = out.judgment_list.is_some_and(|(from, _)| from == next);
                let line_grade = units
                    .get(next)
                    .and_then(|next| next.grade)
                    .filter(|_| !list_follows);
                let sentence_grade = if frs && line_grade.is_none() {
                    units
                        .get(next)
                        .filter(|next| next.kind == Kind::Text && !next.is_heading())
                        .and_then(|next| grade_sentences::question_grade(&next.text))
                } else {
                    None
                };
                let grade = line_grade.or(sentence_grade);
                if let Some(p) = pillar_heading(&unit.text, kind) {
                    pillar = Some(p);
                    question = None;
                } else if lower.starts_with("annex") || lower.starts_with("appendix") {
                    pillar = None;
                    question = None;
                } else if let Some(grade) = grade {
                    if let Some(p) = pillar_question(&unit.text) {
                        pillar = Some(p);
                        question = None;
                        out.pillar_grades.push(PillarGrade {
                            pillar: p,
                            grade,
                            line: unit.first_line,
                            rule: "pillar.graded-question",
                        });
                    } else if is_overall_judgment(&lower) {
                        let p = last_heading
                            .and_then(|h| units.get(h))
                            .and_then(|h| pillar_question(&h.text))
                            .or(pillar);
                        if let Some(p) = p {
                            pillar = Some(p);
                            out.pillar_grades.push(PillarGrade {
                                pillar: p,
                                grade,
                                line: unit.first_line,
                                rule: "pillar.overall-judgment",
                            });
                        }
                    } else {
                        let name = question_name(&unit.text);
                        let after_grade = next + usize::from(line_grade.is_some());
                        out.graded.push(GradedQuestion {
                            pillar,
                            name: name.clone(),
                            grade,
                            unit: i,
                            carried_from: units.get(next + 1).and_then(carried_from),
                            rule: if line_grade.is_some() {
                                "question.grade-line"
                            } else {
                                "frs.question-grade-sentence"
                            },
                            previous: if frs {
                                previous_grade(units, after_grade)
                            } else {
                                None
                            },
                        });
                        question = Some(out.questions.len());
                        out.questions.push(name);
                    }
                } else if pillar.is_some()
                    && contents.contains(&unit.text)
                    && !is_structural(&unit.text)
                {
                    question = Some(out.questions.len());
                    out.questions.push(unit.text.clone());
                }
            }
            last_heading = Some(i);
        } else if in_contents && unit.kind == Kind::Row {
            if let Some(entry) = contents_entry(unit) {
                contents.insert(entry);
            }
        } else if in_contents && unit.kind == Kind::Bullet {
            // A web page's contents: a list of links without page numbers.
            contents.insert(unit.text.clone());
        } else if in_contents {
            in_contents = false;
        } else if frs
            && unit.kind == Kind::Text
            && let Some((p, grade)) = grade_sentences::pillar_grade(&unit.text)
        {
            out.pillar_grades.push(PillarGrade {
                pillar: p,
                grade,
                line: unit.first_line,
                rule: "frs.pillar-grade-sentence",
            });
        }
        out.ctx.push(Ctx {
            pillar,
            question,
            in_contents,
        });
    }
    out
}

/// How far after a question's grade a previous-grade sentence is looked for.
const PREVIOUS_GRADE_UNITS: usize = 3;

/// "… was good in its 2018/19 assessment" within a few paragraphs of `from`.
fn previous_grade(units: &[Unit], from: usize) -> Option<(Grade, String, u32)> {
    units
        .iter()
        .skip(from)
        .take(PREVIOUS_GRADE_UNITS)
        .take_while(|u| u.kind == Kind::Text && !u.is_heading() && u.grade.is_none())
        .find_map(|u| grade_sentences::previous_grade(&u.text).map(|(g, p)| (g, p, u.first_line)))
}

/// "Overall judgment" (PEEL 2014–2017): the pillar's grade follows.
fn is_overall_judgment(lower: &str) -> bool {
    matches!(
        lower,
        "overall judgment" | "overall judgement" | "overall grade"
    )
}

/// The "Our judgments" list (PEEL 2021/22): a run of consecutive lines, with
/// no blank line between them, that are grade words and headings, starting
/// with a grade, holding at least two grades, right after "Our judgments" or
/// "We have made the following graded judgments:". Returns the unit range.
fn judgment_list(units: &[Unit]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < units.len() {
        if units[i].grade.is_none() {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        let mut grades = 1;
        while let Some(next) = units.get(end) {
            let consecutive = next.first_line == units[end - 1].last_line.saturating_add(1);
            if !consecutive || !(next.grade.is_some() || next.is_heading()) {
                break;
            }
            grades += usize::from(next.grade.is_some());
            end += 1;
        }
        let introduced = i
            .checked_sub(1)
            .and_then(|before| units.get(before))
            .is_some_and(|before| {
                let lower = fold(&before.text);
                lower == "our judgments" || lower.contains("graded judgments")
            });
        if introduced && grades >= 2 && end - i >= 3 {
            return Some((i, end));
        }
        i = end;
    }
    None
}

/// The pillar a heading names exactly ("People" only for fire and rescue
/// services).
fn pillar_heading(text: &str, kind: OrganisationKind) -> Option<usize> {
    let lower = fold(text);
    let p = PILLARS
        .iter()
        .position(|p| p.eq_ignore_ascii_case(&lower))?;
    (p != PEOPLE || kind == OrganisationKind::FireAndRescueService).then_some(p)
}

/// The pillar a pillar question asks about (see the module documentation).
pub(crate) fn pillar_question(text: &str) -> Option<usize> {
    let lower = fold(text);
    // "Overview – How effective is the force at keeping people safe …?"
    let lower = ["overview – ", "overview - ", "overview: "]
        .iter()
        .find_map(|lead| lower.strip_prefix(lead))
        .unwrap_or(&lower);
    let rest = lower.strip_prefix("how ")?;
    if !rest.ends_with('?') {
        return None;
    }
    if rest.starts_with("efficient") {
        return Some(1);
    }
    if rest.starts_with("legitimate") {
        return Some(2);
    }
    if rest.contains("look after its people") {
        return Some(PEOPLE);
    }
    if rest.starts_with("effective") {
        // "effective is the force at keeping …", "effectively does the force reduce …"
        let words: Vec<&str> = rest.split_whitespace().collect();
        // "… is the force at keeping …", "… is the fire and rescue service at
        // keeping …"; "… does the force reduce …"
        let k = words
            .iter()
            .take(8)
            .position(|w| *w == "at")
            .map_or(4, |at| at + 1);
        let general = matches!(
            words.get(k).copied(),
            Some("keeping" | "keep" | "reducing" | "reduce")
        );
        return general.then_some(0);
    }
    None
}

/// Leads of the web layout's question headings that name a question.
const QUESTION_LEADS: &[&str] = &[
    "how good is the force at ",
    "how good is the service at ",
    "how good is the constabulary at ",
    "how effective is the force at ",
    "how effective is the service at ",
    "how effective is the constabulary at ",
];

/// A question's name from its heading (see the module documentation).
pub(crate) fn question_name(heading: &str) -> String {
    let lower = heading.to_ascii_lowercase();
    for lead in QUESTION_LEADS {
        if lower.starts_with(lead) {
            let rest = heading[lead.len()..]
                .trim_end()
                .trim_end_matches('?')
                .trim();
            if !rest.is_empty() {
                return text::capitalise(rest);
            }
        }
    }
    heading.to_string()
}

/// Headings that organise a report rather than name an inspected question.
fn is_structural(text: &str) -> bool {
    let lower = fold(text);
    matches!(
        lower.as_str(),
        "summary"
            | "force in context"
            | "service in context"
            | "overall summary"
            | "what this report contains"
            | "hm inspector's observations"
            | "contents"
            | "introduction"
            | "about this report"
    ) || lower.starts_with("annex")
        || lower.starts_with("appendix")
        || lower.starts_with("how ")
        || PILLARS.iter().any(|p| p.eq_ignore_ascii_case(&lower))
}

/// A contents row's title: "Armed policing\t25" → "Armed policing".
fn contents_entry(row: &Unit) -> Option<String> {
    let cells: Vec<&str> = row.filled_cells().collect();
    let (last, rest) = cells.split_last()?;
    let title = rest.first()?;
    last.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| (*title).to_string())
}

/// The period of a carried-over judgment: "… our judgment from the 2016
/// effectiveness inspection has been carried over" → "2016".
fn carried_from(unit: &Unit) -> Option<String> {
    if unit.kind != Kind::Text || unit.text.len() > 1000 {
        return None;
    }
    let lower = unit.text.to_ascii_lowercase();
    // "Last inspected: 2017"
    if let Some(rest) = lower.strip_prefix("last inspected") {
        let rest = rest.trim_start_matches([':', ' ', '\u{a0}']).trim();
        return text::period(rest).map(str::to_string);
    }
    if !lower.contains("carried over") {
        return None;
    }
    let from = lower
        .find("judgment from the ")
        .or_else(|| lower.find("judgement from the "))?;
    let tail = &unit.text[from..];
    text::periods_in(tail)
        .first()
        .map(|w| w.of(tail).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pillar_questions() {
        assert_eq!(
            pillar_question("How effectively does the force reduce crime and keep people safe?"),
            Some(0)
        );
        assert_eq!(
            pillar_question(
                "How effective is the force at keeping people safe and reducing crime?"
            ),
            Some(0)
        );
        assert_eq!(
            pillar_question(
                "How effective is the force at preventing crime, tackling anti-social behaviour and keeping people safe?"
            ),
            None
        );
        assert_eq!(
            pillar_question(
                "How efficiently does the force operate and how sustainable are its services?"
            ),
            Some(1)
        );
        assert_eq!(
            pillar_question("How legitimately does the force treat the public and its workforce?"),
            Some(2)
        );
        assert_eq!(
            pillar_question("How well does the service look after its people?"),
            Some(3)
        );
        assert_eq!(
            pillar_question("How good is the force at investigating crime?"),
            None
        );
    }

    /// The question of the last unit of `text`.
    fn last_question(text: &str) -> String {
        let units = crate::units::build(&crate::lines::split(text));
        let outline = outline(&units, OrganisationKind::PoliceForce, None);
        outline
            .question_of(units.len().saturating_sub(1))
            .to_string()
    }

    #[test]
    fn a_contents_list_names_ungraded_questions_as_page_numbered_rows_do() {
        let body = "Effectiveness\n\nInvestigating crime\n\nGood\n\n\
                    Armed policing\n\nThe force provides armed policing jointly.\n";
        let rows = format!("Contents\n\nInvestigating crime\t12\nArmed policing\t25\n\n{body}");
        let list = format!("Contents\n\n1. Investigating crime\n2. Armed policing\n\n{body}");
        let bullets = format!("Contents\n\n- Investigating crime\n- Armed policing\n\n{body}");
        assert_eq!(last_question(&rows), "Armed policing");
        assert_eq!(last_question(&list), "Armed policing");
        assert_eq!(last_question(&bullets), "Armed policing");
        // Without a contents the heading is not known to name a question.
        assert_eq!(last_question(body), "Investigating crime");
    }

    #[test]
    fn question_names() {
        assert_eq!(
            question_name("How good is the force at investigating crime?"),
            "Investigating crime"
        );
        assert_eq!(
            question_name("How well does the force plan for the future?"),
            "How well does the force plan for the future?"
        );
        assert_eq!(question_name("Investigating crime"), "Investigating crime");
    }
}
