//! A reader that stops early (`closeout … | head`) ends the command
//! quietly: no panic, no backtrace, nothing on stderr. The pipe is real and
//! its reading end is closed before the command starts, so its first write
//! meets the closed pipe every time.

#![cfg(unix)]

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/peel-2018-19-hertfordshire.txt"
);

/// Runs `closeout args` writing into a pipe nobody reads.
fn into_a_closed_pipe(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_closeout"))
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("closeout runs")
}

#[test]
fn a_closed_pipe_ends_every_kind_of_output_quietly() {
    for args in [
        &["report", "parse", SAMPLE][..],
        &["report", "parse", SAMPLE, "--json"],
        &["version"],
        &["help", "items"],
    ] {
        let out = into_a_closed_pipe(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{args:?} wrote to stderr: {stderr}");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?} should end at the closed pipe: {:?}",
            out.status
        );
    }
}

#[test]
fn an_open_pipe_still_gets_everything() {
    let out = Command::new(env!("CARGO_BIN_EXE_closeout"))
        .args(["report", "parse", SAMPLE])
        .stdout(Stdio::piped())
        .output()
        .expect("closeout runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Findings (7)"));
}
