//! `closeout report parse` as a person or a script runs it: the readable
//! summary, the canonical proto3 JSON, and a one-line error with a non-zero
//! exit for a bad file.

use std::process::Command;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/peel-2018-19-hertfordshire.txt"
);

fn closeout(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_closeout"))
        .args(args)
        .output()
        .expect("closeout runs")
}

#[test]
fn prints_a_readable_summary() {
    let out = closeout(&["report", "parse", SAMPLE]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Hertfordshire Constabulary (hertfordshire, police force)"));
    assert!(text.contains("Judgments (10)"));
    assert!(text.contains("Findings (7)"));
    assert!(text.contains("Armed response capability"));
}

#[test]
fn prints_canonical_json() {
    let out = closeout(&["report", "parse", SAMPLE, "--json"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["organisation"]["id"], "hertfordshire");
    assert_eq!(
        json["organisation"]["kind"],
        "ORGANISATION_KIND_POLICE_FORCE"
    );
    assert_eq!(json["inspection"]["published"], "2019-09");
    assert_eq!(json["findings"].as_array().unwrap().len(), 7);
    let first = &json["findings"][0];
    assert_eq!(first["kind"], "FINDING_KIND_AREA_FOR_IMPROVEMENT");
    assert!(
        first["lineStart"].as_u64().unwrap() > 0,
        "lowerCamelCase names"
    );
    let judgment = &json["judgments"][0];
    assert_eq!(judgment["lastInspected"], "2016");
    assert_eq!(judgment["carriedOver"], true);
    assert!(json["followUps"].as_array().unwrap().len() >= 5);
    assert!(json["indicators"][0]["comparatorValue"].is_number());
}

#[test]
fn a_bad_file_is_one_line_and_a_failure() {
    let dir = std::env::temp_dir().join(format!("closeout-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("binary.dat");
    std::fs::write(&binary, [0u8, 159, 146, 150, 0, 1, 2]).unwrap();
    let not_a_report = dir.join("list.txt");
    std::fs::write(&not_a_report, "Eggs\nMilk\nBread\n").unwrap();
    for path in [
        binary.to_str().unwrap(),
        not_a_report.to_str().unwrap(),
        "/nonexistent/report.txt",
    ] {
        let out = closeout(&["report", "parse", path]);
        assert!(!out.status.success(), "{path} should fail");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
        assert!(err.starts_with("closeout: "), "{err}");
        assert!(err.contains(path), "names the file: {err}");
        assert!(out.stdout.is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
