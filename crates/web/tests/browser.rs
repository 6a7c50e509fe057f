//! The console in a real browser: headless Chromium from Debian's
//! packages, driven over WebDriver (chromedriver on a free port). Every
//! role signs in with its link; the inspectorate imports the 2017 reports
//! and the sample through the import page, sees the sample's seven open
//! items, closes one and watches the scorecard chart change, accepts a
//! proposal in the review queue with the keyboard; the inspected body and
//! the viewer are refused what their roles may not do; a change made
//! elsewhere reaches an open page through server-sent events. Screenshots
//! of each page go to target/web-screenshots/.
//!
//! Skipped, saying why, only when chromium or chromedriver is not
//! installed (.ci/run installs both, so CI runs it).

mod support;

use closeout_testkit::{EVENTUALLY, free_port, poll};
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{Client, Stack, between};

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let dir = target.join("web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// chromedriver, stopped when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Session {
    browser: Browser,
    base: String,
    shots: PathBuf,
}

impl Session {
    async fn open(
        path: &str,
        base: &str,
        driver_port: u16,
        chromium: &Path,
        profile: &Path,
    ) -> Session {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        let browser = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .expect("a Chromium session through chromedriver");
        let session = Session {
            browser,
            base: base.to_string(),
            shots: screenshots_dir(),
        };
        session.go(path).await;
        session
    }

    async fn go(&self, path: &str) {
        self.browser
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// The element's text, read in one script call: live updates replace
    /// elements, so a found element can go stale before its text is read.
    async fn text(&self, css: &str) -> String {
        let value = self
            .browser
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                vec![serde_json::json!(css)],
            )
            .await
            .unwrap();
        value
            .as_str()
            .unwrap_or_else(|| panic!("no {css}"))
            .to_string()
    }

    async fn count(&self, css: &str) -> usize {
        self.browser
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .len()
    }

    async fn fill(&self, css: &str, value: &str) {
        self.browser
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .send_keys(value)
            .await
            .unwrap();
    }

    /// Clicks the element, finding it again if a live update replaced it
    /// between finding and clicking.
    async fn click(&self, css: &str) {
        for _ in 0..5 {
            let element = self
                .browser
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no {css}: {e}"));
            match element.click().await {
                Ok(_) => return,
                Err(e) if e.is_stale_element_reference() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("clicking {css}: {e}"),
            }
        }
        panic!("{css} kept going stale");
    }

    async fn source(&self) -> String {
        self.browser.source().await.unwrap()
    }

    async fn shot(&self, name: &str) {
        let png = self.browser.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// Reloads `path` until `check` holds on its source.
    async fn until(&self, what: &str, path: &str, check: impl Fn(&str) -> bool) -> String {
        let found = poll(EVENTUALLY, || async {
            self.go(path).await;
            let source = self.source().await;
            check(&source).then_some(source)
        })
        .await;
        found.unwrap_or_else(|| panic!("timed out waiting for {what} on {path}"))
    }

    /// Waits until the current page's source holds `text`.
    async fn wait_for(&self, text: &str) -> String {
        let found = poll(EVENTUALLY, || async {
            let source = self.source().await;
            source.contains(text).then_some(source)
        })
        .await;
        found.unwrap_or_else(|| panic!("timed out waiting for {text:?}"))
    }

    async fn import(&self, file: &Path) -> String {
        self.go("/import").await;
        self.fill("#file", file.to_str().unwrap()).await;
        self.click("form[action='/import/preview'] button").await;
        self.wait_for("How each line was read").await;
        self.shot("import-preview").await;
        self.click("#import-button").await;
        let page = self.wait_for("<h1>Report imported</h1>").await;
        assert!(page.contains("Imported."), "{page}");
        self.shot("import-done").await;
        page
    }
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "closeout-web-chromium-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let Some(chromium) = on_path(&["chromium", "chromium-browser"]) else {
        println!(
            "skipping the browser test: chromium is not installed (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let Some(chromedriver) = on_path(&["chromedriver"]) else {
        println!(
            "skipping the browser test: chromedriver is not installed (apt-get install chromium-driver)"
        );
        return;
    };
    // fantoccini's HTTP client is built on rustls, which here has more
    // than one crypto provider compiled in: pick one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = free_port();
    let _driver = Driver(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver"),
    );
    let ready = poll(Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    assert!(ready.is_some(), "chromedriver did not listen on {port}");

    let stack = Stack::start().await;
    let fixtures = workspace().join("tests/fixtures");

    // The sign-in page, then the inspectorate by its link.
    // A fresh profile, removed at the end.
    let profile = tempfile_dir();
    let web = Session::open("/login", &stack.base, port, &chromium, &profile).await;
    assert!(web.source().await.contains("Paste the token"));
    web.shot("login").await;
    web.go(&format!("/login?token={}", stack.inspectorate))
        .await;
    assert!(web.text("form.who").await.contains("inspector:jane"));

    // Import the earlier reports, then the sample, through the page.
    for name in [
        "synthetic-hertfordshire-2017-effectiveness.txt",
        "synthetic-hertfordshire-2017-efficiency.txt",
    ] {
        web.import(&fixtures.join(name)).await;
    }
    web.until("the 2017 items", "/items?org=hertfordshire", |s| {
        s.contains("data-inspection=")
    })
    .await;
    let imported = web
        .import(&fixtures.join("peel-2018-19-hertfordshire.txt"))
        .await;
    let inspection = between(&imported, "<dt>Inspection</dt><dd>", "</dd>").unwrap();
    let marker = format!("data-inspection=\"{inspection}\"");
    let list = web
        .until(
            "seven open items",
            "/items?org=hertfordshire&status=open",
            |s| s.matches(&marker).count() == 7,
        )
        .await;
    assert_eq!(
        web.count(&format!("tr[data-inspection='{inspection}']"))
            .await,
        7
    );
    web.shot("items").await;
    let item = between(list.split(&marker).nth(1).unwrap(), "href=\"/items/", "\"").unwrap();

    // The overview and the organisation's charts.
    web.until("the overview", "/", |s| s.contains("Hertfordshire"))
        .await;
    web.shot("overview").await;
    web.go("/organisations/hertfordshire").await;
    let before = web.text("#open-count").await;
    web.shot("organisation").await;

    // Close one item; the chart follows.
    web.go(&format!("/items/{item}")).await;
    web.fill("#verify-reference", "Closure letter 2020-01")
        .await;
    web.click("#form-verify button").await;
    web.wait_for("Verified and closed.").await;
    assert_eq!(web.text("#item-status").await, "Closed");
    web.shot("item").await;
    let after = web
        .until(
            "the chart to count the closed item",
            "/organisations/hertfordshire",
            |s| {
                between(s, "<desc id=\"by-status-desc\">", "</desc>")
                    .is_some_and(|d| d.contains("Closed: 1"))
            },
        )
        .await;
    let open_after = between(&after, "id=\"open-count\">", "<").unwrap();
    assert_eq!(
        open_after.parse::<u32>().unwrap() + 1,
        before.parse::<u32>().unwrap(),
        "one fewer open item"
    );
    web.shot("organisation-after").await;

    // The review queue, with the keyboard: j moves, a accepts.
    web.go("/review?org=hertfordshire").await;
    let pending = web.count("article.proposal").await;
    assert!(pending >= 2, "proposals to review: {pending}");
    web.shot("review").await;
    let active = web.browser.active_element().await.unwrap();
    active.send_keys("j").await.unwrap();
    let current = web.browser.active_element().await.unwrap();
    assert_eq!(
        current.attr("class").await.unwrap().as_deref(),
        Some("proposal current")
    );
    current.send_keys("a").await.unwrap();
    let accepted = poll(EVENTUALLY, || async {
        web.source()
            .await
            .contains("Proposal accepted.")
            .then_some(())
    })
    .await;
    assert!(accepted.is_some(), "the proposal was accepted");
    assert_eq!(web.count("article.proposal").await, pending - 1);
    web.shot("review-accepted").await;

    // Live: a change made elsewhere reaches the open item list.
    web.go("/items?org=hertfordshire&status=open").await;
    let source = web.source().await;
    let other = between(
        source.split(&marker).nth(1).unwrap(),
        "href=\"/items/",
        "\"",
    )
    .unwrap();
    let mut body = Client::sign_in(&stack.base, &stack.inspected_body).await;
    let page = body.get(&format!("/items/{other}")).await;
    let version = between(&page.body, "name=\"version\" value=\"", "\"").unwrap();
    let started = body
        .post(&format!("/items/{other}/start"), &[("version", &version)])
        .await;
    assert!(started.body.contains("Started."), "{}", started.body);
    let live = poll(EVENTUALLY, || async {
        let status = web.text("#live-status").await;
        status.starts_with("Updated").then_some(())
    })
    .await;
    assert!(
        live.is_some(),
        "the list was updated by a server-sent event"
    );
    // Started elsewhere, the item has left the list of open items.
    assert!(
        !web.source()
            .await
            .contains(&format!("href=\"/items/{other}\""))
    );
    web.shot("items-live").await;
    web.click("form.who button").await;
    // Signing out ends the session: whatever the redirect has shown by now
    // (it can be slow on a loaded machine), the overview asks for a token.
    web.go("/").await;
    web.wait_for("Paste the token").await;

    // The inspected body: its own items, no verification, no decisions.
    web.go(&format!("/login?token={}", stack.inspected_body))
        .await;
    web.go(&format!("/items/{other}")).await;
    assert_eq!(web.count("#form-verify").await, 0);
    assert_eq!(web.count("#form-claim").await, 1);
    web.go("/review?org=hertfordshire").await;
    assert_eq!(web.count("form.accept").await, 0);
    web.shot("review-inspected-body").await;
    web.click("form.who button").await;
    // Signing out ends the session: whatever the redirect has shown by now
    // (it can be slow on a loaded machine), the overview asks for a token.
    web.go("/").await;
    web.wait_for("Paste the token").await;

    // The viewer: reads, acts on nothing, and is refused an import.
    web.go(&format!("/login?token={}", stack.viewer)).await;
    web.go(&format!("/items/{item}")).await;
    assert!(
        web.source()
            .await
            .contains("No action is open to your role (viewer)")
    );
    web.shot("item-viewer").await;
    web.go("/import").await;
    web.fill(
        "#file",
        fixtures
            .join("peel-2018-19-hertfordshire.txt")
            .to_str()
            .unwrap(),
    )
    .await;
    web.click("form[action='/import/preview'] button").await;
    web.wait_for("class=\"error\"").await;
    assert!(web.text("div.error").await.starts_with("Not allowed"));
    web.shot("import-refused").await;

    web.browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    stack.stop().await;
}
