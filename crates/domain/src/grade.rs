//! Graded judgments and the two grading scales. HMICFRS moved from a four-tier
//! scale to a five-tier one (adding *Adequate*) in 2021/22; a "Good" on one
//! scale is not the same judgment as a "Good" on the other, so comparisons
//! across scales are refused rather than guessed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// A graded judgment as the inspectorate writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GradeScale {
    /// Outstanding, Good, Requires improvement, Inadequate (up to 2020/21).
    FourTier,
    /// Outstanding, Good, Adequate, Requires improvement, Inadequate (2021/22 on).
    FiveTier,
}

/// First year whose inspections are graded on the five-tier scale.
pub const FIVE_TIER_FROM_YEAR: i32 = 2021;

impl Grade {
    /// Parses a grade as reports and people write it: case-insensitive,
    /// trimmed, with spaces, hyphens or underscores between words.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let words: Vec<String> = text
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
    /// The scale an inspection period was graded on, from the period's first
    /// year: five-tier from 2021 (i.e. 2021/22) on, four-tier before. Accepts
    /// "2017", "2018/19", "2021/22", "2023–2025", "2023-25" and surrounding
    /// text such as "PEEL 2018/19".
    pub fn for_period(period: &str) -> Result<Self, DomainError> {
        let year =
            first_year(period).ok_or_else(|| DomainError::UnknownPeriod(period.to_string()))?;
        Ok(if year >= FIVE_TIER_FROM_YEAR {
            Self::FiveTier
        } else {
            Self::FourTier
        })
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

/// The first run of exactly four digits that reads as a plausible year.
fn first_year(text: &str) -> Option<i32> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() == 4)
        .filter_map(|run| run.parse::<i32>().ok())
        .find(|y| (1900..=2200).contains(y))
}

/// How a judgment moved between two inspections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
        assert_eq!(Grade::parse("Outstanding"), Ok(Grade::Outstanding));
        assert_eq!(Grade::parse("Adequate"), Ok(Grade::Adequate));
        assert_eq!(Grade::parse("Inadequate"), Ok(Grade::Inadequate));
        assert_eq!(Grade::parse("Ungraded"), Ok(Grade::Ungraded));
        assert!(Grade::parse("Excellent").is_err());
        assert!(Grade::parse("").is_err());
        for g in [
            Grade::Outstanding,
            Grade::Good,
            Grade::Adequate,
            Grade::RequiresImprovement,
            Grade::Inadequate,
            Grade::Ungraded,
        ] {
            assert_eq!(Grade::parse(g.as_str()), Ok(g));
        }
    }

    #[test]
    fn scale_for_period() {
        assert_eq!(GradeScale::for_period("2017"), Ok(FourTier));
        assert_eq!(GradeScale::for_period("2018/19"), Ok(FourTier));
        assert_eq!(GradeScale::for_period("PEEL 2018/19"), Ok(FourTier));
        assert_eq!(GradeScale::for_period("2021/22"), Ok(FiveTier));
        assert_eq!(GradeScale::for_period("2023–2025"), Ok(FiveTier));
        assert_eq!(GradeScale::for_period("2023-25"), Ok(FiveTier));
        assert!(GradeScale::for_period("last year").is_err());
        assert!(GradeScale::for_period("18/19").is_err());
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
