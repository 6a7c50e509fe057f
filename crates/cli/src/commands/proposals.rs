//! Commands about reconciliation proposals and lineage across inspections:
//! `proposals` lists what a later inspection says happened to earlier
//! items, `accept` applies a proposal, `reject-proposal` turns it down
//! with a reason, `lineage` shows an item's chain (carried from,
//! superseded by, closed by). (`reject` is the lifecycle command that
//! rejects an item's completion claim; it never touches a proposal.)

use crate::commands::{TrackerServer, every_page};
use crate::error::CliError;
use crate::output::{Table, enum_words, print_json, shorten, status_words as item_status_words};
use crate::parse;
use clap::{Args, Subcommand};
use closeout_proto as pb;

/// The proposal subcommands, flattened into the top-level ones.
#[derive(Subcommand)]
pub enum ProposalCommand {
    /// List reconciliation proposals: what a later inspection says happened
    /// to earlier items.
    Proposals(ProposalsArgs),
    /// Accept a reconciliation proposal, applying it to its item
    /// (inspectorate).
    #[command(disable_version_flag = true)]
    Accept {
        #[command(flatten)]
        target: ProposalTarget,
        /// A note recorded with the decision.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Reject a reconciliation proposal, leaving its item as it is
    /// (inspectorate).
    #[command(disable_version_flag = true)]
    RejectProposal {
        #[command(flatten)]
        target: ProposalTarget,
        /// Why the proposal is wrong, recorded with the decision.
        #[arg(long)]
        reason: String,
    },
    /// Show an item's lineage across inspections.
    Lineage(LineageArgs),
}

#[derive(Args)]
pub struct ProposalsArgs {
    /// Only this organisation's proposals.
    #[arg(long)]
    org: Option<String>,
    /// Only proposals from this (later) inspection.
    #[arg(long)]
    inspection: Option<String>,
    /// Only proposals in this status: pending, accepted, rejected,
    /// auto-accepted.
    #[arg(long)]
    status: Option<String>,
    #[command(flatten)]
    server: TrackerServer,
}

/// The proposal a decision is about.
#[derive(Args)]
pub struct ProposalTarget {
    /// The proposal's id.
    #[arg(value_name = "PROPOSAL")]
    id: String,
    /// The proposal version the decision is based on; fetched if not given.
    #[arg(long = "version", value_name = "N")]
    version: Option<u64>,
    #[command(flatten)]
    server: TrackerServer,
}

#[derive(Args)]
pub struct LineageArgs {
    /// The item's id.
    id: String,
    #[command(flatten)]
    server: TrackerServer,
}

/// Runs one proposal subcommand.
pub async fn run(command: ProposalCommand) -> Result<(), CliError> {
    match command {
        ProposalCommand::Proposals(args) => list(args).await,
        ProposalCommand::Accept { target, note } => accept(target, note).await,
        ProposalCommand::RejectProposal { target, reason } => reject(target, reason).await,
        ProposalCommand::Lineage(args) => lineage(args).await,
    }
}

fn outcome_words(outcome: i32) -> String {
    pb::ProposalOutcome::try_from(outcome)
        .map(|o| enum_words(o.as_str_name(), "PROPOSAL_OUTCOME_"))
        .unwrap_or_else(|_| "unknown".into())
}

fn status_words(status: i32) -> String {
    pb::ProposalStatus::try_from(status)
        .map(|s| enum_words(s.as_str_name(), "PROPOSAL_STATUS_"))
        .unwrap_or_else(|_| "unknown".into())
}

fn relation_words(relation: i32) -> String {
    pb::LinkRelation::try_from(relation)
        .map(|r| enum_words(r.as_str_name(), "LINK_RELATION_"))
        .unwrap_or_else(|_| "unknown".into())
}

fn lines(p: &pb::ReconciliationProposal) -> String {
    match (p.line_start, p.line_end) {
        (0, _) => String::new(),
        (a, b) if a == b => a.to_string(),
        (a, b) => format!("{a}-{b}"),
    }
}

/// Every proposal matching the filters, all pages.
async fn fetch_all(
    server: &TrackerServer,
    request: pb::ListProposalsRequest,
) -> Result<pb::ListProposalsResponse, CliError> {
    let client = server.client().await?;
    let proposals = every_page(|page_token| {
        let mut client = client.clone();
        let request = server.identity.request(pb::ListProposalsRequest {
            page_size: 500,
            page_token,
            ..request.clone()
        });
        async move {
            let page = client.list_proposals(request?).await?.into_inner();
            Ok((page.proposals, page.next_page_token))
        }
    })
    .await?;
    Ok(pb::ListProposalsResponse {
        proposals,
        ..Default::default()
    })
}

/// The proposal with id `id`, if there is one.
pub async fn find(
    server: &TrackerServer,
    id: &str,
) -> Result<Option<pb::ReconciliationProposal>, CliError> {
    let all = fetch_all(server, pb::ListProposalsRequest::default()).await?;
    Ok(all.proposals.into_iter().find(|p| p.id == id.trim()))
}

async fn list(args: ProposalsArgs) -> Result<(), CliError> {
    let status = args
        .status
        .as_deref()
        .map(parse::proposal_status)
        .transpose()?;
    let all = fetch_all(
        &args.server,
        pb::ListProposalsRequest {
            organisation_id: args.org.clone().unwrap_or_default(),
            inspection_id: args.inspection.clone().unwrap_or_default(),
            status: status.map(|s| s as i32).unwrap_or_default(),
            ..Default::default()
        },
    )
    .await?;
    if args.server.json {
        return print_json("ListProposalsResponse", &all);
    }
    let mut table = Table::new(&[
        "PROPOSAL", "ITEM", "OUTCOME", "STATUS", "SCORE", "RULE", "QUOTE", "LINES",
    ]);
    for p in &all.proposals {
        table.row(vec![
            p.id.clone(),
            p.item_id.clone(),
            outcome_words(p.outcome),
            status_words(p.status),
            format!("{:.2}", p.score),
            shorten(&p.rule, 50),
            shorten(p.quotes.first().map(String::as_str).unwrap_or(""), 60),
            lines(p),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

impl ProposalTarget {
    /// The proposal's id as sent.
    fn id(&self) -> String {
        self.id.trim().to_string()
    }

    /// The version to decide on: `--version`, or the proposal's current one.
    async fn version(&self) -> Result<u64, CliError> {
        if let Some(version) = self.version {
            return Ok(version);
        }
        find(&self.server, &self.id)
            .await?
            .map(|p| p.version)
            .ok_or_else(|| CliError::Usage(format!("there is no proposal {:?}", self.id)))
    }
}

fn print_proposal(p: &pb::ReconciliationProposal) {
    println!(
        "proposal {} {} ({}), version {}",
        p.id,
        status_words(p.status),
        outcome_words(p.outcome),
        p.version
    );
    if !p.decision_reason.is_empty() {
        println!("  {}", p.decision_reason);
    }
}

async fn accept(target: ProposalTarget, note: String) -> Result<(), CliError> {
    let server = &target.server;
    let request = pb::AcceptProposalRequest {
        proposal_id: target.id(),
        expected_version: target.version().await?,
        note,
    };
    let response = server
        .client()
        .await?
        .accept_proposal(server.identity.request(request)?)
        .await?
        .into_inner();
    if server.json {
        return print_json("AcceptProposalResponse", &response);
    }
    if let Some(p) = &response.proposal {
        print_proposal(p);
    }
    if let Some(item) = &response.item {
        println!(
            "item {} {}, version {}",
            item.id,
            item_status_words(item.status),
            item.version
        );
    }
    Ok(())
}

async fn reject(target: ProposalTarget, reason: String) -> Result<(), CliError> {
    let server = &target.server;
    let request = pb::RejectProposalRequest {
        proposal_id: target.id(),
        expected_version: target.version().await?,
        reason,
    };
    let response = server
        .client()
        .await?
        .reject_proposal(server.identity.request(request)?)
        .await?
        .into_inner();
    if server.json {
        return print_json("RejectProposalResponse", &response);
    }
    if let Some(p) = &response.proposal {
        print_proposal(p);
    }
    Ok(())
}

async fn lineage(args: LineageArgs) -> Result<(), CliError> {
    let response = args
        .server
        .client()
        .await?
        .get_lineage(args.server.identity.request(pb::GetLineageRequest {
            item_id: args.id.trim().to_string(),
            ..Default::default()
        })?)
        .await?
        .into_inner();
    if args.server.json {
        return print_json("GetLineageResponse", &response);
    }
    let mut items = Table::new(&["ITEM", "INSPECTION", "STATUS", "TEXT"]);
    for i in &response.items {
        items.row(vec![
            i.id.clone(),
            i.inspection_id.clone(),
            item_status_words(i.status),
            shorten(&i.text, 70),
        ]);
    }
    print!("{}", items.render());
    if !response.links.is_empty() {
        println!();
        let mut links = Table::new(&["FROM", "RELATION", "TO", "INSPECTION"]);
        for l in &response.links {
            links.row(vec![
                l.from_item_id.clone(),
                relation_words(l.relation),
                l.to_item_id.clone(),
                l.inspection_id.clone(),
            ]);
        }
        print!("{}", links.render());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_people() {
        assert_eq!(
            outcome_words(pb::ProposalOutcome::PartiallyAddressed as i32),
            "partially addressed"
        );
        assert_eq!(
            relation_words(pb::LinkRelation::ClosedBy as i32),
            "closed by"
        );
        let p = pb::ReconciliationProposal {
            line_start: 3,
            line_end: 5,
            ..Default::default()
        };
        assert_eq!(lines(&p), "3-5");
    }
}
