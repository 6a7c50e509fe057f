//! What other reports contain and the reference report does not, on the
//! synthetic fixtures of tests/fixtures (see the README there: written for
//! these tests in the inspectorate's style, not HMICFRS publications).

use closeout_proto::{
    FindingKind, FollowUpOutcome, Grade, GradeScale, OrganisationKind, ParsedFinding, ParsedReport,
};

fn parse(text: &str) -> ParsedReport {
    match closeout_report::parse(text) {
        Ok(report) => report,
        Err(e) => panic!("fixture does not parse: {e}"),
    }
}

/// (kind, pillar, question, text, deadline, parent, line_start, line_end)
type Row = (
    FindingKind,
    String,
    String,
    String,
    String,
    String,
    u32,
    u32,
);

fn rows(findings: &[ParsedFinding]) -> Vec<Row> {
    findings
        .iter()
        .map(|f| {
            (
                f.kind(),
                f.pillar.clone(),
                f.question.clone(),
                f.text.clone(),
                f.deadline.clone(),
                f.parent.clone(),
                f.line_start,
                f.line_end,
            )
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn row(
    kind: FindingKind,
    pillar: &str,
    question: &str,
    text: &str,
    deadline: &str,
    parent: &str,
    start: u32,
    end: u32,
) -> Row {
    (
        kind,
        pillar.into(),
        question.into(),
        text.into(),
        deadline.into(),
        parent.into(),
        start,
        end,
    )
}

const CAUSE_OF_CONCERN: &str = include_str!("fixtures/synthetic-peel-cause-of-concern.txt");
const NATIONAL: &str = include_str!("fixtures/synthetic-national-recommendations.txt");
const BULLETS: &str = include_str!("fixtures/synthetic-bullet-styles.txt");
const WEB: &str = include_str!("fixtures/synthetic-web-layout.txt");
const FIRE: &str = include_str!("fixtures/synthetic-frs-hampshire-and-isle-of-wight.txt");
const FIVE_TIER: &str = include_str!("fixtures/synthetic-peel-2021-22-five-tier.txt");

#[test]
fn causes_of_concern_and_their_recommendations_with_deadlines() {
    use FindingKind::{AreaForImprovement as Afi, CauseOfConcern as Cause, Recommendation as Rec};
    let report = parse(CAUSE_OF_CONCERN);
    let first = "Loamshire Constabulary does not consistently identify vulnerable people when they first \
                 contact the force, and its response to domestic abuse incidents is often delayed. This means \
                 that victims may be left at risk.";
    let second = "The force does not have enough trained investigators to investigate child abuse.";
    let e = "Effectiveness";
    let pvp = "Protecting vulnerable people";
    let six = "within six months";
    assert_eq!(
        rows(&report.findings),
        vec![
            row(Cause, e, pvp, first, "", "", 44, 44),
            row(
                Rec,
                e,
                pvp,
                "make sure that call handlers use a structured risk assessment for every call involving domestic abuse;",
                six,
                first,
                50,
                50
            ),
            row(
                Rec,
                e,
                pvp,
                "review how it allocates officers to incidents involving vulnerable victims; and",
                six,
                first,
                51,
                51
            ),
            row(
                Rec,
                e,
                pvp,
                "make sure that supervisors check the quality of risk assessments.",
                six,
                first,
                52,
                52
            ),
            row(Cause, e, pvp, second, "", "", 56, 56),
            row(
                Rec,
                e,
                pvp,
                "The force should immediately increase the number of trained investigators in its child abuse investigation unit.",
                "immediately",
                second,
                60,
                60
            ),
            row(
                Rec,
                e,
                pvp,
                "By 31 March 2020, the force should review the workloads of all investigators in the unit.",
                "by 31 March 2020",
                second,
                61,
                61
            ),
            row(
                Afi,
                e,
                pvp,
                "The force should improve its understanding of hidden harm.",
                "",
                "",
                65,
                65
            ),
            row(
                Afi,
                e,
                pvp,
                "The force should ensure it shares information with partner organisations in good time.",
                "",
                "",
                66,
                66
            ),
            row(
                Afi,
                "Efficiency",
                "Planning for the future",
                "The force should develop a workforce plan for its police staff.",
                "",
                "",
                90,
                90
            ),
            row(
                Afi,
                "Efficiency",
                "Planning for the future",
                "The force should evaluate the benefits of its change programme.",
                "",
                "",
                91,
                91
            ),
        ]
    );
    let judgments: Vec<(String, Grade, String, bool)> = report
        .judgments
        .iter()
        .map(|j| {
            (
                j.question.clone(),
                j.grade(),
                j.last_inspected.clone(),
                j.carried_over,
            )
        })
        .collect();
    assert_eq!(
        judgments,
        vec![
            (
                "Protecting vulnerable people".into(),
                Grade::Inadequate,
                "2018/19".into(),
                false
            ),
            (
                "Investigating crime".into(),
                Grade::RequiresImprovement,
                "2017".into(),
                true
            ),
            (
                "Planning for the future".into(),
                Grade::Good,
                "2018/19".into(),
                false
            ),
        ]
    );
    assert_eq!(report.inspection.unwrap_or_default().published, "2019-07");
    assert_eq!(report.warnings, Vec::<String>::new());
}

#[test]
fn national_recommendations_to_all_forces() {
    use FindingKind::NationalRecommendation as National;
    let report = parse(NATIONAL);
    let l = "Legitimacy";
    let q = "Treating the public fairly";
    assert_eq!(
        rows(&report.findings),
        vec![
            row(
                National,
                l,
                q,
                "publish a plan to reduce disproportionality in the use of stop and search; and",
                "by 31 March 2020",
                "",
                25,
                25
            ),
            row(
                National,
                l,
                q,
                "report progress against it to their police and crime commissioner.",
                "by 31 March 2020",
                "",
                26,
                26
            ),
            row(
                National,
                l,
                q,
                "We recommend that all forces should review their use of force data by 30 September 2020.",
                "by 30 September 2020",
                "",
                30,
                30
            ),
            // A list of fragments whose last one carries the deadline: the whole list's.
            row(
                National,
                l,
                q,
                "record the ethnicity of every person searched;",
                "by 31 December 2020",
                "",
                34,
                34
            ),
            row(
                National,
                l,
                q,
                "monitor the find rates of searches by ethnicity; and",
                "by 31 December 2020",
                "",
                35,
                35
            ),
            row(
                National,
                l,
                q,
                "publish the results by 31 December 2020.",
                "by 31 December 2020",
                "",
                36,
                36
            ),
        ]
    );
    // The past-tense recommendation of 2017 is a follow-up, not a finding.
    let follow_ups: Vec<(String, String, FollowUpOutcome, u32)> = report
        .follow_ups
        .iter()
        .map(|f| {
            (
                f.referenced_period.clone(),
                f.referenced_report.clone(),
                f.outcome(),
                f.line_start,
            )
        })
        .collect();
    assert_eq!(
        follow_ups,
        vec![(
            "2017".into(),
            "legitimacy".into(),
            FollowUpOutcome::NotAddressed,
            19
        )]
    );
}

#[test]
fn bullets_of_every_style_and_none() {
    use FindingKind::AreaForImprovement as Afi;
    let report = parse(BULLETS);
    let e = "Effectiveness";
    assert_eq!(
        rows(&report.findings),
        vec![
            row(
                Afi,
                e,
                "Investigating crime",
                "The force should improve the supervision of investigations.",
                "",
                "",
                21,
                21
            ),
            row(
                Afi,
                e,
                "Investigating crime",
                "The force should make sure victims are updated in line with the Code of Practice for Victims of Crime.",
                "",
                "",
                22,
                22
            ),
            // A bullet wrapped onto a second line is one item spanning both.
            row(
                Afi,
                e,
                "Protecting vulnerable people",
                "The force should improve how it manages registered sex offenders, making sure that visits take place on time.",
                "",
                "",
                30,
                31
            ),
            row(
                Afi,
                e,
                "Protecting vulnerable people",
                "The force should review its use of police bail.",
                "",
                "",
                32,
                32
            ),
            row(
                Afi,
                "Efficiency",
                "Planning for the future",
                "The force should develop its workforce plan.",
                "",
                "",
                46,
                46
            ),
            row(
                Afi,
                "Efficiency",
                "Planning for the future",
                "The force should evaluate its collaboration with neighbouring forces.",
                "",
                "",
                48,
                48
            ),
        ]
    );
}

#[test]
fn the_web_page_layout_with_question_headings() {
    use FindingKind::AreaForImprovement as Afi;
    let report = parse(WEB);
    let inspection = report.inspection.clone().unwrap_or_default();
    assert_eq!(inspection.programme, "PEEL");
    assert_eq!(inspection.period, "2018/19");
    assert_eq!(
        inspection.title,
        "PEEL 2018/19: An inspection of Loamshire Constabulary"
    );
    assert_eq!(inspection.published, "2019-09-27");
    assert_eq!(
        report.organisation.clone().unwrap_or_default().id,
        "loamshire"
    );
    let pillars: Vec<(String, Grade)> = report
        .pillars
        .iter()
        .map(|p| (p.pillar.clone(), p.grade()))
        .collect();
    assert_eq!(
        pillars,
        vec![
            ("Effectiveness".into(), Grade::RequiresImprovement),
            ("Efficiency".into(), Grade::Good),
            ("Legitimacy".into(), Grade::Good),
        ]
    );
    let judgments: Vec<(String, String, Grade, String, bool)> = report
        .judgments
        .iter()
        .map(|j| {
            (
                j.pillar.clone(),
                j.question.clone(),
                j.grade(),
                j.last_inspected.clone(),
                j.carried_over,
            )
        })
        .collect();
    assert_eq!(
        judgments,
        vec![
            (
                "Effectiveness".into(),
                "Investigating crime".into(),
                Grade::RequiresImprovement,
                "2018/19".into(),
                false
            ),
            (
                "Effectiveness".into(),
                "Protecting vulnerable people".into(),
                Grade::Good,
                "2018/19".into(),
                false
            ),
            (
                "Efficiency".into(),
                "How well does the force plan for the future?".into(),
                Grade::Good,
                "2018/19".into(),
                false
            ),
        ]
    );
    assert_eq!(
        rows(&report.findings),
        vec![
            row(
                Afi,
                "Effectiveness",
                "Investigating crime",
                "The force should improve the supervision of investigations.",
                "",
                "",
                11,
                11
            ),
            row(
                Afi,
                "Effectiveness",
                "Investigating crime",
                "The force should make sure that it updates victims in line with the Code of Practice for Victims of Crime.",
                "",
                "",
                12,
                12
            ),
            row(
                Afi,
                "Efficiency",
                "How well does the force plan for the future?",
                "The force should develop a comprehensive skills strategy.",
                "",
                "",
                21,
                21
            ),
        ]
    );
    let follow_up = report.follow_ups.first().cloned().unwrap_or_default();
    assert_eq!(follow_up.outcome(), FollowUpOutcome::NotAddressed);
    assert_eq!(
        follow_up.text,
        "In our 2017 effectiveness report, we said the force needed to improve the supervision of \
         investigations. It has not made enough progress."
    );
    assert_eq!(report.warnings, Vec::<String>::new());
}

#[test]
fn a_fire_and_rescue_service() {
    use FindingKind::{AreaForImprovement as Afi, CauseOfConcern as Cause, Recommendation as Rec};
    let report = parse(FIRE);
    let organisation = report.organisation.clone().unwrap_or_default();
    assert_eq!(organisation.id, "hampshire-and-isle-of-wight-fire");
    assert_eq!(
        organisation.name,
        "Hampshire and Isle of Wight Fire and Rescue Service"
    );
    assert_eq!(organisation.kind(), OrganisationKind::FireAndRescueService);
    let inspection = report.inspection.clone().unwrap_or_default();
    assert_eq!(inspection.programme, "FRS");
    assert_eq!(inspection.period, "2023–25");
    assert_eq!(inspection.published, "2025-01");
    let judgments: Vec<(String, String, Grade, GradeScale)> = report
        .judgments
        .iter()
        .map(|j| (j.pillar.clone(), j.question.clone(), j.grade(), j.scale()))
        .collect();
    let five = GradeScale::FiveTier;
    assert_eq!(
        judgments,
        vec![
            (
                "Effectiveness".into(),
                "Understanding the risk of fire and other emergencies".into(),
                Grade::Good,
                five
            ),
            (
                "Effectiveness".into(),
                "Preventing fires and other risks".into(),
                Grade::Adequate,
                five
            ),
            (
                "Effectiveness".into(),
                "Responding to fires and other emergencies".into(),
                Grade::RequiresImprovement,
                five
            ),
            (
                "Efficiency".into(),
                "Making best use of resources".into(),
                Grade::Adequate,
                five
            ),
            (
                "People".into(),
                "Promoting the right values and culture".into(),
                Grade::RequiresImprovement,
                five
            ),
        ]
    );
    let cause = "The service hasn't done enough to make sure its staff feel able to challenge inappropriate behaviour.";
    let culture = "Promoting the right values and culture";
    assert_eq!(
        rows(&report.findings),
        vec![
            row(
                Afi,
                "Effectiveness",
                "Understanding the risk of fire and other emergencies",
                "The service should make sure its firefighters have access to up-to-date risk information.",
                "",
                "",
                19,
                19
            ),
            row(
                Afi,
                "Effectiveness",
                "Responding to fires and other emergencies",
                "The service should make sure it has enough fire engines available to respond to emergencies.",
                "",
                "",
                31,
                31
            ),
            row(Cause, "People", culture, cause, "", "", 47, 47),
            row(
                Rec,
                "People",
                culture,
                "make sure all staff understand how to raise concerns; and",
                "by 31 March 2025",
                cause,
                53,
                53
            ),
            row(
                Rec,
                "People",
                culture,
                "monitor and act on the results of its staff surveys.",
                "by 31 March 2025",
                cause,
                54,
                54
            ),
        ]
    );
    assert_eq!(report.warnings, Vec::<String>::new());
}

#[test]
fn the_five_tier_scale() {
    use FindingKind::{
        AreaForImprovement as Afi, CauseOfConcern as Cause, NoteworthyPractice as Practice,
        Recommendation as Rec,
    };
    let report = parse(FIVE_TIER);
    let inspection = report.inspection.clone().unwrap_or_default();
    assert_eq!(inspection.period, "2021/22");
    assert_eq!(inspection.published, "2022-07");
    let judgments: Vec<(String, Grade, GradeScale, bool)> = report
        .judgments
        .iter()
        .map(|j| (j.question.clone(), j.grade(), j.scale(), j.carried_over))
        .collect();
    let five = GradeScale::FiveTier;
    assert_eq!(
        judgments,
        vec![
            (
                "Engaging with and treating the public with fairness and respect".into(),
                Grade::Adequate,
                five,
                false
            ),
            (
                "Preventing crime and anti-social behaviour".into(),
                Grade::Good,
                five,
                false
            ),
            (
                "Investigating crime".into(),
                Grade::RequiresImprovement,
                five,
                false
            ),
            (
                "Protecting vulnerable people".into(),
                Grade::Adequate,
                five,
                false
            ),
            (
                "Building, supporting and protecting the workforce".into(),
                Grade::Outstanding,
                five,
                false
            ),
        ]
    );
    let cause = "The force is not investigating crime effectively. Too many investigations are not supervised well enough.";
    let ic = "Investigating crime";
    assert_eq!(
        rows(&report.findings),
        vec![
            row(
                Afi,
                "",
                "Engaging with and treating the public with fairness and respect",
                "The force should improve how it records the reasons for stop and search.",
                "",
                "",
                25,
                25
            ),
            row(Cause, "", ic, cause, "", "", 41, 41),
            row(
                Rec,
                "",
                ic,
                "make sure that supervisors review every open investigation; and",
                "within three months",
                cause,
                47,
                47
            ),
            row(
                Rec,
                "",
                ic,
                "improve the quality of its investigation plans.",
                "within three months",
                cause,
                48,
                48
            ),
            row(
                Practice,
                "",
                "Building, supporting and protecting the workforce",
                "The force has introduced a wellbeing dog scheme that officers value.",
                "",
                "",
                60,
                60
            ),
        ]
    );
    let follow_up = report.follow_ups.first().cloned().unwrap_or_default();
    assert_eq!(
        (follow_up.referenced_period.as_str(), follow_up.outcome()),
        ("2018/19", FollowUpOutcome::NotAddressed)
    );
}

#[test]
fn windows_line_endings_give_identical_results_on_every_fixture() {
    for text in [CAUSE_OF_CONCERN, NATIONAL, BULLETS, WEB, FIRE, FIVE_TIER] {
        let windows = format!("\u{feff}{}", text.replace('\n', "\r\n"));
        assert_eq!(
            closeout_report::parse(&windows),
            closeout_report::parse(text)
        );
    }
}

#[test]
fn every_fixture_renders_a_summary() {
    for text in [CAUSE_OF_CONCERN, NATIONAL, BULLETS, WEB, FIRE, FIVE_TIER] {
        let summary = closeout_report::render_summary(&parse(text));
        assert!(summary.contains("Findings ("), "{summary}");
    }
    let summary = closeout_report::render_summary(&parse(CAUSE_OF_CONCERN));
    assert!(summary.contains("Deadline: within six months"), "{summary}");
    assert!(
        summary.contains("Cause of concern: Loamshire Constabulary does not"),
        "{summary}"
    );
}
