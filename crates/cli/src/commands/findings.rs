//! Commands that read the findings service: `inspections` and
//! `findings`; and where the findings service is (also used by `import`).

use crate::commands::{Identity, every_page};
use crate::error::CliError;
use crate::output::{Table, kind_words, print_json};
use crate::parse;
use clap::Args;
use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::{
    ListFindingsRequest, ListFindingsResponse, ListInspectionsRequest, ListInspectionsResponse,
};
use tonic::transport::Channel;

/// Where the findings service is.
#[derive(Args, Clone, Debug)]
pub struct FindingsServer {
    /// Findings service address (host:port: TLS when a CA is known).
    #[arg(
        long,
        env = "CLOSEOUT_FINDINGS_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub addr: String,
    #[command(flatten)]
    pub identity: Identity,
}

impl FindingsServer {
    /// A client of the findings service.
    pub async fn client(&self) -> Result<FindingsServiceClient<Channel>, CliError> {
        Ok(
            FindingsServiceClient::new(self.identity.connect(&self.addr).await?)
                .max_decoding_message_size(64 * 1024 * 1024),
        )
    }
}

#[derive(Args)]
pub struct InspectionsArgs {
    /// Only this organisation's inspections.
    #[arg(long)]
    org: Option<String>,
    /// Print canonical JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: FindingsServer,
}

pub async fn inspections(args: InspectionsArgs) -> Result<(), CliError> {
    let client = args.server.client().await?;
    let inspections = every_page(|page_token| {
        let mut client = client.clone();
        let request = args.server.identity.request(ListInspectionsRequest {
            organisation_id: args.org.clone().unwrap_or_default(),
            page_size: 200,
            page_token,
            ..Default::default()
        });
        async move {
            let page = client.list_inspections(request?).await?.into_inner();
            Ok((page.inspections, page.next_page_token))
        }
    })
    .await?;
    let all = ListInspectionsResponse {
        inspections,
        ..Default::default()
    };
    if args.json {
        return print_json("ListInspectionsResponse", &all);
    }
    let mut table = Table::new(&[
        "ID",
        "ORGANISATION",
        "PROGRAMME",
        "PERIOD",
        "PUBLISHED",
        "FINDINGS",
        "SOURCE",
    ]);
    for i in &all.inspections {
        table.row(vec![
            i.id.clone(),
            i.organisation_id.clone(),
            i.programme.clone(),
            i.period.clone(),
            i.published.clone(),
            i.finding_count.to_string(),
            i.source_name.clone(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

#[derive(Args)]
pub struct FindingsArgs {
    /// Only this organisation's findings.
    #[arg(long)]
    org: Option<String>,
    /// Only this inspection's findings.
    #[arg(long)]
    inspection: Option<String>,
    /// Only this kind: area-for-improvement, cause-of-concern,
    /// recommendation, national-recommendation, noteworthy-practice.
    #[arg(long)]
    kind: Option<String>,
    /// Print canonical JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: FindingsServer,
}

pub async fn findings(args: FindingsArgs) -> Result<(), CliError> {
    let kind = args.kind.as_deref().map(parse::finding_kind).transpose()?;
    let client = args.server.client().await?;
    let findings = every_page(|page_token| {
        let mut client = client.clone();
        let request = args.server.identity.request(ListFindingsRequest {
            organisation_id: args.org.clone().unwrap_or_default(),
            inspection_id: args.inspection.clone().unwrap_or_default(),
            kind: kind.map(|k| k as i32).unwrap_or_default(),
            page_size: 200,
            page_token,
            ..Default::default()
        });
        async move {
            let page = client.list_findings(request?).await?.into_inner();
            Ok((page.findings, page.next_page_token))
        }
    })
    .await?;
    let all = ListFindingsResponse {
        findings,
        ..Default::default()
    };
    if args.json {
        return print_json("ListFindingsResponse", &all);
    }
    for (n, f) in all.findings.iter().enumerate() {
        let kind = kind_words(f.kind);
        let due = f
            .due_date
            .as_ref()
            .map(|d| format!(" — due {}", d.iso()))
            .unwrap_or_default();
        println!(
            "{:>2}. [{}] {} / {} ({}){}\n    {}\n    id {}",
            n + 1,
            kind,
            f.pillar,
            f.question,
            f.organisation_id,
            due,
            f.text,
            f.id
        );
    }
    if all.findings.is_empty() {
        println!("no findings");
    }
    Ok(())
}
