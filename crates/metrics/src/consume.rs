//! The event consumers: one durable consumer per source service
//! (nats-server 2.9 allows one filter subject per consumer), both applying
//! events with the same [`Projector`] inside the bus's transaction, so an
//! event is stored in the history and folded into the read models exactly
//! once.

use crate::model::Fact;
use crate::store;
use closeout_bus::consumer::BatchHandler;
use closeout_bus::{
    Bus, BusError, ConsumerConfig, ConsumerHandle, ConsumerStats, EventHandler, HandlerError,
};
use closeout_proto::EventEnvelope;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use uuid::Uuid;

/// Durable consumer of the findings service's events.
pub const FINDINGS_CONSUMER: &str = "metrics-findings";
/// Durable consumer of the tracker's events.
pub const TRACKER_CONSUMER: &str = "metrics-tracker";

/// The consumers and the subjects (relative to the prefix) they read.
pub const CONSUMERS: [(&str, &str); 2] = [
    (FINDINGS_CONSUMER, "findings.>"),
    (TRACKER_CONSUMER, "tracker.>"),
];

/// Stores each event and folds it into the read models.
#[derive(Clone, Copy, Debug, Default)]
pub struct Projector;

impl BatchHandler for Projector {
    /// The whole batch: one statement stores the history, the batch's items
    /// are folded in memory and written back with one statement, and the
    /// tallies move once per key.
    async fn handle_batch(
        &self,
        tx: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<(), HandlerError> {
        let (heads, facts) = check(events)?;
        let fresh = store::record_batch(tx, &heads, facts).await?;
        store::apply(tx, &fresh).await?;
        Ok(())
    }
}

impl EventHandler for Projector {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<(), HandlerError> {
        self.handle_batch(tx, std::slice::from_ref(event)).await
    }
}

/// The batch's events with their ids, and as facts (in the same order);
/// any that does not check fails the batch (the consumer then applies its
/// events one at a time).
#[allow(clippy::type_complexity)]
fn check(
    events: &[EventEnvelope],
) -> Result<(Vec<(Uuid, &EventEnvelope)>, Vec<Fact>), HandlerError> {
    let mut heads = Vec::with_capacity(events.len());
    let mut facts = Vec::with_capacity(events.len());
    for event in events {
        let (event_id, fact) = check_event(event).map_err(HandlerError::Permanent)?;
        heads.push((event_id, event));
        facts.push(fact);
    }
    Ok((heads, facts))
}

/// An event as every consumer of the history checks it (the live ones and
/// a rebuild's replay): a UUID for its id and a valid fact.
pub(crate) fn check_event(event: &EventEnvelope) -> Result<(Uuid, Fact), String> {
    let fact = Fact::from_envelope(event)?;
    let event_id = Uuid::parse_str(&event.event_id)
        .map_err(|_| format!("event id {:?} is not a UUID", event.event_id))?;
    Ok((event_id, fact))
}

/// Running consumers.
pub struct Consumers {
    handles: Vec<(&'static str, ConsumerHandle)>,
}

impl Consumers {
    /// Starts both consumers.
    pub fn spawn(pool: &PgPool, bus: &Bus) -> Result<Consumers, BusError> {
        Consumers::spawn_with(pool, bus, live_config, Arc::new(Projector))
    }

    fn spawn_with<H: BatchHandler + Clone>(
        pool: &PgPool,
        bus: &Bus,
        tuning: impl Fn(&'static str, &'static str) -> ConsumerConfig,
        handler: H,
    ) -> Result<Consumers, BusError> {
        let mut handles = Vec::new();
        for (name, filter) in CONSUMERS {
            let handle = closeout_bus::Consumer::spawn_batched(
                pool.clone(),
                bus.clone(),
                tuning(name, filter),
                handler.clone(),
            )?;
            handles.push((name, handle));
        }
        Ok(Consumers { handles })
    }

    /// Each consumer's counters.
    pub fn stats(&self) -> Vec<(&'static str, Arc<ConsumerStats>)> {
        self.handles
            .iter()
            .map(|(name, h)| (*name, h.stats()))
            .collect()
    }

    /// Stops both after the message in hand.
    pub async fn stop(self) {
        for (_, handle) in self.handles {
            handle.stop().await;
        }
    }
}

/// The service's consumer: batched, up to 256 events applied per
/// transaction. Each batch is visible (to GetScorecard) as it commits, one
/// disk flush before it is durable; its acks wait for the flush. The
/// projector appends no events, so a batch a crash of PostgreSQL loses
/// announced nothing, and its messages, unacked, are applied again.
fn live_config(name: &'static str, filter: &'static str) -> ConsumerConfig {
    ConsumerConfig {
        batch: 256,
        max_ack_pending: 1024,
        commit_without_flush: true,
        ..ConsumerConfig::new(name, &[filter])
    }
}

/// Creates each durable consumer of [`CONSUMERS`] (as the service's would
/// be: same name, filter, ack policy and limits) starting after the given
/// stream sequence (in the same order), for a rebuild whose replay stored
/// everything up to there. A consumer that exists already (a service
/// running meanwhile re-created it from the stream's start) is left as it
/// is: what it redelivers the history holds and skips.
pub async fn create_after(bus: &Bus, replayed: &[u64]) -> Result<(), String> {
    use async_nats::jetstream::consumer::DeliverPolicy;
    let stream = bus
        .jetstream()
        .get_stream(&bus.config().stream_name)
        .await
        .map_err(|e| format!("getting stream {}: {e}", bus.config().stream_name))?;
    for ((name, filter), last) in CONSUMERS.iter().zip(replayed) {
        let tuning = live_config(name, filter);
        // One filter each: the JetStream durable is the consumer's name.
        for (durable, filter) in tuning.nats_durables() {
            let start = DeliverPolicy::ByStartSequence {
                start_sequence: last + 1,
            };
            let config = tuning.pull_config(bus, &durable, &filter, start);
            if let Err(e) = stream.create_consumer(config).await
                && stream.consumer_info(&durable).await.is_err()
            {
                return Err(format!("creating consumer {durable}: {e}"));
            }
        }
    }
    Ok(())
}

/// The full filter subject of each consumer of [`CONSUMERS`].
pub fn filter_subjects(bus: &Bus) -> Vec<String> {
    nats_consumers(bus).into_iter().map(|(_, s)| s).collect()
}

/// Deletes the durable consumers, so the next start replays the stream
/// from the beginning. Missing consumers are fine.
pub async fn delete_consumers(bus: &Bus) -> Result<(), String> {
    let stream = bus
        .jetstream()
        .get_stream(&bus.config().stream_name)
        .await
        .map_err(|e| format!("getting stream {}: {e}", bus.config().stream_name))?;
    for (name, _) in CONSUMERS {
        if let Err(e) = stream.delete_consumer(name).await {
            let text = e.to_string();
            if !text.contains("not found") {
                return Err(format!("deleting consumer {name}: {text}"));
            }
        }
    }
    Ok(())
}

/// How far one JetStream consumer must have got for its replay to count
/// as caught up, fixed when the wait begins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Goal {
    /// Stream sequence of the last message on the consumer's subjects, as
    /// the stream's leader answered (0: there is none).
    pub last_sequence: u64,
    /// Creation time (Unix nanoseconds, the server's clock) of the consumer
    /// a rebuild deleted: an answer about that one must not count.
    pub replaced: Option<i128>,
}

/// The parts of a consumer's info that say how far it got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Unix nanoseconds, the server's clock.
    pub created: i128,
    /// Every message of the consumer up to this stream sequence is acked.
    pub ack_floor: u64,
    /// The stream sequence of the last message delivered (for a consumer
    /// created to start after a rebuild's replay, the one before its start:
    /// nats-server 2.9 leaves its ack floor at 0 until it acks one).
    pub delivered: u64,
    pub num_pending: u64,
    pub num_ack_pending: u64,
}

impl Progress {
    fn of(info: &async_nats::jetstream::consumer::Info) -> Progress {
        Progress {
            created: info.created.unix_timestamp_nanos(),
            ack_floor: info.ack_floor.stream_sequence,
            delivered: info.delivered.stream_sequence,
            num_pending: info.num_pending,
            num_ack_pending: u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX),
        }
    }
}

/// True when `progress` proves the consumer has applied everything up to
/// the goal. Nothing pending is not enough on its own: a consumer just
/// created, or led by a node whose copy of the stream is behind, reports
/// 0 pending before it has seen the stream's end. The ack floor cannot run
/// ahead of what was really acknowledged (after commit), and the goal comes
/// from the stream's leader; with nothing awaiting its ack, every message
/// delivered is acknowledged too (or was never to be: a consumer created
/// after a rebuild's replay, whose history holds them).
pub fn caught_up(goal: &Goal, progress: &Progress) -> bool {
    progress.num_pending == 0
        && progress.num_ack_pending == 0
        && progress.ack_floor.max(progress.delivered) >= goal.last_sequence
        && goal.replaced.is_none_or(|old| progress.created > old)
}

/// The JetStream consumers of [`CONSUMERS`] and their full filter subjects.
fn nats_consumers(bus: &Bus) -> Vec<(&'static str, String)> {
    CONSUMERS
        .iter()
        .map(|(name, filter)| (*name, bus.subject(filter)))
        .collect()
}

/// The consumers' goals now: the last stream sequence on each one's
/// subjects, asked of the stream's leader (a message get, which only the
/// leader answers); `replaced` from [`created_times`]. `None` if NATS does
/// not answer.
pub async fn goals(bus: &Bus, replaced: &[Option<i128>]) -> Option<Vec<Goal>> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let stream = bus
        .jetstream()
        .get_stream(&bus.config().stream_name)
        .await
        .ok()?;
    let mut goals = Vec::new();
    for (i, (_, subject)) in nats_consumers(bus).into_iter().enumerate() {
        let last_sequence = match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => message.sequence,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => 0,
            Err(_) => return None,
        };
        goals.push(Goal {
            last_sequence,
            replaced: replaced.get(i).copied().flatten(),
        });
    }
    Some(goals)
}

/// When each consumer of [`CONSUMERS`] was created (`None`: it does not
/// exist or NATS does not answer), before a rebuild deletes them.
pub async fn created_times(bus: &Bus) -> Vec<Option<i128>> {
    let mut times = Vec::new();
    let stream = bus
        .jetstream()
        .get_stream(&bus.config().stream_name)
        .await
        .ok();
    for (name, _) in CONSUMERS {
        let created = match &stream {
            Some(stream) => stream
                .consumer_info(name)
                .await
                .ok()
                .map(|info| info.created.unix_timestamp_nanos()),
            None => None,
        };
        times.push(created);
    }
    times
}

/// True when every consumer of [`CONSUMERS`] exists and has reached its
/// goal (`goals` in the same order).
pub async fn reached(bus: &Bus, goals: &[Goal]) -> bool {
    let Ok(stream) = bus.jetstream().get_stream(&bus.config().stream_name).await else {
        return false;
    };
    for ((name, _), goal) in CONSUMERS.iter().zip(goals) {
        match stream.consumer_info(*name).await {
            Ok(info) if caught_up(goal, &Progress::of(&info)) => {}
            _ => return false,
        }
    }
    goals.len() == CONSUMERS.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOAL: Goal = Goal {
        last_sequence: 441,
        replaced: Some(1_000),
    };

    fn done() -> Progress {
        Progress {
            created: 2_000,
            ack_floor: 441,
            delivered: 441,
            num_pending: 0,
            num_ack_pending: 0,
        }
    }

    /// A consumer created to start after a rebuild's replay: nothing acked
    /// yet (nats-server 2.9 reports an ack floor of 0), the messages before
    /// its start counted as delivered.
    #[test]
    fn a_consumer_created_after_the_replay_is_caught_up() {
        let created = Progress {
            ack_floor: 0,
            delivered: 441,
            ..done()
        };
        assert!(caught_up(&GOAL, &created));
        let short = Progress {
            delivered: 440,
            ..created
        };
        assert!(!caught_up(&GOAL, &short));
        let unacked = Progress {
            num_ack_pending: 1,
            ..created
        };
        assert!(!caught_up(&GOAL, &unacked));
    }

    #[test]
    fn caught_up_once_the_ack_floor_reaches_the_leaders_last_sequence() {
        assert!(caught_up(&GOAL, &done()));
        // Past it: later messages (on other subjects, or published since).
        let past = Progress {
            ack_floor: 500,
            ..done()
        };
        assert!(caught_up(&GOAL, &past));
    }

    /// The issue-12 failure: after 425 of the stream's 441 events, a
    /// consumer (just created, or led by a node still catching up)
    /// reported nothing pending. That alone must not count.
    #[test]
    fn nothing_pending_short_of_the_goal_is_not_caught_up() {
        let short = Progress {
            ack_floor: 425,
            delivered: 425,
            ..done()
        };
        assert!(!caught_up(&GOAL, &short));
        let fresh = Progress {
            ack_floor: 0,
            delivered: 0,
            ..done()
        };
        assert!(!caught_up(&GOAL, &fresh));
    }

    #[test]
    fn pending_or_unacknowledged_is_not_caught_up() {
        let pending = Progress {
            num_pending: 1,
            ..done()
        };
        assert!(!caught_up(&GOAL, &pending));
        let unacked = Progress {
            num_ack_pending: 1,
            ..done()
        };
        assert!(!caught_up(&GOAL, &unacked));
    }

    /// An answer about the consumer the rebuild deleted (its ack floor at
    /// the end of the stream) is not the replay's.
    #[test]
    fn the_replaced_consumer_does_not_count() {
        let old = Progress {
            created: 1_000,
            ..done()
        };
        assert!(!caught_up(&GOAL, &old));
        let no_old = Goal {
            replaced: None,
            ..GOAL
        };
        assert!(caught_up(&no_old, &old));
    }

    #[test]
    fn no_message_on_the_subjects_is_caught_up_at_once() {
        let empty = Goal {
            last_sequence: 0,
            replaced: None,
        };
        assert!(caught_up(&empty, &Progress::default()));
    }
}
