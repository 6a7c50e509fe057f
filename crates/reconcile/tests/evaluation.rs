//! The labelled evaluation of the matcher: Hertfordshire's earlier items
//! against the real PEEL 2018/19 report (its follow-ups, findings and judged
//! questions as `closeout_report::parse` reads them), plus two synthetic
//! pairs (hand-entered follow-ups).
//!
//! Definitions. A proposal is *correct* when its outcome equals the item's
//! label. Per outcome class k: precision = correct proposals of k / proposals
//! of k; recall = correct proposals of k / items labelled k. The headline
//! figures leave out the "nothing to say" class: *precision* is over the
//! proposals whose outcome is not NOT_ASSESSED (every proposal that would
//! change or annotate an item), *recall* over the items whose label is not
//! NOT_ASSESSED (every item the later report does say something about).

mod common;

use closeout_reconcile::{MatchConfig, Proposal, ProposalOutcome, propose};
use common::{Case, cases, squash};

struct Row<'a> {
    case: &'a str,
    id: String,
    label: ProposalOutcome,
    proposal: Proposal,
}

fn run(cases: &[Case]) -> Vec<Row<'_>> {
    let config = MatchConfig::default();
    let mut rows = Vec::new();
    for case in cases {
        let items: Vec<_> = case.items.iter().map(|l| l.item.clone()).collect();
        let proposals = propose(&items, &case.later, &config);
        assert_eq!(proposals.len(), items.len(), "one proposal per item");
        for (l, p) in case.items.iter().zip(proposals) {
            assert_eq!(p.item_id, l.item.id, "proposals in the items' order");
            rows.push(Row {
                case: case.name,
                id: l.item.id.clone(),
                label: l.label,
                proposal: p,
            });
        }
    }
    rows
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 1.0 } else { n as f64 / d as f64 }
}

#[test]
fn precision_and_recall_against_the_labels() {
    let cases = cases();
    let rows = run(&cases);

    let mut current = "";
    for r in &rows {
        if r.case != current {
            current = r.case;
            println!("\n== {current}");
        }
        let mark = if r.proposal.outcome == r.label {
            "ok "
        } else {
            "XX "
        };
        println!(
            "{mark}{:<5} label {:<19} proposed {:<19} score {:.2}  {}",
            r.id,
            r.label.as_str(),
            r.proposal.outcome.as_str(),
            r.proposal.score,
            r.proposal.rule
        );
        for q in &r.proposal.quotes {
            println!(
                "        > [{}-{}] {q}",
                r.proposal.line_start, r.proposal.line_end
            );
        }
    }

    println!(
        "\n{:<20} {:>6} {:>9} {:>8} {:>10} {:>7}",
        "outcome", "items", "proposed", "correct", "precision", "recall"
    );
    for k in ProposalOutcome::ALL {
        let labelled = rows.iter().filter(|r| r.label == k).count();
        let proposed = rows.iter().filter(|r| r.proposal.outcome == k).count();
        let correct = rows
            .iter()
            .filter(|r| r.label == k && r.proposal.outcome == k)
            .count();
        println!(
            "{:<20} {:>6} {:>9} {:>8} {:>10.2} {:>7.2}",
            k.as_str(),
            labelled,
            proposed,
            correct,
            ratio(correct, proposed),
            ratio(correct, labelled)
        );
    }
    let acted: Vec<&Row> = rows
        .iter()
        .filter(|r| r.proposal.outcome != ProposalOutcome::NotAssessed)
        .collect();
    let assessed: Vec<&Row> = rows
        .iter()
        .filter(|r| r.label != ProposalOutcome::NotAssessed)
        .collect();
    let precision = ratio(
        acted
            .iter()
            .filter(|r| r.proposal.outcome == r.label)
            .count(),
        acted.len(),
    );
    let recall = ratio(
        assessed
            .iter()
            .filter(|r| r.proposal.outcome == r.label)
            .count(),
        assessed.len(),
    );
    let accuracy = ratio(
        rows.iter()
            .filter(|r| r.proposal.outcome == r.label)
            .count(),
        rows.len(),
    );
    println!(
        "\nprecision (proposals other than NOT_ASSESSED): {precision:.3} over {}\n\
         recall (items labelled other than NOT_ASSESSED): {recall:.3} over {}\n\
         accuracy (all items): {accuracy:.3} over {}",
        acted.len(),
        assessed.len(),
        rows.len()
    );

    // Calibration: how often a proposal is right, by score band.
    println!("\n{:<12} {:>9} {:>8}", "score", "proposals", "correct");
    for (lo, hi) in [
        (0.0, 0.5),
        (0.5, 0.6),
        (0.6, 0.7),
        (0.7, 0.8),
        (0.8, 0.9),
        (0.9, 1.01),
    ] {
        let band: Vec<&Row> = rows
            .iter()
            .filter(|r| r.proposal.score >= lo && r.proposal.score < hi)
            .collect();
        let ok = band
            .iter()
            .filter(|r| r.proposal.outcome == r.label)
            .count();
        println!(
            "{:<12} {:>9} {:>8}",
            format!("{lo:.1}–{:.1}", hi.min(1.0)),
            band.len(),
            ok
        );
    }

    for r in &rows {
        if r.proposal.outcome == ProposalOutcome::Addressed {
            assert_eq!(
                r.label,
                ProposalOutcome::Addressed,
                "{}: ADDRESSED proposed for an item labelled {}: {}",
                r.id,
                r.label,
                r.proposal.rule
            );
        }
    }
    assert!(precision >= 0.9, "precision {precision:.3} < 0.9");
    assert!(recall >= 0.9, "recall {recall:.3} < 0.9");
}

#[test]
fn quotes_are_sentences_of_the_report_within_the_span() {
    let cases = cases();
    let rows = run(&cases);
    for case in &cases {
        let lines: Vec<&str> = case.report.lines().collect();
        let whole = squash(&case.report);
        for r in rows.iter().filter(|r| r.case == case.name) {
            let p = &r.proposal;
            let needs_quotes = matches!(
                p.outcome,
                ProposalOutcome::Addressed
                    | ProposalOutcome::PartiallyAddressed
                    | ProposalOutcome::NotAddressed
                    | ProposalOutcome::Superseded
            );
            if needs_quotes {
                assert!(
                    !p.quotes.is_empty(),
                    "{}: {} without quotes",
                    r.id,
                    p.outcome
                );
                assert!(
                    p.matched_follow_up_id.is_some() || p.matched_finding_id.is_some(),
                    "{}",
                    r.id
                );
            }
            if p.quotes.is_empty() {
                continue;
            }
            assert!(
                p.line_start >= 1
                    && p.line_start <= p.line_end
                    && (p.line_end as usize) <= lines.len(),
                "{}: span {}-{} outside the report ({} lines)",
                r.id,
                p.line_start,
                p.line_end,
                lines.len()
            );
            let span = squash(&lines[(p.line_start - 1) as usize..p.line_end as usize].join(" "));
            for q in &p.quotes {
                let q = squash(q);
                assert!(whole.contains(&q), "{}: quote not in the report: {q}", r.id);
                assert!(
                    span.contains(&q),
                    "{}: quote not within lines {}-{}: {q}",
                    r.id,
                    p.line_start,
                    p.line_end
                );
            }
        }
    }
}

#[test]
fn superseded_proposals_link_the_new_finding() {
    let cases = cases();
    for r in run(&cases) {
        if r.proposal.outcome == ProposalOutcome::Superseded {
            assert!(r.proposal.matched_finding_id.is_some(), "{}", r.id);
        }
        assert!(
            (0.0..=1.0).contains(&r.proposal.score),
            "{}: score {}",
            r.id,
            r.proposal.score
        );
        assert!(!r.proposal.rule.is_empty(), "{}", r.id);
    }
}
