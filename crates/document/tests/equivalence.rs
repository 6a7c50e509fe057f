//! The same report as text, as a saved web page and as a PDF gives the same
//! `ParsedReport`: organisation, inspection, profile, pillar and question
//! judgments, findings, follow-ups, indicators, most similar group and
//! warnings — everything except line numbers (and the line-by-line
//! explanations, which are made of line numbers).
//!
//! The HTML (`tests/fixtures/make-html.py`) marks the sample up as the
//! inspectorate's publication pages are marked up, with the site's chrome
//! around it; the PDF (`tests/fixtures/make-pdf.py`) was typeset on this
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

/// The one known difference of the web page: the inspectorate's pages list
/// their contents as links without page numbers, and the parser learns an
/// ungraded question heading ("Armed policing" in PEEL 2018/19) only from a
/// contents row with a page number. So on the web page, what the text places
/// under an ungraded question is placed under the question before it. This
/// blanks the question of those items in both reports (and returns how many
/// there were), so that everything else is still compared.
fn without_ungraded_questions(text: &mut ParsedReport, page: &mut ParsedReport) -> usize {
    let graded: Vec<String> = text.judgments.iter().map(|j| j.question.clone()).collect();
    let ungraded = |question: &str| !question.is_empty() && !graded.iter().any(|g| g == question);
    let mut blanked = 0;
    for (t, p) in text.findings.iter_mut().zip(page.findings.iter_mut()) {
        if ungraded(&t.question) {
            t.question.clear();
            p.question.clear();
            blanked += 1;
        }
    }
    for (t, p) in text.follow_ups.iter_mut().zip(page.follow_ups.iter_mut()) {
        if ungraded(&t.question) {
            t.question.clear();
            p.question.clear();
            blanked += 1;
        }
    }
    blanked
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
    let mut text = without_lines(parse("peel-2018-19-hertfordshire.txt"));
    let mut html = without_lines(parse("peel-2018-19-hertfordshire.html"));
    assert!(!text.findings.is_empty() && !text.judgments.is_empty());
    let blanked = without_ungraded_questions(&mut text, &mut html);
    println!("HTML: {blanked} items under an ungraded question compared without their question");
    assert!(blanked <= 3, "{blanked} items under ungraded questions");
    assert_same(&text, &html, "HTML");
}

#[test]
fn the_pdf_reads_as_the_text() {
    let text = without_lines(parse("peel-2018-19-hertfordshire.txt"));
    let pdf = without_lines(parse("peel-2018-19-hertfordshire.pdf"));
    assert_same(&text, &pdf, "PDF");
}
