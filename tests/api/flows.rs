//! Flows: create, list, read, replace, update, delete, with the rights of each role.

use serde_json::{Value, json};

use crate::helpers::{Cred, World};

#[tokio::test]
async fn an_editor_walks_a_flow_through_its_life() {
    let world = World::new().await;
    let app = &world.app;
    let bob = Cred::Token(world.token_of("bob").await);
    let base = format!("/api/tenants/{}/flows", world.acme);

    let created = app
        .post(
            &base,
            &bob,
            json!({"name": "Deploy", "definition": {"b": 1, "a": [true, null]},
                   "id": "00000000-0000-0000-0000-000000000001", "tenant_id": world.globex.to_string()}),
        )
        .await;
    let flow = created.assert_status(201).clone();
    let id = flow["id"].as_str().unwrap().to_owned();
    assert_ne!(
        id, "00000000-0000-0000-0000-000000000001",
        "client ids are ignored"
    );
    assert_eq!(flow["name"], "Deploy");
    assert_eq!(flow["definition"], json!({"b": 1, "a": [true, null]}));
    assert_eq!(flow["created_at"], flow["updated_at"]);
    assert_eq!(flow["owner"], world.bob.to_string(), "the creator owns it");
    assert_eq!(flow["labels"], json!([]));
    assert_eq!(flow.as_object().unwrap().len(), 7, "{flow}");

    // Definition defaults to {}.
    let bare = app.post(&base, &bob, json!({"name": "Bare"})).await;
    assert_eq!(bare.assert_status(201)["definition"], json!({}));

    let list = app.get(&base, &bob).await;
    let names: Vec<_> = list.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("Deploy"), json!("Bare")]);

    let one = app.get(&format!("{base}/{id}"), &bob).await;
    assert_eq!(one.assert_status(200), &flow);

    let patched = app
        .patch(&format!("{base}/{id}"), &bob, json!({"name": "Deploy v2"}))
        .await;
    let patched = patched.assert_status(200).clone();
    assert_eq!(patched["name"], "Deploy v2");
    assert_eq!(
        patched["definition"], flow["definition"],
        "PATCH keeps what is not sent"
    );

    let unchanged = app.patch(&format!("{base}/{id}"), &bob, json!({})).await;
    assert_eq!(
        unchanged.assert_status(200),
        &patched,
        "an empty PATCH changes nothing"
    );

    let replaced = app
        .put(&format!("{base}/{id}"), &bob, json!({"name": "Deploy v3"}))
        .await;
    let replaced = replaced.assert_status(200).clone();
    assert_eq!(
        replaced["definition"],
        json!({}),
        "PUT replaces the whole flow"
    );
    assert_eq!(replaced["created_at"], flow["created_at"]);

    let deleted = app.delete(&format!("{base}/{id}"), &bob).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null);
    app.get(&format!("{base}/{id}"), &bob)
        .await
        .assert_problem(404, "not_found");
    app.delete(&format!("{base}/{id}"), &bob)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_write() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let carol = Cred::Token(world.token_of("carol").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let id = world.flow(world.acme, &alice, "Readable").await;

    app.get(&base, &carol).await.assert_status(200);
    assert_eq!(
        app.get(&format!("{base}/{id}"), &carol)
            .await
            .assert_status(200)["name"],
        "Readable"
    );
    app.post(&base, &carol, json!({"name": "x"}))
        .await
        .assert_problem(403, "forbidden");
    app.put(&format!("{base}/{id}"), &carol, json!({"name": "x"}))
        .await
        .assert_problem(403, "forbidden");
    app.patch(&format!("{base}/{id}"), &carol, json!({"name": "x"}))
        .await
        .assert_problem(403, "forbidden");
    app.delete(&format!("{base}/{id}"), &carol)
        .await
        .assert_problem(403, "forbidden");
    let kept = app.get(&format!("{base}/{id}"), &alice).await;
    assert_eq!(
        kept.assert_status(200)["name"],
        "Readable",
        "nothing changed"
    );
}

#[tokio::test]
async fn bad_flow_bodies_are_refused_and_change_nothing() {
    let world = World::new().await;
    let app = &world.app;
    let bob = Cred::Token(world.token_of("bob").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let id = world.flow(world.acme, &bob, "Original").await;
    let cases = [
        (
            json!({"name": "x", "definition": [1, 2]}),
            400,
            "definition not an object",
        ),
        (
            json!({"name": "x", "definition": "text"}),
            400,
            "definition a string",
        ),
        (json!({"definition": {}}), 400, "name missing"),
        (json!({"name": "\t "}), 400, "name blank"),
        (
            json!({"name": "a\u{7}b"}),
            400,
            "name with a control character",
        ),
        (
            json!({"name": "x", "definition": null}),
            400,
            "definition null",
        ),
        (json!({"name": "x".repeat(201)}), 400, "name too long"),
    ];
    for (body, status, why) in cases {
        let create = app.post(&base, &bob, body.clone()).await;
        assert_eq!(create.status, status, "create, {why}: {}", create.body);
        let replace = app.put(&format!("{base}/{id}"), &bob, body).await;
        assert_eq!(replace.status, status, "replace, {why}: {}", replace.body);
    }
    let blank = app.post(&base, &bob, json!({"name": " "})).await;
    blank.assert_problem(400, "bad_request");
    assert_eq!(
        blank.body["detail"],
        "name: invalid value: 1 to 200 characters, not blank, no control characters; \
         surrounding spaces are trimmed"
    );
    let list = app.get(&base, &bob).await;
    let flows = list.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["name"], "Original");
}
