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
    assert_eq!(served, document());
}

/// The document of a server with the repository's policies and the default settings.
fn document() -> String {
    let bundle = zygo::authz::PolicyBundle::load(&crate::helpers::policies_dir()).unwrap();
    zygo::api::spec_json(bundle.roles(), zygo::config::DEFAULT_MAX_TOKEN_SECONDS)
}

#[tokio::test]
async fn the_document_declares_the_three_ways_in_and_every_error_status() {
    let spec: serde_json::Value = serde_json::from_str(&document()).unwrap();
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["TokenHeader"]["in"], "header");
    assert_eq!(schemes["TokenHeader"]["name"], "token");
    assert_eq!(schemes["Bearer"]["scheme"], "bearer");
    assert_eq!(schemes["SessionCookie"]["in"], "cookie");
    assert_eq!(schemes["SessionCookie"]["name"], "session");
    let flow = &spec["paths"]["/api/tenants/{tenant_id}/flows/{flow_id}"]["get"];
    assert_eq!(flow["operationId"], "getFlow");
    let statuses: Vec<&str> = flow["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        statuses,
        ["200", "400", "401", "403", "404", "500", "503"],
        "getFlow declares exactly what it can answer"
    );
    assert!(
        flow["responses"]["404"]["content"]["application/problem+json"].is_object(),
        "errors are problem+json"
    );
    assert_eq!(flow["security"].as_array().unwrap().len(), 3);
}

/// The headers every answer carries are declared on every response, so generated clients can
/// read them: the request id always, the deciding policy version when the policies decided.
#[tokio::test]
async fn every_response_declares_the_request_id_and_policy_version_headers() {
    let spec: serde_json::Value = serde_json::from_str(&document()).unwrap();
    let mut responses = 0;
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let headers = &response["headers"];
                assert_eq!(
                    headers["X-REQUEST-ID"]["required"], true,
                    "{method} {path} {status}"
                );
                assert_eq!(
                    headers["ZYGO-POLICY-VERSION"]["required"], false,
                    "{method} {path} {status}"
                );
                responses += 1;
            }
        }
    }
    assert!(responses > 100, "{responses} responses");
    // And the answers do carry them.
    let world = crate::helpers::World::new().await;
    let alice = Cred::Token(world.token_of("alice").await);
    let flows = world
        .app
        .get(&format!("/api/tenants/{}/flows", world.acme), &alice)
        .await;
    flows.assert_status(200);
    assert!(!flows.headers["x-request-id"].is_empty());
    assert!(!flows.headers["zygo-policy-version"].is_empty());
    let health = world.app.get("/healthz", &Cred::None).await;
    assert!(!health.headers["x-request-id"].is_empty());
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
    // Swagger UI shows the served document (with the role enum), not the bare generated one.
    assert!(
        html.contains(document().trim_end()),
        "Swagger UI embeds the served document"
    );
    let health = app.get("/healthz", &Cred::None).await;
    let body = health.assert_status(200);
    assert_eq!(body["status"], "ok");
    // The status, the policy version and whether the last edit was rejected, nothing more.
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    assert_eq!(body["policy"].as_object().unwrap().len(), 2, "{body}");
    assert!(body["policy"]["version"].is_string());
    assert_eq!(body["policy"]["last_reload_rejected"], false);
}

#[tokio::test]
async fn swagger_ui_and_the_document_refuse_to_be_framed() {
    let app = spawn_app().await;
    for path in ["/docs", "/docs/", "/openapi.json"] {
        let reply = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "{path}");
        let header = |name: &str| {
            reply
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(
            header("content-security-policy").as_deref(),
            Some("frame-ancestors 'none'"),
            "{path}"
        );
        let body = reply.text().await.unwrap();
        assert!(body.contains("/api/login"), "{path}: still served whole");
    }
}

#[test]
fn every_operation_is_documented_for_client_generators() {
    let spec: serde_json::Value = serde_json::from_str(&document()).unwrap();
    let schemas = &spec["components"]["schemas"];
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, op) in operations.as_object().unwrap() {
            let at = format!("{method} {path}");
            for field in ["summary", "description", "operationId"] {
                assert!(
                    op[field].as_str().is_some_and(|s| !s.is_empty()),
                    "{at}: {field}"
                );
            }
            assert_eq!(op["tags"].as_array().unwrap().len(), 1, "{at}: tags");
            let public = ["/api/login", "/healthz"].contains(&path.as_str());
            assert_eq!(op["security"].is_array(), !public, "{at}: security");
            let responses = op["responses"].as_object().unwrap();
            // Logging in can fail with 401 too; only the health check cannot.
            assert_eq!(
                responses.contains_key("401"),
                path != "/healthz",
                "{at}: 401"
            );
            for (status, response) in responses {
                if status.starts_with('2') {
                    continue;
                }
                let content = response["content"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{at}: {status} has no content"));
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{at}: {status}"
                );
            }
            // Request and response bodies come with an example.
            let bodies = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .into_iter()
                .chain(responses.values().filter_map(|r| {
                    let schema = &r["content"]["application/json"]["schema"];
                    schema["$ref"].as_str().or(schema["items"]["$ref"].as_str())
                }));
            for reference in bodies {
                let name = reference.trim_start_matches("#/components/schemas/");
                assert!(schemas[name]["example"].is_object(), "{at}: {name} example");
            }
        }
    }
}

#[test]
fn the_document_carries_the_constraints_clients_validate_with() {
    let spec: serde_json::Value = serde_json::from_str(&document()).unwrap();
    let schemas = &spec["components"]["schemas"];
    assert_eq!(
        schemas["RoleRequest"]["properties"]["role"]["enum"],
        serde_json::json!(["Admin", "Editor", "Viewer"])
    );
    let expiration = &spec["paths"]["/api/token"]["get"]["parameters"][0];
    assert_eq!(expiration["name"], "expiration");
    assert_eq!(expiration["schema"]["minimum"], 1.0);
    assert_eq!(expiration["schema"]["maximum"], 2_592_000);
    for schema in ["NewTenant", "FlowInput", "FlowPatch"] {
        let name = &schemas[schema]["properties"]["name"];
        assert_eq!(name["minLength"], 1, "{schema}");
        assert_eq!(name["maxLength"], 200, "{schema}");
        assert!(name["pattern"].is_string(), "{schema}");
    }
    assert_eq!(
        schemas["Me"]["properties"]["current_tenant_id"]["nullable"],
        true
    );
    let set_role = &spec["paths"]["/api/tenants/{tenant_id}/members/{user_id}"]["put"];
    for status in ["404", "409", "422"] {
        assert!(
            set_role["responses"][status].is_object(),
            "setMemberRole {status}"
        );
    }
    let list = &spec["paths"]["/api/tenants/{tenant_id}/flows"]["get"];
    for status in ["404", "409", "422"] {
        assert!(
            list["responses"][status].is_null(),
            "listFlows cannot answer {status}"
        );
    }
}

#[tokio::test]
async fn a_method_a_route_lacks_is_a_405_that_lists_the_allowed_ones() {
    let app = spawn_app().await;
    let reply = app
        .client
        .request(
            reqwest::Method::from_bytes(b"TRACE").unwrap(),
            format!("{}/api/tenants/{}/flows", app.address, uuid::Uuid::new_v4()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 405);
    assert_eq!(reply.headers()["allow"], "GET, POST");
    assert_eq!(reply.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed");
    assert_eq!(body["status"], 405);
}
