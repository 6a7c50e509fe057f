//! The scenarios, in the order they run, each printing one line that
//! starts with its name: the figure, its ceiling, the ratio, p50/p99 and
//! the settings. Data is made through the real ImportReport path (the
//! sample report under other organisations' names; for `--million`, the
//! sample with tens of thousands of generated areas for improvement), so
//! the tracker opens items and the metrics service counts them from the
//! real events.
//!
//! Order: parse, import, [national data and the tracker opening it],
//! note-progress, get-item and list-items, metrics-drain (metrics starts
//! on the backlog), [--million: import, tracker opening, metrics catching
//! up], reads at scale, lag at 100 and 500 commands/s, watch (idle
//! streams), scorecard and peer-comparison, resident memory, rebuild.

use crate::Options;
use crate::ceilings::{self, Ceilings};
use crate::load::{self, Compared, Stats, ms};
use crate::stack::{Stack, with_token};
use closeout_proto as pb;
use closeout_proto::findings_service_client::FindingsServiceClient;
use closeout_proto::metrics_service_client::MetricsServiceClient;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use closeout_testkit::TestDatabase;
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
    /// Commands of the 500 commands/s lag run.
    lag500_commands: usize,
    latency_calls: usize,
    /// Idle WatchItems streams held open in the watch scenario.
    watch_streams: usize,
}

impl Sizes {
    fn of(options: &Options) -> Sizes {
        if options.quick {
            Sizes {
                imports: 16,
                calls: 400,
                note_calls: 128,
                parse_bytes: 5 * 1024 * 1024,
                lag_rate: 50.0,
                lag_commands: 20,
                lag500_commands: 50,
                latency_calls: 40,
                watch_streams: 48,
            }
        } else {
            Sizes {
                imports: 100,
                calls: 8000,
                note_calls: 1600,
                parse_bytes: 5 * 1024 * 1024,
                lag_rate: 100.0,
                lag_commands: 300,
                lag500_commands: 2500,
                latency_calls: 300,
                watch_streams: 1000,
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

/// [`Stack::analyse`], said on a settings line so a reader knows the
/// reads after it ran on analysed tables.
async fn analyse(stack: &Stack, filled: crate::stack::Filled) -> anyhow::Result<()> {
    let started = Instant::now();
    if let Some(autovacuum) = stack.analyse(filled).await? {
        let what = match filled {
            crate::stack::Filled::Tracker => {
                "findings and tracker databases once the tracker's \
                                             data made"
            }
            crate::stack::Filled::Metrics => "metrics database once metrics caught up",
        };
        println!(
            "settings: ANALYZE of the private {what} ({:.1} s; the server's autovacuum is \
             {autovacuum})",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
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

/// The report's 2018/19 moved `back` years earlier (another inspection),
/// published as many years earlier.
fn shift_period(text: String, back: usize) -> String {
    if back == 0 {
        return text;
    }
    let first = 2018 - back;
    let published = 2019 - back;
    text.replace("2018/19", &format!("{first}/{:02}", (first + 1) % 100))
        .replace(
            "2019 | ©HMICFRS 2019",
            &format!("{published} | ©HMICFRS {published}"),
        )
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

/// Imports at once in the concurrent import figure.
const IMPORTS_IN_FLIGHT: usize = 8;

/// `total` samples of fresh organisations through ImportReport,
/// [`IMPORTS_IN_FLIGHT`] at a time.
async fn import_many(
    findings: &FindingsServiceClient<Channel>,
    token: &str,
    tag: &str,
    run: usize,
    total: usize,
) -> anyhow::Result<Stats> {
    let documents: std::sync::Arc<Vec<String>> = std::sync::Arc::new(
        (0..total)
            .map(|i| police_report(&format!("Bench{tag}r{run}m{i}"), 0))
            .collect(),
    );
    let findings = findings.clone();
    let token = token.to_string();
    load::run(IMPORTS_IN_FLIGHT, total, move |i| {
        let mut client = findings.clone();
        let token = token.clone();
        let text = documents[i].clone();
        async move {
            import(&mut client, &token, text).await?;
            Ok(())
        }
    })
    .await
}

/// A scratch database with the findings schema and the outbox, for the
/// import's ceiling.
async fn findings_scratch() -> anyhow::Result<TestDatabase> {
    let db = TestDatabase::create().await;
    closeout_findings::MIGRATOR.run(db.pool()).await?;
    closeout_bus::outbox::install_schema(db.pool()).await?;
    Ok(db)
}

/// ImportReport's durable work alone: `total` samples of fresh
/// organisations (parsed beforehand) stored on `scratch` by the findings
/// service's own import code, `in_flight` at a time.
async fn import_directly(
    scratch: &TestDatabase,
    tag: &str,
    run: usize,
    prefix: &str,
    in_flight: usize,
    total: usize,
) -> anyhow::Result<Stats> {
    let parsed = (0..total)
        .map(|i| {
            closeout_findings::parse_for_import(police_report(
                &format!("Bench{tag}r{run}{prefix}{i}"),
                0,
            ))
            .map_err(|e| anyhow::anyhow!("parsing the sample: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let parsed = std::sync::Arc::new(parsed);
    let pool = scratch.pool().clone();
    load::run(in_flight, total, move |i| {
        let pool = pool.clone();
        let parsed = parsed.clone();
        async move {
            let created = closeout_findings::store_parsed(&pool, &parsed[i])
                .await
                .map_err(|e| anyhow::anyhow!("storing the sample directly: {e}"))?;
            anyhow::ensure!(created, "the direct import did not create an inspection");
            Ok(())
        }
    })
    .await
}

/// Every item of `organisations`, listed page by page through ListItems.
async fn items_of(stack: &Stack, organisations: &[String]) -> anyhow::Result<Vec<pb::TrackedItem>> {
    let mut items = Vec::new();
    for organisation in organisations {
        items.extend(some_items_of(stack, organisation, usize::MAX).await?);
    }
    Ok(items)
}

/// Up to `limit` items of `organisation`, from its first pages.
async fn some_items_of(
    stack: &Stack,
    organisation: &str,
    limit: usize,
) -> anyhow::Result<Vec<pb::TrackedItem>> {
    let mut client = TrackerServiceClient::new(stack.tracker.clone());
    let mut items = Vec::new();
    let mut token = String::new();
    while items.len() < limit {
        let page = client
            .list_items(stack.request(pb::ListItemsRequest {
                organisation_id: organisation.to_string(),
                page_size: 500,
                page_token: token,
                ..Default::default()
            }))
            .await?
            .into_inner();
        items.extend(page.items);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    items.truncate(limit);
    Ok(items)
}

/// How many items the tracker holds: counted in its database for a
/// private stack, else listed page by page.
async fn item_count(stack: &Stack) -> anyhow::Result<usize> {
    if let Some(private) = &stack.private {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
            .fetch_one(private.tracker_db.pool())
            .await?;
        return Ok(usize::try_from(n).unwrap_or(0));
    }
    let mut client = TrackerServiceClient::new(stack.tracker.clone());
    let mut count = 0;
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
        count += page.items.len();
        if page.next_page_token.is_empty() {
            return Ok(count);
        }
        token = page.next_page_token;
    }
}

/// Outbox rows of `db` not yet published.
async fn unsent(db: &closeout_testkit::TestDatabase) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM closeout_outbox WHERE sent_at IS NULL")
            .fetch_one(db.pool())
            .await?,
    )
}

/// Waits until the tracker has applied every findings event: for a
/// private stack, findings' outbox is empty and the tracker's consumer has
/// nothing pending; for a running stack, until it holds `at_least` items
/// and the count has not moved for two seconds. Returns the item count.
async fn wait_tracker_caught_up(
    stack: &Stack,
    at_least: usize,
    limit: Duration,
) -> anyhow::Result<usize> {
    let deadline = Instant::now() + limit;
    let bus = match &stack.private {
        Some(private) => Some(private.bus.connect().await),
        None => None,
    };
    let mut last = (usize::MAX, Instant::now());
    loop {
        let count = item_count(stack).await?;
        let done = match (&stack.private, &bus) {
            (Some(private), Some(bus)) => {
                count >= at_least
                    && unsent(&private.findings_db).await? == 0
                    && closeout_service::bus_metrics::pending(
                        bus,
                        closeout_tracker::DEFAULT_CONSUMER_NAME,
                    )
                    .await
                        == Some(0)
            }
            _ => count >= at_least && count == last.0 && last.1.elapsed() >= Duration::from_secs(2),
        };
        if done {
            return Ok(count);
        }
        if count != last.0 {
            last = (count, Instant::now());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the tracker had opened {count} items (of at least {at_least}) after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the metrics service has applied every event so far (the
/// tracker's outbox empty and both metrics consumers with nothing
/// pending); a private stack only.
async fn wait_metrics_caught_up(stack: &Stack, limit: Duration) -> anyhow::Result<()> {
    let Some(private) = &stack.private else {
        return Ok(());
    };
    let bus = private.bus.connect().await;
    let deadline = Instant::now() + limit;
    loop {
        if unsent(&private.tracker_db).await? == 0
            && closeout_metrics::wait_caught_up(&bus, Instant::now()).await
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the metrics service had not caught up after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Messages in the private stream.
async fn stream_messages(stack: &Stack) -> anyhow::Result<u64> {
    let Some(private) = &stack.private else {
        return Ok(0);
    };
    let bus = private.bus.connect().await;
    let mut stream = bus
        .jetstream()
        .get_stream(&bus.config().stream_name)
        .await
        .map_err(|e| anyhow::anyhow!("the private stream: {e}"))?;
    Ok(stream
        .info()
        .await
        .map_err(|e| anyhow::anyhow!("the private stream's state: {e}"))?
        .state
        .messages)
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
        None => {
            let binaries = if options.processes {
                let exe = std::env::current_exe()?;
                Some(
                    exe.parent()
                        .ok_or_else(|| anyhow::anyhow!("no directory for {}", exe.display()))?
                        .to_path_buf(),
                )
            } else {
                None
            };
            Stack::private(binaries).await?
        }
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
        match (&stack.private, options.processes) {
            (None, _) => "running",
            (Some(_), true) => "private (service processes)",
            (Some(_), false) => "private (in this process)",
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
    let mut direct_pairs = Vec::new();
    let mut many_pairs = Vec::new();
    let mut extra_organisations = 0;
    let mut organisations = Vec::new();
    let scratch = if options.runs_scenario("import") {
        Some(findings_scratch().await?)
    } else {
        None
    };
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
            let reply = import(&mut findings, &token, text).await?;
            latencies.push(t.elapsed());
            organisations.push(reply.organisation_id);
        }
        let one = Stats::of(latencies, started.elapsed());
        pairs.push((one, ceiling));
        if let Some(scratch) = &scratch {
            // The same import's SQL on a scratch findings database: the
            // durable work alone, parsed beforehand.
            let direct = import_directly(scratch, &tag, run, "d1", 1, sizes.imports).await?;
            direct_pairs.push((one, direct));
            let many = import_many(&findings, &token, &tag, run, sizes.imports).await?;
            extra_organisations += sizes.imports;
            let direct =
                import_directly(scratch, &tag, run, "dn", IMPORTS_IN_FLIGHT, sizes.imports).await?;
            many_pairs.push((many, direct));
        }
    }
    if let Some(scratch) = scratch {
        scratch.drop_database().await;
    }
    if options.runs_scenario("import") {
        let settings = format!(
            "sample report, fresh organisation each, 1 in flight, {} per run",
            sizes.imports
        );
        print_compared(
            "import",
            &settings,
            "reports/s",
            &load::compare(pairs),
            "ParseReport over gRPC",
        );
        print_compared(
            "import",
            &settings,
            "reports/s",
            &load::compare(direct_pairs),
            "the same import's SQL directly, 1 in flight",
        );
        print_compared(
            "import",
            &format!(
                "sample report, fresh organisation each, {IMPORTS_IN_FLIGHT} in flight, {} per \
                 run",
                sizes.imports
            ),
            "reports/s",
            &load::compare(many_pairs),
            &format!("the same import's SQL directly, {IMPORTS_IN_FLIGHT} in flight"),
        );
    }

    let mut national_orgs = Vec::new();
    if options.national_data() {
        let started = Instant::now();
        let before = item_count(stack).await?;
        national_orgs = national(&mut findings, &token, &tag).await?;
        let imported = started.elapsed();
        let count = wait_tracker_caught_up(stack, before, Duration::from_secs(1800)).await?;
        let took = started.elapsed();
        println!(
            "tracker-opening [national: 870 reports of 87 organisations, from the first import \
             to the tracker caught up]: {} items in {:.1} s ({:.0} items/s); caught up {:.1} s \
             after the last import replied",
            count.saturating_sub(before),
            took.as_secs_f64(),
            count.saturating_sub(before) as f64 / took.as_secs_f64().max(1e-9),
            (took - imported).as_secs_f64(),
        );
    }

    // Seven items per imported sample.
    wait_tracker_caught_up(
        stack,
        (organisations.len() + extra_organisations) * 7,
        Duration::from_secs(600),
    )
    .await?;
    analyse(stack, crate::stack::Filled::Tracker).await?;
    let ours = items_of(stack, &organisations).await?;
    anyhow::ensure!(
        ours.len() >= 64,
        "the tracker opened only {} items for this run's organisations",
        ours.len()
    );

    if options.runs_scenario("note-progress") {
        note_progress(stack, ceilings, &ours, sizes, runs).await?;
    }
    if options.runs_scenario("get-item") || options.runs_scenario("list-items") {
        reads(stack, options, &ours, sizes, runs, "").await?;
    }
    // `--only lag-500` runs the faster lag runs alone.
    let (lag, lag_fast) = (
        options.runs_scenario("lag"),
        options.runs_scenario("lag-500"),
    );
    if options.runs_scenario("metrics") || lag || lag_fast {
        drain(stack, ceilings).await?;
    } else {
        stack.start_metrics().await?;
    }

    let mut million_org = None;
    if let Some(target) = options.million {
        million_org = Some(million(stack, &mut findings, &token, &tag, target).await?);
    }

    // The largest organisation: reads there show whether they grow with it.
    let large = match (&million_org, national_orgs.first()) {
        (Some(org), _) => Some(org.clone()),
        (None, Some(org)) => Some(org.clone()),
        (None, None) => None,
    };
    if let Some(org) = &large
        && (options.runs_scenario("get-item") || options.runs_scenario("list-items"))
    {
        let items = some_items_of(stack, org, 5000).await?;
        reads(stack, options, &items, sizes, runs, "-at-scale").await?;
    }

    if lag || lag_fast {
        // Open items of the small organisations, at their current versions.
        let mut small = organisations.clone();
        small.extend(national_orgs.iter().cloned());
        let mut open: Vec<pb::TrackedItem> = items_of(stack, &small)
            .await?
            .into_iter()
            .filter(|i| i.status == pb::ItemStatus::Open as i32)
            .collect();
        if lag {
            let first: Vec<pb::TrackedItem> =
                open.drain(..sizes.lag_commands.min(open.len())).collect();
            crate::lag::lag(stack, "lag", &first, sizes.lag_rate).await?;
        }
        // The open items left, shared among the rates (`--lag-rates`).
        let share = sizes
            .lag500_commands
            .min(open.len() / options.lag_rates.len().max(1));
        for &rate in &options.lag_rates {
            let name = if rate == 500.0 {
                "lag-500".to_string()
            } else {
                format!("lag-500-at-{rate:.0}")
            };
            let these: Vec<pb::TrackedItem> = open.drain(..share.min(open.len())).collect();
            crate::lag::lag(stack, &name, &these, rate).await?;
        }
    }
    if options.runs_scenario("watch") {
        watch(stack, &organisations, sizes, runs).await?;
    }
    if options.runs_scenario("scorecard") || options.runs_scenario("peer") {
        let mut targets = vec![(
            "a sample organisation".to_string(),
            organisations
                .first()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("no organisations"))?,
        )];
        if let Some(org) = national_orgs.first() {
            targets.push((
                "a police force of the national data".to_string(),
                org.clone(),
            ));
        }
        if let Some(org) = &million_org {
            targets.push(("the --million organisation".to_string(), org.clone()));
        }
        // Reads, not reads beside the consumers' catch-up (metrics may have
        // just started): the first calls shared the pool and the 2 cores
        // with the backlog, or found no organisation yet.
        wait_metrics_caught_up(stack, Duration::from_secs(600)).await?;
        analyse(stack, crate::stack::Filled::Metrics).await?;
        read_model_latency(stack, &targets, sizes, options).await?;
    }
    print_resident(stack, "at the end of the scenarios");
    if options.runs_scenario("rebuild") && stack.private.is_some() {
        let events = stream_messages(stack).await?;
        let (applied, took, peak) = stack.rebuild_metrics(Duration::from_secs(3600)).await?;
        println!(
            "rebuild [closeout-metrics rebuild, {events} messages in the stream, {applied} events \
             in the history afterwards{}]: {:.1} s ({:.0} events/s) | goal 1,000,000 events in \
             <= 60 s",
            peak.map(|p| format!(", peak resident {p:.0} MB"))
                .unwrap_or_default(),
            took.as_secs_f64(),
            events as f64 / took.as_secs_f64().max(1e-9),
        );
    }
    Ok(())
}

/// Prints each private service's resident memory.
fn print_resident(stack: &Stack, when: &str) {
    let rows = stack.resident();
    if rows.is_empty() {
        println!("rss [{when}]: not measured (a running stack's processes are not ours)");
        return;
    }
    let text: Vec<String> = rows
        .iter()
        .map(|(name, now, peak)| format!("{name} {now:.0} MB (peak {peak:.0} MB)"))
        .collect();
    println!("rss [{when}, resident now and peak]: {}", text.join("; "));
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
        let (mut pairs, mut earlier, mut grouped) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let figure = note_commands(stack, &versions, &ids, in_flight, total).await?;
            let ceiling = ceilings.note(in_flight, total).await?;
            let transaction = ceilings.note_in_transaction(in_flight, total).await?;
            let batched = ceilings.note_batched(in_flight, total).await?;
            pairs.push((figure, ceiling));
            earlier.push((figure, transaction));
            grouped.push((figure, batched));
        }
        let settings =
            format!("{in_flight} in flight, {total} commands, each worker on its own items");
        print_compared(
            "note-progress",
            &settings,
            "commands/s",
            &load::compare(pairs),
            "the same durable SQL directly (the tracker's statements and schema)",
        );
        // The ceiling of sessions 1-5 (a six-round-trip transaction on
        // lighter tables), for comparison with their figures.
        print_compared(
            "note-progress-vs-transaction",
            &settings,
            "commands/s",
            &load::compare(earlier),
            "BEGIN, lock, three writes, COMMIT directly",
        );
        // The tracker commits concurrent commands in groups (its `writer`):
        // the same grouped statement directly, every group full.
        print_compared(
            "note-progress-vs-grouped",
            &settings,
            "commands/s",
            &load::compare(grouped),
            "reads, then one grouped write per in_flight commands, directly",
        );
    }
    Ok(())
}

/// NoteProgress commands, `in_flight` at a time, each worker on its own
/// items (worker w owns items w, w + in_flight, …), tracking versions.
async fn note_commands(
    stack: &Stack,
    versions: &std::sync::Arc<Vec<std::sync::Mutex<u64>>>,
    ids: &std::sync::Arc<Vec<String>>,
    in_flight: usize,
    total: usize,
) -> anyhow::Result<Stats> {
    let client = TrackerServiceClient::new(stack.tracker.clone());
    let token = stack.token();
    let (versions, ids) = (versions.clone(), ids.clone());
    load::run(in_flight, total, move |i| {
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
    .await
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
    label: &str,
) -> anyhow::Result<()> {
    const IN_FLIGHT: usize = 16;
    let pool = match (&stack.private, &options.tracker_database_url) {
        // A pool of its own, as large as the calls in flight, so the
        // ceiling never waits for a connection the figure did not.
        (Some(private), _) => Some(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(IN_FLIGHT as u32)
                .acquire_timeout(Duration::from_secs(60))
                .connect(private.tracker_db.url())
                .await?,
        ),
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
    let largest = match &pool {
        Some(pool) => sqlx::query_scalar::<_, i64>(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM items \
             WHERE organisation_id = ANY($1) GROUP BY organisation_id) c",
        )
        .bind(&organisations)
        .fetch_one(pool)
        .await
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into()),
        None => "?".into(),
    };

    // One ListItems call first: a slow first page (a large organisation)
    // gets fewer calls, about ten seconds' worth at 16 in flight.
    let probe = Instant::now();
    TrackerServiceClient::new(stack.tracker.clone())
        .list_items(stack.request(pb::ListItemsRequest {
            organisation_id: organisations.first().cloned().unwrap_or_default(),
            page_size: 50,
            ..Default::default()
        }))
        .await?;
    let each = probe.elapsed().as_secs_f64().max(1e-6);
    let list_calls = (sizes.calls / 2).min(((10.0 * IN_FLIGHT as f64 / each) as usize).max(64));
    let mut get_pairs = Vec::new();
    let mut list_pairs = Vec::new();
    let mut health = Vec::new();
    let mut layers = Vec::new();
    let bare = ceilings::bare_tonic().await?;
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
        let list = load::run(IN_FLIGHT, list_calls, move |i| {
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
        let layered = ceilings::health(stack.tracker.clone(), IN_FLIGHT, sizes.calls).await?;
        health.push(layered);
        layers.push((
            layered,
            ceilings::health(bare.clone(), IN_FLIGHT, sizes.calls).await?,
        ));
        if let Some(pool) = &pool {
            let select =
                ceilings::select_item(pool.clone(), uuids.clone(), IN_FLIGHT, sizes.calls).await?;
            let page = ceilings::select_page(
                pool.clone(),
                organisations.clone(),
                50,
                IN_FLIGHT,
                list_calls,
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
        &format!("get-item{label}"),
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
        "get-item{label}-vs-health [{IN_FLIGHT} in flight]: GetItem {:.0} calls/s | ceiling gRPC \
         health check: {:.0} calls/s p50 {} p99 {} | ratio {:.2}",
        get.figure.rate,
        health.rate,
        ms(health.p50),
        ms(health.p99),
        get.figure.rate / health.rate.max(1e-9)
    );
    print_compared(
        &format!("grpc-layers{label}"),
        &format!(
            "{IN_FLIGHT} in flight, {} calls: the tracker's health check, through its trace \
             span, RPC figures, version header, authentication and limits",
            sizes.calls
        ),
        "calls/s",
        &load::compare(layers),
        "a bare tonic health server in this process",
    );
    print_compared(
        &format!("list-items{label}"),
        &format!(
            "first page of 50, {IN_FLIGHT} in flight, {} calls over {} organisations of {} \
             items or fewer",
            list_calls,
            organisations.len(),
            largest
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
    // Every event made so far is in the stream first: the tracker's relay
    // has published its outbox.
    let deadline = Instant::now() + Duration::from_secs(600);
    while unsent(&private.tracker_db).await? > 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the tracker's outbox was not published in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Idle WatchItems streams: NoteProgress latency at 16 in flight without
/// and with `sizes.watch_streams` streams open (each replays its quiet
/// organisation's few changes, then idles), and the tracker's database
/// connections before and while they are open. Streams are opened as many
/// callers (16 each, the per-caller limit) on their own connections.
/// `runs` rounds, each opening the streams, running the commands beside
/// them and closing them, then running them without: each round's ratio is
/// to the runs without streams either side of it.
async fn watch(
    stack: &Stack,
    organisations: &[String],
    sizes: &Sizes,
    runs: usize,
) -> anyhow::Result<()> {
    use std::sync::Arc;
    let Some(private) = &stack.private else {
        println!(
            "watch: not measured against a running stack (it opens streams as many callers, \
             with tokens only a private stack trusts)"
        );
        return Ok(());
    };
    const IN_FLIGHT: usize = 16;
    let half = organisations.len() / 2;
    anyhow::ensure!(half > 0, "too few organisations for the watch scenario");
    let (commanded, quiet) = organisations.split_at(half);
    let connections = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(private.tracker_db.name())
        .fetch_one(private.tracker_db.pool())
        .await
    };
    let commanded_items: Vec<pb::TrackedItem> = items_of(stack, commanded).await?;
    let versions: Arc<Vec<std::sync::Mutex<u64>>> = Arc::new(
        commanded_items
            .iter()
            .map(|i| std::sync::Mutex::new(i.version))
            .collect(),
    );
    let ids: Arc<Vec<String>> = Arc::new(commanded_items.iter().map(|i| i.id.clone()).collect());
    let total = sizes.note_calls;
    let commands = || note_commands(stack, &versions, &ids, IN_FLIGHT, total);
    let before = connections().await?;
    let tracker_pid = stack
        .pids()
        .into_iter()
        .find(|(name, _)| *name == "tracker")
        .map(|(_, pid)| pid);
    let rss_before = tracker_pid.and_then(crate::stack::resident_mb);
    let mut without = commands().await?;
    // The commands grow the pools; what the streams hold is counted from here.
    let after_without = connections().await?;
    let mut ratios = Vec::with_capacity(runs);
    for round in 1..=runs.max(1) {
        let streams = open_watch_streams(stack, quiet, sizes.watch_streams).await?;
        let with_connections = connections().await?;
        let rss_with = tracker_pid.and_then(crate::stack::resident_mb);
        let with = commands().await?;
        let during = connections().await?;
        streams.close();
        // Without streams once more, so that the ceiling is measured on both
        // sides of the run it is compared with (the items' histories grow).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let without_after = commands().await?;
        let memory = match (rss_before, rss_with) {
            (Some(b), Some(w)) => format!("; tracker resident {:.0} MB -> {:.0} MB", b.0, w.0),
            _ => String::new(),
        };
        let ratio = with.rate / ((without.rate + without_after.rate) / 2.0).max(1e-9);
        ratios.push(ratio);
        println!(
            "watch round {round} [{} idle WatchItems streams asked for ({} open, {} refused) by \
             {} callers on their own connections, over {} quiet organisations ({} changes \
             replayed); NoteProgress {IN_FLIGHT} in flight, {total} commands on other \
             organisations]: with streams {:.0} commands/s p50 {} p99 {} | ceiling without \
             streams, before and after them: {:.0} and {:.0} commands/s, p50 {} and {}, p99 {} \
             and {} | ratio to their mean {ratio:.2} | tracker DB connections: {before} \
             before any command, {after_without} after the first commands without streams, \
             {with_connections} with the streams open, {during} after the commands with \
             them{memory}",
            streams.asked,
            streams.opened,
            streams.failed,
            streams.callers,
            quiet.len(),
            streams.received,
            with.rate,
            ms(with.p50),
            ms(with.p99),
            without.rate,
            without_after.rate,
            ms(without.p50),
            ms(without_after.p50),
            ms(without.p99),
            ms(without_after.p99),
        );
        without = without_after;
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "watch: NoteProgress beside {} idle streams, ratio to the runs without them: min {:.2} \
         median {:.2} max {:.2} ({} rounds)",
        sizes.watch_streams,
        ratios[0],
        ratios[ratios.len() / 2],
        ratios[ratios.len() - 1],
        ratios.len(),
    );
    Ok(())
}

/// WatchItems streams held open by the watch scenario.
struct WatchStreams {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    asked: usize,
    opened: usize,
    failed: usize,
    callers: usize,
    received: usize,
}

impl WatchStreams {
    fn close(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Opens `count` WatchItems streams over the `quiet` organisations, 16
/// per caller, and waits until each has replayed its first change (or was
/// refused), then a second for the replays to finish.
async fn open_watch_streams(
    stack: &Stack,
    quiet: &[String],
    count: usize,
) -> anyhow::Result<WatchStreams> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const PER_CALLER: usize = 16;
    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let callers = count.div_ceil(PER_CALLER);
    let mut streams = Vec::with_capacity(count);
    let gate = Arc::new(tokio::sync::Semaphore::new(32));
    for caller in 0..callers {
        let channel = crate::stack::connect(&stack.tracker_addr).await?;
        let token = closeout_testkit::Caller::inspectorate()
            .subject(&format!("bench:watch{caller}"))
            .token();
        for s in 0..PER_CALLER.min(count - caller * PER_CALLER) {
            let organisation = quiet[(caller * PER_CALLER + s) % quiet.len()].clone();
            let mut client = TrackerServiceClient::new(channel.clone());
            let token = token.clone();
            let (opened, failed, received, gate) = (
                opened.clone(),
                failed.clone(),
                received.clone(),
                gate.clone(),
            );
            streams.push(tokio::spawn(async move {
                let mut permit = Some(gate.acquire_owned().await);
                let reply = client
                    .watch_items(with_token(
                        &token,
                        pb::WatchItemsRequest {
                            organisation_id: organisation,
                            ..Default::default()
                        },
                    ))
                    .await;
                let mut stream = match reply {
                    Ok(reply) => reply.into_inner(),
                    Err(_) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                };
                while let Ok(Some(_)) = stream.message().await {
                    received.fetch_add(1, Ordering::SeqCst);
                    // The first change shows the stream is open; the next
                    // stream may start opening.
                    if permit.take().is_some() {
                        opened.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while opened.load(Ordering::SeqCst) + failed.load(Ordering::SeqCst) < streams.len()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the replays finish.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(WatchStreams {
        asked: streams.len(),
        tasks: streams,
        opened: opened.load(Ordering::SeqCst),
        failed: failed.load(Ordering::SeqCst),
        callers,
        received: received.load(Ordering::SeqCst),
    })
}

/// How many items `organisation` has in the tracker (private stack), for
/// the labels.
async fn items_in(stack: &Stack, organisation: &str) -> String {
    let Some(private) = &stack.private else {
        return "?".into();
    };
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM items WHERE organisation_id = $1")
        .bind(organisation)
        .fetch_one(private.tracker_db.pool())
        .await
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Scorecard and PeerComparison latency, one call at a time, for each of
/// `targets` (label, organisation), beside the gRPC health check of the
/// same server. Slow answers get fewer calls (about 30 s' worth, at
/// least 10).
async fn read_model_latency(
    stack: &Stack,
    targets: &[(String, String)],
    sizes: &Sizes,
    options: &Options,
) -> anyhow::Result<()> {
    let metrics = stack
        .metrics
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no metrics service"))?;
    let all = item_count(stack).await?;
    let health = ceilings::health(metrics.clone(), 1, sizes.latency_calls).await?;
    let scale = match (options.national, options.million) {
        (_, Some(n)) => format!(", --million {n}"),
        (true, None) => ", --national".to_string(),
        _ => String::new(),
    };
    for (label, organisation) in targets {
        let mine = items_in(stack, organisation).await;
        for name in ["scorecard", "peer-comparison"] {
            let call = {
                let client = MetricsServiceClient::new(metrics.clone());
                let token = stack.token();
                let org = organisation.clone();
                move |_| {
                    let mut client = client.clone();
                    let token = token.clone();
                    let org = org.clone();
                    async move {
                        if name == "scorecard" {
                            client
                                .get_scorecard(with_token(
                                    &token,
                                    pb::GetScorecardRequest {
                                        organisation_id: org,
                                        as_of: None,
                                    },
                                ))
                                .await?;
                        } else {
                            client
                                .get_peer_comparison(with_token(
                                    &token,
                                    pb::GetPeerComparisonRequest {
                                        organisation_id: org,
                                        as_of: None,
                                    },
                                ))
                                .await?;
                        }
                        anyhow::Ok(())
                    }
                }
            };
            // One call first, to size the run.
            let probe = Instant::now();
            call(0).await?;
            let each = probe.elapsed().as_secs_f64().max(1e-6);
            let calls = sizes.latency_calls.min(((30.0 / each) as usize).max(10));
            let stats = load::run(1, calls, call).await?;
            println!(
                "{name} [{label}: {mine} items; {all} items in the tracker{scale}, 1 in flight, \
                 {} calls]: p50 {} p99 {} ({:.0} calls/s) | ceiling gRPC health check: p50 {} \
                 p99 {} | p50 ratio {:.2} | goal p99 <= 10ms",
                stats.ops,
                ms(stats.p50),
                ms(stats.p99),
                stats.rate,
                ms(health.p50),
                ms(health.p99),
                health.p50.as_secs_f64() / stats.p50.as_secs_f64().max(1e-9),
            );
        }
    }
    Ok(())
}

/// Ten inspections (2009/10 … 2018/19, oldest first, as a user would
/// import a history) for each of 43 police forces and 44 fire and rescue
/// services, through ImportReport; their organisation ids, police forces
/// first.
async fn national(
    client: &mut FindingsServiceClient<Channel>,
    token: &str,
    tag: &str,
) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let mut reports = 0;
    let mut organisations = Vec::new();
    for force in 0..43 {
        for year in (0..10).rev() {
            let reply = import(
                client,
                token,
                police_report(&format!("Police{tag}n{force}"), year),
            )
            .await?;
            if year == 0 {
                organisations.push(reply.organisation_id);
            }
            reports += 1;
        }
    }
    for service in 0..44 {
        for year in (0..10).rev() {
            let reply = import(
                client,
                token,
                fire_report(&format!("Fire{tag}n{service}"), year),
            )
            .await?;
            if year == 0 {
                organisations.push(reply.organisation_id);
            }
            reports += 1;
        }
    }
    println!(
        "national: {reports} reports imported for 87 organisations in {:.1} s ({:.1} reports/s)",
        started.elapsed().as_secs_f64(),
        reports as f64 / started.elapsed().as_secs_f64().max(1e-9)
    );
    Ok(organisations)
}

/// Areas for improvement per generated `--million` report (about 3.6 MB
/// of text each, under the private findings service's 8 MB limit).
const GENERATED_PER_REPORT: usize = 40_000;

/// The months a generated report may be published in, newest first.
const MONTHS: [&str; 12] = [
    "December",
    "November",
    "October",
    "September",
    "August",
    "July",
    "June",
    "May",
    "April",
    "March",
    "February",
    "January",
];

/// One generated inspection of `name`: the sample, titled as part `part`,
/// published `part - 1` months before September 2019, with `extra` areas
/// for improvement added to its first list.
fn generated_report(name: &str, part: usize, extra: usize) -> anyhow::Result<String> {
    const TITLE: &str = "Police effectiveness, efficiency and legitimacy 2018/19";
    const FIRST_AFI: &str = "- The force needs to develop a cyber strategy and delivery plan to \
                             support criminal investigations and safeguard victims.\n";
    const PUBLISHED: &str = "September 2019 | ©HMICFRS 2019";
    let base = SAMPLE.replace("Hertfordshire", name);
    anyhow::ensure!(
        base.contains(TITLE) && base.contains(FIRST_AFI) && base.contains(PUBLISHED),
        "the sample's title, first area for improvement or publication line moved"
    );
    let mut bullets = String::with_capacity(FIRST_AFI.len() + extra * 100);
    bullets.push_str(FIRST_AFI);
    for k in 0..extra {
        bullets.push_str(&format!(
            "- The force should review arrangement {part}-{k} for victims of crime and report \
             on its progress.\n"
        ));
    }
    // September 2019 is index 3; each later part a month earlier.
    let back = 3 + part.saturating_sub(1);
    let month = MONTHS[back % 12];
    let year = 2019 - back / 12;
    Ok(base
        .replacen(TITLE, &format!("{TITLE} part {part}"), 1)
        .replacen(FIRST_AFI, &bullets, 1)
        .replace(PUBLISHED, &format!("{month} {year} | ©HMICFRS {year}")))
}

/// Generated inspections of one organisation, each the sample with tens
/// of thousands of areas for improvement added, until it has `target`
/// findings; imported newest publication first (see BENCHMARKS.md: each
/// import's reconciliation then has no earlier open items to propose
/// for). Prints the import, the tracker opening the items and the metrics
/// service catching up; returns the organisation's id.
async fn million(
    stack: &Stack,
    client: &mut FindingsServiceClient<Channel>,
    token: &str,
    tag: &str,
    target: usize,
) -> anyhow::Result<String> {
    let name = format!("Million{tag}");
    let before = item_count(stack).await?;
    let started = Instant::now();
    let mut findings = 0usize;
    let mut part = 0usize;
    let mut organisation = String::new();
    let mut bytes = 0usize;
    while findings < target {
        part += 1;
        let extra = GENERATED_PER_REPORT.min(target.saturating_sub(findings + 7));
        let text = generated_report(&name, part, extra)?;
        bytes += text.len();
        let reply = import(client, token, text).await?;
        anyhow::ensure!(
            reply.finding_count > 0,
            "a generated report had no findings"
        );
        findings += reply.finding_count as usize;
        organisation = reply.organisation_id;
        eprintln!(
            "closeout-bench: --million: {findings} findings after {part} reports, {} items \
             opened, {:.0} s",
            item_count(stack).await?.saturating_sub(before),
            started.elapsed().as_secs_f64()
        );
    }
    let imported = started.elapsed();
    println!(
        "million: {findings} findings of one organisation from {part} generated reports \
         ({:.1} MB) imported in {:.1} s ({:.0} findings/s)",
        bytes as f64 / 1e6,
        imported.as_secs_f64(),
        findings as f64 / imported.as_secs_f64().max(1e-9),
    );
    let count = wait_tracker_caught_up(stack, before, Duration::from_secs(3600)).await?;
    let opened = started.elapsed();
    println!(
        "tracker-opening [--million: {part} reports, from the first import to the tracker caught \
         up]: {} items in {:.1} s ({:.0} items/s); caught up {:.1} s after the last import \
         replied",
        count.saturating_sub(before),
        opened.as_secs_f64(),
        count.saturating_sub(before) as f64 / opened.as_secs_f64().max(1e-9),
        (opened - imported).as_secs_f64(),
    );
    wait_metrics_caught_up(stack, Duration::from_secs(3600)).await?;
    let caught_up = started.elapsed();
    println!(
        "metrics-lag [--million, metrics consuming while the reports were imported, {} messages \
         in the stream]: caught up {:.1} s after the tracker, {:.1} s after the last import \
         replied",
        stream_messages(stack).await?,
        (caught_up - opened).as_secs_f64(),
        (caught_up - imported).as_secs_f64(),
    );
    print_resident(stack, "after --million");
    Ok(organisation)
}
