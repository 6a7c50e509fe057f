//! Subjects of the event stream.
//!
//! Every event goes to `<prefix>.<service>.v1.<entity>.<verb>.<organisation>`,
//! e.g. `closeout.findings.v1.finding.recorded.hertfordshire`, so a consumer
//! can filter by service (`closeout.tracker.>`), by kind of event
//! (`closeout.tracker.v1.item.overdue.*`) or by organisation
//! (`closeout.*.v1.*.*.hertfordshire`). The mapping from payload to
//! `(service, entity, verb)` is a pure function below, one arm per variant of
//! the envelope's `oneof payload`, so adding a variant to the proto fails to
//! compile until it has a subject.
//!
//! Dead letters go to `<prefix>.dlq.<consumer>`, inside the same stream (the
//! stream captures `<prefix>.>`). That is safe because every service consumer
//! filters by service (`<prefix>.findings.>`, `<prefix>.tracker.>`), never the
//! whole prefix, so a dead letter is never delivered to a service consumer,
//! yet it is kept, replayable and inspectable with the ordinary tools.

use closeout_proto::event_envelope::Payload;

/// Version token of the subjects (and of the proto package).
pub const VERSION_TOKEN: &str = "v1";

/// Organisation token used when an event has no organisation.
pub const NO_ORGANISATION: &str = "none";

/// Where an event is published: the owning service, the aggregate kind
/// and what happened to it. All tokens are lower-case, `[a-z0-9-]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub service: &'static str,
    pub entity: &'static str,
    pub verb: &'static str,
}

const fn route(service: &'static str, entity: &'static str, verb: &'static str) -> Route {
    Route {
        service,
        entity,
        verb,
    }
}

/// The route of a payload: `FindingRecorded` -> `("findings", "finding",
/// "recorded")`, `StatusChanged` -> `("tracker", "item", "status-changed")`.
pub fn route_of(payload: &Payload) -> Route {
    match payload {
        Payload::OrganisationRegistered(_) => route("findings", "organisation", "registered"),
        Payload::InspectionPublished(_) => route("findings", "inspection", "published"),
        Payload::InspectionReplaced(_) => route("findings", "inspection", "replaced"),
        Payload::JudgmentRecorded(_) => route("findings", "judgment", "recorded"),
        Payload::FindingRecorded(_) => route("findings", "finding", "recorded"),
        Payload::FollowUpRecorded(_) => route("findings", "follow-up", "recorded"),
        Payload::IndicatorRecorded(_) => route("findings", "indicator", "recorded"),
        Payload::FindingWithdrawn(_) => route("findings", "finding", "withdrawn"),
        Payload::OrganisationSucceeded(_) => route("findings", "organisation", "succeeded"),
        Payload::OrganisationRenamed(_) => route("findings", "organisation", "renamed"),
        Payload::ItemOpened(_) => route("tracker", "item", "opened"),
        Payload::StatusChanged(_) => route("tracker", "item", "status-changed"),
        Payload::OwnerAssigned(_) => route("tracker", "item", "owner-assigned"),
        Payload::DueDateChanged(_) => route("tracker", "item", "due-date-changed"),
        Payload::ProgressNoted(_) => route("tracker", "item", "progress-noted"),
        Payload::CompletionClaimed(_) => route("tracker", "item", "completion-claimed"),
        Payload::ClaimRejected(_) => route("tracker", "item", "claim-rejected"),
        Payload::ItemVerified(_) => route("tracker", "item", "verified"),
        Payload::ItemSuperseded(_) => route("tracker", "item", "superseded"),
        Payload::ItemReopened(_) => route("tracker", "item", "reopened"),
        Payload::ItemOverdue(_) => route("tracker", "item", "overdue"),
        Payload::ProposalMade(_) => route("tracker", "proposal", "made"),
        Payload::ProposalAccepted(_) => route("tracker", "proposal", "accepted"),
        Payload::ProposalRejected(_) => route("tracker", "proposal", "rejected"),
        Payload::ProposalWithdrawn(_) => route("tracker", "proposal", "withdrawn"),
        Payload::ItemOrganisationChanged(_) => route("tracker", "item", "organisation-changed"),
        Payload::SubscriptionCreated(_) => route("notify", "subscription", "created"),
        Payload::SubscriptionPaused(_) => route("notify", "subscription", "paused"),
        Payload::SubscriptionResumed(_) => route("notify", "subscription", "resumed"),
        Payload::SubscriptionDeleted(_) => route("notify", "subscription", "deleted"),
        Payload::DeliveryRedelivered(_) => route("notify", "delivery", "redelivered"),
    }
}

/// The proto message name of a payload, e.g. `"FindingRecorded"`.
pub fn payload_name(payload: &Payload) -> &'static str {
    match payload {
        Payload::OrganisationRegistered(_) => "OrganisationRegistered",
        Payload::InspectionPublished(_) => "InspectionPublished",
        Payload::InspectionReplaced(_) => "InspectionReplaced",
        Payload::JudgmentRecorded(_) => "JudgmentRecorded",
        Payload::FindingRecorded(_) => "FindingRecorded",
        Payload::FollowUpRecorded(_) => "FollowUpRecorded",
        Payload::IndicatorRecorded(_) => "IndicatorRecorded",
        Payload::FindingWithdrawn(_) => "FindingWithdrawn",
        Payload::OrganisationSucceeded(_) => "OrganisationSucceeded",
        Payload::OrganisationRenamed(_) => "OrganisationRenamed",
        Payload::ItemOpened(_) => "ItemOpened",
        Payload::StatusChanged(_) => "StatusChanged",
        Payload::OwnerAssigned(_) => "OwnerAssigned",
        Payload::DueDateChanged(_) => "DueDateChanged",
        Payload::ProgressNoted(_) => "ProgressNoted",
        Payload::CompletionClaimed(_) => "CompletionClaimed",
        Payload::ClaimRejected(_) => "ClaimRejected",
        Payload::ItemVerified(_) => "ItemVerified",
        Payload::ItemSuperseded(_) => "ItemSuperseded",
        Payload::ItemReopened(_) => "ItemReopened",
        Payload::ItemOverdue(_) => "ItemOverdue",
        Payload::ProposalMade(_) => "ProposalMade",
        Payload::ProposalAccepted(_) => "ProposalAccepted",
        Payload::ProposalRejected(_) => "ProposalRejected",
        Payload::ProposalWithdrawn(_) => "ProposalWithdrawn",
        Payload::ItemOrganisationChanged(_) => "ItemOrganisationChanged",
        Payload::SubscriptionCreated(_) => "SubscriptionCreated",
        Payload::SubscriptionPaused(_) => "SubscriptionPaused",
        Payload::SubscriptionResumed(_) => "SubscriptionResumed",
        Payload::SubscriptionDeleted(_) => "SubscriptionDeleted",
        Payload::DeliveryRedelivered(_) => "DeliveryRedelivered",
    }
}

/// The envelope's `event_type` of a payload: `"closeout.v1.FindingRecorded"`.
pub fn event_type_of(payload: &Payload) -> String {
    format!("closeout.{VERSION_TOKEN}.{}", payload_name(payload))
}

/// The organisation as a subject token: lower-case ASCII letters, digits
/// and `-`; every other run of characters becomes one `-`; trimmed of `-`;
/// at most 64 characters; `"none"` when nothing is left. Organisation ids
/// are slugs already (`hertfordshire`), so this only guards the subject.
pub fn organisation_token(organisation_id: &str) -> String {
    let mut token = String::with_capacity(organisation_id.len());
    let mut pending_dash = false;
    for c in organisation_id.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !token.is_empty() {
                token.push('-');
            }
            pending_dash = false;
            token.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
        if token.len() >= 64 {
            break;
        }
    }
    if token.is_empty() {
        NO_ORGANISATION.to_string()
    } else {
        token
    }
}

/// The subject of an event without the deployment's prefix, e.g.
/// `findings.v1.finding.recorded.hertfordshire`. This is what the outbox
/// stores; the relay adds the prefix of the bus it publishes to.
pub fn relative_subject(payload: &Payload, organisation_id: &str) -> String {
    let Route {
        service,
        entity,
        verb,
    } = route_of(payload);
    format!(
        "{service}.{VERSION_TOKEN}.{entity}.{verb}.{}",
        organisation_token(organisation_id)
    )
}

/// `prefix` + `.` + `relative`.
pub fn join(prefix: &str, relative: &str) -> String {
    format!("{prefix}.{relative}")
}

/// The dead-letter subject of a consumer: `<prefix>.dlq.<consumer>`.
pub fn dlq_subject(prefix: &str, consumer: &str) -> String {
    format!("{prefix}.dlq.{consumer}")
}

/// True if `token` is a valid literal NATS subject token: not empty, and
/// no whitespace, `.`, `*` or `>`.
pub fn is_valid_token(token: &str) -> bool {
    !token.is_empty()
        && !token
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>'))
}

/// True if `subject` is a literal subject (one or more valid tokens).
pub fn is_valid_subject(subject: &str) -> bool {
    subject.split('.').all(is_valid_token)
}

/// True if `name` can be a stream or durable consumer name (and a subject
/// token): ASCII letters, digits, `-` and `_`, at most 64 characters.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use closeout_proto::{FindingRecorded, StatusChanged};

    #[test]
    fn organisation_tokens_are_slugs() {
        assert_eq!(organisation_token("hertfordshire"), "hertfordshire");
        assert_eq!(organisation_token("Avon and Somerset"), "avon-and-somerset");
        assert_eq!(organisation_token("  a.b*c>d  "), "a-b-c-d");
        assert_eq!(organisation_token(""), "none");
        assert_eq!(organisation_token("..."), "none");
        assert_eq!(organisation_token("Ünïcode"), "n-code");
        assert_eq!(organisation_token(&"x".repeat(200)).len(), 64);
    }

    #[test]
    fn subjects_have_the_documented_shape() {
        let finding = Payload::FindingRecorded(FindingRecorded::default());
        assert_eq!(
            relative_subject(&finding, "hertfordshire"),
            "findings.v1.finding.recorded.hertfordshire"
        );
        let status = Payload::StatusChanged(StatusChanged::default());
        assert_eq!(
            join("closeout", &relative_subject(&status, "")),
            "closeout.tracker.v1.item.status-changed.none"
        );
        assert_eq!(dlq_subject("closeout", "metrics"), "closeout.dlq.metrics");
        assert_eq!(event_type_of(&finding), "closeout.v1.FindingRecorded");
    }

    /// Walks the `oneof payload` of the compiled descriptor, so a variant
    /// added to the proto is covered without editing this test.
    #[test]
    fn every_payload_variant_has_a_valid_unique_subject() {
        use prost::Message;
        use prost_reflect::{DescriptorPool, DynamicMessage, Value};
        use std::collections::HashSet;

        let pool = DescriptorPool::decode(closeout_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let envelope = pool
            .get_message_by_name("closeout.v1.EventEnvelope")
            .expect("EventEnvelope in the descriptor set");
        let oneof = envelope
            .oneofs()
            .find(|o| o.name() == "payload")
            .expect("oneof payload");
        let mut subjects = HashSet::new();
        let mut count = 0;
        for field in oneof.fields() {
            let kind = field.kind();
            let payload_desc = kind.as_message().expect("payload fields are messages");
            let mut dynamic = DynamicMessage::new(envelope.clone());
            dynamic.set_field(
                &field,
                Value::Message(DynamicMessage::new(payload_desc.clone())),
            );
            let decoded = closeout_proto::EventEnvelope::decode(dynamic.encode_to_vec().as_slice())
                .expect("re-decodes");
            let payload = decoded
                .payload
                .unwrap_or_else(|| panic!("{} did not decode to a payload", field.name()));
            assert_eq!(payload_name(&payload), payload_desc.name());
            let r = route_of(&payload);
            for token in [r.service, r.entity, r.verb] {
                assert!(is_valid_token(token), "{token:?}");
                assert!(
                    token
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                    "{token:?}"
                );
            }
            assert!(matches!(r.service, "findings" | "tracker" | "notify"));
            let subject = relative_subject(&payload, "hertfordshire");
            assert!(is_valid_subject(&subject), "{subject}");
            assert!(
                subjects.insert(subject.clone()),
                "duplicate subject {subject}"
            );
            assert_eq!(
                event_type_of(&payload),
                format!("closeout.v1.{}", payload_desc.name())
            );
            count += 1;
        }
        assert_eq!(count, 31);
    }

    #[test]
    fn token_and_name_validation() {
        assert!(is_valid_token("status-changed"));
        assert!(!is_valid_token(""));
        assert!(!is_valid_token("a.b"));
        assert!(!is_valid_token("a b"));
        assert!(!is_valid_token(">"));
        assert!(is_valid_subject("closeout.findings.v1.finding.recorded.x"));
        assert!(!is_valid_subject("closeout..x"));
        assert!(is_valid_name("tracker_findings-1"));
        assert!(!is_valid_name("tracker.findings"));
        assert!(!is_valid_name(""));
    }
}
