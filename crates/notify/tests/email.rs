//! E-mail end to end through a real local SMTP server: one message per
//! event, and the daily digest per recipient.

mod common;

use closeout_notify::deliver::{Deliverer, DeliveryCounters, send_digests};
use closeout_notify::email::Mailer;
use closeout_proto::{self as pb, SubscriptionEvent as Ev};
use closeout_testkit::smtp::SmtpSink;
use common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_awaiting_verification_are_mailed_one_message_each() {
    let env = Env::new().await;
    let smtp = SmtpSink::start().await;
    let notify = closeout_notify::start(env.config(Some(smtp.port())), std::future::pending())
        .await
        .expect("notify starts");
    let mut client = client(notify.addr).await;
    let subscription = client
        .create_subscription(inspectorate(email(
            "verifier@inspectorate.example",
            pb::EmailMode::PerEvent,
            &[Ev::ClaimAwaitingVerification],
            &["hertfordshire"],
        )))
        .await
        .expect("CreateSubscription")
        .into_inner()
        .subscription
        .expect("subscription");

    // Five changes: start, claim, reject, claim, reject: two claims.
    let history = item_history("hertfordshire", 5);
    publish(&env.bus, &history).await;
    publish(&env.bus, &item_history("kent", 2)).await;
    eventually("both claims delivered", WAIT, || async {
        count(
            &deliveries(&client, &subscription.id).await,
            pb::DeliveryStatus::Delivered,
        ) == 2
    })
    .await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 2);
    let list = deliveries(&client, &subscription.id).await;
    for message in &messages {
        assert_eq!(
            message.to,
            vec!["verifier@inspectorate.example".to_string()]
        );
        let subject = message.header("Subject").expect("subject");
        assert!(subject.contains("[Closeout]"), "{subject}");
        let body = message.body();
        assert!(body.contains("awaiting verification"), "{body}");
        assert!(
            body.contains("Item: The force should improve how it handles 999 calls."),
            "{body}"
        );
        assert!(
            body.contains("Who acted: jo@example (inspected-body)"),
            "{body}"
        );
        assert!(body.contains("https://console.example/items/"), "{body}");
        let message_id = message.header("Message-ID").expect("message id");
        assert!(
            list.iter().any(|d| message_id.contains(&d.id)),
            "{message_id}"
        );
        assert!(
            list.iter()
                .all(|d| d.attempts.len() == 1 && d.attempts[0].status_code == 250)
        );
    }

    notify.stop().await.expect("notify stops");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_digest_lists_a_recipients_events_in_one_message() {
    let env = Env::new().await;
    let smtp = SmtpSink::start().await;
    let config = env.config(Some(smtp.port()));
    let notify = closeout_notify::start(config.clone(), std::future::pending())
        .await
        .expect("notify starts");
    let mut client = client(notify.addr).await;
    let mut ids = Vec::new();
    for events in [
        &[Ev::StatusChanged][..],
        &[Ev::ClaimAwaitingVerification][..],
    ] {
        ids.push(
            client
                .create_subscription(inspectorate(email(
                    "owner@herts.example",
                    pb::EmailMode::DailyDigest,
                    events,
                    &["hertfordshire"],
                )))
                .await
                .expect("CreateSubscription")
                .into_inner()
                .subscription
                .expect("subscription")
                .id,
        );
    }
    publish(&env.bus, &item_history("hertfordshire", 2)).await;
    eventually("the events queued for the digest", WAIT, || async {
        count(
            &deliveries(&client, &ids[0]).await,
            pb::DeliveryStatus::DigestQueued,
        ) == 2
            && count(
                &deliveries(&client, &ids[1]).await,
                pb::DeliveryStatus::DigestQueued,
            ) == 1
    })
    .await;
    assert!(
        smtp.messages().is_empty(),
        "nothing is sent before the digest time"
    );

    // The digest run, as the service makes it once a day.
    let settings = config.delivery.settings();
    let mailer = Mailer::from_options(&config.smtp, settings.timeout)
        .expect("SMTP options")
        .expect("a mailer");
    let deliverer = Deliverer::new(
        env.db.pool().clone(),
        Some(mailer),
        settings,
        DeliveryCounters::default(),
    )
    .expect("deliverer");
    let sent = send_digests(&deliverer, chrono::Utc::now())
        .await
        .expect("digest run");
    assert_eq!(sent, 1, "one message per recipient");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let digest = &messages[0];
    assert!(
        digest
            .header("Subject")
            .is_some_and(|s| s.contains("Daily digest: 3 events"))
    );
    assert_eq!(
        digest.body().matches("Who acted:").count(),
        3,
        "{}",
        digest.body()
    );
    assert_eq!(
        count(
            &deliveries(&client, &ids[0]).await,
            pb::DeliveryStatus::Delivered
        ),
        2
    );
    assert_eq!(
        count(
            &deliveries(&client, &ids[1]).await,
            pb::DeliveryStatus::Delivered
        ),
        1
    );
    // A second run finds nothing left to send.
    assert_eq!(
        send_digests(&deliverer, chrono::Utc::now())
            .await
            .expect("digest run"),
        0
    );
    assert_eq!(smtp.messages().len(), 1);

    notify.stop().await.expect("notify stops");
    env.cleanup().await;
}

/// Starts the service on `smtp`, subscribes an address to status changes,
/// publishes one change and waits until its delivery settles.
async fn one_mail(smtp: &SmtpSink) -> (Env, pb::Delivery) {
    let env = Env::new().await;
    let notify = closeout_notify::start(env.config(Some(smtp.port())), std::future::pending())
        .await
        .expect("notify starts");
    let mut client = client(notify.addr).await;
    let id = client
        .create_subscription(inspectorate(email(
            "owner@kent.example",
            pb::EmailMode::PerEvent,
            &[Ev::StatusChanged],
            &[],
        )))
        .await
        .expect("CreateSubscription")
        .into_inner()
        .subscription
        .expect("subscription")
        .id;
    publish(&env.bus, &item_history("kent", 1)).await;
    eventually("the delivery settled", WAIT, || async {
        deliveries(&client, &id)
            .await
            .iter()
            .any(|d| d.status != pb::DeliveryStatus::Pending as i32)
    })
    .await;
    let delivery = deliveries(&client, &id).await.remove(0);
    notify.stop().await.expect("notify stops");
    (env, delivery)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_smtp_failure_is_retried() {
    let smtp = SmtpSink::refusing_first(2, 451).await;
    let (env, delivery) = one_mail(&smtp).await;
    assert_eq!(delivery.status, pb::DeliveryStatus::Delivered as i32);
    let codes: Vec<u32> = delivery.attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![451, 451, 250]);
    assert_eq!(smtp.refused(), 2);
    assert_eq!(smtp.messages().len(), 1);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_smtp_refusal_is_dead_lettered_at_once() {
    let smtp = SmtpSink::refusing_first(1, 550).await;
    let (env, delivery) = one_mail(&smtp).await;
    assert_eq!(delivery.status, pb::DeliveryStatus::Dead as i32);
    assert_eq!(delivery.attempts.len(), 1);
    assert_eq!(delivery.attempts[0].status_code, 550);
    assert!(
        delivery.last_error.contains("SMTP"),
        "{}",
        delivery.last_error
    );
    assert!(smtp.messages().is_empty());
    env.cleanup().await;
}
