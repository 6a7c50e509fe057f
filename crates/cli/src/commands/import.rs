//! `closeout import PATH... [--published D] [--period P] [--organisation ID]
//! [--replace] [--json]`: sends reports to the findings service, which
//! parses, stores and announces them. PATHs are files or folders (searched
//! recursively for `.txt`, `.html`/`.htm` and `.pdf`); each document goes as
//! it is, with its media type, and the service reads it. Reports are sent
//! oldest publication first (read locally), so a later report finds the
//! earlier ones' items to reconcile. A progress bar runs on a terminal; a
//! table at the end says, per file, whether it was imported, unchanged or
//! refused and why. The exit status is non-zero if any was refused.

use std::path::{Path, PathBuf};

use crate::commands::findings::FindingsServer;
use crate::error::CliError;
use crate::output::Table;
use clap::Args;
use closeout_proto::{ImportReportRequest, ImportReportResponse, ReportOverrides};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How deep a folder is searched.
const MAX_DEPTH: usize = 32;

#[derive(Args)]
pub struct ImportArgs {
    /// Report files, or folders to search for .txt, .html/.htm and .pdf files.
    #[arg(required = true)]
    paths: Vec<String>,
    /// Publication date for reports that do not state one (YYYY-MM-DD or YYYY-MM).
    #[arg(long)]
    published: Option<String>,
    /// Inspection period for reports that do not state one (e.g. 2018/19).
    #[arg(long)]
    period: Option<String>,
    /// Inspected organisation's id for reports that do not name one (e.g. avon-and-somerset).
    #[arg(long = "organisation")]
    inspected_organisation: Option<String>,
    /// Replace an existing inspection's content with this document.
    #[arg(long)]
    replace: bool,
    /// Print canonical JSON: for one file its ImportReportResponse, for
    /// several an array of {file, status, response | reason}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: FindingsServer,
}

/// What happened to one file.
enum Outcome {
    Imported(ImportReportResponse),
    Refused(String),
}

struct Row {
    file: String,
    outcome: Outcome,
}

/// Imports every report found under the paths: one file as before (a line,
/// or its ImportReportResponse as JSON, and a refusal as the error), more
/// with a progress bar and a table.
pub async fn run(args: ImportArgs) -> Result<(), CliError> {
    if let [path] = args.paths.as_slice()
        && !Path::new(path).is_dir()
    {
        return import_one(&args, path).await;
    }
    let mut files = Vec::new();
    let mut rows = Vec::new();
    for path in &args.paths {
        match collect(Path::new(path), &mut files, 0) {
            Ok(0) if Path::new(path).is_dir() => rows.push(Row {
                file: path.clone(),
                outcome: Outcome::Refused(
                    "no .txt, .html, .htm or .pdf files in this folder".into(),
                ),
            }),
            Ok(_) => {}
            Err(reason) => rows.push(Row {
                file: path.clone(),
                outcome: Outcome::Refused(reason),
            }),
        }
    }
    files.sort();
    files.dedup();
    let overrides = overrides_of(&args);
    let documents = read_all(files, &overrides, &mut rows);

    let mut client = args.server.client().await?;
    let progress =
        ProgressBar::with_draw_target(Some(documents.len() as u64), ProgressDrawTarget::stderr());
    progress.set_style(
        ProgressStyle::with_template("{spinner} importing [{bar:30}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    for document in documents {
        progress.set_message(document.name.clone());
        let request = args.server.identity.request(ImportReportRequest {
            content: document.bytes,
            media_type: document.media_type.to_string(),
            source_name: document.name.clone(),
            replace: args.replace,
            overrides: Some(overrides.clone()),
            ..Default::default()
        })?;
        let outcome = match client.import_report(request).await {
            Ok(response) => Outcome::Imported(response.into_inner()),
            Err(status) if status.code() == tonic::Code::Unavailable => {
                progress.abandon();
                return Err(status.into());
            }
            Err(status) => Outcome::Refused(status.message().to_string()),
        };
        rows.push(Row {
            file: document.name,
            outcome,
        });
        progress.inc(1);
    }
    progress.finish_and_clear();

    if args.json {
        print_json(&rows)?;
    } else {
        print!("{}", summary(&rows));
    }
    let refused = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Refused(_)))
        .count();
    if refused > 0 {
        return Err(CliError::Other(format!(
            "{refused} of {} reports refused",
            rows.len()
        )));
    }
    Ok(())
}

fn overrides_of(args: &ImportArgs) -> ReportOverrides {
    ReportOverrides {
        published: args.published.clone().unwrap_or_default(),
        period: args.period.clone().unwrap_or_default(),
        organisation: args.inspected_organisation.clone().unwrap_or_default(),
    }
}

/// Imports one file; a refusal is the command's error.
async fn import_one(args: &ImportArgs, path: &str) -> Result<(), CliError> {
    let bytes = std::fs::read(path).map_err(|e| CliError::File {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    let media_type = closeout_document::media_type_of(Path::new(path), &bytes);
    let request = args.server.identity.request(ImportReportRequest {
        content: bytes,
        media_type: media_type.to_string(),
        source_name: path.to_string(),
        replace: args.replace,
        overrides: Some(overrides_of(args)),
        ..Default::default()
    })?;
    let response = args
        .server
        .client()
        .await?
        .import_report(request)
        .await?
        .into_inner();
    if args.json {
        return crate::output::print_json("ImportReportResponse", &response);
    }
    let verb = if response.replaced {
        "replaced"
    } else if response.created {
        "imported"
    } else {
        "already imported"
    };
    println!(
        "{verb} {path} ({}, {}) as inspection {} ({}): {} judgments, {} findings, {} follow-ups, {} indicators",
        response.media_type,
        if response.profile.is_empty() {
            "no profile recognised"
        } else {
            &response.profile
        },
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

/// Adds the report files at `path` (a file, or a folder searched
/// recursively) to `files`; returns how many were added.
fn collect(path: &Path, files: &mut Vec<PathBuf>, depth: usize) -> Result<usize, String> {
    let metadata = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if metadata.is_file() {
        files.push(path.to_path_buf());
        return Ok(1);
    }
    if !metadata.is_dir() {
        return Err("not a file or a folder".into());
    }
    if depth >= MAX_DEPTH {
        return Ok(0);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| e.to_string())?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut added = 0;
    for entry in entries {
        let hidden = entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        // Folders are searched; symbolic links to folders are not followed.
        let Ok(link) = std::fs::symlink_metadata(&entry) else {
            continue;
        };
        if link.is_dir() {
            added += collect(&entry, files, depth + 1)?;
        } else if closeout_document::media_type_for_path(&entry).is_some()
            && !entry.to_string_lossy().ends_with(".md")
            && std::fs::metadata(&entry).is_ok_and(|m| m.is_file())
        {
            files.push(entry);
            added += 1;
        }
    }
    Ok(added)
}

/// A file read and recognised, ready to send.
struct Document {
    name: String,
    bytes: Vec<u8>,
    media_type: &'static str,
    /// Publication date as read locally, for the order of sending.
    published: String,
}

/// Reads every file and orders the documents by publication date (those
/// without one last), then name. A file that cannot be read is refused here.
fn read_all(
    files: Vec<PathBuf>,
    overrides: &ReportOverrides,
    rows: &mut Vec<Row>,
) -> Vec<Document> {
    let options = closeout_report::ParseOptions {
        published: Some(overrides.published.clone()).filter(|s| !s.is_empty()),
        period: Some(overrides.period.clone()).filter(|s| !s.is_empty()),
        organisation: Some(overrides.organisation.clone()).filter(|s| !s.is_empty()),
    };
    let mut documents = Vec::new();
    for path in files {
        let name = path.display().to_string();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                rows.push(Row {
                    file: name,
                    outcome: Outcome::Refused(e.to_string()),
                });
                continue;
            }
        };
        let media_type = closeout_document::media_type_of(&path, &bytes);
        let published = closeout_document::to_text(&bytes, media_type)
            .ok()
            .and_then(|text| closeout_report::parse_with(&text, &options).ok())
            .and_then(|report| report.inspection)
            .map(|i| i.published)
            .unwrap_or_default();
        documents.push(Document {
            name,
            bytes,
            media_type,
            published,
        });
    }
    documents.sort_by(|a, b| {
        (a.published.is_empty(), &a.published, &a.name).cmp(&(
            b.published.is_empty(),
            &b.published,
            &b.name,
        ))
    });
    documents
}

/// The table printed at the end, with totals and any warnings.
fn summary(rows: &[Row]) -> String {
    let mut table = Table::new(&[
        "FILE",
        "STATUS",
        "ORGANISATION",
        "PROFILE",
        "ITEMS",
        "REASON",
    ]);
    let (mut imported, mut unchanged, mut refused) = (0, 0, 0);
    let mut warnings = Vec::new();
    for row in rows {
        match &row.outcome {
            Outcome::Imported(response) => {
                let status = if response.replaced {
                    imported += 1;
                    "replaced"
                } else if response.created {
                    imported += 1;
                    "imported"
                } else {
                    unchanged += 1;
                    "unchanged"
                };
                table.row(vec![
                    row.file.clone(),
                    status.to_string(),
                    response.organisation_id.clone(),
                    response.profile.clone(),
                    response.finding_count.to_string(),
                    String::new(),
                ]);
                for warning in &response.warnings {
                    warnings.push(format!("{}: {warning}", row.file));
                }
            }
            Outcome::Refused(reason) => {
                refused += 1;
                table.row(vec![
                    row.file.clone(),
                    "refused".to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    one_line(reason),
                ]);
            }
        }
    }
    let mut out = table.render();
    out.push_str(&format!(
        "{imported} imported, {unchanged} unchanged, {refused} refused\n"
    ));
    for warning in warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn print_json(rows: &[Row]) -> Result<(), CliError> {
    let mut out = Vec::new();
    for row in rows {
        let value = match &row.outcome {
            Outcome::Imported(response) => {
                let status = if response.replaced {
                    "replaced"
                } else if response.created {
                    "imported"
                } else {
                    "unchanged"
                };
                serde_json::json!({
                    "file": row.file,
                    "status": status,
                    "response": closeout_proto::json::to_json_value_all_fields(
                        "ImportReportResponse",
                        response,
                    )
                    .map_err(|e| CliError::Other(e.to_string()))?,
                })
            }
            Outcome::Refused(reason) => serde_json::json!({
                "file": row.file,
                "status": "refused",
                "reason": reason,
            }),
        };
        out.push(value);
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Array(out))
        .map_err(|e| CliError::Other(e.to_string()))?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_searched_for_reports() {
        let dir = std::env::temp_dir().join(format!("closeout-import-{}", std::process::id()));
        let nested = dir.join("fire/2021");
        std::fs::create_dir_all(&nested).unwrap();
        for name in ["a.txt", "b.HTML", "c.pdf", "notes.toml", ".hidden.txt"] {
            std::fs::write(dir.join(name), "x").unwrap();
        }
        std::fs::write(nested.join("d.htm"), "x").unwrap();
        let mut files = Vec::new();
        assert_eq!(collect(&dir, &mut files, 0), Ok(4));
        let names: Vec<String> = files
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.txt", "b.HTML", "c.pdf", "fire/2021/d.htm"]);
        assert!(collect(&dir.join("missing"), &mut files, 0).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_summary_counts_and_explains() {
        let rows = vec![
            Row {
                file: "a.pdf".into(),
                outcome: Outcome::Imported(ImportReportResponse {
                    created: true,
                    organisation_id: "hertfordshire".into(),
                    profile: "peel-2018-19".into(),
                    finding_count: 7,
                    ..Default::default()
                }),
            },
            Row {
                file: "b.html".into(),
                outcome: Outcome::Refused(
                    "the report does not state\n its publication date".into(),
                ),
            },
        ];
        let text = summary(&rows);
        assert!(
            text.contains("a.pdf   imported  hertfordshire  peel-2018-19  7"),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
        assert!(
            text.contains("does not state its publication date"),
            "{text}"
        );
        assert!(
            text.contains("1 imported, 0 unchanged, 1 refused"),
            "{text}"
        );
    }
}
