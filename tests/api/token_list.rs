//! Tokens people can manage: named, read-only, listed newest first, revoked from the list.

use serde_json::{Value, json};

use crate::helpers::{Cred, PASSWORD, World, jwt_part};

async fn mint(world: &World, cred: &Cred, query: &str) -> String {
    let reply = world.app.get(&format!("/api/token?{query}"), cred).await;
    reply.assert_status(200)["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// Every item of every page of `GET /api/tokens`, following `next_cursor`.
async fn all_tokens(world: &World, cred: &Cred, limit: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let path = match &cursor {
            None => format!("/api/tokens?limit={limit}"),
            Some(c) => format!("/api/tokens?limit={limit}&cursor={c}"),
        };
        let reply = world.app.get(&path, cred).await;
        let body = reply.assert_status(200);
        items.extend(body["items"].as_array().expect("items").iter().cloned());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
    panic!("more than 100 pages");
}

fn jti(token: &str) -> String {
    jwt_part(token, 1)["jti"].as_str().expect("jti").to_owned()
}

#[tokio::test]
async fn named_tokens_are_listed_newest_first_without_the_token_and_leave_the_list_when_revoked() {
    let world = World::new().await;
    let (cookie, _) = world.app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    let backup = mint(&world, &session, "name=nightly%20backup&expiration=3600").await;
    let deploy = mint(&world, &session, "name=deploy.script_2&read_only=false").await;
    let child = mint(&world, &Cred::Token(deploy.clone()), "name=child").await;
    let unnamed = mint(&world, &session, "").await;
    // Another user's tokens are not in the list.
    world.token_of("bob").await;

    let listed = all_tokens(&world, &Cred::Token(unnamed.clone()), 100).await;
    let jtis: Vec<&str> = listed.iter().map(|t| t["jti"].as_str().unwrap()).collect();
    // Newest first (tokens minted in the same second are ordered by jti, also descending).
    let mut expected = vec![jti(&backup), jti(&deploy), jti(&child), jti(&unnamed)];
    let created = |t: &Value| t["created_at"].as_str().unwrap().to_owned();
    for pair in listed.windows(2) {
        assert!(
            (created(&pair[0]), pair[0]["jti"].as_str().unwrap())
                > (created(&pair[1]), pair[1]["jti"].as_str().unwrap()),
            "{listed:?}"
        );
    }
    let mut got: Vec<String> = jtis.iter().map(|s| (*s).to_owned()).collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);

    let by_jti = |token: &str| {
        listed
            .iter()
            .find(|t| t["jti"] == jti(token))
            .cloned()
            .unwrap()
    };
    let entry = by_jti(&backup);
    assert_eq!(entry["name"], "nightly backup");
    assert_eq!(entry["read_only"], false);
    assert_eq!(entry["minted_from"], "session");
    let claims = jwt_part(&backup, 1);
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(entry["expires_at"].as_str().unwrap())
            .unwrap()
            .timestamp(),
        claims["exp"].as_i64().unwrap()
    );
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(entry["created_at"].as_str().unwrap())
            .unwrap()
            .timestamp(),
        claims["iat"].as_i64().unwrap()
    );
    let mut keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "expires_at",
            "jti",
            "minted_from",
            "name",
            "read_only"
        ]
    );
    assert_eq!(by_jti(&child)["minted_from"], "token");
    assert_eq!(by_jti(&child)["name"], "child");
    assert_eq!(by_jti(&unnamed)["name"], Value::Null);
    let text = serde_json::to_string(&listed).unwrap();
    for token in [&backup, &deploy, &child, &unnamed] {
        assert!(!text.contains(token.as_str()), "a listed token itself");
    }

    // Revoking a listed jti revokes its family: deploy and the child minted from it go.
    let reply = world
        .app
        .post(
            "/api/token/revoke",
            &Cred::Token(unnamed.clone()),
            json!({"jti": jti(&deploy)}),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 204, "{}", reply.body);
    let left = all_tokens(&world, &Cred::Token(unnamed.clone()), 100).await;
    let mut left: Vec<String> = left
        .iter()
        .map(|t| t["jti"].as_str().unwrap().to_owned())
        .collect();
    left.sort();
    let mut expected = vec![jti(&backup), jti(&unnamed)];
    expected.sort();
    assert_eq!(left, expected);
    world
        .app
        .get("/api/me", &Cred::Token(child))
        .await
        .assert_problem(401, "token_revoked");
}

#[tokio::test]
async fn the_token_list_comes_in_pages_that_concatenate_to_the_whole_list() {
    let world = World::new().await;
    let (cookie, _) = world.app.login("carol@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    let mut minted = Vec::new();
    for i in 0..7 {
        minted.push(jti(
            &mint(&world, &session, &format!("name=script-{i}")).await
        ));
    }
    let whole = all_tokens(&world, &session, 100).await;
    let paged = all_tokens(&world, &session, 2).await;
    assert_eq!(whole.len(), 7);
    assert_eq!(paged, whole);
    let reply = world.app.get("/api/tokens?limit=3", &session).await;
    let body = reply.assert_status(200);
    assert_eq!(body["items"].as_array().unwrap().len(), 3);
    assert!(body["next_cursor"].is_string());
    // Expired tokens are not listed.
    mint(&world, &session, "expiration=1&name=short").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(all_tokens(&world, &session, 100).await.len(), 7);
    world
        .app
        .get("/api/tokens", &Cred::None)
        .await
        .assert_problem(401, "unauthenticated");
}

#[tokio::test]
async fn bad_names_flags_cursors_and_foreign_jtis_are_refused_naming_the_field_and_change_nothing()
{
    let world = World::new().await;
    let alice = Cred::Token(world.token_of("alice").await);
    let bob_token = world.token_of("bob").await;
    let before = all_tokens(&world, &alice, 100).await;
    let too_long = "a".repeat(65);
    for (query, field) in [
        ("name=", "name"),
        ("name=-leading-dash", "name"),
        ("name=semi%3Bcolon", "name"),
        (&*format!("name={too_long}"), "name"),
        ("read_only=maybe", "read_only"),
        ("read_only=", "read_only"),
    ] {
        let reply = world.app.get(&format!("/api/token?{query}"), &alice).await;
        reply.assert_problem(400, "bad_request");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{field}:")),
            "{query}: {detail}"
        );
    }
    for query in ["limit=0", "limit=501", "cursor=%21%21", "cursor=bm9wZQ"] {
        let reply = world.app.get(&format!("/api/tokens?{query}"), &alice).await;
        reply.assert_problem(400, "bad_request");
        let field = query.split('=').next().unwrap();
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}:")),
            "{query}: {}",
            reply.body
        );
    }
    // Bob's jti is the same 404 as a jti that does not exist, and bob's token still works.
    for jti_value in [jti(&bob_token), uuid::Uuid::new_v4().to_string()] {
        let reply = world
            .app
            .post("/api/token/revoke", &alice, json!({"jti": jti_value}))
            .await;
        reply.assert_problem(404, "not_found");
        assert_eq!(reply.body["detail"], "token not found");
    }
    world
        .app
        .get("/api/me", &Cred::Token(bob_token))
        .await
        .assert_status(200);
    assert_eq!(all_tokens(&world, &alice, 100).await, before);
}

#[tokio::test]
async fn a_read_only_token_reads_but_every_write_is_forbidden_by_the_policies() {
    let world = World::new().await;
    let acme = world.acme;
    let (cookie, _) = world.app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    let writer = Cred::Token(mint(&world, &session, "name=writer").await);
    let flow = world.flow(acme, &writer, "existing").await;
    let reader_token = mint(&world, &session, "name=reader&read_only=true").await;
    assert_eq!(jwt_part(&reader_token, 1)["ro"], true);
    // A read-only token may not mint a writer (the policies refuse it); what it mints without
    // saying is read-only too.
    world
        .app
        .get(
            "/api/token?read_only=false",
            &Cred::Token(reader_token.clone()),
        )
        .await
        .assert_problem(403, "forbidden");
    let grandchild = mint(&world, &Cred::Token(reader_token.clone()), "name=child").await;
    assert_eq!(jwt_part(&grandchild, 1)["ro"], true);

    for token in [reader_token, grandchild] {
        let reader = Cred::Token(token);
        let app = &world.app;
        app.get(&format!("/api/tenants/{acme}/flows"), &reader)
            .await
            .assert_status(200);
        app.get(&format!("/api/tenants/{acme}/flows/{flow}"), &reader)
            .await
            .assert_status(200);
        app.get(&format!("/api/tenants/{acme}/members"), &reader)
            .await
            .assert_status(200);
        let writes = [
            app.post(
                &format!("/api/tenants/{acme}/flows"),
                &reader,
                json!({"name": "new", "definition": {}}),
            )
            .await,
            app.patch(
                &format!("/api/tenants/{acme}/flows/{flow}"),
                &reader,
                json!({"name": "renamed"}),
            )
            .await,
            app.delete(&format!("/api/tenants/{acme}/flows/{flow}"), &reader)
                .await,
            app.put(
                &format!("/api/tenants/{acme}/members/{}", world.carol),
                &reader,
                json!({"role": "Admin"}),
            )
            .await,
            app.delete(
                &format!("/api/tenants/{acme}/members/{}", world.bob),
                &reader,
            )
            .await,
            app.post("/api/tenants", &reader, json!({"name": "Initech"}))
                .await,
        ];
        for reply in writes {
            reply.assert_problem(403, "forbidden");
        }
    }
    // Nothing changed: the flow kept its name, the members their roles, no tenant was made.
    let flow_now = world
        .app
        .get(&format!("/api/tenants/{acme}/flows/{flow}"), &writer)
        .await;
    assert_eq!(flow_now.assert_status(200)["name"], "existing");
    let members = world
        .app
        .get(&format!("/api/tenants/{acme}/members"), &writer)
        .await;
    let roles: Vec<(String, String)> = members.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(roles.contains(&(world.carol.to_string(), "Viewer".into())));
    assert!(roles.contains(&(world.bob.to_string(), "Editor".into())));
    let tenants = world.app.get("/api/tenants", &writer).await;
    assert_eq!(
        tenants.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let listed = all_tokens(&world, &writer, 100).await;
    let read_only: Vec<bool> = listed
        .iter()
        .filter(|t| t["name"] != "writer")
        .map(|t| t["read_only"].as_bool().unwrap())
        .collect();
    assert_eq!(read_only, [true, true]);
}
