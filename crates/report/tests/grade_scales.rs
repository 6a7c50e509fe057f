//! The grade scale a parsed report's judgments are on follows the
//! inspectorate's programmes: fire and rescue inspections were still graded
//! on the four-tier scale in 2021/22 and moved to the five-tier one in
//! 2023–25 (PEEL moved in 2021/22). The two reports below are synthetic, in
//! the inspectorate's style, and contain no *Adequate* grade, so only the
//! programme and period decide the scale.

use closeout_proto::{Grade, GradeScale, OrganisationKind, ParsedReport};
use closeout_report::parse;

const FRS_2021_22: &str = "\
SYNTHETIC TEST FIXTURE, written for the closeout-report tests in the inspectorate's style.

Fire and Rescue Service Inspection 2021/22

Effectiveness, efficiency and people

An inspection of Exampleshire Fire and Rescue Service

Effectiveness

Understanding the risk of fire and other emergencies

Good

Exampleshire Fire and Rescue Service is good at understanding the risk of fire and other emergencies.

Responding to fires and other emergencies

Requires improvement

Areas for improvement

The service should make sure it has enough fire engines available to respond to emergencies.

July 2022 | ©HMICFRS 2022 | SYNTHETIC
";

const FRS_2023_25: &str = "\
SYNTHETIC TEST FIXTURE, written for the closeout-report tests in the inspectorate's style.

Fire and Rescue Service Inspection 2023–25

Effectiveness, efficiency and people

An inspection of Exampleshire Fire and Rescue Service

Effectiveness

Understanding the risk of fire and other emergencies

Good

Exampleshire Fire and Rescue Service is good at understanding the risk of fire and other emergencies.

Responding to fires and other emergencies

Requires improvement

Areas for improvement

The service should make sure it has enough fire engines available to respond to emergencies.

March 2024 | ©HMICFRS 2024 | SYNTHETIC
";

/// The report's grades with their scales, after checking it was read as a
/// fire and rescue inspection of `period`.
fn graded(report: &ParsedReport, period: &str) -> Vec<(Grade, GradeScale)> {
    let organisation = report.organisation.clone().unwrap_or_default();
    assert_eq!(organisation.kind(), OrganisationKind::FireAndRescueService);
    let inspection = report.inspection.clone().unwrap_or_default();
    assert_eq!(inspection.programme, "FRS");
    assert_eq!(inspection.period, period);
    report
        .judgments
        .iter()
        .map(|j| (j.grade(), j.scale()))
        .collect()
}

#[test]
fn fire_and_rescue_2021_22_is_four_tier() {
    let report = parse(FRS_2021_22).expect("the 2021/22 report parses");
    assert_eq!(
        graded(&report, "2021/22"),
        vec![
            (Grade::Good, GradeScale::FourTier),
            (Grade::RequiresImprovement, GradeScale::FourTier),
        ]
    );
}

#[test]
fn fire_and_rescue_2023_25_is_five_tier() {
    let report = parse(FRS_2023_25).expect("the 2023–25 report parses");
    assert_eq!(
        graded(&report, "2023–25"),
        vec![
            (Grade::Good, GradeScale::FiveTier),
            (Grade::RequiresImprovement, GradeScale::FiveTier),
        ]
    );
}
