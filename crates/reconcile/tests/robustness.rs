//! The evaluation under degraded inputs, as the tracker may see them: no
//! report text, no parser outcome, no referenced period or report, items in
//! another order, and each item proposed on its own (no rival items to
//! compare with — the margin test then has nothing to lean on).

mod common;

use closeout_reconcile::{
    FollowUpOutcome, LaterInspection, MatchConfig, OpenItem, ProposalOutcome, propose,
};
use common::{Case, cases};

struct Score {
    precision: f64,
    recall: f64,
    false_addressed: Vec<String>,
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 1.0 } else { n as f64 / d as f64 }
}

fn evaluate(
    cases: &[Case],
    later_of: impl Fn(&LaterInspection) -> LaterInspection,
    one_by_one: bool,
    reverse: bool,
) -> Score {
    let config = MatchConfig::default();
    let mut pairs: Vec<(String, ProposalOutcome, ProposalOutcome)> = Vec::new();
    for case in cases {
        let later = later_of(&case.later);
        let mut items: Vec<(OpenItem, ProposalOutcome)> = case
            .items
            .iter()
            .map(|l| (l.item.clone(), l.label))
            .collect();
        if reverse {
            items.reverse();
        }
        if one_by_one {
            for (item, label) in &items {
                let p = propose(std::slice::from_ref(item), &later, &config);
                pairs.push((item.id.clone(), *label, p[0].outcome));
            }
        } else {
            let only: Vec<OpenItem> = items.iter().map(|(i, _)| i.clone()).collect();
            for (p, (item, label)) in propose(&only, &later, &config).iter().zip(&items) {
                assert_eq!(p.item_id, item.id);
                pairs.push((item.id.clone(), *label, p.outcome));
            }
        }
    }
    let acted: Vec<_> = pairs
        .iter()
        .filter(|p| p.2 != ProposalOutcome::NotAssessed)
        .collect();
    let assessed: Vec<_> = pairs
        .iter()
        .filter(|p| p.1 != ProposalOutcome::NotAssessed)
        .collect();
    for (id, label, got) in &pairs {
        if label != got {
            println!("    {id}: label {label}, proposed {got}");
        }
    }
    Score {
        precision: ratio(acted.iter().filter(|p| p.1 == p.2).count(), acted.len()),
        recall: ratio(
            assessed.iter().filter(|p| p.1 == p.2).count(),
            assessed.len(),
        ),
        false_addressed: pairs
            .iter()
            .filter(|p| p.2 == ProposalOutcome::Addressed && p.1 != ProposalOutcome::Addressed)
            .map(|p| p.0.clone())
            .collect(),
    }
}

fn report(name: &str, s: &Score) {
    println!(
        "{name:<48} precision {:.3}  recall {:.3}  false ADDRESSED {:?}",
        s.precision, s.recall, s.false_addressed
    );
}

#[test]
fn degraded_inputs() {
    let cases = cases();
    let same = |l: &LaterInspection| l.clone();
    let no_text = |l: &LaterInspection| LaterInspection {
        source_text: String::new(),
        ..l.clone()
    };
    let no_outcome = |l: &LaterInspection| {
        let mut l = l.clone();
        for f in &mut l.follow_ups {
            f.outcome = FollowUpOutcome::Unclear;
        }
        l
    };
    let no_reference = |l: &LaterInspection| {
        let mut l = l.clone();
        for f in &mut l.follow_ups {
            f.referenced_period.clear();
            f.referenced_report.clear();
        }
        l
    };
    let no_questions = |l: &LaterInspection| {
        let mut l = l.clone();
        for f in &mut l.follow_ups {
            f.question.clear();
        }
        for f in &mut l.findings {
            f.question.clear();
        }
        l
    };

    let bare = |l: &LaterInspection| {
        let mut l = l.clone();
        for f in &mut l.follow_ups {
            f.referenced_period.clear();
            f.referenced_report.clear();
            f.pillar.clear();
            f.question.clear();
            f.outcome = FollowUpOutcome::Unclear;
        }
        for f in &mut l.findings {
            f.pillar.clear();
            f.question.clear();
        }
        l
    };

    let variants: Vec<(&str, Score)> = vec![
        ("as given", evaluate(&cases, same, false, false)),
        (
            "items in reverse order",
            evaluate(&cases, same, false, true),
        ),
        ("no report text", evaluate(&cases, no_text, false, false)),
        (
            "no parser outcome",
            evaluate(&cases, no_outcome, false, false),
        ),
        (
            "no referenced period or report",
            evaluate(&cases, no_reference, false, false),
        ),
        (
            "no question on follow-ups and findings",
            evaluate(&cases, no_questions, false, false),
        ),
        ("each item alone", evaluate(&cases, same, true, false)),
        (
            "only texts and spans (no metadata, no outcome)",
            evaluate(&cases, bare, false, false),
        ),
    ];
    for (name, s) in &variants {
        report(name, s);
    }
    for (name, s) in &variants {
        assert!(
            s.false_addressed.is_empty(),
            "{name}: false ADDRESSED {:?}",
            s.false_addressed
        );
        assert!(
            s.precision >= 0.9 && s.recall >= 0.85,
            "{name}: {:.3}/{:.3}",
            s.precision,
            s.recall
        );
    }
}
