//! `closeout watch [--org ORG] [--status S] [--after SEQ]`: follows item
//! changes as they happen, one line (or one JSON object) per change,
//! resumable from a sequence number.

use crate::commands::TrackerServer;
use crate::commands::items::{describe, event_name};
use crate::error::CliError;
use crate::output::{print_json_line, time_words};
use crate::parse;
use clap::Args;
use closeout_proto as pb;

#[derive(Args)]
pub struct WatchArgs {
    /// Only this organisation's items.
    #[arg(long)]
    org: Option<String>,
    /// Only changes of items in this status, before or after (repeatable).
    #[arg(long)]
    status: Vec<String>,
    /// Resume after this sequence number.
    #[arg(long, default_value_t = 0)]
    after: u64,
    #[command(flatten)]
    server: TrackerServer,
}

/// Prints changes until the stream ends or the user stops it.
pub async fn run(args: WatchArgs) -> Result<(), CliError> {
    let request = args.server.identity.request(pb::WatchItemsRequest {
        organisation_id: args.org.clone().unwrap_or_default(),
        statuses: parse::item_statuses(&args.status)?,
        after_sequence: args.after,
    })?;
    let mut stream = args
        .server
        .client()
        .await?
        .watch_items(request)
        .await?
        .into_inner();
    while let Some(change) = stream.message().await? {
        if args.server.json {
            print_json_line("WatchItemsResponse", &change)?;
            continue;
        }
        let event = change.event.clone().unwrap_or_default();
        let item = change.item.clone().unwrap_or_default();
        println!(
            "{:>6}  {}  {}  {}  v{}  {}  {}",
            change.sequence,
            time_words(event.occurred_at.map(|t| t.seconds)),
            item.organisation_id,
            item.id,
            event.aggregate_version,
            event_name(&event),
            describe(event.payload.as_ref())
        );
    }
    Ok(())
}
