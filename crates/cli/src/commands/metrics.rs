//! Commands against the metrics service: `scorecard` and `peers`.
//! Rendering is separate from the calls so it can be tested without a
//! server.

use crate::commands::Identity;
use crate::error::CliError;
use crate::output::{Table, enum_words, kind_words, print_json, status_words};
use crate::parse;
use clap::Args;
use closeout_proto::metrics_service_client::MetricsServiceClient;
use closeout_proto::{
    CalendarDate, GetPeerComparisonRequest, GetPeerComparisonResponse, GetScorecardRequest, Grade,
    GradeScale, GradeTrend, HeadlineFigures, ItemStatus, Scorecard,
};
use tonic::transport::Channel;

/// Where the metrics service is.
#[derive(Args, Clone, Debug)]
pub struct MetricsServer {
    /// Metrics service address (host:port: TLS when a CA is known).
    #[arg(long, env = "CLOSEOUT_METRICS_ADDR", default_value = "127.0.0.1:50053")]
    pub addr: String,
    #[command(flatten)]
    pub identity: Identity,
}

impl MetricsServer {
    async fn client(&self) -> Result<MetricsServiceClient<Channel>, CliError> {
        Ok(MetricsServiceClient::new(
            self.identity.connect(&self.addr).await?,
        ))
    }
}

/// What `scorecard` and `peers` ask about: an organisation, as of a day.
#[derive(Args)]
pub struct OrganisationArgs {
    /// Organisation id, e.g. `hertfordshire`.
    organisation: String,
    /// Answer as things stood at the end of this day (YYYY-MM-DD, UTC).
    #[arg(long = "as-of")]
    as_of: Option<String>,
    /// Print canonical JSON instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    server: MetricsServer,
}

fn as_of(text: &Option<String>) -> Result<Option<CalendarDate>, CliError> {
    text.as_deref()
        .map(|t| parse::date("--as-of", t))
        .transpose()
}

pub async fn scorecard(args: OrganisationArgs) -> Result<(), CliError> {
    let request = args.server.identity.request(GetScorecardRequest {
        organisation_id: args.organisation.clone(),
        as_of: as_of(&args.as_of)?,
    })?;
    let response = args.server.client().await?.get_scorecard(request).await?;
    let response = response.into_inner();
    if args.json {
        return print_json("GetScorecardResponse", &response);
    }
    let card = response.scorecard.unwrap_or_default();
    print!("{}", render_scorecard(&card));
    Ok(())
}

pub async fn peers(args: OrganisationArgs) -> Result<(), CliError> {
    let request = args.server.identity.request(GetPeerComparisonRequest {
        organisation_id: args.organisation.clone(),
        as_of: as_of(&args.as_of)?,
    })?;
    let response = args
        .server
        .client()
        .await?
        .get_peer_comparison(request)
        .await?;
    let response = response.into_inner();
    if args.json {
        return print_json("GetPeerComparisonResponse", &response);
    }
    print!("{}", render_peers(&args.organisation, &response));
    Ok(())
}

fn grade_words(grade: i32) -> String {
    Grade::try_from(grade)
        .map(|g| enum_words(g.as_str_name(), "GRADE_"))
        .unwrap_or_else(|_| format!("grade {grade}"))
}

fn scale_words(scale: i32) -> &'static str {
    match GradeScale::try_from(scale) {
        Ok(GradeScale::FourTier) => "four-tier",
        Ok(GradeScale::FiveTier) => "five-tier",
        _ => "unknown scale",
    }
}

/// An arrow and a word for a grade's trend.
pub fn trend_words(trend: i32) -> &'static str {
    match GradeTrend::try_from(trend) {
        Ok(GradeTrend::Improved) => "↑ improved",
        Ok(GradeTrend::Declined) => "↓ declined",
        Ok(GradeTrend::Unchanged) => "= unchanged",
        Ok(GradeTrend::NotComparable) => "≠ not comparable",
        Ok(GradeTrend::First) => "• first grade",
        _ => "?",
    }
}

/// A number of days without a needless `.0`.
fn days(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// A plain value with at most two decimals.
fn value(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The scorecard as text for people.
pub fn render_scorecard(card: &Scorecard) -> String {
    let mut out = String::new();
    let day = card
        .as_of
        .map(|d| d.iso())
        .unwrap_or_else(|| "today".into());
    out.push_str(&format!(
        "Scorecard of {} as of {day}\n\n",
        card.organisation_id
    ));
    let count = |status: ItemStatus| {
        card.by_status
            .iter()
            .filter(|s| s.status == status as i32)
            .map(|s| s.count)
            .sum::<u32>()
    };
    let closed = count(ItemStatus::Closed);
    let superseded = count(ItemStatus::Superseded);
    let open = card.total_items.saturating_sub(closed + superseded);
    out.push_str(&format!(
        "{} items: {open} open, {closed} closed, {superseded} superseded; {} overdue\n\n",
        card.total_items, card.overdue
    ));

    let mut table = Table::new(&["STATUS", "ITEMS"]);
    for s in &card.by_status {
        table.row(vec![status_words(s.status), s.count.to_string()]);
    }
    out.push_str(&table.render());
    out.push('\n');

    if !card.by_pillar.is_empty() {
        let mut table = Table::new(&["PILLAR", "OPEN", "CLOSED", "TOTAL"]);
        for p in &card.by_pillar {
            let name = if p.pillar.is_empty() {
                "(no pillar)".to_string()
            } else {
                p.pillar.clone()
            };
            table.row(vec![
                name,
                p.open.to_string(),
                p.closed.to_string(),
                p.total.to_string(),
            ]);
        }
        out.push_str(&table.render());
        out.push('\n');
    }

    if !card.by_kind.is_empty() {
        let mut table = Table::new(&["KIND", "ITEMS"]);
        for k in &card.by_kind {
            table.row(vec![kind_words(k.kind), k.count.to_string()]);
        }
        out.push_str(&table.render());
        out.push('\n');
    }

    out.push_str(&format!(
        "Ageing of open items: median {} days, 90th percentile {} days\n",
        days(card.median_open_age_days),
        days(card.p90_open_age_days)
    ));
    out.push_str(&format!(
        "Time to close: median {} days\n\n",
        days(card.median_days_to_close)
    ));

    if card.grades.is_empty() {
        out.push_str("No graded judgments.\n");
    } else {
        let mut table = Table::new(&["PILLAR", "QUESTION", "GRADE", "PERIOD", "TREND"]);
        for g in &card.grades {
            let mut grade = grade_words(g.grade);
            if g.carried_over {
                grade.push_str(" (carried over)");
            }
            let mut trend = trend_words(g.trend).to_string();
            if g.previous_grade != Grade::Unspecified as i32 {
                trend.push_str(&format!(
                    " (was {}, {}",
                    grade_words(g.previous_grade),
                    g.previous_period
                ));
                if g.previous_scale != g.scale {
                    trend.push_str(&format!(", {} scale", scale_words(g.previous_scale)));
                }
                trend.push(')');
            }
            let question = if g.question.is_empty() {
                "(overall)".to_string()
            } else {
                g.question.clone()
            };
            table.row(vec![
                g.pillar.clone(),
                question,
                grade,
                g.period.clone(),
                trend,
            ]);
        }
        out.push_str(&table.render());
    }

    if !card.indicators.is_empty() {
        out.push('\n');
        let mut table = Table::new(&["INDICATOR", "PERIOD", "VALUE", "COMPARATOR", "DIFFERENCE"]);
        for n in &card.indicators {
            let unit = if n.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", n.unit)
            };
            let (comparator, difference) = match n.comparator_value {
                Some(c) => {
                    let diff = n.value - c;
                    let relative = if c == 0.0 {
                        String::new()
                    } else {
                        format!(" ({:+.1}%)", diff / c * 100.0)
                    };
                    (
                        format!("{} {}", n.comparator, value(c)),
                        format!(
                            "{}{}{relative}",
                            if diff >= 0.0 { "+" } else { "" },
                            value(diff)
                        ),
                    )
                }
                None => (n.comparator.clone(), String::new()),
            };
            table.row(vec![
                n.measure.clone(),
                n.period.clone(),
                format!("{}{unit}", value(n.value)),
                comparator,
                difference,
            ]);
        }
        out.push_str(&table.render());
    }
    out
}

/// The peer comparison as a table for people.
pub fn render_peers(organisation: &str, response: &GetPeerComparisonResponse) -> String {
    let mut table = Table::new(&[
        "GROUP",
        "ORGANISATIONS",
        "OPEN",
        "CLOSED",
        "OVERDUE",
        "CLOSURE RATE",
        "MEDIAN DAYS TO CLOSE",
    ]);
    let rows: [(&str, &Option<HeadlineFigures>); 3] = [
        (organisation, &response.organisation),
        ("most similar group", &response.most_similar_group),
        ("all organisations", &response.all_organisations),
    ];
    for (name, figures) in rows {
        let f = figures.clone().unwrap_or_default();
        table.row(vec![
            name.to_string(),
            f.organisations.to_string(),
            f.open_items.to_string(),
            f.closed_items.to_string(),
            f.overdue_items.to_string(),
            format!("{:.0}%", f.closure_rate * 100.0),
            days(f.median_days_to_close),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use closeout_proto::{IndicatorComparison, PillarCount, QuestionGrade, StatusCount};

    #[test]
    fn scorecard_reads_like_a_report() {
        let card = Scorecard {
            organisation_id: "hertfordshire".into(),
            as_of: Some(CalendarDate::new(2023, 1, 1)),
            by_status: vec![
                StatusCount {
                    status: ItemStatus::Open as i32,
                    count: 1,
                },
                StatusCount {
                    status: ItemStatus::InProgress as i32,
                    count: 2,
                },
                StatusCount {
                    status: ItemStatus::Closed as i32,
                    count: 2,
                },
                StatusCount {
                    status: ItemStatus::Superseded as i32,
                    count: 1,
                },
            ],
            by_pillar: vec![PillarCount {
                pillar: "Effectiveness".into(),
                open: 2,
                closed: 1,
                total: 4,
            }],
            overdue: 1,
            median_open_age_days: 1188.0,
            p90_open_age_days: 1188.0,
            median_days_to_close: 496.5,
            grades: vec![QuestionGrade {
                pillar: "Effectiveness".into(),
                question: "Investigating crime".into(),
                grade: Grade::Adequate as i32,
                scale: GradeScale::FiveTier as i32,
                period: "2021/22".into(),
                previous_grade: Grade::Outstanding as i32,
                previous_scale: GradeScale::FourTier as i32,
                previous_period: "2018/19".into(),
                trend: GradeTrend::NotComparable as i32,
                carried_over: false,
            }],
            indicators: vec![IndicatorComparison {
                measure: "999 calls per 1,000 population".into(),
                period: "2018".into(),
                value: 143.0,
                unit: "per 1,000".into(),
                comparator: "England and Wales".into(),
                comparator_value: Some(175.0),
                ..Default::default()
            }],
            total_items: 6,
            ..Default::default()
        };
        let text = render_scorecard(&card);
        assert!(
            text.contains("Scorecard of hertfordshire as of 2023-01-01"),
            "{text}"
        );
        assert!(
            text.contains("6 items: 3 open, 2 closed, 1 superseded; 1 overdue"),
            "{text}"
        );
        assert!(text.contains("in progress  2"), "{text}");
        assert!(text.contains("median 1188 days"), "{text}");
        assert!(text.contains("Time to close: median 496.5 days"), "{text}");
        assert!(
            text.contains("≠ not comparable (was outstanding, 2018/19, four-tier scale)"),
            "{text}"
        );
        assert!(
            text.contains("England and Wales 175  -32 (-18.3%)"),
            "{text}"
        );
    }

    #[test]
    fn peers_table_has_three_rows() {
        let response = GetPeerComparisonResponse {
            organisation: Some(HeadlineFigures {
                group: "hertfordshire".into(),
                organisations: 1,
                open_items: 3,
                closed_items: 2,
                closure_rate: 0.4,
                median_days_to_close: 496.5,
                ..Default::default()
            }),
            most_similar_group: None,
            all_organisations: None,
        };
        let text = render_peers("hertfordshire", &response);
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.contains("40%"), "{text}");
        assert!(text.contains("most similar group"), "{text}");
    }
}
