//! The reference report, PEEL 2018/19 Hertfordshire Constabulary (HMICFRS,
//! Open Government Licence v3.0; see tests/fixtures/NOTICE.md at the
//! workspace root): every figure the parser must produce, asserted exactly.

use closeout_proto::{
    FindingKind, FollowUpOutcome, Grade, GradeScale, OrganisationKind, ParsedFollowUp,
    ParsedIndicator, ParsedReport,
};

const SAMPLE: &str = include_str!("../../../tests/fixtures/peel-2018-19-hertfordshire.txt");

fn sample() -> ParsedReport {
    match closeout_report::parse(SAMPLE) {
        Ok(report) => report,
        Err(e) => panic!("the reference report does not parse: {e}"),
    }
}

#[test]
fn organisation_and_inspection() {
    let report = sample();
    let organisation = report.organisation.clone().unwrap_or_default();
    assert_eq!(organisation.id, "hertfordshire");
    assert_eq!(organisation.name, "Hertfordshire Constabulary");
    assert_eq!(organisation.kind(), OrganisationKind::PoliceForce);
    let inspection = report.inspection.clone().unwrap_or_default();
    assert_eq!(inspection.programme, "PEEL");
    assert_eq!(inspection.period, "2018/19");
    assert_eq!(
        inspection.title,
        "PEEL: Police effectiveness, efficiency and legitimacy 2018/19 – An inspection of Hertfordshire Constabulary"
    );
    assert_eq!(inspection.published, "2019-09");
}

#[test]
fn most_similar_group() {
    assert_eq!(
        sample().most_similar_group,
        vec![
            "Hampshire Constabulary",
            "Essex Police",
            "Leicestershire Police",
            "Sussex Police",
            "Avon and Somerset Constabulary",
            "Staffordshire Police",
            "Thames Valley Police",
        ]
    );
}

#[test]
fn pillars_are_good_on_the_four_tier_scale() {
    let got: Vec<(String, Grade, GradeScale)> = sample()
        .pillars
        .iter()
        .map(|p| (p.pillar.clone(), p.grade(), p.scale()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "Effectiveness".to_string(),
                Grade::Good,
                GradeScale::FourTier
            ),
            ("Efficiency".to_string(), Grade::Good, GradeScale::FourTier),
            ("Legitimacy".to_string(), Grade::Good, GradeScale::FourTier),
        ]
    );
}

#[test]
fn the_ten_question_judgments_of_the_overall_summary() {
    let got: Vec<(String, String, Grade, String, bool, GradeScale)> = sample()
        .judgments
        .iter()
        .map(|j| {
            (
                j.pillar.clone(),
                j.question.clone(),
                j.grade(),
                j.last_inspected.clone(),
                j.carried_over,
                j.scale(),
            )
        })
        .collect();
    let row = |pillar: &str, question: &str, grade: Grade, last: &str, carried: bool| {
        (
            pillar.to_string(),
            question.to_string(),
            grade,
            last.to_string(),
            carried,
            GradeScale::FourTier,
        )
    };
    assert_eq!(
        got,
        vec![
            row(
                "Effectiveness",
                "Preventing crime and tackling anti-social behaviour",
                Grade::Good,
                "2016",
                true
            ),
            row(
                "Effectiveness",
                "Investigating crime",
                Grade::Good,
                "2018/19",
                false
            ),
            row(
                "Effectiveness",
                "Protecting vulnerable people",
                Grade::Good,
                "2018/19",
                false
            ),
            row(
                "Effectiveness",
                "Tackling serious and organised crime",
                Grade::Good,
                "2016",
                true
            ),
            row(
                "Effectiveness",
                "Armed response capability",
                Grade::Ungraded,
                "2018/19",
                false
            ),
            row(
                "Efficiency",
                "Meeting current demands and using resources",
                Grade::Good,
                "2017",
                true
            ),
            row(
                "Efficiency",
                "Planning for the future",
                Grade::Good,
                "2018/19",
                false
            ),
            row(
                "Legitimacy",
                "Fair treatment of the public",
                Grade::Good,
                "2017",
                true
            ),
            row(
                "Legitimacy",
                "Ethical and lawful workforce behaviour",
                Grade::Good,
                "2018/19",
                false
            ),
            row(
                "Legitimacy",
                "Fair treatment of the workforce",
                Grade::Good,
                "2017",
                true
            ),
        ]
    );
}

#[test]
fn exactly_the_seven_areas_for_improvement() {
    let report = sample();
    type Row<'a> = (
        FindingKind,
        &'a str,
        &'a str,
        &'a str,
        u32,
        u32,
        &'a str,
        &'a str,
    );
    let got: Vec<Row<'_>> = report
        .findings
        .iter()
        .map(|f| {
            (
                f.kind(),
                f.pillar.as_str(),
                f.question.as_str(),
                f.text.as_str(),
                f.line_start,
                f.line_end,
                f.deadline.as_str(),
                f.parent.as_str(),
            )
        })
        .collect();
    let afi = |pillar, question, text, line| {
        (
            FindingKind::AreaForImprovement,
            pillar,
            question,
            text,
            line,
            line,
            "",
            "",
        )
    };
    assert_eq!(
        got,
        vec![
            afi(
                "Effectiveness",
                "Investigating crime",
                "The force needs to develop a cyber strategy and delivery plan to support criminal investigations and safeguard victims.",
                252
            ),
            afi(
                "Effectiveness",
                "Protecting vulnerable people",
                "The force should refresh guidance to staff on processes for managing unconvicted but potentially dangerous people within the community and reassure itself that staff understand this.",
                370
            ),
            afi(
                "Efficiency",
                "Planning for the future",
                "The force should make sure that future recruitment and staff development are supported by a functional and adequately resourced human resources team.",
                600
            ),
            afi(
                "Efficiency",
                "Planning for the future",
                "The force should develop a comprehensive skills strategy to identify what future capabilities its workforce will need.",
                601
            ),
            afi(
                "Legitimacy",
                "Ethical and lawful workforce behaviour",
                "The force should take steps to involve its officers and staff in raising ethical issues and evaluate the effectiveness of the process.",
                784
            ),
            afi(
                "Legitimacy",
                "Ethical and lawful workforce behaviour",
                "The force should ensure all staff have received at least the lowest level of vetting clearance for their roles and clear any backlogs ensuring it is fully compliant with the national vetting guidelines.",
                785
            ),
            afi(
                "Legitimacy",
                "Ethical and lawful workforce behaviour",
                "The force should ensure that its counter-corruption unit has enough capability and capacity to counter corruption effectively and proactively.",
                786
            ),
        ]
    );
}

#[test]
fn finding_lines_point_at_the_source_text() {
    let lines: Vec<&str> = SAMPLE.lines().collect();
    for f in sample().findings {
        let line = lines.get(f.line_start as usize - 1).copied().unwrap_or("");
        assert!(
            line.contains(&f.text),
            "line {} does not hold {:?}",
            f.line_start,
            f.text
        );
    }
}

#[test]
fn the_earlier_national_recommendation_is_a_follow_up_not_a_finding() {
    let report = sample();
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.kind() == FindingKind::AreaForImprovement)
    );
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.text.contains("stop-and-search"))
    );
    let stop_and_search = follow_up(&report, 752);
    assert_eq!(
        stop_and_search.outcome(),
        FollowUpOutcome::PartiallyAddressed
    );
    assert_eq!(
        stop_and_search.text,
        "In our 2017 legitimacy report, we recommended that all forces should: monitor and analyse \
         comprehensive stop-and-search data to understand reasons for disparities; take action on those; \
         and publish the analysis and the action by July 2018. We found that the force has complied with \
         some of this recommendation."
    );
    assert_eq!(
        (stop_and_search.line_start, stop_and_search.line_end),
        (752, 758)
    );
    assert_eq!(
        (
            stop_and_search.referenced_period.as_str(),
            stop_and_search.referenced_report.as_str(),
            stop_and_search.pillar.as_str(),
            stop_and_search.question.as_str()
        ),
        (
            "2017",
            "legitimacy",
            "Legitimacy",
            "Treating the public fairly"
        )
    );
}

fn follow_up(report: &ParsedReport, line_start: u32) -> ParsedFollowUp {
    report
        .follow_ups
        .iter()
        .find(|f| f.line_start == line_start)
        .cloned()
        .unwrap_or_else(|| panic!("no follow-up starts at line {line_start}"))
}

#[test]
fn every_follow_up() {
    let report = sample();
    type Row<'a> = (
        u32,
        u32,
        &'a str,
        &'a str,
        FollowUpOutcome,
        &'a str,
        &'a str,
    );
    let got: Vec<Row<'_>> = report
        .follow_ups
        .iter()
        .map(|f| {
            (
                f.line_start,
                f.line_end,
                f.referenced_period.as_str(),
                f.referenced_report.as_str(),
                f.outcome(),
                f.pillar.as_str(),
                f.question.as_str(),
            )
        })
        .collect();
    use FollowUpOutcome::{Addressed, PartiallyAddressed};
    let expected: Vec<Row<'_>> = vec![
        (
            200,
            200,
            "2017",
            "effectiveness",
            Addressed,
            "Effectiveness",
            "",
        ),
        (
            212,
            212,
            "2017",
            "effectiveness",
            Addressed,
            "Effectiveness",
            "",
        ),
        (
            234,
            234,
            "2017",
            "effectiveness",
            Addressed,
            "Effectiveness",
            "Investigating crime",
        ),
        (
            260,
            260,
            "2017",
            "effectiveness",
            Addressed,
            "Effectiveness",
            "Investigating crime",
        ),
        (
            336,
            338,
            "2017",
            "crime data integrity",
            Addressed,
            "Effectiveness",
            "Investigating crime",
        ),
        (
            406,
            408,
            "2017",
            "effectiveness",
            Addressed,
            "Effectiveness",
            "Protecting vulnerable people",
        ),
        (
            506,
            506,
            "2017",
            "effectiveness",
            Addressed,
            "Effectiveness",
            "Armed policing",
        ),
        (
            568,
            568,
            "2017",
            "efficiency",
            PartiallyAddressed,
            "Efficiency",
            "",
        ),
        (
            596,
            596,
            "2017",
            "efficiency",
            PartiallyAddressed,
            "Efficiency",
            "Planning for the future",
        ),
        (
            647,
            647,
            "2017",
            "efficiency",
            Addressed,
            "Efficiency",
            "Planning for the future",
        ),
        (
            673,
            673,
            "2017",
            "efficiency",
            PartiallyAddressed,
            "Efficiency",
            "Planning for the future",
        ),
        (
            752,
            758,
            "2017",
            "legitimacy",
            PartiallyAddressed,
            "Legitimacy",
            "Treating the public fairly",
        ),
    ];
    assert_eq!(got, expected);
}

#[test]
fn follow_up_texts() {
    let report = sample();
    assert_eq!(
        follow_up(&report, 234).text,
        "In our 2017 effectiveness report, we said it needed to fully comply with the Code of Practice for \
         Victims of Crime. It also needed to review its use of body-worn video. It has made these improvements."
    );
    assert!(
        follow_up(&report, 260)
            .text
            .ends_with("we are satisfied that these improvements have taken place.")
    );
    assert_eq!(
        follow_up(&report, 406).text,
        "In our 2017 effectiveness report, we said that it had identified that further work was needed to \
         improve the completion of risk assessments by officers, and that their use of body-worn video wasn't \
         routinely used to record evidence. The force now consistently monitors the use and effectiveness of \
         body-worn video."
    );
    assert_eq!(
        follow_up(&report, 506).text,
        "Last year, we identified some areas where the force's APSTRA could be improved. For example, it \
         didn't include details of how rapidly armed response vehicles (ARVs) respond to incidents. This is \
         important to determine whether the force has sufficient armed officers to meet operational demands. \
         The most recent APSTRA includes this detail."
    );
    assert_eq!(
        follow_up(&report, 647).text,
        "Hertfordshire Constabulary understands the skills and capabilities of its workforce and is using this \
         information to plan for its future requirements. This was an area for improvement in 2017."
    );
    assert_eq!(
        follow_up(&report, 673).text,
        "We identified both understanding of leadership skills and leadership development / talent management \
         as areas for improvement in our 2017 efficiency report. The force has made limited progress to date, \
         but is now introducing efficient HR software to develop a coherent plan."
    );
    assert_eq!(
        follow_up(&report, 336).text,
        "In November 2017, we published our Crime Data Integrity inspection report. We judged that \
         Hertfordshire Constabulary's crime recording compliance was 87 percent. We also identified \
         deficiencies in its understanding of crime recording compliance and processes. The force has since \
         made investments and can now comprehensively analyse data compliance."
    );
}

fn indicator<'a>(report: &'a ParsedReport, measure: &str) -> &'a ParsedIndicator {
    let matching: Vec<&ParsedIndicator> = report
        .indicators
        .iter()
        .filter(|i| i.measure == measure)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "indicators named {measure:?}: {matching:?}"
    );
    matching[0]
}

type Figure<'a> = (&'a str, f64, &'a str, &'a str, Option<f64>, u32);

fn figure(i: &ParsedIndicator) -> Figure<'_> {
    (
        i.period.as_str(),
        i.value,
        i.unit.as_str(),
        i.comparator.as_str(),
        i.comparator_value,
        i.line,
    )
}

#[test]
fn force_in_context_indicators() {
    let report = sample();
    let check = |measure: &str, expected: Figure<'_>| {
        assert_eq!(figure(indicator(&report, measure)), expected, "{measure}");
    };
    const E_AND_W: &str = "England and Wales";
    const MSF: &str = "Most Similar Forces";
    const PER_1000: &str = "per 1,000 population";
    const SEPT_2018: &str = "12 months ending 30 September 2018";
    check(
        "999 calls per 1,000 population",
        (
            "12 months ending 31 March 2019",
            143.0,
            PER_1000,
            E_AND_W,
            Some(175.0),
            90,
        ),
    );
    check(
        "Recorded crime per 1,000 population",
        (SEPT_2018, 72.0, PER_1000, MSF, Some(74.0), 94),
    );
    check(
        "Hertfordshire workforce: Police Officer",
        (
            "31 March 2019",
            2009.0,
            "FTE",
            "same organisation",
            Some(1927.0),
            99,
        ),
    );
    check(
        "Hertfordshire workforce: Police Officer – Percentage change",
        ("31 March 2014 to 31 March 2019", 4.0, "%", "", None, 99),
    );
    check(
        "Hertfordshire workforce: Police Community Support Officer",
        (
            "31 March 2019",
            225.0,
            "FTE",
            "same organisation",
            Some(190.0),
            100,
        ),
    );
    check(
        "Hertfordshire workforce: Police Community Support Officer – Percentage change",
        ("31 March 2014 to 31 March 2019", 18.0, "%", "", None, 100),
    );
    check(
        "Hertfordshire workforce: Police Staff",
        (
            "31 March 2019",
            1150.0,
            "FTE",
            "same organisation",
            Some(1112.0),
            101,
        ),
    );
    check(
        "Hertfordshire workforce: Police Staff – Percentage change",
        ("31 March 2014 to 31 March 2019", 3.0, "%", "", None, 101),
    );
    // Printed at lines 104 and 533: kept once.
    check(
        "Spend per head of population",
        (
            "2018/19 projection",
            162.0,
            "GBP",
            E_AND_W,
            Some(192.0),
            104,
        ),
    );
    check(
        "Proportion of officers in a neighbourhood or response function in post",
        ("31 March 2019", 49.0, "%", E_AND_W, Some(40.0), 159),
    );
    const VICTIM: &str = "Victim-based crime per 1,000 population: ";
    for (label, value, comparator, line) in [
        ("Violence against the person", 21.0, 23.0, 166),
        ("Sexual offences", 2.0, 2.0, 167),
        ("Theft Offences / Robbery", 31.0, 30.0, 168),
        ("Criminal damage and arson", 8.0, 9.0, 169),
    ] {
        check(
            &format!("{VICTIM}{label}"),
            (SEPT_2018, value, PER_1000, MSF, Some(comparator), line),
        );
    }
    for (label, value, comparator, line) in [
        (
            "Proportion of crimes where action was taken",
            15.0,
            13.0,
            176,
        ),
        (
            "Proportion of crimes where suspect was identified",
            43.0,
            46.0,
            177,
        ),
        (
            "Proportion of crimes where victim did not support police action",
            24.0,
            23.0,
            178,
        ),
    ] {
        check(
            &format!("Crime Outcomes: {label}"),
            (SEPT_2018, value, "%", E_AND_W, Some(comparator), line),
        );
    }
    for (label, value, comparator, line) in [
        ("Charge/summonsed", 13.0, 16.0, 185),
        (
            "Evidential difficulties: suspect identified; victim does not support",
            54.0,
            49.0,
            186,
        ),
    ] {
        check(
            &format!("Outcomes for crimes flagged as domestic abuse: {label}"),
            (
                "12 months ending 31 March 2018",
                value,
                "%",
                E_AND_W,
                Some(comparator),
                line,
            ),
        );
    }
    for (label, value, comparator, line) in [
        ("Visible frontline", 59.0, 65.0, 540),
        ("Non-visible frontline", 56.0, 62.0, 541),
        ("Frontline Support", 13.0, 17.0, 542),
        ("Business support", 32.0, 41.0, 543),
        ("Other", 2.0, 8.0, 544),
    ] {
        check(
            &format!("Spend per head of population by category: {label}"),
            (
                "2018/19 projection",
                value,
                "GBP",
                E_AND_W,
                Some(comparator),
                line,
            ),
        );
    }
    const ETHNICITY: &str =
        "Comparison of Hertfordshire workforce ethnicity with local population: ";
    check(
        &format!("{ETHNICITY}Black, Asian and minority ethnic as % of those with stated ethnicity"),
        (
            "31 March 2019",
            5.3,
            "%",
            "Local population",
            Some(12.4),
            712,
        ),
    );
    check(
        &format!("{ETHNICITY}White as % of those with stated ethnicity"),
        (
            "31 March 2019",
            94.7,
            "%",
            "Local population",
            Some(87.6),
            713,
        ),
    );
    check(
        &format!("{ETHNICITY}Not Stated as % of total"),
        ("31 March 2019", 1.1, "%", "", None, 714),
    );
    check(
        "Proportion of female officers in post",
        ("31 March 2019", 32.0, "%", E_AND_W, Some(30.0), 717),
    );
    assert_eq!(report.indicators.len(), 28);
}

/// Only the workforce rows compare the organisation with itself at an earlier
/// date, and that date is their comparator period, not their comparator.
#[test]
fn workforce_comparators_are_the_organisation_at_an_earlier_date() {
    let report = sample();
    let with_period: Vec<(&str, &str, &str)> = report
        .indicators
        .iter()
        .filter(|i| !i.comparator_period.is_empty())
        .map(|i| {
            (
                i.measure.as_str(),
                i.comparator.as_str(),
                i.comparator_period.as_str(),
            )
        })
        .collect();
    assert_eq!(
        with_period,
        vec![
            (
                "Hertfordshire workforce: Police Officer",
                "same organisation",
                "31 March 2014"
            ),
            (
                "Hertfordshire workforce: Police Community Support Officer",
                "same organisation",
                "31 March 2014"
            ),
            (
                "Hertfordshire workforce: Police Staff",
                "same organisation",
                "31 March 2014"
            ),
        ]
    );
}

#[test]
fn no_warnings() {
    assert_eq!(sample().warnings, Vec::<String>::new());
}

#[test]
fn windows_line_endings_and_a_bom_give_identical_results() {
    let windows = format!("\u{feff}{}", SAMPLE.replace('\n', "\r\n"));
    assert_eq!(closeout_report::parse(&windows), Ok(sample()));
}

#[test]
fn canonical_json_renders() {
    let json = closeout_proto::json::to_json_pretty("ParsedReport", &sample()).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    assert_eq!(
        value["organisation"]["kind"],
        "ORGANISATION_KIND_POLICE_FORCE"
    );
    assert_eq!(value["findings"].as_array().map(Vec::len), Some(7));
    assert_eq!(value["judgments"][4]["grade"], "GRADE_UNGRADED");
    assert_eq!(
        value["followUps"][0]["outcome"],
        "FOLLOW_UP_OUTCOME_ADDRESSED"
    );
}

#[test]
fn the_summary_names_everything_a_person_needs() {
    let text = closeout_report::render_summary(&sample());
    for needle in [
        "Hertfordshire Constabulary (hertfordshire, police force)",
        "Inspection: PEEL 2018/19, published 2019-09",
        "Judgments (10)",
        "Armed response capability",
        "Findings (7)",
        "1. Area for improvement — Effectiveness / Investigating crime (lines 252)",
        "Follow-ups of earlier inspections (12)",
        "Partially addressed — of the 2017 legitimacy report",
        "Indicators (28)",
        "999 calls per 1,000 population (12 months ending 31 March 2019): 143 per 1,000 population;",
        "England and Wales: 175 per 1,000 population",
    ] {
        assert!(
            text.contains(needle),
            "the summary lacks {needle:?}:\n{text}"
        );
    }
    assert!(!text.contains("Warnings"));
}
