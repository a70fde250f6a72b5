//! The decision API: batches, on-behalf-of questions, and its own guard.

use serde_json::{Value, json};

use crate::helpers::{Cred, World};

fn item(action: &str, kind: &str, id: impl ToString) -> Value {
    json!({"action": action, "resource": {"type": kind, "id": id.to_string()}})
}

#[tokio::test]
async fn a_member_asks_a_batch_and_gets_decisions_with_their_reasons() {
    let world = World::new().await;
    let bob = Cred::Token(world.token_of("bob").await);
    let flow = uuid::Uuid::new_v4();
    // A flow of the tenant is decided on its attributes: Bob owns this one.
    let own = world.flow(world.acme, &bob, "bob's").await;
    let reply = world
        .app
        .post(
            &format!("/api/tenants/{}/authorize", world.acme),
            &bob,
            json!({"items": [
                item("ReadFlow", "Flow", flow),
                item("DeleteFlow", "Flow", flow),
                item("SetMemberRole", "Member", world.carol),
                item("ListFlows", "Tenant", world.globex),
                item("CreateFlow", "Tenant", world.acme),
                item("DeleteFlow", "Flow", &own),
            ]}),
        )
        .await;
    let body = reply.assert_status(200);
    assert_eq!(body["principal"], world.bob.to_string());
    assert_eq!(body["role"], "Editor");
    assert!(body["policy_version"].is_string());
    let results = body["results"].as_array().unwrap();
    let summary: Vec<(Value, Value)> = results
        .iter()
        .map(|r| (r["decision"].clone(), r["reasons"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            // A flow that is not there is a Deny without reasons, as one Bob may not read.
            (json!("Deny"), json!([])),
            (json!("Deny"), json!([])),
            (json!("Deny"), json!([])),
            (json!("Deny"), json!(["tenant-boundary"])),
            (json!("Allow"), json!(["editors-create-flows"])),
            (json!("Allow"), json!(["editors-write-own-or-shared-flows"])),
        ]
    );
    assert_eq!(results[0]["action"], "ReadFlow");
    assert_eq!(
        results[0]["resource"],
        json!({"type": "Flow", "id": flow.to_string()})
    );
    assert!(results.iter().all(|r| r["errors"] == json!([])));
}

#[tokio::test]
async fn an_admin_asks_why_a_member_cannot_act_and_others_may_not_ask_for_someone() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let carol = Cred::Token(world.token_of("carol").await);
    let path = format!("/api/tenants/{}/authorize", world.acme);
    let flow = world.flow(world.acme, &alice, "alice's").await;
    let question = json!({
        "principal": world.carol.to_string(),
        "items": [item("DeleteFlow", "Flow", &flow), item("ReadFlow", "Flow", &flow)]
    });
    let reply = app.post(&path, &alice, question).await;
    let body = reply.assert_status(200);
    assert_eq!(body["principal"], world.carol.to_string());
    assert_eq!(body["role"], "Viewer");
    assert_eq!(body["results"][0]["decision"], "Deny");
    assert_eq!(body["results"][1]["decision"], "Allow");

    // A Viewer may ask for itself, not for others.
    let for_bob =
        json!({"principal": world.bob.to_string(), "items": [item("ReadFlow", "Flow", &flow)]});
    app.post(&path, &carol, for_bob)
        .await
        .assert_problem(403, "forbidden");
    let for_self =
        json!({"principal": world.carol.to_string(), "items": [item("ReadFlow", "Flow", &flow)]});
    app.post(&path, &carol, for_self).await.assert_status(200);

    // Asking about a non-member: role null, everything denied.
    let outsider =
        json!({"principal": world.dave.to_string(), "items": [item("ReadFlow", "Flow", &flow)]});
    let reply = app.post(&path, &alice, outsider).await;
    assert_eq!(reply.assert_status(200)["role"], Value::Null);
    assert_eq!(reply.body["results"][0]["decision"], "Deny");
}

#[tokio::test]
async fn non_members_get_403_and_bad_batches_name_the_item() {
    let world = World::new().await;
    let app = &world.app;
    let dave = Cred::Token(world.token_of("dave").await);
    let alice = Cred::Token(world.token_of("alice").await);
    let path = format!("/api/tenants/{}/authorize", world.acme);
    let flow = uuid::Uuid::new_v4();
    app.post(
        &path,
        &dave,
        json!({"items": [item("ReadFlow", "Flow", flow)]}),
    )
    .await
    .assert_problem(403, "forbidden");

    let unknown_action = app
        .post(
            &path,
            &alice,
            json!({"items": [item("ReadFlow", "Flow", flow), item("Launch", "Flow", flow)]}),
        )
        .await;
    unknown_action.assert_problem(422, "validation_failed");
    assert_eq!(
        unknown_action.body["detail"],
        "items[1].action: `Launch` is not an action of the policy schema"
    );
    let bad_id = app
        .post(
            &path,
            &alice,
            json!({"items": [item("ReadFlow", "Flow", "nope")]}),
        )
        .await;
    bad_id.assert_problem(422, "validation_failed");
    assert_eq!(
        bad_id.body["detail"],
        "items[0].resource.id: must be a UUID"
    );

    let too_many: Vec<Value> = (0..101).map(|_| item("ReadFlow", "Flow", flow)).collect();
    let reply = app.post(&path, &alice, json!({"items": too_many})).await;
    reply.assert_problem(400, "bad_request");
    assert_eq!(reply.body["detail"], "items: must have at most 100 items");
    let limit: Vec<Value> = (0..100).map(|_| item("ReadFlow", "Flow", flow)).collect();
    let reply = app.post(&path, &alice, json!({"items": limit})).await;
    assert_eq!(
        reply.assert_status(200)["results"]
            .as_array()
            .unwrap()
            .len(),
        100
    );
    let cases = [
        (json!({"items": []}), "items: must have at least 1 item"),
        (
            json!({"items": [{"action": "ReadFlow", "resource": {"type": "Planet", "id": flow.to_string()}}]}),
            "items[0].resource.type: must be one of Tenant, Flow, Member",
        ),
        (
            json!({"principal": "me", "items": [item("ReadFlow", "Flow", flow)]}),
            "principal: must be a UUID",
        ),
        (
            json!({"items": [{"action": "ReadFlow"}]}),
            "items[0].resource: is required",
        ),
        (json!({"items": "all"}), "items: must be an array"),
    ];
    for (body, detail) in cases {
        let reply = app.post(&path, &alice, body).await;
        reply.assert_problem(400, "bad_request");
        assert_eq!(reply.body["detail"], detail);
    }
}
