//! Closeout's reconciliation engine: given an organisation's open items from
//! earlier inspections and a later inspection's follow-up statements, new
//! findings and text, [`propose`] says what probably happened to each item —
//! addressed, partially addressed, not addressed, superseded by a new finding,
//! or not assessed — with the sentences that justify it, their line span, a
//! score and the rule that produced it.
//!
//! The crate is pure: no I/O, no clock, no randomness; its types are its
//! own, not the generated protobuf ones (the tracker converts), and years
//! and periods are read by the domain's one rule (`closeout_domain::period`).
//! Proposals are only proposals: a person accepts or rejects them in the
//! tracker.
//!
//! Modules: [`text`] (sentences, tokens, stemming, stop words), [`index`]
//! (TF-IDF), [`outcome`] (wording rules), [`matcher`] (combining the signals
//! per item), [`scope`] (statements about many items at once — counted and
//! summary statements — and items quoted word for word by revisit letters,
//! and a cause of concern's verdict carried to its recommendations),
//! [`audience`] (whom a national recommendation is addressed to) and
//! [`lineage`] (walking chains of links across inspections).

pub mod audience;
pub mod index;
pub mod lineage;
pub mod matcher;
pub mod outcome;
pub mod scope;
pub mod text;

pub use matcher::Search;
use std::fmt;

/// Proposes what happened to each open item; exactly one proposal per item,
/// in the items' order. Pure and total: never panics, whatever the input.
///
/// Follow-ups about one item are matched item by item ([`matcher`]);
/// counted, summary and quoted-item statements are then applied by
/// [`scope`], which also carries a cause of concern's closure to its
/// recommendations.
pub fn propose(items: &[OpenItem], later: &LaterInspection, config: &MatchConfig) -> Vec<Proposal> {
    propose_with(items, later, config, Search::Indexed)
}

/// [`propose`] with a choice of how the matcher searches (the proposals are
/// the same; [`Search::Exhaustive`] is the slow reference).
pub fn propose_with(
    items: &[OpenItem],
    later: &LaterInspection,
    config: &MatchConfig,
    search: Search,
) -> Vec<Proposal> {
    let per_item = LaterInspection {
        follow_ups: later
            .follow_ups
            .iter()
            .filter(|f| f.is_about_one_item())
            .cloned()
            .collect(),
        ..later.clone()
    };
    let mut proposals = matcher::propose_with(items, &per_item, config, search);
    scope::apply(items, later, &mut proposals);
    proposals
}

/// What kind of finding an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ItemKind {
    #[default]
    AreaForImprovement,
    CauseOfConcern,
    Recommendation,
    /// A recommendation addressed to all forces (or all services).
    NationalRecommendation,
    NoteworthyPractice,
    Other,
}

/// An organisation's open item from an earlier inspection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OpenItem {
    pub id: String,
    pub kind: ItemKind,
    /// e.g. "Effectiveness"; empty if none (a crime data integrity report).
    pub pillar: String,
    /// e.g. "Investigating crime"; empty if none.
    pub question: String,
    pub text: String,
    /// The earlier inspection's period, e.g. "2017" or "2021/22".
    pub inspection_period: String,
    /// "effectiveness", "efficiency", "legitimacy", "crime data integrity", or
    /// "" for an integrated inspection or when unknown.
    pub inspection_report: String,
    pub addressed_to_all: bool,
    /// For a recommendation: the id of the open item of its cause of
    /// concern, if known; empty otherwise.
    pub parent_id: String,
}

/// What a later report's follow-up statement says about earlier items, as the
/// report parser read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FollowUpOutcome {
    Addressed,
    PartiallyAddressed,
    NotAddressed,
    #[default]
    Unclear,
}

/// How much of an earlier inspection a follow-up statement speaks of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FollowUpScope {
    /// One earlier item (or the parser did not say).
    #[default]
    Item,
    /// A counted statement ("discharge the three causes of concern we found
    /// in our 2018 inspection"): every item of that kind and period.
    AllOfKind,
    /// No item detail ("addressed most but not all areas for improvement").
    Summary,
}

/// A follow-up statement of the later report: prose that refers back to an
/// earlier report ("In our 2017 effectiveness report, we said …").
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FollowUp {
    pub id: String,
    /// e.g. "2017"; empty if the parser could not tell ("last year" is then
    /// resolved from the text).
    pub referenced_period: String,
    /// e.g. "effectiveness"; empty if unknown.
    pub referenced_report: String,
    /// The sentences that speak of the earlier item(s) and the outcome.
    pub text: String,
    pub outcome: FollowUpOutcome,
    pub pillar: String,
    pub question: String,
    /// 1-based inclusive line span in the later report; 0 if unknown.
    pub line_start: u32,
    pub line_end: u32,
    /// The kind of earlier item spoken of, if the statement names one.
    pub referenced_kind: Option<ItemKind>,
    pub scope: FollowUpScope,
    /// The number of items the statement counts ("the three causes of
    /// concern"); 0 if none.
    pub stated_count: u32,
    /// A revisit letter's word-for-word quotation of the earlier item (a
    /// reference to it, not a new finding); empty if none.
    pub quoted_item: String,
}

impl FollowUp {
    /// Whether the item-by-item matcher reads this statement: not a counted
    /// or summary statement. (A revisit letter's statement about a quoted
    /// item is read by the matcher too: the quotation is further evidence,
    /// see [`scope`].)
    pub fn is_about_one_item(&self) -> bool {
        self.scope == FollowUpScope::Item
    }
}

/// A finding of the later report (area for improvement, cause of concern,
/// recommendation…), which may re-raise an earlier item.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewFinding {
    pub id: String,
    pub kind: ItemKind,
    pub pillar: String,
    pub question: String,
    pub text: String,
    pub line_start: u32,
    pub line_end: u32,
}

/// The later inspection of the same organisation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LaterInspection {
    /// The inspected body's name, e.g. "Hertfordshire Constabulary"; its words
    /// become stop words.
    pub organisation: String,
    /// e.g. "2018/19".
    pub period: String,
    /// e.g. "2019-09".
    pub published: String,
    /// Questions judged in this inspection (not carried over).
    pub inspected_questions: Vec<String>,
    pub follow_ups: Vec<FollowUp>,
    pub findings: Vec<NewFinding>,
    /// The full text of the later report, if available: quotes are then taken
    /// verbatim from it with their line numbers, and an outcome sentence just
    /// after a follow-up's span can be used. May be empty.
    pub source_text: String,
}

/// The proposed reconciliation of one open item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProposalOutcome {
    /// Close the item, with the later inspection as the closure reference.
    Addressed,
    /// Keep it open, with a note.
    PartiallyAddressed,
    /// Keep it open: the later report says it was not addressed.
    NotAddressed,
    /// A new finding re-raises it: link the two.
    Superseded,
    /// The later inspection did not assess it: no change.
    NotAssessed,
}

impl ProposalOutcome {
    pub const ALL: [ProposalOutcome; 5] = [
        ProposalOutcome::Addressed,
        ProposalOutcome::PartiallyAddressed,
        ProposalOutcome::NotAddressed,
        ProposalOutcome::Superseded,
        ProposalOutcome::NotAssessed,
    ];

    /// The upper-case name used in the protobuf enum, without its prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalOutcome::Addressed => "ADDRESSED",
            ProposalOutcome::PartiallyAddressed => "PARTIALLY_ADDRESSED",
            ProposalOutcome::NotAddressed => "NOT_ADDRESSED",
            ProposalOutcome::Superseded => "SUPERSEDED",
            ProposalOutcome::NotAssessed => "NOT_ASSESSED",
        }
    }

    /// Parses [`ProposalOutcome::as_str`]'s names (case-insensitive).
    pub fn parse(name: &str) -> Option<ProposalOutcome> {
        let n = name.trim().to_ascii_uppercase().replace([' ', '-'], "_");
        ProposalOutcome::ALL.into_iter().find(|o| o.as_str() == n)
    }
}

impl fmt::Display for ProposalOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One proposal per open item.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub item_id: String,
    pub outcome: ProposalOutcome,
    /// Confidence in `0..=1`; see [`MatchConfig`] for its scale.
    pub score: f64,
    /// The rule or signals that produced the proposal, for a reviewer.
    pub rule: String,
    /// The sentences that justify it, verbatim from the later report when its
    /// text was given.
    pub quotes: Vec<String>,
    /// 1-based inclusive line span of the quotes in the later report; 0 if none.
    pub line_start: u32,
    pub line_end: u32,
    pub matched_follow_up_id: Option<String>,
    pub matched_finding_id: Option<String>,
}

/// Thresholds of the matcher.
///
/// Scores are lexical similarity (scaled so that a cosine of
/// `full_similarity` counts as a full restatement) weighted by the agreement
/// of the referenced year, report and question and by how explicit the
/// outcome wording is: a perfect restatement with every signal agreeing
/// scores 1; weak lexical evidence stays weak whatever the context. A follow-up or a new finding is used only when its score reaches
/// `min_score`; proposals built from no evidence (not assessed) get fixed
/// scores: 0.9 when the question was not inspected, 0.5 when it was inspected
/// but the report is silent about the item.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchConfig {
    /// Minimum score for a follow-up or new finding to decide a proposal.
    pub min_score: f64,
    /// How far ahead of every rival item (in cosine) an item must be on a
    /// clause to own it, unless enough of its match comes from words the
    /// rival does not share (see `distinct_share`).
    pub margin: f64,
    /// Share of an item's match on a clause that must come from words a close
    /// rival does not match, for both to use the clause (a sentence that names
    /// two items supports both; an item whose words are a subset of a
    /// rival's does not).
    pub distinct_share: f64,
    /// Minimum cosine between an item and a follow-up clause.
    pub min_similarity: f64,
    /// Cosine at which a clause counts as a full restatement of an item.
    pub full_similarity: f64,
    /// Minimum cosine between an item and a new finding that re-raises it.
    pub supersede_similarity: f64,
    /// What to propose when the item's question was inspected but nothing in
    /// the later report refers to the item. Default: `NotAssessed` — the
    /// report gives no verdict, and a "not addressed" with no sentence to
    /// quote would be a claim without evidence. Either keeps the item open.
    pub silent_when_inspected: ProposalOutcome,
    /// More stop words (e.g. place names of the organisation).
    pub extra_stop_words: Vec<String>,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            min_score: 0.6,
            margin: 0.1,
            distinct_share: 0.3,
            min_similarity: 0.2,
            full_similarity: 0.5,
            supersede_similarity: 0.3,
            silent_when_inspected: ProposalOutcome::NotAssessed,
            extra_stop_words: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_round_trip() {
        for o in ProposalOutcome::ALL {
            assert_eq!(ProposalOutcome::parse(o.as_str()), Some(o));
            assert_eq!(o.to_string(), o.as_str());
        }
        assert_eq!(
            ProposalOutcome::parse("partially addressed"),
            Some(ProposalOutcome::PartiallyAddressed)
        );
        assert_eq!(ProposalOutcome::parse("closed"), None);
    }
}
