//! Combining the signals into one proposal per open item.
//!
//! For each item, in this order:
//!
//! 1. **Follow-up statements.** Each follow-up is split into clauses
//!    (sentences). A clause can support an item when
//!    - the follow-up's referenced year and report do not contradict the
//!      item's (a follow-up about "our 2017 effectiveness report" cannot be
//!      about a 2016 item or a legitimacy item; unknown on either side is
//!      neutral; "in our 2018/19 and 2021/22 inspections" refers to both
//!      years),
//!    - the TF-IDF cosine of item and clause reaches `min_similarity`, and
//!    - the clause is about *this* item: every other open item that matches
//!      the clause nearly as well (within `margin`) must leave this item a
//!      `distinct_share` of its match from words the rival does not match.
//!      A sentence naming two items ("the completion of risk assessments …,
//!      and … body-worn video") supports both; an item that only shares a
//!      phrase with another item's follow-up ("body-worn video") does not.
//!
//!    The outcome is read from the wording of the matched clause, else the
//!    following sentences of the follow-up, else the preceding ones, else the
//!    two sentences just after the follow-up's span in the report; failing
//!    that, the parser's outcome. A follow-up with no outcome at all (e.g. "In
//!    2017, we judged the force to be good at…") is never evidence.
//!    A follow-up in another pillar than the item's, or one that names
//!    another kind of finding ("we recommended…" for an area for
//!    improvement), is not eligible either.
//!    The score is `lexical · (0.4 + 0.35·context + 0.25·wording)`, where
//!    lexical is the cosine scaled by `full_similarity` (so context and
//!    wording modulate lexical evidence but never replace it), context weighs
//!    year (0.4),
//!    report (0.25) and question (0.35) agreement (unknown counts half), and
//!    wording is 1 for an explicit phrase, 0.7 for the parser's outcome alone.
//!    A new finding that restates the item with a score at least `margin`
//!    above the best follow-up's wins over it.
//! 2. **New findings.** A new finding of the same question (or pillar) that
//!    restates the item (cosine ≥ `supersede_similarity`, same ownership test)
//!    supersedes it — unless a follow-up says it was addressed or partially
//!    addressed, which wins. A "not addressed" follow-up with a re-raising
//!    finding becomes SUPERSEDED, so that the new item carries it forward.
//! 3. **No evidence.** A question that was not inspected gives NOT_ASSESSED
//!    (0.9); an inspected question with nothing about the item gives
//!    `silent_when_inspected` (0.5), with the nearest miss in the rule.

use crate::index::{Index, Postings, Vector};
use crate::outcome::{self, Wording, WordingMatch};
use crate::text::{
    self, Analyzer, Document, Sentence, canonical_question, canonical_report, first_year, normalise,
};
use crate::{
    FollowUp, FollowUpOutcome, ItemKind, LaterInspection, MatchConfig, NewFinding, OpenItem,
    Proposal, ProposalOutcome,
};
use std::collections::{HashMap, HashSet};

/// A sentence of a follow-up, located in the report where possible.
struct Clause {
    follow_up: usize,
    /// Position within its follow-up.
    pos: usize,
    text: String,
    quote: String,
    line_start: u32,
    line_end: u32,
    wording: Option<WordingMatch>,
    /// The kind of finding the clause names, if any.
    cue: Option<Family>,
    vector: Vector,
}

/// Kinds of finding as follow-up statements name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Family {
    AreaForImprovement,
    CauseOfConcern,
    Recommendation,
    Other,
}

fn family(kind: ItemKind) -> Family {
    match kind {
        ItemKind::AreaForImprovement => Family::AreaForImprovement,
        ItemKind::CauseOfConcern => Family::CauseOfConcern,
        ItemKind::Recommendation | ItemKind::NationalRecommendation => Family::Recommendation,
        ItemKind::NoteworthyPractice | ItemKind::Other => Family::Other,
    }
}

/// Every kind of finding a text names.
fn kinds_named(text: &str) -> Vec<Family> {
    let n = format!(" {} ", normalise(text));
    let mut out = Vec::new();
    if n.contains(" cause of concern ") || n.contains(" causes of concern ") {
        out.push(Family::CauseOfConcern);
    }
    if n.contains(" recommend") {
        out.push(Family::Recommendation);
    }
    if n.contains(" area for improvement ") || n.contains(" areas for improvement ") {
        out.push(Family::AreaForImprovement);
    }
    out
}

/// The kind of finding a sentence names: "cause of concern" first (a sentence
/// about a cause of concern often mentions its recommendations too).
fn kind_cue(sentence: &str) -> Option<Family> {
    let n = format!(" {} ", normalise(sentence));
    if n.contains(" cause of concern ") || n.contains(" causes of concern ") {
        Some(Family::CauseOfConcern)
    } else if n.contains(" recommend") {
        Some(Family::Recommendation)
    } else if n.contains(" area for improvement ") || n.contains(" areas for improvement ") {
        Some(Family::AreaForImprovement)
    } else {
        None
    }
}

/// A follow-up sentence before vectorising: follow-up index, position,
/// text, the report sentence it was found as, and its terms.
type RawClause<'d> = (usize, usize, String, Option<&'d Sentence>, Vec<String>);

/// What is known about a follow-up as a whole.
struct FollowUpInfo {
    year: Option<u32>,
    /// Every earlier year the follow-up refers to: its year, and the years
    /// before the later inspection its text names ("an area for improvement
    /// in our 2018/19 and 2021/22 inspections").
    years: Vec<u32>,
    report: String,
    question: String,
    pillar: String,
    clauses: Vec<usize>,
    /// Every kind of finding the follow-up names.
    families: Vec<Family>,
    /// Report sentences just after the span, for a trailing outcome sentence.
    after: Vec<Sentence>,
}

struct Finding<'a> {
    finding: &'a NewFinding,
    quote: String,
    line_start: u32,
    line_end: u32,
    vector: Vector,
}

struct Item<'a> {
    /// The first item of its group (see [`profiles`]).
    item: &'a OpenItem,
    terms: Vec<String>,
    year: Option<u32>,
    report: String,
    question: String,
    pillar: String,
    vector: Vector,
}

/// A follow-up clause's support for an item.
#[derive(Debug, Clone)]
struct Support {
    clause: usize,
    similarity: f64,
    score: f64,
    outcome: Option<(Wording, String, Option<Sentence>)>,
    context: String,
}

/// How the matcher finds the (item, clause or new finding) pairs to score.
/// Both give the same proposals (checked by `tests/search.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Search {
    /// Items with the same words and context (kind, year, report, question,
    /// pillar) are decided once, and only the pairs that can reach a
    /// threshold are scored, found through an inverted index
    /// ([`Postings`]): the cost grows with the pairs that share significant
    /// words, not with items × clauses. Used unless `min_similarity` or
    /// `supersede_similarity` is not positive (then a pair sharing no word
    /// could count, and every pair is scored).
    #[default]
    Indexed,
    /// Every item against every clause and new finding, and every other
    /// item as a rival: the matcher as it was before issue 13, kept to check
    /// the indexed search and to measure it against.
    Exhaustive,
}

/// Proposes what happened to each open item; exactly one proposal per item,
/// in the items' order. Pure and total: never panics, whatever the input.
pub fn propose(items: &[OpenItem], later: &LaterInspection, config: &MatchConfig) -> Vec<Proposal> {
    propose_with(items, later, config, Search::Indexed)
}

/// [`propose`] with a choice of [`Search`].
pub fn propose_with(
    items: &[OpenItem],
    later: &LaterInspection,
    config: &MatchConfig,
    search: Search,
) -> Vec<Proposal> {
    let search = if config.min_similarity > 0.0 && config.supersede_similarity > 0.0 {
        search
    } else {
        Search::Exhaustive
    };
    let analyzer = Analyzer::new(
        config
            .extra_stop_words
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(later.organisation.as_str())),
    );
    let doc = Document::parse(&later.source_text);
    let doc_norm: Vec<String> = doc.sentences.iter().map(|s| normalise(&s.text)).collect();
    let later_year = first_year(&later.period);

    // Terms first (the index needs them all), vectors after.
    let mut clause_terms: Vec<RawClause> = Vec::new();
    for (fi, fu) in later.follow_ups.iter().enumerate() {
        let sentences: Vec<String> = if fu.text.trim().is_empty() {
            doc.sentences
                .iter()
                .filter(|s| in_span(s, fu.line_start, fu.line_end, 0))
                .map(|s| s.text.clone())
                .collect()
        } else {
            text::split_sentences(&fu.text)
        };
        for (pos, s) in sentences.into_iter().enumerate() {
            let located = locate(&doc, &doc_norm, &s, fu.line_start, fu.line_end);
            let terms = analyzer.terms(&text::remove_report_references(&s));
            clause_terms.push((fi, pos, s, located, terms));
        }
    }
    let finding_terms: Vec<Vec<String>> = later
        .findings
        .iter()
        .map(|f| analyzer.terms(&f.text))
        .collect();
    let (profiles, members) = profiles(items, &analyzer, search);

    let mut index = if doc.sentences.is_empty() {
        Index::new(
            clause_terms
                .iter()
                .map(|c| c.4.as_slice())
                .chain(finding_terms.iter().map(Vec::as_slice)),
        )
    } else {
        let doc_terms: Vec<Vec<String>> = doc
            .sentences
            .iter()
            .map(|s| analyzer.terms(&s.text))
            .collect();
        Index::new(doc_terms.iter().map(Vec::as_slice))
    };
    // Each item is a document of the corpus, whether decided alone or not.
    for (profile, of) in profiles.iter().zip(&members) {
        index.add_times(&profile.terms, u32::try_from(of.len()).unwrap_or(u32::MAX));
    }

    let clauses: Vec<Clause> = clause_terms
        .iter()
        .map(|(fi, pos, s, located, terms)| Clause {
            follow_up: *fi,
            pos: *pos,
            text: s.clone(),
            quote: located.map_or_else(|| s.clone(), |l| l.text.clone()),
            line_start: located.map_or(later.follow_ups[*fi].line_start, |l| l.line_start),
            line_end: located.map_or(later.follow_ups[*fi].line_end, |l| l.line_end),
            wording: outcome::classify(s),
            cue: kind_cue(s),
            vector: index.vector(terms),
        })
        .collect();

    let infos: Vec<FollowUpInfo> = later
        .follow_ups
        .iter()
        .enumerate()
        .map(|(fi, fu)| follow_up_info(fi, fu, &clauses, &doc, later_year))
        .collect();

    let findings: Vec<Finding> = later
        .findings
        .iter()
        .zip(&finding_terms)
        .zip(distinct_findings(&later.findings, &finding_terms, search))
        .filter(|(_, first)| *first)
        .map(|((f, terms), _)| {
            let located = locate(&doc, &doc_norm, &f.text, f.line_start, f.line_end);
            Finding {
                finding: f,
                quote: located.map_or_else(|| f.text.clone(), |l| l.text.clone()),
                line_start: located.map_or(f.line_start, |l| l.line_start),
                line_end: located.map_or(f.line_end, |l| l.line_end),
                vector: index.vector(terms),
            }
        })
        .collect();

    let prepared: Vec<Item> = profiles
        .into_iter()
        .map(|p| Item {
            vector: index.vector(&p.terms),
            ..p
        })
        .collect();

    // The pairs worth scoring. A rival matters to an item's claim on a
    // clause (or new finding) only when within `margin` of the item's
    // cosine, which is at least `min_similarity` (`supersede_similarity`).
    let margin = if config.margin.is_nan() {
        f64::INFINITY
    } else {
        config.margin.max(0.0)
    };
    let item_vectors: Vec<&Vector> = prepared.iter().map(|it| &it.vector).collect();
    let clause_pairs = Pairs::new(
        &item_vectors,
        &clauses.iter().map(|c| &c.vector).collect::<Vec<_>>(),
        config.min_similarity - margin,
        search,
    );
    let finding_pairs = Pairs::new(
        &item_vectors,
        &findings.iter().map(|f| &f.vector).collect::<Vec<_>>(),
        config.supersede_similarity - margin,
        search,
    );

    let inspected: Vec<String> = later
        .inspected_questions
        .iter()
        .map(|q| canonical_question(q))
        .filter(|q| !q.is_empty())
        .collect();

    let ctx = Ctx {
        later,
        config,
        clauses: &clauses,
        infos: &infos,
        findings: &findings,
        items: &prepared,
        clause_pairs: &clause_pairs,
        finding_pairs: &finding_pairs,
        inspected: &inspected,
    };
    let mut out: Vec<Option<Proposal>> = vec![None; items.len()];
    for (x, of) in members.iter().enumerate() {
        let decided = ctx.decide(x);
        for &m in of {
            if let Some(slot) = out.get_mut(m) {
                *slot = Some(Proposal {
                    item_id: items[m].id.clone(),
                    ..decided.clone()
                });
            }
        }
    }
    out.into_iter().flatten().collect()
}

/// The open items grouped by what the matcher reads of them (their terms,
/// kind of finding, year, report, question and pillar), in the order of
/// each group's first item, with each group's items: a group's items get
/// the same proposal, and are never each other's rivals (their cosine is
/// 1). With [`Search::Exhaustive`] each item is its own group.
fn profiles<'a>(
    items: &'a [OpenItem],
    analyzer: &Analyzer,
    search: Search,
) -> (Vec<Item<'a>>, Vec<Vec<usize>>) {
    type Key = (
        Vec<String>,
        Family,
        Option<u32>,
        String,
        String,
        String,
        String,
    );
    let mut seen: HashMap<Key, usize> = HashMap::new();
    let mut profiles: Vec<Item> = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut terms = analyzer.terms(&item.text);
        let year = first_year(&item.inspection_period);
        let report = canonical_report(&item.inspection_report);
        let question = canonical_question(&item.question);
        let pillar = normalise(&item.pillar);
        if search != Search::Exhaustive {
            terms.sort();
            let key: Key = (
                terms.clone(),
                family(item.kind),
                year,
                report.clone(),
                question.clone(),
                pillar.clone(),
                item.question.clone(),
            );
            if let Some(&p) = seen.get(&key) {
                members[p].push(i);
                continue;
            }
            seen.insert(key, profiles.len());
        }
        profiles.push(Item {
            item,
            terms,
            year,
            report,
            question,
            pillar,
            vector: Vector::default(),
        });
        members.push(vec![i]);
    }
    (profiles, members)
}

/// Which new findings are read: with [`Search::Indexed`], a finding that
/// repeats an earlier one's terms, question, pillar and kind of finding is
/// left out (the earlier one scores the same and wins ties).
fn distinct_findings(findings: &[NewFinding], terms: &[Vec<String>], search: Search) -> Vec<bool> {
    if search == Search::Exhaustive {
        return vec![true; findings.len()];
    }
    let mut seen: HashSet<(Vec<String>, String, String, bool)> = HashSet::new();
    findings
        .iter()
        .zip(terms)
        .map(|(f, t)| {
            let mut t = t.clone();
            t.sort();
            seen.insert((
                t,
                canonical_question(&f.question),
                normalise(&f.pillar),
                f.kind == ItemKind::NoteworthyPractice,
            ))
        })
        .collect()
}

/// The scored (item, target) pairs, each list in index order: with
/// [`Search::Indexed`], those whose cosine is positive and may reach
/// `threshold`; with [`Search::Exhaustive`], all of them.
struct Pairs {
    by_target: Vec<Vec<(usize, f64)>>,
    by_item: Vec<Vec<(usize, f64)>>,
}

impl Pairs {
    fn new(items: &[&Vector], targets: &[&Vector], threshold: f64, search: Search) -> Pairs {
        let mut by_target: Vec<Vec<(usize, f64)>> = Vec::with_capacity(targets.len());
        let mut by_item: Vec<Vec<(usize, f64)>> = vec![Vec::new(); items.len()];
        match search {
            Search::Exhaustive => {
                by_target.resize(targets.len(), Vec::new());
                for (x, item) in items.iter().enumerate() {
                    for (t, target) in targets.iter().enumerate() {
                        let sim = item.cosine(target);
                        by_item[x].push((t, sim));
                        by_target[t].push((x, sim));
                    }
                }
            }
            Search::Indexed => {
                let postings = Postings::new(items);
                for (t, target) in targets.iter().enumerate() {
                    let found = postings.search(items, target, threshold);
                    for &(x, sim) in &found {
                        by_item[x].push((t, sim));
                    }
                    by_target.push(found);
                }
            }
        }
        Pairs { by_target, by_item }
    }
}

struct Ctx<'a> {
    later: &'a LaterInspection,
    config: &'a MatchConfig,
    clauses: &'a [Clause],
    infos: &'a [FollowUpInfo],
    findings: &'a [Finding<'a>],
    items: &'a [Item<'a>],
    clause_pairs: &'a Pairs,
    finding_pairs: &'a Pairs,
    inspected: &'a [String],
}

impl Ctx<'_> {
    fn decide(&self, x: usize) -> Proposal {
        let it = &self.items[x];
        let mut near_miss: Option<(f64, String)> = None;

        // 1. Follow-ups.
        let mut best: Option<Support> = None;
        let mut best_mention: Option<Support> = None;
        for &(c, sim) in &self.clause_pairs.by_item[x] {
            if !self.eligible(x, c) {
                continue;
            }
            if sim < self.config.min_similarity {
                continue;
            }
            if let Err(rival) = self.owns(
                x,
                sim,
                &self.clauses[c].vector,
                &self.clause_pairs.by_target[c],
                &|y| self.eligible(y, c),
            ) {
                note_miss(&mut near_miss, sim, || {
                    format!(
                        "follow-up {} matches (lexical {:.2}) but is more about item {}",
                        self.fu(c).id,
                        sim,
                        rival
                    )
                });
                continue;
            }
            let support = self.support(x, c, sim);
            if support.outcome.is_none() {
                if best_mention
                    .as_ref()
                    .is_none_or(|b| support.score > b.score)
                {
                    best_mention = Some(support);
                }
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|b| (support.score, support.similarity) > (b.score, b.similarity))
            {
                best = Some(support);
            }
        }
        let follow_up = match best {
            Some(s) if s.score >= self.config.min_score => Some(s),
            Some(s) => {
                note_miss(&mut near_miss, s.similarity, || {
                    format!(
                        "follow-up {} (lexical {:.2}) scores {:.2} < {:.2}",
                        self.fu(s.clause).id,
                        s.similarity,
                        s.score,
                        self.config.min_score
                    )
                });
                None
            }
            None => None,
        };

        // 2. New findings that re-raise the item.
        let superseding = self.superseding(x, &mut near_miss);

        // A new finding that restates the item clearly better than the best
        // follow-up matches it wins: the follow-up is probably about something
        // else.
        let follow_up = match (follow_up, superseding) {
            (Some(s), Some((f, sim, score))) if score >= s.score + self.config.margin => {
                note_miss(&mut near_miss, s.similarity, || {
                    format!(
                        "follow-up {} (lexical {:.2}, score {:.2}) is weaker than new finding {} \
                         ({:.2})",
                        self.fu(s.clause).id,
                        s.similarity,
                        s.score,
                        self.findings[f].finding.id,
                        sim
                    )
                });
                None
            }
            (s, _) => s,
        };
        if let Some(s) = &follow_up {
            let (wording, _, _) = s
                .outcome
                .as_ref()
                .map_or((Wording::Addressed, "", &None), |o| {
                    (o.0, o.1.as_str(), &o.2)
                });
            match wording {
                Wording::Addressed => {
                    return self.proposal_from_follow_up(x, s, ProposalOutcome::Addressed, None);
                }
                Wording::PartiallyAddressed => {
                    return self.proposal_from_follow_up(
                        x,
                        s,
                        ProposalOutcome::PartiallyAddressed,
                        None,
                    );
                }
                Wording::NotAddressed => {
                    if let Some(f) = superseding {
                        return self.proposal_from_follow_up(
                            x,
                            s,
                            ProposalOutcome::Superseded,
                            Some(f),
                        );
                    }
                    return self.proposal_from_follow_up(x, s, ProposalOutcome::NotAddressed, None);
                }
                Wording::NotInspected => {
                    return self.proposal_from_follow_up(x, s, ProposalOutcome::NotAssessed, None);
                }
            }
        }
        if let Some((f, sim, score)) = superseding {
            let nf = &self.findings[f];
            return Proposal {
                item_id: it.item.id.clone(),
                outcome: ProposalOutcome::Superseded,
                score,
                rule: format!(
                    "new finding {} ({}) re-raises the item: lexical {:.2}{}{}",
                    nf.finding.id,
                    describe_question(&nf.finding.question, &nf.finding.pillar),
                    sim,
                    if same_question(&it.question, &nf.finding.question) {
                        ", same question"
                    } else {
                        ", same pillar"
                    },
                    near_miss
                        .as_ref()
                        .map(|(_, m)| format!("; not used: {m}"))
                        .unwrap_or_default()
                ),
                quotes: vec![nf.quote.clone()],
                line_start: nf.line_start,
                line_end: nf.line_end,
                matched_follow_up_id: None,
                matched_finding_id: Some(nf.finding.id.clone()),
            };
        }

        // 3. No evidence.
        let period = if self.later.period.is_empty() {
            "the later inspection"
        } else {
            &self.later.period
        };
        let mention = best_mention.map(|m| {
            format!(
                "; follow-up {} mentions it (lexical {:.2}) but states no outcome",
                self.fu(m.clause).id,
                m.similarity
            )
        });
        let miss = near_miss
            .map(|(_, m)| format!("; nearest: {m}"))
            .unwrap_or_default();
        let mention = mention.unwrap_or_default();
        let not_inspected_quote = self.not_inspected_statement(x);
        let (outcome, score, rule) = if it.question.is_empty() {
            (
                ProposalOutcome::NotAssessed,
                0.4,
                format!(
                    "item has no question and no follow-up statement or new finding of {period} \
                     refers to it{mention}{miss}"
                ),
            )
        } else if !self.inspected.contains(&it.question) {
            (
                ProposalOutcome::NotAssessed,
                0.9,
                format!(
                    "question '{}' was not inspected in {period} (judgment carried over) and no \
                     follow-up statement refers to this item{mention}{miss}",
                    it.item.question
                ),
            )
        } else {
            (
                self.config.silent_when_inspected,
                0.5,
                format!(
                    "question '{}' was inspected in {period} but no follow-up statement or new \
                     finding refers to this item: the report gives no verdict, review by \
                     hand{mention}{miss}",
                    it.item.question
                ),
            )
        };
        let (quotes, line_start, line_end, fu_id) = match not_inspected_quote {
            Some(c) if outcome == ProposalOutcome::NotAssessed => {
                let cl = &self.clauses[c];
                (
                    vec![cl.quote.clone()],
                    cl.line_start,
                    cl.line_end,
                    Some(self.fu(c).id.clone()),
                )
            }
            _ => (Vec::new(), 0, 0, None),
        };
        Proposal {
            item_id: it.item.id.clone(),
            outcome,
            score,
            rule,
            quotes,
            line_start,
            line_end,
            matched_follow_up_id: fu_id,
            matched_finding_id: None,
        }
    }

    /// Whether the clause's follow-up can be about the item at all: year,
    /// report and pillar do not contradict, and the kinds of finding named
    /// allow it.
    fn eligible(&self, x: usize, c: usize) -> bool {
        let it = &self.items[x];
        let clause = &self.clauses[c];
        let info = &self.infos[clause.follow_up];
        compatible(it, info) && kind_allowed(it, clause, info)
    }

    fn fu(&self, clause: usize) -> &FollowUp {
        &self.later.follow_ups[self.clauses[clause].follow_up]
    }

    /// Whether item `x` owns the text `target` (a clause or a new finding)
    /// against every rival item: `Err(rival id)` when a rival matches it
    /// nearly as well (within `margin`) and this item's match does not come
    /// for at least `distinct_share` from words the rival does not match.
    fn owns(
        &self,
        x: usize,
        sx: f64,
        target: &Vector,
        rivals: &[(usize, f64)],
        eligible: &dyn Fn(usize) -> bool,
    ) -> Result<(), String> {
        let mine = self.items[x].vector.contributions(target);
        for &(y, sy) in rivals {
            if y == x || !eligible(y) {
                continue;
            }
            if sy <= 0.0 || sy < sx - self.config.margin {
                continue;
            }
            // Items that say the same thing (a cause of concern and its
            // recommendation worded alike) may share a clause.
            if self.items[x].vector.cosine(&self.items[y].vector) >= 0.9 {
                continue;
            }
            let theirs = self.items[y].vector.contributions(target);
            let distinct: f64 = mine
                .iter()
                .filter(|(t, _)| !theirs.iter().any(|(u, _)| u == t))
                .map(|(_, c)| c)
                .sum();
            if distinct < self.config.distinct_share * sx {
                return Err(self.items[y].item.id.clone());
            }
        }
        Ok(())
    }

    fn support(&self, x: usize, c: usize, sim: f64) -> Support {
        let it = &self.items[x];
        let clause = &self.clauses[c];
        let info = &self.infos[clause.follow_up];
        let lexical = if self.config.full_similarity > 0.0 {
            (sim / self.config.full_similarity).min(1.0)
        } else {
            1.0
        };
        let (year_s, year_d) = match it.year {
            Some(a) if info.years.contains(&a) => (1.0, format!("year {a} matches")),
            _ => (0.5, "year unknown".to_string()),
        };
        let (report_s, report_d) = if !it.report.is_empty() && it.report == info.report {
            (1.0, format!("report {} matches", it.report))
        } else {
            (0.5, "report unknown".to_string())
        };
        // (A follow-up in another pillar is not eligible at all.)
        let (question_s, question_d) = if !it.question.is_empty() && it.question == info.question {
            (1.0, "same question")
        } else if !it.pillar.is_empty() && it.pillar == info.pillar {
            (0.6, "same pillar")
        } else {
            (0.5, "question unknown")
        };
        let context = 0.4 * year_s + 0.25 * report_s + 0.35 * question_s;

        let outcome = self.outcome_for(c);
        let wording_s = match &outcome {
            Some((_, phrase, _)) if !phrase.starts_with("parser") => 1.0,
            Some(_) => 0.7,
            None => 0.0,
        };
        // Context and wording modulate lexical evidence; they cannot make up
        // for its absence.
        let score = lexical * (0.4 + 0.35 * context + 0.25 * wording_s);
        Support {
            clause: c,
            similarity: sim,
            score: score.clamp(0.0, 1.0),
            outcome,
            context: format!("{year_d}, {report_d}, {question_d}"),
        }
    }

    /// The outcome wording that applies to a clause of a follow-up: its own,
    /// then the following clauses', then the preceding ones', then the
    /// sentences just after the span; else the parser's outcome.
    fn outcome_for(&self, c: usize) -> Option<(Wording, String, Option<Sentence>)> {
        let clause = &self.clauses[c];
        let info = &self.infos[clause.follow_up];
        let siblings: Vec<&Clause> = info.clauses.iter().map(|&i| &self.clauses[i]).collect();
        let quote_of = |cl: &Clause| Sentence {
            text: cl.quote.clone(),
            line_start: cl.line_start,
            line_end: cl.line_end,
        };
        if let Some(w) = clause.wording {
            return Some((w.wording, w.phrase.to_string(), None));
        }
        let after = siblings.iter().filter(|s| s.pos > clause.pos);
        let before = siblings.iter().filter(|s| s.pos < clause.pos).rev();
        for s in after.chain(before) {
            if let Some(w) = s.wording {
                return Some((w.wording, w.phrase.to_string(), Some(quote_of(s))));
            }
        }
        for s in &info.after {
            if let Some(w) = outcome::classify(&s.text) {
                return Some((w.wording, w.phrase.to_string(), Some(s.clone())));
            }
        }
        let fu = self.fu(c);
        let parsed = match fu.outcome {
            FollowUpOutcome::Addressed => Wording::Addressed,
            FollowUpOutcome::PartiallyAddressed => Wording::PartiallyAddressed,
            FollowUpOutcome::NotAddressed => Wording::NotAddressed,
            FollowUpOutcome::Unclear => return None,
        };
        Some((parsed, format!("parser outcome {:?}", fu.outcome), None))
    }

    fn superseding(
        &self,
        x: usize,
        near_miss: &mut Option<(f64, String)>,
    ) -> Option<(usize, f64, f64)> {
        let it = &self.items[x];
        let mut best: Option<(usize, f64, f64)> = None;
        for &(f, sim) in &self.finding_pairs.by_item[x] {
            let nf = &self.findings[f];
            if nf.finding.kind == ItemKind::NoteworthyPractice {
                continue;
            }
            if sim < self.config.supersede_similarity {
                continue;
            }
            let fq = canonical_question(&nf.finding.question);
            let fp = normalise(&nf.finding.pillar);
            let question_s = if !it.question.is_empty() && it.question == fq {
                1.0
            } else if !it.pillar.is_empty() && !fp.is_empty() {
                if it.pillar == fp { 0.6 } else { continue }
            } else {
                0.5
            };
            let eligible_f = |y: usize| {
                let other = &self.items[y];
                other.pillar.is_empty() || fp.is_empty() || other.pillar == fp
            };
            if let Err(rival) = self.owns(
                x,
                sim,
                &nf.vector,
                &self.finding_pairs.by_target[f],
                &eligible_f,
            ) {
                note_miss(near_miss, sim, || {
                    format!(
                        "new finding {} (lexical {:.2}) is more about item {}",
                        nf.finding.id, sim, rival
                    )
                });
                continue;
            }
            let lexical = if self.config.full_similarity > 0.0 {
                (sim / self.config.full_similarity).min(1.0)
            } else {
                1.0
            };
            let score = (lexical * (0.6 + 0.4 * question_s)).clamp(0.0, 1.0);
            if score < self.config.min_score {
                note_miss(near_miss, sim, || {
                    format!(
                        "new finding {} (lexical {:.2}) scores {:.2} < {:.2}",
                        nf.finding.id, sim, score, self.config.min_score
                    )
                });
                continue;
            }
            if best.is_none_or(|b| score > b.2) {
                best = Some((f, sim, score));
            }
        }
        best
    }

    fn proposal_from_follow_up(
        &self,
        x: usize,
        s: &Support,
        outcome: ProposalOutcome,
        superseding: Option<(usize, f64, f64)>,
    ) -> Proposal {
        let clause = &self.clauses[s.clause];
        let fu = self.fu(s.clause);
        let info = &self.infos[clause.follow_up];
        let mut quotes = vec![clause.quote.clone()];
        let mut line_start = clause.line_start;
        let mut line_end = clause.line_end;
        let phrase = s.outcome.as_ref().map_or("", |o| o.1.as_str());
        if let Some((_, _, Some(sentence))) = &s.outcome
            && sentence.text != clause.quote
        {
            quotes.push(sentence.text.clone());
            if sentence.line_start > 0 {
                line_start = if line_start == 0 {
                    sentence.line_start
                } else {
                    line_start.min(sentence.line_start)
                };
                line_end = line_end.max(sentence.line_end);
            }
        }
        let reference = match (info.year, info.report.as_str()) {
            (Some(y), "") => format!("{y}"),
            (Some(y), r) => format!("{y} {r}"),
            (None, "") => "unspecified report".to_string(),
            (None, r) => r.to_string(),
        };
        let wording = if phrase.starts_with("parser") {
            phrase.to_string()
        } else {
            format!("outcome wording '{phrase}'")
        };
        let mut rule = format!(
            "follow-up {} ({reference}): {wording} + lexical {:.2} on \"{}\" ({})",
            fu.id,
            s.similarity,
            shorten(&clause.text, 90),
            s.context
        );
        let mut score = s.score;
        let mut finding_id = None;
        if let Some((f, sim, fscore)) = superseding {
            let nf = &self.findings[f];
            rule.push_str(&format!(
                "; new finding {} re-raises it (lexical {:.2})",
                nf.finding.id, sim
            ));
            quotes.push(nf.quote.clone());
            if nf.line_start > 0 {
                line_start = if line_start == 0 {
                    nf.line_start
                } else {
                    line_start.min(nf.line_start)
                };
                line_end = line_end.max(nf.line_end);
            }
            score = score.max(fscore);
            finding_id = Some(nf.finding.id.clone());
        }
        Proposal {
            item_id: self.items[x].item.id.clone(),
            outcome,
            score,
            rule,
            quotes,
            line_start,
            line_end,
            matched_follow_up_id: Some(fu.id.clone()),
            matched_finding_id: finding_id,
        }
    }

    /// A follow-up clause saying the item's question was not inspected.
    fn not_inspected_statement(&self, x: usize) -> Option<usize> {
        let it = &self.items[x];
        if it.question.is_empty() {
            return None;
        }
        self.clauses.iter().position(|c| {
            c.wording
                .is_some_and(|w| w.wording == Wording::NotInspected)
                && self.infos[c.follow_up].question == it.question
        })
    }
}

/// Remembers the strongest piece of evidence that was not used, for the rule.
fn note_miss(slot: &mut Option<(f64, String)>, sim: f64, describe: impl FnOnce() -> String) {
    if slot.as_ref().is_none_or(|(best, _)| sim > *best) {
        *slot = Some((sim, describe()));
    }
}

fn same_question(canonical: &str, raw: &str) -> bool {
    !canonical.is_empty() && canonical == canonical_question(raw)
}

fn describe_question(question: &str, pillar: &str) -> String {
    match (question.is_empty(), pillar.is_empty()) {
        (false, _) => question.to_string(),
        (true, false) => pillar.to_string(),
        (true, true) => "no question".to_string(),
    }
}

fn shorten(s: &str, max: usize) -> String {
    let s = text::strip_markup(s);
    if s.chars().count() <= max {
        return s;
    }
    let cut: String = s.chars().take(max).collect();
    format!("{}…", cut.trim_end())
}

/// Whether the kinds of finding a clause and its follow-up name allow the
/// item: a clause that names one kind ("we identified a cause of concern
/// about…") is about an item of that kind; a follow-up that names kinds
/// ("as areas for improvement", "we recommended that all forces should") is
/// about items of those kinds, a cause of concern covering its
/// recommendations. Naming none allows any.
fn kind_allowed(it: &Item, clause: &Clause, info: &FollowUpInfo) -> bool {
    let f = family(it.item.kind);
    if let Some(cue) = clause.cue
        && cue != f
    {
        return false;
    }
    info.families.is_empty()
        || info.families.contains(&f)
        || (f == Family::Recommendation && info.families.contains(&Family::CauseOfConcern))
}

fn compatible(it: &Item, info: &FollowUpInfo) -> bool {
    if let Some(a) = it.year
        && !info.years.is_empty()
        && !info.years.contains(&a)
    {
        return false;
    }
    if !it.pillar.is_empty() && !info.pillar.is_empty() && it.pillar != info.pillar {
        return false;
    }
    !(!it.report.is_empty() && !info.report.is_empty() && it.report != info.report)
}

fn in_span(s: &Sentence, start: u32, end: u32, slack: u32) -> bool {
    start > 0
        && s.line_end.saturating_add(slack) >= start
        && s.line_start <= end.max(start).saturating_add(slack)
}

/// The report sentence that a follow-up's (or finding's) sentence is, looked
/// for near its span first, then anywhere.
fn locate<'d>(
    doc: &'d Document,
    norms: &[String],
    sentence: &str,
    start: u32,
    end: u32,
) -> Option<&'d Sentence> {
    let n = normalise(sentence);
    if n.is_empty() || doc.sentences.is_empty() {
        return None;
    }
    let near = |i: &usize| in_span(&doc.sentences[*i], start, end, 1);
    let all = 0..doc.sentences.len();
    let exact = |i: &usize| norms[*i] == n;
    let contains = |i: &usize| {
        let d = &norms[*i];
        n.len() >= 20 && d.len() >= 20 && (d.contains(&n) || n.contains(d.as_str()))
    };
    all.clone()
        .filter(near)
        .find(exact)
        .or_else(|| all.clone().filter(near).find(contains))
        .or_else(|| all.clone().find(exact))
        .map(|i| &doc.sentences[i])
}

fn follow_up_info(
    fi: usize,
    fu: &FollowUp,
    clauses: &[Clause],
    doc: &Document,
    later_year: Option<u32>,
) -> FollowUpInfo {
    let year = first_year(&fu.referenced_period)
        .or_else(|| outcome::referenced_year(&fu.text, later_year));
    let mut report = canonical_report(&fu.referenced_report);
    if report.is_empty() {
        report = report_from_text(&fu.text);
    }
    let members: Vec<usize> = clauses
        .iter()
        .enumerate()
        .filter(|(_, c)| c.follow_up == fi)
        .map(|(i, _)| i)
        .collect();
    let last_line = members
        .iter()
        .map(|&i| clauses[i].line_end)
        .max()
        .unwrap_or(0)
        .max(fu.line_end);
    let after: Vec<Sentence> = if last_line > 0 {
        doc.sentences
            .iter()
            .filter(|s| s.line_start > last_line && s.line_start <= last_line.saturating_add(4))
            .take(2)
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let mut years: Vec<u32> = year.into_iter().collect();
    for y in text::years(&fu.text) {
        if later_year.is_none_or(|later| y < later) && !years.contains(&y) {
            years.push(y);
        }
    }
    FollowUpInfo {
        year,
        years,
        report,
        question: canonical_question(&fu.question),
        pillar: normalise(&fu.pillar),
        clauses: members,
        families: kinds_named(&fu.text),
        after,
    }
}

/// "our 2017 effectiveness report", "the 2016 effectiveness inspection",
/// "Crime Data Integrity inspection report".
fn report_from_text(text: &str) -> String {
    let n = format!(" {} ", normalise(text));
    if n.contains(" crime data integrity ") {
        return "crime data integrity".into();
    }
    for kind in ["effectiveness", "efficiency", "legitimacy"] {
        if n.contains(&format!(" {kind} report ")) || n.contains(&format!(" {kind} inspection ")) {
            return kind.into();
        }
    }
    String::new()
}
