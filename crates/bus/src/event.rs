//! Building envelopes and the headers that travel with them.
//!
//! A service fills in who did what to which aggregate ([`EventMeta`]) and the
//! payload; [`new_event`] adds what must never be forgotten or invented
//! twice: a UUID v7 event id (time-ordered, so ids sort like the events),
//! the event type derived from the payload, and the time.
//!
//! Every published message also carries a W3C `traceparent`. We have no
//! OpenTelemetry context to propagate yet, so it is derived from the
//! envelope: the trace id from the correlation id (every event of one
//! request or import lands in the same trace), the parent id from the event
//! id. When real tracing arrives, only [`traceparent`] changes.

use crate::subject::{event_type_of, route_of};
use closeout_proto::event_envelope::Payload;
use closeout_proto::{Actor, EventEnvelope};
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// `Nats-Msg-Id`: the event id, so JetStream drops duplicate publishes.
pub const HEADER_MSG_ID: &str = "Nats-Msg-Id";
/// The envelope's event type, so tools can filter without decoding.
pub const HEADER_EVENT_TYPE: &str = "Closeout-Event-Type";
/// W3C trace context.
pub const HEADER_TRACEPARENT: &str = "traceparent";
/// On a dead letter: the subject the message was first published to.
pub const HEADER_DLQ_SUBJECT: &str = "Closeout-Original-Subject";
/// On a dead letter: why it could not be applied.
pub const HEADER_DLQ_ERROR: &str = "Closeout-Error";
/// On a dead letter: the event id, when the envelope could be decoded.
pub const HEADER_DLQ_EVENT_ID: &str = "Closeout-Event-Id";
/// On a dead letter: the consumer that gave up.
pub const HEADER_DLQ_CONSUMER: &str = "Closeout-Consumer";
/// On a dead letter: how many times it was delivered.
pub const HEADER_DLQ_DELIVERED: &str = "Closeout-Delivered";

/// Who did what to which aggregate; everything of an envelope but the
/// generated fields and the payload.
#[derive(Clone, Copy, Debug)]
pub struct EventMeta<'a> {
    /// `"findings"`, `"tracker"` or `"metrics"`.
    pub source_service: &'a str,
    /// The organisation the event concerns; its slug ends the subject.
    pub organisation_id: &'a str,
    /// `"inspection"`, `"finding"`, `"item"`, `"proposal"`, …
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    /// Version of the aggregate after this event; 1 for the first.
    pub aggregate_version: u64,
    pub actor: &'a Actor,
    /// The request or import this event belongs to.
    pub correlation_id: &'a str,
    /// The event or command that caused this event.
    pub causation_id: &'a str,
}

/// A new envelope with a fresh UUID v7 id, the payload's event type
/// (`closeout.v1.<PayloadName>`) and the current time.
pub fn new_event(meta: EventMeta<'_>, payload: Payload) -> EventEnvelope {
    EventEnvelope {
        event_id: Uuid::now_v7().to_string(),
        event_type: event_type_of(&payload),
        source_service: meta.source_service.to_string(),
        organisation_id: meta.organisation_id.to_string(),
        occurred_at: Some(now_timestamp()),
        aggregate_type: meta.aggregate_type.to_string(),
        aggregate_id: meta.aggregate_id.to_string(),
        aggregate_version: meta.aggregate_version,
        correlation_id: meta.correlation_id.to_string(),
        causation_id: meta.causation_id.to_string(),
        actor: Some(meta.actor.clone()),
        payload: Some(payload),
    }
}

/// An envelope for `payload` as its service would have recorded it at
/// `seconds` (Unix time): the histories replays, tests and benches make,
/// where only the organisation, the aggregate, its version, the time and
/// the payload matter. The aggregate's type is the payload's entity.
pub fn recorded_at(
    organisation_id: &str,
    aggregate_id: &str,
    aggregate_version: u64,
    seconds: i64,
    payload: Payload,
) -> EventEnvelope {
    let route = route_of(&payload);
    EventEnvelope {
        event_id: Uuid::now_v7().to_string(),
        event_type: event_type_of(&payload),
        source_service: route.service.to_string(),
        organisation_id: organisation_id.to_string(),
        occurred_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        aggregate_type: route.entity.to_string(),
        aggregate_id: aggregate_id.to_string(),
        aggregate_version,
        payload: Some(payload),
        ..Default::default()
    }
}

/// The current time as a protobuf timestamp.
pub fn now_timestamp() -> prost_types::Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        // Always below 1e9, so it fits.
        nanos: since.subsec_nanos() as i32,
    }
}

/// A W3C `traceparent` (`00-<32 hex trace id>-<16 hex parent id>-01`).
///
/// The trace id is the correlation id when it is a UUID (its 32 hex
/// digits), else a 128-bit FNV-1a hash of it, or the event id when there is
/// no correlation id. The parent id is the low 64 bits of the event id (the
/// random part of a v7 UUID), or its hash when the event id is not a UUID.
/// Neither is ever all zeros, which the specification forbids.
pub fn traceparent(correlation_id: &str, event_id: &str) -> String {
    let event = Uuid::parse_str(event_id)
        .map(|u| u.as_u128())
        .unwrap_or_else(|_| fnv1a_128(event_id.as_bytes()));
    let trace = if correlation_id.is_empty() {
        event
    } else {
        Uuid::parse_str(correlation_id)
            .map(|u| u.as_u128())
            .unwrap_or_else(|_| fnv1a_128(correlation_id.as_bytes()))
    };
    let trace = if trace == 0 { 1 } else { trace };
    // Truncation intended: the low half of the id is its random part.
    let parent = (event as u64).max(1);
    format!("00-{trace:032x}-{parent:016x}-01")
}

/// The `traceparent` of an envelope; see [`traceparent`].
pub fn traceparent_of(event: &EventEnvelope) -> String {
    traceparent(&event.correlation_id, &event.event_id)
}

/// True if `value` is a well-formed version-00 `traceparent`.
pub fn is_valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2)
}

fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes.iter().fold(OFFSET, |hash, &b| {
        (hash ^ u128::from(b)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use closeout_proto::{FindingRecorded, Role};

    fn actor() -> Actor {
        Actor {
            subject: "inspector:jane".into(),
            role: Role::Inspectorate as i32,
            organisation_id: String::new(),
        }
    }

    #[test]
    fn new_event_fills_generated_fields() {
        let actor = actor();
        let before = now_timestamp();
        let event = new_event(
            EventMeta {
                source_service: "findings",
                organisation_id: "hertfordshire",
                aggregate_type: "finding",
                aggregate_id: "f-1",
                aggregate_version: 3,
                actor: &actor,
                correlation_id: "req-1",
                causation_id: "cmd-1",
            },
            Payload::FindingRecorded(FindingRecorded {
                finding_id: "f-1".into(),
                ..Default::default()
            }),
        );
        let id = Uuid::parse_str(&event.event_id).expect("event id is a UUID");
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(event.event_type, "closeout.v1.FindingRecorded");
        assert_eq!(event.source_service, "findings");
        assert_eq!(event.organisation_id, "hertfordshire");
        assert_eq!(event.aggregate_type, "finding");
        assert_eq!(event.aggregate_id, "f-1");
        assert_eq!(event.aggregate_version, 3);
        assert_eq!(event.correlation_id, "req-1");
        assert_eq!(event.causation_id, "cmd-1");
        assert_eq!(event.actor.as_ref(), Some(&actor));
        let at = event.occurred_at.expect("occurred_at set");
        assert!((at.seconds, at.nanos) >= (before.seconds, before.nanos));
        assert!(matches!(event.payload, Some(Payload::FindingRecorded(_))));

        let second = new_event(
            EventMeta {
                source_service: "findings",
                organisation_id: "hertfordshire",
                aggregate_type: "finding",
                aggregate_id: "f-1",
                aggregate_version: 4,
                actor: &actor,
                correlation_id: "req-1",
                causation_id: "cmd-1",
            },
            Payload::FindingRecorded(FindingRecorded::default()),
        );
        assert!(second.event_id > event.event_id, "v7 ids sort by time");
    }

    #[test]
    fn traceparent_is_well_formed_and_follows_the_correlation() {
        let event = Uuid::now_v7().to_string();
        let correlation = Uuid::now_v7();
        let tp = traceparent(&correlation.to_string(), &event);
        assert!(is_valid_traceparent(&tp), "{tp}");
        assert_eq!(&tp[3..35], correlation.simple().to_string());

        for (c, e) in [
            ("", event.as_str()),
            ("import-42", event.as_str()),
            ("import-42", "not-a-uuid"),
            ("", ""),
            (
                "00000000-0000-0000-0000-000000000000",
                "00000000-0000-0000-0000-000000000000",
            ),
        ] {
            let tp = traceparent(c, e);
            assert!(is_valid_traceparent(&tp), "{c:?} {e:?} -> {tp}");
            assert_eq!(tp.len(), 55);
        }
        // One request, one trace.
        let a = traceparent("import-42", &Uuid::now_v7().to_string());
        let b = traceparent("import-42", &Uuid::now_v7().to_string());
        assert_eq!(a[..35], b[..35]);
        assert_ne!(a[36..52], b[36..52]);

        assert!(!is_valid_traceparent("00-abc-def-01"));
        assert!(!is_valid_traceparent(
            "00-00000000000000000000000000000000-0000000000000001-01"
        ));
        assert!(!is_valid_traceparent(
            "00-0000000000000000000000000000000A-0000000000000001-01"
        ));
    }
}
