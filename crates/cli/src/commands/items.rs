//! Commands that read tracked items: `items` lists them, `item` shows one,
//! `history` shows every event of one (what, who, when, why).

use crate::commands::{TrackerServer, every_page};
use crate::error::CliError;
use crate::output::{Table, date_words, kind_words, print_json, shorten, status_words, time_words};
use crate::parse;
use clap::{Args, Subcommand};
use closeout_proto::event_envelope::Payload;
use closeout_proto::{self as pb};

/// The item queries, flattened into the top-level commands.
#[derive(Subcommand)]
pub enum ItemCommand {
    /// List tracked items.
    Items(ItemsArgs),
    /// Show one tracked item.
    Item(ItemArgs),
    /// Show an item's history: what, who, when, why.
    History(ItemArgs),
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

/// Runs one item query.
pub async fn run(command: ItemCommand) -> Result<(), CliError> {
    match command {
        ItemCommand::Items(args) => items(args).await,
        ItemCommand::Item(args) => item(args).await,
        ItemCommand::History(args) => history(args).await,
    }
}

async fn items(args: ItemsArgs) -> Result<(), CliError> {
    let statuses = parse::item_statuses(&args.status)?;
    let kind = args.kind.as_deref().map(parse::finding_kind).transpose()?;
    let client = args.server.client().await?;
    let items = every_page(|page_token| {
        let mut client = client.clone();
        let request = args.server.identity.request(pb::ListItemsRequest {
            organisation_id: args.org.clone().unwrap_or_default(),
            statuses: statuses.clone(),
            kind: kind.map(|k| k as i32).unwrap_or_default(),
            inspection_id: args.inspection.clone().unwrap_or_default(),
            overdue_only: args.overdue,
            page_size: 200,
            page_token,
        });
        async move {
            let page = client.list_items(request?).await?.into_inner();
            Ok((page.items, page.next_page_token))
        }
    })
    .await?;
    let all = pb::ListItemsResponse {
        items,
        ..Default::default()
    };
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
    let item = args.server.item(&args.id).await?;
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
                status_words(s.from_status),
                status_words(s.to_status),
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
        Payload::ItemOrganisationChanged(c) => format!(
            "organisation {} → {}",
            c.previous_organisation_id, c.organisation_id
        ),
        _ => String::new(),
    }
    .trim()
    .to_string()
}

/// The event's type without the package: `StatusChanged`.
pub fn event_name(event: &pb::EventEnvelope) -> String {
    event
        .event_type
        .trim_start_matches("closeout.v1.")
        .to_string()
}

async fn history(args: ItemArgs) -> Result<(), CliError> {
    let client = args.server.client().await?;
    let events = every_page(|page_token| {
        let mut client = client.clone();
        let request = args.server.identity.request(pb::GetItemHistoryRequest {
            item_id: args.id.clone(),
            page_size: 500,
            page_token,
        });
        async move {
            let page = client.get_item_history(request?).await?.into_inner();
            Ok((page.events, page.next_page_token))
        }
    })
    .await?;
    let all = pb::GetItemHistoryResponse {
        events,
        ..Default::default()
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_to_another_organisation_reads_as_one() {
        let moved = Payload::ItemOrganisationChanged(pb::ItemOrganisationChanged {
            item_id: "i".into(),
            organisation_id: "kent-fire".into(),
            previous_organisation_id: "kent".into(),
            reason: "organisation kent renamed kent-fire".into(),
        });
        assert_eq!(describe(Some(&moved)), "organisation kent → kent-fire");
    }
}
