//! `closeout import FILE [--replace] [--json]`: sends a report to the
//! findings service, which parses, stores and announces it, and prints
//! what was stored.

use crate::commands::findings::FindingsServer;
use crate::error::CliError;
use crate::output::print_json;
use clap::Args;
use closeout_proto::ImportReportRequest;

#[derive(Args)]
pub struct ImportArgs {
    /// The report file, as text.
    file: String,
    /// Replace an existing inspection's content with this document.
    #[arg(long)]
    replace: bool,
    /// Print canonical JSON instead of a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: FindingsServer,
}

/// Imports one report file.
pub async fn run(args: ImportArgs) -> Result<(), CliError> {
    let text = crate::commands::report::read_report(&args.file)?;
    let request = args.server.identity.request(ImportReportRequest {
        text,
        source_name: args.file.clone(),
        replace: args.replace,
        ..Default::default()
    })?;
    let response = args.server.client().await?.import_report(request).await?;
    let response = response.into_inner();
    if args.json {
        return print_json("ImportReportResponse", &response);
    }
    let verb = if response.replaced {
        "replaced"
    } else if response.created {
        "imported"
    } else {
        "already imported"
    };
    println!(
        "{verb} {} as inspection {} ({}): {} judgments, {} findings, {} follow-ups, {} indicators",
        args.file,
        response.inspection_id,
        response.organisation_id,
        response.judgment_count,
        response.finding_count,
        response.follow_up_count,
        response.indicator_count
    );
    for warning in &response.warnings {
        println!("warning: {warning}");
    }
    Ok(())
}
