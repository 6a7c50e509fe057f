//! `closeout import` on folders against the real findings service: every
//! .txt, .html and .pdf found is sent as it is, the table says per file
//! whether it was imported, unchanged or refused and why, a refusal makes
//! the exit status non-zero, and `--published` supplies what a report does
//! not state. `closeout report parse` reads web pages and PDFs too.

#![cfg(unix)]

#[path = "../../../tests/tests/support/mod.rs"]
mod support;

use closeout_testkit::{TestBus, TestDatabase};
use std::path::Path;
use std::process::Output;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");

async fn closeout(findings: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_closeout"))
        .args(args)
        .env("CLOSEOUT_FINDINGS_ADDR", findings)
        .env(
            "CLOSEOUT_TOKEN",
            closeout_testkit::Caller::inspectorate()
                .subject("cli-test")
                .token(),
        )
        .output()
        .await
        .expect("closeout runs")
}

fn copy(from: &str, to: &Path) {
    std::fs::copy(Path::new(FIXTURES).join(from), to).unwrap();
}

/// The row of `file` in the summary table, its cells split on runs of spaces.
fn row<'a>(stdout: &'a str, file: &str) -> Vec<&'a str> {
    let line = stdout
        .lines()
        .find(|l| l.contains(file))
        .unwrap_or_else(|| panic!("no row for {file} in\n{stdout}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_reports_is_imported_with_a_summary() {
    let bus = TestBus::new();
    let db = TestDatabase::create().await;
    let findings = support::start_findings(&db, &bus).await;
    let addr = format!("http://{}", findings.addr);

    let dir = std::env::temp_dir().join(format!("closeout-import-folder-{}", std::process::id()));
    let nested = dir.join("2018-19");
    std::fs::create_dir_all(&nested).unwrap();
    copy(
        "peel-2018-19-hertfordshire.pdf",
        &nested.join("hertfordshire.pdf"),
    );
    copy(
        "synthetic-hertfordshire-2017-effectiveness.txt",
        &dir.join("effectiveness-2017.txt"),
    );
    std::fs::write(dir.join("notes.toml"), "not a report").unwrap();
    // The efficiency report without its closing line states no date.
    let undated: String = std::fs::read_to_string(
        Path::new(FIXTURES).join("synthetic-hertfordshire-2017-efficiency.txt"),
    )
    .unwrap()
    .lines()
    .filter(|l| !l.contains("©HMICFRS"))
    .map(|l| format!("{l}\n"))
    .collect();
    std::fs::write(dir.join("efficiency-2017.html.txt"), undated).unwrap();
    let folder = dir.to_str().unwrap();

    let out = closeout(&addr, &["import", folder]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "a refusal fails the command");
    assert_eq!(
        stderr.trim(),
        "closeout: 1 of 3 reports refused",
        "{stderr}"
    );
    assert!(stdout.starts_with("FILE"), "{stdout}");
    let pdf = row(&stdout, "hertfordshire.pdf");
    assert_eq!(
        pdf[1..],
        ["imported", "hertfordshire", "peel-2018-19", "7"],
        "{stdout}"
    );
    let effectiveness = row(&stdout, "effectiveness-2017.txt");
    assert_eq!(effectiveness[1], "imported", "{stdout}");
    let efficiency = row(&stdout, "efficiency-2017.html.txt");
    assert_eq!(efficiency[1], "refused", "{stdout}");
    assert!(
        stdout.contains("pass --published YYYY-MM-DD (ImportReportRequest.overrides.published)"),
        "{stdout}"
    );
    assert!(!stdout.contains("notes.toml"), "{stdout}");
    assert!(
        stdout.contains("2 imported, 0 unchanged, 1 refused"),
        "{stdout}"
    );

    // Again, with the date the undated report lacks: the others are unchanged.
    let out = closeout(&addr, &["import", folder, "--published", "2017-11-09"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        row(&stdout, "hertfordshire.pdf")[1],
        "unchanged",
        "{stdout}"
    );
    assert_eq!(
        row(&stdout, "efficiency-2017.html.txt")[1],
        "imported",
        "{stdout}"
    );
    assert!(
        stdout.contains("1 imported, 2 unchanged, 0 refused"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(--published)"),
        "the override is a warning: {stdout}"
    );

    // Successions: the known ones, and one recorded by hand.
    let out = closeout(
        &addr,
        &["successions", "list", "--org", "isle-of-wight-fire"],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout.contains("isle-of-wight-fire  hampshire-and-isle-of-wight-fire  2021-04-01  known"),
        "{stdout}"
    );
    let out = closeout(
        &addr,
        &[
            "successions",
            "record",
            "hertfordshire",
            "nowhere",
            "--effective",
            "2024-04-01",
        ],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        stderr.contains("NotFound") && stderr.contains("nowhere"),
        "{stderr}"
    );

    findings.stop().await.unwrap();
    bus.cleanup().await;
    db.drop_database().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_parse_reads_web_pages_and_pdfs_and_explains() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_closeout"))
            .args(args)
            .output()
            .expect("closeout runs")
    };
    for name in [
        "peel-2018-19-hertfordshire.html",
        "peel-2018-19-hertfordshire.pdf",
    ] {
        let path = format!("{FIXTURES}/{name}");
        let out = run(&["report", "parse", &path]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Findings (7)"), "{name}: {text}");
        let out = run(&["report", "parse", &path, "--explain"]);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("Profile: peel-2018-19"), "{name}: {text}");
        let out = run(&["report", "text", &path]);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("\tEffectiveness\t\tLast inspected"),
            "{name}: {text}"
        );
    }
}
