//! The committed OpenAPI document is the served one, byte for byte.

use crate::helpers::{Cred, spawn_app};

#[tokio::test]
async fn the_committed_openapi_document_matches_the_served_one() {
    let app = spawn_app().await;
    let served = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json"),
    )
    .unwrap();
    assert!(
        served == committed,
        "openapi/openapi.json is stale: refresh it with `cargo run -- openapi > openapi/openapi.json`"
    );
    assert_eq!(served, zygo::api::spec_json());
}

#[tokio::test]
async fn the_document_declares_the_three_ways_in_and_every_error_status() {
    let spec: serde_json::Value = serde_json::from_str(&zygo::api::spec_json()).unwrap();
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["TokenHeader"]["in"], "header");
    assert_eq!(schemes["TokenHeader"]["name"], "token");
    assert_eq!(schemes["Bearer"]["scheme"], "bearer");
    assert_eq!(schemes["SessionCookie"]["in"], "cookie");
    assert_eq!(schemes["SessionCookie"]["name"], "session");
    let flow = &spec["paths"]["/api/tenants/{tenant_id}/flows/{flow_id}"]["get"];
    assert_eq!(flow["operationId"], "getFlow");
    for status in ["200", "400", "401", "403", "404", "500", "503"] {
        assert!(
            flow["responses"][status].is_object(),
            "getFlow lacks {status}"
        );
    }
    assert!(
        flow["responses"]["404"]["content"]["application/problem+json"].is_object(),
        "errors are problem+json"
    );
    assert_eq!(flow["security"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn swagger_ui_is_served_at_docs() {
    let app = spawn_app().await;
    let reply = app
        .client
        .get(format!("{}/docs", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let html = reply.text().await.unwrap();
    assert!(html.contains("swagger-ui") && html.contains("/api/login"));
    let health = app.get("/healthz", &Cred::None).await;
    let body = health.assert_status(200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["policy"]["policies"], 8);
}
