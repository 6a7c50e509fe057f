//! The nine lifecycle commands: `assign`, `due`, `start`, `note`, `claim`,
//! `verify`, `reject`, `supersede`, `reopen`. Each states only its
//! arguments, its request and the words it prints; [`mutate`] does the
//! rest the same way for all: it sends the item's version (the one given
//! with `--version`, or the one the item has when the command fetches it
//! first), calls the RPC that takes the request, and prints the item.

use crate::commands::TrackerServer;
use crate::error::CliError;
use crate::output::{print_json, status_words};
use crate::parse;
use clap::{Args, Subcommand};
use closeout_proto as pb;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tonic::transport::Channel;

/// What a lifecycle command acts on.
#[derive(Args, Clone, Debug)]
pub struct Target {
    /// The item's id.
    id: String,
    /// The version the change is based on; fetched from the item if not given.
    #[arg(long = "version", value_name = "N")]
    version: Option<u64>,
    #[command(flatten)]
    server: TrackerServer,
}

/// The lifecycle commands, flattened into the top-level ones.
#[derive(Subcommand)]
pub enum LifecycleCommand {
    /// Assign an owner to an item.
    #[command(disable_version_flag = true)]
    Assign {
        #[command(flatten)]
        target: Target,
        /// Who owns it now.
        owner: String,
    },
    /// Set or revise an item's due date (a revision needs --reason).
    #[command(disable_version_flag = true)]
    Due {
        #[command(flatten)]
        target: Target,
        /// The new due date, YYYY-MM-DD.
        date: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Start work on an item.
    #[command(disable_version_flag = true)]
    Start {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Note progress on an item.
    #[command(disable_version_flag = true)]
    Note {
        #[command(flatten)]
        target: Target,
        /// The note.
        text: String,
    },
    /// Claim an item complete, with evidence (inspected body). The evidence
    /// document is named by its SHA-256: give the file (`--file`, hashed
    /// here) or its hash (`--sha256`), one of the two.
    #[command(
        disable_version_flag = true,
        group = clap::ArgGroup::new("evidence_hash").required(true).args(["file", "sha256"])
    )]
    Claim {
        #[command(flatten)]
        target: Target,
        /// What the evidence is.
        #[arg(long)]
        evidence: String,
        /// Where the evidence document is.
        #[arg(long, default_value = "")]
        uri: String,
        /// The evidence document, hashed (SHA-256) on this machine; the
        /// file itself is not sent.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Hex SHA-256 of the evidence document, instead of --file.
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Verify an item, closing it (inspectorate).
    #[command(disable_version_flag = true)]
    Verify {
        #[command(flatten)]
        target: Target,
        /// Closure reference: a letter, a revisit, a later inspection.
        #[arg(long)]
        reference: String,
        /// The day the closure took effect (the closure letter's date),
        /// YYYY-MM-DD; default: today.
        #[arg(long)]
        effective_date: Option<String>,
    },
    /// Reject an item's completion claim, sending it back to in progress
    /// (inspectorate). A reconciliation proposal is rejected with
    /// `reject-proposal`.
    #[command(disable_version_flag = true)]
    Reject {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        reason: String,
    },
    /// Mark an item superseded by a newer finding (inspectorate).
    #[command(disable_version_flag = true)]
    Supersede {
        #[command(flatten)]
        target: Target,
        /// The newer finding's id.
        #[arg(long = "by", value_name = "FINDING_ID")]
        by: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Reopen a closed or superseded item (inspectorate).
    #[command(disable_version_flag = true)]
    Reopen {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        reason: String,
    },
}

/// Runs one lifecycle command.
pub async fn run(command: LifecycleCommand) -> Result<(), CliError> {
    use LifecycleCommand as C;
    use pb::Evidence;
    match command {
        C::Assign { target, owner } => {
            let request = pb::AssignOwnerRequest {
                owner,
                ..Default::default()
            };
            mutate(target, "assigned", request).await
        }
        C::Due {
            target,
            date,
            reason,
        } => {
            let request = pb::SetDueDateRequest {
                due_date: Some(parse::date("DATE", &date)?),
                reason,
                ..Default::default()
            };
            mutate(target, "due date set", request).await
        }
        C::Start { target, note } => {
            let request = pb::StartItemRequest {
                note,
                ..Default::default()
            };
            mutate(target, "started", request).await
        }
        C::Note { target, text } => {
            let request = pb::NoteProgressRequest {
                note: text,
                ..Default::default()
            };
            mutate(target, "noted", request).await
        }
        C::Claim {
            target,
            evidence,
            uri,
            file,
            sha256,
            note,
        } => {
            let sha256 = match (file, sha256) {
                (Some(file), None) => sha256_of_file(&file)?,
                (None, Some(sha256)) => sha256,
                _ => {
                    return Err(CliError::Usage(
                        "give the evidence as --file PATH or as --sha256 HEX, one of the two"
                            .into(),
                    ));
                }
            };
            let request = pb::ClaimCompletionRequest {
                evidence: Some(Evidence {
                    description: evidence,
                    uri,
                    sha256,
                }),
                note,
                ..Default::default()
            };
            mutate(target, "claimed complete", request).await
        }
        C::Verify {
            target,
            reference,
            effective_date,
        } => {
            let request = pb::VerifyItemRequest {
                closure_reference: reference,
                effective_date: effective_date
                    .map(|d| parse::date("--effective-date", &d))
                    .transpose()?,
                ..Default::default()
            };
            mutate(target, "verified", request).await
        }
        C::Reject { target, reason } => {
            let request = pb::RejectClaimRequest {
                reason,
                ..Default::default()
            };
            mutate(target, "claim rejected", request)
                .await
                .map_err(not_an_item_hint)
        }
        C::Supersede { target, by, reason } => {
            let request = pb::SupersedeItemRequest {
                superseding_finding_id: by,
                reason,
                ..Default::default()
            };
            mutate(target, "superseded", request).await
        }
        C::Reopen { target, reason } => {
            let request = pb::ReopenItemRequest {
                reason,
                ..Default::default()
            };
            mutate(target, "reopened", request).await
        }
    }
}

/// The lower-case hex SHA-256 of the file at `path`, read in pieces.
pub fn sha256_of_file(path: &Path) -> Result<String, CliError> {
    let failed = |e: std::io::Error| CliError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(failed)?;
    Ok(hex::encode(hasher.finalize()))
}

/// `reject` names items only: when the id is no item, say how a
/// reconciliation proposal is rejected.
fn not_an_item_hint(error: CliError) -> CliError {
    match error {
        CliError::Rpc { code, message } if code == "NotFound" => CliError::Rpc {
            code,
            message: format!(
                "{message} (a reconciliation proposal is rejected with `closeout reject-proposal`)"
            ),
        },
        other => other,
    }
}

/// A lifecycle request: it names an item at a version and goes by one RPC
/// that answers with the item.
trait LifecycleRequest: Sized {
    /// Puts in the item and the version the change is based on.
    fn stamp(&mut self, item_id: String, expected_version: u64);
    /// Calls the RPC that takes this request.
    async fn send(
        client: &mut TrackerServiceClient<Channel>,
        request: tonic::Request<Self>,
    ) -> Result<Option<pb::TrackedItem>, tonic::Status>;
}

/// Which RPC takes which request.
macro_rules! lifecycle_rpcs {
    ($($request:ident => $rpc:ident),* $(,)?) => {$(
        impl LifecycleRequest for pb::$request {
            fn stamp(&mut self, item_id: String, expected_version: u64) {
                self.item_id = item_id;
                self.expected_version = expected_version;
            }
            async fn send(
                client: &mut TrackerServiceClient<Channel>,
                request: tonic::Request<Self>,
            ) -> Result<Option<pb::TrackedItem>, tonic::Status> {
                Ok(client.$rpc(request).await?.into_inner().item)
            }
        }
    )*};
}

lifecycle_rpcs! {
    AssignOwnerRequest => assign_owner,
    SetDueDateRequest => set_due_date,
    StartItemRequest => start_item,
    NoteProgressRequest => note_progress,
    ClaimCompletionRequest => claim_completion,
    VerifyItemRequest => verify_item,
    RejectClaimRequest => reject_claim,
    SupersedeItemRequest => supersede_item,
    ReopenItemRequest => reopen_item,
}

/// Sends `request` about `target` at its version and prints the item it
/// leaves: canonical JSON, or one line with `verb`.
async fn mutate<R: LifecycleRequest>(
    target: Target,
    verb: &str,
    mut request: R,
) -> Result<(), CliError> {
    let server = &target.server;
    let item_id = target.id.trim().to_string();
    let expected_version = match target.version {
        Some(version) => version,
        None => server.item(&item_id).await?.version,
    };
    request.stamp(item_id, expected_version);
    let mut client = server.client().await?;
    let item = R::send(&mut client, server.identity.request(request)?)
        .await?
        .ok_or_else(|| CliError::Other("the server answered without the item".into()))?;
    if server.json {
        return print_json("TrackedItem", &item);
    }
    println!(
        "{} {verb}: {} (version {})",
        item.id,
        status_words(item.status),
        item.version
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    #[command(version, propagate_version = true)]
    struct Cli {
        #[command(subcommand)]
        command: LifecycleCommand,
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["closeout", "assign", "abc", "Jo", "--version", "3"])
            .expect("parses");
        match cli.command {
            LifecycleCommand::Assign { target, owner } => {
                assert_eq!(
                    (target.id.as_str(), target.version, owner.as_str()),
                    ("abc", Some(3), "Jo")
                );
            }
            _ => panic!("parsed as another command"),
        }
    }

    #[test]
    fn a_claim_names_its_evidence_by_file_or_by_hash_not_both() {
        let by_hash = ["closeout", "claim", "abc", "--evidence", "Strategy"];
        let both = Cli::try_parse_from(
            by_hash
                .iter()
                .chain(&["--file", "a.pdf", "--sha256", "00"])
                .copied(),
        );
        let error = both.err().expect("both refused").to_string();
        assert!(
            error.contains("--file") && error.contains("--sha256"),
            "{error}"
        );
        let neither = Cli::try_parse_from(by_hash);
        let error = neither.err().expect("neither refused").to_string();
        assert!(
            error.contains("--file") && error.contains("--sha256"),
            "{error}"
        );
        let one = Cli::try_parse_from(by_hash.iter().chain(&["--file", "a.pdf"]).copied());
        assert!(one.is_ok());
    }

    #[test]
    fn a_file_is_hashed_with_sha256() {
        let dir = std::env::temp_dir().join(format!("closeout-cli-sha-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("evidence.txt");
        std::fs::write(&path, "abc").expect("write");
        assert_eq!(
            sha256_of_file(&path).expect("hashed"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let missing = sha256_of_file(&dir.join("missing.pdf")).unwrap_err();
        assert!(missing.to_string().contains("missing.pdf"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rejecting_what_is_no_item_points_to_reject_proposal() {
        let hinted = not_an_item_hint(CliError::Rpc {
            code: "NotFound".into(),
            message: "item p-1 not found".into(),
        });
        assert!(
            hinted.to_string().contains("closeout reject-proposal"),
            "{hinted}"
        );
        let other = not_an_item_hint(CliError::Usage("bad".into()));
        assert_eq!(other.to_string(), "bad");
    }

    #[test]
    fn a_request_is_stamped_with_the_item_and_its_version() {
        let mut request = pb::VerifyItemRequest {
            closure_reference: "Closure letter 2020-01".into(),
            ..Default::default()
        };
        request.stamp("item-1".into(), 4);
        assert_eq!(
            (request.item_id.as_str(), request.expected_version),
            ("item-1", 4)
        );
        assert_eq!(request.closure_reference, "Closure letter 2020-01");
    }
}
