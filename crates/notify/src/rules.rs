//! The notify service's rules, pure and away from I/O: which events a
//! subscription can ask for and which of them it gets, what a valid
//! subscription is, how a webhook body is signed, how long to wait before a
//! retry, which answers are retried, and the short human summary of an
//! event that webhooks, e-mails and the log sink share.

use closeout_proto::event_envelope::Payload;
use closeout_proto::{EventEnvelope, ItemStatus, ProposalOutcome, Role, SubscriptionEvent};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::IpAddr;
use std::time::Duration;

/// The kinds of subscription event `event` counts as (none for events a
/// subscription cannot ask for). A status change to AWAITING_VERIFICATION
/// is both a status change and a claim awaiting verification.
pub fn event_kinds(event: &EventEnvelope) -> Vec<SubscriptionEvent> {
    match &event.payload {
        Some(Payload::StatusChanged(change)) => {
            let mut kinds = vec![SubscriptionEvent::StatusChanged];
            if change.to_status == ItemStatus::AwaitingVerification as i32 {
                kinds.push(SubscriptionEvent::ClaimAwaitingVerification);
            }
            kinds
        }
        Some(Payload::ItemOverdue(_)) => vec![SubscriptionEvent::ItemOverdue],
        Some(Payload::ProposalMade(_)) => vec![SubscriptionEvent::ProposalMade],
        _ => Vec::new(),
    }
}

/// What a subscription selects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// `SubscriptionEvent` numbers.
    pub events: Vec<i32>,
    /// NATS-style pattern relative to the prefix; empty matches all.
    pub subject_filter: String,
    /// Empty: every organisation.
    pub organisation_ids: Vec<String>,
}

impl Selection {
    /// True if an event of `kinds`, about `organisation_id`, published to
    /// `subject` (relative to the prefix) is for this subscription.
    pub fn matches(
        &self,
        kinds: &[SubscriptionEvent],
        organisation_id: &str,
        subject: &str,
    ) -> bool {
        kinds.iter().any(|k| self.events.contains(&(*k as i32)))
            && (self.organisation_ids.is_empty()
                || self.organisation_ids.iter().any(|o| o == organisation_id))
            && (self.subject_filter.is_empty() || subject_matches(&self.subject_filter, subject))
    }
}

/// NATS subject matching: `*` is one token, a final `>` one or more.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut pattern = pattern.split('.');
    let mut subject = subject.split('.');
    loop {
        match (pattern.next(), subject.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(s)) if p == s => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Checks a subject filter: dot-separated tokens of `[A-Za-z0-9_-]`, `*`,
/// or a final `>`.
pub fn check_subject_filter(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Ok(());
    }
    let tokens: Vec<&str> = pattern.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        let ok = *token == "*"
            || (*token == ">" && i == tokens.len() - 1)
            || (!token.is_empty()
                && token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        if !ok {
            return Err(format!(
                "{pattern:?} is not a subject pattern (tokens of letters, digits, '-' or '_', \
                 '*' for one token, a final '>' for the rest), e.g. \"tracker.v1.item.*.hertfordshire\""
            ));
        }
    }
    Ok(())
}

/// Checks an organisation id: a slug of lower-case letters, digits and '-'.
pub fn check_organisation_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not an organisation id (a slug such as \"hertfordshire\")"
        ))
    }
}

/// Checks the event kinds asked for: at least one, each a known value.
pub fn check_events(events: &[i32]) -> Result<(), String> {
    if events.is_empty() {
        return Err("choose at least one event (status-changed, item-overdue, \
                    claim-awaiting-verification, proposal-made)"
            .into());
    }
    for e in events {
        match SubscriptionEvent::try_from(*e) {
            Ok(SubscriptionEvent::Unspecified) | Err(_) => {
                return Err(format!("{e} is not a subscription event"));
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// The organisations a new subscription covers, given the organisations
/// its creator may manage (`None`: all) and those it asked for: within a
/// limited scope an empty request means the whole scope (an inspected
/// body: its own organisation) and anything outside it is refused (`Err`
/// names the first such organisation); with no limit the request stands,
/// empty meaning every organisation.
pub fn scoped_organisations(
    allowed: Option<&[String]>,
    requested: &[String],
) -> Result<Vec<String>, String> {
    let mut list = match allowed {
        None => requested.to_vec(),
        Some(allowed) => {
            if let Some(other) = requested.iter().find(|o| !allowed.contains(o)) {
                return Err(other.clone());
            }
            if requested.is_empty() {
                allowed.to_vec()
            } else {
                requested.to_vec()
            }
        }
    };
    list.sort();
    list.dedup();
    Ok(list)
}

/// Which receiver addresses webhooks may reach. By default only public
/// addresses: a subscriber must not be able to make the service call
/// inside its own network (cloud metadata, admin ports): server-side
/// request forgery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Loopback receivers, also over plain http (development and tests).
    pub allow_loopback: bool,
    /// Private, link-local and other non-public receivers (a deployment
    /// whose receivers sit on an internal network).
    pub allow_private: bool,
}

impl AddressPolicy {
    /// True if a webhook may be sent to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if ip.is_loopback() {
            return self.allow_loopback;
        }
        is_public(ip) || (self.allow_private && !ip.is_unspecified() && !ip.is_multicast())
    }
}

/// True for addresses reachable on the public internet: not private,
/// shared (CGNAT), link-local, loopback, unspecified, multicast,
/// broadcast, documentation or unique-local.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Checks a webhook URL: `https://`, or `http://` to a loopback host when
/// the policy allows loopback (local development and tests); an address
/// written into the URL must be one the policy permits. No credentials in
/// the URL; the signature authenticates.
pub fn check_webhook_url(url: &str, policy: AddressPolicy) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    let host = parsed.host_str().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials; receivers verify the signature instead".into());
    }
    if let Some(ip) = ip_literal(host)
        && !policy.permits(ip)
    {
        return Err(format!(
            "{ip} is not a public address; webhooks go to public receivers only"
        ));
    }
    let loopback = is_loopback(host);
    match parsed.scheme() {
        "https" if loopback && !policy.allow_loopback => Err(
            "loopback receivers are allowed only in development (--allow-loopback-http)".into(),
        ),
        "https" => Ok(()),
        "http" if policy.allow_loopback && loopback => Ok(()),
        "http" if loopback => Err(
            "plain http is allowed only to loopback addresses in development (--allow-loopback-http)"
                .into(),
        ),
        "http" => Err("must be https (plain http only to a loopback address in development)".into()),
        other => Err(format!("scheme {other:?} is not https")),
    }
}

/// The address written in a URL's host, if it is one (`[::1]` included).
pub fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || ip_literal(host).is_some_and(|ip| ip.is_loopback())
}

type HmacSha256 = Hmac<Sha256>;

/// The `Closeout-Signature` header value for `body` sent at unix time `t`:
/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (the scheme Stripe
/// and GitHub use). A receiver recomputes it and rejects old timestamps.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        hex::encode(signed(secret, t, body).finalize().into_bytes())
    )
}

/// The MAC state after `"<t>.<body>"`. HMAC takes keys of any length, so
/// the keyed constructor cannot fail; the empty-key fallback only satisfies
/// the type.
fn signed(secret: &str, t: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Verifies a `Closeout-Signature` header as a receiver should: the MAC
/// matches (compared in constant time) and the timestamp is within
/// `tolerance_secs` of `now`.
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> bool {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => {
                if let Ok(bytes) = hex::decode(value) {
                    v1.push(bytes);
                }
            }
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > tolerance_secs {
        return false;
    }
    v1.iter()
        .any(|sig| signed(secret, t, body).verify_slice(sig).is_ok())
}

/// Retry policy of deliveries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts before a delivery is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry; doubles per failed attempt.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl RetryPolicy {
    /// The delay after the `failed`-th failed attempt (1-based): the
    /// exponential delay, capped, scaled by `jitter` in [0, 1] into its
    /// upper half ("equal jitter"), so retries of many deliveries spread out
    /// yet never come sooner than half the nominal delay.
    pub fn delay(&self, failed: u32, jitter: f64) -> Duration {
        let exponent = failed.saturating_sub(1).min(30);
        let nominal = self
            .base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max);
        let jitter = jitter.clamp(0.0, 1.0);
        nominal.mul_f64(0.5 + 0.5 * jitter)
    }

    /// True when the `failed`-th failed attempt was the last allowed.
    pub fn exhausted(&self, failed: u32) -> bool {
        failed >= self.max_attempts.max(1)
    }
}

/// What an attempt's answer means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted (2xx).
    Delivered,
    /// Might work later (5xx, 408, 429, a timeout, no connection): retry.
    Retry,
    /// Refused (other 4xx, or a redirect we do not follow): never retried;
    /// dead-lettered at once.
    Refused,
}

/// The verdict on an HTTP status code.
pub fn http_verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 => Verdict::Retry,
        500..=599 => Verdict::Retry,
        _ => Verdict::Refused,
    }
}

/// What notify knows of an item from the tracker's events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemFacts {
    pub text: String,
    pub status: i32,
}

/// An item status in words: "awaiting verification".
pub fn status_words(status: i32) -> String {
    ItemStatus::try_from(status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("ITEM_STATUS_")
                .to_ascii_lowercase()
                .replace('_', " ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn outcome_words(outcome: i32) -> String {
    ProposalOutcome::try_from(outcome)
        .map(|o| {
            o.as_str_name()
                .trim_start_matches("PROPOSAL_OUTCOME_")
                .to_ascii_lowercase()
                .replace('_', " ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// Who acted, in words: "inspector:jane (inspectorate)".
pub fn actor_words(event: &EventEnvelope) -> String {
    match &event.actor {
        Some(actor) if !actor.subject.is_empty() => {
            let role = Role::try_from(actor.role)
                .map(|r| closeout_service::auth::role_name(r).to_string())
                .unwrap_or_else(|_| "unknown role".into());
            format!("{} ({role})", actor.subject)
        }
        _ => "Closeout".into(),
    }
}

/// The item an event is about, if any.
pub fn item_id_of(event: &EventEnvelope) -> Option<&str> {
    match &event.payload {
        Some(Payload::StatusChanged(e)) => Some(&e.item_id),
        Some(Payload::ItemOverdue(e)) => Some(&e.item_id),
        Some(Payload::ProposalMade(e)) => Some(&e.item_id),
        Some(Payload::ItemOpened(e)) => Some(&e.item_id),
        _ => None,
    }
}

/// One line saying what happened, e.g. "hertfordshire: item 0190… moved
/// from in progress to awaiting verification (ClaimCompletion) by jo@herts
/// (inspected-body)".
pub fn summary(event: &EventEnvelope) -> String {
    let org = if event.organisation_id.is_empty() {
        "-"
    } else {
        &event.organisation_id
    };
    let who = actor_words(event);
    match &event.payload {
        Some(Payload::StatusChanged(c)) => {
            let mut line = format!(
                "{org}: item {} moved from {} to {}",
                c.item_id,
                status_words(c.from_status),
                status_words(c.to_status)
            );
            if !c.command.is_empty() {
                line.push_str(&format!(" ({})", c.command));
            }
            line.push_str(&format!(" by {who}"));
            if c.to_status == ItemStatus::AwaitingVerification as i32 {
                line.push_str("; the claim awaits verification");
            }
            line
        }
        Some(Payload::ItemOverdue(o)) => {
            let due = o
                .due_date
                .as_ref()
                .map(|d| format!(" (due {:04}-{:02}-{:02})", d.year, d.month, d.day))
                .unwrap_or_default();
            format!("{org}: item {} is overdue{due}", o.item_id)
        }
        Some(Payload::ProposalMade(p)) => format!(
            "{org}: a later inspection suggests item {} is {} (score {:.2}); proposal {} awaits a decision",
            p.item_id,
            outcome_words(p.outcome),
            p.score,
            p.proposal_id
        ),
        _ if event.event_type == TEST_EVENT_TYPE => {
            format!("test delivery requested by {who}")
        }
        _ => format!("{org}: {}", event.event_type),
    }
}

/// Event type of a test-fire delivery.
pub const TEST_EVENT_TYPE: &str = "closeout.v1.SubscriptionTest";

/// The web console's page of an item, when a console is configured.
pub fn console_link(console_url: Option<&str>, event: &EventEnvelope) -> Option<String> {
    let base = console_url?.trim_end_matches('/');
    if base.is_empty() {
        return None;
    }
    let item = item_id_of(event)?;
    Some(format!("{base}/items/{item}"))
}

/// The plain-text description of one event for an e-mail: the summary,
/// the item's text and status, who acted, when, and the console link.
pub fn email_text(
    event: &EventEnvelope,
    summary: &str,
    item: Option<&ItemFacts>,
    link: Option<&str>,
) -> String {
    let mut text = format!("{summary}\n");
    if let Some(item) = item {
        if !item.text.is_empty() {
            text.push_str(&format!("\nItem: {}\n", item.text));
        }
        text.push_str(&format!("Status: {}\n", status_words(item.status)));
    }
    text.push_str(&format!("Who acted: {}\n", actor_words(event)));
    if let Some(at) = &event.occurred_at
        && let Some(when) = chrono::DateTime::from_timestamp(at.seconds, 0)
    {
        text.push_str(&format!("When: {}\n", when.format("%Y-%m-%d %H:%M UTC")));
    }
    if let Some(link) = link {
        text.push_str(&format!("Open: {link}\n"));
    }
    text.push_str(&format!(
        "Event: {} ({})\n",
        event.event_type, event.event_id
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use closeout_proto::{Actor, ItemOverdue, StatusChanged};

    fn status_event(to: ItemStatus) -> EventEnvelope {
        EventEnvelope {
            event_id: "e1".into(),
            event_type: "closeout.v1.StatusChanged".into(),
            organisation_id: "hertfordshire".into(),
            actor: Some(Actor {
                subject: "jo@herts".into(),
                role: Role::InspectedBody as i32,
                organisation_id: "hertfordshire".into(),
            }),
            payload: Some(Payload::StatusChanged(StatusChanged {
                item_id: "i1".into(),
                from_status: ItemStatus::InProgress as i32,
                to_status: to as i32,
                command: "ClaimCompletion".into(),
                reason: String::new(),
            })),
            ..Default::default()
        }
    }

    #[test]
    fn a_claim_is_also_a_status_change() {
        assert_eq!(
            event_kinds(&status_event(ItemStatus::AwaitingVerification)),
            vec![
                SubscriptionEvent::StatusChanged,
                SubscriptionEvent::ClaimAwaitingVerification
            ]
        );
        assert_eq!(
            event_kinds(&status_event(ItemStatus::Closed)),
            vec![SubscriptionEvent::StatusChanged]
        );
        let overdue = EventEnvelope {
            payload: Some(Payload::ItemOverdue(ItemOverdue::default())),
            ..Default::default()
        };
        assert_eq!(event_kinds(&overdue), vec![SubscriptionEvent::ItemOverdue]);
        assert!(event_kinds(&EventEnvelope::default()).is_empty());
    }

    #[test]
    fn selections_filter_by_kind_organisation_and_subject() {
        let claims = Selection {
            events: vec![SubscriptionEvent::ClaimAwaitingVerification as i32],
            subject_filter: String::new(),
            organisation_ids: vec!["hertfordshire".into()],
        };
        let kinds = [
            SubscriptionEvent::StatusChanged,
            SubscriptionEvent::ClaimAwaitingVerification,
        ];
        let subject = "tracker.v1.item.status-changed.hertfordshire";
        assert!(claims.matches(&kinds, "hertfordshire", subject));
        assert!(!claims.matches(&kinds[..1], "hertfordshire", subject));
        assert!(!claims.matches(&kinds, "kent", "tracker.v1.item.status-changed.kent"));
        let everything = Selection {
            events: vec![SubscriptionEvent::StatusChanged as i32],
            subject_filter: "tracker.v1.item.*.kent".into(),
            organisation_ids: vec![],
        };
        assert!(everything.matches(&kinds, "kent", "tracker.v1.item.status-changed.kent"));
        assert!(!everything.matches(&kinds, "hertfordshire", subject));
    }

    #[test]
    fn subject_patterns() {
        assert!(subject_matches("tracker.>", "tracker.v1.item.overdue.kent"));
        assert!(!subject_matches("tracker.>", "tracker"));
        assert!(subject_matches(
            "tracker.v1.*.*.kent",
            "tracker.v1.item.overdue.kent"
        ));
        assert!(!subject_matches(
            "tracker.v1.*.kent",
            "tracker.v1.item.overdue.kent"
        ));
        assert!(check_subject_filter("tracker.v1.item.*.kent").is_ok());
        assert!(check_subject_filter("tracker.>").is_ok());
        assert!(check_subject_filter("tracker.>.x").is_err());
        assert!(check_subject_filter("tracker..x").is_err());
        assert!(check_subject_filter("a b").is_err());
    }

    #[test]
    fn inspected_bodies_subscribe_to_their_own_organisation_only() {
        let kent = ["kent".to_string()];
        assert_eq!(
            scoped_organisations(Some(&kent), &[]),
            Ok(vec!["kent".to_string()])
        );
        assert_eq!(
            scoped_organisations(Some(&kent), &["essex".into()]),
            Err("essex".to_string())
        );
        assert_eq!(
            scoped_organisations(Some(&kent), &["kent".into(), "essex".into()]),
            Err("essex".to_string())
        );
        assert_eq!(
            scoped_organisations(None, &["kent".into(), "kent".into()]),
            Ok(vec!["kent".to_string()])
        );
        assert_eq!(scoped_organisations(None, &[]), Ok(vec![]));
    }

    #[test]
    fn webhook_urls() {
        let public = AddressPolicy::default();
        let dev = AddressPolicy {
            allow_loopback: true,
            allow_private: false,
        };
        assert!(check_webhook_url("https://example.org/hook", public).is_ok());
        assert!(check_webhook_url("http://example.org/hook", dev).is_err());
        assert!(check_webhook_url("http://127.0.0.1:8080/hook", dev).is_ok());
        assert!(check_webhook_url("http://[::1]:8080/hook", dev).is_ok());
        assert!(check_webhook_url("http://localhost/hook", public).is_err());
        assert!(check_webhook_url("https://localhost/hook", public).is_err());
        assert!(check_webhook_url("https://127.0.0.1/hook", public).is_err());
        assert!(check_webhook_url("https://u:p@example.org/", public).is_err());
        assert!(check_webhook_url("ftp://example.org/", public).is_err());
        assert!(check_webhook_url("not a url", public).is_err());
    }

    #[test]
    fn only_public_receivers_unless_allowed() {
        let public = AddressPolicy::default();
        for address in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "127.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
        ] {
            let ip: IpAddr = address.parse().unwrap();
            assert!(!public.permits(ip), "{address}");
        }
        for address in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(public.permits(address.parse().unwrap()), "{address}");
        }
        let internal = AddressPolicy {
            allow_loopback: false,
            allow_private: true,
        };
        assert!(internal.permits("10.1.2.3".parse().unwrap()));
        assert!(!internal.permits("127.0.0.1".parse().unwrap()));
        assert!(!internal.permits("0.0.0.0".parse().unwrap()));
        assert!(
            check_webhook_url("https://169.254.169.254/latest/meta-data", public)
                .is_err_and(|e| e.contains("not a public address"))
        );
        assert!(check_webhook_url("https://10.0.0.8/hook", internal).is_ok());
    }

    #[test]
    fn signatures_verify_and_expire() {
        let body = br#"{"a":1}"#;
        let header = signature("whsec_x", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert!(verify_signature(
            "whsec_x",
            &header,
            body,
            1_700_000_010,
            300
        ));
        assert!(!verify_signature(
            "whsec_y",
            &header,
            body,
            1_700_000_010,
            300
        ));
        assert!(!verify_signature(
            "whsec_x",
            &header,
            b"{}",
            1_700_000_010,
            300
        ));
        assert!(!verify_signature(
            "whsec_x",
            &header,
            body,
            1_700_001_000,
            300
        ));
        assert!(!verify_signature(
            "whsec_x",
            "garbage",
            body,
            1_700_000_000,
            300
        ));
        // Known answer: HMAC-SHA256("key", "1.x").
        let mut mac = HmacSha256::new_from_slice(b"key").unwrap();
        mac.update(b"1.x");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(signature("key", 1, b"x"), format!("t=1,v1={expected}"));
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        assert_eq!(policy.delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(policy.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(policy.delay(3, 1.0), Duration::from_secs(4));
        assert_eq!(policy.delay(10, 1.0), Duration::from_secs(10));
        assert_eq!(policy.delay(u32::MAX, 1.0), Duration::from_secs(10));
        assert!(!policy.exhausted(4));
        assert!(policy.exhausted(5));
    }

    #[test]
    fn answers_are_retried_only_when_they_might_change() {
        assert_eq!(http_verdict(200), Verdict::Delivered);
        assert_eq!(http_verdict(204), Verdict::Delivered);
        assert_eq!(http_verdict(500), Verdict::Retry);
        assert_eq!(http_verdict(503), Verdict::Retry);
        assert_eq!(http_verdict(429), Verdict::Retry);
        assert_eq!(http_verdict(400), Verdict::Refused);
        assert_eq!(http_verdict(404), Verdict::Refused);
        assert_eq!(http_verdict(301), Verdict::Refused);
    }

    #[test]
    fn summaries_and_mail_text_say_who_did_what() {
        let event = status_event(ItemStatus::AwaitingVerification);
        let line = summary(&event);
        assert!(
            line.contains("from in progress to awaiting verification"),
            "{line}"
        );
        assert!(line.contains("jo@herts (inspected-body)"), "{line}");
        let item = ItemFacts {
            text: "The force should improve call handling.".into(),
            status: ItemStatus::AwaitingVerification as i32,
        };
        let link = console_link(Some("https://console.example/"), &event);
        assert_eq!(link.as_deref(), Some("https://console.example/items/i1"));
        let text = email_text(&event, &line, Some(&item), link.as_deref());
        assert!(text.contains("Item: The force should improve call handling."));
        assert!(text.contains("Status: awaiting verification"));
        assert!(text.contains("Open: https://console.example/items/i1"));
        assert_eq!(console_link(None, &event), None);
    }
}
