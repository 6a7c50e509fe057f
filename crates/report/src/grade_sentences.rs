//! Grades written as sentences, as the fire and rescue service assessments
//! write them (no grade line under the heading):
//! * a **pillar** grade: "The extent to which the service is effective at
//!   keeping people safe and secure from fire and other risks requires
//!   improvement." / "… is efficient at … is good." / "… looks after its
//!   people is good."; also "Loamshire Fire and Rescue Service's overall
//!   effectiveness is good.";
//! * a **question** grade: "Loamshire Fire and Rescue Service is good at
//!   understanding risk.", "… requires improvement at protecting the public
//!   through fire regulation.", "… is inadequate in the way it promotes its
//!   values and culture." — the subject is the service (or force), the verb
//!   "is (grade) at/in/for" or "requires improvement at/in";
//! * the **previous** grade: "Loamshire Fire and Rescue Service was good in
//!   its 2018/19 assessment." / "… was graded as requires improvement in its
//!   2018/19 assessment." / "… was inadequate at promoting the right values
//!   and culture in its 2021/22 assessment." — a judgment carried over from
//!   that period.

use closeout_proto::Grade;

use crate::text::{self, fold};

/// Grades as words, longest first.
const GRADE_WORDS: &[(&str, Grade)] = &[
    ("requires improvement", Grade::RequiresImprovement),
    ("outstanding", Grade::Outstanding),
    ("inadequate", Grade::Inadequate),
    ("adequate", Grade::Adequate),
    ("good", Grade::Good),
];

/// Words a subject that is the inspected body ends with.
const SUBJECT_ENDS: &[&str] = &["service", "constabulary", "police", "force", "brigade"];

/// Longest sentence read as a grade sentence, in bytes.
const MAX_GRADE_SENTENCE: usize = 400;

/// The grade word at the start of `rest`, and the text after it.
fn grade_at(rest: &str) -> Option<(Grade, &str)> {
    GRADE_WORDS.iter().find_map(|(word, grade)| {
        rest.strip_prefix(word).and_then(|after| {
            (after.is_empty() || after.starts_with([' ', '.', ','])).then_some((*grade, after))
        })
    })
}

/// The first sentence of `text`, folded, if short enough.
fn first_sentence(text: &str) -> Option<String> {
    if text.len() > MAX_GRADE_SENTENCE * 2 {
        return None;
    }
    let end = text::sentences(text)
        .first()
        .map_or(text.len(), |&(_, e)| e);
    let sentence = text.get(..end)?;
    (sentence.len() <= MAX_GRADE_SENTENCE).then(|| fold(sentence))
}

/// Whether `subject` (folded) names the inspected body.
fn is_body(subject: &str) -> bool {
    let subject = subject.trim();
    !subject.is_empty()
        && subject.split_whitespace().count() <= 12
        && SUBJECT_ENDS.iter().any(|end| subject.ends_with(end))
}

/// A question grade sentence's grade (see the module documentation).
pub(crate) fn question_grade(text: &str) -> Option<Grade> {
    let sentence = first_sentence(text)?;
    if let Some(at) = sentence.find(" requires improvement ") {
        let after = &sentence[at + " requires improvement ".len()..];
        if is_body(&sentence[..at]) && (after.starts_with("at ") || after.starts_with("in ")) {
            return Some(Grade::RequiresImprovement);
        }
    }
    let at = sentence.find(" is ")?;
    if !is_body(&sentence[..at]) {
        return None;
    }
    let (grade, after) = grade_at(&sentence[at + " is ".len()..])?;
    let after = after.trim_start();
    (after.starts_with("at ") || after.starts_with("in ") || after.starts_with("for "))
        .then_some(grade)
}

/// A previous-grade sentence: the grade and the period it was given in.
pub(crate) fn previous_grade(text: &str) -> Option<(Grade, String)> {
    let sentence = first_sentence(text)?;
    let at = sentence.find(" was ")?;
    if !is_body(&sentence[..at]) {
        return None;
    }
    let mut rest = &sentence[at + " was ".len()..];
    for lead in [
        "graded as ",
        "graded ",
        "judged to be ",
        "judged as ",
        "judged ",
    ] {
        if let Some(r) = rest.strip_prefix(lead) {
            rest = r;
            break;
        }
    }
    let (grade, _) = grade_at(rest)?;
    let its = sentence.find(" in its ")?;
    let tail = &sentence[its + " in its ".len()..];
    let period_word = tail.split_whitespace().next()?;
    let period = text::period(period_word)?;
    let says_assessment = tail
        .split_whitespace()
        .nth(1)
        .is_some_and(|w| w.starts_with("assessment") || w.starts_with("inspection"));
    // Offsets of the folded sentence match the original's only in ASCII; the
    // period is ASCII digits plus a separator, so take it from the folded text.
    says_assessment.then(|| (grade, period.to_string()))
}

/// A pillar grade sentence: the pillar (index into `sections::PILLARS`) and
/// its grade.
pub(crate) fn pillar_grade(text: &str) -> Option<(usize, Grade)> {
    if text.contains(" overall ") && text.len() <= MAX_GRADE_SENTENCE * 8 {
        let found = text::sentences(text)
            .iter()
            .filter_map(|&(a, b)| text.get(a..b))
            .find_map(|sentence| overall_grade(&fold(sentence)));
        if found.is_some() {
            return found;
        }
    }
    let sentence = first_sentence(text)?;
    let rest = sentence.strip_prefix("the extent to which the ")?;
    let body_end = rest.find(' ')?;
    if !SUBJECT_ENDS.contains(&&rest[..body_end]) {
        return None;
    }
    let claim = &rest[body_end + 1..];
    let pillar = if claim.starts_with("is effective") {
        0
    } else if claim.starts_with("is efficient") {
        1
    } else if claim.starts_with("looks after its people") {
        3
    } else if claim.starts_with("is legitimate") || claim.starts_with("treats ") {
        2
    } else {
        return None;
    };
    let body = claim.trim_end().trim_end_matches('.');
    let grade = if body.ends_with(" requires improvement") {
        Grade::RequiresImprovement
    } else {
        let at = body.rfind(" is ")?;
        let (grade, after) = grade_at(&body[at + " is ".len()..])?;
        if !after.trim().is_empty() {
            return None;
        }
        grade
    };
    Some((pillar, grade))
}

/// "Dorset & Wiltshire Fire and Rescue Service's overall effectiveness is
/// good." (a folded sentence).
fn overall_grade(sentence: &str) -> Option<(usize, Grade)> {
    let at = sentence.find("'s overall ")?;
    if !is_body(&sentence[..at]) {
        return None;
    }
    let rest = &sentence[at + "'s overall ".len()..];
    let (pillar, after) = [("effectiveness is ", 0), ("efficiency is ", 1)]
        .iter()
        .find_map(|(lead, p)| rest.strip_prefix(lead).map(|after| (*p, after)))?;
    let (grade, tail) = grade_at(after)?;
    tail.trim()
        .trim_end_matches('.')
        .is_empty()
        .then_some((pillar, grade))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_grades() {
        assert_eq!(
            question_grade("Loamshire Fire and Rescue Service is good at understanding risk."),
            Some(Grade::Good)
        );
        assert_eq!(
            question_grade(
                "Loamshire Fire and Rescue Service requires improvement at protecting the public through fire regulation."
            ),
            Some(Grade::RequiresImprovement)
        );
        assert_eq!(
            question_grade(
                "Loamshire Fire and Rescue Service is inadequate in the way it promotes its values and culture."
            ),
            Some(Grade::Inadequate)
        );
        assert_eq!(
            question_grade("Barsetshire Constabulary is adequate at investigating crime."),
            Some(Grade::Adequate)
        );
        assert_eq!(question_grade("The plan is good at first sight."), None);
        assert_eq!(question_grade("The service is good."), None);
    }

    #[test]
    fn previous_grades() {
        assert_eq!(
            previous_grade("Loamshire Fire and Rescue Service was good in its 2018/19 assessment."),
            Some((Grade::Good, "2018/19".to_string()))
        );
        assert_eq!(
            previous_grade(
                "Loamshire Fire and Rescue Service was graded as requires improvement in its 2018/19 assessment."
            ),
            Some((Grade::RequiresImprovement, "2018/19".to_string()))
        );
        assert_eq!(
            previous_grade(
                "Loamshire Fire and Rescue Service was inadequate at promoting the right values and culture in its 2021/22 assessment."
            ),
            Some((Grade::Inadequate, "2021/22".to_string()))
        );
        assert_eq!(
            previous_grade("The service was good in its response."),
            None
        );
    }

    #[test]
    fn pillar_grades() {
        assert_eq!(
            pillar_grade(
                "The extent to which the service is effective at keeping people safe and secure from fire and other risks requires improvement."
            ),
            Some((0, Grade::RequiresImprovement))
        );
        assert_eq!(
            pillar_grade(
                "The extent to which the service is efficient at keeping people safe and secure from fire and other risks is good."
            ),
            Some((1, Grade::Good))
        );
        assert_eq!(
            pillar_grade(
                "The extent to which the service looks after its people requires improvement."
            ),
            Some((3, Grade::RequiresImprovement))
        );
        assert_eq!(
            pillar_grade("The extent to which it matters is unclear."),
            None
        );
        assert_eq!(
            pillar_grade(
                "Dorset & Wiltshire Fire and Rescue Service’s overall effectiveness is good."
            ),
            Some((0, Grade::Good))
        );
        assert_eq!(pillar_grade("Its overall effectiveness is good."), None);
    }
}
