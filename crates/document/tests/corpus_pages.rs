//! Every document of the layout corpus (`crates/report/tests/fixtures/corpus`,
//! one folder per profile), marked up here as a page saved from the
//! inspectorate's site — cookie banner, header, menu, breadcrumbs, footer,
//! "Last updated" in the page's metadata block, paragraphs (lines with no
//! blank line between them as one paragraph broken by `<br>`), lists and
//! tables — reads as its text does: same profile, organisation, inspection,
//! judgments, findings, follow-ups and indicators (line numbers aside).

use std::path::{Path, PathBuf};

use closeout_proto::ParsedReport;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../report/tests/fixtures/corpus")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The marker of a list item line ("- ", "• ", "1. "), if any.
fn item(line: &str) -> Option<(bool, &str)> {
    for marker in ["- ", "• ", "– "] {
        if let Some(rest) = line.strip_prefix(marker) {
            return Some((false, rest));
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=2).contains(&digits) {
        if let Some(rest) = line[digits..].strip_prefix(". ") {
            return Some((true, rest));
        }
    }
    None
}

/// The text as a saved web page.
fn page(text: &str) -> String {
    let mut out = String::from(
        "<!DOCTYPE html><html lang=\"en-GB\"><head><meta charset=\"utf-8\"><title>Report</title>\
         <script>window.dataLayer=[];</script></head><body>\
         <div class=\"cookie-banner\"><p>We use cookies.</p><button>Accept</button></div>\
         <header class=\"site-header\"><nav><ul><li><a href=\"/\">Home</a></li>\
         <li><a href=\"/frs/\">Fire and rescue services</a></li></ul></nav></header>\
         <nav class=\"breadcrumbs\"><ol><li>Home</li><li>Assessments</li></ol></nav>\
         <main><article>\n",
    );
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        if trimmed.is_empty() {
            i += 1;
            continue;
        }
        if line.contains('\t') {
            out.push_str("<table>");
            while i < lines.len() && lines[i].contains('\t') {
                out.push_str("<tr>");
                for cell in lines[i].split('\t') {
                    out.push_str(&format!("<td>{}</td>", escape(cell.trim())));
                }
                out.push_str("</tr>\n");
                i += 1;
            }
            out.push_str("</table>\n");
            continue;
        }
        if let Some((ordered, _)) = item(trimmed) {
            let tag = if ordered { "ol" } else { "ul" };
            out.push_str(&format!("<{tag}>"));
            while i < lines.len() {
                match item(lines[i].trim()) {
                    Some((o, rest)) if o == ordered => {
                        out.push_str(&format!("<li>{}</li>\n", escape(rest)));
                        i += 1;
                    }
                    _ => break,
                }
            }
            out.push_str(&format!("</{tag}>\n"));
            continue;
        }
        if trimmed.starts_with("Last updated") {
            out.push_str(&format!(
                "<div class=\"page-meta\"><p class=\"last-updated\">{}</p></div>\n",
                escape(trimmed)
            ));
            i += 1;
            continue;
        }
        // Lines with no blank line between them (a grade and the questions
        // under it) stay together: one block, a <br> between lines.
        let mut block = vec![escape(trimmed)];
        i += 1;
        while i < lines.len() {
            let next = lines[i].trim();
            if next.is_empty()
                || lines[i].contains('\t')
                || item(next).is_some()
                || next.starts_with("Last updated")
            {
                break;
            }
            block.push(escape(next));
            i += 1;
        }
        out.push_str(&format!("<p>{}</p>\n", block.join("<br>\n")));
    }
    out.push_str(
        "</article></main><footer class=\"site-footer\"><p>© Crown copyright</p></footer>\
         </body></html>\n",
    );
    out
}

fn without_lines(mut report: ParsedReport) -> ParsedReport {
    for f in &mut report.findings {
        f.line_start = 0;
        f.line_end = 0;
    }
    for f in &mut report.follow_ups {
        f.line_start = 0;
        f.line_end = 0;
    }
    for i in &mut report.indicators {
        i.line = 0;
    }
    report.explanations.clear();
    // Warnings quote line numbers ("the cause of concern at line 27 …").
    report.warnings = report
        .warnings
        .iter()
        .map(|w| {
            w.split_whitespace()
                .filter(|word| !word.bytes().all(|b| b.is_ascii_digit()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    report
}

#[test]
fn every_corpus_document_reads_the_same_as_a_saved_web_page() {
    let mut documents: Vec<PathBuf> = Vec::new();
    for profile in std::fs::read_dir(corpus()).expect("the corpus folder") {
        let dir = profile.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "txt") {
                documents.push(path);
            }
        }
    }
    documents.sort();
    assert!(documents.len() >= 10, "{documents:?}");
    let mut compared = 0;
    for path in &documents {
        let text = std::fs::read_to_string(path).unwrap();
        let Ok(expected) = closeout_report::parse(&text) else {
            continue;
        };
        let html = page(&text);
        let read = closeout_document::to_text(html.as_bytes(), "text/html")
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let actual = closeout_report::parse(&read)
            .unwrap_or_else(|e| panic!("{}: {e}\n{read}", path.display()));
        let (expected, actual) = (without_lines(expected), without_lines(actual));
        let name = path.display().to_string();
        assert_eq!(expected.profile, actual.profile, "{name}: profile");
        assert_eq!(
            expected.organisation, actual.organisation,
            "{name}: organisation"
        );
        assert_eq!(expected.inspection, actual.inspection, "{name}: inspection");
        assert_eq!(expected.pillars, actual.pillars, "{name}: pillars");
        assert_eq!(expected.judgments, actual.judgments, "{name}: judgments");
        assert_eq!(expected.findings, actual.findings, "{name}: findings");
        assert_eq!(expected.follow_ups, actual.follow_ups, "{name}: follow-ups");
        assert_eq!(expected.indicators, actual.indicators, "{name}: indicators");
        assert_eq!(expected, actual, "{name}");
        compared += 1;
    }
    println!(
        "{compared} of {} corpus documents compared",
        documents.len()
    );
    assert_eq!(compared, documents.len(), "every corpus document parses");
}
