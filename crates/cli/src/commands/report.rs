//! `closeout report parse FILE [--json]`: parse a report file locally, with
//! no server, and print a summary or the canonical JSON of ParsedReport.

use crate::error::CliError;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Parse a report and print what was found.
    Parse {
        /// The report, as text.
        file: String,
        /// Print the canonical proto3 JSON of ParsedReport.
        #[arg(long)]
        json: bool,
    },
}

/// Reads a report file as UTF-8 text, naming the file in any error.
pub fn read_report(path: &str) -> Result<String, CliError> {
    let bytes = std::fs::read(path).map_err(|e| CliError::File {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| CliError::File {
        path: path.to_string(),
        reason: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

pub fn run(args: ReportArgs) -> Result<(), CliError> {
    match args.command {
        ReportCommand::Parse { file, json } => {
            let text = read_report(&file)?;
            let report = closeout_report::parse(&text).map_err(|e| CliError::Parse {
                path: file.clone(),
                reason: e.to_string(),
            })?;
            if json {
                crate::output::print_json("ParsedReport", &report)
            } else {
                print!("{}", closeout_report::render_summary(&report));
                Ok(())
            }
        }
    }
}
