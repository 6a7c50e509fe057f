//! Graded judgments and the two grading scales. HMICFRS grades on a four-tier
//! scale (Outstanding, Good, Requires improvement, Inadequate) and moved to a
//! five-tier one that adds *Adequate*: PEEL from 2021/22, fire and rescue
//! inspections from 2023–25. A "Good" on one scale is not the same judgment as
//! a "Good" on the other, so comparisons across scales are refused rather than
//! guessed.

use std::fmt;
use std::str::FromStr;

use crate::DomainError;
use crate::organisation::OrganisationKind;

/// A graded judgment as the inspectorate writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grade {
    Outstanding,
    Good,
    /// Only on the five-tier scale.
    Adequate,
    RequiresImprovement,
    Inadequate,
    /// Inspected but not graded (or not graded this time).
    Ungraded,
}

/// The scale a judgment was made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GradeScale {
    /// Outstanding, Good, Requires improvement, Inadequate.
    FourTier,
    /// Outstanding, Good, Adequate, Requires improvement, Inadequate.
    FiveTier,
}

/// First year of PEEL's five-tier scale (PEEL 2021/22).
pub const PEEL_FIVE_TIER_FROM: i32 = 2021;
/// First year of the fire and rescue inspections' five-tier scale (2023–25;
/// their 2021/22 round was still four-tier).
pub const FIRE_AND_RESCUE_FIVE_TIER_FROM: i32 = 2023;

impl Grade {
    /// Every grade, best first (Ungraded last).
    pub const ALL: [Grade; 6] = [
        Self::Outstanding,
        Self::Good,
        Self::Adequate,
        Self::RequiresImprovement,
        Self::Inadequate,
        Self::Ungraded,
    ];

    /// Parses a grade as reports and people write it: case-insensitive,
    /// trimmed, with spaces, hyphens or underscores between words and an
    /// optional closing full stop ("Requires improvement.").
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let words: Vec<String> = text
            .trim()
            .trim_end_matches('.')
            .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        match words.join(" ").as_str() {
            "outstanding" => Ok(Self::Outstanding),
            "good" => Ok(Self::Good),
            "adequate" => Ok(Self::Adequate),
            "requires improvement" => Ok(Self::RequiresImprovement),
            "inadequate" => Ok(Self::Inadequate),
            "ungraded" | "not graded" => Ok(Self::Ungraded),
            _ => Err(DomainError::UnknownGrade(text.to_string())),
        }
    }

    /// The grade as the inspectorate writes it ("Requires improvement").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outstanding => "Outstanding",
            Self::Good => "Good",
            Self::Adequate => "Adequate",
            Self::RequiresImprovement => "Requires improvement",
            Self::Inadequate => "Inadequate",
            Self::Ungraded => "Ungraded",
        }
    }

    /// Whether this grade exists on `scale`: Adequate only on the five-tier one.
    pub fn is_on(self, scale: GradeScale) -> bool {
        self != Self::Adequate || scale == GradeScale::FiveTier
    }

    /// Position on its scale, higher is better; None for Ungraded or a grade
    /// not on the scale.
    fn rank(self, scale: GradeScale) -> Option<u8> {
        let five = scale == GradeScale::FiveTier;
        match self {
            Self::Outstanding => Some(if five { 5 } else { 4 }),
            Self::Good => Some(if five { 4 } else { 3 }),
            Self::Adequate if five => Some(3),
            Self::RequiresImprovement => Some(2),
            Self::Inadequate => Some(1),
            Self::Adequate | Self::Ungraded => None,
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Grade {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl GradeScale {
    /// The scale an inspection's grades are on: five-tier whenever any grade
    /// is *Adequate* (it exists on no other scale); otherwise five-tier from
    /// the programme's first five-tier year ([`PEEL_FIVE_TIER_FROM`] for
    /// police forces and when the kind is unknown,
    /// [`FIRE_AND_RESCUE_FIVE_TIER_FROM`] for fire and rescue services), and
    /// four-tier before it or when the period names no year. The period is
    /// read with [`crate::period::first_year`]: "2018/19", "2023–25", "PEEL 2021/22".
    pub fn for_inspection(
        kind: Option<OrganisationKind>,
        period: &str,
        any_adequate: bool,
    ) -> Self {
        if any_adequate {
            return Self::FiveTier;
        }
        let from = match kind {
            Some(OrganisationKind::FireAndRescueService) => FIRE_AND_RESCUE_FIVE_TIER_FROM,
            Some(OrganisationKind::PoliceForce) | None => PEEL_FIVE_TIER_FROM,
        };
        match crate::period::first_year(period) {
            Some(year) if year >= from => Self::FiveTier,
            _ => Self::FourTier,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FourTier => "four-tier",
            Self::FiveTier => "five-tier",
        }
    }
}

impl fmt::Display for GradeScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a judgment moved between two inspections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trend {
    Improved,
    Unchanged,
    Declined,
}

/// Why two grades cannot be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotComparable {
    #[error("grades on the {earlier} and {later} scales are not comparable")]
    DifferentScales {
        earlier: GradeScale,
        later: GradeScale,
    },
    #[error("an ungraded judgment is not comparable")]
    Ungraded,
    #[error("{grade} is not a grade on the {scale} scale")]
    NotOnScale { grade: Grade, scale: GradeScale },
}

/// Compares an earlier judgment with a later one (each with its scale): the
/// trend from `earlier` to `later`. Refuses across scales, for Ungraded, and
/// for a grade that does not exist on its stated scale.
pub fn compare(
    earlier: (Grade, GradeScale),
    later: (Grade, GradeScale),
) -> Result<Trend, NotComparable> {
    if earlier.0 == Grade::Ungraded || later.0 == Grade::Ungraded {
        return Err(NotComparable::Ungraded);
    }
    for (grade, scale) in [earlier, later] {
        if !grade.is_on(scale) {
            return Err(NotComparable::NotOnScale { grade, scale });
        }
    }
    if earlier.1 != later.1 {
        return Err(NotComparable::DifferentScales {
            earlier: earlier.1,
            later: later.1,
        });
    }
    let rank = |(g, s): (Grade, GradeScale)| {
        g.rank(s)
            .ok_or(NotComparable::NotOnScale { grade: g, scale: s })
    };
    let (a, b) = (rank(earlier)?, rank(later)?);
    Ok(match b.cmp(&a) {
        std::cmp::Ordering::Greater => Trend::Improved,
        std::cmp::Ordering::Equal => Trend::Unchanged,
        std::cmp::Ordering::Less => Trend::Declined,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use GradeScale::*;

    #[test]
    fn parses_grades_as_written() {
        assert_eq!(
            Grade::parse("Requires improvement"),
            Ok(Grade::RequiresImprovement)
        );
        assert_eq!(
            Grade::parse("  REQUIRES  IMPROVEMENT "),
            Ok(Grade::RequiresImprovement)
        );
        assert_eq!(
            Grade::parse("requires-improvement"),
            Ok(Grade::RequiresImprovement)
        );
        assert_eq!(Grade::parse("good"), Ok(Grade::Good));
        assert_eq!(Grade::parse("Good."), Ok(Grade::Good));
        assert_eq!(Grade::parse("Outstanding"), Ok(Grade::Outstanding));
        assert_eq!(Grade::parse("Adequate"), Ok(Grade::Adequate));
        assert_eq!(Grade::parse("Inadequate"), Ok(Grade::Inadequate));
        assert_eq!(Grade::parse("Ungraded"), Ok(Grade::Ungraded));
        assert!(Grade::parse("Excellent").is_err());
        assert!(Grade::parse("").is_err());
        for g in Grade::ALL {
            assert_eq!(Grade::parse(g.as_str()), Ok(g));
        }
    }

    #[test]
    fn scales_by_programme_and_period() {
        use OrganisationKind::{FireAndRescueService as Frs, PoliceForce as Police};
        let scale = GradeScale::for_inspection;
        assert_eq!(scale(Some(Police), "2017", false), FourTier);
        assert_eq!(scale(Some(Police), "2018/19", false), FourTier);
        assert_eq!(scale(Some(Police), "PEEL 2018/19", false), FourTier);
        assert_eq!(scale(Some(Police), "2021/22", false), FiveTier);
        assert_eq!(scale(Some(Police), "2023–25", false), FiveTier);
        assert_eq!(scale(Some(Police), "2023-2025", false), FiveTier);
        // Fire and rescue: still four-tier in 2021/22, five-tier from 2023–25.
        assert_eq!(scale(Some(Frs), "2018/19", false), FourTier);
        assert_eq!(scale(Some(Frs), "2021/22", false), FourTier);
        assert_eq!(scale(Some(Frs), "2023–25", false), FiveTier);
        // An unknown programme follows PEEL.
        assert_eq!(scale(None, "2021/22", false), FiveTier);
        // Adequate exists only on the five-tier scale, whatever the period.
        assert_eq!(scale(Some(Frs), "2021/22", true), FiveTier);
        assert_eq!(scale(None, "", true), FiveTier);
        // No year: four-tier.
        assert_eq!(scale(None, "", false), FourTier);
        assert_eq!(scale(Some(Police), "last year", false), FourTier);
        assert_eq!(scale(Some(Police), "18/19", false), FourTier);
    }

    #[test]
    fn adequate_only_on_five_tier() {
        assert!(!Grade::Adequate.is_on(FourTier));
        assert!(Grade::Adequate.is_on(FiveTier));
        assert!(Grade::Good.is_on(FourTier) && Grade::Good.is_on(FiveTier));
    }

    #[test]
    fn compares_within_a_scale_only() {
        use Grade::*;
        assert_eq!(
            compare((RequiresImprovement, FourTier), (Good, FourTier)),
            Ok(Trend::Improved)
        );
        assert_eq!(
            compare((Good, FourTier), (Good, FourTier)),
            Ok(Trend::Unchanged)
        );
        assert_eq!(
            compare((Good, FiveTier), (Adequate, FiveTier)),
            Ok(Trend::Declined)
        );
        assert_eq!(
            compare((Inadequate, FiveTier), (Adequate, FiveTier)),
            Ok(Trend::Improved)
        );
        assert_eq!(
            compare((Good, FourTier), (Good, FiveTier)),
            Err(NotComparable::DifferentScales {
                earlier: FourTier,
                later: FiveTier
            })
        );
        assert_eq!(
            compare((Ungraded, FourTier), (Good, FourTier)),
            Err(NotComparable::Ungraded)
        );
        assert_eq!(
            compare((Adequate, FourTier), (Good, FourTier)),
            Err(NotComparable::NotOnScale {
                grade: Adequate,
                scale: FourTier
            })
        );
    }
}
