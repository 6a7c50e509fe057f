//! Follow-up statements: what this report says about items of an earlier
//! inspection, and whether they were addressed. They are how an item is
//! assessed at the next inspection, so each one keeps the sentences that
//! justify its outcome.
//!
//! A follow-up starts at a sentence that refers back to an earlier item:
//! * "In our 2017 effectiveness report, we said / noted / recommended /
//!   identified / found …" (also "…inspection, we …");
//! * "We identified … as areas for improvement in our 2017 efficiency report";
//! * "In 2017, we identified …" / "In 2017, the force needed to …" (but not
//!   "In 2017, we judged …", which restates a grade);
//! * "In November 2017, we published our Crime Data Integrity inspection
//!   report";
//! * "Last year, we identified …";
//! * and, looking backwards, "This was an area for improvement in 2017",
//!   whose subject is the sentence before it;
//! * in fire and rescue wording: "In 2018, we had a cause of concern about …",
//!   "We said in 2021/22 that …", "In 2015, HMIC found …", "In our 2019
//!   report on …, we recommended …", "The force's plans were an area for
//!   improvement in our 2018/19 inspection";
//! * inline, item and outcome in one sentence: "The service has made suitable
//!   progress in …, which was an area for improvement at our 2018
//!   inspection" (also "… in our last inspection": the previous round),
//!   "This has resulted in the closure of the accelerated cause of concern
//!   about …", "The accelerated cause of concern about … remains open";
//! * counted (scope ALL_OF_KIND, with the count): "I can now discharge the
//!   three causes of concern we found in our 2018 inspection";
//! * summary (scope SUMMARY, never ADDRESSED): "The service has addressed
//!   most but not all areas for improvement from our 2018 inspection".
//!
//! Revisit letters quote the earlier items (read as references by
//! [`crate::findings`]); each later paragraph that says what became of a
//! recommendation or cause of concern is a follow-up whose `quoted_item` is
//! the quoted item it shares most words with.
//!
//! **Referenced report and period**: the period is the year written; the
//! report is the words between it and "report"/"inspection", lowercased
//! ("effectiveness", "crime data integrity"); where no report is named, the
//! pillar the statement sits in ("In 2017, the force needed to …" under
//! Effectiveness → "effectiveness"). "Last year" means the year before the
//! inspection period's first year (PEEL 2018/19 → "2017", the previous PEEL
//! round), or the year before publication when the period is unknown.
//!
//! **Text and outcome**: the text runs from the referring sentence to the first
//! later sentence that states an outcome, in the same paragraph or in the next
//! few paragraphs or list items (a page break, or the statement in one
//! paragraph and the outcome in the next), and the line span covers it. Without
//! an outcome sentence the text is the rest of the paragraph and the outcome
//! UNCLEAR. A backward-looking statement's outcome comes from the sentence it
//! refers to: by the phrases below, else ADDRESSED when that sentence states
//! the present position affirmatively (no "not", "n't", "no", "yet", "still",
//! "lacks") and NOT_ADDRESSED when it negates it.
//!
//! **Outcome phrases**, tried in this order, first match wins:
//! * unclear (not assessed this time): "didn't examine", "couldn't assess",
//!   "didn't inspect", "will look at this again";
//! * partially addressed: "most but not all", "but not all", a contrast whose
//!   first half is done and second is not ("X has improved, but it has not
//!   yet …"; "Most forces now …, but …"), "limited progress", "some progress", "complied with
//!   some of", "partly", "partially", "not yet fully", "not fully", "more work
//!   to do", and a plan that is not yet carried out ("now has a plan", "has a
//!   plan for", "has plans to address", "is developing a plan");
//! * not addressed: "has not", "hasn't", "have not", "remains an area for
//!   improvement", "remains a cause of concern", "no progress", "still needs
//!   to", "still need to", "has yet to", "is yet to", "not been addressed",
//!   "not improved", "still not";
//! * addressed: "has made these improvements", "satisfied that these
//!   improvements have taken place", "improvements have taken place", "now
//!   consistently", "includes this detail", "has since improved", "has since
//!   made", "can now", "has addressed", "has been addressed", "have been
//!   addressed", "has improved", "has acted on", "now complies", "fully
//!   complies", "has complied with", "good progress", "significant progress",
//!   "suitable progress", "enough progress", "has been met", "has met this",
//!   "closed this", "closure of", "discharge", and a sentence that states a
//!   present position with "now" and no negation ("The backlog has now been
//!   cleared");
//! * otherwise unclear.

use closeout_proto::{FindingKind, FollowUpOutcome, FollowUpScope, ParsedFinding, ParsedFollowUp};

use crate::profile::Profile;
use crate::sections::Outline;
use crate::text::{self, Word, fold};
use crate::units::{Kind, Unit};

const PARTIAL: &[&str] = &[
    "most but not all",
    "but not all",
    "limited progress",
    "some progress",
    "complied with some of",
    "partly",
    "partially",
    "not yet fully",
    "not fully",
    "more work to do",
    "now has a plan",
    "has a plan for",
    "has plans to address",
    "is developing a plan",
];

const NOT_ADDRESSED: &[&str] = &[
    "has not",
    "hasn't",
    "have not",
    "haven't",
    "remains an area for improvement",
    "remains a cause of concern",
    "no progress",
    "still needs to",
    "still need to",
    "has yet to",
    "is yet to",
    "not been addressed",
    "not improved",
    "still not",
    "still isn't",
    "still isn’t",
    "still doesn't",
    "still don't",
    "isn't being done",
    "not been met",
    "still happening",
    "remains open",
];

/// Phrases saying the earlier item was not assessed this time: unclear.
const NOT_ASSESSED: &[&str] = &[
    "couldn't assess",
    "could not assess",
    "didn't assess",
    "did not assess",
    "didn't examine",
    "did not examine",
    "didn't inspect",
    "did not inspect",
    "not able to assess",
    "will look at this again",
];

const ADDRESSED: &[&str] = &[
    "has made these improvements",
    "made these improvements",
    "satisfied that these improvements have taken place",
    "improvements have taken place",
    "now consistently",
    "includes this detail",
    "has since improved",
    "has since made",
    "can now",
    "has addressed",
    "has been addressed",
    "have been addressed",
    "has improved",
    "has acted on",
    "now complies",
    "fully complies",
    "has complied with",
    "good progress",
    "significant progress",
    "suitable progress",
    "enough progress",
    "now does this",
    "has been met",
    "have been met",
    "has met this",
    "has met the",
    "have met this",
    "closed this",
    "closed the cause of concern",
    "closed the accelerated cause of concern",
    "we closed",
    "close this cause of concern",
    "closure of",
    "is now closed",
    "has introduced",
    "discharge",
];

/// Verbs with which the inspectorate refers to what it said before.
const REFERRING_VERBS: &[&str] = &[
    "said",
    "noted",
    "recommended",
    "identified",
    "found",
    "set",
    "reported",
    "highlighted",
    "raised",
    "asked",
    "concluded",
    "stated",
    "had",
    "issued",
    "made",
    "gave",
];

/// How far past the referring paragraph an outcome is looked for, in
/// paragraphs (a run of list items counts as one).
const MAX_PARAGRAPHS_AHEAD: usize = 3;
/// The most units (paragraphs and list items) looked at past it.
const MAX_UNITS_AHEAD: usize = 24;

/// The outcome a sentence states, by the phrases of the module documentation;
/// a contrast ("X has improved, but it has not yet …") whose first half is
/// positive and second half negative is a partial outcome.
pub(crate) fn classify(sentence: &str) -> Option<FollowUpOutcome> {
    let lower = fold(sentence);
    if let Some(outcome) = contrast(&lower) {
        return Some(outcome);
    }
    phrase_outcome(&lower)
}

/// The outcome by phrases alone, of a folded sentence.
fn phrase_outcome(lower: &str) -> Option<FollowUpOutcome> {
    let has = |phrases: &[&str]| phrases.iter().any(|p| lower.contains(p));
    if has(NOT_ASSESSED) {
        Some(FollowUpOutcome::Unclear)
    } else if has(PARTIAL) {
        Some(FollowUpOutcome::PartiallyAddressed)
    } else if has(NOT_ADDRESSED) {
        Some(FollowUpOutcome::NotAddressed)
    } else if has(ADDRESSED) {
        Some(FollowUpOutcome::Addressed)
    } else if position_of(lower) == FollowUpOutcome::Addressed {
        // "The backlog has now been cleared", "All ten services now offer
        // this." — but "The force is now reviewing it" is work in progress.
        let mut words = lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty());
        let after_now = words.by_ref().find(|w| *w == "now").map(|_| words.next());
        match after_now {
            Some(Some(next)) if next.ends_with("ing") => Some(FollowUpOutcome::PartiallyAddressed),
            Some(_) => Some(FollowUpOutcome::Addressed),
            None => None,
        }
    } else {
        None
    }
}

/// "A, but B" where A is done and B is not (or A says "most … now"):
/// partially addressed.
fn contrast(lower: &str) -> Option<FollowUpOutcome> {
    let (left, right) = lower.split_once(", but ")?;
    let side = |t: &str| phrase_outcome(t).unwrap_or_else(|| position_of(t));
    let left_done = side(left) == FollowUpOutcome::Addressed;
    let most_now = left.starts_with("most ") && left.contains(" now ");
    (left_done && (side(right) == FollowUpOutcome::NotAddressed || most_now))
        .then_some(FollowUpOutcome::PartiallyAddressed)
}

/// Affirmative or negated present position of a folded clause.
fn position_of(lower: &str) -> FollowUpOutcome {
    let negated = lower.contains("n't")
        || lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| matches!(w, "not" | "no" | "yet" | "still" | "lacks" | "never"));
    if negated {
        FollowUpOutcome::NotAddressed
    } else {
        FollowUpOutcome::Addressed
    }
}

/// The outcome of a backward-looking statement from the sentence it refers to.
fn classify_present_position(sentence: &str) -> FollowUpOutcome {
    if let Some(outcome) = classify(sentence) {
        return outcome;
    }
    position_of(&fold(sentence))
}

/// How a referring sentence relates to the earlier item and its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The item is named here; the outcome follows ("In 2017, we said …").
    Forward,
    /// Refers to the sentence before it ("This was an area for improvement in 2017").
    Backward,
    /// Item and outcome in one sentence ("The service now does X, which was an
    /// area for improvement at our 2018 inspection").
    Inline,
    /// A counted statement about every item of a kind ("discharge the three
    /// causes of concern we found in our 2018 inspection").
    Counted,
    /// A statement about the items of a kind without item detail ("addressed
    /// most but not all areas for improvement").
    Summary,
}

/// What a referring sentence says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Trigger {
    shape: Shape,
    /// "Last year" / "our last inspection": the period is derived.
    last_year: bool,
    period: String,
    /// The report named, lowercased; empty if none.
    report: String,
    /// Short rule name, for the explanation.
    rule: &'static str,
    /// For a counted statement: the count stated (0 if none).
    count: u32,
}

impl Trigger {
    fn new(shape: Shape, period: &str, report: String, rule: &'static str) -> Self {
        Trigger {
            shape,
            last_year: false,
            period: period.to_string(),
            report,
            rule,
            count: 0,
        }
    }
}

/// Kinds of earlier item, as written.
const ITEM_WORDS: &[&str] = &[
    "area for improvement",
    "areas for improvement",
    "cause of concern",
    "causes of concern",
];

/// A count written as a word or digits ("three", "3").
fn count_word(word: &str) -> Option<u32> {
    if let Ok(n) = word.parse::<u32>() {
        return (n > 0 && n < 1000).then_some(n);
    }
    let n = match word {
        "one" => 1,
        "two" | "both" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        _ => return None,
    };
    Some(n)
}

/// The period after "in our", "at our", "from our", "in" or "at" at the end
/// of `tail` (a folded clause): (period, last_year).
fn period_after(tail: &str) -> Option<(String, bool)> {
    let words: Vec<&str> = tail
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | ';' | ':'))
        .filter(|w| !w.is_empty())
        .collect();
    for (k, w) in words.iter().enumerate() {
        if !matches!(*w, "in" | "at" | "from" | "since" | "during") {
            continue;
        }
        let mut next = k + 1;
        if words.get(next) == Some(&"our") || words.get(next) == Some(&"the") {
            next += 1;
        }
        match words.get(next) {
            Some(&"last") => return Some((String::new(), true)),
            Some(p) if text::period(p).is_some() => return Some(((*p).to_string(), false)),
            _ => {}
        }
    }
    None
}

/// Whether a paragraph refers back to an earlier inspection's items (so it
/// is a follow-up, not a new finding, even if it says "should").
pub(crate) fn refers_back(paragraph: &str) -> bool {
    // The first sentence, roughly: up to the first ". " (enough to read how
    // the paragraph opens, and far cheaper than splitting every sentence).
    let first = paragraph
        .find(". ")
        .and_then(|end| paragraph.get(..=end))
        .unwrap_or(paragraph);
    trigger(first).is_some()
}

/// The fire and rescue (and later PEEL) statements that name the kind of
/// item in the sentence itself: counted ("discharge the three causes of
/// concern …"), closure, summary ("addressed most but not all areas for
/// improvement …"), inline ("…, which was an area for improvement at our 2018
/// inspection") and subject-first ("X was an area for improvement in our
/// 2018/19 inspection"). `folded` is the folded sentence.
fn item_trigger(folded: &str) -> Option<Trigger> {
    // "I can now discharge the three causes of concern we found in our 2018
    // inspection"; "This has resulted in the closure of the accelerated cause
    // of concern about …"
    if let Some(at) = folded.find("discharge the ") {
        let rest = &folded[at + "discharge the ".len()..];
        let mut rest_words = rest.split_whitespace();
        let first = rest_words.next().unwrap_or("");
        let count = count_word(first).unwrap_or(0);
        if ITEM_WORDS.iter().any(|p| rest.contains(p)) {
            let (period, last) = period_after(rest).unwrap_or_default();
            let plural = rest.starts_with("causes")
                || rest.contains(" causes of concern")
                || rest.contains("areas for improvement");
            let mut t = Trigger::new(
                if count > 0 || plural {
                    Shape::Counted
                } else {
                    Shape::Inline
                },
                &period,
                String::new(),
                "followup.counted-discharge",
            );
            t.last_year = last;
            t.count = count;
            return Some(t);
        }
    }
    if folded.contains("closure of the") && ITEM_WORDS.iter().any(|p| folded.contains(p)) {
        let (period, last) = period_after(folded).unwrap_or_default();
        let mut t = Trigger::new(Shape::Inline, &period, String::new(), "followup.closure-of");
        t.last_year = last;
        return Some(t);
    }
    // "The service has addressed most but not all areas for improvement from
    // our 2018 inspection."
    for lead in [
        "addressed most",
        "addressed some",
        "addressed many",
        "addressed all",
        "addressed the majority",
    ] {
        if let Some(at) = folded.find(lead) {
            let rest = &folded[at..];
            if ITEM_WORDS.iter().any(|p| rest.contains(p)) {
                let (period, last) = period_after(rest).unwrap_or_default();
                let all_of = lead == "addressed all";
                let mut t = Trigger::new(
                    if all_of {
                        Shape::Counted
                    } else {
                        Shape::Summary
                    },
                    &period,
                    String::new(),
                    "followup.summary-statement",
                );
                t.last_year = last;
                return Some(t);
            }
        }
    }
    // "The accelerated cause of concern about the mobilising system remains
    // open."
    if [
        "the accelerated cause of concern ",
        "the cause of concern ",
        "the area for improvement ",
    ]
    .iter()
    .any(|lead| folded.starts_with(lead))
        && phrase_outcome(folded).is_some()
    {
        let (period, last) = period_after(folded).unwrap_or_default();
        let mut t = Trigger::new(
            Shape::Inline,
            &period,
            String::new(),
            "followup.item-status",
        );
        t.last_year = last;
        return Some(t);
    }
    // "…, which was an area for improvement at our 2018 inspection."
    for marker in [
        "which was an area for improvement",
        "which were areas for improvement",
        "which was a cause of concern",
        "which was one of our areas for improvement",
    ] {
        if let Some(at) = folded.find(marker) {
            let (period, last) = period_after(&folded[at + marker.len()..])?;
            let mut t = Trigger::new(
                Shape::Inline,
                &period,
                String::new(),
                "followup.which-was-an-item",
            );
            t.last_year = last;
            return Some(t);
        }
    }
    // "The force's financial plans were an area for improvement in our
    // 2018/19 inspection."
    for marker in [
        " was an area for improvement ",
        " were an area for improvement ",
        " were areas for improvement ",
        " was a cause of concern ",
    ] {
        if let Some(at) = folded.find(marker)
            && !folded.starts_with("this ")
            && !folded.starts_with("these ")
        {
            let (period, last) = period_after(&folded[at + marker.len() - 1..])?;
            let mut t = Trigger::new(
                Shape::Forward,
                &period,
                String::new(),
                "followup.subject-was-an-item",
            );
            t.last_year = last;
            return Some(t);
        }
    }
    None
}

/// Whether a lowercased sentence speaks of an earlier report ("in our", "our
/// last") and whether it names a kind of item ("for improvement", "of
/// concern"). This runs on every sentence, so it is kept cheap.
fn mentions_earlier(lower: &str) -> (bool, bool) {
    // "our" and "of"/"for" are common; the item words are not: look for
    // those first.
    let item = lower.contains("improvement") && lower.contains("for improvement")
        || lower.contains("concern") && lower.contains("of concern");
    let earlier =
        lower.contains("our ") && (lower.contains("in our ") || lower.contains("our last"));
    (earlier, item)
}

/// The trigger a sentence holds, if it refers back to an earlier item.
fn trigger(sentence: &str) -> Option<Trigger> {
    let lower = sentence.to_ascii_lowercase();
    let (earlier, item) = mentions_earlier(&lower);
    // Most sentences cannot refer back: skip them before splitting words.
    let may_refer = [
        "in ",
        "last year",
        "this ",
        "these ",
        "we said in ",
        "the accelerated ",
    ]
    .iter()
    .any(|lead| lower.starts_with(lead))
        || earlier
        || item;
    if !may_refer {
        return None;
    }
    let all = text::words(sentence);
    let words: Vec<&str> = all.iter().map(|w| w.of(&lower)).collect();
    let w = |k: usize| words.get(k).copied().unwrap_or("");
    let first_two = (w(0), w(1));

    // "This was an area for improvement in 2017"
    if matches!(
        first_two,
        ("this", "was") | ("these", "were") | ("this", "had")
    ) && item
    {
        let (period, report) = named_report(sentence, &all, &words)
            .or_else(|| first_period(sentence, &all).map(|p| (p, String::new())))?;
        return Some(Trigger::new(
            Shape::Backward,
            &period,
            report,
            "followup.this-was-an-item",
        ));
    }
    if item && let Some(found) = item_trigger(&fold(sentence)) {
        return Some(found);
    }
    // "Last year, we identified …"
    if first_two == ("last", "year") && w(2) == "we" && REFERRING_VERBS.contains(&w(3)) {
        let mut t = Trigger::new(Shape::Forward, "", String::new(), "followup.last-year");
        t.last_year = true;
        return Some(t);
    }
    // "We said in 2021/22 that the service should …"
    if w(0) == "we"
        && REFERRING_VERBS.contains(&w(1))
        && w(2) == "in"
        && let Some(p) = all
            .get(3)
            .map(|x| x.of(sentence))
            .filter(|p| text::period(p).is_some())
    {
        return Some(Trigger::new(
            Shape::Forward,
            p,
            String::new(),
            "followup.we-said-in",
        ));
    }
    // "In November 2017, we published our Crime Data Integrity inspection report"
    let published_ours = w(0) == "in"
        && text::month(w(1)).is_some()
        && text::year(w(2)).is_some()
        && w(3) == "we"
        && w(4) == "published"
        && w(5) == "our";
    if published_ours {
        if let Some(end) = (6..words.len().min(14)).find(|&k| w(k) == "report") {
            return Some(Trigger::new(
                Shape::Forward,
                w(2),
                report_name(sentence, &all[6..end]),
                "followup.we-published-our-report",
            ));
        }
    }
    // "In 2017, we identified …" / "In 2017, the force needed to …" / "In
    // 2015, HMIC found …"
    if w(0) == "in" && text::period(all.get(1).map_or("", |x| x.of(sentence))).is_some() {
        let by_us = w(2) == "we" && REFERRING_VERBS.contains(&w(3));
        let by_inspectorate = matches!(w(2), "hmic" | "hmicfrs") && REFERRING_VERBS.contains(&w(3));
        let of_force = w(2) == "the"
            && matches!(w(3), "force" | "service" | "constabulary")
            && matches!(w(4), "needed" | "had" | "was" | "were" | "needs");
        let of_it = w(2) == "it" && matches!(w(3), "needed" | "had");
        if by_us || by_inspectorate || of_force || of_it {
            return Some(Trigger::new(
                Shape::Forward,
                all.get(1).map_or("", |x| x.of(sentence)),
                String::new(),
                "followup.in-year-we-said",
            ));
        }
    }
    // "in our 2017 effectiveness report, we said …",
    // "… as areas for improvement in our 2017 efficiency report", and
    // "In our 2019 report on the police response to …, we recommended …".
    for k in 0..words.len() {
        if w(k) != "in" || w(k + 1) != "our" {
            continue;
        }
        let Some(period) = all
            .get(k + 2)
            .map(|x| x.of(sentence))
            .filter(|p| text::period(p).is_some())
        else {
            continue;
        };
        let Some(end) =
            (k + 3..words.len().min(k + 10)).find(|&j| matches!(w(j), "report" | "inspection"))
        else {
            continue;
        };
        let after = if w(end + 1) == "report" {
            end + 2
        } else {
            end + 1
        };
        let referring = w(after) == "we" && REFERRING_VERBS.contains(&w(after + 1));
        let about_report = k == 0
            && w(after) == "on"
            && (after..words.len().min(after + 16))
                .any(|j| w(j) == "we" && REFERRING_VERBS.contains(&w(j + 1)));
        let as_item = {
            let before = lower.get(..all[k].start).unwrap_or("").trim_end();
            ITEM_WORDS.iter().any(|p| before.ends_with(p))
        };
        if referring || about_report || as_item {
            return Some(Trigger::new(
                Shape::Forward,
                period,
                report_name(sentence, &all[k + 3..end]),
                "followup.in-our-report",
            ));
        }
    }
    None
}

/// "in our 2017 efficiency report" anywhere in the sentence: (period, report).
fn named_report(sentence: &str, all: &[Word], words: &[&str]) -> Option<(String, String)> {
    let w = |k: usize| words.get(k).copied().unwrap_or("");
    (0..words.len()).find_map(|k| {
        if w(k) != "in" || w(k + 1) != "our" {
            return None;
        }
        let period = all
            .get(k + 2)
            .map(|x| x.of(sentence))
            .filter(|p| text::period(p).is_some())?;
        let end =
            (k + 3..words.len().min(k + 10)).find(|&j| matches!(w(j), "report" | "inspection"))?;
        Some((period.to_string(), report_name(sentence, &all[k + 3..end])))
    })
}

fn first_period(sentence: &str, all: &[Word]) -> Option<String> {
    all.iter()
        .map(|w| w.of(sentence))
        .find(|w| text::period(w).is_some())
        .map(str::to_string)
}

/// The report's name from the words between the period and "report":
/// lowercased, without "inspection".
fn report_name(sentence: &str, words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.of(sentence).to_lowercase())
        .filter(|w| w != "inspection")
        .collect::<Vec<_>>()
        .join(" ")
}

/// A sentence's position: (unit, sentence index).
type Pos = (usize, usize);

/// Extracts every follow-up statement (see the module documentation).
pub(crate) fn extract(
    units: &[Unit],
    outline: &Outline,
    period: &str,
    published: &str,
    profile: Option<Profile>,
    references: &[ParsedFinding],
) -> Vec<ParsedFollowUp> {
    let sentences: Vec<Vec<(usize, usize)>> = units
        .iter()
        .enumerate()
        .map(|(i, u)| {
            if u.is_prose() && !outline.in_contents(i) && !u.is_heading() {
                text::sentences(&u.text)
            } else {
                Vec::new()
            }
        })
        .collect();
    if profile == Some(Profile::LetterRevisit) {
        return revisit_outcomes(units, outline, &sentences, references);
    }
    let sentence = |pos: Pos| sentence_at(units, &sentences, pos);
    let last_year = text::first_year(period)
        .or_else(|| published.get(..4).and_then(text::year))
        .map(|y| (y - 1).to_string())
        .unwrap_or_default();
    let last_round = profile
        .and_then(Profile::previous_round)
        .map_or_else(|| last_year.clone(), str::to_string);

    let mut out = Vec::new();
    let mut resume: Pos = (0, 0);
    for u in 0..units.len() {
        for s in 0..sentences[u].len() {
            if (u, s) < resume {
                continue;
            }
            let here = sentence((u, s));
            let Some(found) = trigger(here) else {
                continue;
            };
            let (start, end, outcome) = match found.shape {
                Shape::Backward => {
                    let Some(before) = previous_sentence(&sentences, units, (u, s)) else {
                        continue;
                    };
                    (before, (u, s), classify_present_position(sentence(before)))
                }
                Shape::Inline => {
                    let lower = fold(here);
                    let clause = lower.split(", which ").next().unwrap_or(&lower);
                    let outcome = classify(&lower)
                        .or_else(|| classify(clause))
                        .unwrap_or_else(|| position_of(clause));
                    ((u, s), (u, s), outcome)
                }
                Shape::Counted => (
                    (u, s),
                    (u, s),
                    classify(here).unwrap_or(FollowUpOutcome::Unclear),
                ),
                Shape::Summary => {
                    let outcome = match classify(here) {
                        Some(FollowUpOutcome::NotAddressed) => FollowUpOutcome::NotAddressed,
                        Some(_) => FollowUpOutcome::PartiallyAddressed,
                        None => FollowUpOutcome::Unclear,
                    };
                    ((u, s), (u, s), outcome)
                }
                Shape::Forward => match find_outcome(units, &sentences, (u, s)) {
                    Some((end, outcome)) => ((u, s), end, outcome),
                    None => {
                        let own = classify(here);
                        let end = if own.is_some() {
                            (u, s)
                        } else {
                            (u, sentences[u].len() - 1)
                        };
                        ((u, s), end, own.unwrap_or(FollowUpOutcome::Unclear))
                    }
                },
            };
            let report = if found.report.is_empty() {
                outline.pillar_of(u).to_lowercase()
            } else {
                found.report.clone()
            };
            let referenced_period = if found.last_year {
                if fold(here).contains("last inspection") {
                    last_round.clone()
                } else {
                    last_year.clone()
                }
            } else if found.period.is_empty() {
                // "In August 2023, we issued … This has resulted in the closure
                // of …": the year written earlier in the paragraph.
                let before = sentences[u]
                    .get(s)
                    .and_then(|&(a, _)| units[u].text.get(..a))
                    .unwrap_or("");
                text::words(before)
                    .iter()
                    .map(|w| w.of(before))
                    .find(|w| text::year(w).is_some())
                    .unwrap_or("")
                    .to_string()
            } else {
                found.period.clone()
            };
            let (scope, stated_count) = match found.shape {
                Shape::Counted => (FollowUpScope::AllOfKind, found.count),
                Shape::Summary => (FollowUpScope::Summary, 0),
                _ => (FollowUpScope::Item, 0),
            };
            let text = span_text(units, &sentences, start, end);
            out.push(ParsedFollowUp {
                referenced_period,
                referenced_report: report,
                referenced_kind: referenced_kind(here)
                    .unwrap_or_else(|| referenced_kind(&text).unwrap_or(FindingKind::Unspecified))
                    as i32,
                text,
                outcome: outcome as i32,
                line_start: line_of(units, &sentences, start, true),
                line_end: line_of(units, &sentences, end, false),
                pillar: outline.pillar_of(u).to_string(),
                question: outline.question_of(u).to_string(),
                scope: scope as i32,
                stated_count,
                quoted_item: String::new(),
                rule: found.rule.to_string(),
            });
            resume = (end.0, end.1 + 1).max((u, s + 1));
        }
    }
    out
}

/// The kind of earlier item a text speaks of, by its first mention.
fn referenced_kind(text: &str) -> Option<FindingKind> {
    let lower = fold(text);
    let at = |p: &str| lower.find(p);
    let mut found: Vec<(usize, FindingKind)> = Vec::new();
    if let Some(i) = at("area for improvement").or_else(|| at("areas for improvement")) {
        found.push((i, FindingKind::AreaForImprovement));
    }
    if let Some(i) = at("cause of concern").or_else(|| at("causes of concern")) {
        found.push((i, FindingKind::CauseOfConcern));
    }
    if let Some(i) = at("recommend") {
        let national = [
            "all forces",
            "chief constables",
            "all fire and rescue services",
        ]
        .iter()
        .any(|p| lower.contains(p));
        found.push((
            i,
            if national {
                FindingKind::NationalRecommendation
            } else {
                FindingKind::Recommendation
            },
        ));
    }
    found.into_iter().min_by_key(|(i, _)| *i).map(|(_, k)| k)
}

/// Revisit letters: after the quoted earlier items, each paragraph that
/// says what became of a recommendation or cause of concern ("This
/// recommendation has been met", "we have closed this accelerated cause of
/// concern", "remains a cause of concern") is a follow-up of the quoted item
/// it shares most words with.
fn revisit_outcomes(
    units: &[Unit],
    outline: &Outline,
    sentences: &[Vec<(usize, usize)>],
    references: &[ParsedFinding],
) -> Vec<ParsedFollowUp> {
    let after_quotes = references.iter().map(|r| r.line_end).max().unwrap_or(0);
    // The earlier items' period: the first year in the letter before them.
    let salutation = units
        .iter()
        .position(|u| fold(&u.text).starts_with("dear "))
        .unwrap_or(0);
    let earlier_period = units
        .iter()
        .skip(salutation)
        .take_while(|u| u.first_line < references.iter().map(|r| r.line_start).min().unwrap_or(0))
        .find_map(|u| {
            text::words(&u.text)
                .iter()
                .map(|w| w.of(&u.text))
                .find(|w| text::year(w).is_some())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut heading = "";
    for (u, unit) in units.iter().enumerate() {
        if unit.first_line <= after_quotes {
            continue;
        }
        if unit.is_heading() {
            heading = &unit.text;
            continue;
        }
        let list = sentences.get(u).map_or(&[][..], Vec::as_slice);
        let decided = list.iter().enumerate().find_map(|(k, &(a, b))| {
            let sentence = unit.text.get(a..b)?;
            let lower = fold(sentence);
            let about_item = lower.contains("recommendation") || lower.contains("cause of concern");
            if !about_item {
                return None;
            }
            classify(sentence).map(|o| (k, o, referenced_kind(sentence)))
        });
        let Some((k, outcome, kind)) = decided else {
            continue;
        };
        let kind = kind.unwrap_or(FindingKind::Unspecified);
        let candidates: Vec<&str> = references
            .iter()
            .filter(|r| kind == FindingKind::Unspecified || r.kind() == kind)
            .map(|r| r.text.as_str())
            .collect();
        let context = format!("{heading} {}", unit.text);
        let quoted = crate::findings::best_match(&context, &candidates)
            .unwrap_or("")
            .to_string();
        out.push(ParsedFollowUp {
            referenced_period: earlier_period.clone(),
            referenced_report: String::new(),
            text: unit.text.clone(),
            outcome: outcome as i32,
            line_start: unit.first_line,
            line_end: line_of(units, sentences, (u, k), false).max(unit.first_line),
            pillar: outline.pillar_of(u).to_string(),
            question: outline.question_of(u).to_string(),
            referenced_kind: kind as i32,
            scope: FollowUpScope::Item as i32,
            stated_count: 0,
            quoted_item: quoted,
            rule: "letter.revisit-outcome".to_string(),
        });
    }
    out
}

/// The sentence before `pos`, in the same paragraph or the paragraph before.
fn previous_sentence(
    sentences: &[Vec<(usize, usize)>],
    units: &[Unit],
    (u, s): Pos,
) -> Option<Pos> {
    if s > 0 {
        return Some((u, s - 1));
    }
    let previous = u.checked_sub(1)?;
    let ok = units
        .get(previous)
        .is_some_and(|p| p.kind == Kind::Text && !p.is_heading());
    let count = sentences.get(previous).map_or(0, Vec::len);
    (ok && count > 0).then(|| (previous, count - 1))
}

/// The first sentence after `start` that states an outcome (see the module
/// documentation), with the outcome.
fn find_outcome(
    units: &[Unit],
    sentences: &[Vec<(usize, usize)>],
    (u, s): Pos,
) -> Option<(Pos, FollowUpOutcome)> {
    let sentence = |pos: Pos| sentence_at(units, sentences, pos);
    let in_unit = |unit: usize, from: usize| {
        (from..sentences.get(unit).map_or(0, Vec::len))
            .find_map(|k| classify(sentence((unit, k))).map(|o| ((unit, k), o)))
    };
    if let Some(found) = in_unit(u, s + 1) {
        return Some(found);
    }
    let mut paragraphs = 0;
    let mut previous_kind = units.get(u).map(|x| x.kind);
    for next in u + 1..units.len().min(u + 1 + MAX_UNITS_AHEAD) {
        let unit = &units[next];
        let stop = !unit.is_prose()
            || unit.is_heading()
            || unit.grade.is_some()
            || sentences[next].is_empty();
        if stop {
            return None;
        }
        if !(unit.kind == Kind::Bullet && previous_kind == Some(Kind::Bullet)) {
            paragraphs += 1;
        }
        if paragraphs > MAX_PARAGRAPHS_AHEAD {
            return None;
        }
        previous_kind = Some(unit.kind);
        if (0..sentences[next].len()).any(|k| trigger(sentence((next, k))).is_some()) {
            return None;
        }
        if let Some(found) = in_unit(next, 0) {
            return Some(found);
        }
    }
    None
}

/// The text of the sentence at `pos`, or "".
fn sentence_at<'a>(units: &'a [Unit], sentences: &[Vec<(usize, usize)>], (u, s): Pos) -> &'a str {
    sentences
        .get(u)
        .and_then(|list| list.get(s))
        .and_then(|&(a, b)| units.get(u).and_then(|unit| unit.text.get(a..b)))
        .unwrap_or("")
}

/// The sentences from `start` to `end` inclusive, joined by a space.
fn span_text(units: &[Unit], sentences: &[Vec<(usize, usize)>], start: Pos, end: Pos) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for u in start.0..=end.0 {
        let list = sentences.get(u).map_or(&[][..], Vec::as_slice);
        let from = if u == start.0 { start.1 } else { 0 };
        let to = if u == end.0 { end.1 + 1 } else { list.len() };
        for &(a, b) in list.get(from..to.min(list.len())).unwrap_or(&[]) {
            if let Some(text) = units.get(u).and_then(|unit| unit.text.get(a..b)) {
                parts.push(text);
            }
        }
    }
    parts.join(" ")
}

/// The line where the sentence at `pos` starts (or ends).
fn line_of(units: &[Unit], sentences: &[Vec<(usize, usize)>], (u, s): Pos, start: bool) -> u32 {
    let Some(unit) = units.get(u) else { return 0 };
    match sentences.get(u).and_then(|list| list.get(s)) {
        Some(&(a, b)) => unit.line_at(if start { a } else { b.saturating_sub(1) }),
        None => unit.first_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_phrases() {
        assert_eq!(
            classify("It has made these improvements."),
            Some(FollowUpOutcome::Addressed)
        );
        assert_eq!(
            classify(
                "The force has made limited progress to date, but is now introducing software."
            ),
            Some(FollowUpOutcome::PartiallyAddressed)
        );
        assert_eq!(
            classify("We found that the force has complied with some of this recommendation."),
            Some(FollowUpOutcome::PartiallyAddressed)
        );
        assert_eq!(
            classify("This remains an area for improvement."),
            Some(FollowUpOutcome::NotAddressed)
        );
        assert_eq!(
            classify("The force hasn’t done this."),
            Some(FollowUpOutcome::NotAddressed)
        );
        assert_eq!(
            classify("The force now has a plan for these."),
            Some(FollowUpOutcome::PartiallyAddressed)
        );
        assert_eq!(classify("The force is good at this."), None);
        assert_eq!(
            classify("The backlog has now been cleared."),
            Some(FollowUpOutcome::Addressed)
        );
        assert_eq!(
            classify("The force is now reviewing its approach."),
            Some(FollowUpOutcome::PartiallyAddressed)
        );
        assert_eq!(
            classify(
                "Its understanding has improved, but it has not yet used this to set priorities."
            ),
            Some(FollowUpOutcome::PartiallyAddressed)
        );
        assert_eq!(
            classify("We didn't examine the results of this review."),
            Some(FollowUpOutcome::Unclear)
        );
    }

    #[test]
    fn present_position() {
        assert_eq!(
            classify_present_position("The force understands the skills of its workforce."),
            FollowUpOutcome::Addressed
        );
        assert_eq!(
            classify_present_position("The force doesn't understand the skills of its workforce."),
            FollowUpOutcome::NotAddressed
        );
    }

    #[test]
    fn triggers() {
        let t = trigger("In our 2017 effectiveness report, we said it needed to comply.");
        assert_eq!(
            t.map(|t| (t.period, t.report)),
            Some(("2017".into(), "effectiveness".into()))
        );
        let t =
            trigger("In November 2017, we published our Crime Data Integrity inspection report.");
        assert_eq!(
            t.map(|t| (t.period, t.report)),
            Some(("2017".into(), "crime data integrity".into()))
        );
        let t = trigger(
            "We identified both A and B as areas for improvement in our 2017 efficiency report.",
        );
        assert_eq!(
            t.map(|t| (t.period, t.report)),
            Some(("2017".into(), "efficiency".into()))
        );
        let t = trigger("This was an area for improvement in 2017.");
        assert_eq!(
            t.map(|t| (t.shape, t.period)),
            Some((Shape::Backward, "2017".into()))
        );
        assert!(trigger("Last year, we identified some areas.").is_some_and(|t| t.last_year));
        assert!(trigger("In 2017, the force needed to review its use of video.").is_some());
        assert!(trigger("In 2017, we judged the force to be good.").is_none());
        assert!(trigger("We extended the approach that we used in our 2017 effectiveness inspection to the others.").is_none());
        assert!(trigger("Despite investment last year, capacity has gone.").is_none());
    }
}
