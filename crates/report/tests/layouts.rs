//! The parser contract for the inspectorate's layouts (issue 11), item by
//! item where the corpus counts cannot say enough: follow-up scope, count and
//! kind; revisit letters' quoted items; the explanation; values supplied with
//! `parse_with` and how the document wins over them.

use closeout_proto::{FindingKind, FollowUpOutcome, FollowUpScope, ParsedReport};
use closeout_report::{ParseError, ParseOptions, parse, parse_with, render_explanation};

const FRS_2021: &str = include_str!("fixtures/corpus/frs-2021-22/loamshire-2021-22.txt");
const FRS_2018: &str = include_str!("fixtures/corpus/frs-2018-19/loamshire-2018-19.txt");
const REVISIT: &str = include_str!("fixtures/corpus/letter-revisit/midshire-2024-revisit.txt");

fn parsed(text: &str) -> ParsedReport {
    match parse(text) {
        Ok(report) => report,
        Err(e) => panic!("does not parse: {e}"),
    }
}

/// A short fire and rescue page with counted and summary statements.
const COUNTED: &str = "Loamshire 2021/22\n\nLast updated 15/12/2021\n\n\
The extent to which the service is effective at keeping people safe and secure from fire and other risks is good.\n\n\
I am delighted that I can now discharge the three causes of concern we found in our 2018 inspection.\n\n\
The service has addressed most but not all areas for improvement from our 2018 inspection.\n\n\
Understanding the risk of fire and other emergencies\n\n\
Loamshire Fire and Rescue Service is good at understanding risk.\n\n\
Loamshire Fire and Rescue Service was good in its 2018/19 assessment.\n";

#[test]
fn counted_and_summary_statements() {
    let report = parsed(COUNTED);
    assert_eq!(report.profile, "frs-2021-22");
    let inspection = report.inspection.clone().unwrap_or_default();
    assert_eq!(inspection.published, "2021-12-15");
    assert_eq!(inspection.period, "2021/22");
    let counted = &report.follow_ups[0];
    assert_eq!(counted.scope(), FollowUpScope::AllOfKind);
    assert_eq!(counted.stated_count, 3);
    assert_eq!(counted.referenced_kind(), FindingKind::CauseOfConcern);
    assert_eq!(counted.referenced_period, "2018");
    assert_eq!(counted.outcome(), FollowUpOutcome::Addressed);
    let summary = &report.follow_ups[1];
    assert_eq!(summary.scope(), FollowUpScope::Summary);
    assert_eq!(summary.referenced_kind(), FindingKind::AreaForImprovement);
    assert_eq!(summary.outcome(), FollowUpOutcome::PartiallyAddressed);
    assert_eq!(report.follow_ups.len(), 2);
    // The grade sentence and the previous grade.
    let judgments: Vec<(&str, &str, bool)> = report
        .judgments
        .iter()
        .map(|j| {
            (
                j.question.as_str(),
                j.last_inspected.as_str(),
                j.carried_over,
            )
        })
        .collect();
    assert_eq!(
        judgments,
        vec![
            (
                "Understanding the risk of fire and other emergencies",
                "2021/22",
                false
            ),
            (
                "Understanding the risk of fire and other emergencies",
                "2018/19",
                true
            ),
        ]
    );
    assert_eq!(report.pillars.len(), 1);
}

#[test]
fn summary_statements_are_never_addressed() {
    for sentence in [
        "The service has addressed most but not all areas for improvement from our 2018 inspection.",
        "The service has addressed some of the areas for improvement from our 2018 inspection.",
        "The service has addressed many areas for improvement from our 2018 inspection.",
    ] {
        let text = format!(
            "Loamshire 2021/22\n\nLast updated 15/12/2021\n\n{sentence}\n\nLoamshire Fire and Rescue Service is good.\n"
        );
        let report = parsed(&text);
        let f = report
            .follow_ups
            .first()
            .unwrap_or_else(|| panic!("no follow-up in {sentence:?}"));
        assert_eq!(f.scope(), FollowUpScope::Summary, "{sentence}");
        assert_ne!(f.outcome(), FollowUpOutcome::Addressed, "{sentence}");
    }
}

#[test]
fn last_updated_is_a_date_not_a_question() {
    let report = parsed(FRS_2018);
    assert!(
        report
            .judgments
            .iter()
            .all(|j| !j.question.to_lowercase().contains("last updated"))
    );
    assert_eq!(
        report.inspection.clone().unwrap_or_default().published,
        "2018-12-20"
    );
    // The framework's boilerplate after a list is not an area for improvement.
    assert!(
        report
            .findings
            .iter()
            .all(|f| !f.text.starts_with("All fire and rescue services")
                && !f.text.starts_with("Each fire and rescue service"))
    );
}

#[test]
fn revisit_letters_quote_items_as_references() {
    let report = parsed(REVISIT);
    assert_eq!(report.profile, "letter-revisit");
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let references = report
        .explanations
        .iter()
        .filter(|e| e.element == "reference")
        .count();
    assert_eq!(references, 9);
    let outcomes: Vec<(FollowUpOutcome, FindingKind, bool)> = report
        .follow_ups
        .iter()
        .map(|f| (f.outcome(), f.referenced_kind(), f.quoted_item.is_empty()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (
                FollowUpOutcome::Addressed,
                FindingKind::CauseOfConcern,
                false
            ),
            (
                FollowUpOutcome::Addressed,
                FindingKind::Recommendation,
                false
            ),
            (
                FollowUpOutcome::NotAddressed,
                FindingKind::Recommendation,
                false
            ),
            (
                FollowUpOutcome::NotAddressed,
                FindingKind::CauseOfConcern,
                false
            ),
        ]
    );
    // Each follow-up quotes the earlier item it speaks of.
    assert!(
        report.follow_ups[0]
            .quoted_item
            .contains("site-specific risk information")
    );
    assert!(
        report.follow_ups[1]
            .quoted_item
            .contains("tested fallback arrangement")
    );
    assert!(
        report.follow_ups[2]
            .quoted_item
            .starts_with("record every failure")
    );
    assert!(
        report.follow_ups[3]
            .quoted_item
            .contains("mobilising system")
    );
    assert!(
        report
            .follow_ups
            .iter()
            .all(|f| f.referenced_period == "2023")
    );
}

#[test]
fn the_explanation_names_the_profile_and_every_element() {
    let report = parsed(FRS_2021);
    let text = render_explanation(&report);
    assert!(text.starts_with("Profile: frs-2021-22\n"), "{text}");
    for element in [
        "identity",
        "judgment",
        "finding",
        "follow-up",
        "boilerplate",
    ] {
        assert!(
            report.explanations.iter().any(|e| e.element == element),
            "no {element} line in\n{text}"
        );
    }
    assert!(text.contains("frs.previous-grade-sentence"), "{text}");
    assert!(text.contains("framework-boilerplate"), "{text}");
    // Every finding and follow-up is explained by its own line span.
    for f in &report.findings {
        assert!(
            report
                .explanations
                .iter()
                .any(|e| e.element == "finding" && e.line_start == f.line_start),
            "finding at line {} is not explained",
            f.line_start
        );
    }
    let lines: Vec<u32> = report.explanations.iter().map(|e| e.line_start).collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
}

/// A page that states neither its date nor its organisation.
const UNDATED: &str = "PEEL 2018/19\n\nInvestigating crime\n\nGood\n\nAreas for improvement\n\n\
- The force should improve its cyber strategy.\n";

#[test]
fn supplied_values_fill_what_the_document_does_not_state() {
    let options = ParseOptions {
        published: Some("2019-09-27".into()),
        period: Some("2017".into()),
        organisation: Some("avon-and-somerset".into()),
    };
    let report = match parse_with(UNDATED, &options) {
        Ok(report) => report,
        Err(e) => panic!("{e}"),
    };
    let inspection = report.inspection.clone().unwrap_or_default();
    assert_eq!(inspection.published, "2019-09-27");
    // The document states its period: it wins, and a warning says so.
    assert_eq!(inspection.period, "2018/19");
    let organisation = report.organisation.clone().unwrap_or_default();
    assert_eq!(organisation.id, "avon-and-somerset");
    let warnings = report.warnings.join("\n");
    assert!(
        warnings.contains("publication date 2019-09-27 supplied (--published)"),
        "{warnings}"
    );
    assert!(
        warnings.contains("organisation avon-and-somerset supplied (--organisation)"),
        "{warnings}"
    );
    assert!(
        warnings.contains("the document states inspection period 2018/19; the supplied 2017 (--period) was not used"),
        "{warnings}"
    );
    assert!(
        !warnings.contains("no publication date found"),
        "{warnings}"
    );
    // Without options, the missing values are warnings naming the flags.
    let bare = parsed(UNDATED);
    let warnings = bare.warnings.join("\n");
    assert!(warnings.contains("--published"), "{warnings}");
    assert!(warnings.contains("--organisation"), "{warnings}");
}

#[test]
fn malformed_supplied_values_are_refused_by_name() {
    for (options, name) in [
        (
            ParseOptions {
                published: Some("20/12/2018".into()),
                ..Default::default()
            },
            "published",
        ),
        (
            ParseOptions {
                period: Some("18/19".into()),
                ..Default::default()
            },
            "period",
        ),
        (
            ParseOptions {
                organisation: Some("Avon and Somerset".into()),
                ..Default::default()
            },
            "organisation",
        ),
    ] {
        match parse_with(UNDATED, &options) {
            Err(ParseError::BadOption { option, .. }) => assert_eq!(option, name),
            other => panic!("{name}: expected BadOption, got {other:?}"),
        }
    }
}

#[test]
fn non_reports_are_still_refused() {
    for text in [
        "Dear Sir,\n\nThank you for your letter of 3 May.\n\nYours sincerely,\n\n4 May 2024\n",
        "Shopping list\n\n- eggs\n- milk\n",
        "Last updated 20/12/2018\n",
    ] {
        assert!(
            matches!(parse(text), Err(ParseError::NotAReport { .. })),
            "{text:?} was read as a report"
        );
    }
}

const ACCELERATED: &str = include_str!(
    "fixtures/corpus/letter-accelerated-cause-of-concern/midshire-2023-accelerated.txt"
);
const NATIONAL: &str = include_str!("fixtures/corpus/national/police-digital-evidence-2024.txt");

#[test]
fn an_accelerated_letter_links_each_recommendation_to_its_cause() {
    let report = parsed(ACCELERATED);
    assert_eq!(report.profile, "letter-accelerated-cause-of-concern");
    let inspection = report.inspection.clone().unwrap_or_default();
    assert_eq!(
        (inspection.published.as_str(), inspection.period.as_str()),
        ("2023-08-16", "2023")
    );
    let causes: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.kind() == FindingKind::CauseOfConcern)
        .map(|f| f.text.as_str())
        .collect();
    assert_eq!(causes.len(), 2);
    for f in report
        .findings
        .iter()
        .filter(|f| f.kind() == FindingKind::Recommendation)
    {
        let expected = if f.line_start < 57 {
            causes[0]
        } else {
            causes[1]
        };
        assert_eq!(
            f.parent, expected,
            "recommendation at line {}",
            f.line_start
        );
        assert!(
            !f.deadline.is_empty(),
            "recommendation at line {}",
            f.line_start
        );
    }
    assert!(
        report.findings[2..]
            .iter()
            .filter(|f| f.line_start > 57)
            .all(|f| f.deadline == "immediately")
    );
}

#[test]
fn a_national_report_names_no_organisation_and_skips_other_bodies() {
    let report = parsed(NATIONAL);
    assert_eq!(report.profile, "national");
    assert_eq!(report.organisation, None);
    let inspection = report.inspection.clone().unwrap_or_default();
    assert_eq!(inspection.programme, "");
    assert_eq!(inspection.period, "2024");
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.kind() == FindingKind::NationalRecommendation)
    );
    assert!(
        report
            .findings
            .iter()
            .all(|f| !f.text.contains("College of Policing should")),
        "a recommendation to the College of Policing is not one to every force"
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("line 64") && w.contains("another body")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn revisit_outcomes_link_to_the_item_they_speak_of() {
    let report = parsed(include_str!(
        "fixtures/corpus/letter-revisit/wessex-2025-revisit.txt"
    ));
    let quoted: Vec<(u32, &str)> = report
        .follow_ups
        .iter()
        .map(|f| (f.line_start, f.quoted_item.as_str()))
        .collect();
    let starts = |line: u32, lead: &str| quoted.iter().any(|(l, q)| *l == line && q.contains(lead));
    assert!(starts(42, "enough call handlers"), "{quoted:#?}");
    assert!(starts(44, "call back people who abandon"), "{quoted:#?}");
    assert!(
        starts(46, "review how its call handlers assess risk"),
        "{quoted:#?}"
    );
    assert!(
        starts(48, "control room supervisors monitor"),
        "{quoted:#?}"
    );
    assert!(starts(50, "isn't answering emergency"), "{quoted:#?}");
    // The earlier letter's year, not this letter's.
    assert!(
        report
            .follow_ups
            .iter()
            .all(|f| f.referenced_period == "2024")
    );
}
