//! The console's pages over plain HTTP (no browser): signing in and out,
//! each page's status and key content, the actions each role is offered
//! and the tracker's refusals shown when a role posts one anyway.

mod support;

use closeout_testkit::eventually;
use support::{Client, EARLIER, SAMPLE, SAMPLE_NAME, Stack, between, item_links};

#[tokio::test]
async fn signing_in_takes_a_valid_token_and_signing_out_ends_the_session() {
    let stack = Stack::start().await;
    let mut anonymous = Client::new(&stack.base);
    let answer = anonymous.get("/items?status=open").await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.location, "/login?next=/items%3Fstatus%3Dopen");
    let form = anonymous.get("/login").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<textarea id=\"token\""));

    let refused = anonymous
        .get(&format!("/login?token={}", stack.forged))
        .await;
    assert_eq!(refused.status, 401);
    assert!(
        refused.body.contains("That token was not accepted"),
        "{}",
        refused.body
    );
    let garbage = anonymous.post("/login", &[("token", "not-a-jwt")]).await;
    assert_eq!(garbage.status, 401);
    assert_eq!(anonymous.get("/").await.status, 303);

    let mut client = Client::new(&stack.base);
    let signed = client
        .post("/login", &[("token", &stack.viewer), ("next", "/items")])
        .await;
    assert_eq!(signed.status, 303);
    assert_eq!(signed.location, "/items");
    let items = client.get("/items").await;
    assert_eq!(items.status, 200);
    assert!(items.body.contains("reader:ann"), "{}", items.body);
    let away = Client::new(&stack.base)
        .post(
            "/login",
            &[("token", &stack.viewer), ("next", "//evil.example")],
        )
        .await;
    assert_eq!(away.location, "/");

    let out = client.post("/logout", &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(client.get("/items").await.status, 303);

    let headers = reqwest::get(format!("{}/login", stack.base)).await.unwrap();
    let csp = headers.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers.headers()["referrer-policy"], "no-referrer");
    let css = anonymous.get("/assets/style.css").await;
    assert!(css.status == 200 && css.body.contains("@media print"));
    let js = anonymous.get("/assets/app.js").await;
    assert!(js.status == 200 && js.body.contains("EventSource"));
    stack.stop().await;
}

#[tokio::test]
async fn every_page_follows_the_sample_through_its_life() {
    let stack = Stack::start().await;
    let mut inspectorate = Client::sign_in(&stack.base, &stack.inspectorate).await;
    let mut body = Client::sign_in(&stack.base, &stack.inspected_body).await;
    let mut viewer = Client::sign_in(&stack.base, &stack.viewer).await;

    // Import: the page, a refusal for a role that may not, the preview
    // with the explanation, then the import.
    let page = inspectorate.get("/import").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("type=\"file\""));
    let refused = viewer.import_refused(SAMPLE_NAME, SAMPLE).await;
    assert!(refused.contains("Not allowed"), "{refused}");
    for (name, text) in EARLIER {
        let imported = inspectorate.import(name, text).await;
        assert_eq!(imported.status, 200, "{}", imported.body);
        assert!(imported.body.contains("Imported."), "{}", imported.body);
    }
    // The earlier reports' items exist before the sample is imported, so
    // the sample's follow-ups become proposals.
    eventually("the earlier reports' items", || {
        let mut c = Client::new(&stack.base);
        c.cookie_from(&inspectorate);
        async move {
            let page = c.get("/items?org=hertfordshire").await;
            (!item_links(&page.body).is_empty()).then_some(())
        }
    })
    .await;
    let preview = inspectorate.preview(SAMPLE_NAME, SAMPLE).await;
    assert!(preview.contains("Hertfordshire Constabulary"), "{preview}");
    assert!(preview.contains("How each line was read"));
    assert!(preview.contains("peel-2018-19"));
    let imported = inspectorate.import(SAMPLE_NAME, SAMPLE).await;
    assert!(imported.body.contains("Imported."), "{}", imported.body);
    let inspection = between(&imported.body, "<dt>Inspection</dt><dd>", "</dd>").unwrap();

    // Items: seven open items of the sample's inspection.
    let open = eventually("seven open items of the sample", || {
        let mut c = Client::new(&stack.base);
        c.cookie_from(&inspectorate);
        let marker = format!("data-inspection=\"{inspection}\"");
        async move {
            let page = c.get("/items?org=hertfordshire&status=open").await;
            let count = page.body.matches(&marker).count();
            (count == 7).then_some(page)
        }
    })
    .await;
    assert_eq!(open.status, 200);
    let sample_items: Vec<String> = open
        .body
        .split("<tr ")
        .filter(|row| row.contains(&format!("data-inspection=\"{inspection}\"")))
        .filter_map(|row| item_links(row).into_iter().next())
        .collect();
    assert_eq!(sample_items.len(), 7);
    let bad_filter = inspectorate.get("/items?status=finished").await;
    assert_eq!(bad_filter.status, 400);
    assert!(bad_filter.body.contains("is not a status"));

    // Overview and the organisation's scorecard.
    let overview = eventually("the overview counts the sample's items", || {
        let mut c = Client::new(&stack.base);
        c.cookie_from(&viewer);
        async move {
            let page = c.get("/").await;
            page.body.contains("Hertfordshire").then_some(page)
        }
    })
    .await;
    assert!(overview.body.contains("id=\"national-open\""));
    assert!(overview.body.contains("Four-tier scale"));
    let before = inspectorate.get("/organisations/hertfordshire").await;
    assert_eq!(before.status, 200, "{}", before.body);
    for chart in [
        "id=\"by-status\"",
        "id=\"ageing\"",
        "id=\"burn-down\"",
        "id=\"peers\"",
    ] {
        assert!(before.body.contains(chart), "no {chart}");
    }
    assert!(before.body.contains("Grades by question and period"));
    let past = inspectorate
        .get("/organisations/hertfordshire?as_of=2016-01-01")
        .await;
    assert_eq!(past.status, 200);
    assert!(
        past.body
            .contains("<span class=\"big\" id=\"open-count\">0</span>")
    );
    assert_eq!(
        inspectorate
            .get("/organisations/hertfordshire?as_of=soon")
            .await
            .status,
        400
    );
    assert_eq!(
        inspectorate.get("/organisations/atlantis").await.status,
        404
    );

    // The item page: what each role is offered.
    let item = &sample_items[0];
    let as_viewer = viewer.get(&format!("/items/{item}")).await;
    assert_eq!(as_viewer.status, 200);
    assert!(
        as_viewer
            .body
            .contains("No action is open to your role (viewer)")
    );
    assert!(
        as_viewer.body.contains("ItemOpened"),
        "history shows the opening"
    );
    let as_body = body.get(&format!("/items/{item}")).await;
    assert!(as_body.body.contains("id=\"form-start\""));
    assert!(!as_body.body.contains("id=\"form-verify\""));
    let version = between(&as_body.body, "name=\"version\" value=\"", "\"").unwrap();
    // A role that may not act is refused by the tracker, and told so.
    let denied = viewer
        .post(
            &format!("/items/{item}/verify"),
            &[("version", &version), ("reference", "forged letter")],
        )
        .await;
    assert_eq!(denied.status, 422);
    assert!(denied.body.contains("Not allowed"), "{}", denied.body);
    let other = Client::sign_in(&stack.base, &stack.other_body)
        .await
        .get(&format!("/items/{item}"))
        .await;
    assert_eq!(
        other.status, 404,
        "another force's item does not exist for it"
    );

    // The inspected body starts and claims; the inspectorate verifies.
    let started = body
        .post(
            &format!("/items/{item}/start"),
            &[("version", &version), ("note", "Board set up")],
        )
        .await;
    assert!(started.body.contains("Started."), "{}", started.body);
    let version = between(&started.body, "name=\"version\" value=\"", "\"").unwrap();
    let stale = body
        .post(
            &format!("/items/{item}/note"),
            &[("version", "1"), ("note", "late")],
        )
        .await;
    assert!(stale.body.contains("Changed meanwhile"), "{}", stale.body);
    let claimed = body
        .post(
            &format!("/items/{item}/claim"),
            &[
                ("version", &version),
                ("description", "Strategy approved"),
                ("sha256", &"ab".repeat(32)),
            ],
        )
        .await;
    assert!(
        claimed.body.contains("Completion claimed"),
        "{}",
        claimed.body
    );
    let page = inspectorate.get(&format!("/items/{item}")).await;
    let version = between(&page.body, "name=\"version\" value=\"", "\"").unwrap();
    let closed = inspectorate
        .post(
            &format!("/items/{item}/verify"),
            &[
                ("version", &version),
                ("reference", "Closure letter 2020-01"),
            ],
        )
        .await;
    assert!(
        closed.body.contains("Verified and closed."),
        "{}",
        closed.body
    );
    assert!(
        closed
            .body
            .contains("id=\"item-status\" class=\"status\">Closed")
    );
    assert!(
        closed.body.contains("Strategy approved"),
        "evidence is listed"
    );

    // The scorecard follows.
    eventually("the scorecard counts the closed item", || {
        let mut c = Client::new(&stack.base);
        c.cookie_from(&inspectorate);
        async move {
            let page = c.get("/organisations/hertfordshire").await;
            let chart = between(&page.body, "<desc id=\"by-status-desc\">", "</desc>")?;
            chart.contains("Closed: 1").then_some(())
        }
    })
    .await;

    // Reconciliation review: the sample's statements about the 2017 items.
    let review = inspectorate.get("/review?org=hertfordshire").await;
    assert_eq!(review.status, 200);
    let proposal = between(&review.body, "action=\"/proposals/", "/accept\"")
        .expect("a pending proposal to accept");
    assert!(review.body.contains("<mark>"), "quotes are highlighted");
    assert!(review.body.contains("Rule: <code>"));
    let as_body = body.get("/review").await;
    assert!(
        !as_body.body.contains("/accept\""),
        "an inspected body may not decide"
    );
    let version = between(
        review
            .body
            .split(&format!("/proposals/{proposal}/accept"))
            .nth(1)
            .unwrap(),
        "name=\"version\" value=\"",
        "\"",
    )
    .unwrap();
    let body_denied = body
        .post(
            &format!("/proposals/{proposal}/accept"),
            &[("version", &version)],
        )
        .await;
    assert!(
        body_denied.body.contains("Not allowed"),
        "{}",
        body_denied.body
    );
    let no_reason = inspectorate
        .post(
            &format!("/proposals/{proposal}/reject"),
            &[("version", &version), ("reason", "")],
        )
        .await;
    assert!(
        no_reason.body.contains("class=\"error\""),
        "{}",
        no_reason.body
    );
    let accepted = inspectorate
        .post(
            &format!("/proposals/{proposal}/accept"),
            &[("version", &version), ("back", "/review?org=hertfordshire")],
        )
        .await;
    assert!(
        accepted.body.contains("Proposal accepted."),
        "{}",
        accepted.body
    );
    assert!(
        !accepted
            .body
            .contains(&format!("/proposals/{proposal}/accept"))
    );
    stack.stop().await;
}
