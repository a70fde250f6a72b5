//! The web console at `/`: the page and its assets are served from the binary with the right
//! content types and a strict Content-Security-Policy, and the page loads nothing else.
//! (It is driven in a real browser by `tests/clients/browser/console.mjs`.)

use crate::helpers::{Cred, spawn_app};

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_their_content_types_and_a_strict_policy() {
    let app = spawn_app().await;
    for (path, content_type, marker) in [
        (
            "/",
            "text/html; charset=utf-8",
            "<title>Zygo console</title>",
        ),
        (
            "/console/console.js",
            "text/javascript; charset=utf-8",
            "\"/api/login\"",
        ),
        (
            "/console/audit.js",
            "text/javascript; charset=utf-8",
            "/api/me/audit",
        ),
        ("/console/console.css", "text/css; charset=utf-8", ":root"),
    ] {
        let reply = app
            .raw(reqwest::Method::GET, path, &Cred::None)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "{path}");
        let headers = reply.headers().clone();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-type"), content_type, "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}");
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        let body = reply.text().await.unwrap();
        assert!(body.contains(marker), "{path}: {body}");
    }
}

#[tokio::test]
async fn the_page_loads_only_its_own_scripts_and_style_sheet_and_has_no_inline_code() {
    let app = spawn_app().await;
    let page = app.get("/", &Cred::None).await;
    let html = page.body.as_str().unwrap();
    // The audit pages' script only declares; console.js, after it, starts the page.
    assert!(html.contains(
        "<script src=\"/console/audit.js\" defer></script>\n  \
         <script src=\"/console/console.js\" defer></script>"
    ));
    assert!(html.contains(r#"<link rel="stylesheet" href="/console/console.css">"#));
    assert_eq!(
        html.matches("<script").count(),
        2,
        "its two scripts, no inline one"
    );
    assert!(!html.contains("<style"), "no inline style sheet");
    assert!(!html.contains(" style=") && !html.contains(" onclick="));
    assert!(!html.contains("http://") && !html.contains("https://"));
}

#[tokio::test]
async fn the_console_keeps_tokens_out_of_storage_and_urls() {
    let app = spawn_app().await;
    let js = app.get("/console/console.js", &Cred::None).await;
    let js = js.body.as_str().unwrap();
    for forbidden in [
        "localStorage",
        "sessionStorage",
        "document.cookie",
        "innerHTML",
    ] {
        assert!(!js.contains(forbidden), "console.js uses {forbidden}");
    }
    // The token header in the ready curl line; the API is addressed by path only.
    assert!(js.contains("token: ${minted.token}"));
}

#[tokio::test]
async fn the_audit_pages_set_event_data_as_text_only_and_list_through_the_audit_api() {
    let app = spawn_app().await;
    let page = app.get("/", &Cred::None).await;
    let html = page.body.as_str().unwrap();
    assert!(
        html.contains(r#"data-page="audit">Audit</button>"#),
        "{html}"
    );
    assert!(html.contains(r#"data-page="my-audit">My security events</button>"#));
    let js = app.get("/console/audit.js", &Cred::None).await;
    let js = js.body.as_str().unwrap();
    for forbidden in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "localStorage",
        "sessionStorage",
        "document.cookie",
    ] {
        assert!(!js.contains(forbidden), "audit.js uses {forbidden}");
    }
    for used in [
        "/audit`",
        "\"/api/me/audit\"",
        "next_cursor",
        "text: event.action",
    ] {
        assert!(js.contains(used), "audit.js lacks {used}");
    }
}

#[tokio::test]
async fn the_console_is_not_in_the_api_document_and_other_methods_are_not_served() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json", &Cred::None).await;
    let paths = doc.body["paths"].as_object().unwrap();
    assert!(!paths.contains_key("/") && !paths.contains_key("/metrics"));
    app.post("/", &Cred::None, serde_json::json!({}))
        .await
        .assert_problem(404, "not_found");
    app.get("/console/missing.js", &Cred::None)
        .await
        .assert_problem(404, "not_found");
}
