//! Flow attributes over HTTP: the owner, labels, per-flow shares, and the shipped policies that
//! use them (confidential flows, Editors on the flows they own or were given).

use serde_json::{Value, json};

use crate::helpers::{Cred, World};

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_creator_owns_a_flow_and_a_body_cannot_set_the_owner() {
    let world = World::new().await;
    let app = &world.app;
    let bob = Cred::Token(world.token_of("bob").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let created = app
        .post(
            &base,
            &bob,
            json!({"name": "Mine", "owner": world.alice.to_string(),
                   "labels": ["team-7", "finance", "team-7"]}),
        )
        .await;
    let flow = created.assert_status(201).clone();
    assert_eq!(flow["owner"], world.bob.to_string(), "{flow}");
    assert_eq!(
        flow["labels"],
        json!(["finance", "team-7"]),
        "sorted, no dups"
    );
    let id = flow["id"].as_str().unwrap();

    // PATCH replaces the labels when sent, keeps them when not; `owner` is ignored there too.
    let patched = app
        .patch(
            &format!("{base}/{id}"),
            &bob,
            json!({"labels": ["ops"], "owner": world.carol.to_string()}),
        )
        .await;
    let patched = patched.assert_status(200);
    assert_eq!(patched["labels"], json!(["ops"]));
    assert_eq!(patched["owner"], world.bob.to_string());
    let renamed = app
        .patch(&format!("{base}/{id}"), &bob, json!({"name": "Renamed"}))
        .await;
    assert_eq!(renamed.assert_status(200)["labels"], json!(["ops"]));
    // PUT is a full replacement: labels left out are none.
    let replaced = app
        .put(&format!("{base}/{id}"), &bob, json!({"name": "Replaced"}))
        .await;
    assert_eq!(replaced.assert_status(200)["labels"], json!([]));
    let read = app.get(&format!("{base}/{id}"), &bob).await;
    let read = read.assert_status(200);
    assert_eq!(read["owner"], world.bob.to_string());
    assert_eq!(read["name"], "Replaced");
    let listed = app.get(&base, &bob).await;
    assert_eq!(
        listed.assert_status(200)["items"][0]["owner"],
        world.bob.to_string()
    );
}

#[tokio::test]
async fn bad_labels_are_a_400_naming_the_field_and_change_nothing() {
    let world = World::new().await;
    let app = &world.app;
    let bob = Cred::Token(world.token_of("bob").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let id = world.flow(world.acme, &bob, "Original").await;
    app.patch(&format!("{base}/{id}"), &bob, json!({"labels": ["keep"]}))
        .await
        .assert_status(200);
    let seventeen: Vec<String> = (0..17).map(|n| format!("l{n}")).collect();
    let pattern = "labels[0]: must match the pattern ^[a-z0-9][a-z0-9-]{0,63}$";
    let cases = [
        (
            json!(seventeen),
            "labels: must have at most 16 items",
            "17 labels",
        ),
        (json!(["Confidential"]), pattern, "upper case"),
        (json!(["-x"]), pattern, "leading dash"),
        (json!([""]), pattern, "empty"),
        (json!(["a".repeat(65)]), pattern, "65 characters"),
        (json!(["a b"]), pattern, "a space"),
        (
            json!(["ok", 7]),
            "labels[1]: must be a string",
            "not a string",
        ),
        (json!("ok"), "labels: must be an array", "not an array"),
        (
            Value::Null,
            "labels: must not be null (leave it out instead)",
            "null",
        ),
    ];
    for (labels, detail, why) in cases {
        let create = app
            .post(&base, &bob, json!({"name": "x", "labels": labels.clone()}))
            .await;
        create.assert_problem(400, "bad_request");
        assert_eq!(create.body["detail"], detail, "create, {why}");
        let patch = app
            .patch(
                &format!("{base}/{id}"),
                &bob,
                json!({"labels": labels.clone()}),
            )
            .await;
        patch.assert_problem(400, "bad_request");
        assert_eq!(patch.body["detail"], detail, "patch, {why}");
        let replace = app
            .put(
                &format!("{base}/{id}"),
                &bob,
                json!({"name": "x", "labels": labels}),
            )
            .await;
        replace.assert_problem(400, "bad_request");
        assert_eq!(replace.body["detail"], detail, "replace, {why}");
    }
    let sixteen: Vec<String> = (0..16).map(|n| format!("l{n}")).collect();
    let longest = app
        .post(
            &base,
            &bob,
            json!({"name": "edge", "labels": ["a".repeat(64)]}),
        )
        .await;
    assert_eq!(longest.assert_status(201)["labels"][0], "a".repeat(64));
    let ok = app
        .post(&base, &bob, json!({"name": "edge", "labels": sixteen}))
        .await;
    assert_eq!(
        ok.assert_status(201)["labels"].as_array().unwrap().len(),
        16
    );
    let flow = app.get(&format!("{base}/{id}"), &bob).await;
    let flow = flow.assert_status(200);
    assert_eq!(flow["name"], "Original");
    assert_eq!(flow["labels"], json!(["keep"]));
    let list = app.get(&base, &bob).await;
    assert_eq!(
        ids(list.assert_status(200)).len(),
        3,
        "nothing else was created"
    );
}

#[tokio::test]
async fn confidential_flows_are_for_admins_owners_and_shares_in_reads_and_lists() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let bob = Cred::Token(world.token_of("bob").await);
    let carol = Cred::Token(world.token_of("carol").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let open = world.flow(world.acme, &bob, "open").await;
    let secret = app
        .post(
            &base,
            &bob,
            json!({"name": "secret", "labels": ["confidential"]}),
        )
        .await;
    let secret = secret.assert_status(201)["id"].as_str().unwrap().to_owned();
    let admins = app
        .post(
            &base,
            &alice,
            json!({"name": "admins only", "labels": ["confidential"]}),
        )
        .await;
    let admins = admins.assert_status(201)["id"].as_str().unwrap().to_owned();

    // Carol (Viewer) sees the open flow only; the hidden ones are the 404 of a missing flow.
    let carols = app.get(&base, &carol).await;
    assert_eq!(ids(carols.assert_status(200)), vec![open.clone()]);
    let missing = app
        .get(&format!("{base}/{}", uuid::Uuid::new_v4()), &carol)
        .await;
    missing.assert_problem(404, "not_found");
    for hidden in [&secret, &admins] {
        let reply = app.get(&format!("{base}/{hidden}"), &carol).await;
        reply.assert_problem(404, "not_found");
        assert_eq!(reply.body, missing.body);
    }
    // Bob owns `secret`, not `admins only`; Alice (Admin) sees everything.
    let bobs = app.get(&base, &bob).await;
    assert_eq!(
        ids(bobs.assert_status(200)),
        vec![open.clone(), secret.clone()]
    );
    app.get(&format!("{base}/{admins}"), &bob)
        .await
        .assert_problem(404, "not_found");
    let alices = app.get(&base, &alice).await;
    assert_eq!(
        ids(alices.assert_status(200)),
        vec![open.clone(), secret.clone(), admins.clone()]
    );

    // Bob shares `secret` with Carol for reading: she reads it, in the list too, but may not edit.
    let share = app
        .put(
            &format!("{base}/{secret}/shares/{}", world.carol),
            &bob,
            json!({"access": "read"}),
        )
        .await;
    assert_eq!(
        share.assert_status(200),
        &json!({"flow_id": secret, "user_id": world.carol.to_string(), "access": "read"})
    );
    assert_eq!(
        app.get(&format!("{base}/{secret}"), &carol)
            .await
            .assert_status(200)["name"],
        "secret"
    );
    let carols = app.get(&base, &carol).await;
    assert_eq!(
        ids(carols.assert_status(200)),
        vec![open.clone(), secret.clone()]
    );
    app.patch(
        &format!("{base}/{secret}"),
        &carol,
        json!({"name": "mine now"}),
    )
    .await
    .assert_problem(403, "forbidden");

    // Taken away again: hidden again.
    app.delete(&format!("{base}/{secret}/shares/{}", world.carol), &bob)
        .await
        .assert_status(204);
    app.get(&format!("{base}/{secret}"), &carol)
        .await
        .assert_problem(404, "not_found");
    let carols = app.get(&base, &carol).await;
    assert_eq!(ids(carols.assert_status(200)), vec![open]);
}

#[tokio::test]
async fn editors_write_the_flows_they_own_or_were_given_and_owners_and_admins_share() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let bob = Cred::Token(world.token_of("bob").await);
    let carol = Cred::Token(world.token_of("carol").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let alices = world.flow(world.acme, &alice, "alice's").await;
    let bobs = world.flow(world.acme, &bob, "bob's").await;

    // Bob (Editor) changes his own flow, not Alice's, though he reads it.
    app.patch(&format!("{base}/{bobs}"), &bob, json!({"name": "b2"}))
        .await
        .assert_status(200);
    app.get(&format!("{base}/{alices}"), &bob)
        .await
        .assert_status(200);
    for reply in [
        app.patch(&format!("{base}/{alices}"), &bob, json!({"name": "x"}))
            .await,
        app.delete(&format!("{base}/{alices}"), &bob).await,
        app.put(
            &format!("{base}/{alices}/shares/{}", world.bob),
            &bob,
            json!({"access": "edit"}),
        )
        .await,
    ] {
        reply.assert_problem(403, "forbidden");
    }
    // A Viewer shares nothing, not even with itself.
    app.put(
        &format!("{base}/{bobs}/shares/{}", world.carol),
        &carol,
        json!({"access": "edit"}),
    )
    .await
    .assert_problem(403, "forbidden");

    // Alice (Admin) gives Bob edit on her flow: he may change and delete it now.
    let share = app
        .put(
            &format!("{base}/{alices}/shares/{}", world.bob),
            &alice,
            json!({"access": "edit"}),
        )
        .await;
    assert_eq!(share.assert_status(200)["access"], "edit");
    app.patch(
        &format!("{base}/{alices}"),
        &bob,
        json!({"name": "edited by bob"}),
    )
    .await
    .assert_status(200);

    // Bob, owner of his flow, gives Carol (Viewer) edit: she changes it but may not delete it.
    app.put(
        &format!("{base}/{bobs}/shares/{}", world.carol),
        &bob,
        json!({"access": "edit"}),
    )
    .await
    .assert_status(200);
    app.patch(
        &format!("{base}/{bobs}"),
        &carol,
        json!({"labels": ["reviewed"]}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("{base}/{bobs}"), &carol)
        .await
        .assert_problem(403, "forbidden");
    // Downgraded to read: she may not change it any more.
    app.put(
        &format!("{base}/{bobs}/shares/{}", world.carol),
        &bob,
        json!({"access": "read"}),
    )
    .await
    .assert_status(200);
    app.patch(&format!("{base}/{bobs}"), &carol, json!({"name": "no"}))
        .await
        .assert_problem(403, "forbidden");

    app.delete(&format!("{base}/{alices}"), &bob)
        .await
        .assert_status(204);
}

#[tokio::test]
async fn a_share_names_a_member_of_the_tenant_and_a_known_access() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let flow = world.flow(world.acme, &alice, "shared").await;
    let shares = format!("{base}/{flow}/shares");

    // Dave is a member of Globex only; a user that does not exist is no member either.
    for user in [world.dave.to_string(), uuid::Uuid::new_v4().to_string()] {
        let reply = app
            .put(
                &format!("{shares}/{user}"),
                &alice,
                json!({"access": "read"}),
            )
            .await;
        reply.assert_problem(400, "bad_request");
        assert_eq!(
            reply.body["detail"],
            "user_id: must be a member of this tenant"
        );
    }
    let bad = [
        (
            json!({"access": "write"}),
            "access: must be one of read, edit",
        ),
        (json!({}), "access: is required"),
        (json!({"access": 1}), "access: must be a string"),
    ];
    for (body, detail) in bad {
        let reply = app
            .put(&format!("{shares}/{}", world.carol), &alice, body)
            .await;
        reply.assert_problem(400, "bad_request");
        assert_eq!(reply.body["detail"], detail);
    }
    let reply = app
        .put(
            &format!("{shares}/not-a-uuid"),
            &alice,
            json!({"access": "read"}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.body);
    // Nothing was shared: Carol's view of the flow is unchanged, and the decision API agrees.
    let asked = app
        .post(
            &format!("/api/tenants/{}/authorize", world.acme),
            &alice,
            json!({"principal": world.carol.to_string(),
                   "items": [{"action": "UpdateFlow", "resource": {"type": "Flow", "id": flow}}]}),
        )
        .await;
    assert_eq!(asked.assert_status(200)["results"][0]["decision"], "Deny");

    // A missing flow, and any path for a non-member of the tenant: the same 404.
    let missing = app
        .put(
            &format!("{base}/{}/shares/{}", uuid::Uuid::new_v4(), world.carol),
            &alice,
            json!({"access": "read"}),
        )
        .await;
    missing.assert_problem(404, "not_found");
    for reply in [
        app.put(
            &format!("{shares}/{}", world.carol),
            &dave,
            json!({"access": "read"}),
        )
        .await,
        app.delete(&format!("{shares}/{}", world.carol), &dave)
            .await,
        app.delete(
            &format!("{base}/{}/shares/{}", uuid::Uuid::new_v4(), world.carol),
            &alice,
        )
        .await,
    ] {
        reply.assert_problem(404, "not_found");
        assert_eq!(reply.body, missing.body);
    }
    // Unsharing a user who had no share is fine.
    app.delete(&format!("{shares}/{}", world.carol), &alice)
        .await
        .assert_status(204);
}
