//! The same report as text, as a saved web page and as a PDF gives the same
//! `ParsedReport`: organisation, inspection, profile, pillar and question
//! judgments, findings, follow-ups, indicators, most similar group and
//! warnings — everything except line numbers (and the line-by-line
//! explanations, which are made of line numbers).
//!
//! The HTML (`tests/fixtures/make-html.py`) marks the sample up as the
//! inspectorate's publication pages are marked up, with the site's chrome
//! around it, its table of contents a list of links without page numbers;
//! the PDF (`tests/fixtures/make-pdf.py`) was typeset on this
//! machine from the sample text.

use std::path::{Path, PathBuf};

use closeout_proto::ParsedReport;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn parse(name: &str) -> ParsedReport {
    let path = fixture(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let media_type = closeout_document::media_type_of(&path, &bytes);
    let text = closeout_document::to_text(&bytes, media_type)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    closeout_report::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The report without line numbers.
fn without_lines(mut report: ParsedReport) -> ParsedReport {
    for finding in &mut report.findings {
        finding.line_start = 0;
        finding.line_end = 0;
    }
    for follow_up in &mut report.follow_ups {
        follow_up.line_start = 0;
        follow_up.line_end = 0;
    }
    for indicator in &mut report.indicators {
        indicator.line = 0;
    }
    report.explanations.clear();
    report
}

/// Compares part by part, so a failure names what differs.
fn assert_same(expected: &ParsedReport, actual: &ParsedReport, what: &str) {
    assert_eq!(
        expected.organisation, actual.organisation,
        "{what}: organisation"
    );
    assert_eq!(expected.inspection, actual.inspection, "{what}: inspection");
    assert_eq!(expected.profile, actual.profile, "{what}: profile");
    assert_eq!(expected.pillars, actual.pillars, "{what}: pillar judgments");
    assert_eq!(
        expected.judgments, actual.judgments,
        "{what}: question judgments"
    );
    assert_eq!(
        expected.findings.len(),
        actual.findings.len(),
        "{what}: number of findings"
    );
    for (e, a) in expected.findings.iter().zip(&actual.findings) {
        assert_eq!(e, a, "{what}: finding");
    }
    assert_eq!(
        expected.follow_ups.len(),
        actual.follow_ups.len(),
        "{what}: number of follow-ups"
    );
    for (e, a) in expected.follow_ups.iter().zip(&actual.follow_ups) {
        assert_eq!(e, a, "{what}: follow-up");
    }
    assert_eq!(
        expected.indicators.len(),
        actual.indicators.len(),
        "{what}: number of indicators"
    );
    for (e, a) in expected.indicators.iter().zip(&actual.indicators) {
        assert_eq!(e, a, "{what}: indicator");
    }
    assert_eq!(
        expected.most_similar_group, actual.most_similar_group,
        "{what}: most similar group"
    );
    assert_eq!(expected.warnings, actual.warnings, "{what}: warnings");
    assert_eq!(expected, actual, "{what}");
}

#[test]
fn the_saved_web_page_reads_as_the_text() {
    let text = without_lines(parse("peel-2018-19-hertfordshire.txt"));
    let html = without_lines(parse("peel-2018-19-hertfordshire.html"));
    assert!(!text.findings.is_empty() && !text.judgments.is_empty());
    // The ungraded question the contents name ("Armed policing") is read
    // from the page's contents list as from the text's page-numbered rows.
    assert!(
        text.follow_ups
            .iter()
            .any(|f| f.question == "Armed policing"),
        "the text's follow-ups under Armed policing"
    );
    assert_same(&text, &html, "HTML");
}

#[test]
fn the_pdf_reads_as_the_text() {
    let text = without_lines(parse("peel-2018-19-hertfordshire.txt"));
    let pdf = without_lines(parse("peel-2018-19-hertfordshire.pdf"));
    assert_same(&text, &pdf, "PDF");
}
