//! Property tests: no input makes the parser panic, and whatever it returns is
//! consistent with the text (line spans inside the text, summaries render).

use closeout_proto::ParsedReport;
use proptest::prelude::*;

const SAMPLE: &str = include_str!("../../../tests/fixtures/peel-2018-19-hertfordshire.txt");

/// Lines as the parser numbers them.
fn line_count(text: &str) -> u32 {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let separator = if !text.contains('\n') && text.contains('\r') {
        '\r'
    } else {
        '\n'
    };
    u32::try_from(text.split(separator).count()).unwrap_or(u32::MAX)
}

/// Parses `text` and checks every span of an accepted report.
fn check(text: &str) {
    let Ok(report) = closeout_report::parse(text) else {
        return;
    };
    let lines = line_count(text);
    let within = |start: u32, end: u32| 1 <= start && start <= end && end <= lines;
    for f in &report.findings {
        assert!(
            within(f.line_start, f.line_end),
            "finding span {}..{} of {lines}",
            f.line_start,
            f.line_end
        );
        assert!(!f.text.is_empty());
    }
    for f in &report.follow_ups {
        assert!(
            within(f.line_start, f.line_end),
            "follow-up span {}..{} of {lines}",
            f.line_start,
            f.line_end
        );
        assert!(!f.text.is_empty());
    }
    for i in &report.indicators {
        assert!(
            within(i.line, i.line),
            "indicator line {} of {lines}",
            i.line
        );
        assert!(i.value.is_finite());
    }
    let summary = closeout_report::render_summary(&report);
    assert!(summary.contains("Findings ("));
    let _: Result<String, _> = closeout_proto::json::to_json_pretty("ParsedReport", &report);
    let _: ParsedReport = report;
}

fn sample_lines() -> Vec<String> {
    SAMPLE.split('\n').map(str::to_string).collect()
}

/// Fragments of reports, to build texts that reach deep into the parser.
const FRAGMENTS: &[&str] = &[
    "PEEL",
    "Police effectiveness, efficiency and legitimacy 2018/19",
    "An inspection of Loamshire Constabulary",
    "An inspection of ",
    "Contents",
    "Armed policing\t25",
    "Effectiveness",
    "Efficiency",
    "People",
    "How effectively does the force reduce crime and keep people safe?",
    "How good is the force at ",
    "Good",
    "Adequate",
    "Requires improvement",
    "Areas for improvement",
    "Cause of concern",
    "Recommendations",
    "Recommendations to all forces",
    "Noteworthy practice",
    "Within six months, the force should:",
    "We recommend that all forces should:",
    "- ",
    "• ",
    "1. ",
    "(a) ",
    "The force should immediately act by 31 March 2020.",
    "make sure that",
    "In our 2017 effectiveness report, we said",
    "In our 2017",
    "In 2017, we identified",
    "In November 2017, we published our",
    "Last year, we identified",
    "This was an area for improvement in 2017.",
    "It has made these improvements.",
    "The force has made limited progress to date.",
    "\tHertfordshire rate\tEngland and Wales rate",
    "\tEffectiveness\t\tLast inspected",
    "Investigating crime\tGood\t\t2018/19",
    "999 calls 12 months ending 31 March 2019\t143\t175",
    "\tFTE in post on 31 March 2019\tFTE in post on 31 March 2014\tPercentage change",
    "Police Officer\t2,009\t1,927\t4%",
    "£162",
    "-3%",
    "12 months ending ",
    "as of 31st",
    "'s MSG forces are ",
    "Essex Police and ",
    "September 2019 | ©HMICFRS 2019",
    "Published on: 9 June 2023",
    "[link](#)",
    "[",
    "](",
    "é",
    "’",
    "\r",
    "\u{feff}",
    "\u{a0}",
    "\t",
    " ",
    ".",
    "?",
    ":",
    "",
];

fn fragment_text() -> impl Strategy<Value = String> {
    let line = prop::collection::vec(prop::sample::select(FRAGMENTS), 0..4)
        .prop_map(|parts| parts.concat());
    prop::collection::vec(line, 0..60).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn report_fragments_never_panic(text in fragment_text()) {
        check(&text);
    }

    #[test]
    fn truncations_of_the_sample_never_panic(end in 0..=SAMPLE.len(), start in 0..200usize) {
        let mut end = end;
        while !SAMPLE.is_char_boundary(end) {
            end -= 1;
        }
        let mut start = start.min(end);
        while !SAMPLE.is_char_boundary(start) {
            start -= 1;
        }
        check(&SAMPLE[..end]);
        check(&SAMPLE[start..end]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn shuffled_lines_of_the_sample_never_panic(lines in Just(sample_lines()).prop_shuffle()) {
        check(&lines.join("\n"));
    }

    #[test]
    fn edited_lines_of_the_sample_never_panic(
        edits in prop::collection::vec((0..955usize, 0..4u8, any::<String>()), 1..40)
    ) {
        let mut lines = sample_lines();
        for (at, op, junk) in edits {
            let at = at.min(lines.len().saturating_sub(1));
            match op {
                0 if !lines.is_empty() => { lines.remove(at); }
                1 => lines.insert(at, junk),
                2 => { let copy = lines.get(at).cloned().unwrap_or_default(); lines.insert(at, copy); }
                _ => { if let Some(line) = lines.get_mut(at) { line.push_str(&junk); } }
            }
        }
        check(&lines.join("\n"));
        check(&lines.join("\r\n"));
    }
}
