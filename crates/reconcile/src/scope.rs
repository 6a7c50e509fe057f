//! Statements about many earlier items at once, items quoted word for word,
//! and a cause of concern's closure carried to its recommendations.
//!
//! The item-by-item matcher ([`crate::matcher`]) reads follow-ups about one
//! item. Three other forms are applied here, after it, each only where it
//! is stronger evidence than what an item already has:
//!
//! * **Quoted items** (revisit letters quote the earlier cause of concern and
//!   its recommendations word for word): the quotation is matched to the
//!   item whose text it nearly repeats ([`QUOTE_SIMILARITY`], word overlap),
//!   and the letter's verdict ("This has resulted in the closure of …" →
//!   ADDRESSED, "… remains a cause of concern" → NOT_ADDRESSED) applies to
//!   that item — unless the item-by-item matcher already matched a
//!   statement to it by its own words (a letter's statements are read by the
//!   matcher too; a quotation attributed to the wrong statement must not
//!   overrule what the statements say).
//! * **Counted statements** ("I can now discharge the three causes of
//!   concern we found in our 2018 inspection"): the verdict applies to every
//!   open item of that kind and period — for causes of concern, their
//!   recommendations too. An item with its own follow-up keeps it. When the
//!   stated count differs from the items found, the score drops and the rule
//!   says so, for a person to look.
//! * **Summary statements** ("addressed most but not all areas for
//!   improvement") say nothing of any one item: items of that kind and
//!   period with no other evidence get PARTIALLY_ADDRESSED when the summary
//!   speaks of progress, NOT_ASSESSED otherwise — never ADDRESSED.
//!
//! * **A cause of concern named by its subject** ("This has resulted in the
//!   closure of the accelerated cause of concern about site-specific risk
//!   information", "In 2018, we had a cause of concern about the service's
//!   protection work … We closed the cause of concern"): a statement about
//!   one item that names a cause of concern and gives a verdict applies to
//!   the open cause of concern of that year it is nearest to (TF-IDF
//!   cosine), when it is the only one of the year the statement names or
//!   clearly the nearest ([`NAMED_MARGIN`]); only to causes of concern the
//!   matcher found no evidence for.
//!
//! * **A statement about one item** ("This recommendation has been met")
//!   that the matcher gave to several items (a sentence about one
//!   recommendation that mentions another's words, "tested it twice with
//!   control room staff") is kept by one: the item its quotation repeats,
//!   else the best-scored; the others go back to having no evidence.
//!
//! Last, a cause of concern proposed ADDRESSED closes its recommendations'
//! proposals too (those without evidence of their own), each quoting the
//! cause of concern's sentences.

use crate::index::Index;
use crate::outcome::{self, Wording};
use crate::text::{Analyzer, first_year, normalise, split_sentences};
use crate::{
    FollowUp, FollowUpOutcome, FollowUpScope, ItemKind, LaterInspection, OpenItem, Proposal,
    ProposalOutcome,
};

/// Minimum word overlap (Dice coefficient of the two texts' word lists) for
/// a quotation to be an item's own text.
pub const QUOTE_SIMILARITY: f64 = 0.8;

/// How far ahead (in cosine) of every other cause of concern of its year
/// the nearest one must be for a statement naming "the cause of concern
/// about …" to be about it.
pub const NAMED_MARGIN: f64 = 0.1;

/// The least cosine for a statement naming a cause of concern to be about
/// the nearest one, when the year has several.
pub const NAMED_MIN_SIMILARITY: f64 = 0.15;

/// What decided a proposal so far, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Evidence {
    /// No statement about the item (not assessed, or a re-raising finding
    /// only).
    None,
    Summary,
    /// A cause of concern's verdict carried to its recommendation.
    Parent,
    /// A statement naming a cause of concern by its subject.
    Named,
    /// A follow-up about this one item.
    OwnFollowUp,
    Counted,
    Quoted,
}

/// Applies counted, summary and quoted-item statements of `later` to the
/// proposals the matcher made for `items` (same order), then carries each
/// addressed cause of concern to its recommendations.
pub fn apply(items: &[OpenItem], later: &LaterInspection, proposals: &mut [Proposal]) {
    if items.len() != proposals.len() {
        return;
    }
    let later_year = first_year(&later.period);
    let mut evidence: Vec<Evidence> = proposals
        .iter()
        .map(|p| {
            if p.matched_follow_up_id.is_some() && p.outcome != ProposalOutcome::NotAssessed {
                Evidence::OwnFollowUp
            } else {
                Evidence::None
            }
        })
        .collect();
    one_item_each(items, later, proposals, &mut evidence);
    let quoted = |f: &&FollowUp| !f.quoted_item.trim().is_empty();
    for fu in later
        .follow_ups
        .iter()
        .filter(|f| f.scope == FollowUpScope::Summary && !quoted(f))
    {
        summary(items, fu, later_year, proposals, &mut evidence);
    }
    for fu in later
        .follow_ups
        .iter()
        .filter(|f| f.scope == FollowUpScope::AllOfKind && !quoted(f))
    {
        counted(items, fu, later_year, proposals, &mut evidence);
    }
    for fu in later.follow_ups.iter().filter(|f| f.is_about_one_item()) {
        named_cause_of_concern(items, later, fu, later_year, proposals, &mut evidence);
    }
    for fu in later.follow_ups.iter().filter(quoted) {
        quotation(items, fu, proposals, &mut evidence);
    }
    carry_to_recommendations(items, proposals, &evidence);
}

/// The verdict of a statement: its sentences' wording (a mix of "addressed"
/// and anything else reads as the other), else the parser's outcome.
/// `quoted` is removed first, so that the quoted item's own words ("the
/// service has not …") are not read as the verdict.
pub fn verdict(fu: &FollowUp) -> Option<(Wording, String, String)> {
    let text = if fu.quoted_item.trim().is_empty() {
        fu.text.clone()
    } else {
        fu.text.replace(fu.quoted_item.trim(), " ")
    };
    let mut found: Vec<(Wording, &'static str, String)> = Vec::new();
    for sentence in split_sentences(&text) {
        if let Some(m) = outcome::classify(&sentence) {
            found.push((m.wording, m.phrase, sentence));
        }
    }
    let chosen = found
        .iter()
        .find(|(w, _, _)| *w != Wording::Addressed)
        .or_else(|| found.first());
    if let Some((w, phrase, sentence)) = chosen {
        return Some((*w, format!("outcome wording '{phrase}'"), sentence.clone()));
    }
    let parsed = match fu.outcome {
        FollowUpOutcome::Addressed => Wording::Addressed,
        FollowUpOutcome::PartiallyAddressed => Wording::PartiallyAddressed,
        FollowUpOutcome::NotAddressed => Wording::NotAddressed,
        FollowUpOutcome::Unclear => return None,
    };
    Some((
        parsed,
        format!("parser outcome {:?}", fu.outcome),
        text.trim().to_string(),
    ))
}

fn to_outcome(w: Wording) -> ProposalOutcome {
    match w {
        Wording::Addressed => ProposalOutcome::Addressed,
        Wording::PartiallyAddressed => ProposalOutcome::PartiallyAddressed,
        Wording::NotAddressed => ProposalOutcome::NotAddressed,
        Wording::NotInspected => ProposalOutcome::NotAssessed,
    }
}

/// The kind a statement speaks of: the parser's, else the one its text names.
fn kind_of(fu: &FollowUp) -> Option<ItemKind> {
    if fu.referenced_kind.is_some() {
        return fu.referenced_kind;
    }
    let n = format!(" {} ", normalise(&fu.text));
    if n.contains(" cause of concern ") || n.contains(" causes of concern ") {
        Some(ItemKind::CauseOfConcern)
    } else if n.contains(" area for improvement ") || n.contains(" areas for improvement ") {
        Some(ItemKind::AreaForImprovement)
    } else if n.contains(" recommendation ") || n.contains(" recommendations ") {
        Some(ItemKind::Recommendation)
    } else {
        None
    }
}

/// The year a statement refers to: the parser's period, else its wording.
fn year_of(fu: &FollowUp, later_year: Option<u32>) -> Option<u32> {
    first_year(&fu.referenced_period).or_else(|| outcome::referenced_year(&fu.text, later_year))
}

/// Items of `kind` from `year` (or, when the year is unknown, from the
/// latest earlier year any item of that kind has).
fn of_kind_and_year(items: &[OpenItem], kind: ItemKind, year: Option<u32>) -> Vec<usize> {
    let same_kind: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].kind == kind)
        .collect();
    let year = year.or_else(|| {
        same_kind
            .iter()
            .filter_map(|&i| first_year(&items[i].inspection_period))
            .max()
    });
    same_kind
        .into_iter()
        .filter(|&i| year.is_some() && first_year(&items[i].inspection_period) == year)
        .collect()
}

/// The sentences a proposal quotes: the verdict's, and the statement's
/// first sentence naming the items when it is another one.
fn quotes_of(fu: &FollowUp, verdict_sentence: &str) -> Vec<String> {
    let mut quotes = Vec::new();
    let naming = split_sentences(&fu.text).into_iter().find(|s| {
        let n = format!(" {} ", normalise(s));
        [
            " cause of concern",
            " causes of concern",
            " area for improvement",
            " areas for improvement",
            " recommendation",
        ]
        .iter()
        .any(|k| n.contains(k))
    });
    if let Some(s) = naming
        && s.trim() != verdict_sentence.trim()
    {
        quotes.push(s);
    }
    if !verdict_sentence.trim().is_empty() {
        quotes.push(verdict_sentence.trim().to_string());
    }
    if quotes.is_empty() && !fu.text.trim().is_empty() {
        quotes.push(fu.text.trim().to_string());
    }
    quotes
}

fn set(
    proposal: &mut Proposal,
    fu: &FollowUp,
    outcome: ProposalOutcome,
    score: f64,
    rule: String,
    quotes: Vec<String>,
) {
    proposal.outcome = outcome;
    proposal.score = score.clamp(0.0, 1.0);
    proposal.rule = rule;
    proposal.quotes = quotes;
    proposal.line_start = fu.line_start;
    proposal.line_end = fu.line_end.max(fu.line_start);
    proposal.matched_follow_up_id = Some(fu.id.clone());
    proposal.matched_finding_id = None;
}

fn describe_year(year: Option<u32>) -> String {
    year.map_or_else(
        || "the latest earlier inspection".to_string(),
        |y| y.to_string(),
    )
}

fn summary(
    items: &[OpenItem],
    fu: &FollowUp,
    later_year: Option<u32>,
    proposals: &mut [Proposal],
    evidence: &mut [Evidence],
) {
    let year = year_of(fu, later_year);
    let targets: Vec<usize> = match kind_of(fu) {
        Some(kind) => of_kind_and_year(items, kind, year),
        None => [
            ItemKind::AreaForImprovement,
            ItemKind::CauseOfConcern,
            ItemKind::Recommendation,
        ]
        .into_iter()
        .flat_map(|k| of_kind_and_year(items, k, year))
        .collect(),
    };
    let found = verdict(fu);
    let (outcome, score, how, sentence) = match &found {
        Some((Wording::Addressed | Wording::PartiallyAddressed, how, s)) => (
            ProposalOutcome::PartiallyAddressed,
            0.5,
            how.clone(),
            s.clone(),
        ),
        Some((_, how, s)) => (ProposalOutcome::NotAssessed, 0.4, how.clone(), s.clone()),
        None => (
            ProposalOutcome::NotAssessed,
            0.4,
            "no outcome wording".to_string(),
            String::new(),
        ),
    };
    for i in targets {
        if evidence[i] >= Evidence::Summary {
            continue;
        }
        let rule = format!(
            "summary statement {} about {} items of {} ({how}) names no item: {} — review by hand",
            fu.id,
            kind_name(items[i].kind),
            describe_year(year),
            if outcome == ProposalOutcome::PartiallyAddressed {
                "progress on some, not known which"
            } else {
                "no verdict on this item"
            }
        );
        set(
            &mut proposals[i],
            fu,
            outcome,
            score,
            rule,
            quotes_of(fu, &sentence),
        );
        evidence[i] = Evidence::Summary;
    }
}

fn counted(
    items: &[OpenItem],
    fu: &FollowUp,
    later_year: Option<u32>,
    proposals: &mut [Proposal],
    evidence: &mut [Evidence],
) {
    let Some(kind) = kind_of(fu) else { return };
    let Some((wording, how, sentence)) = verdict(fu) else {
        return;
    };
    let year = year_of(fu, later_year);
    let primary = of_kind_and_year(items, kind, year);
    if primary.is_empty() {
        return;
    }
    let mut targets = primary.clone();
    if kind == ItemKind::CauseOfConcern {
        let years: Vec<Option<u32>> = primary
            .iter()
            .map(|&i| first_year(&items[i].inspection_period))
            .collect();
        for (r, item) in items.iter().enumerate() {
            if item.kind != ItemKind::Recommendation || targets.contains(&r) {
                continue;
            }
            let child = primary.iter().any(|&c| items[c].id == item.parent_id);
            let orphan_of_period =
                item.parent_id.is_empty() && years.contains(&first_year(&item.inspection_period));
            if child || orphan_of_period {
                targets.push(r);
            }
        }
    }
    let count = u32::try_from(primary.len()).unwrap_or(u32::MAX);
    let (score, count_note) = if fu.stated_count == 0 || fu.stated_count == count {
        (0.9, format!("{count} found"))
    } else {
        (
            0.6,
            format!(
                "the statement counts {} but {count} open items match: review by hand",
                fu.stated_count
            ),
        )
    };
    let outcome = to_outcome(wording);
    for i in targets {
        if evidence[i] >= Evidence::OwnFollowUp {
            continue;
        }
        let covered = if items[i].kind == kind {
            format!("every {} of {}", kind_name(kind), describe_year(year))
        } else {
            format!(
                "every {} of {} and its recommendations",
                kind_name(kind),
                describe_year(year)
            )
        };
        let rule = format!(
            "counted statement {} ({how}) applies to {covered} ({count_note})",
            fu.id
        );
        set(
            &mut proposals[i],
            fu,
            outcome,
            score,
            rule,
            quotes_of(fu, &sentence),
        );
        evidence[i] = Evidence::Counted;
    }
}

/// Phrases by which a statement says it speaks of one item, and the kind
/// of that item. (Not "this cause of concern": a statement about a cause of
/// concern speaks of its recommendations too.)
const SINGULAR: &[(&str, ItemKind)] = &[
    (" this recommendation ", ItemKind::Recommendation),
    (" this area for improvement ", ItemKind::AreaForImprovement),
    (
        " it remains an area for improvement ",
        ItemKind::AreaForImprovement,
    ),
];

/// Words by which a statement says it speaks of several items.
const PLURAL: &[&str] = &[" recommendations ", " areas for improvement ", " both "];

fn one_item_each(
    items: &[OpenItem],
    later: &LaterInspection,
    proposals: &mut [Proposal],
    evidence: &mut [Evidence],
) {
    for fu in &later.follow_ups {
        let n = format!(" {} ", normalise(&fu.text));
        let Some(&(_, kind)) = SINGULAR.iter().find(|(p, _)| n.contains(p)) else {
            continue;
        };
        if PLURAL.iter().any(|p| n.contains(p)) {
            continue;
        }
        let claimed: Vec<usize> = (0..items.len())
            .filter(|&i| {
                items[i].kind == kind
                    && evidence[i] == Evidence::OwnFollowUp
                    && proposals[i].matched_follow_up_id.as_deref() == Some(fu.id.as_str())
            })
            .collect();
        if claimed.len() < 2 {
            continue;
        }
        let by_quote = (!fu.quoted_item.trim().is_empty())
            .then(|| {
                claimed
                    .iter()
                    .copied()
                    .map(|i| (i, overlap(&fu.quoted_item, &items[i].text)))
                    .filter(|(_, sim)| *sim >= QUOTE_SIMILARITY)
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(i, _)| i)
            })
            .flatten();
        let Some(keeper) = by_quote.or_else(|| {
            claimed
                .iter()
                .copied()
                .max_by(|&a, &b| proposals[a].score.total_cmp(&proposals[b].score))
        }) else {
            continue;
        };
        for i in claimed {
            if i == keeper {
                continue;
            }
            let p = &mut proposals[i];
            p.rule = format!(
                "follow-up {} speaks of one item and is nearer item {} (not used: {})",
                fu.id, items[keeper].id, p.rule
            );
            p.outcome = ProposalOutcome::NotAssessed;
            p.score = 0.4;
            p.quotes.clear();
            p.line_start = 0;
            p.line_end = 0;
            p.matched_follow_up_id = None;
            p.matched_finding_id = None;
            evidence[i] = Evidence::None;
        }
    }
}

fn named_cause_of_concern(
    items: &[OpenItem],
    later: &LaterInspection,
    fu: &FollowUp,
    later_year: Option<u32>,
    proposals: &mut [Proposal],
    evidence: &mut [Evidence],
) {
    let n = format!(" {} ", normalise(&fu.text));
    if !n.contains(" cause of concern ") {
        return;
    }
    let Some((wording, how, sentence)) = verdict(fu) else {
        return;
    };
    let year = year_of(fu, later_year);
    let candidates = of_kind_and_year(items, ItemKind::CauseOfConcern, year);
    if candidates.is_empty() {
        return;
    }
    let analyzer = Analyzer::new([later.organisation.as_str()]);
    let terms: Vec<Vec<String>> = candidates
        .iter()
        .map(|&i| analyzer.terms(&items[i].text))
        .collect();
    let statement = analyzer.terms(&crate::text::remove_report_references(&fu.text));
    let index = Index::new(
        terms
            .iter()
            .map(Vec::as_slice)
            .chain(std::iter::once(statement.as_slice())),
    );
    let target = index.vector(&statement);
    let mut sims: Vec<(usize, f64)> = candidates
        .iter()
        .zip(&terms)
        .map(|(&i, t)| (i, index.vector(t).cosine(&target)))
        .collect();
    sims.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (best, sim) = sims[0];
    // The only open cause of concern of the year the statement names is the
    // one it speaks of, whatever its words ("the accelerated cause of
    // concern about how the force responds to the public"); of several, the
    // clearly nearest.
    let clear = match sims.get(1) {
        None => year.is_some() || sim > 0.0,
        Some(&(_, second)) => sim >= NAMED_MIN_SIMILARITY && sim >= second + NAMED_MARGIN,
    };
    if !clear || evidence[best] >= Evidence::Named {
        return;
    }
    let alone = if sims.len() == 1 {
        format!("the only open cause of concern of {}", describe_year(year))
    } else {
        format!(
            "the nearest of {} open causes of concern of {}",
            sims.len(),
            describe_year(year)
        )
    };
    let rule = format!(
        "follow-up {} names a cause of concern ({how}); {alone} (lexical {sim:.2})",
        fu.id
    );
    set(
        &mut proposals[best],
        fu,
        to_outcome(wording),
        0.75,
        rule,
        quotes_of(fu, &sentence),
    );
    evidence[best] = Evidence::Named;
}

/// The lower-case words of a text, for comparing quotations.
fn words(text: &str) -> Vec<String> {
    normalise(text)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// How nearly two texts repeat each other, in `0..=1`: the Dice
/// coefficient of their word lists (multiset overlap), or, when the shorter
/// has at least six words, the share of its words the longer contains (a
/// quotation without the lead-in "Within three months, the force should").
pub fn overlap(a: &str, b: &str) -> f64 {
    let (a, b) = (words(a), words(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut rest = b.clone();
    let mut shared = 0usize;
    for w in &a {
        if let Some(p) = rest.iter().position(|x| x == w) {
            rest.swap_remove(p);
            shared += 1;
        }
    }
    let dice = (2 * shared) as f64 / (a.len() + b.len()) as f64;
    let shorter = a.len().min(b.len());
    if shorter >= 6 {
        dice.max(shared as f64 / shorter as f64)
    } else {
        dice
    }
}

fn quotation(
    items: &[OpenItem],
    fu: &FollowUp,
    proposals: &mut [Proposal],
    evidence: &mut [Evidence],
) {
    let kind_fits = |item: &OpenItem| match fu.referenced_kind {
        Some(k) => item.kind == k,
        None => true,
    };
    let best = (0..items.len())
        .map(|i| (i, overlap(&fu.quoted_item, &items[i].text)))
        .filter(|(i, sim)| *sim >= QUOTE_SIMILARITY && kind_fits(&items[*i]))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let Some((i, sim)) = best else { return };
    if evidence[i] >= Evidence::OwnFollowUp {
        return;
    }
    let Some((wording, how, sentence)) = verdict(fu) else {
        return;
    };
    let rule = format!(
        "quoted item {} repeats this {} (word overlap {sim:.2}); {how}",
        fu.id,
        kind_name(items[i].kind)
    );
    let quotes = if sentence.trim().is_empty() {
        vec![fu.quoted_item.trim().to_string()]
    } else {
        vec![sentence.trim().to_string()]
    };
    set(
        &mut proposals[i],
        fu,
        to_outcome(wording),
        0.95 * sim,
        rule,
        quotes,
    );
    evidence[i] = Evidence::Quoted;
}

fn carry_to_recommendations(items: &[OpenItem], proposals: &mut [Proposal], evidence: &[Evidence]) {
    for c in 0..items.len() {
        if items[c].kind != ItemKind::CauseOfConcern
            || proposals[c].outcome != ProposalOutcome::Addressed
        {
            continue;
        }
        for r in 0..items.len() {
            let item = &items[r];
            if item.kind != ItemKind::Recommendation
                || item.parent_id.is_empty()
                || item.parent_id != items[c].id
                || evidence[r] >= Evidence::Parent
            {
                continue;
            }
            let parent = proposals[c].clone();
            proposals[r] = Proposal {
                item_id: item.id.clone(),
                outcome: ProposalOutcome::Addressed,
                score: parent.score * 0.95,
                rule: format!(
                    "its cause of concern {} is addressed: {}",
                    items[c].id, parent.rule
                ),
                ..parent
            };
        }
    }
}

fn kind_name(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::AreaForImprovement => "area for improvement",
        ItemKind::CauseOfConcern => "cause of concern",
        ItemKind::Recommendation => "recommendation",
        ItemKind::NationalRecommendation => "national recommendation",
        ItemKind::NoteworthyPractice => "noteworthy practice",
        ItemKind::Other => "item",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MatchConfig, propose};

    fn item(id: &str, kind: ItemKind, period: &str, parent: &str, text: &str) -> OpenItem {
        OpenItem {
            id: id.into(),
            kind,
            text: text.into(),
            inspection_period: period.into(),
            parent_id: parent.into(),
            ..Default::default()
        }
    }

    fn fire_items() -> Vec<OpenItem> {
        vec![
            item(
                "c1",
                ItemKind::CauseOfConcern,
                "2018/19",
                "",
                "The service doesn't have an effective risk-based inspection programme.",
            ),
            item(
                "r1",
                ItemKind::Recommendation,
                "2018/19",
                "c1",
                "By 31 March 2019, the service should review its inspection programme.",
            ),
            item(
                "c2",
                ItemKind::CauseOfConcern,
                "2018/19",
                "",
                "The service hasn't got an effective system for staff training records.",
            ),
            item(
                "r2",
                ItemKind::Recommendation,
                "2018/19",
                "c2",
                "The service should record the training of every firefighter.",
            ),
            item(
                "c3",
                ItemKind::CauseOfConcern,
                "2018/19",
                "",
                "The service's values and culture are not understood by staff.",
            ),
            item(
                "a1",
                ItemKind::AreaForImprovement,
                "2018/19",
                "",
                "The service should make sure its prevention work is targeted at those most at risk.",
            ),
            item(
                "old",
                ItemKind::CauseOfConcern,
                "2016",
                "",
                "The service should improve how it handles complaints.",
            ),
        ]
    }

    fn later(follow_ups: Vec<FollowUp>) -> LaterInspection {
        LaterInspection {
            organisation: "Loamshire Fire and Rescue Service".into(),
            period: "2021/22".into(),
            follow_ups,
            ..Default::default()
        }
    }

    fn outcomes(items: &[OpenItem], later: &LaterInspection) -> Vec<(String, ProposalOutcome)> {
        propose(items, later, &MatchConfig::default())
            .into_iter()
            .map(|p| (p.item_id, p.outcome))
            .collect()
    }

    #[test]
    fn a_counted_statement_covers_every_cause_of_concern_of_its_period_and_their_recommendations() {
        let items = fire_items();
        let fu = FollowUp {
            id: "f1".into(),
            referenced_period: "2018".into(),
            text: "I am delighted that I can now discharge the three causes of concern we found \
                   in our 2018 inspection."
                .into(),
            scope: FollowUpScope::AllOfKind,
            referenced_kind: Some(ItemKind::CauseOfConcern),
            stated_count: 3,
            line_start: 40,
            line_end: 41,
            ..Default::default()
        };
        let later = later(vec![fu]);
        let proposals = propose(&items, &later, &MatchConfig::default());
        let by_id = |id: &str| {
            proposals
                .iter()
                .find(|p| p.item_id == id)
                .expect("proposal")
        };
        for id in ["c1", "r1", "c2", "r2", "c3"] {
            let p = by_id(id);
            assert_eq!(p.outcome, ProposalOutcome::Addressed, "{id}: {}", p.rule);
            assert!(p.quotes.iter().any(|q| q.contains("discharge")), "{id}");
            assert_eq!((p.line_start, p.line_end), (40, 41));
            assert!(p.score >= 0.9, "{id}: counted 3, found 3");
        }
        assert_ne!(by_id("a1").outcome, ProposalOutcome::Addressed);
        assert_ne!(by_id("old").outcome, ProposalOutcome::Addressed, "2016");
    }

    #[test]
    fn a_wrong_count_lowers_the_score_and_says_so() {
        let items = fire_items();
        let fu = FollowUp {
            id: "f1".into(),
            text: "We can now discharge the two causes of concern from our 2018 inspection.".into(),
            scope: FollowUpScope::AllOfKind,
            referenced_kind: Some(ItemKind::CauseOfConcern),
            stated_count: 2,
            ..Default::default()
        };
        let proposals = propose(&items, &later(vec![fu]), &MatchConfig::default());
        let c1 = &proposals[0];
        assert_eq!(c1.outcome, ProposalOutcome::Addressed);
        assert!(
            c1.score < 0.9 && c1.rule.contains("counts 2 but 3"),
            "{}",
            c1.rule
        );
    }

    #[test]
    fn summary_statements_never_address() {
        let items = fire_items();
        let fu = FollowUp {
            id: "s1".into(),
            referenced_period: "2018/19".into(),
            text: "The service has addressed most but not all areas for improvement from our \
                   2018 inspection."
                .into(),
            scope: FollowUpScope::Summary,
            referenced_kind: Some(ItemKind::AreaForImprovement),
            outcome: FollowUpOutcome::Addressed,
            ..Default::default()
        };
        let out = outcomes(&items, &later(vec![fu.clone()]));
        assert!(out.contains(&("a1".into(), ProposalOutcome::PartiallyAddressed)));
        assert!(out.iter().all(|(_, o)| *o != ProposalOutcome::Addressed));
        // Even a summary worded as plainly addressed stays partial.
        let plain = FollowUp {
            text: "The service has addressed the areas for improvement.".into(),
            ..fu
        };
        let out = outcomes(&items, &later(vec![plain]));
        assert!(out.iter().all(|(_, o)| *o != ProposalOutcome::Addressed));
    }

    #[test]
    fn a_quoted_cause_of_concern_is_matched_by_its_words_and_closes_its_recommendations() {
        let items = fire_items();
        let quoted = FollowUp {
            id: "q1".into(),
            quoted_item: "The service doesn’t have an effective risk-based inspection programme."
                .into(),
            text: "The service doesn’t have an effective risk-based inspection programme. \
                   The service has made good progress. This has resulted in the closure of \
                   the accelerated cause of concern about its inspection programme."
                .into(),
            referenced_kind: Some(ItemKind::CauseOfConcern),
            ..Default::default()
        };
        let remains = FollowUp {
            id: "q2".into(),
            quoted_item: "The service hasn't got an effective system for staff training records"
                .into(),
            text: "The service hasn't got an effective system for staff training records. \
                   This remains a cause of concern."
                .into(),
            ..Default::default()
        };
        let out = outcomes(&items, &later(vec![quoted, remains]));
        let of = |id: &str| out.iter().find(|(i, _)| i == id).expect("item").1;
        assert_eq!(of("c1"), ProposalOutcome::Addressed);
        assert_eq!(of("r1"), ProposalOutcome::Addressed, "carried from c1");
        assert_eq!(of("c2"), ProposalOutcome::NotAddressed);
        assert_ne!(of("r2"), ProposalOutcome::Addressed);
        assert_ne!(of("c3"), ProposalOutcome::Addressed);
    }

    #[test]
    fn a_misattributed_quotation_does_not_overrule_the_statements() {
        let items = vec![
            item(
                "r1",
                ItemKind::Recommendation,
                "2024",
                "",
                "Within three months, the force should make sure it has enough call handlers to \
                 answer emergency calls within ten seconds.",
            ),
            item(
                "r2",
                ItemKind::Recommendation,
                "2024",
                "",
                "Within three months, the force should introduce a process to call back people \
                 who abandon a non-emergency call.",
            ),
        ];
        let quote = items[0].text.clone();
        let first = FollowUp {
            id: "f1".into(),
            referenced_period: "2024".into(),
            quoted_item: quote.clone(),
            text: "The force answered 92 percent of emergency calls within ten seconds. The force \
                   has met this recommendation."
                .into(),
            ..Default::default()
        };
        let second = FollowUp {
            id: "f2".into(),
            referenced_period: "2024".into(),
            // The parser gave it the first recommendation's quotation.
            quoted_item: quote,
            text: "The force now calls back everyone who abandons a non-emergency call. The \
                   force hasn't met this recommendation."
                .into(),
            ..Default::default()
        };
        let out = outcomes(&items, &later(vec![first, second]));
        assert_eq!(
            out,
            vec![
                ("r1".to_string(), ProposalOutcome::Addressed),
                ("r2".to_string(), ProposalOutcome::NotAddressed),
            ]
        );
    }

    #[test]
    fn a_statement_about_one_recommendation_is_kept_by_one() {
        let items = vec![
            item(
                "r1",
                ItemKind::Recommendation,
                "2023",
                "",
                "put in place a tested fallback arrangement for when the mobilising system fails;",
            ),
            item(
                "r2",
                ItemKind::Recommendation,
                "2023",
                "",
                "make sure control room staff are trained in the fallback arrangement.",
            ),
        ];
        let fu = FollowUp {
            id: "f".into(),
            referenced_period: "2023".into(),
            text: "The service has put in place a fallback arrangement for when the mobilising \
                   system fails, and it has tested it twice with control room staff. This \
                   recommendation has been met."
                .into(),
            ..Default::default()
        };
        let first = Proposal {
            item_id: "r1".into(),
            outcome: ProposalOutcome::Addressed,
            score: 0.95,
            rule: "matcher".into(),
            quotes: vec![fu.text.clone()],
            line_start: 52,
            line_end: 52,
            matched_follow_up_id: Some("f".into()),
            matched_finding_id: None,
        };
        let second = Proposal {
            item_id: "r2".into(),
            score: 0.9,
            ..first.clone()
        };
        let mut proposals = vec![first, second];
        apply(&items, &later(vec![fu]), &mut proposals);
        assert_eq!(proposals[0].outcome, ProposalOutcome::Addressed);
        assert_eq!(
            proposals[1].outcome,
            ProposalOutcome::NotAssessed,
            "{}",
            proposals[1].rule
        );
        assert!(proposals[1].rule.contains("speaks of one item"));
        assert!(proposals[1].quotes.is_empty());
    }

    #[test]
    fn a_quotation_of_nothing_known_changes_nothing() {
        let items = fire_items();
        let fu = FollowUp {
            id: "q".into(),
            quoted_item: "The force should publish its stop and search data monthly.".into(),
            text: "This has resulted in the closure of the cause of concern.".into(),
            ..Default::default()
        };
        let out = outcomes(&items, &later(vec![fu]));
        assert!(out.iter().all(|(_, o)| *o != ProposalOutcome::Addressed));
    }

    #[test]
    fn a_cause_of_concern_named_by_its_subject_is_closed_with_its_recommendations() {
        let items = vec![
            item(
                "c1",
                ItemKind::CauseOfConcern,
                "2023",
                "",
                "The service doesn't have an effective process for gathering and recording \
                 site-specific risk information.",
            ),
            item(
                "r1",
                ItemKind::Recommendation,
                "2023",
                "c1",
                "identify all the premises that need a site-specific risk visit;",
            ),
            item(
                "c2",
                ItemKind::CauseOfConcern,
                "2023",
                "",
                "The service's mobilising system regularly fails during 999 calls.",
            ),
        ];
        let closed = FollowUp {
            id: "n1".into(),
            referenced_period: "2023".into(),
            text: "This has resulted in the closure of the accelerated cause of concern about \
                   site-specific risk information."
                .into(),
            ..Default::default()
        };
        let open = FollowUp {
            id: "n2".into(),
            text: "The accelerated cause of concern about the service's mobilising system \
                   remains open."
                .into(),
            ..Default::default()
        };
        let out = outcomes(&items, &later(vec![closed.clone(), open]));
        assert_eq!(
            out,
            vec![
                ("c1".to_string(), ProposalOutcome::Addressed),
                ("r1".to_string(), ProposalOutcome::Addressed),
                ("c2".to_string(), ProposalOutcome::NotAddressed),
            ]
        );
        // A statement that is not clearly about one of several causes of
        // the year changes nothing.
        let vague = FollowUp {
            text: "We have closed this accelerated cause of concern.".into(),
            ..closed
        };
        let out = outcomes(&items, &later(vec![vague]));
        assert!(out.iter().all(|(_, o)| *o != ProposalOutcome::Addressed));
    }

    #[test]
    fn verdicts_prefer_the_cautious_reading() {
        let fu = FollowUp {
            text: "The service has made good progress. This still isn't being done in every \
                   station."
                .into(),
            ..Default::default()
        };
        assert_eq!(
            verdict(&fu).map(|v| v.0),
            Some(Wording::NotAddressed),
            "a mix reads as the other"
        );
        assert!(overlap("a b c", "a b c") > 0.99);
        assert!(
            overlap(
                "introduce a process to call back people who abandon a call",
                "Within three months, the force should introduce a process to call back people \
                 who abandon a call."
            ) > 0.99
        );
        assert_eq!(overlap("", "a"), 0.0);
    }
}
