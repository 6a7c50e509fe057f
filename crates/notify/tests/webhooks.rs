//! Webhooks end to end: real tracker event envelopes published to a
//! private stream, the real service, real local HTTP receivers.

mod common;

use closeout_notify::rules::verify_signature;
use closeout_proto::{self as pb, SubscriptionEvent as Ev};
use common::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_status_change_arrives_once_per_subscription_in_order_and_signed() {
    let env = Env::new().await;
    let notify = closeout_notify::start(env.config(None), std::future::pending())
        .await
        .expect("notify starts");
    let mut client = client(notify.addr).await;
    let first = Receiver::always(200).await;
    let second = Receiver::always(204).await;
    let kent_only = Receiver::always(200).await;
    let mut secrets = Vec::new();
    let mut ids = Vec::new();
    for (receiver, orgs) in [
        (&first, vec!["hertfordshire"]),
        (&second, vec![]),
        (&kent_only, vec!["kent"]),
    ] {
        let created = client
            .create_subscription(inspectorate(webhook(
                &receiver.url(),
                &[Ev::StatusChanged],
                &orgs,
            )))
            .await
            .expect("CreateSubscription")
            .into_inner();
        assert!(created.secret.starts_with("whsec_"));
        secrets.push(created.secret);
        ids.push(created.subscription.expect("subscription").id);
    }

    let herts = item_history("hertfordshire", 6);
    let other = item_history("hertfordshire", 3);
    publish(&env.bus, &herts).await;
    publish(&env.bus, &other).await;
    let changes: Vec<String> = herts[1..]
        .iter()
        .chain(&other[1..])
        .map(|e| e.event_id.clone())
        .collect();

    for (subscription, receiver) in [(&ids[0], &first), (&ids[1], &second)] {
        eventually("every status change delivered", WAIT, || async {
            let list = deliveries(&client, subscription).await;
            count(&list, pb::DeliveryStatus::Delivered) == changes.len()
        })
        .await;
        // Everything is recorded delivered, so nothing more will be sent.
        let requests = receiver.requests();
        assert_eq!(requests.len(), changes.len(), "each change exactly once");
        let seen: Vec<String> = requests
            .iter()
            .map(|r| r.header("Closeout-Event-Id").to_string())
            .collect();
        // Per subscription, in the order the events were published.
        assert_eq!(seen, changes);
        let delivery_ids: HashSet<&str> = requests
            .iter()
            .map(|r| r.header("Closeout-Delivery-Id"))
            .collect();
        assert_eq!(delivery_ids.len(), changes.len());
        let secret = if std::ptr::eq(receiver, &first) {
            &secrets[0]
        } else {
            &secrets[1]
        };
        let now = chrono::Utc::now().timestamp();
        for request in &requests {
            assert_eq!(
                request.header("Closeout-Event-Type"),
                "closeout.v1.StatusChanged"
            );
            assert!(
                verify_signature(
                    secret,
                    request.header("Closeout-Signature"),
                    &request.body,
                    now,
                    300
                ),
                "signature verifies"
            );
            assert!(!verify_signature(
                "whsec_wrong",
                request.header("Closeout-Signature"),
                &request.body,
                now,
                300
            ));
            let body = request.json();
            assert_eq!(body["eventId"], request.header("Closeout-Event-Id"));
            assert_eq!(body["deliveryId"], request.header("Closeout-Delivery-Id"));
            // The event in canonical proto3 JSON.
            assert_eq!(
                body["event"]["eventId"],
                request.header("Closeout-Event-Id")
            );
            assert_eq!(body["event"]["organisationId"], "hertfordshire");
            assert!(
                body["event"]["statusChanged"]["toStatus"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("ITEM_STATUS_"))
            );
            assert!(
                body["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("moved from"))
            );
        }
    }
    assert!(
        kent_only.requests().is_empty(),
        "another organisation's events are not sent"
    );
    assert!(deliveries(&client, &ids[2]).await.is_empty());

    // The counters say the same.
    let metrics = scrape(notify.metrics_http_addr).await;
    let delivered = metric(&metrics, "closeout_notify_delivered_total");
    assert_eq!(delivered, (2 * changes.len()) as f64, "{metrics}");

    notify.stop().await.expect("notify stops");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_errors_are_retried_client_errors_are_not() {
    let env = Env::new().await;
    let notify = closeout_notify::start(env.config(None), std::future::pending())
        .await
        .expect("notify starts");
    let mut client = client(notify.addr).await;
    let flaky = Receiver::start(|n| Answer::Status(if n < 3 { 500 } else { 200 })).await;
    let refusing = Receiver::always(400).await;
    let mut ids = Vec::new();
    for receiver in [&flaky, &refusing] {
        let created = client
            .create_subscription(inspectorate(webhook(
                &receiver.url(),
                &[Ev::ClaimAwaitingVerification],
                &[],
            )))
            .await
            .expect("CreateSubscription")
            .into_inner();
        ids.push(created.subscription.expect("subscription").id);
    }
    // Opened, started, claimed: one claim awaiting verification.
    publish(&env.bus, &item_history("essex", 2)).await;

    eventually("the flaky receiver's delivery", WAIT, || async {
        count(
            &deliveries(&client, &ids[0]).await,
            pb::DeliveryStatus::Delivered,
        ) == 1
    })
    .await;
    let requests = flaky.requests();
    assert_eq!(requests.len(), 4, "three 500s, then the 200");
    assert_eq!(flaky.accepted().len(), 1, "the event is accepted once");
    let delivery = requests[0].header("Closeout-Delivery-Id").to_string();
    assert!(
        requests
            .iter()
            .all(|r| r.header("Closeout-Delivery-Id") == delivery)
    );
    let history = deliveries(&client, &ids[0]).await;
    let codes: Vec<u32> = history[0].attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![500, 500, 500, 200]);

    eventually("the refused delivery dead-lettered", WAIT, || async {
        count(
            &deliveries(&client, &ids[1]).await,
            pb::DeliveryStatus::Dead,
        ) == 1
    })
    .await;
    assert_eq!(refusing.requests().len(), 1, "a 4xx is never retried");
    let dead = client
        .list_dead_letters(inspectorate(pb::ListDeadLettersRequest {
            subscription_id: ids[1].clone(),
            ..Default::default()
        }))
        .await
        .expect("ListDeadLetters")
        .into_inner()
        .deliveries;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].last_error.contains("400"), "{}", dead[0].last_error);

    let metrics = scrape(notify.metrics_http_addr).await;
    assert_eq!(
        metric(&metrics, "closeout_notify_retried_total"),
        3.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "closeout_notify_dead_lettered_total"),
        1.0,
        "{metrics}"
    );

    notify.stop().await.expect("notify stops");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_never_answers_is_dead_lettered_and_redelivery_works() {
    let env = Env::new().await;
    let mut config = env.config(None);
    config.delivery.timeout_ms = 300;
    config.delivery.max_attempts = 3;
    let notify = closeout_notify::start(config, std::future::pending())
        .await
        .expect("notify starts");
    let mut client = client(notify.addr).await;
    let awake = Arc::new(AtomicBool::new(false));
    let flag = awake.clone();
    let sleepy = Receiver::start(move |_| {
        if flag.load(Ordering::SeqCst) {
            Answer::Status(200)
        } else {
            Answer::Hang
        }
    })
    .await;
    let id = client
        .create_subscription(inspectorate(webhook(
            &sleepy.url(),
            &[Ev::StatusChanged],
            &[],
        )))
        .await
        .expect("CreateSubscription")
        .into_inner()
        .subscription
        .expect("subscription")
        .id;
    let events = item_history("kent", 1);
    publish(&env.bus, &events).await;

    eventually("the dead letter", WAIT, || async {
        dead_letters(&client).await.len() == 1
    })
    .await;
    let dead = dead_letters(&client).await.remove(0);
    assert_eq!(dead.event_id, events[1].event_id);
    assert_eq!(dead.attempts.len(), 3);
    assert!(
        dead.attempts
            .iter()
            .all(|a| a.status_code == 0 && a.error.contains("no answer"))
    );
    assert!(sleepy.accepted().is_empty());

    // Redelivering a delivery that is not dead is refused and changes nothing.
    let refused = client
        .redeliver_dead_letter(inspectorate(pb::RedeliverDeadLetterRequest {
            delivery_id: uuid::Uuid::now_v7().to_string(),
        }))
        .await
        .expect_err("unknown delivery");
    assert_eq!(refused.code(), tonic::Code::NotFound);

    awake.store(true, Ordering::SeqCst);
    client
        .redeliver_dead_letter(inspectorate(pb::RedeliverDeadLetterRequest {
            delivery_id: dead.id.clone(),
        }))
        .await
        .expect("RedeliverDeadLetter");
    eventually("the redelivery", WAIT, || async {
        count(
            &deliveries(&client, &id).await,
            pb::DeliveryStatus::Delivered,
        ) == 1
    })
    .await;
    let accepted = sleepy.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].header("Closeout-Delivery-Id"), dead.id);
    assert!(dead_letters(&client).await.is_empty());
    let again = client
        .redeliver_dead_letter(inspectorate(pb::RedeliverDeadLetterRequest {
            delivery_id: dead.id.clone(),
        }))
        .await
        .expect_err("no longer dead");
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);

    notify.stop().await.expect("notify stops");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_receiver_holds_back_only_its_own_subscription() {
    let env = Env::new().await;
    let mut config = env.config(None);
    // Long enough that the stuck request is still in flight at the end.
    config.delivery.timeout_ms = 60_000;
    let notify = closeout_notify::start(config, std::future::pending())
        .await
        .expect("notify starts");
    let mut client = client(notify.addr).await;
    let stuck = Receiver::start(|_| Answer::Hang).await;
    let healthy = Receiver::always(200).await;
    let mut ids = Vec::new();
    for receiver in [&stuck, &healthy] {
        ids.push(
            client
                .create_subscription(inspectorate(webhook(
                    &receiver.url(),
                    &[Ev::StatusChanged],
                    &[],
                )))
                .await
                .expect("CreateSubscription")
                .into_inner()
                .subscription
                .expect("subscription")
                .id,
        );
    }
    let events = item_history("kent", 5);
    publish(&env.bus, &events).await;
    eventually("the healthy receiver's deliveries", WAIT, || async {
        count(
            &deliveries(&client, &ids[1]).await,
            pb::DeliveryStatus::Delivered,
        ) == 5
    })
    .await;
    assert_eq!(healthy.requests().len(), 5);
    // The stuck subscription waits on its first delivery, in order: the
    // second is not sent while the first is unanswered.
    eventually("the stuck request", WAIT, || async {
        !stuck.requests().is_empty()
    })
    .await;
    let stuck_requests = stuck.requests();
    assert_eq!(stuck_requests.len(), 1);
    assert_eq!(
        stuck_requests[0].header("Closeout-Event-Id"),
        events[1].event_id
    );
    assert_eq!(
        count(
            &deliveries(&client, &ids[0]).await,
            pb::DeliveryStatus::Pending
        ),
        5
    );

    drop(notify);
    env.cleanup().await;
}

/// The Prometheus text of the service.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut text = String::new();
    stream.read_to_string(&mut text).await.expect("response");
    text
}

/// The value of an unlabelled sample.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overdue_items_and_proposals_reach_the_subscriptions_that_asked() {
    let env = Env::new().await;
    let notify = closeout_notify::start(env.config(None), std::future::pending())
        .await
        .expect("notify starts");
    let mut client = client(notify.addr).await;
    let both = Receiver::always(200).await;
    let overdue_by_subject = Receiver::always(200).await;
    let mut ids = Vec::new();
    for (receiver, events, subject) in [
        (&both, vec![Ev::ItemOverdue, Ev::ProposalMade], ""),
        (
            &overdue_by_subject,
            vec![Ev::ItemOverdue, Ev::ProposalMade, Ev::StatusChanged],
            "tracker.v1.item.overdue.*",
        ),
    ] {
        let request = pb::CreateSubscriptionRequest {
            subject_filter: subject.into(),
            ..webhook(&receiver.url(), &events, &[])
        };
        ids.push(
            client
                .create_subscription(inspectorate(request))
                .await
                .expect("CreateSubscription")
                .into_inner()
                .subscription
                .expect("subscription")
                .id,
        );
    }
    let mut history = item_history("essex", 1);
    let item_id = match &history[0].payload {
        Some(closeout_bus::Payload::ItemOpened(opened)) => opened.item_id.clone(),
        _ => unreachable!("the history starts with the opening"),
    };
    let mut overdue = history[1].clone();
    overdue.event_id = uuid::Uuid::now_v7().to_string();
    overdue.event_type = "closeout.v1.ItemOverdue".into();
    overdue.payload = Some(closeout_bus::Payload::ItemOverdue(pb::ItemOverdue {
        item_id: item_id.clone(),
        due_date: Some(pb::CalendarDate {
            year: 2026,
            month: 1,
            day: 31,
        }),
    }));
    let mut proposal = history[1].clone();
    proposal.event_id = uuid::Uuid::now_v7().to_string();
    proposal.event_type = "closeout.v1.ProposalMade".into();
    proposal.aggregate_type = "proposal".into();
    proposal.payload = Some(closeout_bus::Payload::ProposalMade(pb::ProposalMade {
        proposal_id: "p-1".into(),
        item_id,
        outcome: pb::ProposalOutcome::Addressed as i32,
        score: 0.91,
        ..Default::default()
    }));
    history.push(overdue.clone());
    history.push(proposal.clone());
    publish(&env.bus, &history).await;

    eventually("both deliveries", WAIT, || async {
        count(
            &deliveries(&client, &ids[0]).await,
            pb::DeliveryStatus::Delivered,
        ) == 2
    })
    .await;
    let types: Vec<String> = both
        .requests()
        .iter()
        .map(|r| r.header("Closeout-Event-Type").to_string())
        .collect();
    assert_eq!(
        types,
        vec!["closeout.v1.ItemOverdue", "closeout.v1.ProposalMade"]
    );
    let summaries: Vec<String> = both
        .requests()
        .iter()
        .map(|r| r.json()["summary"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        summaries[0].contains("is overdue (due 2026-01-31)"),
        "{}",
        summaries[0]
    );
    assert!(
        summaries[1].contains("addressed (score 0.91)"),
        "{}",
        summaries[1]
    );

    // The subject filter lets only the overdue event through.
    eventually("the overdue delivery", WAIT, || async {
        count(
            &deliveries(&client, &ids[1]).await,
            pb::DeliveryStatus::Delivered,
        ) == 1
    })
    .await;
    let requests = overdue_by_subject.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("Closeout-Event-Id"), overdue.event_id);
    assert_eq!(deliveries(&client, &ids[1]).await.len(), 1);

    notify.stop().await.expect("notify stops");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_subscription_gets_nothing_until_resumed() {
    let env = Env::new().await;
    let notify = closeout_notify::start(env.config(None), std::future::pending())
        .await
        .expect("notify starts");
    let mut client = client(notify.addr).await;
    let paused = Receiver::always(200).await;
    let marker = Receiver::always(200).await;
    let mut ids = Vec::new();
    for (receiver, org) in [(&paused, "kent"), (&marker, "essex")] {
        ids.push(
            client
                .create_subscription(inspectorate(webhook(
                    &receiver.url(),
                    &[Ev::StatusChanged],
                    &[org],
                )))
                .await
                .expect("CreateSubscription")
                .into_inner()
                .subscription
                .expect("subscription")
                .id,
        );
    }
    client
        .pause_subscription(inspectorate(pb::PauseSubscriptionRequest {
            subscription_id: ids[0].clone(),
        }))
        .await
        .expect("pause");
    let while_paused = item_history("kent", 2);
    publish(&env.bus, &while_paused).await;
    // Events are consumed in stream order: once the marker is delivered,
    // the events before it have been considered.
    publish(&env.bus, &item_history("essex", 1)).await;
    eventually("the marker", WAIT, || async {
        count(
            &deliveries(&client, &ids[1]).await,
            pb::DeliveryStatus::Delivered,
        ) == 1
    })
    .await;
    assert!(deliveries(&client, &ids[0]).await.is_empty());

    client
        .resume_subscription(inspectorate(pb::ResumeSubscriptionRequest {
            subscription_id: ids[0].clone(),
        }))
        .await
        .expect("resume");
    let after = item_history("kent", 1);
    publish(&env.bus, &after).await;
    eventually("the delivery after resuming", WAIT, || async {
        count(
            &deliveries(&client, &ids[0]).await,
            pb::DeliveryStatus::Delivered,
        ) == 1
    })
    .await;
    let requests = paused.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("Closeout-Event-Id"), after[1].event_id);

    notify.stop().await.expect("notify stops");
    env.cleanup().await;
}
