//! What an inspection finding is. Only some kinds become tracked items:
//! noteworthy practice is praise, with nothing to follow up.

use std::fmt;
use std::str::FromStr;

use crate::DomainError;

/// The kinds of finding a report contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    /// "Areas for improvement" bullets: "The force should…".
    AreaForImprovement,
    /// A serious shortcoming, followed up through its recommendations.
    CauseOfConcern,
    /// A recommendation, usually under a cause of concern, often with a deadline.
    Recommendation,
    /// A recommendation addressed to all forces (or all services).
    NationalRecommendation,
    /// Practice others could learn from; not followed up.
    NoteworthyPractice,
}

impl FindingKind {
    pub const ALL: [FindingKind; 5] = [
        Self::AreaForImprovement,
        Self::CauseOfConcern,
        Self::Recommendation,
        Self::NationalRecommendation,
        Self::NoteworthyPractice,
    ];

    /// Whether a finding of this kind becomes a tracked item.
    pub fn is_tracked(self) -> bool {
        self != Self::NoteworthyPractice
    }

    /// The kebab-case name the command line uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AreaForImprovement => "area-for-improvement",
            Self::CauseOfConcern => "cause-of-concern",
            Self::Recommendation => "recommendation",
            Self::NationalRecommendation => "national-recommendation",
            Self::NoteworthyPractice => "noteworthy-practice",
        }
    }

    /// Parses the kebab-case name (case-insensitive; underscores and spaces
    /// accepted as separators, and the common abbreviation "afi").
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let normal = text.trim().to_lowercase().replace(['_', ' '], "-");
        if normal == "afi" {
            return Ok(Self::AreaForImprovement);
        }
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == normal)
            .ok_or_else(|| DomainError::UnknownFindingKind(text.to_string()))
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FindingKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_kebab_names() {
        for kind in FindingKind::ALL {
            assert_eq!(kind.as_str().parse::<FindingKind>(), Ok(kind));
        }
        assert_eq!(
            FindingKind::parse("Area for improvement"),
            Ok(FindingKind::AreaForImprovement)
        );
        assert_eq!(
            FindingKind::parse("AFI"),
            Ok(FindingKind::AreaForImprovement)
        );
        assert!(FindingKind::parse("praise").is_err());
    }

    #[test]
    fn noteworthy_practice_is_not_tracked() {
        assert!(!FindingKind::NoteworthyPractice.is_tracked());
        assert!(
            FindingKind::ALL
                .into_iter()
                .filter(|k| *k != FindingKind::NoteworthyPractice)
                .all(FindingKind::is_tracked)
        );
    }
}
