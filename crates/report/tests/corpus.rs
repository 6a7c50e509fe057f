//! The layout corpus (tests/fixtures/corpus, issue 11): every document is
//! parsed and compared with a careful reader's hand counts in its sibling
//! `<name>.counts.toml` (keys and counting rules: the corpus
//! README). One table per profile, key | counted | found, is printed (run
//! with `--nocapture` to see it); any difference fails the test.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use closeout_proto::{FindingKind, FollowUpOutcome, OrganisationKind, ParsedReport};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

/// Every `*.counts.toml` under the corpus, sorted.
fn count_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(dirs) = std::fs::read_dir(corpus_dir()) else {
        return files;
    };
    for dir in dirs.flatten() {
        let Ok(entries) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".counts.toml"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The layout profiles (ids fixed by the corpus contract).
const PROFILES: &[&str] = &[
    "peel-2014-17",
    "peel-2018-19",
    "peel-2021-22",
    "peel-2023-25",
    "frs-2018-19",
    "frs-2021-22",
    "frs-2023-25",
    "letter-accelerated-cause-of-concern",
    "letter-revisit",
    "national",
];

/// A value as the counts file writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    Count(i64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Text(t) => write!(f, "{t:?}"),
            Value::Count(n) => write!(f, "{n}"),
        }
    }
}

fn count(n: usize) -> Option<Value> {
    Some(Value::Count(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn findings_of(report: &ParsedReport, kind: FindingKind) -> usize {
    report.findings.iter().filter(|f| f.kind() == kind).count()
}

fn follow_ups_of(report: &ParsedReport, outcome: FollowUpOutcome) -> usize {
    report
        .follow_ups
        .iter()
        .filter(|f| f.outcome() == outcome)
        .count()
}

fn explained(report: &ParsedReport, element: &str) -> usize {
    report
        .explanations
        .iter()
        .filter(|e| e.element == element)
        .count()
}

/// What the parser found for a counts key; None for an unknown key.
fn found(report: &ParsedReport, key: &str) -> Option<Value> {
    let organisation = report.organisation.clone().unwrap_or_default();
    let inspection = report.inspection.clone().unwrap_or_default();
    let text = |s: &str| Some(Value::Text(s.to_string()));
    match key {
        "profile" => text(&report.profile),
        "organisation" => text(&organisation.id),
        "organisation_kind" => text(match organisation.kind() {
            OrganisationKind::PoliceForce => "police-force",
            OrganisationKind::FireAndRescueService => "fire-and-rescue-service",
            OrganisationKind::Unspecified => "",
        }),
        "programme" => text(&inspection.programme),
        "period" => text(&inspection.period),
        "published" => text(&inspection.published),
        "pillar_judgments" => count(report.pillars.len()),
        "question_judgments" => count(report.judgments.len()),
        "carried_over_judgments" => {
            count(report.judgments.iter().filter(|j| j.carried_over).count())
        }
        "areas_for_improvement" => count(findings_of(report, FindingKind::AreaForImprovement)),
        "causes_of_concern" => count(findings_of(report, FindingKind::CauseOfConcern)),
        "recommendations" => count(findings_of(report, FindingKind::Recommendation)),
        "national_recommendations" => {
            count(findings_of(report, FindingKind::NationalRecommendation))
        }
        "noteworthy_practice" => count(findings_of(report, FindingKind::NoteworthyPractice)),
        "deadlines" => count(
            report
                .findings
                .iter()
                .filter(|f| !f.deadline.is_empty())
                .count(),
        ),
        "references" => count(explained(report, "reference")),
        "follow_ups" => count(report.follow_ups.len()),
        "follow_ups_addressed" => count(follow_ups_of(report, FollowUpOutcome::Addressed)),
        "follow_ups_partially_addressed" => {
            count(follow_ups_of(report, FollowUpOutcome::PartiallyAddressed))
        }
        "follow_ups_not_addressed" => count(follow_ups_of(report, FollowUpOutcome::NotAddressed)),
        "follow_ups_unclear" => count(follow_ups_of(report, FollowUpOutcome::Unclear)),
        "boilerplate" => count(explained(report, "boilerplate")),
        _ => None,
    }
}

/// One document's rows: (key, counted, found).
type Rows = Vec<(String, Value, Option<Value>)>;

fn compare(counts_path: &Path) -> Result<(String, Rows), String> {
    let name = counts_path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".counts.toml"))
        .ok_or_else(|| format!("{}: not a counts file", counts_path.display()))?
        .to_string();
    let text_path = counts_path.with_file_name(format!("{name}.txt"));
    let counts_text = std::fs::read_to_string(counts_path)
        .map_err(|e| format!("{}: {e}", counts_path.display()))?;
    let counts: toml::Table = counts_text
        .parse()
        .map_err(|e| format!("{}: {e}", counts_path.display()))?;
    let text =
        std::fs::read_to_string(&text_path).map_err(|e| format!("{}: {e}", text_path.display()))?;
    let report = closeout_report::parse(&text)
        .map_err(|e| format!("{}: does not parse: {e}", text_path.display()))?;
    let mut rows = Rows::new();
    for (key, value) in &counts {
        let counted = match value {
            toml::Value::String(s) => Value::Text(s.clone()),
            toml::Value::Integer(n) => Value::Count(*n),
            other => Value::Text(format!("unreadable value {other}")),
        };
        rows.push((key.clone(), counted, found(&report, key)));
    }
    let profile = counts
        .get("profile")
        .and_then(|p| p.as_str())
        .unwrap_or("(no profile key)")
        .to_string();
    Ok((profile, rows))
}

#[test]
fn every_corpus_document_matches_its_hand_counts() {
    let files = count_files();
    assert!(
        !files.is_empty(),
        "no *.counts.toml under {}",
        corpus_dir().display()
    );
    let mut by_profile: BTreeMap<String, Vec<(String, Rows)>> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    for path in &files {
        let document = path
            .strip_prefix(corpus_dir())
            .unwrap_or(path)
            .display()
            .to_string();
        match compare(path) {
            Ok((profile, rows)) => by_profile
                .entry(profile)
                .or_default()
                .push((document, rows)),
            Err(e) => failures.push(e),
        }
    }
    let mut out = String::new();
    for (profile, documents) in &by_profile {
        let _ = writeln!(out, "\n== profile {profile} ==");
        for (document, rows) in documents {
            let _ = writeln!(out, "-- {document}");
            let _ = writeln!(
                out,
                "  {:<32} | {:>22} | {:>22} |",
                "key", "counted", "found"
            );
            for (key, counted, found) in rows {
                let shown = found
                    .as_ref()
                    .map_or_else(|| "(unknown key)".to_string(), ToString::to_string);
                let ok = found.as_ref() == Some(counted);
                let _ = writeln!(
                    out,
                    "  {key:<32} | {:>22} | {shown:>22} | {}",
                    counted.to_string(),
                    if ok { "" } else { "MISMATCH" }
                );
                if !ok {
                    failures.push(format!(
                        "{document}: {key}: counted {counted}, found {shown}"
                    ));
                }
            }
        }
    }
    // Every layout is covered by at least two documents.
    for profile in PROFILES {
        let documents = by_profile.get(*profile).map_or(0, Vec::len);
        if documents < 2 {
            failures.push(format!(
                "profile {profile}: {documents} document(s) in the corpus, expected at least 2"
            ));
        }
    }
    let keys: usize = by_profile
        .values()
        .flat_map(|documents| documents.iter().map(|(_, rows)| rows.len()))
        .sum();
    let _ = writeln!(
        out,
        "\n{} documents, {} profiles, {keys} counted keys, {} mismatch(es)",
        files.len(),
        by_profile.len(),
        failures.len()
    );
    println!("{out}");
    assert!(
        failures.is_empty(),
        "{} mismatch(es) between the parser and the hand counts:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
