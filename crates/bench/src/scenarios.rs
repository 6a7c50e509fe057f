//! The scenarios, in the order they run, each printing one line that
//! starts with its name: the figure, its ceiling, the ratio, p50/p99 and
//! the settings. Data is made through the real ImportReport path (the
//! sample report under other organisations' names), so the tracker opens
//! items and the metrics service counts them from the real events.

use crate::Options;
use crate::ceilings::{self, Ceilings};
use crate::load::{self, Compared, Stats, ms};
use crate::stack::{Stack, with_token};
use closeout_proto as pb;
use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::metrics_service_client::MetricsServiceClient;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// The sample PEEL report (Hertfordshire Constabulary, 2018/19).
const SAMPLE: &str = include_str!("../../../tests/fixtures/peel-2018-19-hertfordshire.txt");
/// A fire and rescue service's report (synthetic, 2018/19).
const FIRE_SAMPLE: &str = include_str!("../../../tests/fixtures/pairs/fenmoor-2018-19.txt");

/// Sizes of one run.
struct Sizes {
    imports: usize,
    calls: usize,
    note_calls: usize,
    parse_bytes: usize,
    lag_rate: f64,
    lag_commands: usize,
    latency_calls: usize,
}

impl Sizes {
    fn of(options: &Options) -> Sizes {
        if options.quick {
            Sizes {
                imports: 10,
                calls: 400,
                note_calls: 128,
                parse_bytes: 5 * 1024 * 1024,
                lag_rate: 50.0,
                lag_commands: 20,
                latency_calls: 40,
            }
        } else {
            Sizes {
                imports: 60,
                calls: 8000,
                note_calls: 1600,
                parse_bytes: 5 * 1024 * 1024,
                lag_rate: 100.0,
                lag_commands: 300,
                latency_calls: 300,
            }
        }
    }
}

/// Prints a figure beside its ceiling.
fn print_compared(name: &str, settings: &str, unit: &str, c: &Compared, ceiling_name: &str) {
    println!(
        "{name} [{settings}]: {:.0} {unit} p50 {} p99 {} | ceiling {ceiling_name}: {:.0} {unit} \
         p50 {} p99 {} | ratio {:.2} (min {:.2}, max {:.2}, {} runs)",
        c.figure.rate,
        ms(c.figure.p50),
        ms(c.figure.p99),
        c.ceiling.rate,
        ms(c.ceiling.p50),
        ms(c.ceiling.p99),
        c.ratio.1,
        c.ratio.0,
        c.ratio.2,
        c.runs,
    );
}

/// A name no earlier run used, so every import makes a fresh organisation.
fn run_tag() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    // The last hex digits vary between runs; letters only, as in a name.
    id[20..]
        .chars()
        .map(|c| match c.to_digit(16) {
            Some(d) => char::from(b'a' + d as u8),
            None => 'x',
        })
        .collect()
}

/// The sample report as an inspection of `name` Constabulary.
fn police_report(name: &str, year_back: usize) -> String {
    let text = SAMPLE.replace("Hertfordshire", name);
    shift_period(text, year_back)
}

/// The fire sample as an inspection of `name` Fire and Rescue Service.
fn fire_report(name: &str, year_back: usize) -> String {
    let text = FIRE_SAMPLE.replace("Fenmoor", name);
    shift_period(text, year_back)
}

/// The report's 2018/19 moved `back` years earlier (another inspection).
fn shift_period(text: String, back: usize) -> String {
    if back == 0 {
        return text;
    }
    let first = 2018 - back;
    text.replace("2018/19", &format!("{first}/{:02}", (first + 1) % 100))
}

/// Imports `text`, which must make a new inspection.
async fn import(
    client: &mut FindingsServiceClient<Channel>,
    token: &str,
    text: String,
) -> anyhow::Result<pb::ImportReportResponse> {
    let reply = client
        .import_report(with_token(
            token,
            pb::ImportReportRequest {
                text,
                source_name: "closeout-bench".into(),
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    anyhow::ensure!(
        reply.created,
        "ImportReport of a generated report did not create an inspection ({})",
        reply.inspection_id
    );
    Ok(reply)
}

/// Every item the tracker has (all organisations), as (id, organisation,
/// version, status).
async fn all_items(stack: &Stack) -> anyhow::Result<Vec<pb::TrackedItem>> {
    let mut client = TrackerServiceClient::new(stack.tracker.clone());
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_items(stack.request(pb::ListItemsRequest {
                page_size: 500,
                page_token: token,
                ..Default::default()
            }))
            .await?
            .into_inner();
        items.extend(page.items);
        if page.next_page_token.is_empty() {
            return Ok(items);
        }
        token = page.next_page_token;
    }
}

/// Waits until the tracker has opened at least `count` items.
async fn wait_for_items(stack: &Stack, count: usize) -> anyhow::Result<Vec<pb::TrackedItem>> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let items = all_items(stack).await?;
        if items.len() >= count {
            return Ok(items);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the tracker opened {} of {count} items in 10 minutes",
            items.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run_all(options: Options) -> anyhow::Result<()> {
    let sizes = Sizes::of(&options);
    let runs = options.runs.max(1);
    let mut stack = match &options.findings_addr {
        Some(findings) => {
            let token = options.token.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "a running stack needs an inspectorate's bearer token (--token or \
                     CLOSEOUT_TOKEN; `closeout token mint` makes one)"
                )
            })?;
            Stack::external(
                findings,
                &options.tracker_addr,
                &options.metrics_addr,
                token,
            )
            .await?
        }
        None => Stack::private().await?,
    };
    let mut ceilings = Ceilings::create().await?;
    let result = scenarios(&options, &sizes, runs, &mut stack, &mut ceilings).await;
    ceilings.remove().await;
    stack.shut_down().await;
    result
}

async fn scenarios(
    options: &Options,
    sizes: &Sizes,
    runs: usize,
    stack: &mut Stack,
    ceilings: &mut Ceilings,
) -> anyhow::Result<()> {
    println!(
        "closeout-bench: {} stack, {} mode, {runs} interleaved runs per figure",
        if stack.private.is_some() {
            "private"
        } else {
            "running"
        },
        if options.quick { "quick" } else { "full" },
    );
    let tag = run_tag();
    let token = stack.token();
    let mut findings = FindingsServiceClient::new(stack.findings.clone());

    if options.runs_scenario("parse") {
        parse(sizes.parse_bytes, runs);
    }

    // ImportReport of the sample, a fresh organisation each, against
    // ParseReport of the same documents over gRPC.
    let mut pairs = Vec::new();
    let mut imported = 0;
    for run in 0..runs {
        let documents: Vec<String> = (0..sizes.imports)
            .map(|i| police_report(&format!("Bench{tag}r{run}n{i}"), 0))
            .collect();
        let parse_docs = documents.clone();
        let mut client = findings.clone();
        let token_parse = token.clone();
        let started = Instant::now();
        let mut latencies = Vec::new();
        for text in parse_docs {
            let t = Instant::now();
            client
                .parse_report(with_token(
                    &token_parse,
                    pb::ParseReportRequest {
                        text,
                        source_name: "closeout-bench".into(),
                        ..Default::default()
                    },
                ))
                .await?;
            latencies.push(t.elapsed());
        }
        let ceiling = Stats::of(latencies, started.elapsed());
        let started = Instant::now();
        let mut latencies = Vec::new();
        for text in documents {
            let t = Instant::now();
            import(&mut findings, &token, text).await?;
            latencies.push(t.elapsed());
            imported += 1;
        }
        pairs.push((Stats::of(latencies, started.elapsed()), ceiling));
    }
    if options.runs_scenario("import") {
        print_compared(
            "import",
            &format!(
                "sample report, fresh organisation each, 1 in flight, {} per run",
                sizes.imports
            ),
            "reports/s",
            &load::compare(pairs),
            "ParseReport over gRPC",
        );
    }

    if options.national {
        national(&mut findings, &token, &tag).await?;
    }
    if let Some(target) = options.million {
        million(&mut findings, &token, &tag, target).await?;
    }

    // Seven items per imported sample.
    let items = wait_for_items(stack, imported * 7).await?;
    let ours: Vec<pb::TrackedItem> = items
        .into_iter()
        .filter(|i| i.organisation_id.contains(&tag.to_lowercase()))
        .collect();
    anyhow::ensure!(
        ours.len() >= 64,
        "the tracker opened only {} items for this run's organisations",
        ours.len()
    );

    if options.runs_scenario("note-progress") {
        note_progress(stack, ceilings, &ours, sizes, runs).await?;
    }
    if options.runs_scenario("get-item") || options.runs_scenario("list-items") {
        reads(stack, options, &ours, sizes, runs).await?;
    }
    if options.runs_scenario("metrics") || options.runs_scenario("lag") {
        drain(stack, ceilings).await?;
    } else {
        stack.start_metrics().await?;
    }
    if options.runs_scenario("lag") {
        lag(stack, &ours, sizes).await?;
    }
    if options.runs_scenario("scorecard") || options.runs_scenario("peer") {
        read_model_latency(stack, &ours, sizes, options).await?;
    }
    Ok(())
}

/// Report parse MB/s on a 5 MB report (the sample repeated) against
/// splitting the same text into lines.
fn parse(bytes: usize, runs: usize) {
    let mut text = String::with_capacity(bytes + SAMPLE.len());
    while text.len() < bytes {
        text.push_str(SAMPLE);
        text.push('\n');
    }
    let mb = text.len() as f64 / 1e6;
    let mut pairs = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let parsed = closeout_report::parse(&text);
        let parse = started.elapsed();
        std::hint::black_box(&parsed);
        let started = Instant::now();
        let lines = text.lines().count();
        std::hint::black_box(lines);
        let split = started.elapsed();
        pairs.push((
            Stats {
                ops: 1,
                rate: mb / parse.as_secs_f64().max(1e-9),
                p50: parse,
                p99: parse,
            },
            Stats {
                ops: 1,
                rate: mb / split.as_secs_f64().max(1e-9),
                p50: split,
                p99: split,
            },
        ));
    }
    print_compared(
        "parse",
        &format!("closeout_report::parse, {mb:.1} MB (the sample repeated), in process"),
        "MB/s",
        &load::compare(pairs),
        "str::lines",
    );
}

/// NoteProgress at 1, 16 and 64 in flight, each worker on its own items,
/// against the same durable SQL run directly.
async fn note_progress(
    stack: &Stack,
    ceilings: &mut Ceilings,
    items: &[pb::TrackedItem],
    sizes: &Sizes,
    runs: usize,
) -> anyhow::Result<()> {
    // Item versions move as commands land; each worker owns its items.
    let versions: std::sync::Arc<Vec<std::sync::Mutex<u64>>> = std::sync::Arc::new(
        items
            .iter()
            .map(|i| std::sync::Mutex::new(i.version))
            .collect(),
    );
    let ids: std::sync::Arc<Vec<String>> =
        std::sync::Arc::new(items.iter().map(|i| i.id.clone()).collect());
    for in_flight in [1usize, 16, 64] {
        let total = if in_flight == 1 {
            sizes.note_calls / 4
        } else {
            sizes.note_calls
        };
        let mut pairs = Vec::new();
        for _ in 0..runs {
            let client = TrackerServiceClient::new(stack.tracker.clone());
            let token = stack.token();
            let (versions, ids) = (versions.clone(), ids.clone());
            let figure = load::run(in_flight, total, move |i| {
                let mut client = client.clone();
                let token = token.clone();
                // Worker w = i % in_flight owns items w, w + in_flight, …
                let slot = (i % in_flight) % ids.len();
                let (versions, ids) = (versions.clone(), ids.clone());
                async move {
                    let expected = *versions[slot]
                        .lock()
                        .map_err(|_| anyhow::anyhow!("poisoned"))?;
                    let reply = client
                        .note_progress(with_token(
                            &token,
                            pb::NoteProgressRequest {
                                item_id: ids[slot].clone(),
                                expected_version: expected,
                                note: "closeout-bench progress note".into(),
                            },
                        ))
                        .await?
                        .into_inner();
                    let version = reply.item.map(|i| i.version).unwrap_or(expected + 1);
                    *versions[slot]
                        .lock()
                        .map_err(|_| anyhow::anyhow!("poisoned"))? = version;
                    Ok(())
                }
            })
            .await?;
            let ceiling = ceilings.note(in_flight, total).await?;
            pairs.push((figure, ceiling));
        }
        print_compared(
            "note-progress",
            &format!("{in_flight} in flight, {total} commands, each worker on its own items"),
            "commands/s",
            &load::compare(pairs),
            "the same durable SQL directly",
        );
    }
    Ok(())
}

/// GetItem and ListItems (page of 50) at 16 in flight against the
/// equivalent SELECT on the tracker's database, and the bare gRPC health
/// check of the tracker's server.
async fn reads(
    stack: &Stack,
    options: &Options,
    items: &[pb::TrackedItem],
    sizes: &Sizes,
    runs: usize,
) -> anyhow::Result<()> {
    const IN_FLIGHT: usize = 16;
    let pool = match (&stack.private, &options.tracker_database_url) {
        (Some(private), _) => Some(private.tracker_db.pool().clone()),
        (None, Some(url)) => Some(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(IN_FLIGHT as u32)
                .connect(url)
                .await?,
        ),
        (None, None) => None,
    };
    let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
    let uuids: Vec<uuid::Uuid> = ids.iter().filter_map(|i| i.parse().ok()).collect();
    let mut organisations: Vec<String> = items.iter().map(|i| i.organisation_id.clone()).collect();
    organisations.sort();
    organisations.dedup();

    let mut get_pairs = Vec::new();
    let mut list_pairs = Vec::new();
    let mut health = Vec::new();
    for _ in 0..runs {
        let client = TrackerServiceClient::new(stack.tracker.clone());
        let token = stack.token();
        let get_ids = ids.clone();
        let get = load::run(IN_FLIGHT, sizes.calls, move |i| {
            let mut client = client.clone();
            let request = with_token(
                &token,
                pb::GetItemRequest {
                    item_id: get_ids[i % get_ids.len()].clone(),
                },
            );
            async move {
                client.get_item(request).await?;
                Ok(())
            }
        })
        .await?;
        let client = TrackerServiceClient::new(stack.tracker.clone());
        let token = stack.token();
        let list_orgs = organisations.clone();
        let list = load::run(IN_FLIGHT, sizes.calls / 2, move |i| {
            let mut client = client.clone();
            let request = with_token(
                &token,
                pb::ListItemsRequest {
                    organisation_id: list_orgs[i % list_orgs.len()].clone(),
                    page_size: 50,
                    ..Default::default()
                },
            );
            async move {
                client.list_items(request).await?;
                Ok(())
            }
        })
        .await?;
        health.push(ceilings::health(stack.tracker.clone(), IN_FLIGHT, sizes.calls).await?);
        if let Some(pool) = &pool {
            let select =
                ceilings::select_item(pool.clone(), uuids.clone(), IN_FLIGHT, sizes.calls).await?;
            let page = ceilings::select_page(
                pool.clone(),
                organisations.clone(),
                50,
                IN_FLIGHT,
                sizes.calls / 2,
            )
            .await?;
            get_pairs.push((get, select));
            list_pairs.push((list, page));
        } else {
            let bare = health.last().copied().unwrap_or(get);
            get_pairs.push((get, bare));
            list_pairs.push((list, bare));
        }
    }
    let health = load::compare(health.iter().map(|h| (*h, *h)).collect()).figure;
    let ceiling_name = if pool.is_some() {
        "the same SELECT directly"
    } else {
        "gRPC health check (no --tracker-database-url)"
    };
    let get = load::compare(get_pairs);
    print_compared(
        "get-item",
        &format!(
            "{IN_FLIGHT} in flight, {} calls over {} items",
            sizes.calls,
            ids.len()
        ),
        "calls/s",
        &get,
        ceiling_name,
    );
    println!(
        "get-item-vs-health [{IN_FLIGHT} in flight]: GetItem {:.0} calls/s | ceiling gRPC \
         health check: {:.0} calls/s p50 {} p99 {} | ratio {:.2}",
        get.figure.rate,
        health.rate,
        ms(health.p50),
        ms(health.p99),
        get.figure.rate / health.rate.max(1e-9)
    );
    print_compared(
        "list-items",
        &format!(
            "page of 50, {IN_FLIGHT} in flight, {} calls over {} organisations",
            sizes.calls / 2,
            organisations.len()
        ),
        "calls/s",
        &load::compare(list_pairs),
        ceiling_name,
    );
    Ok(())
}

/// The metrics consumer draining the events made so far (the private
/// stack starts metrics only now), against single-row INSERT transactions
/// and bare JetStream pull+ack of as many events.
async fn drain(stack: &mut Stack, ceilings: &Ceilings) -> anyhow::Result<()> {
    let Some(private) = &stack.private else {
        stack.start_metrics().await?;
        println!(
            "metrics-drain: not measured against a running stack (its metrics service has \
             consumed the events already)"
        );
        return Ok(());
    };
    let bus = private.bus.connect().await;
    let events = {
        let stream = bus
            .jetstream()
            .get_stream(&bus.config().stream_name)
            .await
            .map_err(|e| anyhow::anyhow!("the private stream: {e}"))?;
        let mut stream = stream;
        stream
            .info()
            .await
            .map_err(|e| anyhow::anyhow!("the private stream's state: {e}"))?
            .state
            .messages as usize
    };
    let started = Instant::now();
    stack.start_metrics().await?;
    let caught_up =
        closeout_metrics::wait_caught_up(&bus, Instant::now() + Duration::from_secs(600)).await;
    let took = started.elapsed();
    anyhow::ensure!(
        caught_up,
        "the metrics service did not catch up in 10 minutes"
    );
    let figure = Stats::throughput(events, took);
    let inserts = ceilings.single_inserts(events.min(5000)).await?;
    let (publish, pull) = ceilings.jetstream(events).await?;
    println!(
        "metrics-drain [{events} events in the stream, consumer started after them, from start \
         to caught up]: {:.0} events/s ({:.2} s) | ceilings: single-row INSERT transactions \
         {:.0}/s (ratio {:.2}); bare JetStream pull+ack {:.0}/s (ratio {:.3}); bare publish \
         {:.0}/s",
        figure.rate,
        took.as_secs_f64(),
        inserts.rate,
        figure.rate / inserts.rate.max(1e-9),
        pull.rate,
        figure.rate / pull.rate.max(1e-9),
        publish.rate,
    );
    Ok(())
}

/// The open-item count by status from the metrics service's scorecard of
/// `organisation`.
async fn in_progress(
    client: &mut MetricsServiceClient<Channel>,
    token: &str,
    organisation: &str,
) -> anyhow::Result<u32> {
    let scorecard = client
        .get_scorecard(with_token(
            token,
            pb::GetScorecardRequest {
                organisation_id: organisation.to_string(),
                as_of: None,
            },
        ))
        .await?
        .into_inner()
        .scorecard
        .unwrap_or_default();
    Ok(scorecard
        .by_status
        .iter()
        .filter(|s| s.status == pb::ItemStatus::InProgress as i32)
        .map(|s| s.count)
        .sum())
}

/// From a command's reply to the scorecard showing it: StartItem on open
/// items across this run's organisations at a steady rate; after each
/// reply a watcher polls that organisation's scorecard every 2 ms until
/// its in-progress count includes the command.
async fn lag(stack: &Stack, items: &[pb::TrackedItem], sizes: &Sizes) -> anyhow::Result<()> {
    let metrics = stack
        .metrics
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no metrics service"))?;
    // Open items at their current versions (earlier scenarios noted
    // progress on them).
    let ours: std::collections::HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
    let open: Vec<pb::TrackedItem> = all_items(stack)
        .await?
        .into_iter()
        .filter(|i| ours.contains(i.id.as_str()) && i.status == pb::ItemStatus::Open as i32)
        .take(sizes.lag_commands)
        .collect();
    anyhow::ensure!(!open.is_empty(), "no open items for the lag scenario");
    let token = stack.token();
    // Each organisation's in-progress count before, and how many commands
    // on it have been replied to.
    let mut expected: std::collections::HashMap<String, u32> = Default::default();
    let mut client = MetricsServiceClient::new(metrics.clone());
    for item in &open {
        if !expected.contains_key(&item.organisation_id) {
            let count = in_progress(&mut client, &token, &item.organisation_id).await?;
            expected.insert(item.organisation_id.clone(), count);
        }
    }
    let mut tracker = TrackerServiceClient::new(stack.tracker.clone());
    let every = Duration::from_secs_f64(1.0 / sizes.lag_rate);
    let mut watchers = Vec::with_capacity(open.len());
    let started = Instant::now();
    for (k, item) in open.iter().enumerate() {
        tokio::time::sleep_until((started + every * k as u32).into()).await;
        tracker
            .start_item(with_token(
                &token,
                pb::StartItemRequest {
                    item_id: item.id.clone(),
                    expected_version: item.version,
                    note: "closeout-bench".into(),
                },
            ))
            .await?;
        let replied = Instant::now();
        let target = expected.entry(item.organisation_id.clone()).or_default();
        *target += 1;
        let (target, organisation) = (*target, item.organisation_id.clone());
        let (mut client, token) = (MetricsServiceClient::new(metrics.clone()), token.clone());
        watchers.push(tokio::spawn(async move {
            let deadline = replied + Duration::from_secs(60);
            loop {
                if in_progress(&mut client, &token, &organisation).await? >= target {
                    return anyhow::Ok(replied.elapsed());
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "the scorecard of {organisation} did not show a command within 60 s"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    let mut lags = Vec::with_capacity(watchers.len());
    for watcher in watchers {
        lags.push(watcher.await??);
    }
    let commands = lags.len();
    let organisations = expected.len();
    let stats = Stats::of(lags, started.elapsed());
    println!(
        "lag [StartItem at {:.0}/s steady, {commands} commands over {organisations} \
         organisations, scorecard polled every 2 ms]: reply -> scorecard shows it p50 {} p99 {} \
         | goal p50 <= 10ms, p99 <= 50ms",
        sizes.lag_rate,
        ms(stats.p50),
        ms(stats.p99),
    );
    Ok(())
}

/// Scorecard and PeerComparison latency, one call at a time, at the
/// sizes present, beside the gRPC health check of the same server.
async fn read_model_latency(
    stack: &Stack,
    items: &[pb::TrackedItem],
    sizes: &Sizes,
    options: &Options,
) -> anyhow::Result<()> {
    let metrics = stack
        .metrics
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no metrics service"))?;
    let organisation = items
        .first()
        .map(|i| i.organisation_id.clone())
        .ok_or_else(|| anyhow::anyhow!("no items"))?;
    let all = all_items(stack).await?.len();
    let mine = items
        .iter()
        .filter(|i| i.organisation_id == organisation)
        .count();
    let health = ceilings::health(metrics.clone(), 1, sizes.latency_calls).await?;
    let client = MetricsServiceClient::new(metrics.clone());
    let token = stack.token();
    let org = organisation.clone();
    let scorecard = load::run(1, sizes.latency_calls, move |_| {
        let mut client = client.clone();
        let request = with_token(
            &token,
            pb::GetScorecardRequest {
                organisation_id: org.clone(),
                as_of: None,
            },
        );
        async move {
            client.get_scorecard(request).await?;
            Ok(())
        }
    })
    .await?;
    let client = MetricsServiceClient::new(metrics);
    let token = stack.token();
    let org = organisation.clone();
    let peers = load::run(1, sizes.latency_calls, move |_| {
        let mut client = client.clone();
        let request = with_token(
            &token,
            pb::GetPeerComparisonRequest {
                organisation_id: org.clone(),
                as_of: None,
            },
        );
        async move {
            client.get_peer_comparison(request).await?;
            Ok(())
        }
    })
    .await?;
    let scale = match (options.national, options.million) {
        (_, Some(n)) => format!(", --million {n}"),
        (true, None) => ", --national".to_string(),
        _ => String::new(),
    };
    for (name, stats, size) in [
        (
            "scorecard",
            scorecard,
            format!("one organisation with {mine} items"),
        ),
        (
            "peer-comparison",
            peers,
            format!("{all} items in the tracker"),
        ),
    ] {
        println!(
            "{name} [{size}{scale}, 1 in flight, {} calls]: p50 {} p99 {} ({:.0} calls/s) | \
             ceiling gRPC health check: p50 {} p99 {} | p50 ratio {:.2}",
            stats.ops,
            ms(stats.p50),
            ms(stats.p99),
            stats.rate,
            ms(health.p50),
            ms(health.p99),
            health.p50.as_secs_f64() / stats.p50.as_secs_f64().max(1e-9),
        );
    }
    Ok(())
}

/// Ten inspections (2009/10 … 2018/19) for each of 43 police forces and
/// 44 fire and rescue services, through ImportReport.
async fn national(
    client: &mut FindingsServiceClient<Channel>,
    token: &str,
    tag: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut reports = 0;
    for force in 0..43 {
        for year in 0..10 {
            import(
                client,
                token,
                police_report(&format!("Police{tag}n{force}"), year),
            )
            .await?;
            reports += 1;
        }
    }
    for service in 0..44 {
        for year in 0..10 {
            import(
                client,
                token,
                fire_report(&format!("Fire{tag}n{service}"), year),
            )
            .await?;
            reports += 1;
        }
    }
    println!(
        "national: {reports} reports imported for 87 organisations in {:.1} s ({:.1} reports/s)",
        started.elapsed().as_secs_f64(),
        reports as f64 / started.elapsed().as_secs_f64().max(1e-9)
    );
    Ok(())
}

/// Inspections of one organisation, each the sample under its own title,
/// until the organisation has `target` findings (seven per report).
async fn million(
    client: &mut FindingsServiceClient<Channel>,
    token: &str,
    tag: &str,
    target: usize,
) -> anyhow::Result<()> {
    const TITLE: &str = "Police effectiveness, efficiency and legitimacy 2018/19";
    let name = format!("Million{tag}");
    let base = SAMPLE.replace("Hertfordshire", &name);
    anyhow::ensure!(base.contains(TITLE), "the sample's title line moved");
    let started = Instant::now();
    let mut findings = 0usize;
    let mut part = 0usize;
    while findings < target {
        part += 1;
        let text = base.replacen(TITLE, &format!("{TITLE} part {part}"), 1);
        let reply = import(client, token, text).await?;
        findings += reply.finding_count as usize;
        anyhow::ensure!(
            reply.finding_count > 0,
            "a generated report had no findings"
        );
        if part.is_multiple_of(1000) {
            eprintln!(
                "closeout-bench: --million: {findings} items after {part} reports, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "million: {findings} findings of one organisation from {part} reports in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
