//! What the web console's tests share: the three real services on port 0
//! (each with its own database, one private stream), the console in front
//! of them with a fresh signing key, a token per role, and a small HTTP
//! client that keeps the session cookie.

#![allow(dead_code)] // each test binary uses its own part

use closeout_auth::{Claims, Role, SigningKey, mint};
use closeout_service::config::{CommonConfig, LogFormat};
use closeout_testkit::{TestBus, TestDatabase};
use std::time::Duration;

/// The reference report (HMICFRS, OGL v3.0; tests/fixtures/NOTICE.md).
pub const SAMPLE: &str = include_str!("../../../../tests/fixtures/peel-2018-19-hertfordshire.txt");
pub const SAMPLE_NAME: &str = "peel-2018-19-hertfordshire.txt";
/// Hertfordshire's earlier (synthetic) reports, which the sample follows up.
pub const EARLIER: [(&str, &str); 2] = [
    (
        "synthetic-hertfordshire-2017-effectiveness.txt",
        include_str!("../../../../tests/fixtures/synthetic-hertfordshire-2017-effectiveness.txt"),
    ),
    (
        "synthetic-hertfordshire-2017-efficiency.txt",
        include_str!("../../../../tests/fixtures/synthetic-hertfordshire-2017-efficiency.txt"),
    ),
];

/// Everything running for one test.
pub struct Stack {
    pub base: String,
    pub inspectorate: String,
    pub inspected_body: String,
    pub viewer: String,
    /// An inspected body of another organisation.
    pub other_body: String,
    /// A token signed by a key the console does not trust.
    pub forged: String,
    web: Option<closeout_web::RunningWeb>,
    services: Vec<closeout_service::Running>,
    databases: Vec<TestDatabase>,
    bus: Option<TestBus>,
}

fn common(db: &TestDatabase, bus: &TestBus) -> CommonConfig {
    let bus = bus.config();
    CommonConfig {
        database_url: db.url().to_string(),
        nats_url: bus.nats_url,
        grpc_addr: Some("127.0.0.1:0".parse().unwrap()),
        stream_name: bus.stream_name,
        subject_prefix: bus.subject_prefix,
        database_max_connections: 5,
        log_format: LogFormat::Text,
        auth: closeout_service::config::AuthConfig::trusting(vec![
            closeout_testkit::token_public_key().to_path_buf(),
        ]),
        tls: Default::default(),
        reflection_addr: None,
    }
}

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn token(key: &SigningKey, subject: &str, role: Role, org: Option<&str>) -> String {
    mint(
        key,
        &Claims::new(subject, role, org, Duration::from_secs(3600)),
    )
    .unwrap()
}

impl Stack {
    pub async fn start() -> Stack {
        let bus = TestBus::new();
        let databases = vec![
            TestDatabase::create().await,
            TestDatabase::create().await,
            TestDatabase::create().await,
        ];
        let findings = closeout_findings::start(
            closeout_findings::FindingsConfig {
                common: common(&databases[0], &bus),
                metrics_http_addr: any_port(),
                max_report_bytes: 5 * 1024 * 1024,
            },
            std::future::pending(),
        )
        .await
        .unwrap();
        let mut tracker_config = closeout_tracker::TrackerConfig::new(common(&databases[1], &bus));
        tracker_config.metrics_http_addr = any_port();
        let tracker = closeout_tracker::start(tracker_config, std::future::pending())
            .await
            .unwrap();
        let metrics = closeout_metrics::start(
            closeout_metrics::MetricsConfig {
                common: common(&databases[2], &bus),
                metrics_http_addr: any_port(),
            },
            std::future::pending(),
        )
        .await
        .unwrap();

        // The console trusts exactly the keys the services trust.
        let key = closeout_testkit::token_signing_key();
        let verifier = closeout_service::config::AuthConfig::trusting(vec![
            closeout_testkit::token_public_key().to_path_buf(),
        ])
        .verifier()
        .unwrap();
        let stranger = closeout_auth::generate_ed25519(closeout_testkit::TEST_KEY_ID).unwrap();
        let stranger = SigningKey::from_pem(
            stranger.private_pem.as_bytes(),
            Some(closeout_testkit::TEST_KEY_ID.into()),
        )
        .unwrap();

        let web = closeout_web::start(
            closeout_web::WebConfig {
                listen: any_port(),
                tls: None,
                findings_url: format!("http://{}", findings.addr),
                tracker_url: format!("http://{}", tracker.addr),
                metrics_url: format!("http://{}", metrics.addr),
                services_tls: Default::default(),
                verifier,
                secure_cookies: false,
                max_upload_bytes: closeout_web::DEFAULT_MAX_UPLOAD_BYTES,
            },
            std::future::pending(),
        )
        .await
        .unwrap();
        Stack {
            base: format!("http://{}", web.addr),
            inspectorate: token(key, "inspector:jane", Role::Inspectorate, None),
            inspected_body: token(key, "herts:jo", Role::InspectedBody, Some("hertfordshire")),
            viewer: token(key, "reader:ann", Role::Viewer, None),
            other_body: token(key, "kent:sam", Role::InspectedBody, Some("kent")),
            forged: token(&stranger, "mallory", Role::Inspectorate, None),
            web: Some(web),
            services: vec![findings, tracker, metrics],
            databases,
            bus: Some(bus),
        }
    }

    /// Stops everything and drops the databases and stream.
    pub async fn stop(mut self) {
        if let Some(web) = self.web.take() {
            web.stop().await.unwrap();
        }
        for service in self.services.drain(..) {
            service.stop().await.unwrap();
        }
        for db in self.databases.drain(..) {
            db.drop_database().await;
        }
        if let Some(bus) = self.bus.take() {
            bus.cleanup().await;
        }
    }
}

/// A browser-less client: follows no redirects, keeps the session cookie.
pub struct Client {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

pub struct Answer {
    pub status: u16,
    pub location: String,
    pub body: String,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
            cookie: None,
        }
    }

    /// Signs in through `/login?token=`; the sign-in answer.
    pub async fn sign_in(base: &str, token: &str) -> Client {
        let mut client = Client::new(base);
        let answer = client.get(&format!("/login?token={token}")).await;
        assert_eq!(answer.status, 303, "signing in: {}", answer.body);
        assert!(client.cookie.is_some(), "no session cookie was set");
        client
    }

    async fn answer(&mut self, response: reqwest::Response) -> Answer {
        if let Some(set) = response.headers().get("set-cookie") {
            let set = set.to_str().unwrap().to_string();
            let pair = set.split(';').next().unwrap().to_string();
            if pair.ends_with('=') {
                self.cookie = None;
            } else {
                self.cookie = Some(pair);
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = response.text().await.unwrap();
        Answer {
            status,
            location,
            body,
        }
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => request.header("cookie", c),
            None => request,
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let request = self.with_cookie(self.http.get(format!("{}{path}", self.base)));
        let response = request.send().await.unwrap();
        self.answer(response).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let request = self.with_cookie(self.http.post(format!("{}{path}", self.base)).form(form));
        let response = request.send().await.unwrap();
        self.answer(response).await
    }

    /// Uploads a report on the import page and imports it after the preview.
    pub async fn import(&mut self, name: &str, text: &str) -> Answer {
        let preview = self.preview(name, text).await;
        let upload = between(&preview, "name=\"upload\" value=\"", "\"")
            .expect("the preview offers an import");
        self.post("/import/confirm", &[("upload", &upload)]).await
    }
}

/// The text between `start` and the next `end`.
pub fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_string())
}

/// Every `/items/<id>` link of a page, in order, without repeats.
pub fn item_links(body: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for part in body.split("href=\"/items/").skip(1) {
        let id = part.split('"').next().unwrap_or_default().to_string();
        if !id.is_empty() && !id.contains(['/', '?']) && !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

impl Client {
    /// Shares `other`'s session (for polling in a closure).
    pub fn cookie_from(&mut self, other: &Client) {
        self.cookie = other.cookie.clone();
    }

    async fn upload(&mut self, name: &str, text: &str) -> Answer {
        let part = reqwest::multipart::Part::bytes(text.as_bytes().to_vec())
            .file_name(name.to_string())
            .mime_str("text/plain")
            .unwrap();
        let form = reqwest::multipart::Form::new().part("file", part);
        let request = self.with_cookie(
            self.http
                .post(format!("{}/import/preview", self.base))
                .multipart(form),
        );
        let response = request.send().await.unwrap();
        self.answer(response).await
    }

    /// The preview page of `text`.
    pub async fn preview(&mut self, name: &str, text: &str) -> String {
        let answer = self.upload(name, text).await;
        assert_eq!(answer.status, 200, "preview of {name}: {}", answer.body);
        answer.body
    }

    /// The page shown when the preview is refused.
    pub async fn import_refused(&mut self, name: &str, text: &str) -> String {
        let answer = self.upload(name, text).await;
        assert_eq!(answer.status, 422, "{}", answer.body);
        answer.body
    }
}
