//! `closeout subscriptions …`: manage the notify service's subscriptions
//! (signed webhooks and e-mail about item changes) and look at their
//! deliveries: create, list, pause, resume, delete, test, deliveries,
//! dead-letters, redeliver.

use crate::commands::{Identity, every_page};
use crate::error::CliError;
use crate::output::{Table, enum_words, print_json, shorten, time_words};
use clap::{Args, Subcommand};
use closeout_proto as pb;
use closeout_proto::notify_service_client::NotifyServiceClient;
use tonic::transport::Channel;

/// Where the notify service is, who acts, and how to print.
#[derive(Args, Clone, Debug)]
pub struct NotifyServer {
    /// Notify service address (host:port: TLS when a CA is known).
    #[arg(long, env = "CLOSEOUT_NOTIFY_ADDR", default_value = "127.0.0.1:50054")]
    pub addr: String,
    /// Print canonical JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub identity: Identity,
}

impl NotifyServer {
    async fn client(&self) -> Result<NotifyServiceClient<Channel>, CliError> {
        Ok(NotifyServiceClient::new(
            self.identity.connect(&self.addr).await?,
        ))
    }
}

#[derive(Args)]
pub struct SubscriptionsArgs {
    #[command(subcommand)]
    command: SubscriptionCommand,
}

#[derive(Subcommand)]
enum SubscriptionCommand {
    /// Subscribe a webhook (--url) or an e-mail address (--email) to item
    /// events; prints the signing secret once.
    Create(CreateArgs),
    /// List subscriptions.
    List(ListArgs),
    /// Stop sending to a subscription (events meanwhile are not kept).
    Pause(IdArgs),
    /// Start sending to a paused subscription again.
    Resume(IdArgs),
    /// Delete a subscription and its delivery history.
    Delete(IdArgs),
    /// Send a test delivery.
    Test(IdArgs),
    /// Show a subscription's deliveries: attempts, status codes, latency.
    Deliveries(IdArgs),
    /// List deliveries that failed for good.
    DeadLetters(DeadLettersArgs),
    /// Queue a dead-lettered delivery again.
    Redeliver(RedeliverArgs),
}

#[derive(Args)]
struct CreateArgs {
    /// HTTPS URL to post signed JSON to.
    #[arg(long, conflicts_with = "email", required_unless_present = "email")]
    url: Option<String>,
    /// E-mail address to write to.
    #[arg(long)]
    email: Option<String>,
    /// With --email: one message a day instead of one per event.
    #[arg(long, requires = "email")]
    digest: bool,
    /// Events to send: status-changed, item-overdue,
    /// claim-awaiting-verification, proposal-made (repeat or separate with
    /// commas; default all).
    #[arg(long = "event", value_delimiter = ',')]
    events: Vec<String>,
    /// Organisations whose events are sent (repeatable; default all for the
    /// inspectorate, your own for an inspected body).
    #[arg(long = "org", value_delimiter = ',')]
    organisations: Vec<String>,
    /// Subject pattern relative to the prefix, e.g. "tracker.v1.item.*.kent".
    #[arg(long = "subject", default_value = "")]
    subject_filter: String,
    /// What the subscription is for.
    #[arg(long, default_value = "")]
    description: String,
    #[command(flatten)]
    server: NotifyServer,
}

#[derive(Args)]
struct ListArgs {
    /// Only subscriptions covering this organisation.
    #[arg(long, default_value = "")]
    org: String,
    #[command(flatten)]
    server: NotifyServer,
}

#[derive(Args)]
struct IdArgs {
    /// The subscription's id.
    id: String,
    #[command(flatten)]
    server: NotifyServer,
}

#[derive(Args)]
struct DeadLettersArgs {
    /// Only this subscription's.
    #[arg(long, default_value = "")]
    subscription: String,
    #[command(flatten)]
    server: NotifyServer,
}

#[derive(Args)]
struct RedeliverArgs {
    /// The dead-lettered delivery's id.
    id: String,
    #[command(flatten)]
    server: NotifyServer,
}

/// Runs one subscriptions subcommand.
pub async fn run(args: SubscriptionsArgs) -> Result<(), CliError> {
    match args.command {
        SubscriptionCommand::Create(args) => create(args).await,
        SubscriptionCommand::List(args) => list(args).await,
        SubscriptionCommand::Pause(args) => pause(args).await,
        SubscriptionCommand::Resume(args) => resume(args).await,
        SubscriptionCommand::Delete(args) => delete(args).await,
        SubscriptionCommand::Test(args) => test(args).await,
        SubscriptionCommand::Deliveries(args) => deliveries(args).await,
        SubscriptionCommand::DeadLetters(args) => dead_letters(args).await,
        SubscriptionCommand::Redeliver(args) => redeliver(args).await,
    }
}

/// A subscription event as written on the command line.
fn parse_event(text: &str) -> Result<pb::SubscriptionEvent, CliError> {
    match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "status-changed" | "status" => Ok(pb::SubscriptionEvent::StatusChanged),
        "item-overdue" | "overdue" => Ok(pb::SubscriptionEvent::ItemOverdue),
        "claim-awaiting-verification" | "claim" | "claims" => {
            Ok(pb::SubscriptionEvent::ClaimAwaitingVerification)
        }
        "proposal-made" | "proposal" | "proposals" => Ok(pb::SubscriptionEvent::ProposalMade),
        other => Err(CliError::Usage(format!(
            "--event {other:?}: use status-changed, item-overdue, claim-awaiting-verification or proposal-made"
        ))),
    }
}

fn event_words(event: i32) -> String {
    pb::SubscriptionEvent::try_from(event)
        .map(|e| enum_words(e.as_str_name(), "SUBSCRIPTION_EVENT_").replace(' ', "-"))
        .unwrap_or_else(|_| format!("unknown {event}"))
}

fn target_words(subscription: &pb::Subscription) -> String {
    match &subscription.target {
        Some(pb::subscription::Target::WebhookUrl(url)) => url.clone(),
        Some(pb::subscription::Target::Email(email)) => {
            if email.mode == pb::EmailMode::DailyDigest as i32 {
                format!("{} (daily digest)", email.address)
            } else {
                email.address.clone()
            }
        }
        None => String::new(),
    }
}

fn state_words(state: i32) -> String {
    pb::SubscriptionState::try_from(state)
        .map(|s| enum_words(s.as_str_name(), "SUBSCRIPTION_STATE_"))
        .unwrap_or_else(|_| format!("unknown {state}"))
}

fn delivery_status_words(status: i32) -> String {
    pb::DeliveryStatus::try_from(status)
        .map(|s| enum_words(s.as_str_name(), "DELIVERY_STATUS_"))
        .unwrap_or_else(|_| format!("unknown {status}"))
}

fn print_subscriptions(subscriptions: &[pb::Subscription]) {
    let mut table = Table::new(&["ID", "STATE", "EVENTS", "ORGANISATIONS", "TARGET", "OWNER"]);
    for s in subscriptions {
        let events: Vec<String> = s.events.iter().map(|e| event_words(*e)).collect();
        let organisations = if s.organisation_ids.is_empty() {
            "all".to_string()
        } else {
            s.organisation_ids.join(",")
        };
        let owner = if s.owner_organisation_id.is_empty() {
            "inspectorate".to_string()
        } else {
            s.owner_organisation_id.clone()
        };
        table.row(vec![
            s.id.clone(),
            state_words(s.state),
            events.join(","),
            organisations,
            shorten(&target_words(s), 60),
            owner,
        ]);
    }
    print!("{}", table.render());
}

fn print_deliveries(deliveries: &[pb::Delivery]) {
    let mut table = Table::new(&[
        "ID", "STATUS", "EVENT", "ATTEMPTS", "CODE", "LATENCY", "CREATED", "SUMMARY",
    ]);
    for d in deliveries {
        let last = d.attempts.last();
        table.row(vec![
            d.id.clone(),
            delivery_status_words(d.status),
            d.event_type.trim_start_matches("closeout.v1.").to_string(),
            d.attempts.len().to_string(),
            last.map(|a| a.status_code.to_string()).unwrap_or_default(),
            last.map(|a| format!("{} ms", a.latency_ms))
                .unwrap_or_default(),
            time_words(d.created_at.as_ref().map(|t| t.seconds)),
            shorten(
                if d.last_error.is_empty() {
                    &d.summary
                } else {
                    &d.last_error
                },
                70,
            ),
        ]);
    }
    print!("{}", table.render());
}

async fn create(args: CreateArgs) -> Result<(), CliError> {
    let events = if args.events.is_empty() {
        vec![
            pb::SubscriptionEvent::StatusChanged,
            pb::SubscriptionEvent::ItemOverdue,
            pb::SubscriptionEvent::ClaimAwaitingVerification,
            pb::SubscriptionEvent::ProposalMade,
        ]
    } else {
        args.events
            .iter()
            .map(|e| parse_event(e))
            .collect::<Result<Vec<_>, _>>()?
    };
    let target = match (args.url, args.email) {
        (Some(url), _) => pb::create_subscription_request::Target::WebhookUrl(url),
        (None, Some(address)) => pb::create_subscription_request::Target::Email(pb::EmailTarget {
            address,
            mode: if args.digest {
                pb::EmailMode::DailyDigest
            } else {
                pb::EmailMode::PerEvent
            } as i32,
        }),
        (None, None) => return Err(CliError::Usage("give --url or --email".into())),
    };
    let request = pb::CreateSubscriptionRequest {
        events: events.into_iter().map(|e| e as i32).collect(),
        subject_filter: args.subject_filter,
        organisation_ids: args.organisations,
        target: Some(target),
        description: args.description,
    };
    let created = args
        .server
        .client()
        .await?
        .create_subscription(args.server.identity.request(request)?)
        .await?
        .into_inner();
    if args.server.json {
        return print_json("CreateSubscriptionResponse", &created);
    }
    if let Some(subscription) = &created.subscription {
        print_subscriptions(std::slice::from_ref(subscription));
    }
    println!();
    println!("secret: {}", created.secret);
    println!(
        "Keep it: it is shown only now. Verify each delivery's Closeout-Signature header \
         (t=<unix>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>)."
    );
    Ok(())
}

async fn list(args: ListArgs) -> Result<(), CliError> {
    let mut client = args.server.client().await?;
    let mut all = pb::ListSubscriptionsResponse::default();
    let mut token = String::new();
    loop {
        let page = client
            .list_subscriptions(args.server.identity.request(pb::ListSubscriptionsRequest {
                organisation_id: args.org.clone(),
                page_size: 500,
                page_token: token,
            })?)
            .await?
            .into_inner();
        all.subscriptions.extend(page.subscriptions);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    if args.server.json {
        return print_json("ListSubscriptionsResponse", &all);
    }
    print_subscriptions(&all.subscriptions);
    Ok(())
}

async fn pause(args: IdArgs) -> Result<(), CliError> {
    let response = args
        .server
        .client()
        .await?
        .pause_subscription(args.server.identity.request(pb::PauseSubscriptionRequest {
            subscription_id: args.id,
        })?)
        .await?
        .into_inner();
    if args.server.json {
        return print_json("PauseSubscriptionResponse", &response);
    }
    print_subscriptions(response.subscription.as_slice());
    Ok(())
}

async fn resume(args: IdArgs) -> Result<(), CliError> {
    let response = args
        .server
        .client()
        .await?
        .resume_subscription(
            args.server
                .identity
                .request(pb::ResumeSubscriptionRequest {
                    subscription_id: args.id,
                })?,
        )
        .await?
        .into_inner();
    if args.server.json {
        return print_json("ResumeSubscriptionResponse", &response);
    }
    print_subscriptions(response.subscription.as_slice());
    Ok(())
}

async fn delete(args: IdArgs) -> Result<(), CliError> {
    let response = args
        .server
        .client()
        .await?
        .delete_subscription(
            args.server
                .identity
                .request(pb::DeleteSubscriptionRequest {
                    subscription_id: args.id.clone(),
                })?,
        )
        .await?
        .into_inner();
    if args.server.json {
        return print_json("DeleteSubscriptionResponse", &response);
    }
    println!("deleted subscription {}", args.id);
    Ok(())
}

async fn test(args: IdArgs) -> Result<(), CliError> {
    let response =
        args.server
            .client()
            .await?
            .test_fire_subscription(args.server.identity.request(
                pb::TestFireSubscriptionRequest {
                    subscription_id: args.id,
                },
            )?)
            .await?
            .into_inner();
    if args.server.json {
        return print_json("TestFireSubscriptionResponse", &response);
    }
    print_deliveries(response.delivery.as_slice());
    Ok(())
}

async fn deliveries(args: IdArgs) -> Result<(), CliError> {
    let client = args.server.client().await?;
    let deliveries = every_page(|page_token| {
        let mut client = client.clone();
        let request = args.server.identity.request(pb::ListDeliveriesRequest {
            subscription_id: args.id.clone(),
            page_size: 100,
            page_token,
        });
        async move {
            let page = client.list_deliveries(request?).await?.into_inner();
            Ok((page.deliveries, page.next_page_token))
        }
    })
    .await?;
    let response = pb::ListDeliveriesResponse {
        deliveries,
        ..Default::default()
    };
    if args.server.json {
        return print_json("ListDeliveriesResponse", &response);
    }
    print_deliveries(&response.deliveries);
    Ok(())
}

async fn dead_letters(args: DeadLettersArgs) -> Result<(), CliError> {
    let client = args.server.client().await?;
    let deliveries = every_page(|page_token| {
        let mut client = client.clone();
        let request = args.server.identity.request(pb::ListDeadLettersRequest {
            subscription_id: args.subscription.clone(),
            page_size: 100,
            page_token,
        });
        async move {
            let page = client.list_dead_letters(request?).await?.into_inner();
            Ok((page.deliveries, page.next_page_token))
        }
    })
    .await?;
    let response = pb::ListDeadLettersResponse {
        deliveries,
        ..Default::default()
    };
    if args.server.json {
        return print_json("ListDeadLettersResponse", &response);
    }
    print_deliveries(&response.deliveries);
    Ok(())
}

async fn redeliver(args: RedeliverArgs) -> Result<(), CliError> {
    let response =
        args.server
            .client()
            .await?
            .redeliver_dead_letter(args.server.identity.request(
                pb::RedeliverDeadLetterRequest {
                    delivery_id: args.id,
                },
            )?)
            .await?
            .into_inner();
    if args.server.json {
        return print_json("RedeliverDeadLetterResponse", &response);
    }
    print_deliveries(response.delivery.as_slice());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arguments_are_consistent() {
        use clap::{Args, Command};
        SubscriptionsArgs::augment_args(Command::new("subscriptions")).debug_assert();
    }

    #[test]
    fn events_by_their_command_line_names() {
        assert_eq!(
            parse_event("claim-awaiting-verification").ok(),
            Some(pb::SubscriptionEvent::ClaimAwaitingVerification)
        );
        assert_eq!(
            parse_event("OVERDUE").ok(),
            Some(pb::SubscriptionEvent::ItemOverdue)
        );
        assert!(parse_event("everything").is_err());
        assert_eq!(
            event_words(pb::SubscriptionEvent::ProposalMade as i32),
            "proposal-made"
        );
    }
}
