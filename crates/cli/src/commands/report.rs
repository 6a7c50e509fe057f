//! `closeout report parse FILE [--json|--explain]`: parse a report file
//! locally, with no server, and print a summary, the canonical JSON of
//! ParsedReport, or line by line which profile and rule read what. FILE is
//! plain text, a saved web page (.html/.htm) or a PDF; `closeout report text
//! FILE` prints the text the parser reads from it (the lines `--explain`
//! numbers).

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
        /// The report: plain text, a saved web page (.html/.htm) or a PDF.
        file: String,
        /// Print the canonical proto3 JSON of ParsedReport.
        #[arg(long)]
        json: bool,
        /// Show, line by line, which profile and rule produced each
        /// judgment, finding and follow-up, and which lines were read as
        /// boilerplate (line numbers of `closeout report text FILE`).
        #[arg(long, conflicts_with = "json")]
        explain: bool,
        #[command(flatten)]
        overrides: Overrides,
    },
    /// Print the text the parser reads from a report file (a web page's or
    /// PDF's text as lines, paragraphs, list items and tab-separated rows).
    Text {
        /// The report: plain text, a saved web page (.html/.htm) or a PDF.
        file: String,
    },
}

/// What the person knows that the report does not state.
#[derive(Args)]
struct Overrides {
    /// Publication date, for a report that does not state one (YYYY-MM-DD or YYYY-MM).
    #[arg(long)]
    published: Option<String>,
    /// Inspection period, for a report that does not state one (e.g. 2018/19).
    #[arg(long)]
    period: Option<String>,
    /// Inspected organisation's id, for a report that does not name one.
    #[arg(long)]
    organisation: Option<String>,
}

/// Reads a report file of any supported kind as the text the parser reads,
/// naming the file in any error.
pub fn read_document(path: &str) -> Result<String, CliError> {
    let bytes = std::fs::read(path).map_err(|e| CliError::File {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    let media_type = closeout_document::media_type_of(std::path::Path::new(path), &bytes);
    closeout_document::to_text(&bytes, media_type).map_err(|e| CliError::File {
        path: path.to_string(),
        reason: e.to_string(),
    })
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
        ReportCommand::Parse {
            file,
            json,
            explain,
            overrides,
        } => {
            let text = read_document(&file)?;
            let options = closeout_report::ParseOptions {
                published: overrides.published,
                period: overrides.period,
                organisation: overrides.organisation,
            };
            let report =
                closeout_report::parse_with(&text, &options).map_err(|e| CliError::Parse {
                    path: file.clone(),
                    reason: e.to_string(),
                })?;
            if json {
                crate::output::print_json("ParsedReport", &report)
            } else if explain {
                print!("{}", closeout_report::render_explanation(&report));
                Ok(())
            } else {
                print!("{}", closeout_report::render_summary(&report));
                Ok(())
            }
        }
        ReportCommand::Text { file } => {
            print!("{}", read_document(&file)?);
            Ok(())
        }
    }
}
