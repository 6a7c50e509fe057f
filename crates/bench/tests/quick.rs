//! `closeout-bench --quick` runs every scenario against a private stack
//! it starts and removes, exits 0, and prints every scenario's line. Its
//! figures are not checked: CI runs it only to prove the bench works.

use std::process::Command;

/// The line prefixes the quick run must print, one per scenario.
const SCENARIOS: &[&str] = &[
    "parse [",
    "import [",
    "note-progress [1 in flight",
    "note-progress [16 in flight",
    "note-progress [64 in flight",
    "get-item [",
    "get-item-vs-health [",
    "grpc-layers [",
    "list-items [",
    "metrics-drain [",
    "lag [",
    "lag-500 [",
    "watch round 1 [",
    "watch: NoteProgress beside",
    "scorecard [",
    "peer-comparison [",
    "rss [",
    "rebuild [",
];

#[test]
fn quick_mode_runs_every_scenario() {
    let output = Command::new(env!("CARGO_BIN_EXE_closeout-bench"))
        .args(["--quick", "--runs", "1"])
        .output()
        .expect("running closeout-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "closeout-bench --quick failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for scenario in SCENARIOS {
        assert!(
            stdout.lines().any(|line| line.starts_with(scenario)),
            "no line starting {scenario:?} in:\n{stdout}"
        );
    }
    // Every comparison names its ceiling and a ratio.
    for line in stdout.lines().filter(|l| l.contains("| ceiling")) {
        assert!(line.contains("ratio"), "a figure without its ratio: {line}");
    }
}

#[test]
fn a_running_stack_needs_a_token() {
    let output = Command::new(env!("CARGO_BIN_EXE_closeout-bench"))
        .args(["--quick", "--findings-addr", "127.0.0.1:1"])
        .env_remove("CLOSEOUT_TOKEN")
        .output()
        .expect("running closeout-bench");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bearer token"), "{stderr}");
}
