//! Grades and grading scales as reports write them. The inspectorate grades on
//! a four-tier scale (Outstanding, Good, Requires improvement, Inadequate) up
//! to PEEL 2018/19 and on a five-tier one that adds *Adequate* from PEEL 2021/22
//! (fire and rescue inspections from 2023–25). A judgment carries its scale so
//! that grades of the two scales are never compared as if equal.

use closeout_proto::{Grade, GradeScale};

use crate::text;

/// Prefixes a grade line may carry on the inspectorate's web pages.
const GRADE_PREFIXES: &[&str] = &["grade:", "judgment:", "judgement:", "our judgment:"];

/// The grade a whole line states ("Good", "Requires improvement",
/// "Grade: Adequate", "Not graded"), or None when the line says more than a
/// grade.
pub(crate) fn parse_grade(line: &str) -> Option<Grade> {
    if line.len() > 48 {
        return None;
    }
    let mut lower = line.trim().to_ascii_lowercase();
    for prefix in GRADE_PREFIXES {
        if let Some(rest) = lower.strip_prefix(prefix) {
            lower = rest.to_string();
            break;
        }
    }
    let words: Vec<&str> = lower
        .trim()
        .trim_end_matches('.')
        .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|w| !w.is_empty())
        .collect();
    match words.join(" ").as_str() {
        "outstanding" => Some(Grade::Outstanding),
        "good" => Some(Grade::Good),
        "adequate" => Some(Grade::Adequate),
        "requires improvement" => Some(Grade::RequiresImprovement),
        "inadequate" => Some(Grade::Inadequate),
        "ungraded" | "not graded" => Some(Grade::Ungraded),
        _ => None,
    }
}

/// The grade as the inspectorate writes it.
pub(crate) fn grade_name(grade: Grade) -> &'static str {
    match grade {
        Grade::Unspecified => "(not stated)",
        Grade::Outstanding => "Outstanding",
        Grade::Good => "Good",
        Grade::Adequate => "Adequate",
        Grade::RequiresImprovement => "Requires improvement",
        Grade::Inadequate => "Inadequate",
        Grade::Ungraded => "Ungraded",
    }
}

/// First year of PEEL's five-tier scale (PEEL 2021/22).
pub(crate) const PEEL_FIVE_TIER_FROM: i32 = 2021;
/// First year of the fire and rescue inspections' five-tier scale (2023–25).
pub(crate) const FRS_FIVE_TIER_FROM: i32 = 2023;

/// The scale a report's grades are on: five-tier if any grade is *Adequate*
/// (it exists on no other scale); otherwise five-tier from the programme's
/// first five-tier year, four-tier before it or when the period is unknown.
pub(crate) fn scale_for(programme: &str, period: &str, any_adequate: bool) -> GradeScale {
    if any_adequate {
        return GradeScale::FiveTier;
    }
    let from = if programme == crate::identity::FRS_PROGRAMME {
        FRS_FIVE_TIER_FROM
    } else {
        PEEL_FIVE_TIER_FROM
    };
    match text::first_year(period) {
        Some(year) if year >= from => GradeScale::FiveTier,
        _ => GradeScale::FourTier,
    }
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
    fn scales() {
        assert_eq!(scale_for("PEEL", "2018/19", false), GradeScale::FourTier);
        assert_eq!(scale_for("PEEL", "2021/22", false), GradeScale::FiveTier);
        assert_eq!(scale_for("PEEL", "2023–25", false), GradeScale::FiveTier);
        assert_eq!(scale_for("FRS", "2021/22", false), GradeScale::FourTier);
        assert_eq!(scale_for("FRS", "2023–25", false), GradeScale::FiveTier);
        assert_eq!(scale_for("", "", true), GradeScale::FiveTier);
        assert_eq!(scale_for("", "", false), GradeScale::FourTier);
    }
}
