//! Managing subscriptions over gRPC: who may do what, and bad input
//! refused with the right code, changing nothing.

mod common;

use closeout_proto::{self as pb, SubscriptionEvent as Ev};
use common::*;
use std::time::Duration;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_confined_to_their_owners() {
    let env = Env::new().await;
    let notify = closeout_notify::start(env.config(None), std::future::pending())
        .await
        .expect("notify starts");
    let mut client = client(notify.addr).await;
    let receiver = Receiver::always(200).await;
    let url = receiver.url();

    // An inspected body cannot subscribe to another organisation's events.
    let denied = client
        .create_subscription(as_role(
            "inspected-body",
            "kent",
            webhook(&url, &[Ev::StatusChanged], &["hertfordshire"]),
        ))
        .await
        .expect_err("another organisation");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("hertfordshire"));
    let denied = client
        .create_subscription(as_role(
            "inspected-body",
            "kent",
            webhook(&url, &[Ev::StatusChanged], &["kent", "essex"]),
        ))
        .await
        .expect_err("one of them another organisation");
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Its own: the organisation list defaults to it.
    let kent = client
        .create_subscription(as_role(
            "inspected-body",
            "kent",
            webhook(&url, &[Ev::StatusChanged, Ev::ItemOverdue], &[]),
        ))
        .await
        .expect("own organisation")
        .into_inner()
        .subscription
        .expect("subscription");
    assert_eq!(kent.organisation_ids, vec!["kent".to_string()]);
    assert_eq!(kent.owner_organisation_id, "kent");
    let all = client
        .create_subscription(inspectorate(webhook(&url, &[Ev::ProposalMade], &[])))
        .await
        .expect("the inspectorate subscribes to everyone")
        .into_inner()
        .subscription
        .expect("subscription");
    assert!(all.organisation_ids.is_empty());

    // Lists: an inspected body sees its own, the inspectorate and viewers all.
    let listed = |role: &'static str, org: &'static str| {
        let mut client = client.clone();
        async move {
            client
                .list_subscriptions(as_role(role, org, pb::ListSubscriptionsRequest::default()))
                .await
                .expect("ListSubscriptions")
                .into_inner()
                .subscriptions
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed("inspected-body", "kent").await,
        vec![kent.id.clone()]
    );
    assert!(listed("inspected-body", "essex").await.is_empty());
    assert_eq!(listed("inspectorate", "").await.len(), 2);
    assert_eq!(listed("viewer", "").await.len(), 2);

    // Another body may not touch Kent's subscription; a viewer only lists.
    for (role, org) in [("inspected-body", "essex"), ("viewer", "")] {
        let denied = client
            .pause_subscription(as_role(
                role,
                org,
                pb::PauseSubscriptionRequest {
                    subscription_id: kent.id.clone(),
                },
            ))
            .await
            .expect_err("not theirs");
        assert_eq!(denied.code(), Code::PermissionDenied, "{role}");
        let denied = client
            .delete_subscription(as_role(
                role,
                org,
                pb::DeleteSubscriptionRequest {
                    subscription_id: kent.id.clone(),
                },
            ))
            .await
            .expect_err("not theirs");
        assert_eq!(denied.code(), Code::PermissionDenied, "{role}");
    }
    let denied = client
        .create_subscription(as_role(
            "viewer",
            "",
            webhook(&url, &[Ev::StatusChanged], &[]),
        ))
        .await
        .expect_err("a viewer lists only");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = client
        .list_deliveries(as_role(
            "inspected-body",
            "essex",
            pb::ListDeliveriesRequest {
                subscription_id: kent.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("not theirs");
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Kent pauses, test-fires (refused while paused), resumes, test-fires.
    let paused = client
        .pause_subscription(as_role(
            "inspected-body",
            "kent",
            pb::PauseSubscriptionRequest {
                subscription_id: kent.id.clone(),
            },
        ))
        .await
        .expect("pause own")
        .into_inner()
        .subscription
        .expect("subscription");
    assert_eq!(paused.state, pb::SubscriptionState::Paused as i32);
    let refused = client
        .test_fire_subscription(as_role(
            "inspected-body",
            "kent",
            pb::TestFireSubscriptionRequest {
                subscription_id: kent.id.clone(),
            },
        ))
        .await
        .expect_err("paused");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    client
        .resume_subscription(as_role(
            "inspected-body",
            "kent",
            pb::ResumeSubscriptionRequest {
                subscription_id: kent.id.clone(),
            },
        ))
        .await
        .expect("resume own");
    let fired = client
        .test_fire_subscription(as_role(
            "inspected-body",
            "kent",
            pb::TestFireSubscriptionRequest {
                subscription_id: kent.id.clone(),
            },
        ))
        .await
        .expect("test fire")
        .into_inner()
        .delivery
        .expect("delivery");
    eventually("the test delivery", Duration::from_secs(30), || async {
        receiver.accepted().len() == 1
    })
    .await;
    let request = &receiver.accepted()[0];
    assert_eq!(
        request.header("Closeout-Event-Type"),
        "closeout.v1.SubscriptionTest"
    );
    assert_eq!(request.header("Closeout-Delivery-Id"), fired.id);

    // Deleting removes it for good.
    client
        .delete_subscription(as_role(
            "inspected-body",
            "kent",
            pb::DeleteSubscriptionRequest {
                subscription_id: kent.id.clone(),
            },
        ))
        .await
        .expect("delete own");
    let gone = client
        .pause_subscription(inspectorate(pb::PauseSubscriptionRequest {
            subscription_id: kent.id.clone(),
        }))
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);

    notify.stop().await.expect("notify stops");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subscriptions_are_refused_and_change_nothing() {
    let env = Env::new().await;
    let mut config = env.config(None);
    config.delivery.allow_loopback_http = false;
    let notify = closeout_notify::start(config, std::future::pending())
        .await
        .expect("notify starts");
    let mut client = client(notify.addr).await;

    let cases: Vec<(pb::CreateSubscriptionRequest, Code, &str)> = vec![
        (
            webhook("http://example.org/hook", &[Ev::StatusChanged], &[]),
            Code::InvalidArgument,
            "webhook_url",
        ),
        (
            webhook("http://127.0.0.1:9/hook", &[Ev::StatusChanged], &[]),
            Code::InvalidArgument,
            "webhook_url",
        ),
        (
            webhook(
                "https://169.254.169.254/latest/meta-data",
                &[Ev::StatusChanged],
                &[],
            ),
            Code::InvalidArgument,
            "not a public address",
        ),
        (
            webhook("https://localhost/hook", &[Ev::StatusChanged], &[]),
            Code::InvalidArgument,
            "webhook_url",
        ),
        (
            webhook("not a url", &[Ev::StatusChanged], &[]),
            Code::InvalidArgument,
            "webhook_url",
        ),
        (
            webhook("https://example.org/hook", &[], &[]),
            Code::InvalidArgument,
            "events",
        ),
        (
            webhook("https://example.org/hook", &[Ev::Unspecified], &[]),
            Code::InvalidArgument,
            "events",
        ),
        (
            webhook(
                "https://example.org/hook",
                &[Ev::StatusChanged],
                &["Not A Slug"],
            ),
            Code::InvalidArgument,
            "organisation_ids[0]",
        ),
        (
            pb::CreateSubscriptionRequest {
                subject_filter: "tracker.>.x".into(),
                ..webhook("https://example.org/hook", &[Ev::StatusChanged], &[])
            },
            Code::InvalidArgument,
            "subject_filter",
        ),
        (
            pb::CreateSubscriptionRequest {
                target: None,
                ..webhook("https://example.org/hook", &[Ev::StatusChanged], &[])
            },
            Code::InvalidArgument,
            "target",
        ),
        (
            email(
                "not an address",
                pb::EmailMode::PerEvent,
                &[Ev::StatusChanged],
                &[],
            ),
            Code::InvalidArgument,
            "email.address",
        ),
        // No SMTP server configured.
        (
            email(
                "owner@example.org",
                pb::EmailMode::PerEvent,
                &[Ev::StatusChanged],
                &[],
            ),
            Code::FailedPrecondition,
            "smtp",
        ),
    ];
    for (request, code, names) in cases {
        let status = client
            .create_subscription(inspectorate(request))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(
            status.message().contains(names),
            "{names}: {}",
            status.message()
        );
    }
    let unauthenticated = client
        .list_subscriptions(tonic::Request::new(pb::ListSubscriptionsRequest::default()))
        .await
        .expect_err("no identity");
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    let bad_id = client
        .pause_subscription(inspectorate(pb::PauseSubscriptionRequest {
            subscription_id: "nope".into(),
        }))
        .await
        .expect_err("not an id");
    assert_eq!(bad_id.code(), Code::InvalidArgument);
    let listed = client
        .list_subscriptions(inspectorate(pb::ListSubscriptionsRequest::default()))
        .await
        .expect("ListSubscriptions")
        .into_inner();
    assert!(listed.subscriptions.is_empty(), "nothing was created");

    notify.stop().await.expect("notify stops");
    env.cleanup().await;
}
