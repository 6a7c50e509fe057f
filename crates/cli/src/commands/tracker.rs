//! Commands against the tracker service: list and show items, their
//! history, move them through their lifecycle, and watch changes.
//!
//! `items`, `item`, `history`, `assign`, `due`, `start`, `note`, `claim`,
//! `verify`, `reject`, `supersede`, `reopen`, `watch`. Mutating commands
//! send the item's version: the one given with `--version`, or the one the
//! item has when the command fetches it first.

use crate::commands::findings::parse_kind;
use crate::commands::{Identity, connect};
use crate::error::CliError;
use crate::output::{Table, enum_words, print_json};
use clap::{Args, Subcommand};
use closeout_proto::event_envelope::Payload;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use closeout_proto::{self as pb, ItemStatus};
use tonic::transport::Channel;

/// Where the tracker service is, who acts, and how to print.
#[derive(Args, Clone, Debug)]
pub struct TrackerServer {
    /// Tracker service address.
    #[arg(
        long,
        env = "CLOSEOUT_TRACKER_ADDR",
        default_value = "http://127.0.0.1:50052"
    )]
    pub addr: String,
    /// Print canonical JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub identity: Identity,
}

impl TrackerServer {
    async fn client(&self) -> Result<TrackerServiceClient<Channel>, CliError> {
        Ok(TrackerServiceClient::new(connect(&self.addr).await?))
    }
}

/// What a mutating command acts on.
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

/// The tracker's subcommands, flattened into the top-level ones.
#[derive(Subcommand)]
pub enum TrackerCommand {
    /// List tracked items.
    Items(ItemsArgs),
    /// Show one tracked item.
    Item(ItemArgs),
    /// Show an item's history: what, who, when, why.
    History(ItemArgs),
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
    /// Claim an item complete, with evidence (inspected body).
    #[command(disable_version_flag = true)]
    Claim {
        #[command(flatten)]
        target: Target,
        /// What the evidence is.
        #[arg(long)]
        evidence: String,
        /// Where the evidence document is.
        #[arg(long, default_value = "")]
        uri: String,
        /// Hex sha256 of the evidence document.
        #[arg(long, default_value = "")]
        sha256: String,
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
    },
    /// Reject an item's completion claim, or a reconciliation proposal
    /// when given a proposal's id (inspectorate).
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
    /// Follow item changes as they happen (Ctrl-C to stop).
    Watch(WatchArgs),
}

#[derive(Args)]
pub struct ItemsArgs {
    /// Only this organisation's items.
    #[arg(long)]
    org: Option<String>,
    /// Only items in this status (repeatable): open, in-progress,
    /// awaiting-verification, closed, superseded.
    #[arg(long)]
    status: Vec<String>,
    /// Only this kind of finding, e.g. area-for-improvement.
    #[arg(long)]
    kind: Option<String>,
    /// Only this inspection's items.
    #[arg(long)]
    inspection: Option<String>,
    /// Only items past their due date and still open.
    #[arg(long)]
    overdue: bool,
    #[command(flatten)]
    server: TrackerServer,
}

#[derive(Args)]
pub struct ItemArgs {
    /// The item's id.
    id: String,
    #[command(flatten)]
    server: TrackerServer,
}

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

/// Runs one tracker subcommand.
pub async fn run(command: TrackerCommand) -> Result<(), CliError> {
    match command {
        TrackerCommand::Items(args) => items(args).await,
        TrackerCommand::Item(args) => item(args).await,
        TrackerCommand::History(args) => history(args).await,
        TrackerCommand::Watch(args) => watch(args).await,
        TrackerCommand::Reject { target, reason } => {
            let proposal = crate::commands::proposals::reject_if_proposal(
                &target.server,
                &target.id,
                target.version,
                &reason,
            )
            .await?;
            if proposal {
                return Ok(());
            }
            mutate(TrackerCommand::Reject { target, reason }).await
        }
        mutation => mutate(mutation).await,
    }
}

/// Parses a status as typed: `in-progress`, `IN_PROGRESS`, `in progress`.
pub fn parse_status(text: &str) -> Result<ItemStatus, CliError> {
    let name = format!(
        "ITEM_STATUS_{}",
        text.trim().to_ascii_uppercase().replace(['-', ' '], "_")
    );
    ItemStatus::from_str_name(&name)
        .filter(|s| *s != ItemStatus::Unspecified)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "--status {text:?} is not one of open, in-progress, awaiting-verification, closed, superseded"
            ))
        })
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<pb::CalendarDate, CliError> {
    let bad = || CliError::Usage(format!("{text:?} is not a date (YYYY-MM-DD)"));
    let parts: Vec<&str> = text.trim().split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (year, month, day) = (
        y.parse::<i32>().map_err(|_| bad())?,
        m.parse::<u32>().map_err(|_| bad())?,
        d.parse::<u32>().map_err(|_| bad())?,
    );
    if y.len() != 4 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    Ok(pb::CalendarDate::new(year, month, day))
}

fn statuses(texts: &[String]) -> Result<Vec<i32>, CliError> {
    texts
        .iter()
        .map(|t| parse_status(t).map(|s| s as i32))
        .collect()
}

fn status_words(status: i32) -> String {
    ItemStatus::try_from(status)
        .map(|s| enum_words(s.as_str_name(), "ITEM_STATUS_"))
        .unwrap_or_else(|_| "unknown".into())
}

fn kind_words(kind: i32) -> String {
    pb::FindingKind::try_from(kind)
        .map(|k| enum_words(k.as_str_name(), "FINDING_KIND_"))
        .unwrap_or_else(|_| "unknown".into())
}

fn date_words(date: Option<&pb::CalendarDate>) -> String {
    date.map(pb::CalendarDate::iso).unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SSZ` of a timestamp (UTC).
pub fn time_words(seconds: Option<i64>) -> String {
    let Some(seconds) = seconds else {
        return String::new();
    };
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn shorten(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max {
        text
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

async fn items(args: ItemsArgs) -> Result<(), CliError> {
    let statuses = statuses(&args.status)?;
    let kind = args.kind.as_deref().map(parse_kind).transpose()?;
    let mut client = args.server.client().await?;
    let mut all = pb::ListItemsResponse::default();
    let mut page_token = String::new();
    loop {
        let request = args.server.identity.request(pb::ListItemsRequest {
            organisation_id: args.org.clone().unwrap_or_default(),
            statuses: statuses.clone(),
            kind: kind.map(|k| k as i32).unwrap_or_default(),
            inspection_id: args.inspection.clone().unwrap_or_default(),
            overdue_only: args.overdue,
            page_size: 200,
            page_token: page_token.clone(),
        })?;
        let page = client.list_items(request).await?.into_inner();
        all.items.extend(page.items);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if args.server.json {
        return print_json("ListItemsResponse", &all);
    }
    let mut table = Table::new(&[
        "ID",
        "ORGANISATION",
        "KIND",
        "STATUS",
        "OWNER",
        "DUE",
        "VERSION",
        "TEXT",
    ]);
    for i in &all.items {
        let due = match (date_words(i.due_date.as_ref()), i.overdue) {
            (due, true) => format!("{due} (overdue)"),
            (due, false) => due,
        };
        table.row(vec![
            i.id.clone(),
            i.organisation_id.clone(),
            kind_words(i.kind),
            status_words(i.status),
            i.owner.clone(),
            due,
            i.version.to_string(),
            shorten(&i.text, 60),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

async fn get(server: &TrackerServer, id: &str) -> Result<pb::TrackedItem, CliError> {
    let request = server.identity.request(pb::GetItemRequest {
        item_id: id.to_string(),
    })?;
    server
        .client()
        .await?
        .get_item(request)
        .await?
        .into_inner()
        .item
        .ok_or_else(|| CliError::Other("the server answered without the item".into()))
}

fn print_item(item: &pb::TrackedItem) {
    let lines = [
        ("id", item.id.clone()),
        ("organisation", item.organisation_id.clone()),
        ("kind", kind_words(item.kind)),
        ("status", status_words(item.status)),
        ("version", item.version.to_string()),
        ("owner", item.owner.clone()),
        ("due", date_words(item.due_date.as_ref())),
        ("overdue", if item.overdue { "yes" } else { "no" }.into()),
        ("pillar", item.pillar.clone()),
        ("question", item.question.clone()),
        ("finding", item.finding_id.clone()),
        ("inspection", item.inspection_id.clone()),
        ("opened", time_words(item.opened_at.map(|t| t.seconds))),
        ("updated", time_words(item.updated_at.map(|t| t.seconds))),
        ("closure reference", item.closure_reference.clone()),
        ("superseded by", item.superseded_by_item_id.clone()),
    ];
    for (label, value) in lines {
        if !value.is_empty() {
            println!("{label:<18} {value}");
        }
    }
    for (n, e) in item.evidence.iter().enumerate() {
        println!(
            "{:<18} {} {} {}",
            format!("evidence {}", n + 1),
            e.description,
            e.uri,
            e.sha256
        );
    }
    println!("\n{}", item.text);
}

async fn item(args: ItemArgs) -> Result<(), CliError> {
    let item = get(&args.server, &args.id).await?;
    if args.server.json {
        return print_json("TrackedItem", &item);
    }
    print_item(&item);
    Ok(())
}

/// One line describing an event's payload.
pub fn describe(payload: Option<&Payload>) -> String {
    let Some(payload) = payload else {
        return String::new();
    };
    match payload {
        Payload::ItemOpened(o) => format!(
            "{} for {}, due {}",
            kind_words(o.kind),
            o.organisation_id,
            date_words(o.due_date.as_ref())
        ),
        Payload::StatusChanged(s) => {
            let mut text = format!(
                "{} → {} ({})",
                status_words(s.from),
                status_words(s.to),
                s.command
            );
            if !s.reason.is_empty() {
                text.push_str(&format!(": {}", s.reason));
            }
            text
        }
        Payload::OwnerAssigned(o) => format!("owner {}", o.owner),
        Payload::DueDateChanged(d) => format!(
            "due {} (was {}) {}",
            date_words(d.due_date.as_ref()),
            date_words(d.previous_due_date.as_ref()),
            d.reason
        ),
        Payload::ProgressNoted(p) => p.note.clone(),
        Payload::CompletionClaimed(c) => {
            let e = c.evidence.clone().unwrap_or_default();
            format!("evidence: {} {} {}", e.description, e.uri, c.note)
        }
        Payload::ClaimRejected(r) => r.reason.clone(),
        Payload::ItemVerified(v) => format!("closed: {}", v.closure_reference),
        Payload::ItemSuperseded(s) => {
            format!("by finding {} {}", s.superseding_finding_id, s.reason)
        }
        Payload::ItemReopened(r) => r.reason.clone(),
        Payload::ItemOverdue(o) => format!("was due {}", date_words(o.due_date.as_ref())),
        _ => String::new(),
    }
    .trim()
    .to_string()
}

fn event_name(event: &pb::EventEnvelope) -> String {
    event
        .event_type
        .trim_start_matches("closeout.v1.")
        .to_string()
}

async fn history(args: ItemArgs) -> Result<(), CliError> {
    let mut client = args.server.client().await?;
    let mut all = pb::GetItemHistoryResponse::default();
    let mut page_token = String::new();
    loop {
        let request = args.server.identity.request(pb::GetItemHistoryRequest {
            item_id: args.id.clone(),
            page_size: 500,
            page_token: page_token.clone(),
        })?;
        let page = client.get_item_history(request).await?.into_inner();
        all.events.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if args.server.json {
        return print_json("GetItemHistoryResponse", &all);
    }
    let mut table = Table::new(&["VERSION", "WHEN", "EVENT", "WHO", "DETAILS"]);
    for e in &all.events {
        table.row(vec![
            e.aggregate_version.to_string(),
            time_words(e.occurred_at.map(|t| t.seconds)),
            event_name(e),
            e.actor
                .as_ref()
                .map(|a| a.subject.clone())
                .unwrap_or_default(),
            describe(e.payload.as_ref()),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

/// The version to send: `--version`, or the item's current one.
async fn version_of(target: &Target) -> Result<u64, CliError> {
    match target.version {
        Some(version) => Ok(version),
        None => Ok(get(&target.server, &target.id).await?.version),
    }
}

async fn mutate(command: TrackerCommand) -> Result<(), CliError> {
    use TrackerCommand as C;
    let (target, verb) = match &command {
        C::Assign { target, .. } => (target, "assigned"),
        C::Due { target, .. } => (target, "due date set"),
        C::Start { target, .. } => (target, "started"),
        C::Note { target, .. } => (target, "noted"),
        C::Claim { target, .. } => (target, "claimed complete"),
        C::Verify { target, .. } => (target, "verified"),
        C::Reject { target, .. } => (target, "claim rejected"),
        C::Supersede { target, .. } => (target, "superseded"),
        C::Reopen { target, .. } => (target, "reopened"),
        C::Items(_) | C::Item(_) | C::History(_) | C::Watch(_) => {
            return Err(CliError::Usage("not a lifecycle command".into()));
        }
    };
    let item_id = target.id.clone();
    let expected_version = version_of(target).await?;
    let server = &target.server;
    let mut client = server.client().await?;
    let identity = &server.identity;
    let item = match &command {
        C::Assign { owner, .. } => {
            client
                .assign_owner(identity.request(pb::AssignOwnerRequest {
                    item_id,
                    expected_version,
                    owner: owner.clone(),
                })?)
                .await?
                .into_inner()
                .item
        }
        C::Due { date, reason, .. } => {
            client
                .set_due_date(identity.request(pb::SetDueDateRequest {
                    item_id,
                    expected_version,
                    due_date: Some(parse_date(date)?),
                    reason: reason.clone(),
                })?)
                .await?
                .into_inner()
                .item
        }
        C::Start { note, .. } => {
            client
                .start_item(identity.request(pb::StartItemRequest {
                    item_id,
                    expected_version,
                    note: note.clone(),
                })?)
                .await?
                .into_inner()
                .item
        }
        C::Note { text, .. } => {
            client
                .note_progress(identity.request(pb::NoteProgressRequest {
                    item_id,
                    expected_version,
                    note: text.clone(),
                })?)
                .await?
                .into_inner()
                .item
        }
        C::Claim {
            evidence,
            uri,
            sha256,
            note,
            ..
        } => {
            client
                .claim_completion(identity.request(pb::ClaimCompletionRequest {
                    item_id,
                    expected_version,
                    evidence: Some(pb::Evidence {
                        description: evidence.clone(),
                        uri: uri.clone(),
                        sha256: sha256.clone(),
                    }),
                    note: note.clone(),
                })?)
                .await?
                .into_inner()
                .item
        }
        C::Verify { reference, .. } => {
            client
                .verify_item(identity.request(pb::VerifyItemRequest {
                    item_id,
                    expected_version,
                    closure_reference: reference.clone(),
                })?)
                .await?
                .into_inner()
                .item
        }
        C::Reject { reason, .. } => {
            client
                .reject_claim(identity.request(pb::RejectClaimRequest {
                    item_id,
                    expected_version,
                    reason: reason.clone(),
                })?)
                .await?
                .into_inner()
                .item
        }
        C::Supersede { by, reason, .. } => {
            client
                .supersede_item(identity.request(pb::SupersedeItemRequest {
                    item_id,
                    expected_version,
                    superseding_finding_id: by.clone(),
                    reason: reason.clone(),
                })?)
                .await?
                .into_inner()
                .item
        }
        C::Reopen { reason, .. } => {
            client
                .reopen_item(identity.request(pb::ReopenItemRequest {
                    item_id,
                    expected_version,
                    reason: reason.clone(),
                })?)
                .await?
                .into_inner()
                .item
        }
        C::Items(_) | C::Item(_) | C::History(_) | C::Watch(_) => None,
    };
    let item =
        item.ok_or_else(|| CliError::Other("the server answered without the item".into()))?;
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

async fn watch(args: WatchArgs) -> Result<(), CliError> {
    let request = args.server.identity.request(pb::WatchItemsRequest {
        organisation_id: args.org.clone().unwrap_or_default(),
        statuses: statuses(&args.status)?,
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
            let value = closeout_proto::json::to_json_value("WatchItemsResponse", &change)
                .map_err(|e| CliError::Other(e.to_string()))?;
            println!("{value}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    #[command(version, propagate_version = true)]
    struct Cli {
        #[command(subcommand)]
        command: TrackerCommand,
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["closeout", "assign", "abc", "Jo", "--version", "3"])
            .expect("parses");
        match cli.command {
            TrackerCommand::Assign { target, owner } => {
                assert_eq!(
                    (target.id.as_str(), target.version, owner.as_str()),
                    ("abc", Some(3), "Jo")
                );
            }
            _ => panic!("parsed as another command"),
        }
    }

    #[test]
    fn parses_statuses_and_dates() {
        assert_eq!(parse_status("in-progress").unwrap(), ItemStatus::InProgress);
        assert_eq!(
            parse_status("AWAITING_VERIFICATION").unwrap(),
            ItemStatus::AwaitingVerification
        );
        assert!(parse_status("unspecified").is_err());
        assert_eq!(
            parse_date("2020-03-31").unwrap(),
            pb::CalendarDate::new(2020, 3, 31)
        );
        assert!(parse_date("31/03/2020").is_err());
        assert!(parse_date("2020-13-01").is_err());
    }

    #[test]
    fn formats_times_in_utc() {
        assert_eq!(time_words(Some(1_568_246_400)), "2019-09-12 00:00:00Z");
        assert_eq!(time_words(Some(0)), "1970-01-01 00:00:00Z");
        assert_eq!(time_words(None), "");
    }
}
