//! `NotifyService` over gRPC: checks the caller and the request, then
//! calls the store. Who may manage subscriptions is the domain's rules
//! table (`Action::ManageSubscriptions`): the inspectorate every
//! subscription; an inspected body only those it owns, which cover only
//! its own organisation. A viewer lists only. Bad input is refused before
//! anything is written.

use crate::email;
use crate::rules::{self, TEST_EVENT_TYPE};
use crate::store::{self, NewDelivery, SubscriptionRow};
use chrono::Utc;
use closeout_bus::Payload;
use closeout_domain::authorisation::{Action, Scope};
use closeout_proto::notify_service_server::NotifyService;
use closeout_proto::{self as pb, Actor, EmailMode, EventEnvelope, Role};
use closeout_service::ApiError;
use closeout_service::error::Violations;
use closeout_service::paging::Page;
use prost::Message;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// Appends the event of a change to the outbox, in the transaction `tx`
/// of that change. Its subject ends with the subscription's owner
/// organisation (`none` for the inspectorate's own). Secrets, URLs and
/// addresses never go in the payload.
async fn emit(
    tx: &mut PgConnection,
    actor: &Actor,
    subscription: &SubscriptionRow,
    aggregate: (&str, &str),
    payload: Payload,
) -> Result<(), ApiError> {
    let correlation = Uuid::now_v7().to_string();
    let envelope = closeout_bus::event::new_event(
        closeout_bus::event::EventMeta {
            source_service: "notify",
            organisation_id: &subscription.owner_organisation_id,
            aggregate_type: aggregate.0,
            aggregate_id: aggregate.1,
            // Subscriptions are not versioned aggregates.
            aggregate_version: 0,
            actor,
            correlation_id: &correlation,
            causation_id: "",
        },
        payload,
    );
    closeout_bus::outbox::append(tx, std::slice::from_ref(&envelope))
        .await
        .map_err(|e| ApiError::Internal(format!("outbox: {e}")))
}

/// Longest description of a subscription.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// The gRPC API of the notify service.
#[derive(Clone, Debug)]
pub struct NotifyApi {
    pool: PgPool,
    /// Which webhook receivers are accepted.
    addresses: rules::AddressPolicy,
    /// An SMTP server is configured.
    email_enabled: bool,
}

impl NotifyApi {
    pub fn new(pool: PgPool, addresses: rules::AddressPolicy, email_enabled: bool) -> Self {
        NotifyApi {
            pool,
            addresses,
            email_enabled,
        }
    }
}

fn role_of(actor: &Actor) -> Role {
    Role::try_from(actor.role).unwrap_or(Role::Unspecified)
}

/// The owner an inspected body is confined to; `None` for everyone else.
fn owner_scope(actor: &Actor) -> Option<&str> {
    (role_of(actor) == Role::InspectedBody).then_some(actor.organisation_id.as_str())
}

fn may_view(actor: &Actor, subscription: &SubscriptionRow) -> Result<(), ApiError> {
    match owner_scope(actor) {
        Some(own) if subscription.owner_organisation_id != own => {
            Err(ApiError::PermissionDenied(format!(
                "subscription {} belongs to {}; an inspected body sees only its own organisation's ({own})",
                subscription.id,
                owner_words(subscription)
            )))
        }
        _ => Ok(()),
    }
}

/// A caller the rules table lets manage subscriptions, and the
/// organisations it may manage them for.
struct Manager {
    actor: Actor,
    scope: Scope,
}

impl Manager {
    /// The organisations of a limited scope, as text.
    fn organisations(&self) -> Option<Vec<String>> {
        match &self.scope {
            Scope::All => None,
            Scope::Only(list) => Some(list.iter().map(|o| o.as_str().to_string()).collect()),
        }
    }
}

/// The caller of `request`, if the rules table lets it manage
/// subscriptions (a viewer may not: it lists only).
fn manager<T>(request: &Request<T>) -> Result<Manager, Status> {
    let actor = who(request)?;
    let scope = closeout_service::auth::authorise(request, Action::ManageSubscriptions)?;
    Ok(Manager { actor, scope })
}

fn may_manage(manager: &Manager, subscription: &SubscriptionRow) -> Result<(), ApiError> {
    match manager.organisations() {
        Some(own) if !own.contains(&subscription.owner_organisation_id) => {
            Err(ApiError::PermissionDenied(format!(
                "subscription {} belongs to {}; you manage only {}'s",
                subscription.id,
                owner_words(subscription),
                own.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

fn owner_words(subscription: &SubscriptionRow) -> String {
    if subscription.owner_organisation_id.is_empty() {
        "the inspectorate".into()
    } else {
        subscription.owner_organisation_id.clone()
    }
}

fn parse_id(field: &str, text: &str) -> Result<Uuid, ApiError> {
    if text.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    Uuid::parse_str(text).map_err(|_| ApiError::invalid(field, format!("{text:?} is not an id")))
}

impl NotifyApi {
    async fn subscription(&self, field: &str, id: &str) -> Result<SubscriptionRow, ApiError> {
        let id = parse_id(field, id)?;
        store::get_subscription(&self.pool, id)
            .await?
            .ok_or_else(|| ApiError::not_found("subscription", id.to_string()))
    }

    async fn with_attempts(
        &self,
        rows: Vec<store::DeliveryRow>,
    ) -> Result<Vec<pb::Delivery>, ApiError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let attempts = store::attempts_of(&self.pool, &ids).await?;
        Ok(rows.iter().map(|r| r.to_proto(&attempts)).collect())
    }

    async fn delivery(&self, id: Uuid) -> Result<pb::Delivery, ApiError> {
        let row = store::get_delivery(&self.pool, id)
            .await?
            .ok_or_else(|| ApiError::not_found("delivery", id.to_string()))?;
        Ok(self
            .with_attempts(vec![row])
            .await?
            .pop()
            .unwrap_or_default())
    }

    async fn create(
        &self,
        manager: &Manager,
        request: pb::CreateSubscriptionRequest,
    ) -> Result<pb::CreateSubscriptionResponse, ApiError> {
        let actor = &manager.actor;
        let mut violations = Violations::default();
        if let Err(e) = rules::check_events(&request.events) {
            violations.add("events", e);
        }
        if let Err(e) = rules::check_subject_filter(&request.subject_filter) {
            violations.add("subject_filter", e);
        }
        for (i, org) in request.organisation_ids.iter().enumerate() {
            if let Err(e) = rules::check_organisation_id(org) {
                violations.add(format!("organisation_ids[{i}]"), e);
            }
        }
        if request.description.chars().count() > MAX_DESCRIPTION_CHARS {
            violations.add(
                "description",
                format!("longer than {MAX_DESCRIPTION_CHARS} characters"),
            );
        }
        let (webhook_url, email_address, email_mode) = match &request.target {
            None => {
                violations.add("target", "give a webhook_url or an email target");
                (None, None, EmailMode::Unspecified)
            }
            Some(pb::create_subscription_request::Target::WebhookUrl(url)) => {
                if let Err(e) = rules::check_webhook_url(url, self.addresses) {
                    violations.add("webhook_url", e);
                }
                (Some(url.clone()), None, EmailMode::Unspecified)
            }
            Some(pb::create_subscription_request::Target::Email(target)) => {
                if let Err(e) = email::check_address(&target.address) {
                    violations.add("email.address", e);
                }
                let mode = match EmailMode::try_from(target.mode) {
                    Ok(EmailMode::Unspecified) => EmailMode::PerEvent,
                    Ok(mode) => mode,
                    Err(_) => {
                        violations.add(
                            "email.mode",
                            format!("{} is not an e-mail mode", target.mode),
                        );
                        EmailMode::Unspecified
                    }
                };
                (None, Some(target.address.clone()), mode)
            }
        };
        violations.into_result()?;
        if email_address.is_some() && !self.email_enabled {
            return Err(ApiError::FailedPrecondition(
                "e-mail is not configured on this notify service (--smtp-host)".into(),
            ));
        }
        let allowed = manager.organisations();
        let organisation_ids =
            rules::scoped_organisations(allowed.as_deref(), &request.organisation_ids).map_err(
                |other| {
                    ApiError::PermissionDenied(format!(
                        "you may subscribe only to {}'s events, not {other}'s",
                        allowed.unwrap_or_default().join(", ")
                    ))
                },
            )?;
        let mut events = request.events.clone();
        events.sort_unstable();
        events.dedup();
        let row = SubscriptionRow {
            id: Uuid::now_v7(),
            events,
            subject_filter: request.subject_filter.clone(),
            organisation_ids,
            webhook_url,
            email_address,
            email_mode: email_mode as i32,
            state: pb::SubscriptionState::Active as i32,
            owner_organisation_id: manager
                .organisations()
                .and_then(|own| own.into_iter().next())
                .unwrap_or_default(),
            created_by: actor.subject.clone(),
            description: request.description.clone(),
            created_at: Utc::now(),
        };
        let secret = format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()));
        let target_kind = if row.email_address.is_some() {
            "email"
        } else {
            "webhook"
        };
        let mut tx = self.pool.begin().await?;
        store::insert_subscription(&mut tx, &row, &secret).await?;
        let id = row.id.to_string();
        emit(
            &mut tx,
            actor,
            &row,
            ("subscription", &id),
            Payload::SubscriptionCreated(pb::SubscriptionCreated {
                subscription_id: id.clone(),
                organisation_ids: row.organisation_ids.clone(),
                events: row.events.clone(),
                target_kind: target_kind.into(),
            }),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(subscription = %row.id, by = %actor.subject, "subscription created");
        Ok(pb::CreateSubscriptionResponse {
            subscription: Some(row.to_proto()),
            secret,
        })
    }

    async fn set_state(
        &self,
        manager: &Manager,
        id: &str,
        state: pb::SubscriptionState,
    ) -> Result<pb::Subscription, ApiError> {
        let subscription = self.subscription("subscription_id", id).await?;
        may_manage(manager, &subscription)?;
        let mut tx = self.pool.begin().await?;
        let row = store::set_state(&mut tx, subscription.id, state)
            .await?
            .ok_or_else(|| ApiError::not_found("subscription", id))?;
        // Only a change is an event: pausing a paused subscription is not.
        if row.state != subscription.state {
            let subscription_id = row.id.to_string();
            let payload = if state == pb::SubscriptionState::Paused {
                Payload::SubscriptionPaused(pb::SubscriptionPaused {
                    subscription_id: subscription_id.clone(),
                })
            } else {
                Payload::SubscriptionResumed(pb::SubscriptionResumed {
                    subscription_id: subscription_id.clone(),
                })
            };
            emit(
                &mut tx,
                &manager.actor,
                &row,
                ("subscription", &subscription_id),
                payload,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(row.to_proto())
    }

    async fn test_fire(&self, manager: &Manager, id: &str) -> Result<pb::Delivery, ApiError> {
        let actor = &manager.actor;
        let subscription = self.subscription("subscription_id", id).await?;
        may_manage(manager, &subscription)?;
        if subscription.state != pb::SubscriptionState::Active as i32 {
            return Err(ApiError::FailedPrecondition(format!(
                "subscription {} is paused; resume it first",
                subscription.id
            )));
        }
        let event_id = Uuid::now_v7();
        let organisation_id = subscription
            .organisation_ids
            .first()
            .cloned()
            .unwrap_or_else(|| subscription.owner_organisation_id.clone());
        let event = EventEnvelope {
            event_id: event_id.to_string(),
            event_type: TEST_EVENT_TYPE.into(),
            source_service: "notify".into(),
            organisation_id: organisation_id.clone(),
            occurred_at: Some(store::timestamp(Utc::now())),
            aggregate_type: "subscription".into(),
            aggregate_id: subscription.id.to_string(),
            aggregate_version: 0,
            correlation_id: event_id.to_string(),
            causation_id: String::new(),
            actor: Some(actor.clone()),
            payload: None,
        };
        let summary = rules::summary(&event);
        let delivery_id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        store::insert_delivery(
            &mut tx,
            &NewDelivery {
                id: delivery_id,
                subscription_id: subscription.id,
                event_id,
                event_type: TEST_EVENT_TYPE,
                organisation_id: &organisation_id,
                envelope: &event.encode_to_vec(),
                summary: &summary,
                status: pb::DeliveryStatus::Pending,
            },
        )
        .await?;
        tx.commit().await?;
        self.delivery(delivery_id).await
    }

    async fn redeliver(&self, manager: &Manager, id: &str) -> Result<pb::Delivery, ApiError> {
        let actor = &manager.actor;
        let id = parse_id("delivery_id", id)?;
        let delivery = store::get_delivery(&self.pool, id)
            .await?
            .ok_or_else(|| ApiError::not_found("delivery", id.to_string()))?;
        let subscription = store::get_subscription(&self.pool, delivery.subscription_id)
            .await?
            .ok_or_else(|| ApiError::not_found("delivery", id.to_string()))?;
        may_manage(manager, &subscription)?;
        if delivery.status != pb::DeliveryStatus::Dead as i32 {
            let status = pb::DeliveryStatus::try_from(delivery.status)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("DELIVERY_STATUS_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_else(|_| "unknown".into());
            return Err(ApiError::FailedPrecondition(format!(
                "delivery {id} is {status}, not dead-lettered"
            )));
        }
        let mut tx = self.pool.begin().await?;
        let redelivered = store::redeliver(&mut tx, id).await?.ok_or_else(|| {
            ApiError::FailedPrecondition(format!("delivery {id} is no longer dead-lettered"))
        })?;
        let delivery_id = id.to_string();
        emit(
            &mut tx,
            actor,
            &subscription,
            ("delivery", &delivery_id),
            Payload::DeliveryRedelivered(pb::DeliveryRedelivered {
                delivery_id: delivery_id.clone(),
                subscription_id: subscription.id.to_string(),
                event_id: redelivered.event_id.to_string(),
            }),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(delivery = %id, by = %actor.subject, "dead letter queued again");
        self.delivery(id).await
    }
}

fn who<T>(request: &Request<T>) -> Result<Actor, Status> {
    closeout_service::caller(request).map_err(Status::from)
}

#[tonic::async_trait]
impl NotifyService for NotifyApi {
    async fn create_subscription(
        &self,
        request: Request<pb::CreateSubscriptionRequest>,
    ) -> Result<Response<pb::CreateSubscriptionResponse>, Status> {
        let manager = manager(&request)?;
        Ok(Response::new(
            self.create(&manager, request.into_inner()).await?,
        ))
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        let actor = who(&request)?;
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let organisation =
            (!request.organisation_id.is_empty()).then_some(request.organisation_id.as_str());
        if let Some(org) = organisation {
            rules::check_organisation_id(org)
                .map_err(|e| ApiError::invalid("organisation_id", e))?;
        }
        let mut rows = store::list_subscriptions(
            &self.pool,
            owner_scope(&actor),
            organisation,
            page.fetch(),
            page.offset,
        )
        .await
        .map_err(ApiError::from)?;
        let next_page_token = page.finish(&mut rows);
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: rows.iter().map(SubscriptionRow::to_proto).collect(),
            next_page_token,
        }))
    }

    async fn pause_subscription(
        &self,
        request: Request<pb::PauseSubscriptionRequest>,
    ) -> Result<Response<pb::PauseSubscriptionResponse>, Status> {
        let manager = manager(&request)?;
        let subscription = self
            .set_state(
                &manager,
                &request.get_ref().subscription_id,
                pb::SubscriptionState::Paused,
            )
            .await?;
        Ok(Response::new(pb::PauseSubscriptionResponse {
            subscription: Some(subscription),
        }))
    }

    async fn resume_subscription(
        &self,
        request: Request<pb::ResumeSubscriptionRequest>,
    ) -> Result<Response<pb::ResumeSubscriptionResponse>, Status> {
        let manager = manager(&request)?;
        let subscription = self
            .set_state(
                &manager,
                &request.get_ref().subscription_id,
                pb::SubscriptionState::Active,
            )
            .await?;
        Ok(Response::new(pb::ResumeSubscriptionResponse {
            subscription: Some(subscription),
        }))
    }

    async fn delete_subscription(
        &self,
        request: Request<pb::DeleteSubscriptionRequest>,
    ) -> Result<Response<pb::DeleteSubscriptionResponse>, Status> {
        let manager = manager(&request)?;
        let actor = &manager.actor;
        let subscription = self
            .subscription("subscription_id", &request.get_ref().subscription_id)
            .await?;
        may_manage(&manager, &subscription)?;
        let mut tx = self.pool.begin().await.map_err(ApiError::from)?;
        if !store::delete_subscription(&mut tx, subscription.id)
            .await
            .map_err(ApiError::from)?
        {
            return Err(ApiError::not_found("subscription", subscription.id.to_string()).into());
        }
        let subscription_id = subscription.id.to_string();
        emit(
            &mut tx,
            actor,
            &subscription,
            ("subscription", &subscription_id),
            Payload::SubscriptionDeleted(pb::SubscriptionDeleted {
                subscription_id: subscription_id.clone(),
            }),
        )
        .await?;
        tx.commit().await.map_err(ApiError::from)?;
        tracing::info!(subscription = %subscription.id, by = %actor.subject, "subscription deleted");
        Ok(Response::new(pb::DeleteSubscriptionResponse {}))
    }

    async fn test_fire_subscription(
        &self,
        request: Request<pb::TestFireSubscriptionRequest>,
    ) -> Result<Response<pb::TestFireSubscriptionResponse>, Status> {
        let manager = manager(&request)?;
        let delivery = self
            .test_fire(&manager, &request.get_ref().subscription_id)
            .await?;
        Ok(Response::new(pb::TestFireSubscriptionResponse {
            delivery: Some(delivery),
        }))
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let actor = who(&request)?;
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let subscription = self
            .subscription("subscription_id", &request.subscription_id)
            .await?;
        may_view(&actor, &subscription)?;
        let mut rows =
            store::list_deliveries(&self.pool, subscription.id, page.fetch(), page.offset)
                .await
                .map_err(ApiError::from)?;
        let next_page_token = page.finish(&mut rows);
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries: self.with_attempts(rows).await?,
            next_page_token,
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let actor = who(&request)?;
        let request = request.into_inner();
        let page = Page::parse(request.page_size, &request.page_token)?;
        let subscription_id = if request.subscription_id.is_empty() {
            None
        } else {
            let subscription = self
                .subscription("subscription_id", &request.subscription_id)
                .await?;
            may_view(&actor, &subscription)?;
            Some(subscription.id)
        };
        let mut rows = store::list_dead_letters(
            &self.pool,
            subscription_id,
            owner_scope(&actor),
            page.fetch(),
            page.offset,
        )
        .await
        .map_err(ApiError::from)?;
        let next_page_token = page.finish(&mut rows);
        Ok(Response::new(pb::ListDeadLettersResponse {
            deliveries: self.with_attempts(rows).await?,
            next_page_token,
        }))
    }

    async fn redeliver_dead_letter(
        &self,
        request: Request<pb::RedeliverDeadLetterRequest>,
    ) -> Result<Response<pb::RedeliverDeadLetterResponse>, Status> {
        let manager = manager(&request)?;
        let delivery = self
            .redeliver(&manager, &request.get_ref().delivery_id)
            .await?;
        Ok(Response::new(pb::RedeliverDeadLetterResponse {
            delivery: Some(delivery),
        }))
    }
}
