//! Cross-site request forgery and content types: a cookie-authenticated state-changing request
//! from another site is a 403, and a JSON endpoint takes nothing but JSON (415).

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Cred, PASSWORD, World, send, spawn_with, test_settings};

async fn flow_count(world: &World, cred: &Cred) -> usize {
    let reply = world
        .app
        .get(&format!("/api/tenants/{}/flows", world.acme), cred)
        .await;
    reply.assert_status(200)["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_cookie_request_from_another_site_cannot_change_anything() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let cred = Cred::Cookie(cookie.clone());
    let path = format!("/api/tenants/{}/flows", world.acme);
    let own_origin = app.address.clone();
    for (why, headers) in [
        ("foreign Origin", vec![("origin", "https://evil.example")]),
        (
            "foreign Origin, same host other port",
            vec![("origin", "http://127.0.0.1:1")],
        ),
        ("Origin null", vec![("origin", "null")]),
        (
            "Sec-Fetch-Site cross-site",
            vec![("sec-fetch-site", "cross-site")],
        ),
        (
            "Sec-Fetch-Site same-site",
            vec![("sec-fetch-site", "same-site")],
        ),
        (
            "own Origin but the browser says cross-site",
            vec![
                ("origin", own_origin.as_str()),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
    ] {
        let mut req = app
            .raw(Method::POST, &path, &cred)
            .json(&json!({"name": "forged"}));
        for (name, value) in &headers {
            req = req.header(*name, *value);
        }
        let reply = send(req).await;
        assert_eq!(reply.status, 403, "{why}: {}", reply.body);
        reply.assert_problem(403, "cross_site_request");
    }
    assert_eq!(flow_count(&world, &cred).await, 0, "nothing was created");

    // Logging out from another site is refused as well: the session lives on.
    let reply = send(
        app.raw(Method::POST, "/api/logout", &cred)
            .header("origin", "https://evil.example"),
    )
    .await;
    reply.assert_problem(403, "cross_site_request");
    app.get("/api/me", &cred).await.assert_status(200);

    // The same requests from our own origin, or from a non-browser client, go through.
    for headers in [
        vec![("origin", own_origin.as_str())],
        vec![("sec-fetch-site", "same-origin")],
        vec![
            ("origin", own_origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
        vec![],
    ] {
        let mut req = app
            .raw(Method::POST, &path, &cred)
            .json(&json!({"name": "ok"}));
        for (name, value) in &headers {
            req = req.header(*name, *value);
        }
        send(req).await.assert_status(201);
    }
    // Reading from another site is not a state change (CORS keeps the answer from the page).
    send(
        app.raw(Method::GET, &path, &cred)
            .header("origin", "https://evil.example"),
    )
    .await
    .assert_status(200);
}

#[tokio::test]
async fn tokens_are_not_subject_to_the_origin_check_because_browsers_never_send_them() {
    let world = World::new().await;
    let token = Cred::Token(world.token_of("alice").await);
    let path = format!("/api/tenants/{}/flows", world.acme);
    let reply = send(
        world
            .app
            .raw(Method::POST, &path, &token)
            .header("origin", "https://tools.example")
            .header("sec-fetch-site", "cross-site")
            .json(&json!({"name": "from a tool"})),
    )
    .await;
    reply.assert_status(201);
}

#[tokio::test]
async fn a_login_posted_from_another_site_is_refused() {
    let world = World::new().await;
    let reply = send(
        world
            .app
            .raw(Method::POST, "/api/login", &Cred::None)
            .header("origin", "https://evil.example")
            .json(&json!({"email": "alice@example.com", "password": PASSWORD})),
    )
    .await;
    reply.assert_problem(403, "cross_site_request");
    assert!(reply.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn with_a_public_url_only_that_origin_is_ours() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.public_url = Some("http://zygo.example:8443/app".into());
    let app = spawn_with(settings, dir).await;
    app.add_user("erin@example.com", PASSWORD).await;
    let (cookie, _) = app.login("erin@example.com", PASSWORD).await;
    let cred = Cred::Cookie(cookie);
    for (origin, status) in [
        ("http://zygo.example:8443", 201),
        ("HTTP://ZYGO.EXAMPLE:8443", 201),
        ("http://zygo.example", 403),
        ("https://zygo.example:8443", 403),
        (app.address.as_str(), 403),
    ] {
        let reply = send(
            app.raw(Method::POST, "/api/tenants", &cred)
                .header("origin", origin)
                .json(&json!({"name": "T"})),
        )
        .await;
        assert_eq!(reply.status, status, "{origin}: {}", reply.body);
        if status == 403 {
            reply.assert_problem(403, "cross_site_request");
        }
    }
}

#[tokio::test]
async fn json_endpoints_refuse_other_content_types_with_415() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let cred = Cred::Cookie(cookie);
    let path = format!("/api/tenants/{}/flows", world.acme);
    let json_text = r#"{"name": "smuggled"}"#;
    for (why, content_type, body) in [
        ("text/plain", Some("text/plain"), json_text.to_owned()),
        (
            "a form",
            Some("application/x-www-form-urlencoded"),
            "name=smuggled".to_owned(),
        ),
        (
            "multipart",
            Some("multipart/form-data; boundary=x"),
            "--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nsmuggled\r\n--x--\r\n"
                .to_owned(),
        ),
        ("no content type", None, json_text.to_owned()),
        (
            "xml",
            Some("application/xml"),
            "<name>smuggled</name>".to_owned(),
        ),
        (
            "json-looking prefix",
            Some("application/jsonp"),
            json_text.to_owned(),
        ),
    ] {
        let mut req = app.raw(Method::POST, &path, &cred).body(body);
        if let Some(content_type) = content_type {
            req = req.header("content-type", content_type);
        }
        let reply = send(req).await;
        assert_eq!(reply.status, 415, "{why}: {}", reply.body);
        reply.assert_problem(415, "unsupported_media_type");
    }
    // The login form is JSON-only too: a plain HTML form cannot post it.
    let reply = send(
        app.raw(Method::POST, "/api/login", &Cred::None)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("email=alice%40example.com&password={PASSWORD}")),
    )
    .await;
    reply.assert_problem(415, "unsupported_media_type");
    assert_eq!(flow_count(&world, &cred).await, 0, "nothing was created");
    // Control: JSON, with a charset parameter, is accepted.
    send(
        app.raw(Method::POST, &path, &cred)
            .header("content-type", "application/json; charset=utf-8")
            .body(json_text),
    )
    .await
    .assert_status(201);
}

#[tokio::test]
async fn a_cross_site_navigation_with_the_cookie_cannot_mint_a_token() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    let mint = |cred: &Cred, site: Option<&str>| {
        let mut req = app.raw(Method::GET, "/api/token", cred);
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        send(req)
    };
    // A link or redirect on another site navigates the browser here, with the cookie.
    for site in ["cross-site", "Cross-Site", "same-site"] {
        let reply = mint(&session, Some(site)).await;
        reply.assert_problem(403, "cross_site_request");
        assert!(reply.body.get("token").is_none(), "{}", reply.body);
    }
    // Our own pages, the address bar and non-browser clients still mint.
    let mut token = String::new();
    for site in [Some("same-origin"), Some("none"), None] {
        let reply = mint(&session, site).await;
        let body = reply.assert_status(200);
        assert!(body["token"].is_string(), "{site:?}: {body}");
        token = body["token"].as_str().unwrap().to_owned();
    }
    // A token is never sent by a browser on its own: a token mint is not a forgery.
    let reply = mint(&Cred::Token(token), Some("cross-site")).await;
    assert!(reply.assert_status(200)["token"].is_string());
}
