//! E-mail through SMTP (lettre, rustls): the server, TLS mode and
//! credentials from configuration; one message per event, or one daily
//! digest per recipient listing the day's events.

use clap::{Args, ValueEnum};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SmtpTls {
    /// Plain text (a local relay or a test server only).
    None,
    /// Upgrade with STARTTLS (usually port 587).
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// SMTP options; e-mail subscriptions are refused while `--smtp-host` is
/// not set.
#[derive(Clone, Debug, Args)]
pub struct SmtpOptions {
    /// SMTP server host name.
    #[arg(long, env = "CLOSEOUT_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP server port.
    #[arg(long, env = "CLOSEOUT_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    /// Connection security: none, starttls or tls.
    #[arg(long, env = "CLOSEOUT_SMTP_TLS", value_enum, default_value_t = SmtpTls::Starttls)]
    pub smtp_tls: SmtpTls,
    /// SMTP user name (with --smtp-password).
    #[arg(long, env = "CLOSEOUT_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password.
    #[arg(long, env = "CLOSEOUT_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Sender of every message.
    #[arg(
        long,
        env = "CLOSEOUT_SMTP_FROM",
        default_value = "Closeout <closeout@localhost>"
    )]
    pub smtp_from: String,
}

/// What sending a message came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailOutcome {
    /// The SMTP reply code (0 if there was none).
    pub code: i32,
    /// Empty when accepted.
    pub error: String,
    /// The server refused for good (5xx): do not retry.
    pub permanent: bool,
}

/// A configured SMTP sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The sender of `options`, `Ok(None)` when no SMTP host is set, `Err`
    /// naming the option that is wrong.
    pub fn from_options(
        options: &SmtpOptions,
        timeout: Duration,
    ) -> Result<Option<Mailer>, String> {
        let Some(host) = options.smtp_host.as_deref().filter(|h| !h.is_empty()) else {
            return Ok(None);
        };
        let from: Mailbox = options
            .smtp_from
            .parse()
            .map_err(|e| format!("--smtp-from {:?}: {e}", options.smtp_from))?;
        let builder = match options.smtp_tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| format!("--smtp-host {host:?}: {e}"))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| format!("--smtp-host {host:?}: {e}"))?,
        };
        let mut builder = builder.port(options.smtp_port).timeout(Some(timeout));
        match (&options.smtp_username, &options.smtp_password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => return Err("--smtp-username and --smtp-password go together".into()),
        }
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
        }))
    }

    /// Sends a plain-text message; `message_id` (e.g. the delivery id)
    /// lets the recipient's tools recognise a message sent twice.
    pub async fn send(
        &self,
        to: &str,
        subject: &str,
        body: String,
        message_id: &str,
    ) -> MailOutcome {
        let to: Mailbox = match to.parse() {
            Ok(to) => to,
            Err(e) => {
                return MailOutcome {
                    code: 0,
                    error: format!("recipient {to:?}: {e}"),
                    permanent: true,
                };
            }
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{message_id}@closeout>")))
            .header(ContentType::TEXT_PLAIN)
            .body(body);
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                return MailOutcome {
                    code: 0,
                    error: format!("building the message: {e}"),
                    permanent: true,
                };
            }
        };
        match self.transport.send(message).await {
            Ok(response) => MailOutcome {
                code: response.code().to_string().parse().unwrap_or(250),
                error: String::new(),
                permanent: false,
            },
            Err(e) => MailOutcome {
                code: e
                    .status()
                    .and_then(|c| c.to_string().parse().ok())
                    .unwrap_or(0),
                error: format!("SMTP: {e}"),
                permanent: e.is_permanent(),
            },
        }
    }
}

/// Checks an e-mail address as a subscription target.
pub fn check_address(address: &str) -> Result<(), String> {
    address
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| format!("{address:?} is not an e-mail address ({e})"))
}

/// A subject line: "[Closeout] " and the summary, shortened to one line
/// of at most 120 characters.
pub fn subject_line(summary: &str) -> String {
    let one_line: String = summary
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut subject = String::from("[Closeout] ");
    if one_line.chars().count() > 120 {
        subject.extend(one_line.chars().take(119));
        subject.push('…');
    } else {
        subject.push_str(&one_line);
    }
    subject
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_subjects() {
        assert!(check_address("owner@herts.police.uk").is_ok());
        assert!(check_address("not an address").is_err());
        assert_eq!(subject_line("a\nb"), "[Closeout] a b");
        let long = "x".repeat(300);
        assert_eq!(
            subject_line(&long).chars().count(),
            "[Closeout] ".len() + 120
        );
    }

    #[test]
    fn no_host_means_no_mail() {
        let options = SmtpOptions {
            smtp_host: None,
            smtp_port: 25,
            smtp_tls: SmtpTls::None,
            smtp_username: None,
            smtp_password: None,
            smtp_from: "closeout@localhost".into(),
        };
        assert!(matches!(
            Mailer::from_options(&options, Duration::from_secs(1)),
            Ok(None)
        ));
        let half = SmtpOptions {
            smtp_host: Some("localhost".into()),
            smtp_username: Some("u".into()),
            ..options.clone()
        };
        assert!(Mailer::from_options(&half, Duration::from_secs(1)).is_err());
        let bad_from = SmtpOptions {
            smtp_host: Some("localhost".into()),
            smtp_from: "nobody".into(),
            ..options
        };
        assert!(Mailer::from_options(&bad_from, Duration::from_secs(1)).is_err());
    }
}
