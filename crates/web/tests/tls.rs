//! The console over HTTPS: with a certificate signed by a development CA
//! (`closeout_testkit::TestPki`), a client trusting that CA gets
//! the sign-in page and, signing in, a session cookie marked Secure
//! although `secure_cookies` was not asked for; plain HTTP to the same port
//! and a client that does not trust the CA are refused. No service is
//! needed: the sign-in page and sign-in only verify the token.

use std::path::PathBuf;

/// A CA and a server certificate for localhost and 127.0.0.1, written to a
/// fresh directory (kept until the test removes it): (directory, CA PEM).
fn development_material() -> (PathBuf, String) {
    let pki = closeout_testkit::TestPki::generate();
    let dir = tempfile::Builder::new()
        .prefix("closeout-web-tls-test-")
        .tempdir()
        .unwrap()
        .keep();
    std::fs::write(dir.join("server.pem"), &pki.server_cert).unwrap();
    std::fs::write(dir.join("server.key"), &pki.server_key).unwrap();
    (dir, pki.ca)
}

fn client(ca: Option<&str>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_built_in_root_certs(false);
    if let Some(ca) = ca {
        builder =
            builder.add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// A console served over `tls`. Nothing is called: the pages fetched
/// need no service.
fn console_over(tls: closeout_web::WebTls) -> closeout_web::WebConfig {
    let verifier = closeout_service::config::AuthConfig::trusting(vec![
        closeout_testkit::token_public_key().to_path_buf(),
    ])
    .verifier()
    .unwrap();
    closeout_web::WebConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(tls),
        findings_url: "http://127.0.0.1:1".into(),
        tracker_url: "http://127.0.0.1:1".into(),
        metrics_url: "http://127.0.0.1:1".into(),
        services_tls: Default::default(),
        verifier,
        secure_cookies: false,
        max_upload_bytes: closeout_web::DEFAULT_MAX_UPLOAD_BYTES,
    }
}

#[tokio::test]
async fn the_console_serves_https_with_secure_cookies_and_refuses_plain_http() {
    let (dir, ca) = development_material();
    let web = closeout_web::start(
        console_over(closeout_web::WebTls {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }),
        std::future::pending(),
    )
    .await
    .unwrap();
    let port = web.addr.port();
    let trusting = client(Some(&ca));

    for host in ["localhost", "127.0.0.1"] {
        let page = trusting
            .get(format!("https://{host}:{port}/login"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("https://{host}:{port}/login: {e:?}"));
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["x-frame-options"], "DENY");
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("<textarea id=\"token\"")
        );
    }

    let token = closeout_testkit::Caller::viewer().token();
    let signed = trusting
        .post(format!("https://localhost:{port}/login"))
        .form(&[("token", token.as_str()), ("next", "/items")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("closeout_session=") && cookie.contains("; Secure"),
        "{cookie}"
    );

    let plain = client(None)
        .get(format!("http://127.0.0.1:{port}/login"))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP to the HTTPS port was answered: {:?}",
        plain.map(|r| r.status())
    );
    let untrusting = client(None)
        .get(format!("https://localhost:{port}/login"))
        .send()
        .await;
    assert!(
        untrusting.is_err(),
        "a client not trusting the CA was answered"
    );
    // The refused connections did not stop the listener.
    let again = trusting
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.text().await.unwrap(), "ok");

    web.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_missing_certificate_stops_start_up_naming_it() {
    let started = closeout_web::start(
        console_over(closeout_web::WebTls {
            cert: "/nonexistent/closeout-web.pem".into(),
            key: "/nonexistent/closeout-web.key".into(),
        }),
        std::future::pending(),
    )
    .await;
    match started {
        Err(closeout_web::WebError::Config(message)) => {
            assert!(
                message.contains("/nonexistent/closeout-web.pem"),
                "{message}"
            )
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("started without its certificate"),
    }
}
