//! The lag scenario: from a command's reply to the scorecard showing it,
//! and (on a private stack) where that time goes.
//!
//! The breakdown uses timestamps the system keeps anyway, so nothing in
//! the services is instrumented: the outbox row's `created_at` (the
//! command's transaction start) and `sent_at` (the start of the relay pass
//! that published it) in the tracker's database, the moment the bench's own
//! core-NATS subscription on the stream's subjects sees the message, and
//! `closeout_applied_events.applied_at` (the start of the metrics batch
//! transaction that applied it) in the metrics database, and the bench's
//! own reply and scorecard-shows-it times of the command on the same item
//! (the tap reads the item from the event). All are wall clocks of this
//! one machine.

use crate::load::{Stats, ms};
use crate::stack::{Stack, with_token};
use closeout_bus::event::{HEADER_EVENT_TYPE, HEADER_MSG_ID};
use closeout_bus::subject::organisation_token;
use closeout_proto as pb;
use closeout_proto::metrics_service_client::MetricsServiceClient;
use closeout_proto::tracker_service_client::TrackerServiceClient;
use futures::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc};
use tonic::transport::Channel;

/// The in-progress count of `organisation`'s scorecard.
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

/// One command's reply, and when its organisation's scorecard first showed
/// it (None if it never did), as wall clocks (epoch seconds).
#[derive(Clone, Copy, Debug)]
struct Shown {
    replied: f64,
    shown: Option<f64>,
}

/// A command waiting to be shown: the in-progress count that shows it,
/// its reply (monotonic and wall clock) and its item.
type Waiting = (u32, Instant, f64, String);

/// GetScorecard calls the pollers make at once, in all.
const POLLS_IN_FLIGHT: usize = 4;

/// A poller's pause between two reads of a scorecard that does not show
/// its command yet.
const POLL_EVERY: Duration = Duration::from_millis(1);

/// How long a poller waits for the tap before reading anyway.
const BACK_STOP: Duration = Duration::from_millis(100);

/// What one organisation's poller saw.
#[derive(Default)]
struct Polled {
    /// Reply -> scorecard shows it, per command.
    lags: Vec<Duration>,
    /// Each GetScorecard call's latency.
    calls: Vec<Duration>,
    /// Each call's wait for its turn among [`POLLS_IN_FLIGHT`].
    turns: Vec<Duration>,
    /// (item, reply, shown) wall clocks.
    shown: Vec<(String, f64, f64)>,
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One organisation's StatusChanged events seen on the stream, and its
/// poller's wake-up.
#[derive(Default)]
struct OnStream {
    count: AtomicU32,
    woken: Notify,
}

/// Watches the private stream's subjects for StatusChanged messages (what
/// StartItem emits), remembers when each was seen (event id -> epoch
/// seconds), counts them per organisation and wakes that organisation's
/// poller.
struct Tap {
    seen: Arc<Mutex<HashMap<String, f64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Tap {
    /// `organisations`: by subject token (the subject's last token).
    async fn start(
        stack: &Stack,
        organisations: HashMap<String, Arc<OnStream>>,
    ) -> anyhow::Result<Option<Tap>> {
        let Some(private) = &stack.private else {
            return Ok(None);
        };
        let config = private.bus.config();
        let client = async_nats::connect(config.nats_url.as_str()).await?;
        let mut subscription = client
            .subscribe(format!("{}.>", config.subject_prefix))
            .await?;
        client.flush().await?;
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let into = seen.clone();
        let task = tokio::spawn(async move {
            let _client = client;
            while let Some(message) = subscription.next().await {
                let now = epoch(SystemTime::now());
                let Some(headers) = &message.headers else {
                    continue;
                };
                let started = headers
                    .get(HEADER_EVENT_TYPE)
                    .is_some_and(|t| t.as_str().ends_with(".StatusChanged"));
                if let (true, Some(id)) = (started, headers.get(HEADER_MSG_ID))
                    && let Ok(mut seen) = into.lock()
                {
                    seen.entry(id.as_str().to_string()).or_insert(now);
                }
                let token = message.subject.as_str().rsplit('.').next().unwrap_or("");
                if let (true, Some(organisation)) = (started, organisations.get(token)) {
                    organisation.count.fetch_add(1, Ordering::SeqCst);
                    organisation.woken.notify_one();
                }
            }
        });
        Ok(Some(Tap { seen, task }))
    }

    /// Stops the tap and prints the breakdown of the events it saw;
    /// `commands` has each item's reply and scorecard-shows-it times.
    async fn report(
        self,
        stack: &Stack,
        name: &str,
        commands: &HashMap<String, Shown>,
    ) -> anyhow::Result<()> {
        // Let the last messages arrive.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.task.abort();
        let seen: HashMap<String, f64> = self
            .seen
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .clone();
        let Some(private) = &stack.private else {
            return Ok(());
        };
        let ids: Vec<uuid::Uuid> = seen.keys().filter_map(|k| k.parse().ok()).collect();
        let tracker = sqlx::PgPool::connect(private.tracker_db.url()).await?;
        // The item of each event from the tracker's history.
        let outbox: Vec<(uuid::Uuid, f64, Option<f64>, Option<String>)> = sqlx::query_as(
            "SELECT o.event_id, extract(epoch FROM o.created_at)::float8, \
             extract(epoch FROM o.sent_at)::float8, e.item_id::text \
             FROM closeout_outbox o LEFT JOIN item_events e USING (event_id) \
             WHERE o.event_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&tracker)
        .await?;
        tracker.close().await;
        let metrics = sqlx::PgPool::connect(private.metrics_db.url()).await?;
        let applied: HashMap<uuid::Uuid, f64> = sqlx::query_as::<_, (uuid::Uuid, f64)>(
            "SELECT event_id, extract(epoch FROM min(applied_at))::float8 \
             FROM closeout_applied_events WHERE event_id = ANY($1) GROUP BY event_id",
        )
        .bind(&ids)
        .fetch_all(&metrics)
        .await?
        .into_iter()
        .collect();
        metrics.close().await;
        let (mut to_pass, mut to_nats, mut to_apply, mut total) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut reply_to_pass, mut reply_to_apply, mut apply_to_shown) =
            (Vec::new(), Vec::new(), Vec::new());
        let span = |from: f64, to: f64| Duration::from_secs_f64((to - from).max(0.0));
        for (id, created, sent, item) in &outbox {
            let Some(&on_nats) = seen.get(&id.to_string()) else {
                continue;
            };
            let command = item.as_ref().and_then(|item| commands.get(item));
            if let Some(sent) = sent {
                to_pass.push(span(*created, *sent));
                to_nats.push(span(*sent, on_nats));
                if let Some(command) = command {
                    reply_to_pass.push(span(command.replied, *sent));
                }
            }
            if let Some(&applied) = applied.get(id) {
                to_apply.push(span(on_nats, applied));
                total.push(span(*created, applied));
                if let Some(command) = command {
                    reply_to_apply.push(span(command.replied, applied));
                    if let Some(shown) = command.shown {
                        apply_to_shown.push(span(applied, shown));
                    }
                }
            }
        }
        let figure = |v: Vec<Duration>| {
            let s = Stats::of(v, Duration::from_secs(1));
            format!("p50 {} p99 {}", ms(s.p50), ms(s.p99))
        };
        println!(
            "{name}-parts [{} StatusChanged events; wall clocks: outbox created_at (command's \
             transaction start), sent_at (relay pass start), seen on NATS by the bench, metrics \
             applied_at (batch transaction start), the bench's reply and scorecard-shows-it]: \
             command -> relay pass {} | relay pass -> on NATS {} | on NATS -> metrics applies {} \
             | command -> metrics applies {} | reply -> relay pass {} | reply -> metrics applies \
             {} | metrics applies -> scorecard shows it {}",
            outbox.len(),
            figure(to_pass),
            figure(to_nats),
            figure(to_apply),
            figure(total),
            figure(reply_to_pass),
            figure(reply_to_apply),
            figure(apply_to_shown),
        );
        Ok(())
    }
}

/// From a command's reply to the scorecard showing it: StartItem on
/// `open` items at a steady `rate`, each command sent on schedule whatever
/// the replies before it (open loop). One poller per organisation reads
/// its scorecard while it has commands not yet shown, and records each
/// command's lag when its in-progress count includes it. On a private
/// stack a poller starts reading once the command's event is on the
/// stream (the scorecard cannot show it before), so the polls, which share
/// the two cores with the system measured, are spent only where the
/// answer can change; elsewhere it reads from the reply on.
pub async fn lag(
    stack: &Stack,
    name: &str,
    open: &[pb::TrackedItem],
    rate: f64,
) -> anyhow::Result<()> {
    let metrics = stack
        .metrics
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no metrics service"))?;
    anyhow::ensure!(!open.is_empty(), "no open items for the {name} scenario");
    let token = stack.token();
    let mut on_stream: HashMap<String, Arc<OnStream>> = HashMap::new();
    for item in open {
        on_stream.entry(item.organisation_id.clone()).or_default();
    }
    let by_token = on_stream
        .iter()
        .map(|(organisation, seen)| (organisation_token(organisation), seen.clone()))
        .collect();
    let tap = Tap::start(stack, by_token).await?;
    let tapped = tap.is_some();
    // Per organisation: the in-progress count its next reply must reach,
    // and its poller's queue.
    type Targets = HashMap<String, (u32, mpsc::UnboundedSender<Waiting>)>;
    let mut targets: Targets = HashMap::new();
    let mut pollers = Vec::new();
    // At most this many GetScorecard calls at once: one poller per
    // organisation polling every few ms would otherwise load the metrics
    // service (and the two cores) more than the commands do. The time a
    // poll waits for its turn is reported, so a bench that measures its
    // own queue shows it.
    let polls = Arc::new(tokio::sync::Semaphore::new(POLLS_IN_FLIGHT));
    let mut client = MetricsServiceClient::new(metrics.clone());
    for (organisation, seen) in on_stream {
        let count = in_progress(&mut client, &token, &organisation).await?;
        let base = count;
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiting>();
        targets.insert(organisation.clone(), (count, tx));
        let (mut client, token) = (MetricsServiceClient::new(metrics.clone()), token.clone());
        let polls = polls.clone();
        pollers.push(tokio::spawn(async move {
            let mut queue: VecDeque<Waiting> = VecDeque::new();
            let mut polled = Polled::default();
            loop {
                if queue.is_empty() {
                    match rx.recv().await {
                        Some(next) => queue.push_back(next),
                        None => return anyhow::Ok(polled),
                    }
                }
                while let Ok(next) = rx.try_recv() {
                    queue.push_back(next);
                }
                // Not before as many of the organisation's events are on
                // the stream as the first waiting command's count needs; a
                // message the tap missed costs at most a back-stop interval.
                if let (true, Some(&(target, replied, _, _))) = (tapped, queue.front())
                    && seen.count.load(Ordering::SeqCst) < target.saturating_sub(base)
                    && replied.elapsed() < BACK_STOP
                {
                    let _ = tokio::time::timeout(BACK_STOP, seen.woken.notified()).await;
                    continue;
                }
                let queued = Instant::now();
                let permit = polls.acquire().await?;
                let asked = Instant::now();
                let count = in_progress(&mut client, &token, &organisation).await?;
                drop(permit);
                let now = Instant::now();
                let wall = epoch(SystemTime::now());
                polled.turns.push(asked - queued);
                polled.calls.push(now - asked);
                while let Some((target, replied, replied_wall, _)) = queue.front() {
                    if count < *target {
                        break;
                    }
                    polled.lags.push(now - *replied);
                    let replied = *replied_wall;
                    if let Some((_, _, _, item)) = queue.pop_front() {
                        polled.shown.push((item, replied, wall));
                    }
                }
                if let Some(&(_, replied, _, _)) = queue.front() {
                    anyhow::ensure!(
                        replied.elapsed() < Duration::from_secs(60),
                        "the scorecard of {organisation} did not show a command within 60 s"
                    );
                    tokio::time::sleep(POLL_EVERY).await;
                }
            }
        }));
    }
    let organisations = targets.len();
    let targets = Arc::new(Mutex::new(targets));
    let tracker = TrackerServiceClient::new(stack.tracker.clone());
    let every = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let mut commands = Vec::with_capacity(open.len());
    let started = Instant::now();
    for (k, item) in open.iter().enumerate() {
        tokio::time::sleep_until((started + every * k as u32).into()).await;
        let (mut tracker, token, targets) = (tracker.clone(), token.clone(), targets.clone());
        let item = item.clone();
        commands.push(tokio::spawn(async move {
            let sent = Instant::now();
            let reply = tracker
                .start_item(with_token(
                    &token,
                    pb::StartItemRequest {
                        item_id: item.id.clone(),
                        expected_version: item.version,
                        note: "closeout-bench".into(),
                    },
                ))
                .await;
            // A saturated tracker turns calls away (its limit of calls at
            // once): counted, not fatal, and not waited for on the scorecard.
            if let Err(status) = reply {
                anyhow::ensure!(
                    status.code() == tonic::Code::ResourceExhausted,
                    "StartItem: {status}"
                );
                return anyhow::Ok(None);
            }
            let replied = Instant::now();
            let replied_wall = epoch(SystemTime::now());
            let mut targets = targets.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            if let Some((target, poller)) = targets.get_mut(&item.organisation_id) {
                *target += 1;
                let _ = poller.send((*target, replied, replied_wall, item.id.clone()));
            }
            anyhow::Ok(Some((replied - sent, replied, item.id, replied_wall)))
        }));
    }
    let mut latencies = Vec::with_capacity(commands.len());
    let mut last = started;
    let mut by_item: HashMap<String, Shown> = HashMap::with_capacity(commands.len());
    let mut rejected = 0usize;
    for command in commands {
        let Some((latency, replied, item, replied_wall)) = command.await?? else {
            rejected += 1;
            continue;
        };
        latencies.push(latency);
        last = last.max(replied);
        by_item.insert(
            item,
            Shown {
                replied: replied_wall,
                shown: None,
            },
        );
    }
    // The pollers end once their queues are empty and closed.
    targets
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clear();
    let (mut lags, mut calls, mut turns) =
        (Vec::with_capacity(latencies.len()), Vec::new(), Vec::new());
    for poller in pollers {
        let polled = poller.await??;
        lags.extend(polled.lags);
        calls.extend(polled.calls);
        turns.extend(polled.turns);
        for (item, replied, shown) in polled.shown {
            by_item.insert(
                item,
                Shown {
                    replied,
                    shown: Some(shown),
                },
            );
        }
    }
    let replies = Stats::of(latencies, last - started);
    let stats = Stats::of(lags, started.elapsed());
    let calls = Stats::of(calls, started.elapsed());
    let turns = Stats::of(turns, started.elapsed());
    let from = if tap.is_some() {
        "from its event being on the stream"
    } else {
        "from the reply"
    };
    println!(
        "{name} [StartItem at {rate:.0}/s steady (open loop), {} commands over {organisations} \
         organisations, each organisation's scorecard polled {from} every {} while a command is \
         not yet shown, at most {POLLS_IN_FLIGHT} polls at once]: reply -> scorecard shows it \
         p50 {} p99 {} | commands replied at {:.0}/s, p50 {} p99 {}, {rejected} turned away \
         (tracker at its limit of calls at once) | GetScorecard calls of the pollers p50 {} p99 \
         {} ({}, {:.1} per command), waiting for their turn p50 {} p99 {} | goal p50 <= 10ms, \
         p99 <= 50ms",
        replies.ops + rejected,
        ms(POLL_EVERY),
        ms(stats.p50),
        ms(stats.p99),
        replies.rate,
        ms(replies.p50),
        ms(replies.p99),
        ms(calls.p50),
        ms(calls.p99),
        calls.ops,
        calls.ops as f64 / stats.ops.max(1) as f64,
        ms(turns.p50),
        ms(turns.p99),
    );
    if let Some(tap) = tap {
        tap.report(stack, name, &by_item).await?;
    }
    Ok(())
}
