//! Prometheus metrics: the families an operator relies on are there with their labels, counting
//! what happened; no label carries a tenant, a user, an e-mail, a token or a session; `--metrics`
//! moves the endpoint off the public listener or turns it off.

use serde_json::json;
use uuid::Uuid;
use zygo::metrics::MetricsTarget;

use crate::helpers::{
    Cred, PASSWORD, World, copy_policies, session_cookie, spawn_app, spawn_with, test_settings,
};

/// `GET /metrics` on `base`: asserts 200 and the text exposition format, returns the body.
async fn scrape(base: &str) -> String {
    let reply = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(reply.status(), 200);
    let content_type = reply.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    reply.text().await.unwrap()
}

/// The value of the sample named exactly `series` (name and labels), if present.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

#[track_caller]
fn assert_sample(body: &str, series: &str, expected: f64) {
    assert_eq!(sample(body, series), Some(expected), "{series} in:\n{body}");
}

#[tokio::test]
async fn requests_decisions_caches_tokens_and_throttling_are_counted_without_identifying_labels() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie.clone());
    let token = app.token(&session, None).await;
    let alice = Cred::Token(token.clone());
    let flows = format!("/api/tenants/{}/flows", world.acme);
    let flow = world.flow(world.acme, &alice, "Metered").await;
    app.get(&flows, &alice).await.assert_status(200);
    app.get(&flows, &alice).await.assert_status(200);
    // A flow that does not exist: the operation id, never the path with its ids.
    let missing = Uuid::new_v4();
    app.get(&format!("{flows}/{missing}"), &alice)
        .await
        .assert_problem(404, "not_found");
    // A Viewer may not create flows: a Deny.
    let carol = Cred::Token(world.token_of("carol").await);
    app.post(&flows, &carol, json!({"name": "nope"}))
        .await
        .assert_problem(403, "forbidden");
    // A token minted from a token, then revoked (with its family).
    let child = app.token(&alice, Some(60)).await;
    app.post("/api/token/revoke", &Cred::Token(child.clone()), json!({}))
        .await
        .assert_status(204);
    // Failed logins until the throttle refuses (5 per account and address by default).
    let mut throttled = false;
    for _ in 0..7 {
        let reply = app
            .post(
                "/api/login",
                &Cred::None,
                json!({"email": "bob@example.com", "password": "wrong"}),
            )
            .await;
        throttled |= reply.status == 429;
    }
    assert!(throttled, "the throttle refused an attempt");
    app.get("/no/such/route", &Cred::None)
        .await
        .assert_problem(404, "not_found");

    let body = scrape(&app.address).await;
    for family in [
        "zygo_http_requests_total",
        "zygo_http_request_duration_seconds",
        "zygo_decisions_total",
        "zygo_role_cache_requests_total",
        "zygo_policy_info",
        "zygo_policy_loaded_timestamp_seconds",
        "zygo_policies",
        "zygo_policy_reloads_rejected_total",
        "zygo_tokens_minted_total",
        "zygo_token_revocations_total",
        "zygo_login_throttled_total",
        "zygo_logins_total",
    ] {
        assert!(
            body.contains(&format!("# HELP {family} "))
                && body.contains(&format!("# TYPE {family} ")),
            "{family} is documented in the exposition:\n{body}"
        );
    }
    assert_sample(
        &body,
        r#"zygo_http_requests_total{operation="listFlows",status="200"}"#,
        2.0,
    );
    assert_sample(
        &body,
        r#"zygo_http_requests_total{operation="createFlow",status="201"}"#,
        1.0,
    );
    assert_sample(
        &body,
        r#"zygo_http_requests_total{operation="createFlow",status="403"}"#,
        1.0,
    );
    assert_sample(
        &body,
        r#"zygo_http_requests_total{operation="getFlow",status="404"}"#,
        1.0,
    );
    assert_sample(
        &body,
        r#"zygo_http_requests_total{operation="revokeToken",status="204"}"#,
        1.0,
    );
    assert_sample(
        &body,
        r#"zygo_http_requests_total{operation="login",status="429"}"#,
        2.0,
    );
    assert_sample(
        &body,
        r#"zygo_http_requests_total{operation="unmatched",status="404"}"#,
        1.0,
    );
    assert_sample(
        &body,
        r#"zygo_http_request_duration_seconds_count{operation="listFlows"}"#,
        2.0,
    );
    assert!(
        body.contains(
            r#"zygo_http_request_duration_seconds_bucket{operation="listFlows",le="0.005"}"#
        ),
        "latency buckets:\n{body}"
    );
    assert_sample(
        &body,
        r#"zygo_decisions_total{action="ListFlows",decision="Allow"}"#,
        2.0,
    );
    assert_sample(
        &body,
        r#"zygo_decisions_total{action="CreateFlow",decision="Allow"}"#,
        1.0,
    );
    assert_sample(
        &body,
        r#"zygo_decisions_total{action="CreateFlow",decision="Deny"}"#,
        1.0,
    );
    // Seven role lookups: two creates (one each), two lists (the tenant check, then the
    // filter) and one read (one lookup, both to decide whether to read the flow and to decide
    // on it). Alice's role in Acme is read once, then served by the cache; Carol's is read once.
    // (On PostgreSQL the invalidation listener may empty the cache when it connects, hence
    // "at least".)
    let hits = sample(&body, r#"zygo_role_cache_requests_total{result="hit"}"#).unwrap_or(0.0);
    let misses = sample(&body, r#"zygo_role_cache_requests_total{result="miss"}"#).unwrap();
    assert_eq!(hits + misses, 7.0, "{body}");
    assert!(misses >= 2.0 && hits >= 1.0, "{body}");
    let version = app.state.authz.policy_status().version;
    assert_sample(
        &body,
        &format!(r#"zygo_policy_info{{version="{version}"}}"#),
        1.0,
    );
    let count = app.state.authz.policy_status().policies;
    assert!(count >= 16, "{count}");
    assert_sample(&body, "zygo_policies", count as f64);
    assert_sample(&body, "zygo_policy_reloads_rejected_total", 0.0);
    // Alice's and Carol's first tokens came from sessions; the child from a token.
    assert_sample(&body, r#"zygo_tokens_minted_total{from="session"}"#, 2.0);
    assert_sample(&body, r#"zygo_tokens_minted_total{from="token"}"#, 1.0);
    assert_sample(&body, "zygo_token_revocations_total", 1.0);
    assert_sample(&body, "zygo_login_throttled_total", 2.0);
    // Alice and Carol logged in; Bob's 5 wrong passwords were checked, the 2 throttled were not.
    assert_sample(&body, r#"zygo_logins_total{result="success"}"#, 2.0);
    assert_sample(&body, r#"zygo_logins_total{result="failure"}"#, 5.0);

    // Nothing that identifies a tenant, a user, a resource or a credential.
    let claims = crate::helpers::jwt_part(&token, 1);
    for secret in [
        world.acme.to_string(),
        world.globex.to_string(),
        world.alice.to_string(),
        world.carol.to_string(),
        flow.clone(),
        missing.to_string(),
        token.clone(),
        child.clone(),
        cookie.clone(),
        claims["jti"].as_str().unwrap().to_owned(),
        "example.com".to_owned(),
        "alice".to_owned(),
        "/api/".to_owned(),
    ] {
        assert!(!body.contains(&secret), "`{secret}` appears in the metrics");
    }
}

#[tokio::test]
async fn a_rejected_policy_reload_is_counted_and_the_version_stays() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.policies_dir = copy_policies(dir.path());
    settings.watch_policies = false;
    let policies = settings.policies_dir.clone();
    let app = spawn_with(settings, tempfile::tempdir().unwrap()).await;
    let version = app.state.authz.policy_status().version;
    std::fs::write(
        policies.join("broken.cedar"),
        "@id(\"oops\")\npermit (principal, action, resource) when { principal.nope };\n",
    )
    .unwrap();
    assert!(app.state.authz.policy_store().reload(true).is_err());
    let body = scrape(&app.address).await;
    assert_sample(&body, "zygo_policy_reloads_rejected_total", 1.0);
    assert_sample(
        &body,
        &format!(r#"zygo_policy_info{{version="{version}"}}"#),
        1.0,
    );
    assert_eq!(
        body.lines()
            .filter(|l| l.starts_with("zygo_policy_info{"))
            .count(),
        1,
        "one version in force"
    );
}

#[tokio::test]
async fn metrics_on_their_own_address_are_not_served_on_the_public_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.metrics = MetricsTarget::Listen("127.0.0.1:0".into());
    let app = spawn_with(settings, dir).await;
    app.get("/metrics", &Cred::None)
        .await
        .assert_problem(404, "not_found");
    app.get("/healthz", &Cred::None).await.assert_status(200);
    let private = app.metrics_address.clone().expect("a metrics listener");
    assert_ne!(private, app.address);
    let body = scrape(&private).await;
    // The public listener's requests are counted; the metrics listener serves nothing else.
    assert_sample(
        &body,
        r#"zygo_http_requests_total{operation="health",status="200"}"#,
        1.0,
    );
    assert_sample(
        &body,
        r#"zygo_http_requests_total{operation="unmatched",status="404"}"#,
        1.0,
    );
    let other = reqwest::get(format!("{private}/healthz")).await.unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.metrics = MetricsTarget::Off;
    let app = spawn_with(settings, dir).await;
    assert!(app.metrics_address.is_none());
    app.get("/metrics", &Cred::None)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn metrics_are_served_by_default_and_count_session_logins() {
    let app = spawn_app().await;
    app.add_user("ann@example.com", PASSWORD).await;
    let reply = app
        .post(
            "/api/login",
            &Cred::None,
            json!({"email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert!(session_cookie(&reply).is_some());
    let body = scrape(&app.address).await;
    assert_sample(
        &body,
        r#"zygo_http_requests_total{operation="login",status="200"}"#,
        1.0,
    );
}

#[tokio::test]
async fn serve_prints_the_metrics_address_its_flag_names_and_refuses_a_bad_one() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = crate::cli::zygo_command(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (address, printed) = crate::helpers::listening_address(&mut lines);
    let metrics = printed
        .iter()
        .find_map(|line| line.strip_prefix("metrics on "))
        .expect("the metrics address is printed")
        .strip_suffix("/metrics")
        .unwrap()
        .to_owned();
    let body = scrape(&metrics).await;
    assert!(body.contains("# TYPE zygo_policy_info gauge"), "{body}");
    let public = reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    crate::helpers::stop_binary(child);

    let refused = crate::cli::zygo_command(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0", "--metrics", "everywhere"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("`everywhere` is not `on`, `off` or an address such as 127.0.0.1:9100"),
        "{stderr}"
    );
}

/// `zygo_decision_sources` of each source, in `memo, residual, cedar` order.
fn sources(body: &str) -> [f64; 3] {
    ["memo", "residual", "cedar"].map(|source| {
        sample(
            body,
            &format!(r#"zygo_decision_sources{{source="{source}"}}"#),
        )
        .unwrap_or_else(|| panic!("no {source} sample in:\n{body}"))
    })
}

fn delta(after: &[f64; 3], before: &[f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|n| after[n] - before[n])
}

#[tokio::test]
async fn decisions_are_counted_by_source_residual_cedar_or_memo_until_the_next_reload() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let flow = world.flow(world.acme, &alice, "Counted").await;
    let path = format!("/api/tenants/{}/flows/{flow}", world.acme);
    let before = sources(&scrape(&app.address).await);
    // The first read evaluates the flow from the residuals compiled for Alice.
    let read = app.get(&path, &alice).await;
    assert_eq!(read.assert_status(200)["id"], flow.as_str());
    let first = sources(&scrape(&app.address).await);
    assert_eq!(delta(&first, &before), [0.0, 1.0, 0.0]);
    // The same read again is evaluated from the residuals again (never remembered).
    app.get(&path, &alice).await.assert_status(200);
    let second = sources(&scrape(&app.address).await);
    assert_eq!(delta(&second, &first), [0.0, 1.0, 0.0]);
    // A tenant-level action has no residual over a flow: Cedar decides it, then the memo.
    let tenant = format!("/api/tenants/{}", world.acme);
    app.get(&tenant, &alice).await.assert_status(200);
    let third = sources(&scrape(&app.address).await);
    assert_eq!(delta(&third, &second), [0.0, 0.0, 1.0]);
    app.get(&tenant, &alice).await.assert_status(200);
    let fourth = sources(&scrape(&app.address).await);
    assert_eq!(delta(&fourth, &third), [1.0, 0.0, 0.0]);
    // A reload starts a new snapshot, whose counts start at zero.
    app.state
        .authz
        .policy_store()
        .reload(true)
        .expect("the same folder reloads");
    assert_eq!(sources(&scrape(&app.address).await), [0.0, 0.0, 0.0]);
}

/// Every `zygo_decisions_total` sample added up.
fn decisions(body: &str) -> f64 {
    body.lines()
        .filter(|line| line.starts_with("zygo_decisions_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_hidden_flow_moves_the_decision_counters_as_a_missing_one_does() {
    let world = World::new().await;
    let app = &world.app;
    let bob = Cred::Token(world.token_of("bob").await);
    let carol = Cred::Token(world.token_of("carol").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let created = app
        .post(
            &base,
            &bob,
            json!({"name": "bob's secret", "labels": ["confidential"]}),
        )
        .await;
    let hidden = created.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let missing = Uuid::new_v4().to_string();
    // The public metrics must not tell Carol which of the two ids exists.
    let mut moved = Vec::new();
    for id in [&hidden, &missing] {
        let before = scrape(&app.address).await;
        let path = format!("{base}/{id}");
        app.get(&path, &carol)
            .await
            .assert_problem(404, "not_found");
        app.patch(&path, &carol, json!({"name": "renamed"}))
            .await
            .assert_problem(404, "not_found");
        app.delete(&path, &carol)
            .await
            .assert_problem(404, "not_found");
        let after = scrape(&app.address).await;
        moved.push((
            delta(&sources(&after), &sources(&before)),
            decisions(&after) - decisions(&before),
        ));
    }
    assert_eq!(moved[0], moved[1], "hidden, then missing");
    // A list moves them alike with the hidden flow there and once it is gone.
    app.post(&base, &bob, json!({"name": "bob's plain one"}))
        .await
        .assert_status(201);
    let mut listed = Vec::new();
    for round in 0..2 {
        if round == 1 {
            app.delete(&format!("{base}/{hidden}"), &bob)
                .await
                .assert_status(204);
        }
        let before = scrape(&app.address).await;
        let page = app.get(&base, &carol).await;
        let shown = page.assert_status(200)["items"].as_array().unwrap().len();
        let after = scrape(&app.address).await;
        // By source the list's own decision moves from Cedar to the memo; the total is what
        // the rows would move.
        let counted: f64 = delta(&sources(&after), &sources(&before)).iter().sum();
        listed.push((shown, counted, decisions(&after) - decisions(&before)));
    }
    assert_eq!(listed[0], listed[1], "with the hidden flow, then without");
    assert_eq!(listed[0].0, 1);
}
