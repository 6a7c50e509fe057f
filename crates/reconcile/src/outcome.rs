//! Outcome wording: what a sentence of a later report says happened to an
//! earlier item ("It has made these improvements", "The force has made
//! limited progress to date", "remains an area for improvement").
//!
//! Rules are phrase lists checked in a fixed order — not inspected, then not
//! addressed, then partially addressed, then addressed — so that "hasn't made
//! these improvements" is read as not addressed and "now has a plan" as
//! partial before the generic "now has" applies. Sentences that only restate
//! what the earlier report said ("we said it needed to…", "we identified …
//! as areas for improvement") carry no outcome and are skipped, which keeps
//! their past-tense description of the problem ("wasn't routinely used") from
//! being read as a verdict.

use crate::text::normalise;

/// The verdict a wording rule gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wording {
    Addressed,
    PartiallyAddressed,
    NotAddressed,
    /// The later inspection says it did not look at the question.
    NotInspected,
}

/// A rule that fired: its verdict and the phrase that triggered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordingMatch {
    pub wording: Wording,
    pub phrase: &'static str,
}

const NOT_INSPECTED: &[&str] = &[
    "not subject to inspection",
    "has been carried over",
    "didn t inspect",
    "did not inspect",
    "was not inspected",
    "wasn t inspected",
];

const NOT_ADDRESSED: &[&str] = &[
    "remains an area for improvement",
    "remains a cause of concern",
    "still an area for improvement",
    "continues to be an area for improvement",
    "hasn t made these improvements",
    "has not made these improvements",
    "hasn t made any progress",
    "has not made any progress",
    "made no progress",
    "no progress",
    "not been addressed",
    "not yet addressed",
    "hasn t addressed",
    "has not addressed",
    "hasn t implemented",
    "has not implemented",
    "hasn t reduced",
    "has not reduced",
    "hasn t improved",
    "has not improved",
    "not complied with",
    "hasn t complied",
    "has yet to",
    "still needs to",
    "still isn t being done",
    "isn t being done",
    "is not being done",
    "remains a concern",
    "not made suitable progress",
    "hasn t made suitable progress",
    "not made sufficient progress",
    "insufficient progress",
    "hasn t met",
    "has not met",
    "hasn t yet met",
    "has not yet met",
    "hasn t been met",
    "has not been met",
    "haven t been met",
    "have not been met",
    "remains open",
    "remain open",
    "still hasn t",
    "still has not",
    "still haven t",
    "still have not",
    "still isn t",
    "still is not",
    "still aren t",
    "still are not",
    "still not",
    "still don t",
    "still do not",
    "still doesn t",
    "still does not",
];

const PARTIAL: &[&str] = &[
    "made limited progress",
    "limited progress",
    "made some progress",
    "some progress",
    "complied with some",
    "complied with part",
    "partially",
    "partly",
    "more work to do",
    "further work is needed",
    "further work is required",
    "not yet fully",
    "doesn t yet fully",
    "now has a plan",
    "has a plan for",
    "improved slightly",
    "some improvement",
    "most but not all",
    "not all areas for improvement",
];

const ADDRESSED: &[&str] = &[
    "has made these improvements",
    "made these improvements",
    "these improvements have taken place",
    "we are satisfied that",
    "this has since improved",
    "has since improved",
    "has since made",
    "now consistently",
    "now routinely",
    "includes this detail",
    "now includes",
    "has been addressed",
    "has addressed",
    "has implemented",
    "has fully complied",
    "fully complies",
    "has complied with this recommendation",
    "made good progress",
    "was an area for improvement",
    "were areas for improvement",
    "has improved",
    "can now",
    "now has",
    "discharge the",
    "now discharge",
    "have been discharged",
    "has been discharged",
    "closure of the",
    "have closed",
    "has been closed",
    "have been closed",
    "made suitable progress",
    "made sufficient progress",
    "has been met",
    "have been met",
    "has met this recommendation",
    "has met the recommendation",
    "has met these recommendations",
    "has now been met",
    "closed the cause of concern",
    "closed this cause of concern",
    "closed the accelerated cause of concern",
    "closed this accelerated cause of concern",
];

/// Sentences that restate the earlier item rather than judge it.
const REFERENCE_ONLY: &[&str] = &[
    "we said",
    "we identified",
    "we noted",
    "we recommended",
    "we set",
    "we judged",
    "we published",
    "we made",
    "we found that the force needed",
    "needed to",
    "the first was",
    "the second was",
    "the third was",
];

/// Whether the sentence only restates what the earlier report said.
pub fn is_reference_only(sentence: &str) -> bool {
    let n = format!(" {} ", normalise(sentence));
    REFERENCE_ONLY.iter().any(|p| n.contains(&format!(" {p} ")))
        && classify_unchecked(&n).is_none_or(|m| m.wording != Wording::NotAddressed)
}

/// The verdict of one sentence, if any rule fires. Sentences that only
/// restate the earlier item give none.
pub fn classify(sentence: &str) -> Option<WordingMatch> {
    let n = format!(" {} ", normalise(sentence));
    if REFERENCE_ONLY.iter().any(|p| n.contains(&format!(" {p} "))) {
        // Restatements may still carry an explicit "remains…" verdict.
        return classify_unchecked(&n).filter(|m| m.wording == Wording::NotAddressed);
    }
    classify_unchecked(&n)
}

fn classify_unchecked(padded: &str) -> Option<WordingMatch> {
    let lists: [(Wording, &[&'static str]); 4] = [
        (Wording::NotInspected, NOT_INSPECTED),
        (Wording::NotAddressed, NOT_ADDRESSED),
        (Wording::PartiallyAddressed, PARTIAL),
        (Wording::Addressed, ADDRESSED),
    ];
    for (wording, phrases) in lists {
        for phrase in phrases {
            let Some(at) = padded.find(&format!(" {phrase} ")) else {
                continue;
            };
            return Some(temper(padded, WordingMatch { wording, phrase }, at));
        }
    }
    None
}

/// Words after "but" that say a shortfall remains.
const SHORTFALL: &[&str] = &[
    " still ",
    " not ",
    " isn t ",
    " aren t ",
    " doesn t ",
    " don t ",
    " hasn t ",
    " haven t ",
    " few ",
    " inconsistent ",
];

/// A verdict with a contrast is partial: "It has improved its response …,
/// but its response to … is still inconsistent" and "… better understanding
/// …, but some still don't show them" are neither addressed nor not
/// addressed. `at` is where the verdict's phrase was found.
fn temper(padded: &str, m: WordingMatch, at: usize) -> WordingMatch {
    const CONTRAST: &str = "but (a shortfall follows)";
    let contrast = |after: &str| SHORTFALL.iter().any(|w| after.contains(w));
    match m.wording {
        Wording::Addressed => match padded.find(" but ") {
            Some(b) if contrast(&padded[b..]) => WordingMatch {
                wording: Wording::PartiallyAddressed,
                phrase: CONTRAST,
            },
            _ => m,
        },
        // "… but some still don't …", "made some progress …, but it hasn't
        // yet met it": progress, then a shortfall.
        Wording::NotAddressed => match padded.find(" but ") {
            Some(b)
                if b < at
                    && (m.phrase.starts_with("still ")
                        || classify_unchecked(&padded[..=b]).is_some_and(|p| {
                            matches!(p.wording, Wording::PartiallyAddressed | Wording::Addressed)
                        })) =>
            {
                WordingMatch {
                    wording: Wording::PartiallyAddressed,
                    phrase: CONTRAST,
                }
            }
            _ => m,
        },
        _ => m,
    }
}

/// The year a follow-up refers to, from its wording when the parser gave
/// none: "in 2017", "our 2017 effectiveness report", or "last year" (the year
/// before the later inspection's first year).
pub fn referenced_year(text: &str, later_year: Option<u32>) -> Option<u32> {
    // The first year before the later inspection's own ("not subject to
    // inspection in 2018/19, and our judgment from the 2016 effectiveness
    // inspection…" refers to 2016).
    let years = crate::text::years(text);
    if let Some(y) = years
        .iter()
        .copied()
        .find(|y| later_year.is_none_or(|later| *y < later))
    {
        return Some(y);
    }
    let n = format!(" {} ", normalise(text));
    if n.contains(" last year ") || n.contains(" previous year ") {
        return later_year.map(|y| y.saturating_sub(1));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(s: &str) -> Option<Wording> {
        classify(s).map(|m| m.wording)
    }

    #[test]
    fn addressed_wording() {
        for s in [
            "It has made these improvements.",
            "This report will address these matters in detail, but we are satisfied that these \
             improvements have taken place.",
            "It now consistently monitors the use and effectiveness of this.",
            "The most recent APSTRA includes this detail.",
            "This was an area for improvement in 2017.",
            "This has since improved.",
            "The force has since made investments and can now comprehensively analyse data compliance.",
        ] {
            assert_eq!(verdict(s), Some(Wording::Addressed), "{s}");
        }
    }

    #[test]
    fn partial_wording() {
        for s in [
            "The force has made limited progress to date, but is now introducing efficient HR software.",
            "The force has made some progress to date.",
            "We found that the force has complied with some of this recommendation.",
            "The force now has a plan for these.",
            "Availability has improved slightly, but the service has more work to do.",
        ] {
            assert_eq!(verdict(s), Some(Wording::PartiallyAddressed), "{s}");
        }
    }

    #[test]
    fn a_contrast_makes_a_verdict_partial() {
        for s in [
            "It has improved its response to children assessed as high risk, but its response to \
             children assessed as lower risk is still inconsistent.",
            "Staff have a better understanding of the values, which was an area for improvement \
             at our 2018/19 inspection, but some still don't show them in their behaviour.",
            "The service now issues more enforcement notices, but it still doesn't follow up \
             every notice it issues.",
            "The force has made some progress against this recommendation, but it hasn't yet \
             met it.",
        ] {
            assert_eq!(verdict(s), Some(Wording::PartiallyAddressed), "{s}");
        }
        for s in [
            "Staff still don't have confidence in the grievance procedures, which was an area \
             for improvement at our 2018/19 inspection.",
            "The counter-corruption unit still doesn't assess all the intelligence it receives \
             promptly, which was an area for improvement.",
        ] {
            assert_eq!(verdict(s), Some(Wording::NotAddressed), "{s}");
        }
        assert_eq!(
            verdict("The force has made these improvements, but it has more to do on data."),
            Some(Wording::Addressed),
            "a contrast with no shortfall word"
        );
    }

    #[test]
    fn not_addressed_wording() {
        for s in [
            "This remains an area for improvement.",
            "But the backlog of overdue assessments hasn’t reduced.",
            "The force hasn't made these improvements.",
        ] {
            assert_eq!(verdict(s), Some(Wording::NotAddressed), "{s}");
        }
    }

    #[test]
    fn not_inspected_wording() {
        assert_eq!(
            verdict(
                "This question was not subject to inspection in 2018/19, and our judgment from \
                 the 2016 effectiveness inspection has been carried over."
            ),
            Some(Wording::NotInspected)
        );
    }

    #[test]
    fn restatements_carry_no_verdict() {
        for s in [
            "In our [2017 effectiveness report](#), we said that it had identified that further \
             work was needed to improve the completion of risk assessments by officers, and that \
             their use of body-worn video wasn't routinely used to record evidence.",
            "In 2017, we identified understanding of leadership skills and leadership development \
             as areas for improvement.",
            "In 2017, we judged Hertfordshire Constabulary to be good at preventing crime.",
            "It also needed to review its use of body-worn video.",
        ] {
            assert_eq!(verdict(s), None, "{s}");
            assert!(is_reference_only(s), "{s}");
        }
        assert!(!is_reference_only("It has made these improvements."));
    }

    #[test]
    fn passing_mentions_carry_no_verdict() {
        for s in [
            "The force's approach to mental health triage is progressive and highly regarded.",
            "It is now reviewing its response to stalking and harassment complaints.",
            "",
        ] {
            assert_eq!(verdict(s), None, "{s}");
        }
    }

    #[test]
    fn referenced_years() {
        assert_eq!(
            referenced_year("In November 2017, we published", None),
            Some(2017)
        );
        assert_eq!(
            referenced_year("Last year, we identified", Some(2018)),
            Some(2017)
        );
        assert_eq!(
            referenced_year("Since our last inspection", Some(2018)),
            None
        );
        assert_eq!(
            referenced_year(
                "not subject to inspection in 2018/19; our 2016 judgment",
                Some(2018)
            ),
            Some(2016)
        );
    }
}
