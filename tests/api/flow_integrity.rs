//! The flow a decision was made on is the flow acted on: a non-member is refused before any
//! policy (whatever the policies say), shares follow membership and roles, and a flow the caller
//! may not read answers exactly as a missing one, in the operations and in the decision API.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use zygo::store::{self, TenantId, UserId};

use crate::helpers::{Cred, PASSWORD, World, copy_policies, spawn_with, test_settings};

/// A world whose policies are the shipped ones plus `extra`.
async fn world_with(extra: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let policies = copy_policies(dir.path());
    std::fs::write(policies.join("zz_extra.cedar"), extra).unwrap();
    let mut settings = test_settings(dir.path());
    settings.policies_dir = policies;
    World::on(spawn_with(settings, dir).await).await
}

/// The flow as stored: everything a request could have changed.
async fn stored(world: &World, tenant: TenantId, id: &str) -> Option<store::flows::Flow> {
    store::flows::find(&world.app.state.db, tenant, Uuid::parse_str(id).unwrap())
        .await
        .unwrap()
}

/// The six operations on one flow, as (name, method, path, body).
fn operations(
    tenant: TenantId,
    flow: &str,
    user: UserId,
) -> Vec<(&'static str, Method, String, Option<Value>)> {
    let path = format!("/api/tenants/{tenant}/flows/{flow}");
    let share = format!("{path}/shares/{user}");
    vec![
        ("GET", Method::GET, path.clone(), None),
        (
            "PUT",
            Method::PUT,
            path.clone(),
            Some(json!({"name": "replaced", "labels": []})),
        ),
        (
            "PATCH",
            Method::PATCH,
            path.clone(),
            Some(json!({"name": "renamed", "labels": []})),
        ),
        ("DELETE", Method::DELETE, path, None),
        (
            "share PUT",
            Method::PUT,
            share.clone(),
            Some(json!({"access": "edit"})),
        ),
        ("share DELETE", Method::DELETE, share, None),
    ]
}

#[tokio::test]
async fn a_non_member_gets_404_and_changes_nothing_whatever_the_policies_allow_on_flows_it_would_own()
 {
    // The rule an operator might plausibly add, and a blunter one: neither reaches a non-member.
    let rules = [
        r#"@id("owners-write-their-flows")
permit (principal, action in [Zygo::Action::"UpdateFlow", Zygo::Action::"DeleteFlow"], resource is Zygo::Flow) when { resource.owner == principal };
@id("owners-read-and-share-their-flows")
permit (principal, action in [Zygo::Action::"ReadFlow", Zygo::Action::"ShareFlow"], resource is Zygo::Flow) when { resource.owner == principal };"#,
        r#"@id("anyone-does-anything-to-flows")
permit (principal, action, resource is Zygo::Flow);"#,
    ];
    for rule in rules {
        let world = world_with(rule).await;
        let app = &world.app;
        let bob = Cred::Token(world.token_of("bob").await);
        // Dave is Admin of Globex and nothing in Acme.
        let dave = Cred::Token(world.token_of("dave").await);
        let (cookie, _) = app.login("dave@example.com", PASSWORD).await;
        let dave_session = Cred::Cookie(cookie);
        let created = app
            .post(
                &format!("/api/tenants/{}/flows", world.acme),
                &bob,
                json!({"name": "Acme's", "labels": ["confidential"]}),
            )
            .await;
        let flow = created.assert_status(201)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.put(
            &format!(
                "/api/tenants/{}/flows/{flow}/shares/{}",
                world.acme, world.carol
            ),
            &bob,
            json!({"access": "read"}),
        )
        .await
        .assert_status(200);
        let before = stored(&world, world.acme, &flow).await.unwrap();
        let missing = app
            .get(
                &format!("/api/tenants/{}/flows/{}", world.acme, Uuid::new_v4()),
                &dave,
            )
            .await;
        missing.assert_problem(404, "not_found");
        for cred in [&dave, &dave_session] {
            for target in [world.carol, world.dave] {
                for (name, method, path, body) in operations(world.acme, &flow, target) {
                    let reply = app.request(method, &path, cred, body).await;
                    assert_eq!(reply.status.as_u16(), 404, "{rule}: {name}: {}", reply.body);
                    assert_eq!(reply.body, missing.body, "{rule}: {name}");
                    assert_eq!(
                        stored(&world, world.acme, &flow).await.as_ref(),
                        Some(&before),
                        "{rule}: {name} changed the flow"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn a_flow_is_never_shared_with_the_caller_or_its_owner() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let bob = Cred::Token(world.token_of("bob").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let alices = world.flow(world.acme, &alice, "alice's").await;
    let bobs = world.flow(world.acme, &bob, "bob's").await;
    let yourself = "user_id: you cannot share a flow with yourself";
    let owner = "user_id: is the flow's owner, who is never given a share";
    for (cred, flow, user, detail) in [
        (&alice, &alices, world.alice, yourself),
        (&alice, &bobs, world.alice, yourself),
        (&bob, &bobs, world.bob, yourself),
        (&alice, &bobs, world.bob, owner),
    ] {
        for access in ["read", "edit"] {
            let reply = app
                .put(
                    &format!("{base}/{flow}/shares/{user}"),
                    cred,
                    json!({"access": access}),
                )
                .await;
            reply.assert_problem(400, "bad_request");
            assert_eq!(reply.body["detail"], detail);
        }
    }
    for flow in [&alices, &bobs] {
        let attrs = stored(&world, world.acme, flow).await.unwrap().attrs;
        assert!(
            attrs.editors.is_empty() && attrs.readers.is_empty(),
            "{attrs:?}"
        );
    }
    // Sharing with someone else still works, and taking one's own (absent) share away is a no-op.
    app.put(
        &format!("{base}/{bobs}/shares/{}", world.carol),
        &bob,
        json!({"access": "read"}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("{base}/{bobs}/shares/{}", world.bob), &bob)
        .await
        .assert_status(204);
}

#[tokio::test]
async fn an_owner_demoted_to_viewer_cannot_give_itself_or_anyone_edit_and_edits_nothing() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let bob = Cred::Token(world.token_of("bob").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let created = app
        .post(
            &base,
            &bob,
            json!({"name": "bob's secret", "labels": ["confidential"]}),
        )
        .await;
    let flow = created.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.put(
        &format!("/api/tenants/{}/members/{}", world.acme, world.bob),
        &alice,
        json!({"role": "Viewer"}),
    )
    .await
    .assert_status(200);
    // Bob still reads his flow, but shares it with nobody, himself included.
    app.get(&format!("{base}/{flow}"), &bob)
        .await
        .assert_status(200);
    for user in [world.bob, world.carol] {
        for access in ["read", "edit"] {
            app.put(
                &format!("{base}/{flow}/shares/{user}"),
                &bob,
                json!({"access": access}),
            )
            .await
            .assert_problem(403, "forbidden");
        }
    }
    app.patch(&format!("{base}/{flow}"), &bob, json!({"labels": []}))
        .await
        .assert_problem(403, "forbidden");
    // Even an edit share of his own flow left from before (written straight to the store)
    // gives the owner nothing: an owner's rights come from its role.
    store::flows::share(
        &app.state.db,
        world.acme,
        Uuid::parse_str(&flow).unwrap(),
        world.bob,
        store::flows::Access::Edit,
    )
    .await
    .unwrap();
    app.patch(&format!("{base}/{flow}"), &bob, json!({"labels": []}))
        .await
        .assert_problem(403, "forbidden");
    let kept = stored(&world, world.acme, &flow).await.unwrap();
    assert_eq!(kept.attrs.labels, vec!["confidential".to_owned()]);
    assert_eq!(kept.attrs.readers, vec![]);
    // Carol (Viewer) never got in either.
    app.get(
        &format!("{base}/{flow}"),
        &Cred::Token(world.token_of("carol").await),
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_removed_member_loses_its_shares_and_its_flows_and_regains_neither_when_added_again() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let bob = Cred::Token(world.token_of("bob").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let secret = app
        .post(
            &base,
            &alice,
            json!({"name": "secret", "labels": ["confidential"]}),
        )
        .await;
    let secret = secret.assert_status(201)["id"].as_str().unwrap().to_owned();
    let bobs = app
        .post(
            &base,
            &bob,
            json!({"name": "bob's", "labels": ["confidential"]}),
        )
        .await;
    let bobs = bobs.assert_status(201)["id"].as_str().unwrap().to_owned();
    for (user, access) in [(world.carol, "read"), (world.bob, "edit")] {
        app.put(
            &format!("{base}/{secret}/shares/{user}"),
            &alice,
            json!({"access": access}),
        )
        .await
        .assert_status(200);
    }
    // Carol's share of Globex's flows is not Acme's business: give her one there to keep.
    app.set_role(world.globex, world.carol, "Viewer").await;
    let dave = Cred::Token(world.token_of("dave").await);
    let globex_flow = world.flow(world.globex, &dave, "globex").await;
    app.put(
        &format!(
            "/api/tenants/{}/flows/{globex_flow}/shares/{}",
            world.globex, world.carol
        ),
        &dave,
        json!({"access": "edit"}),
    )
    .await
    .assert_status(200);

    for user in [world.carol, world.bob] {
        app.delete(
            &format!("/api/tenants/{}/members/{user}", world.acme),
            &alice,
        )
        .await
        .assert_status(204);
    }
    let secret_now = stored(&world, world.acme, &secret).await.unwrap();
    assert_eq!(secret_now.attrs.readers, vec![]);
    assert_eq!(secret_now.attrs.editors, vec![]);
    let bobs_now = stored(&world, world.acme, &bobs).await.unwrap();
    assert_eq!(
        bobs_now.attrs.owner, None,
        "Bob's flow stays, without an owner"
    );
    assert_eq!(bobs_now.name, "bob's");
    let globex_now = stored(&world, world.globex, &globex_flow).await.unwrap();
    assert_eq!(globex_now.attrs.editors, vec![world.carol]);

    // Added again: the role alone, no share and no flow of their own.
    app.set_role(world.acme, world.carol, "Viewer").await;
    app.set_role(world.acme, world.bob, "Editor").await;
    for user in [world.carol, world.bob] {
        app.state.authz.forget_role(user, world.acme).await;
    }
    let carol = Cred::Token(world.token_of("carol").await);
    for (cred, flow) in [(&carol, &secret), (&bob, &secret), (&bob, &bobs)] {
        app.get(&format!("{base}/{flow}"), cred)
            .await
            .assert_problem(404, "not_found");
        app.patch(&format!("{base}/{flow}"), cred, json!({"labels": []}))
            .await
            .assert_problem(404, "not_found");
    }
    // The ownerless flow is the Admins'.
    let read = app.get(&format!("{base}/{bobs}"), &alice).await;
    assert_eq!(read.assert_status(200)["owner"], Value::Null);
}

/// Who asks in the table: a role in Acme (or none) and a credential.
struct Asker {
    name: &'static str,
    cred: Cred,
    /// Whether the confidential flow of the table is readable for it (Admins only).
    reads_hidden: bool,
    member: bool,
}

async fn askers(world: &World) -> Vec<Asker> {
    let app = &world.app;
    let mut askers = Vec::new();
    for (user, member, reads_hidden) in [
        ("alice", true, true),
        ("bob", true, false),
        ("carol", true, false),
        ("dave", false, false),
    ] {
        let (cookie, _) = app.login(&format!("{user}@example.com"), PASSWORD).await;
        let session = Cred::Cookie(cookie);
        let reply = app.get("/api/token?read_only=true", &session).await;
        let read_only = reply.assert_status(200)["token"]
            .as_str()
            .unwrap()
            .to_owned();
        askers.push(Asker {
            name: user,
            cred: session,
            reads_hidden,
            member,
        });
        askers.push(Asker {
            name: Box::leak(format!("{user} (read-only token)").into_boxed_str()),
            cred: Cred::Token(read_only),
            reads_hidden,
            member,
        });
    }
    askers
}

/// The actions of the six operations, for the decision API.
const ACTIONS: [&str; 4] = ["ReadFlow", "UpdateFlow", "DeleteFlow", "ShareFlow"];

/// For every asker and operation, a hidden flow, a missing one and another tenant's answer the
/// same status and body (and a readable one is not a 404); the decision API answers the three
/// alike too.
async fn hidden_is_missing(world: &World, label: &str) {
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let hidden = app
        .post(
            &base,
            &alice,
            json!({"name": "hidden", "labels": ["confidential"]}),
        )
        .await;
    let hidden = hidden.assert_status(201)["id"].as_str().unwrap().to_owned();
    let other = world.flow(world.globex, &dave, "globex's").await;
    for asker in askers(world).await {
        let missing = Uuid::new_v4().to_string();
        let mut targets = vec![("missing", &missing), ("other tenant's", &other)];
        if !asker.reads_hidden {
            targets.push(("hidden", &hidden));
        }
        let ops: Vec<_> = targets
            .iter()
            .map(|(what, id)| (*what, operations(world.acme, id, world.carol)))
            .collect();
        for op in 0..6 {
            let mut first: Option<(String, u16, Value)> = None;
            for (what, list) in &ops {
                let (name, method, path, body) = list[op].clone();
                let reply = app.request(method, &path, &asker.cred, body).await;
                let cell = format!("{label}: {} {name} on the {what} flow", asker.name);
                assert_eq!(reply.status.as_u16(), 404, "{cell}: {}", reply.body);
                reply.assert_problem(404, "not_found");
                match &first {
                    None => first = Some((cell, reply.status.as_u16(), reply.body.clone())),
                    Some((first_cell, status, body)) => {
                        assert_eq!(reply.status.as_u16(), *status, "{cell} vs {first_cell}");
                        assert_eq!(&reply.body, body, "{cell} vs {first_cell}");
                    }
                }
            }
        }
        // The decision API: the same answer for every one of them.
        let path = format!("/api/tenants/{}/authorize", world.acme);
        let items: Vec<Value> = ACTIONS
            .iter()
            .flat_map(|action| {
                targets.iter().map(move |(_, id)| {
                    json!({"action": action, "resource": {"type": "Flow", "id": id}})
                })
            })
            .collect();
        let reply = app.post(&path, &asker.cred, json!({"items": items})).await;
        if !asker.member {
            reply.assert_problem(403, "forbidden");
            continue;
        }
        let results = reply.assert_status(200)["results"]
            .as_array()
            .unwrap()
            .clone();
        for result in &results {
            assert_eq!(
                (&result["decision"], &result["reasons"], &result["errors"]),
                (&json!("Deny"), &json!([]), &json!([])),
                "{label}: {} asked {result}",
                asker.name
            );
        }
    }
    // Nothing hidden was touched.
    let kept = stored(world, world.acme, &hidden).await.unwrap();
    assert_eq!(kept.name, "hidden");
    assert_eq!(kept.attrs.labels, vec!["confidential".to_owned()]);
    assert_eq!(
        stored(world, world.globex, &other).await.unwrap().name,
        "globex's"
    );
}

#[tokio::test]
async fn a_hidden_flow_a_missing_one_and_another_tenants_answer_alike_for_every_role_and_credential()
 {
    let world = World::new().await;
    hidden_is_missing(&world, "shipped policies").await;
    // Readable flows are not 404s: a Viewer reads them and is refused writes with a 403.
    let app = &world.app;
    let carol = Cred::Token(world.token_of("carol").await);
    let bob = Cred::Token(world.token_of("bob").await);
    let open = world.flow(world.acme, &bob, "open").await;
    let base = format!("/api/tenants/{}/flows", world.acme);
    app.get(&format!("{base}/{open}"), &carol)
        .await
        .assert_status(200);
    for (name, method, path, body) in operations(world.acme, &open, world.alice)
        .into_iter()
        .skip(1)
    {
        let reply = app.request(method, &path, &carol, body).await;
        assert_eq!(reply.status.as_u16(), 403, "{name}: {}", reply.body);
        reply.assert_problem(403, "forbidden");
    }
}

#[tokio::test]
async fn hidden_and_missing_flows_answer_alike_under_a_policy_that_forbids_read_only_tokens() {
    let world = world_with(
        r#"@id("read-only-tokens-see-no-flow")
forbid (principal, action in [Zygo::Action::"ReadFlow", Zygo::Action::"UpdateFlow", Zygo::Action::"DeleteFlow", Zygo::Action::"ShareFlow"], resource is Zygo::Flow)
when { context.auth.read_only };"#,
    )
    .await;
    hidden_is_missing(&world, "read-only forbidden").await;
    // For a read-only token even a readable flow is hidden now, in the decision API too.
    let app = &world.app;
    let bob = Cred::Token(world.token_of("bob").await);
    let open = world.flow(world.acme, &bob, "open").await;
    let (cookie, _) = app.login("carol@example.com", PASSWORD).await;
    let reply = app
        .get("/api/token?read_only=true", &Cred::Cookie(cookie))
        .await;
    let read_only = Cred::Token(
        reply.assert_status(200)["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    app.get(
        &format!("/api/tenants/{}/flows/{open}", world.acme),
        &read_only,
    )
    .await
    .assert_problem(404, "not_found");
    let asked = app
        .post(
            &format!("/api/tenants/{}/authorize", world.acme),
            &read_only,
            json!({"items": [{"action": "ReadFlow", "resource": {"type": "Flow", "id": open}}]}),
        )
        .await;
    assert_eq!(
        asked.assert_status(200)["results"][0],
        json!({"action": "ReadFlow", "resource": {"type": "Flow", "id": open},
               "decision": "Deny", "reasons": [], "errors": []})
    );
}

#[tokio::test]
async fn an_admin_asking_for_a_member_sees_the_members_decision_on_flows_the_admin_can_read() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let carol = Cred::Token(world.token_of("carol").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let secret = app
        .post(
            &base,
            &alice,
            json!({"name": "secret", "labels": ["confidential"]}),
        )
        .await;
    let secret = secret.assert_status(201)["id"].as_str().unwrap().to_owned();
    let missing = Uuid::new_v4().to_string();
    let question = |principal: UserId| {
        json!({"principal": principal.to_string(), "items": [
            {"action": "ReadFlow", "resource": {"type": "Flow", "id": secret}},
            {"action": "ReadFlow", "resource": {"type": "Flow", "id": missing}},
        ]})
    };
    let path = format!("/api/tenants/{}/authorize", world.acme);
    // Alice reads the flow: she is told why Carol may not.
    let reply = app.post(&path, &alice, question(world.carol)).await;
    let results = &reply.assert_status(200)["results"];
    assert_eq!(results[0]["decision"], "Deny");
    assert_eq!(results[0]["reasons"], json!(["confidential-flows"]));
    assert_eq!(results[1]["decision"], "Deny");
    assert_eq!(results[1]["reasons"], json!([]));
    // Carol asking for herself learns nothing: the hidden flow answers as the missing one.
    let reply = app.post(&path, &carol, question(world.carol)).await;
    let results = &reply.assert_status(200)["results"];
    assert_eq!(results[0]["decision"], results[1]["decision"]);
    assert_eq!(results[0]["reasons"], results[1]["reasons"]);
    assert_eq!(results[0]["errors"], results[1]["errors"]);
}

#[tokio::test]
async fn a_change_waiting_on_a_concurrent_one_is_decided_on_the_flow_that_change_left() {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
    use zygo::store::entities::{flow, flow_label, flow_share};

    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let carol = Cred::Token(world.token_of("carol").await);
    let base = format!("/api/tenants/{}/flows", world.acme);
    let id = world.flow(world.acme, &alice, "shared").await;
    app.put(
        &format!("{base}/{id}/shares/{}", world.carol),
        &alice,
        json!({"access": "edit"}),
    )
    .await
    .assert_status(200);
    let flow_id = Uuid::parse_str(&id).unwrap();

    // Another writer takes Carol's share away and makes the flow confidential, and holds its
    // transaction open (the flow row locked on PostgreSQL, the write lock on SQLite).
    let txn = app.state.db.begin().await.unwrap();
    flow::Entity::update_many()
        .col_expr(flow::Column::Name, Expr::value("locked"))
        .filter(flow::Column::Id.eq(flow_id))
        .exec(&txn)
        .await
        .unwrap();
    flow_share::Entity::delete_many()
        .filter(flow_share::Column::FlowId.eq(flow_id))
        .exec(&txn)
        .await
        .unwrap();
    flow_label::ActiveModel {
        flow_id: Set(flow_id),
        label: Set("confidential".into()),
    }
    .insert(&txn)
    .await
    .unwrap();
    // Carol's change, decided while that transaction is open.
    let patch = {
        let client = app.client.clone();
        let url = format!("{}{base}/{id}", app.address);
        let Cred::Token(token) = carol.clone() else {
            unreachable!()
        };
        tokio::spawn(async move {
            let reply = client
                .patch(url)
                .header("token", token)
                .json(&json!({"name": "carol was here"}))
                .send()
                .await
                .unwrap();
            let status = reply.status().as_u16();
            (status, reply.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    txn.commit().await.unwrap();
    let (status, body) = patch.await.unwrap();
    // Decided on the flow as the other writer left it: hidden from Carol now.
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "not_found");
    let kept = stored(&world, world.acme, &id).await.unwrap();
    assert_eq!(kept.name, "locked");
    assert_eq!(kept.attrs.labels, vec!["confidential".to_owned()]);
    assert!(kept.attrs.editors.is_empty());
}
