//! The indexed search (items grouped by what the matcher reads of them,
//! candidate pairs from an inverted index) proposes exactly what the
//! exhaustive one (every item against every clause, finding and rival)
//! does: on the labelled fixtures, on them with every item repeated and
//! the items shuffled, under several thresholds, and on generated cases
//! built from a small vocabulary so that items share words and rival each
//! other.

mod common;

use closeout_reconcile::{
    FollowUp, FollowUpOutcome, FollowUpScope, ItemKind, LaterInspection, MatchConfig, NewFinding,
    OpenItem, Search, propose_with,
};
use common::cases;

fn configs() -> Vec<MatchConfig> {
    let d = MatchConfig::default();
    vec![
        d.clone(),
        MatchConfig {
            margin: 0.0,
            ..d.clone()
        },
        MatchConfig {
            min_similarity: 0.1,
            supersede_similarity: 0.15,
            margin: 0.2,
            min_score: 0.3,
            ..d.clone()
        },
        MatchConfig {
            margin: -0.05,
            distinct_share: 0.6,
            ..d.clone()
        },
        // Not positive: falls back to the exhaustive search.
        MatchConfig {
            min_similarity: 0.0,
            ..d
        },
    ]
}

fn same(items: &[OpenItem], later: &LaterInspection, config: &MatchConfig, what: &str) {
    let indexed = propose_with(items, later, config, Search::Indexed);
    let exhaustive = propose_with(items, later, config, Search::Exhaustive);
    assert_eq!(indexed.len(), items.len(), "{what}");
    for (i, (a, b)) in indexed.iter().zip(&exhaustive).enumerate() {
        assert_eq!(a, b, "{what}: item {i} ({})", items[i].id);
    }
}

#[test]
fn the_fixtures_get_the_same_proposals() {
    for case in cases() {
        let items: Vec<OpenItem> = case.items.iter().map(|l| l.item.clone()).collect();
        for (n, config) in configs().iter().enumerate() {
            same(
                &items,
                &case.later,
                config,
                &format!("{} config {n}", case.name),
            );
        }
    }
}

#[test]
fn repeated_and_shuffled_items_get_the_same_proposals() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for case in cases() {
        let mut items: Vec<OpenItem> = Vec::new();
        for copy in 0..3 {
            for l in &case.items {
                items.push(OpenItem {
                    id: format!("{}-{copy}", l.item.id),
                    ..l.item.clone()
                });
            }
        }
        for i in (1..items.len()).rev() {
            items.swap(i, rng.below(i + 1));
        }
        same(
            &items,
            &case.later,
            &MatchConfig::default(),
            &format!("{} repeated", case.name),
        );
    }
}

#[test]
fn generated_cases_get_the_same_proposals() {
    let mut rng = Rng(0x0dd_ba11_c0ff_ee00);
    for n in 0..400 {
        let (items, later) = generated(&mut rng);
        let configs = configs();
        let config = &configs[n % configs.len()];
        same(&items, &later, config, &format!("generated case {n}"));
    }
}

/// xorshift64*: reproducible cases without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of[self.below(of.len())]
    }
}

const WORDS: &[&str] = &[
    "victims",
    "crime",
    "review",
    "body",
    "worn",
    "video",
    "risk",
    "assessments",
    "domestic",
    "abuse",
    "missing",
    "children",
    "custody",
    "vetting",
    "counter",
    "corruption",
    "call",
    "handling",
    "neighbourhood",
    "policing",
    "safeguarding",
    "training",
    "supervision",
    "investigations",
    "quality",
    "records",
    "data",
    "integrity",
];
const OUTCOMES: &[&str] = &[
    "The force has addressed this.",
    "The force has made some progress but more work is needed.",
    "The force has not yet addressed this.",
    "We did not inspect this area.",
    "",
];
const QUESTIONS: &[&str] = &[
    "",
    "Investigating crime",
    "Protecting vulnerable people",
    "Ethical and lawful workforce",
];
const PILLARS: &[&str] = &["", "Effectiveness", "Legitimacy"];
const PERIODS: &[&str] = &["", "2016", "2017", "2018/19"];
const REPORTS: &[&str] = &["", "effectiveness", "legitimacy"];
const KINDS: &[ItemKind] = &[
    ItemKind::AreaForImprovement,
    ItemKind::CauseOfConcern,
    ItemKind::Recommendation,
    ItemKind::NoteworthyPractice,
];

fn phrase(rng: &mut Rng) -> String {
    let n = 2 + rng.below(5);
    let words: Vec<&str> = (0..n).map(|_| rng.pick(WORDS)).collect();
    format!("The force should improve {}.", words.join(" "))
}

fn generated(rng: &mut Rng) -> (Vec<OpenItem>, LaterInspection) {
    let mut items: Vec<OpenItem> = Vec::new();
    for i in 0..1 + rng.below(30) {
        // Some items repeat an earlier one's words, or all of it.
        let item = if !items.is_empty() && rng.below(4) == 0 {
            let earlier = items[rng.below(items.len())].clone();
            OpenItem {
                id: format!("i{i}"),
                inspection_period: if rng.below(2) == 0 {
                    earlier.inspection_period.clone()
                } else {
                    rng.pick(PERIODS).to_string()
                },
                ..earlier
            }
        } else {
            OpenItem {
                id: format!("i{i}"),
                kind: KINDS[rng.below(KINDS.len())],
                pillar: rng.pick(PILLARS).to_string(),
                question: rng.pick(QUESTIONS).to_string(),
                text: phrase(rng),
                inspection_period: rng.pick(PERIODS).to_string(),
                inspection_report: rng.pick(REPORTS).to_string(),
                ..Default::default()
            }
        };
        items.push(item);
    }
    let follow_ups = (0..rng.below(8))
        .map(|f| {
            let about = if rng.below(3) == 0 || items.is_empty() {
                phrase(rng)
            } else {
                items[rng.below(items.len())].text.clone()
            };
            FollowUp {
                id: format!("f{f}"),
                referenced_period: rng.pick(PERIODS).to_string(),
                referenced_report: rng.pick(REPORTS).to_string(),
                text: format!(
                    "In our earlier inspection we said: {about} {}",
                    rng.pick(OUTCOMES)
                ),
                outcome: [
                    FollowUpOutcome::Addressed,
                    FollowUpOutcome::NotAddressed,
                    FollowUpOutcome::Unclear,
                ][rng.below(3)],
                pillar: rng.pick(PILLARS).to_string(),
                question: rng.pick(QUESTIONS).to_string(),
                scope: if rng.below(6) == 0 {
                    FollowUpScope::Summary
                } else {
                    FollowUpScope::Item
                },
                ..Default::default()
            }
        })
        .collect();
    let findings = (0..rng.below(10))
        .map(|f| {
            let text = if rng.below(2) == 0 && !items.is_empty() {
                items[rng.below(items.len())].text.clone()
            } else {
                phrase(rng)
            };
            NewFinding {
                id: format!("n{f}"),
                kind: KINDS[rng.below(KINDS.len())],
                pillar: rng.pick(PILLARS).to_string(),
                question: rng.pick(QUESTIONS).to_string(),
                text,
                ..Default::default()
            }
        })
        .collect();
    let later = LaterInspection {
        organisation: "Northmoor Police".into(),
        period: "2021/22".into(),
        published: "2022-05".into(),
        inspected_questions: (0..rng.below(3))
            .map(|_| rng.pick(QUESTIONS).to_string())
            .collect(),
        follow_ups,
        findings,
        source_text: String::new(),
    };
    (items, later)
}
