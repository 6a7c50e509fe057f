//! `propose` is total: arbitrary (deterministically generated) inputs never
//! make it panic, and it always returns one proposal per item with a score
//! in 0..=1. A small xorshift generator stands in for proptest.

use closeout_reconcile::{
    FollowUp, FollowUpOutcome, FollowUpScope, ItemKind, LaterInspection, MatchConfig, NewFinding,
    OpenItem, ProposalOutcome, propose,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const FRAGMENTS: &[&str] = &[
    "In our [2017 effectiveness report](#), we said",
    "It has made these improvements.",
    "This remains an area for improvement.",
    "we identified a cause of concern",
    "we recommended that all forces should:",
    "- monitor and analyse",
    "body-worn video",
    "Code of Practice for Victims of Crime",
    "Last year,",
    "2018/19",
    "9999",
    "",
    " ",
    "\n",
    "\n\n",
    ".",
    "...",
    "e.g.",
    "[",
    "](",
    "[a](b",
    "’s",
    "'",
    "Zoë",
    "日本語のテキスト。",
    "🚓",
    "\u{200b}",
    "ﬁ",
    "İ",
    "not subject to inspection",
    "hasn't reduced",
    "The force should",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "1,000",
    "£3.36m",
];

fn text(rng: &mut Rng) -> String {
    let n = rng.below(12);
    (0..n)
        .map(|_| rng.pick(FRAGMENTS))
        .collect::<Vec<_>>()
        .join(if rng.below(2) == 0 { " " } else { "" })
}

fn line(rng: &mut Rng) -> u32 {
    match rng.below(4) {
        0 => 0,
        1 => u32::MAX,
        _ => rng.below(80) as u32,
    }
}

fn kind(rng: &mut Rng) -> ItemKind {
    [
        ItemKind::AreaForImprovement,
        ItemKind::CauseOfConcern,
        ItemKind::Recommendation,
        ItemKind::NationalRecommendation,
        ItemKind::NoteworthyPractice,
        ItemKind::Other,
    ][rng.below(6)]
}

#[test]
fn arbitrary_inputs_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let questions = [
        "",
        "Investigating crime",
        "Armed policing",
        "x",
        "Treating the public fairly",
    ];
    let periods = ["", "2017", "2016", "2017/18", "last year", "abc", "2018/19"];
    for round in 0..400 {
        let items: Vec<OpenItem> = (0..rng.below(6))
            .map(|i| OpenItem {
                id: format!("i{i}"),
                kind: kind(&mut rng),
                pillar: rng.pick(&["", "Effectiveness", "Legitimacy"]).to_string(),
                question: rng.pick(&questions).to_string(),
                text: text(&mut rng),
                inspection_period: rng.pick(&periods).to_string(),
                inspection_report: rng
                    .pick(&["", "effectiveness", "crime data integrity", "?"])
                    .to_string(),
                addressed_to_all: rng.below(2) == 0,
                parent_id: format!("i{}", rng.below(6)),
            })
            .collect();
        let later = LaterInspection {
            organisation: text(&mut rng),
            period: rng.pick(&periods).to_string(),
            published: String::new(),
            inspected_questions: (0..rng.below(3))
                .map(|_| rng.pick(&questions).to_string())
                .collect(),
            follow_ups: (0..rng.below(5))
                .map(|i| FollowUp {
                    id: format!("f{i}"),
                    referenced_period: rng.pick(&periods).to_string(),
                    referenced_report: rng.pick(&["", "effectiveness", "legitimacy"]).to_string(),
                    text: text(&mut rng),
                    outcome: [
                        FollowUpOutcome::Addressed,
                        FollowUpOutcome::PartiallyAddressed,
                        FollowUpOutcome::NotAddressed,
                        FollowUpOutcome::Unclear,
                    ][rng.below(4)],
                    pillar: rng.pick(&["", "Effectiveness"]).to_string(),
                    question: rng.pick(&questions).to_string(),
                    line_start: line(&mut rng),
                    line_end: line(&mut rng),
                    referenced_kind: [None, Some(kind(&mut rng))][rng.below(2)],
                    scope: [
                        FollowUpScope::Item,
                        FollowUpScope::AllOfKind,
                        FollowUpScope::Summary,
                    ][rng.below(3)],
                    stated_count: rng.below(4) as u32,
                    quoted_item: [String::new(), text(&mut rng)][rng.below(2)].clone(),
                })
                .collect(),
            findings: (0..rng.below(4))
                .map(|i| NewFinding {
                    id: format!("n{i}"),
                    kind: kind(&mut rng),
                    pillar: rng.pick(&["", "Effectiveness"]).to_string(),
                    question: rng.pick(&questions).to_string(),
                    text: text(&mut rng),
                    line_start: line(&mut rng),
                    line_end: line(&mut rng),
                })
                .collect(),
            source_text: (0..rng.below(30))
                .map(|_| text(&mut rng))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        let config = MatchConfig {
            margin: [0.0, 0.1, 1.0, -1.0, f64::NAN][rng.below(5)],
            full_similarity: [0.5, 0.0, -1.0, f64::INFINITY][rng.below(4)],
            extra_stop_words: vec![text(&mut rng)],
            silent_when_inspected: ProposalOutcome::ALL[rng.below(5)],
            ..MatchConfig::default()
        };
        let proposals = propose(&items, &later, &config);
        assert_eq!(proposals.len(), items.len(), "round {round}");
        for (p, i) in proposals.iter().zip(&items) {
            assert_eq!(p.item_id, i.id);
            assert!(
                p.score.is_finite() && (0.0..=1.0).contains(&p.score),
                "round {round}: {}",
                p.score
            );
        }
    }
}

#[test]
fn empty_inputs() {
    assert!(propose(&[], &LaterInspection::default(), &MatchConfig::default()).is_empty());
    let item = OpenItem {
        id: "x".into(),
        ..Default::default()
    };
    let p = propose(
        &[item],
        &LaterInspection::default(),
        &MatchConfig::default(),
    );
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].outcome, ProposalOutcome::NotAssessed);
}
