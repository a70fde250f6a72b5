//! Membership by invitation: adding a user through the API invites them; they see the invitation
//! and accept or decline it, and nothing of the tenant shows to them before they accept. The
//! inviter learns nothing about the user beyond the id they typed. Who may create tenants is a
//! server setting.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use zygo::config::TenantCreation;

use crate::helpers::{Cred, World, spawn_with, test_settings};

/// Alice (Admin of Acme) invites `user` into Acme with `role`.
async fn invite(world: &World, admin: &Cred, user: Uuid, role: &str) -> crate::helpers::Reply {
    world
        .app
        .put(
            &format!("/api/tenants/{}/members/{user}", world.acme),
            admin,
            json!({"role": role}),
        )
        .await
}

fn tenant_names(reply: &crate::helpers::Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_invited_user_sees_the_invitation_accepts_it_and_becomes_a_member_with_the_role() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    let acme = world.acme;
    let flow = world.flow(acme, &alice, "plan").await;

    let invited = invite(&world, &alice, world.dave.0, "Editor").await;
    assert_eq!(
        invited.assert_status(202),
        &json!({"tenant_id": acme.to_string(), "user_id": world.dave.to_string(),
                "role": "Editor", "status": "invited"})
    );

    let pending = app.get("/api/invitations", &dave).await;
    let body = pending.assert_status(200);
    assert_eq!(body["next_cursor"], Value::Null);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["tenant_id"], acme.to_string());
    assert_eq!(items[0]["tenant_name"], "Acme");
    assert_eq!(items[0]["role"], "Editor");
    assert_eq!(items[0]["invited_by"], world.alice.to_string());
    assert!(items[0]["created_at"].is_string());
    // Invitations are the invitee's alone.
    let bob = Cred::Token(world.token_of("bob").await);
    assert_eq!(
        app.get("/api/invitations", &bob).await.assert_status(200)["items"],
        json!([])
    );

    // Before accepting: nothing of Acme shows, and Dave has no role there.
    assert_eq!(
        tenant_names(&app.get("/api/tenants", &dave).await),
        vec!["Globex"]
    );
    let me = app.get("/api/me", &dave).await;
    let memberships: Vec<_> = me.assert_status(200)["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["tenant_name"].clone())
        .collect();
    assert_eq!(memberships, vec![json!("Globex")]);
    let base = format!("/api/tenants/{acme}");
    app.get(&base, &dave).await.assert_problem(403, "forbidden");
    app.get(&format!("{base}/flows"), &dave)
        .await
        .assert_problem(403, "forbidden");
    app.get(&format!("{base}/members"), &dave)
        .await
        .assert_problem(403, "forbidden");
    app.get(&format!("{base}/flows/{flow}"), &dave)
        .await
        .assert_problem(404, "not_found");
    // Nor is the invitee listed to the tenant's members.
    let members = app.get(&format!("{base}/members"), &alice).await;
    assert_eq!(
        members.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let accepted = app
        .post(&format!("/api/invitations/{acme}/accept"), &dave, json!({}))
        .await;
    assert_eq!(
        accepted.assert_status(200),
        &json!({"tenant_id": acme.to_string(), "tenant_name": "Acme", "role": "Editor"})
    );
    assert_eq!(
        app.get("/api/invitations", &dave).await.assert_status(200)["items"],
        json!([])
    );
    assert_eq!(
        tenant_names(&app.get("/api/tenants", &dave).await),
        vec!["Globex", "Acme"]
    );
    let read = app.get(&format!("{base}/flows/{flow}"), &dave).await;
    assert_eq!(read.assert_status(200)["name"], "plan");
    app.post(&format!("{base}/flows"), &dave, json!({"name": "mine"}))
        .await
        .assert_status(201);
    let members = app.get(&format!("{base}/members"), &alice).await;
    let last = members.assert_status(200)["items"][3].clone();
    assert_eq!(
        last,
        json!({"user_id": world.dave.to_string(), "email": "dave@example.com", "role": "Editor"})
    );
    // Accepted once: there is nothing left to accept.
    app.post(&format!("/api/invitations/{acme}/accept"), &dave, json!({}))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_declined_invitation_is_gone_and_grants_nothing() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    let acme = world.acme;
    invite(&world, &alice, world.dave.0, "Admin")
        .await
        .assert_status(202);

    let declined = app
        .post(
            &format!("/api/invitations/{acme}/decline"),
            &dave,
            json!({}),
        )
        .await;
    assert_eq!(declined.status, 204);
    assert_eq!(declined.body, Value::Null);
    assert_eq!(
        app.get("/api/invitations", &dave).await.assert_status(200)["items"],
        json!([])
    );
    app.post(&format!("/api/invitations/{acme}/accept"), &dave, json!({}))
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("/api/invitations/{acme}/decline"),
        &dave,
        json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    assert_eq!(
        tenant_names(&app.get("/api/tenants", &dave).await),
        vec!["Globex"]
    );
    app.get(&format!("/api/tenants/{acme}/flows"), &dave)
        .await
        .assert_problem(403, "forbidden");
}

/// The status, content type and body of a raw request, the body with `id` replaced by `ID`.
async fn raw_answer(req: reqwest::RequestBuilder, id: Uuid) -> (u16, String, String) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp.text().await.unwrap().replace(&id.to_string(), "ID");
    (status, content_type, body)
}

#[tokio::test]
async fn inviting_an_existing_and_an_unknown_user_id_answers_byte_for_byte_the_same() {
    let world = World::new().await;
    let app = &world.app;
    let token = world.token_of("alice").await;
    let alice = Cred::Token(token.clone());
    let unknown = Uuid::new_v4();
    let member = |user: Uuid| format!("/api/tenants/{}/members/{user}", world.acme);
    let put = |user: Uuid| {
        app.raw(Method::PUT, &member(user), &alice)
            .json(&json!({"role": "Viewer"}))
    };

    let real = raw_answer(put(world.dave.0), world.dave.0).await;
    let none = raw_answer(put(unknown), unknown).await;
    assert_eq!(real, none);
    assert_eq!(real.0, 202);
    assert_eq!(real.1, "application/json; charset=utf-8");
    assert!(!real.2.contains('@'), "no e-mail: {}", real.2);
    // Again (replacing the pending role): still the same.
    assert_eq!(
        raw_answer(put(world.dave.0), world.dave.0).await,
        raw_answer(put(unknown), unknown).await
    );
    // The members list shows neither, and withdrawing answers alike too.
    let members = app
        .get(&format!("/api/tenants/{}/members", world.acme), &alice)
        .await;
    assert_eq!(
        members.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let withdraw = |user: Uuid| app.raw(Method::DELETE, &member(user), &alice);
    let real = raw_answer(withdraw(world.dave.0), world.dave.0).await;
    let none = raw_answer(withdraw(unknown), unknown).await;
    assert_eq!(real, none);
    assert_eq!(real.0, 204);
    assert_eq!(real.2, "");
    // Only the real user was ever invited, and the invitation is withdrawn.
    let dave = Cred::Token(world.token_of("dave").await);
    assert_eq!(
        app.get("/api/invitations", &dave).await.assert_status(200)["items"],
        json!([])
    );
}

#[tokio::test]
async fn no_answer_to_the_inviter_carries_the_invitees_email() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let base = format!("/api/tenants/{}", world.acme);
    let replies = [
        invite(&world, &alice, world.dave.0, "Viewer").await,
        invite(&world, &alice, world.dave.0, "Editor").await,
        app.get(&format!("{base}/members"), &alice).await,
        app.get(&format!("{base}/members?limit=500"), &alice).await,
        app.delete(&format!("{base}/members/{}", world.dave), &alice)
            .await,
    ];
    for reply in replies {
        assert!(reply.status.is_success(), "{}", reply.body);
        assert!(
            !reply.body.to_string().contains("dave@"),
            "the invitee's e-mail leaked: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn inviting_again_replaces_the_pending_role() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    invite(&world, &alice, world.dave.0, "Viewer")
        .await
        .assert_status(202);
    invite(&world, &alice, world.dave.0, "Admin")
        .await
        .assert_status(202);
    let pending = app.get("/api/invitations", &dave).await;
    let items = pending.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["role"], "Admin");
    let accepted = app
        .post(
            &format!("/api/invitations/{}/accept", world.acme),
            &dave,
            json!({}),
        )
        .await;
    assert_eq!(accepted.assert_status(200)["role"], "Admin");
    // Now a member: a PUT changes the role directly again (200, as for any member).
    let changed = invite(&world, &alice, world.dave.0, "Viewer").await;
    assert_eq!(
        changed.assert_status(200),
        &json!({"user_id": world.dave.to_string(), "email": "dave@example.com", "role": "Viewer"})
    );
}

#[tokio::test]
async fn an_admin_withdraws_an_invitation_and_only_admins_invite() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let bob = Cred::Token(world.token_of("bob").await);
    let dave = Cred::Token(world.token_of("dave").await);
    let acme = world.acme;
    // An Editor may neither invite nor withdraw.
    invite(&world, &bob, world.dave.0, "Viewer")
        .await
        .assert_problem(403, "forbidden");
    invite(&world, &alice, world.dave.0, "Viewer")
        .await
        .assert_status(202);
    app.delete(&format!("/api/tenants/{acme}/members/{}", world.dave), &bob)
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        app.get("/api/invitations", &dave).await.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let withdrawn = app
        .delete(
            &format!("/api/tenants/{acme}/members/{}", world.dave),
            &alice,
        )
        .await;
    assert_eq!(withdrawn.status, 204);
    assert_eq!(
        app.get("/api/invitations", &dave).await.assert_status(200)["items"],
        json!([])
    );
    app.post(&format!("/api/invitations/{acme}/accept"), &dave, json!({}))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_read_only_token_neither_accepts_nor_declines() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    let reader = app
        .get("/api/token?read_only=true", &dave)
        .await
        .assert_status(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let reader = Cred::Token(reader);
    invite(&world, &alice, world.dave.0, "Viewer")
        .await
        .assert_status(202);
    assert_eq!(
        app.get("/api/invitations", &reader)
            .await
            .assert_status(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "reading is fine"
    );
    for action in ["accept", "decline"] {
        app.post(
            &format!("/api/invitations/{}/{action}", world.acme),
            &reader,
            json!({}),
        )
        .await
        .assert_problem(403, "forbidden");
    }
    assert_eq!(
        tenant_names(&app.get("/api/tenants", &dave).await),
        vec!["Globex"]
    );
}

#[tokio::test]
async fn a_browser_session_accepts_and_then_selects_the_tenant() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    invite(&world, &alice, world.dave.0, "Viewer")
        .await
        .assert_status(202);
    let (cookie, _) = app
        .login("dave@example.com", crate::helpers::PASSWORD)
        .await;
    let session = Cred::Cookie(cookie);
    // A cross-site form cannot accept on the user's behalf.
    let forged = crate::helpers::send(
        app.raw(
            Method::POST,
            &format!("/api/invitations/{}/accept", world.acme),
            &session,
        )
        .header("origin", "https://evil.example")
        .json(&json!({})),
    )
    .await;
    forged.assert_problem(403, "cross_site_request");
    // Before accepting, the session cannot select the tenant (as for any non-member).
    app.post(&format!("/session/{}", world.acme), &session, json!({}))
        .await
        .assert_problem(403, "forbidden");
    let accepted = app
        .post(
            &format!("/api/invitations/{}/accept", world.acme),
            &session,
            json!({}),
        )
        .await;
    assert_eq!(accepted.assert_status(200)["role"], "Viewer");
    let switched = app
        .post(&format!("/session/{}", world.acme), &session, json!({}))
        .await;
    assert_eq!(
        switched.assert_status(200)["current_tenant_id"],
        world.acme.to_string()
    );
    app.get(&format!("/api/tenants/{}/flows", world.acme), &session)
        .await
        .assert_status(200);
}

#[tokio::test]
async fn invitations_are_listed_a_page_at_a_time() {
    let world = World::new().await;
    let app = &world.app;
    let dave_id = world.dave;
    let alice = Cred::Token(world.token_of("alice").await);
    let mut tenants = vec![world.acme];
    for name in ["Initech", "Umbrella"] {
        let created = app
            .post("/api/tenants", &alice, json!({"name": name}))
            .await;
        let id = created.assert_status(201)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        tenants.push(zygo::store::TenantId(id.parse().unwrap()));
    }
    for tenant in &tenants {
        app.put(
            &format!("/api/tenants/{tenant}/members/{dave_id}"),
            &alice,
            json!({"role": "Viewer"}),
        )
        .await
        .assert_status(202);
    }
    let dave = Cred::Token(world.token_of("dave").await);
    let mut seen = Vec::new();
    let mut path = "/api/invitations?limit=2".to_owned();
    loop {
        let page = app.get(&path, &dave).await;
        let body = page.assert_status(200).clone();
        for item in body["items"].as_array().unwrap() {
            seen.push(item["tenant_name"].as_str().unwrap().to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/invitations?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, vec!["Acme", "Initech", "Umbrella"]);
}

#[tokio::test]
async fn zygo_member_set_still_adds_directly_and_settles_a_pending_invitation() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    invite(&world, &alice, world.dave.0, "Admin")
        .await
        .assert_status(202);
    let output = crate::cli::zygo_command(app._dir.path())
        .env("ZYGO_DATABASE_URL", &app.state.settings.database.url)
        .args([
            "member",
            "set",
            &world.acme.to_string(),
            "dave@example.com",
            "Viewer",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A member at once, with the operator's role; the invitation is gone.
    let tenants = app.get("/api/tenants", &dave).await;
    let acme: Vec<_> = tenants.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "Acme")
        .map(|t| t["role"].clone())
        .collect();
    assert_eq!(acme, vec![json!("Viewer")]);
    assert_eq!(
        app.get("/api/invitations", &dave).await.assert_status(200)["items"],
        json!([])
    );
}

#[tokio::test]
async fn with_tenant_creation_for_operators_the_api_refuses_to_create_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.tenant_creation = TenantCreation::Operators;
    let world = World::on(spawn_with(settings, dir).await).await;
    let app = &world.app;
    let carol = Cred::Token(world.token_of("carol").await);
    let refused = app
        .post("/api/tenants", &carol, json!({"name": "Initech"}))
        .await;
    refused.assert_problem(403, "tenant_creation_restricted");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("zygo tenant add"),
        "{}",
        refused.body
    );
    assert_eq!(
        tenant_names(&app.get("/api/tenants", &carol).await),
        vec!["Acme"],
        "nothing was created"
    );
    // Everything else works as usual, an Admin's invitation included.
    let alice = Cred::Token(world.token_of("alice").await);
    invite(&world, &alice, world.dave.0, "Viewer")
        .await
        .assert_status(202);
}

#[tokio::test]
async fn by_default_anyone_may_create_a_tenant() {
    let world = World::new().await;
    let carol = Cred::Token(world.token_of("carol").await);
    let created = world
        .app
        .post("/api/tenants", &carol, json!({"name": "Initech"}))
        .await;
    assert_eq!(created.assert_status(201)["role"], "Admin");
}

#[tokio::test]
async fn concurrent_invitations_and_answers_settle_once_without_a_server_error() {
    let world = std::sync::Arc::new(World::new().await);
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    let acme = world.acme;
    let mut invites = Vec::new();
    for i in 0..10 {
        let (world, alice) = (world.clone(), alice.clone());
        let role = ["Viewer", "Editor"][i % 2];
        invites.push(tokio::spawn(async move {
            invite(&world, &alice, world.dave.0, role)
                .await
                .status
                .as_u16()
        }));
    }
    for invite in invites {
        assert_eq!(invite.await.unwrap(), 202);
    }
    let pending = world.app.get("/api/invitations", &dave).await;
    assert_eq!(
        pending.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "one invitation per tenant and user"
    );
    let mut answers = Vec::new();
    for i in 0..10 {
        let (world, dave) = (world.clone(), dave.clone());
        let action = ["accept", "decline"][i % 2];
        answers.push(tokio::spawn(async move {
            world
                .app
                .post(
                    &format!("/api/invitations/{acme}/{action}"),
                    &dave,
                    json!({}),
                )
                .await
                .status
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for answer in answers {
        statuses.push(answer.await.unwrap());
    }
    let settled = statuses.iter().filter(|s| matches!(s, 200 | 204)).count();
    assert_eq!(settled, 1, "exactly one answer wins: {statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 204 | 404)),
        "{statuses:?}"
    );
    assert_eq!(
        world
            .app
            .get("/api/invitations", &dave)
            .await
            .assert_status(200)["items"],
        json!([])
    );
}

/// Accepts the invitation to `tenant` as `cred`.
async fn accept(
    world: &World,
    cred: &Cred,
    tenant: impl std::fmt::Display,
) -> crate::helpers::Reply {
    world
        .app
        .post(
            &format!("/api/invitations/{tenant}/accept"),
            cred,
            json!({}),
        )
        .await
}

/// What accepting an invitation that does not exist answers (a tenant nobody invited to).
async fn no_invitation(world: &World, cred: &Cred) -> crate::helpers::Reply {
    accept(world, cred, Uuid::new_v4()).await
}

/// Asserts that `reply` is the 404 of no invitation, byte for byte in its body.
async fn assert_no_invitation(world: &World, cred: &Cred, reply: &crate::helpers::Reply) {
    reply.assert_problem(404, "not_found");
    let none = no_invitation(world, cred).await;
    assert_eq!(reply.status, none.status);
    assert_eq!(reply.body, none.body);
}

/// The tenant names `cred` sees in `GET /api/invitations`.
async fn invited_to(world: &World, cred: &Cred) -> Vec<String> {
    world
        .app
        .get("/api/invitations", cred)
        .await
        .assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["tenant_name"].as_str().unwrap().to_owned())
        .collect()
}

/// Bob (Editor of Acme) is made an Admin by Alice, and invites Dave into Acme as Admin.
async fn bob_promoted_invites_dave(world: &World, alice: &Cred) -> Cred {
    invite(world, alice, world.bob.0, "Admin")
        .await
        .assert_status(200);
    let bob = Cred::Token(world.token_of("bob").await);
    invite(world, &bob, world.dave.0, "Admin")
        .await
        .assert_status(202);
    bob
}

#[tokio::test]
async fn removing_a_member_deletes_the_invitations_they_issued_and_keeps_the_others() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    let erin_id = app
        .add_user("erin@example.com", crate::helpers::PASSWORD)
        .await;
    let erin = Cred::Token(world.token_of("erin").await);
    bob_promoted_invites_dave(&world, &alice).await;
    invite(&world, &alice, erin_id.0, "Viewer")
        .await
        .assert_status(202);
    assert_eq!(invited_to(&world, &dave).await, vec!["Acme"]);

    let removed = app
        .delete(
            &format!("/api/tenants/{}/members/{}", world.acme, world.bob),
            &alice,
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);

    // Bob's invitation went with him; Alice's stays.
    assert_eq!(invited_to(&world, &dave).await, Vec::<String>::new());
    let refused = accept(&world, &dave, world.acme).await;
    assert_no_invitation(&world, &dave, &refused).await;
    assert_eq!(
        tenant_names(&app.get("/api/tenants", &dave).await),
        vec!["Globex"]
    );
    assert_eq!(invited_to(&world, &erin).await, vec!["Acme"]);
    let accepted = accept(&world, &erin, world.acme).await;
    assert_eq!(accepted.assert_status(200)["role"], "Viewer");
}

#[tokio::test]
async fn zygo_member_remove_deletes_the_invitations_the_member_issued() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    bob_promoted_invites_dave(&world, &alice).await;
    let output = crate::cli::zygo_command(app._dir.path())
        .env("ZYGO_DATABASE_URL", &app.state.settings.database.url)
        .args([
            "member",
            "remove",
            &world.acme.to_string(),
            "bob@example.com",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(invited_to(&world, &dave).await, Vec::<String>::new());
    let refused = accept(&world, &dave, world.acme).await;
    assert_no_invitation(&world, &dave, &refused).await;
}

#[tokio::test]
async fn an_invitation_whose_inviter_may_no_longer_give_roles_is_gone_at_accept() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    bob_promoted_invites_dave(&world, &alice).await;
    // Bob is demoted: the policies no longer let a Viewer set roles.
    invite(&world, &alice, world.bob.0, "Viewer")
        .await
        .assert_status(200);
    // Still listed (nothing decides on a list), but accepting decides again.
    assert_eq!(invited_to(&world, &dave).await, vec!["Acme"]);
    let refused = accept(&world, &dave, world.acme).await;
    assert_no_invitation(&world, &dave, &refused).await;
    // Gone for good: promoting Bob again does not bring it back.
    invite(&world, &alice, world.bob.0, "Admin")
        .await
        .assert_status(200);
    assert_eq!(invited_to(&world, &dave).await, Vec::<String>::new());
    let again = accept(&world, &dave, world.acme).await;
    assert_no_invitation(&world, &dave, &again).await;
    assert_eq!(
        tenant_names(&app.get("/api/tenants", &dave).await),
        vec!["Globex"]
    );
    app.get(&format!("/api/tenants/{}/members", world.acme), &dave)
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn an_invitation_from_a_disabled_inviter_is_gone_at_accept() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    bob_promoted_invites_dave(&world, &alice).await;
    assert!(
        zygo::store::users::set_disabled(&app.state.db, world.bob, true)
            .await
            .unwrap()
    );
    let refused = accept(&world, &dave, world.acme).await;
    assert_no_invitation(&world, &dave, &refused).await;
    assert_eq!(
        tenant_names(&app.get("/api/tenants", &dave).await),
        vec!["Globex"]
    );
}

/// Makes the invitation of `user` to `tenant` look made `age` ago.
async fn age_invitation(
    world: &World,
    tenant: zygo::store::TenantId,
    user: zygo::store::UserId,
    age: chrono::Duration,
) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    use zygo::store::entities::invitation;
    let updated = invitation::Entity::update_many()
        .col_expr(
            invitation::Column::CreatedAt,
            Expr::value(chrono::Utc::now() - age),
        )
        .filter(invitation::Column::TenantId.eq(tenant.0))
        .filter(invitation::Column::UserId.eq(user.0))
        .exec(&world.app.state.db)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected, 1);
}

#[tokio::test]
async fn an_invitation_expires_after_seven_days_by_default_and_inviting_again_renews_it() {
    let world = World::new().await;
    let app = &world.app;
    assert_eq!(
        app.state.settings.invitation_lifetime,
        std::time::Duration::from_secs(7 * 24 * 3600)
    );
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    invite(&world, &alice, world.dave.0, "Admin")
        .await
        .assert_status(202);
    // Six days old: still good.
    age_invitation(&world, world.acme, world.dave, chrono::Duration::days(6)).await;
    assert_eq!(invited_to(&world, &dave).await, vec!["Acme"]);
    // Eight days old: not listed, neither accepted nor declined.
    age_invitation(&world, world.acme, world.dave, chrono::Duration::days(8)).await;
    assert_eq!(invited_to(&world, &dave).await, Vec::<String>::new());
    let refused = accept(&world, &dave, world.acme).await;
    assert_no_invitation(&world, &dave, &refused).await;
    assert_eq!(
        tenant_names(&app.get("/api/tenants", &dave).await),
        vec!["Globex"]
    );
    // Inviting again is a new decision, with a lifetime of its own.
    invite(&world, &alice, world.dave.0, "Editor")
        .await
        .assert_status(202);
    age_invitation(&world, world.acme, world.dave, chrono::Duration::days(8)).await;
    app.post(
        &format!("/api/invitations/{}/decline", world.acme),
        &dave,
        json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    invite(&world, &alice, world.dave.0, "Editor")
        .await
        .assert_status(202);
    assert_eq!(invited_to(&world, &dave).await, vec!["Acme"]);
    let accepted = accept(&world, &dave, world.acme).await;
    assert_eq!(accepted.assert_status(200)["role"], "Editor");
}

#[tokio::test]
async fn the_invitation_lifetime_is_a_setting() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.invitation_lifetime = std::time::Duration::from_secs(60);
    let world = World::on(spawn_with(settings, dir).await).await;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    invite(&world, &alice, world.dave.0, "Viewer")
        .await
        .assert_status(202);
    age_invitation(
        &world,
        world.acme,
        world.dave,
        chrono::Duration::seconds(61),
    )
    .await;
    assert_eq!(invited_to(&world, &dave).await, Vec::<String>::new());
    let refused = accept(&world, &dave, world.acme).await;
    assert_no_invitation(&world, &dave, &refused).await;
}
