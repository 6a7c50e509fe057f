//! Grades and grading scales as reports write them: the line forms ("Grade:
//! Adequate") are the parser's, the words of a grade and the rule choosing a
//! scale are the domain's (`closeout_domain::grade`). A judgment carries its
//! scale so that grades of the two scales are never compared as if equal.

use closeout_domain::{OrganisationKind, wire};
use closeout_proto::{Grade, GradeScale};

/// Prefixes a grade line may carry on the inspectorate's web pages.
const GRADE_PREFIXES: &[&str] = &["grade:", "judgment:", "judgement:", "our judgment:"];

/// The grade a whole line states ("Good", "Requires improvement",
/// "Grade: Adequate", "Not graded"), or None when the line says more than a
/// grade. The words of a grade are the domain's ([`closeout_domain::Grade`]).
pub(crate) fn parse_grade(line: &str) -> Option<Grade> {
    if line.len() > 48 {
        return None;
    }
    let lower = line.trim().to_ascii_lowercase();
    let rest = GRADE_PREFIXES
        .iter()
        .find_map(|prefix| lower.strip_prefix(prefix))
        .unwrap_or(&lower);
    closeout_domain::Grade::parse(rest).ok().map(Grade::from)
}

/// The grade as the inspectorate writes it.
pub(crate) fn grade_name(grade: Grade) -> &'static str {
    wire::grade(grade as i32).map_or("(not stated)", closeout_domain::Grade::as_str)
}

/// The scale a report's grades are on: the domain's rule
/// ([`closeout_domain::GradeScale::for_inspection`]), with the fire and rescue
/// programme read as fire and rescue services and any other as PEEL.
pub(crate) fn scale_for(programme: &str, period: &str, any_adequate: bool) -> GradeScale {
    let kind = (programme == crate::identity::FRS_PROGRAMME)
        .then_some(OrganisationKind::FireAndRescueService);
    closeout_domain::GradeScale::for_inspection(kind, period, any_adequate).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grade_lines() {
        assert_eq!(parse_grade("Good"), Some(Grade::Good));
        assert_eq!(
            parse_grade(" Requires Improvement "),
            Some(Grade::RequiresImprovement)
        );
        assert_eq!(parse_grade("Grade: Adequate"), Some(Grade::Adequate));
        assert_eq!(parse_grade("Ungraded"), Some(Grade::Ungraded));
        assert_eq!(parse_grade("Good at investigating crime"), None);
        assert_eq!(parse_grade(""), None);
    }

    #[test]
    fn scales_follow_the_programme() {
        assert_eq!(scale_for("PEEL", "2021/22", false), GradeScale::FiveTier);
        assert_eq!(scale_for("FRS", "2021/22", false), GradeScale::FourTier);
        assert_eq!(scale_for("FRS", "2023–25", false), GradeScale::FiveTier);
        assert_eq!(scale_for("", "2021/22", false), GradeScale::FiveTier);
        assert_eq!(scale_for("", "", true), GradeScale::FiveTier);
    }

    #[test]
    fn grade_names() {
        assert_eq!(
            grade_name(Grade::RequiresImprovement),
            "Requires improvement"
        );
        assert_eq!(grade_name(Grade::Unspecified), "(not stated)");
    }
}
