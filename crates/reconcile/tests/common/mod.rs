//! Loading the evaluation fixtures: blocks of `key: value` lines separated by
//! blank lines; `#` starts a comment line; a line indented by two spaces
//! continues the previous value on a new line.
//!
//! The real Hertfordshire report's later inspection is built from what the
//! report parser (`closeout_report::parse`) reads in it, as the tracker gets
//! it from the findings service's events; the synthetic pairs keep their
//! hand-entered follow-ups.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use closeout_reconcile::{
    FollowUp, FollowUpOutcome, ItemKind, LaterInspection, NewFinding, OpenItem, ProposalOutcome,
};

pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The real 2018/19 Hertfordshire report, from the workspace fixtures.
pub fn hertfordshire_report() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/peel-2018-19-hertfordshire.txt");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub type Block = BTreeMap<String, String>;

pub fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current = Block::new();
    let mut last_key: Option<String> = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            last_key = None;
            continue;
        }
        if let Some(rest) = line.strip_prefix("  ") {
            let key = last_key.clone().expect("continuation line without a key");
            let value = current.entry(key).or_default();
            value.push('\n');
            value.push_str(rest.trim());
            continue;
        }
        let (key, value) = line.split_once(':').expect("a `key: value` line");
        current.insert(key.trim().to_string(), value.trim().to_string());
        last_key = Some(key.trim().to_string());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn get(b: &Block, key: &str) -> String {
    b.get(key).cloned().unwrap_or_default()
}

fn kind(name: &str) -> ItemKind {
    match name {
        "afi" => ItemKind::AreaForImprovement,
        "cause" => ItemKind::CauseOfConcern,
        "recommendation" => ItemKind::Recommendation,
        "national" => ItemKind::NationalRecommendation,
        "noteworthy" => ItemKind::NoteworthyPractice,
        other => panic!("unknown kind {other}"),
    }
}

fn lines(b: &Block) -> (u32, u32) {
    let l = get(b, "lines");
    let (a, z) = l.split_once('-').unwrap_or((&l, &l));
    (a.trim().parse().unwrap_or(0), z.trim().parse().unwrap_or(0))
}

/// A labelled open item.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub item: OpenItem,
    pub label: ProposalOutcome,
    pub source: String,
}

pub fn items(text: &str) -> Vec<Labelled> {
    blocks(text)
        .iter()
        .map(|b| {
            let k = kind(&get(b, "kind"));
            Labelled {
                item: OpenItem {
                    id: get(b, "id"),
                    kind: k,
                    pillar: get(b, "pillar"),
                    question: get(b, "question"),
                    text: get(b, "text"),
                    inspection_period: get(b, "period"),
                    inspection_report: get(b, "report"),
                    addressed_to_all: k == ItemKind::NationalRecommendation,
                    ..Default::default()
                },
                label: ProposalOutcome::parse(&get(b, "label"))
                    .unwrap_or_else(|| panic!("bad label in {b:?}")),
                source: get(b, "source"),
            }
        })
        .collect()
}

/// The later inspection as the report parser reads `report`: its follow-up
/// statements, its findings, and the questions it judged (not carried over).
pub fn later_from_parser(report: &str) -> LaterInspection {
    let parsed = closeout_report::parse(report).expect("the report parses");
    let inspection = parsed.inspection.clone().unwrap_or_default();
    let mut inspected_questions: Vec<String> = Vec::new();
    for j in parsed.judgments.iter().filter(|j| !j.carried_over) {
        if !j.question.is_empty() && !inspected_questions.contains(&j.question) {
            inspected_questions.push(j.question.clone());
        }
    }
    let follow_ups = parsed
        .follow_ups
        .iter()
        .enumerate()
        .map(|(i, f)| FollowUp {
            id: format!("P{:02}", i + 1),
            referenced_period: f.referenced_period.clone(),
            referenced_report: f.referenced_report.clone(),
            text: f.text.clone(),
            outcome: match closeout_proto::FollowUpOutcome::try_from(f.outcome) {
                Ok(closeout_proto::FollowUpOutcome::Addressed) => FollowUpOutcome::Addressed,
                Ok(closeout_proto::FollowUpOutcome::PartiallyAddressed) => {
                    FollowUpOutcome::PartiallyAddressed
                }
                Ok(closeout_proto::FollowUpOutcome::NotAddressed) => FollowUpOutcome::NotAddressed,
                _ => FollowUpOutcome::Unclear,
            },
            pillar: f.pillar.clone(),
            question: f.question.clone(),
            line_start: f.line_start,
            line_end: f.line_end,
            ..Default::default()
        })
        .collect();
    let findings = parsed
        .findings
        .iter()
        .enumerate()
        .map(|(i, f)| NewFinding {
            id: format!("N{:02}", i + 1),
            kind: match closeout_proto::FindingKind::try_from(f.kind) {
                Ok(closeout_proto::FindingKind::AreaForImprovement) => ItemKind::AreaForImprovement,
                Ok(closeout_proto::FindingKind::CauseOfConcern) => ItemKind::CauseOfConcern,
                Ok(closeout_proto::FindingKind::Recommendation) => ItemKind::Recommendation,
                Ok(closeout_proto::FindingKind::NationalRecommendation) => {
                    ItemKind::NationalRecommendation
                }
                Ok(closeout_proto::FindingKind::NoteworthyPractice) => ItemKind::NoteworthyPractice,
                _ => ItemKind::Other,
            },
            pillar: f.pillar.clone(),
            question: f.question.clone(),
            text: f.text.clone(),
            line_start: f.line_start,
            line_end: f.line_end,
        })
        .collect();
    LaterInspection {
        organisation: parsed.organisation.map(|o| o.name).unwrap_or_default(),
        period: inspection.period,
        published: inspection.published,
        inspected_questions,
        follow_ups,
        findings,
        source_text: report.to_string(),
    }
}

pub fn later(text: &str, report: &str) -> LaterInspection {
    let mut later = LaterInspection {
        source_text: report.to_string(),
        ..Default::default()
    };
    for b in blocks(text) {
        match get(&b, "type").as_str() {
            "inspection" => {
                later.organisation = get(&b, "organisation");
                later.period = get(&b, "period");
                later.published = get(&b, "published");
                later.inspected_questions = get(&b, "inspected")
                    .split(';')
                    .map(|q| q.trim().to_string())
                    .filter(|q| !q.is_empty())
                    .collect();
            }
            "follow-up" => {
                let (line_start, line_end) = lines(&b);
                later.follow_ups.push(FollowUp {
                    id: get(&b, "id"),
                    referenced_period: get(&b, "period"),
                    referenced_report: get(&b, "report"),
                    text: get(&b, "text"),
                    outcome: match get(&b, "outcome").as_str() {
                        "ADDRESSED" => FollowUpOutcome::Addressed,
                        "PARTIALLY_ADDRESSED" => FollowUpOutcome::PartiallyAddressed,
                        "NOT_ADDRESSED" => FollowUpOutcome::NotAddressed,
                        _ => FollowUpOutcome::Unclear,
                    },
                    pillar: get(&b, "pillar"),
                    question: get(&b, "question"),
                    line_start,
                    line_end,
                    ..Default::default()
                });
            }
            "finding" => {
                let (line_start, line_end) = lines(&b);
                later.findings.push(NewFinding {
                    id: get(&b, "id"),
                    kind: kind(&get(&b, "kind")),
                    pillar: get(&b, "pillar"),
                    question: get(&b, "question"),
                    text: get(&b, "text"),
                    line_start,
                    line_end,
                });
            }
            other => panic!("unknown block type {other:?}"),
        }
    }
    later
}

/// One evaluation case: an organisation's earlier items and its later report.
pub struct Case {
    pub name: &'static str,
    pub items: Vec<Labelled>,
    pub later: LaterInspection,
    pub report: String,
}

pub fn cases() -> Vec<Case> {
    let herts = hertfordshire_report();
    let northmoor = fixture("synthetic-northmoor-2023.report.txt");
    let eastmarsh = fixture("synthetic-eastmarsh-2021-22.report.txt");
    vec![
        Case {
            name: "Hertfordshire 2016/2017 → PEEL 2018/19 (real report)",
            items: items(&fixture("hertfordshire-earlier.items.txt")),
            later: later_from_parser(&herts),
            report: herts,
        },
        Case {
            name: "Northmoor 2021/22 → 2023 (synthetic)",
            items: items(&fixture("synthetic-northmoor.items.txt")),
            later: later(&fixture("synthetic-northmoor.later.txt"), &northmoor),
            report: northmoor,
        },
        Case {
            name: "Eastmarsh FRS 2019 → 2021/22 (synthetic)",
            items: items(&fixture("synthetic-eastmarsh.items.txt")),
            later: later(&fixture("synthetic-eastmarsh.later.txt"), &eastmarsh),
            report: eastmarsh,
        },
    ]
}

/// Collapses every run of white space to one space.
pub fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
