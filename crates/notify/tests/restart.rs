//! Killing the service mid-stream and starting it again loses nothing and,
//! once the receiver de-duplicates by delivery id, duplicates nothing.
//! "Killing" drops the service's whole runtime at once: no graceful stop,
//! tasks cut off wherever they are (between a receiver's answer and the
//! record of it, between a commit and the JetStream ack, …).

mod common;

use closeout_proto::{self as pb, SubscriptionEvent as Ev};
use common::*;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_service_loses_and_duplicates_nothing_after_restart() {
    let env = Env::new().await;
    let config = env.config(None);
    // A slow receiver, so the kill lands while deliveries are queued.
    let receiver = Receiver::start(|n| {
        // Every seventh answer is a 503, so retries are in flight too.
        Answer::Slow(if n % 7 == 3 { 503 } else { 200 }, 25)
    })
    .await;

    // The first life, on a runtime of its own.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let first_config = config.clone();
    let first_life = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let running = runtime.block_on(async {
            closeout_notify::start(first_config, std::future::pending())
                .await
                .expect("notify starts")
        });
        addr_tx.send(running.addr).expect("address sent");
        let _ = kill_rx.recv();
        // Cut everything off; the handle is forgotten so no graceful stop
        // is ever asked for.
        runtime.shutdown_background();
        std::mem::forget(running);
    });
    let addr = addr_rx.recv().expect("first life started");
    let client = client(addr).await;
    let subscription = client
        .clone()
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
        .id;

    let mut expected = Vec::new();
    for _ in 0..4 {
        let history = item_history("hertfordshire", 8);
        expected.extend(history[1..].iter().map(|e| e.event_id.clone()));
        publish(&env.bus, &history).await;
    }
    eventually("some deliveries before the kill", WAIT, || async {
        receiver.accepted().len() >= 6
    })
    .await;
    kill_tx.send(()).expect("kill");
    first_life.join().expect("first life ends");
    let seen_before = receiver.requests().len();
    assert!(
        seen_before < expected.len(),
        "killed mid-stream ({seen_before} seen)"
    );

    // Events published while it is down wait in the stream.
    for _ in 0..2 {
        let history = item_history("kent", 5);
        expected.extend(history[1..].iter().map(|e| e.event_id.clone()));
        publish(&env.bus, &history).await;
    }

    // The second life.
    let notify = closeout_notify::start(config, std::future::pending())
        .await
        .expect("notify restarts");
    let client = common::client(notify.addr).await;
    eventually("every delivery made after the restart", WAIT, || async {
        let list = deliveries(&client, &subscription).await;
        list.len() == expected.len()
            && count(&list, pb::DeliveryStatus::Delivered) == expected.len()
    })
    .await;

    // The receiver de-duplicates by delivery id (keeping the first 2xx).
    let mut by_delivery: HashMap<String, String> = HashMap::new();
    let mut first_seen = Vec::new();
    for request in receiver.accepted() {
        let delivery = request.header("Closeout-Delivery-Id").to_string();
        let event = request.header("Closeout-Event-Id").to_string();
        if let Some(known) = by_delivery.get(&delivery) {
            assert_eq!(known, &event, "one delivery id, one event");
            continue;
        }
        by_delivery.insert(delivery, event.clone());
        first_seen.push(event);
    }
    eprintln!(
        "restart: {} requests, {} accepted, {} events; {} before the kill",
        receiver.requests().len(),
        receiver.accepted().len(),
        first_seen.len(),
        seen_before
    );
    let unique: HashSet<&String> = first_seen.iter().collect();
    assert_eq!(
        unique.len(),
        first_seen.len(),
        "each event under one delivery id only"
    );
    assert_eq!(
        first_seen, expected,
        "nothing lost, nothing twice, in order"
    );

    notify.stop().await.expect("notify stops");
    env.cleanup().await;
}
