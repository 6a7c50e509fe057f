//! A minimal SMTP server for tests ([`SmtpSink`]): listens on a free port
//! of 127.0.0.1, accepts every message (plain text, no TLS, no
//! authentication) and keeps it, so a test can check what a service sent.
//! It speaks just enough of RFC 5321 for a real client: the greeting,
//! EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One message as received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message (headers and body) with CRLF line ends, unstuffed.
    pub data: String,
}

impl ReceivedMail {
    /// The value of header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = value.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((key, rest)) = line.split_once(':')
                && key.trim().eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim().to_string());
            }
        }
        value
    }

    /// The body after the headers.
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }
}

/// What the sink answers to the end of a message.
#[derive(Clone, Copy, Debug)]
struct Refusals {
    /// Refuse this many messages (the first ones)…
    count: usize,
    /// …with this reply code (4xx: try again later, 5xx: never).
    code: u16,
}

/// A running SMTP sink; stops when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    refused: Arc<Mutex<usize>>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Starts listening on a free port of 127.0.0.1, accepting everything.
    pub async fn start() -> SmtpSink {
        SmtpSink::refusing_first(0, 250).await
    }

    /// Like [`SmtpSink::start`], but answers the first `count` messages
    /// with `code` (e.g. 451, a temporary failure, or 550, a permanent
    /// one) instead of keeping them.
    pub async fn refusing_first(count: usize, code: u16) -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding the test SMTP server");
        let addr = listener.local_addr().expect("test SMTP address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(0));
        let refusals = Refusals { count, code };
        let (store, refused_so_far) = (received.clone(), refused.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (store, refused_so_far) = (store.clone(), refused_so_far.clone());
                tokio::spawn(async move {
                    let _ = session(stream, store, refused_so_far, refusals).await;
                });
            }
        });
        SmtpSink {
            addr,
            received,
            refused,
            task,
        }
    }

    /// How many messages were refused.
    pub fn refused(&self) -> usize {
        *self.refused.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until at least `count` messages arrived (or `timeout`), then
    /// returns them all.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn address_of(argument: &str) -> String {
    let argument = argument.trim();
    let inner = match (argument.find('<'), argument.find('>')) {
        (Some(open), Some(close)) if open < close => &argument[open + 1..close],
        _ => argument.split_whitespace().next().unwrap_or_default(),
    };
    inner.to_string()
}

async fn session(
    stream: TcpStream,
    store: Arc<Mutex<Vec<ReceivedMail>>>,
    refused: Arc<Mutex<usize>>,
    refusals: Refusals,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write
        .write_all(b"220 closeout-test ESMTP ready\r\n")
        .await?;
    let mut mail = ReceivedMail::default();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-closeout-test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") {
            b"250 closeout-test\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail = ReceivedMail {
                from: address_of(&command[10..]),
                ..Default::default()
            };
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(address_of(&command[8..]));
            b"250 OK\r\n"
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                let text = line.trim_end_matches(['\r', '\n']);
                if text == "." {
                    break;
                }
                let text = text.strip_prefix('.').unwrap_or(text);
                data.push_str(text);
                data.push_str("\r\n");
            }
            mail.data = data;
            let refuse = {
                let mut so_far = refused.lock().unwrap_or_else(|e| e.into_inner());
                let refuse = *so_far < refusals.count;
                if refuse {
                    *so_far += 1;
                }
                refuse
            };
            if refuse {
                mail = ReceivedMail::default();
                let reply = format!("{} Refused by the test\r\n", refusals.code);
                write.write_all(reply.as_bytes()).await?;
                continue;
            }
            store
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(std::mem::take(&mut mail));
            b"250 OK queued\r\n"
        } else if upper == "RSET" {
            mail = ReceivedMail::default();
            b"250 OK\r\n"
        } else if upper == "NOOP" {
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_addresses_and_headers() {
        assert_eq!(address_of(" <a@b.example> SIZE=100"), "a@b.example");
        assert_eq!(address_of("a@b.example"), "a@b.example");
        let mail = ReceivedMail {
            data: "Subject: one\r\n two\r\nTo: x@y\r\n\r\nbody\r\n".into(),
            ..Default::default()
        };
        assert_eq!(mail.header("subject").as_deref(), Some("one two"));
        assert_eq!(mail.header("To").as_deref(), Some("x@y"));
        assert_eq!(mail.header("From"), None);
        assert_eq!(mail.body(), "body\r\n");
    }

    #[tokio::test]
    async fn keeps_what_a_client_sends() {
        let sink = SmtpSink::start().await;
        let stream = TcpStream::connect(sink.addr()).await.expect("connect");
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut expect = async |code: &str| {
            loop {
                let line = lines.next_line().await.expect("read").expect("a line");
                if line.starts_with(&format!("{code} ")) {
                    return;
                }
                assert!(line.starts_with(&format!("{code}-")), "{line}");
            }
        };
        expect("220").await;
        for (command, code) in [
            ("EHLO test", "250"),
            ("MAIL FROM:<a@example>", "250"),
            ("RCPT TO:<b@example>", "250"),
            ("DATA", "354"),
        ] {
            write
                .write_all(format!("{command}\r\n").as_bytes())
                .await
                .expect("write");
            expect(code).await;
        }
        write
            .write_all(b"Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n")
            .await
            .expect("write");
        expect("250").await;
        expect("221").await;
        let messages = sink.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].from, "a@example");
        assert_eq!(messages[0].to, vec!["b@example".to_string()]);
        assert_eq!(messages[0].body(), ".dot\r\n");
    }
}
