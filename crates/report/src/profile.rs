//! Layout profiles: which of the inspectorate's document layouts a text is
//! written in, detected from the text (never from a file name), so that the
//! rules particular to a layout (grade sentences, previous grades, letter
//! dates, quoted earlier items, national recommendations) apply only where
//! that layout is. The profile ids are fixed (see the corpus notes) and are
//! reported in `ParsedReport.profile` and the explanation.
//!
//! Rules, first match wins:
//! 1. **Letters**: a "Dear …" salutation (or the publication page's "Letter
//!    information" block) near the top. A letter that says it
//!    has "decided to issue" causes of concern is an accelerated
//!    cause-of-concern letter; one that speaks of a revisit ("revisited",
//!    "revisit letter") is a revisit letter; otherwise accelerated.
//! 2. **National**: no inspected organisation (or no programme), and
//!    recommendations addressed to "chief constables", "all forces" or "all
//!    fire and rescue services".
//! 3. **Fire and rescue**: the FRS programme; the round from the period's first
//!    year (or the publication year): 2018–2020 → 2018/19, 2021–2022 →
//!    2021/22, 2023 on → 2023–25.
//! 4. **PEEL**: the PEEL programme; 2014–2017 → the per-pillar reports, 2018–2020
//!    → 2018/19, 2021–2022 → 2021/22, 2023 on → 2023–25.

use crate::text::{self, fold};
use crate::units::Unit;

/// A layout of the inspectorate's documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    Peel2014To17,
    Peel2018To19,
    Peel2021To22,
    Peel2023To25,
    Frs2018To19,
    Frs2021To22,
    Frs2023To25,
    LetterAcceleratedCauseOfConcern,
    LetterRevisit,
    National,
}

impl Profile {
    /// The fixed profile id.
    pub(crate) fn id(self) -> &'static str {
        match self {
            Profile::Peel2014To17 => "peel-2014-17",
            Profile::Peel2018To19 => "peel-2018-19",
            Profile::Peel2021To22 => "peel-2021-22",
            Profile::Peel2023To25 => "peel-2023-25",
            Profile::Frs2018To19 => "frs-2018-19",
            Profile::Frs2021To22 => "frs-2021-22",
            Profile::Frs2023To25 => "frs-2023-25",
            Profile::LetterAcceleratedCauseOfConcern => "letter-accelerated-cause-of-concern",
            Profile::LetterRevisit => "letter-revisit",
            Profile::National => "national",
        }
    }

    /// A fire and rescue service assessment.
    pub(crate) fn is_frs(self) -> bool {
        matches!(
            self,
            Profile::Frs2018To19 | Profile::Frs2021To22 | Profile::Frs2023To25
        )
    }

    /// A letter.
    pub(crate) fn is_letter(self) -> bool {
        matches!(
            self,
            Profile::LetterAcceleratedCauseOfConcern | Profile::LetterRevisit
        )
    }

    /// The period of the round before this one ("our last inspection"), if
    /// the layout belongs to a round.
    pub(crate) fn previous_round(self) -> Option<&'static str> {
        match self {
            Profile::Peel2021To22 | Profile::Frs2021To22 => Some("2018/19"),
            Profile::Peel2023To25 | Profile::Frs2023To25 => Some("2021/22"),
            Profile::Peel2018To19 => Some("2017"),
            _ => None,
        }
    }
}

/// A detected profile and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Detection {
    pub profile: Profile,
    /// Short rule name, e.g. "profile.letter-salutation".
    pub rule: &'static str,
    /// The line that decided it (0 when it came from the identity).
    pub line: u32,
    pub summary: String,
}

/// How far from the top a letter's salutation is looked for, in units.
const SALUTATION_UNITS: usize = 30;

/// Detects the profile (see the module documentation).
pub(crate) fn detect(
    units: &[Unit],
    programme: &str,
    period: &str,
    published: &str,
    has_organisation: bool,
) -> Option<Detection> {
    if let Some(salutation) = units.iter().take(SALUTATION_UNITS).find(|u| {
        let lower = fold(&u.text);
        (lower.starts_with("dear ") && u.text.len() < 80) || lower == "letter information"
    }) {
        let says = |phrases: &[&str]| {
            units.iter().any(|u| {
                let lower = fold(&u.text);
                phrases.iter().any(|p| lower.contains(p))
            })
        };
        let issues = says(&[
            "decided to issue",
            "we are issuing",
            "we have issued the service with",
        ]);
        let revisit = says(&[
            "we revisited",
            "revisit letter",
            "this letter sets out what we found",
        ]);
        let profile = if revisit && !issues {
            Profile::LetterRevisit
        } else {
            Profile::LetterAcceleratedCauseOfConcern
        };
        return Some(Detection {
            profile,
            rule: if profile == Profile::LetterRevisit {
                "profile.letter-revisit"
            } else {
                "profile.letter-accelerated"
            },
            line: salutation.first_line,
            summary: format!("a letter (“{}”)", salutation.text),
        });
    }
    if (!has_organisation || programme.is_empty())
        && let Some(national) = units.iter().find(|u| is_national_audience(&u.text))
    {
        return Some(Detection {
            profile: Profile::National,
            rule: "profile.national",
            line: national.first_line,
            summary: "no inspected organisation; recommendations to every force or service"
                .to_string(),
        });
    }
    let year = text::first_year(period).or_else(|| published.get(..4).and_then(text::year))?;
    let profile = match programme {
        "FRS" => match year {
            ..=2020 => Profile::Frs2018To19,
            2021..=2022 => Profile::Frs2021To22,
            _ => Profile::Frs2023To25,
        },
        "PEEL" => match year {
            ..=2017 => Profile::Peel2014To17,
            2018..=2020 => Profile::Peel2018To19,
            2021..=2022 => Profile::Peel2021To22,
            _ => Profile::Peel2023To25,
        },
        _ => return None,
    };
    Some(Detection {
        profile,
        rule: if profile.is_frs() {
            "profile.frs-round"
        } else {
            "profile.peel-round"
        },
        line: 0,
        summary: format!("programme {programme}, period {}", or_year(period, year)),
    })
}

fn or_year(period: &str, year: i32) -> String {
    if period.is_empty() {
        year.to_string()
    } else {
        period.to_string()
    }
}

/// Words that address a recommendation to every force or service.
pub(crate) fn is_national_audience(text: &str) -> bool {
    let lower = fold(text);
    let to_all = [
        "recommendations to all chief constables",
        "recommendation to all chief constables",
        "recommendations to all forces",
        "recommendations to all fire and rescue services",
        "chief constables should",
        "all chief constables should",
        "chief fire officers should",
    ];
    to_all.iter().any(|p| lower.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::split;
    use crate::units::build;

    fn detect_in(text: &str, programme: &str, period: &str, organisation: bool) -> Option<Profile> {
        let units = build(&split(text));
        detect(&units, programme, period, "", organisation).map(|d| d.profile)
    }

    #[test]
    fn rounds_by_programme_and_year() {
        assert_eq!(
            detect_in("x", "PEEL", "2016", true),
            Some(Profile::Peel2014To17)
        );
        assert_eq!(
            detect_in("x", "PEEL", "2018/19", true),
            Some(Profile::Peel2018To19)
        );
        assert_eq!(
            detect_in("x", "PEEL", "2021/22", true),
            Some(Profile::Peel2021To22)
        );
        assert_eq!(
            detect_in("x", "PEEL", "2023–25", true),
            Some(Profile::Peel2023To25)
        );
        assert_eq!(
            detect_in("x", "FRS", "2018/19", true),
            Some(Profile::Frs2018To19)
        );
        assert_eq!(
            detect_in("x", "FRS", "2021/22", true),
            Some(Profile::Frs2021To22)
        );
        assert_eq!(
            detect_in("x", "FRS", "2023–25", true),
            Some(Profile::Frs2023To25)
        );
        assert_eq!(detect_in("x", "", "2023", true), None);
    }

    #[test]
    fn letters_and_national_reports() {
        let letter = "Sent on\n16 August 2023\n\nDear Chief Fire Officer,\n\nWe've decided to issue the service with two accelerated causes of concern:\n";
        assert_eq!(
            detect_in(letter, "FRS", "", true),
            Some(Profile::LetterAcceleratedCauseOfConcern)
        );
        let revisit = "Dear Chief Constable,\n\nWe revisited the force in January.\n";
        assert_eq!(
            detect_in(revisit, "", "", true),
            Some(Profile::LetterRevisit)
        );
        let national = "Recommendations\n\nBy 31 October 2024, chief constables should act.\n";
        assert_eq!(detect_in(national, "", "", false), Some(Profile::National));
        assert_eq!(
            detect_in(national, "PEEL", "2024", true),
            Some(Profile::Peel2023To25)
        );
    }
}
