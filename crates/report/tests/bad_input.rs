//! Input that is not a (whole) report: a clear error, or a partial result
//! with warnings — never a panic.

use closeout_report::{MAX_REPORT_BYTES, ParseError, parse};

const SAMPLE: &str = include_str!("../../../tests/fixtures/peel-2018-19-hertfordshire.txt");

/// The first `fraction` of `text`, cut back to a character boundary.
fn cut(text: &str, numerator: usize, denominator: usize) -> &str {
    let mut end = text.len() * numerator / denominator;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[test]
fn empty_text() {
    for text in ["", "   ", "\n\n\t \r\n", "\u{feff}", "\u{feff}\r\n  "] {
        assert_eq!(parse(text), Err(ParseError::Empty), "{text:?}");
    }
}

#[test]
fn binary_input() {
    assert!(matches!(
        parse("PEEL\0\0\0"),
        Err(ParseError::Binary { .. })
    ));
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let lossy = String::from_utf8_lossy(&bytes).replace('\0', "");
    assert!(
        matches!(parse(&lossy), Err(ParseError::Binary { .. })),
        "{:?}",
        parse(&lossy)
    );
    let controls: String = std::iter::repeat_n("\u{1}\u{2}\u{7f}a", 100).collect();
    assert!(matches!(parse(&controls), Err(ParseError::Binary { .. })));
    let message = parse("PEEL\0").map(|_| ()).unwrap_err().to_string();
    assert!(message.contains("not text"), "{message}");
}

#[test]
fn too_large() {
    let text = "a".repeat(MAX_REPORT_BYTES + 1);
    assert!(matches!(parse(&text), Err(ParseError::TooLarge { .. })));
}

#[test]
fn not_a_report() {
    for text in [
        "Hello world.\nThis is a recipe for bread. Mix flour and water.\n",
        "Contents\n\nIntroduction\t1\n",
        "\tA\tB\nRow\t1\t2\n",
        // One sign of a report is not enough.
        "\n\nPEEL\n",
        "Essex Police attended the incident.",
    ] {
        let result = parse(text);
        assert!(
            matches!(result, Err(ParseError::NotAReport { .. })),
            "{text:?}: {result:?}"
        );
    }
    let message = parse("Hello world.").map(|_| ()).unwrap_err().to_string();
    assert!(
        message.starts_with("not an inspection report: found nothing recognisable"),
        "{message}"
    );
}

#[test]
fn the_sample_cut_in_half_gives_a_partial_result_with_warnings() {
    let report = match parse(cut(SAMPLE, 1, 2)) {
        Ok(report) => report,
        Err(e) => panic!("half the sample does not parse: {e}"),
    };
    assert_eq!(
        report.organisation.clone().unwrap_or_default().id,
        "hertfordshire"
    );
    assert_eq!(report.judgments.len(), 10);
    assert_eq!(report.pillars.len(), 1);
    assert_eq!(report.findings.len(), 2);
    assert!(report.findings.iter().all(|f| f.line_end <= 475));
    assert_eq!(report.warnings.len(), 3, "{:#?}", report.warnings);
    assert!(report.warnings[0].starts_with("no publication date found"));
    assert!(report.warnings[1].contains("Efficiency"));
    assert!(report.warnings[2].contains("Legitimacy"));
    assert!(closeout_report::render_summary(&report).contains("Warnings (3)"));
}

#[test]
fn every_cut_of_the_sample_is_an_error_or_a_report() {
    for tenth in 0..=10 {
        match parse(cut(SAMPLE, tenth, 10)) {
            Ok(report) => {
                if tenth < 10 {
                    assert!(
                        !report.warnings.is_empty(),
                        "cut at {tenth}/10 has no warnings"
                    );
                }
            }
            Err(e) => assert!(tenth <= 1, "cut at {tenth}/10: {e}"),
        }
    }
}

#[test]
fn an_area_for_improvement_heading_with_nothing_after_it_is_a_warning() {
    let text = "PEEL\n\nPolice effectiveness, efficiency and legitimacy 2018/19\n\nAn inspection of Loamshire Constabulary\n\nInvestigating crime\n\nGood\n\nAreas for improvement\n";
    let report = parse(text).unwrap_or_default();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("“Areas for improvement” at line 11")),
        "{:#?}",
        report.warnings
    );
}

#[test]
fn a_cause_of_concern_without_recommendations_is_a_warning() {
    let text = "PEEL\n\nPolice effectiveness, efficiency and legitimacy 2018/19\n\nAn inspection of Loamshire Constabulary\n\nInvestigating crime\n\nInadequate\n\nCause of concern\n\nThe force does not investigate crime well.\n\nSeptember 2019 | ©HMICFRS 2019\n";
    let report = parse(text).unwrap_or_default();
    assert_eq!(report.findings.len(), 1);
    assert_eq!(
        report.warnings,
        vec!["the cause of concern at line 13 is followed by no recommendations".to_string()]
    );
}
