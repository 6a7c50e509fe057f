//! Changes to subscriptions are events: creating, pausing, resuming and
//! deleting one each put an event on the stream (through the outbox), on
//! `notify.v1.subscription.<verb>.<owner organisation>`, without the
//! secret or the target's address.

mod common;

use closeout_bus::Payload;
use closeout_proto::{self as pb, SubscriptionEvent as Ev};
use common::*;
use prost::Message;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_changes_are_published() {
    let env = Env::new().await;
    let notify = closeout_notify::start(env.config(None), std::future::pending())
        .await
        .expect("notify starts");
    let mut client = client(notify.addr).await;
    let receiver = Receiver::always(200).await;
    let url = receiver.url();

    let created = client
        .create_subscription(as_role(
            "inspected-body",
            "kent",
            webhook(&url, &[Ev::StatusChanged, Ev::ItemOverdue], &[]),
        ))
        .await
        .expect("CreateSubscription")
        .into_inner();
    let id = created
        .subscription
        .as_ref()
        .map(|s| s.id.clone())
        .expect("subscription");
    client
        .pause_subscription(as_role(
            "inspected-body",
            "kent",
            pb::PauseSubscriptionRequest {
                subscription_id: id.clone(),
            },
        ))
        .await
        .expect("PauseSubscription");
    client
        .resume_subscription(as_role(
            "inspected-body",
            "kent",
            pb::ResumeSubscriptionRequest {
                subscription_id: id.clone(),
            },
        ))
        .await
        .expect("ResumeSubscription");
    client
        .delete_subscription(as_role(
            "inspected-body",
            "kent",
            pb::DeleteSubscriptionRequest {
                subscription_id: id.clone(),
            },
        ))
        .await
        .expect("DeleteSubscription");

    // The relay publishes the outbox; read the stream back in order.
    let stream_name = env.test_bus.config().stream_name;
    let mut stream = env
        .bus
        .jetstream()
        .get_stream(&stream_name)
        .await
        .expect("stream");
    eventually("four events on the stream", Duration::from_secs(20), || {
        let mut stream = stream.clone();
        async move {
            stream
                .info()
                .await
                .map(|info| info.state.messages >= 4)
                .unwrap_or(false)
        }
    })
    .await;
    let count = stream.info().await.expect("stream info").state.messages;
    assert_eq!(count, 4, "exactly one event per change");
    let prefix = env.test_bus.config().subject_prefix;
    let mut seen = Vec::new();
    for sequence in 1..=4u64 {
        let message = stream.get_raw_message(sequence).await.expect("message");
        assert!(
            !String::from_utf8_lossy(&message.payload).contains(&created.secret),
            "the secret is never published"
        );
        assert!(
            !String::from_utf8_lossy(&message.payload).contains(&url),
            "the webhook URL is never published"
        );
        let envelope = pb::EventEnvelope::decode(message.payload.clone()).expect("an envelope");
        assert_eq!(envelope.source_service, "notify");
        assert_eq!(envelope.organisation_id, "kent");
        assert_eq!(envelope.aggregate_id, id);
        let (verb, subscription_id) = match envelope.payload.expect("payload") {
            Payload::SubscriptionCreated(c) => {
                assert_eq!(c.organisation_ids, vec!["kent".to_string()]);
                assert_eq!(
                    c.events,
                    vec![Ev::StatusChanged as i32, Ev::ItemOverdue as i32]
                );
                assert_eq!(c.target_kind, "webhook");
                ("created", c.subscription_id)
            }
            Payload::SubscriptionPaused(p) => ("paused", p.subscription_id),
            Payload::SubscriptionResumed(r) => ("resumed", r.subscription_id),
            Payload::SubscriptionDeleted(d) => ("deleted", d.subscription_id),
            other => panic!("unexpected event {other:?}"),
        };
        assert_eq!(subscription_id, id);
        assert_eq!(
            message.subject.as_str(),
            format!("{prefix}.notify.v1.subscription.{verb}.kent")
        );
        seen.push(verb);
    }
    assert_eq!(seen, ["created", "paused", "resumed", "deleted"]);

    notify.stop().await.expect("notify stops");
    env.cleanup().await;
}
