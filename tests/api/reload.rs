//! Policies are a security team's product: hot reload, custom roles, the decision log.

use serde_json::{Value, json};

use crate::helpers::{Cred, World, copy_policies, eventually, spawn_with, test_settings};

const VIEWERS_CREATE: &str = r#"// Viewers may create flows too.
@id("viewers-create-flows")
permit (
  principal in Zygo::Role::"Viewer",
  action == Zygo::Action::"CreateFlow",
  resource
);
"#;

/// The health check as a caller sees it (with the reload details when the server shows them).
async fn health(world: &World, cred: &Cred) -> Value {
    world.app.get("/healthz", cred).await.body
}

#[tokio::test]
async fn an_edit_applies_while_serving_and_a_broken_edit_keeps_the_last_good_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.policies_dir = copy_policies(dir.path());
    // The operator chose to see reload diagnostics in /healthz.
    settings.health_details = true;
    let policies = settings.policies_dir.clone();
    let world = World::on(spawn_with(settings, tempfile::tempdir().unwrap()).await).await;
    let carol = Cred::Token(world.token_of("carol").await);
    let admin = Cred::Token(world.token_of("alice").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    world
        .app
        .post(&flows, &carol, json!({"name": "before"}))
        .await
        .assert_problem(403, "forbidden");
    let first = health(&world, &admin).await["policy"].clone();
    let shipped = world.app.state.authz.policy_status().policies;
    assert_eq!(first["policies"], shipped);
    assert_eq!(first["last_reload_error"], Value::Null);

    std::fs::write(policies.join("viewer-writes.cedar"), VIEWERS_CREATE).unwrap();
    let reloaded = eventually(5, || async {
        health(&world, &admin).await["policy"]["version"] != first["version"]
    })
    .await;
    assert!(reloaded, "the edit was not picked up within 5 s");
    let second = health(&world, &admin).await["policy"].clone();
    assert_eq!(second["policies"], shipped + 1);
    let created = world
        .app
        .post(&flows, &carol, json!({"name": "after"}))
        .await;
    assert_eq!(created.assert_status(201)["name"], "after");

    // A broken file: the set in force stays, the error is reported with its location.
    std::fs::write(
        policies.join("broken.cedar"),
        "@id(\"oops\")\npermit (principal, action, resource) when { principal.nope };\n",
    )
    .unwrap();
    let reported = eventually(5, || async {
        health(&world, &admin).await["policy"]["last_reload_error"].is_string()
    })
    .await;
    assert!(reported, "the rejected edit was not reported within 5 s");
    let third = health(&world, &admin).await["policy"].clone();
    assert_eq!(
        third["version"], second["version"],
        "the last good set stays"
    );
    assert_eq!(third["loaded_at"], second["loaded_at"]);
    let error = third["last_reload_error"].as_str().unwrap();
    assert!(error.contains("broken.cedar:2:45"), "{error}");
    assert!(error.contains("attribute `nope`"), "{error}");
    assert_eq!(third["last_reload_rejected"], true);
    assert_eq!(health(&world, &admin).await["status"], "degraded");
    world
        .app
        .post(&flows, &carol, json!({"name": "still allowed"}))
        .await
        .assert_status(201);

    // Removing the grant takes it away again.
    std::fs::remove_file(policies.join("broken.cedar")).unwrap();
    std::fs::remove_file(policies.join("viewer-writes.cedar")).unwrap();
    let back = eventually(5, || async {
        health(&world, &admin).await["policy"]["version"] == first["version"]
    })
    .await;
    assert!(back);
    assert_eq!(
        health(&world, &admin).await["policy"]["last_reload_error"],
        Value::Null
    );
    world
        .app
        .post(&flows, &carol, json!({"name": "refused"}))
        .await
        .assert_problem(403, "forbidden");
}

const AUDITOR_ROLE: &str = r#"[
  { "uid": { "type": "Zygo::Role", "id": "Viewer" }, "attrs": {}, "parents": [] },
  { "uid": { "type": "Zygo::Role", "id": "Editor" }, "attrs": {}, "parents": [{ "type": "Zygo::Role", "id": "Viewer" }] },
  { "uid": { "type": "Zygo::Role", "id": "Admin" }, "attrs": {}, "parents": [{ "type": "Zygo::Role", "id": "Editor" }] },
  { "uid": { "type": "Zygo::Role", "id": "Auditor" }, "attrs": {}, "parents": [] }
]
"#;

const AUDITOR_POLICY: &str = r#"// Auditors read flows and members, nothing else (selecting the tenant lets them use a session).
@id("auditors-read")
permit (
  principal in Zygo::Role::"Auditor",
  action in
    [Zygo::Action::"SelectTenant",
     Zygo::Action::"ListFlows",
     Zygo::Action::"ReadFlow",
     Zygo::Action::"ListMembers"],
  resource
);
"#;

#[tokio::test]
async fn a_security_team_adds_an_auditor_role_by_editing_policy_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.policies_dir = copy_policies(dir.path());
    let policies = settings.policies_dir.clone();
    let world = World::on(spawn_with(settings, tempfile::tempdir().unwrap()).await).await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave_member = format!("/api/tenants/{}/members/{}", world.acme, world.dave);

    let refused = app
        .put(&dave_member, &alice, json!({"role": "Auditor"}))
        .await;
    refused.assert_problem(422, "validation_failed");
    assert_eq!(
        refused.body["detail"],
        "role: `Auditor` is not a role defined by the policies (defined: Admin, Editor, Viewer)"
    );
    let role_enum = || async {
        let spec = app.get("/openapi.json", &Cred::None).await.body;
        spec["components"]["schemas"]["RoleRequest"]["properties"]["role"]["enum"].clone()
    };
    assert_eq!(role_enum().await, json!(["Admin", "Editor", "Viewer"]));

    std::fs::write(policies.join("roles.cedarentities.json"), AUDITOR_ROLE).unwrap();
    std::fs::write(policies.join("auditors.cedar"), AUDITOR_POLICY).unwrap();
    let accepted = eventually(5, || async {
        app.put(&dave_member, &alice, json!({"role": "Auditor"}))
            .await
            .status
            == 202
    })
    .await;
    assert!(accepted, "the Auditor role was not accepted within 5 s");
    // The served document (and so generated clients and Swagger UI) lists the new role.
    assert_eq!(
        role_enum().await,
        json!(["Admin", "Auditor", "Editor", "Viewer"])
    );

    let dave = Cred::Token(world.token_of("dave").await);
    app.post(
        &format!("/api/invitations/{}/accept", world.acme),
        &dave,
        json!({}),
    )
    .await
    .assert_status(200);
    let flow = world.flow(world.acme, &alice, "audited").await;
    let base = format!("/api/tenants/{}", world.acme);
    app.get(&format!("{base}/flows"), &dave)
        .await
        .assert_status(200);
    let read = app.get(&format!("{base}/flows/{flow}"), &dave).await;
    assert_eq!(read.assert_status(200)["name"], "audited");
    let members = app.get(&format!("{base}/members"), &dave).await;
    assert_eq!(
        members.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    app.get(&base, &dave).await.assert_problem(403, "forbidden");
    app.post(&format!("{base}/flows"), &dave, json!({"name": "x"}))
        .await
        .assert_problem(403, "forbidden");
    app.delete(&format!("{base}/flows/{flow}"), &dave)
        .await
        .assert_problem(403, "forbidden");
    app.put(
        &format!("{base}/members/{}", world.carol),
        &dave,
        json!({"role": "Admin"}),
    )
    .await
    .assert_problem(403, "forbidden");
    // A user who is only an Auditor starts its browser session in that tenant and works there.
    let audrey = app
        .add_user("audrey@example.com", crate::helpers::PASSWORD)
        .await;
    app.put(
        &format!("{base}/members/{audrey}"),
        &alice,
        json!({"role": "Auditor"}),
    )
    .await
    .assert_status(202);
    let (invitee, _) = app
        .login("audrey@example.com", crate::helpers::PASSWORD)
        .await;
    app.post(
        &format!("/api/invitations/{}/accept", world.acme),
        &Cred::Cookie(invitee),
        json!({}),
    )
    .await
    .assert_status(200);
    let (cookie, body) = app
        .login("audrey@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(body["current_tenant_id"], world.acme.to_string());
    let session = Cred::Cookie(cookie);
    app.get(&format!("{base}/flows"), &session)
        .await
        .assert_status(200);
    app.post(&format!("/session/{}", world.acme), &session, json!({}))
        .await
        .assert_status(200);
    let me = app.get("/api/me", &dave).await;
    let roles: Vec<_> = me.body["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert!(roles.contains(&json!("Auditor")), "{}", me.body);
}

#[tokio::test]
async fn every_decision_is_logged_as_one_json_line_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("decisions.jsonl");
    let mut settings = test_settings(dir.path());
    settings.decision_log = zygo::authz::LogTarget::File(log_path.clone());
    let world = World::on(spawn_with(settings, tempfile::tempdir().unwrap()).await).await;
    let token = world.token_of("carol").await;
    let reply = world
        .app
        .client
        .get(format!(
            "{}/api/tenants/{}/flows",
            world.app.address, world.acme
        ))
        .header("token", &token)
        .header("x-request-id", "audit-trail-42")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["x-request-id"], "audit-trail-42");
    // A Viewer may read Alice's flow but not delete it: a Deny.
    let alice = Cred::Token(world.token_of("alice").await);
    let flow = world.flow(world.acme, &alice, "kept").await;
    world
        .app
        .delete(
            &format!("/api/tenants/{}/flows/{flow}", world.acme),
            &Cred::Token(token.clone()),
        )
        .await
        .assert_problem(403, "forbidden");

    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let allowed = lines
        .iter()
        .find(|l| l["request_id"] == "audit-trail-42")
        .expect("the request's decision is logged");
    assert_eq!(allowed["principal"], world.carol.to_string());
    assert_eq!(allowed["tenant"], world.acme.to_string());
    assert_eq!(allowed["action"], "ListFlows");
    assert_eq!(allowed["resource"], format!("Tenant:{}", world.acme));
    assert_eq!(allowed["decision"], "Allow");
    assert_eq!(allowed["role"], "Viewer");
    assert_eq!(allowed["policies"], json!(["viewers-read-flows"]));
    assert!(allowed["duration_us"].is_u64());
    assert!(allowed["time"].is_string());
    let denied = lines
        .iter()
        .find(|l| l["action"] == "DeleteFlow")
        .expect("a Deny is logged too");
    assert_eq!(denied["decision"], "Deny");
    assert_eq!(denied["policies"], json!([]));
    assert!(!text.contains(&token), "a token reached the decision log");
    assert!(!text.contains(crate::helpers::PASSWORD));
}

#[tokio::test]
async fn a_policy_may_grant_an_action_group_declared_in_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.policies_dir = copy_policies(dir.path());
    let schema_path = settings.policies_dir.join("schema.cedarschema");
    let schema = std::fs::read_to_string(&schema_path).unwrap();
    let grouped = schema.replace(
        "  action CreateFlow appliesTo",
        "  action Writes;\n  action CreateFlow in [Writes] appliesTo",
    );
    assert_ne!(grouped, schema, "the schema declares CreateFlow");
    std::fs::write(&schema_path, grouped).unwrap();
    std::fs::write(
        settings.policies_dir.join("groups.cedar"),
        "// Viewers may do what the Writes group holds.\n@id(\"viewers-writes\")\n\
         permit (\n  principal in Zygo::Role::\"Viewer\",\n  action in Zygo::Action::\"Writes\",\n  resource\n);\n",
    )
    .unwrap();
    let world = World::on(spawn_with(settings, tempfile::tempdir().unwrap()).await).await;
    let carol = Cred::Token(world.token_of("carol").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    let created = world
        .app
        .post(&flows, &carol, json!({"name": "by a group"}))
        .await;
    assert_eq!(created.assert_status(201)["name"], "by a group");
    // Only the grouped action: deleting stays refused.
    let id = created.body["id"].as_str().unwrap().to_owned();
    world
        .app
        .delete(&format!("{flows}/{id}"), &carol)
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn a_rejected_edits_paths_and_policy_text_are_shown_to_nobody_unless_the_operator_turns_them_on()
 {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.policies_dir = copy_policies(dir.path());
    let policies = settings.policies_dir.clone();
    let world = World::on(spawn_with(settings, tempfile::tempdir().unwrap()).await).await;
    let admin = Cred::Token(world.token_of("alice").await);
    let viewer = Cred::Token(world.token_of("carol").await);
    let version = health(&world, &Cred::None).await["policy"]["version"].clone();
    assert_eq!(
        health(&world, &admin).await,
        json!({"status": "ok", "policy": {"version": version, "last_reload_rejected": false}})
    );
    std::fs::write(
        policies.join("broken.cedar"),
        "@id(\"secret-rule\")\npermit (principal, action, resource) when { principal.nope };\n",
    )
    .unwrap();
    let rejected = eventually(5, || async {
        health(&world, &Cred::None).await["status"] == "degraded"
    })
    .await;
    assert!(rejected, "the rejected edit was not noticed within 5 s");
    // Anonymous callers, members and a tenant's Admin alike: degraded and rejected, no details.
    for cred in [Cred::None, viewer, admin] {
        let reply = world.app.get("/healthz", &cred).await;
        assert_eq!(
            reply.assert_status(200),
            &json!({"status": "degraded", "policy": {"version": version, "last_reload_rejected": true}}),
            "{cred:?}"
        );
        let text = reply.body.to_string();
        assert!(
            !text.contains("broken.cedar") && !text.contains("secret-rule"),
            "{text}"
        );
    }
}

/// The version a policy folder loads as.
fn version_of(dir: &std::path::Path) -> String {
    zygo::authz::PolicyBundle::load(dir)
        .unwrap()
        .version()
        .to_owned()
}

#[tokio::test]
async fn a_policy_folder_caught_half_written_is_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.policies_dir = copy_policies(dir.path());
    settings.policy_settle = std::time::Duration::from_millis(1500);
    let policies = settings.policies_dir.clone();
    let initial = version_of(&policies);
    // The edit: a new policy file, and a second one that completes it. The first alone is a
    // valid set too, the half-written state a reload could catch.
    let partial = copy_policies(&dir.path().join("partial"));
    std::fs::write(partial.join("viewer-writes.cedar"), VIEWERS_CREATE).unwrap();
    let partial_version = version_of(&partial);
    let second = VIEWERS_CREATE
        .replace("viewers-create-flows", "viewers-update-flows")
        .replace("CreateFlow", "UpdateFlow");
    std::fs::write(partial.join("viewer-updates.cedar"), &second).unwrap();
    let final_version = version_of(&partial);
    assert!(initial != partial_version && partial_version != final_version);

    let app = spawn_with(settings, tempfile::tempdir().unwrap()).await;
    let version = || async {
        app.get("/healthz", &Cred::None).await.body["policy"]["version"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(version().await, initial);
    // Watch the version every 50 ms while the edit is written in two steps, 800 ms apart
    // (longer than the watch's polling interval, shorter than the settle time).
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let watching = {
        let (seen, address) = (seen.clone(), app.address.clone());
        tokio::spawn(async move {
            for _ in 0..100 {
                let body: Value = reqwest::get(format!("{address}/healthz"))
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let v = body["policy"]["version"].as_str().unwrap().to_owned();
                seen.lock().unwrap().push(v);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
    };
    std::fs::write(policies.join("viewer-writes.cedar"), VIEWERS_CREATE).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    std::fs::write(policies.join("viewer-updates.cedar"), &second).unwrap();
    watching.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.contains(&partial_version),
        "the half-written folder was loaded: {seen:?}"
    );
    assert!(
        seen.iter().all(|v| *v == initial || *v == final_version),
        "{seen:?}"
    );
    assert_eq!(
        version().await,
        final_version,
        "the complete edit is loaded"
    );
}
