//! The command line as a person runs it against the real findings and
//! tracker services: import reports, follow the tracker's proposals, reject
//! a proposal and a completion claim each with its own command, claim with
//! an evidence file hashed on this machine, print canonical JSON with its
//! zero values, and stop quietly when its reader goes away. The services
//! start as in the end-to-end tests, whose support module this test shares.

#![cfg(unix)]

#[path = "../../../tests/tests/support/mod.rs"]
mod support;

use closeout_testkit::{TestBus, TestDatabase, eventually};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::os::unix::process::ExitStatusExt;
use std::process::{Output, Stdio};
use support::{start_findings, start_tracker};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");

/// Runs the command line against these services.
struct Closeout {
    findings: String,
    tracker: String,
}

impl Closeout {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_closeout"));
        command
            .args(args)
            .env("CLOSEOUT_FINDINGS_ADDR", &self.findings)
            .env("CLOSEOUT_TRACKER_ADDR", &self.tracker)
            .env_remove("CLOSEOUT_AS_ROLE")
            .env(
                "CLOSEOUT_TOKEN",
                closeout_testkit::Caller::inspectorate()
                    .subject("cli-test")
                    .token(),
            );
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("closeout runs")
    }

    /// Runs a command that must succeed and print JSON; its value.
    async fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    /// Runs a command that must fail; its one line on stderr.
    async fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        stderr
    }

    async fn items(&self) -> Vec<Value> {
        let list = self
            .json(&["items", "--org", "hertfordshire", "--json"])
            .await;
        list["items"].as_array().cloned().unwrap_or_default()
    }

    async fn proposals(&self) -> Vec<Value> {
        let list = self
            .json(&["proposals", "--org", "hertfordshire", "--json"])
            .await;
        list["proposals"].as_array().cloned().unwrap_or_default()
    }
}

fn text(value: &Value) -> &str {
    value.as_str().expect("a string")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_follows_items_and_decides_with_the_command_line() {
    let bus = TestBus::new();
    let (findings_db, tracker_db) = (TestDatabase::create().await, TestDatabase::create().await);
    let findings = start_findings(&findings_db, &bus).await;
    let tracker = start_tracker(&tracker_db, &bus).await;
    let closeout = Closeout {
        findings: format!("http://{}", findings.addr),
        tracker: format!("http://{}", tracker.addr),
    };

    // Two 2017 reports, then the 2018/19 one that says what became of
    // their areas for improvement.
    for name in [
        "synthetic-hertfordshire-2017-effectiveness.txt",
        "synthetic-hertfordshire-2017-efficiency.txt",
    ] {
        let imported = closeout
            .json(&["import", &format!("{FIXTURES}/{name}"), "--json"])
            .await;
        assert_eq!(imported["created"], true, "{imported}");
    }
    eventually("six 2017 items", || async {
        (closeout.items().await.len() == 6).then_some(())
    })
    .await;
    closeout
        .json(&[
            "import",
            &format!("{FIXTURES}/peel-2018-19-hertfordshire.txt"),
            "--json",
        ])
        .await;
    let proposals = eventually("a proposal per 2017 item", || async {
        let proposals = closeout.proposals().await;
        (proposals.len() == 6).then_some(proposals)
    })
    .await;

    // `reject` is about completion claims only: given a proposal's id it
    // refuses and leaves the proposal pending.
    let proposal = &proposals[0];
    let proposal_id = text(&proposal["id"]);
    assert_eq!(proposal["status"], "PROPOSAL_STATUS_PENDING");
    let refusal = closeout
        .refused(&["reject", proposal_id, "--reason", "not what it says"])
        .await;
    assert!(refusal.starts_with("closeout: NotFound"), "{refusal}");
    assert!(refusal.contains("closeout reject-proposal"), "{refusal}");
    let still = closeout.proposals().await;
    let same = still
        .iter()
        .find(|p| p["id"] == proposal["id"])
        .expect("kept");
    assert_eq!(same["status"], "PROPOSAL_STATUS_PENDING");

    // `reject-proposal` rejects it, and says so in canonical JSON.
    let rejected = closeout
        .json(&[
            "reject-proposal",
            proposal_id,
            "--reason",
            "The report speaks of another strategy",
            "--json",
        ])
        .await;
    assert_eq!(rejected["proposal"]["status"], "PROPOSAL_STATUS_REJECTED");
    let refusal = closeout
        .refused(&["reject-proposal", "no-such-proposal", "--reason", "x"])
        .await;
    assert!(refusal.contains("no-such-proposal"), "{refusal}");

    // A claim names its evidence by a file hashed here.
    let item = closeout
        .items()
        .await
        .into_iter()
        .find(|i| i["status"] == "ITEM_STATUS_OPEN")
        .expect("an open item");
    let item_id = text(&item["id"]).to_string();
    let body_token = closeout_testkit::Caller::inspected_body("hertfordshire").token();
    let body = ["--token", body_token.as_str()];
    let start = [&["start", &item_id, "--json"][..], &body[..]].concat();
    let started = closeout.json(&start).await;
    assert_eq!(started["status"], "ITEM_STATUS_IN_PROGRESS");
    let evidence = std::env::temp_dir().join(format!("closeout-evidence-{}", item_id));
    std::fs::write(&evidence, "Minutes of the strategy board, 3 March 2020").expect("write");
    let path = evidence.to_str().expect("utf-8 path");
    let claim = [
        &[
            "claim",
            &item_id,
            "--evidence",
            "Strategy approved",
            "--file",
            path,
            "--json",
        ][..],
        &body[..],
    ]
    .concat();
    let claimed = closeout.json(&claim).await;
    let expected = hex::encode(Sha256::digest(std::fs::read(&evidence).expect("read")));
    assert_eq!(claimed["status"], "ITEM_STATUS_AWAITING_VERIFICATION");
    assert_eq!(claimed["evidence"][0]["sha256"], expected.as_str());
    assert_eq!(claimed["evidence"][0]["description"], "Strategy approved");
    let _ = std::fs::remove_file(&evidence);

    // `reject` sends the claim back; JSON keeps fields at their defaults.
    let back = closeout
        .json(&["reject", &item_id, "--reason", "No minutes", "--json"])
        .await;
    assert_eq!(back["status"], "ITEM_STATUS_IN_PROGRESS");
    assert_eq!(back["overdue"], false, "a default printed: {back}");
    let nothing = closeout.json(&["items", "--org", "nobody", "--json"]).await;
    assert_eq!(nothing["items"], serde_json::json!([]), "{nothing}");

    // A reader that goes away ends a listing quietly. (Spawned, as
    // tokio's `output` would replace the pipe with its own.)
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = closeout
        .command(&["items", "--org", "hertfordshire"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .expect("closeout starts")
        .wait_with_output()
        .await
        .expect("closeout runs");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);

    tracker.stop().await.expect("tracker stops");
    findings.stop().await.expect("findings stops");
    findings_db.drop_database().await;
    tracker_db.drop_database().await;
    bus.cleanup().await;
}
