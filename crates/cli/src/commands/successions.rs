//! `closeout successions record PREDECESSOR SUCCESSOR --effective DATE
//! [--note TEXT]` and `closeout successions list [--org ID] [--json]`:
//! organisations that merged or were renamed (findings service). From the
//! effective date the successor answers for the predecessor's open items.

use crate::commands::findings::FindingsServer;
use crate::error::CliError;
use crate::output::{Table, print_json};
use clap::{Args, Subcommand};
use closeout_proto as pb;

#[derive(Args)]
pub struct SuccessionsArgs {
    #[command(subcommand)]
    command: SuccessionsCommand,
}

#[derive(Subcommand)]
enum SuccessionsCommand {
    /// Record that PREDECESSOR was succeeded by SUCCESSOR (inspectorate only).
    Record {
        /// The organisation that was succeeded, e.g. isle-of-wight.
        predecessor: String,
        /// The organisation that succeeded it, e.g. hampshire-and-isle-of-wight.
        successor: String,
        /// The date the successor took over (YYYY-MM-DD).
        #[arg(long)]
        effective: String,
        /// Where the fact comes from, or anything a reader should know.
        #[arg(long, default_value = "")]
        note: String,
        /// Print canonical JSON instead of a sentence.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: FindingsServer,
    },
    /// List recorded and known successions.
    List {
        /// Only those this organisation is predecessor or successor in.
        #[arg(long)]
        org: Option<String>,
        /// Print canonical JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: FindingsServer,
    },
}

pub async fn run(args: SuccessionsArgs) -> Result<(), CliError> {
    match args.command {
        SuccessionsCommand::Record {
            predecessor,
            successor,
            effective,
            note,
            json,
            server,
        } => {
            let request = server.identity.request(pb::RecordSuccessionRequest {
                predecessor_id: predecessor.trim().to_string(),
                successor_id: successor.trim().to_string(),
                effective_date: effective.trim().to_string(),
                note,
            })?;
            let response = server
                .client()
                .await?
                .record_succession(request)
                .await?
                .into_inner();
            if json {
                return print_json("RecordSuccessionResponse", &response);
            }
            let s = response.succession.unwrap_or_default();
            let verb = if response.created {
                "recorded"
            } else {
                "already recorded"
            };
            println!(
                "{verb}: {} succeeded by {} from {}",
                s.predecessor_id, s.successor_id, s.effective_date
            );
            Ok(())
        }
        SuccessionsCommand::List { org, json, server } => {
            let request = server.identity.request(pb::ListSuccessionsRequest {
                organisation_id: org.unwrap_or_default(),
            })?;
            let response = server
                .client()
                .await?
                .list_successions(request)
                .await?
                .into_inner();
            if json {
                return print_json("ListSuccessionsResponse", &response);
            }
            let mut table = Table::new(&["PREDECESSOR", "SUCCESSOR", "FROM", "SOURCE", "NOTE"]);
            for s in response.successions {
                table.row(vec![
                    s.predecessor_id,
                    s.successor_id,
                    s.effective_date,
                    s.source,
                    s.note,
                ]);
            }
            print!("{}", table.render());
            Ok(())
        }
    }
}
