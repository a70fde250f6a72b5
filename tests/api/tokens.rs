//! API tokens, as the seed documentation promises them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{Cred, PASSWORD, SECRET, World, jwt_part, kid_of};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Signs `claims` with HS256 and the given key and header kid.
fn forge(claims: &Value, key: &[u8], alg: Algorithm, kid: &str) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key).unwrap()).unwrap()
}

#[tokio::test]
async fn a_session_mints_a_token_with_the_documented_shape_and_default_lifetime() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let reply = app.get("/api/token", &Cred::Cookie(cookie)).await;
    let body = reply.assert_status(200);
    assert_eq!(body["expires_in"], 600);
    assert_eq!(reply.headers["cache-control"], "no-store");
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("eyJhbGciOiJIUzI1NiIs") || token.starts_with("eyJ0eXAi"));
    let header = jwt_part(token, 0);
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].is_string());
    let claims = jwt_part(token, 1);
    assert_eq!(claims["sub"], world.alice.to_string());
    assert!(claims["jti"].is_string());
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 600);
    assert!((iat - now()).abs() <= 5);
    // A token minted from a session starts its own family.
    assert_eq!(claims["fam"], claims["jti"]);
    // No tenant and no role in the token: they are resolved per request.
    assert_eq!(claims.as_object().unwrap().len(), 5, "{claims}");
}

#[tokio::test]
async fn a_token_mints_tokens_and_never_counts_a_login() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let first = app.token(&Cred::Cookie(cookie), Some(3600)).await;
    let reply = app
        .get("/api/token?expiration=120", &Cred::Token(first.clone()))
        .await;
    assert_eq!(reply.assert_status(200)["expires_in"], 120);
    let second = reply.body["token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let me = app.get("/api/me", &Cred::Token(second)).await;
    let me = me.assert_status(200);
    assert_eq!(me["login_count"], 1, "only the browser login counts");
    assert_eq!(me["current_tenant_id"], Value::Null);
    assert_eq!(me["id"], world.alice.to_string());
}

#[tokio::test]
async fn expiration_outside_the_allowed_range_is_a_400_naming_the_field() {
    let world = World::new().await;
    let token = world.token_of("alice").await;
    let cred = Cred::Token(token);
    for bad in [
        "0",
        "-5",
        "2592001",
        "abc",
        "1.5",
        "99999999999999999999999",
    ] {
        let reply = world
            .app
            .get(&format!("/api/token?expiration={bad}"), &cred)
            .await;
        reply.assert_problem(400, "bad_request");
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap()
                .contains("expiration"),
            "{bad}: {}",
            reply.body
        );
    }
    // From a session, which sets no ceiling of its own (a token's children expire with it).
    let (cookie, _) = world.app.login("alice@example.com", PASSWORD).await;
    for good in [1, 2_592_000] {
        let reply = world
            .app
            .get(
                &format!("/api/token?expiration={good}"),
                &Cred::Cookie(cookie.clone()),
            )
            .await;
        assert_eq!(reply.assert_status(200)["expires_in"], good);
    }
}

#[tokio::test]
async fn expiration_errors_say_what_the_value_must_be() {
    let world = World::new().await;
    let cred = Cred::Token(world.token_of("alice").await);
    let cases = [
        (
            "0",
            "expiration: must be a whole number of seconds from 1 to 2592000",
        ),
        (
            "2592001",
            "expiration: must be a whole number of seconds from 1 to 2592000",
        ),
        (
            "-1",
            "expiration: must be a whole number of seconds from 1 to 2592000",
        ),
        (
            "soon",
            "expiration: must be a whole number of seconds from 1 to 2592000",
        ),
        (
            "1.5",
            "expiration: must be a whole number of seconds from 1 to 2592000",
        ),
    ];
    for (value, detail) in cases {
        let reply = world
            .app
            .get(&format!("/api/token?expiration={value}"), &cred)
            .await;
        reply.assert_problem(400, "bad_request");
        assert_eq!(reply.body["detail"], detail, "expiration={value}");
    }
    let reply = world.app.get("/api/tenants/abc/flows", &cred).await;
    assert_eq!(reply.body["detail"], "tenant_id: must be a UUID");
}

#[tokio::test]
async fn a_maximum_below_the_default_caps_the_default_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.max_token_seconds = 100;
    let world =
        World::on(crate::helpers::spawn_with(settings, tempfile::tempdir().unwrap()).await).await;
    let (cookie, _) = world.app.login("alice@example.com", PASSWORD).await;
    let reply = world
        .app
        .get("/api/token", &Cred::Cookie(cookie.clone()))
        .await;
    assert_eq!(reply.assert_status(200)["expires_in"], 100);
    let token = reply.body["token"].as_str().unwrap();
    let claims = jwt_part(token, 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        100
    );
    world
        .app
        .get("/api/token?expiration=101", &Cred::Cookie(cookie))
        .await
        .assert_problem(400, "bad_request");
    let spec: Value = serde_json::from_str(
        &world
            .app
            .client
            .get(format!("{}/openapi.json", world.app.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let parameter = &spec["paths"]["/api/token"]["get"]["parameters"][0];
    assert_eq!(parameter["name"], "expiration");
    assert_eq!(parameter["schema"]["maximum"], 100);
    assert_eq!(parameter["schema"]["default"], 100);
}

#[tokio::test]
async fn one_token_works_across_tenants_with_the_role_of_each() {
    let world = World::new().await;
    let app = &world.app;
    let token = Cred::Token(world.token_of("alice").await);
    // Admin in Acme: may create flows.
    world.flow(world.acme, &token, "in acme").await;
    // Viewer in Globex: may read, may not create.
    app.get(&format!("/api/tenants/{}/flows", world.globex), &token)
        .await
        .assert_status(200);
    app.post(
        &format!("/api/tenants/{}/flows", world.globex),
        &token,
        json!({"name": "nope"}),
    )
    .await
    .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn bearer_authorization_is_accepted_too() {
    let world = World::new().await;
    let token = world.token_of("bob").await;
    let me = world.app.get("/api/me", &Cred::Bearer(token)).await;
    assert_eq!(me.assert_status(200)["email"], "bob@example.com");
}

#[tokio::test]
async fn a_bad_token_header_is_401_even_next_to_a_valid_cookie() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    app.get("/api/me", &Cred::Both("garbage".into(), cookie.clone()))
        .await
        .assert_problem(401, "invalid_credentials");
    app.get("/api/me", &Cred::Cookie(cookie))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn hand_forged_tokens_are_refused() {
    let world = World::new().await;
    let app = &world.app;
    let real = world.token_of("alice").await;
    let kid = kid_of(&real);
    let sub = world.alice.to_string();
    let valid_claims =
        json!({"sub": sub, "iat": now(), "exp": now() + 600, "jti": "x", "fam": "x"});

    // Signed with the real key, the forger's own claims: proves the harness forges correctly.
    let control = forge(&valid_claims, SECRET, Algorithm::HS256, &kid);
    app.get("/api/me", &Cred::Token(control))
        .await
        .assert_status(200);

    let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let header_none_kid = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{kid}"}}"#));
    let payload = URL_SAFE_NO_PAD.encode(valid_claims.to_string());
    let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
    let mut tampered_claims = jwt_part(&real, 1);
    tampered_claims["sub"] = json!(world.dave.to_string());
    parts[1] = URL_SAFE_NO_PAD.encode(tampered_claims.to_string());
    let tampered = parts.join(".");
    let truncated_sig = &real[..real.len() - 4];

    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{header_none}.{payload}."),
            "alg none",
            "invalid_credentials",
        ),
        (
            format!("{header_none_kid}.{payload}."),
            "alg none with kid",
            "invalid_credentials",
        ),
        (
            forge(
                &valid_claims,
                b"another-secret-another-secret-another-secret",
                Algorithm::HS256,
                &kid,
            ),
            "wrong key",
            "invalid_credentials",
        ),
        (
            forge(&valid_claims, SECRET, Algorithm::HS512, &kid),
            "HS512 with the right key",
            "invalid_credentials",
        ),
        (
            forge(&valid_claims, SECRET, Algorithm::HS256, "some-other-kid"),
            "unknown kid",
            "invalid_credentials",
        ),
        (
            tampered,
            "claims changed after signing",
            "invalid_credentials",
        ),
        (
            truncated_sig.to_owned(),
            "truncated signature",
            "invalid_credentials",
        ),
        (
            format!("{real}.extra"),
            "four segments",
            "invalid_credentials",
        ),
        (
            forge(
                &json!({"sub": sub, "iat": now() - 700, "exp": now() - 100, "jti": "x", "fam": "x"}),
                SECRET,
                Algorithm::HS256,
                &kid,
            ),
            "expired",
            "token_expired",
        ),
        (
            forge(
                &json!({"sub": sub, "iat": now(), "jti": "x", "fam": "x"}),
                SECRET,
                Algorithm::HS256,
                &kid,
            ),
            "no exp",
            "invalid_credentials",
        ),
        (
            forge(
                &json!({"sub": "not-a-uuid", "iat": now(), "exp": now() + 60, "jti": "x", "fam": "x"}),
                SECRET,
                Algorithm::HS256,
                &kid,
            ),
            "sub not a user id",
            "invalid_credentials",
        ),
        (
            forge(
                &json!({"sub": uuid::Uuid::new_v4().to_string(), "iat": now(), "exp": now() + 60, "jti": "x", "fam": "x"}),
                SECRET,
                Algorithm::HS256,
                &kid,
            ),
            "unknown user",
            "invalid_credentials",
        ),
        ("".to_owned(), "empty", "invalid_credentials"),
    ];
    for (token, why, code) in cases {
        let reply = app.get("/api/me", &Cred::Token(token.clone())).await;
        assert_eq!(reply.status, 401, "{why} was accepted: {}", reply.body);
        reply.assert_problem(401, code);
        let bearer = app.get("/api/tenants", &Cred::Bearer(token)).await;
        assert_eq!(bearer.status, 401, "{why} as bearer: {}", bearer.body);
    }
}

#[tokio::test]
async fn expiry_is_enforced_to_the_second_without_leeway() {
    let world = World::new().await;
    let app = &world.app;
    let token = world.token_of("alice").await;
    let short = app.token(&Cred::Token(token), Some(1)).await;
    let exp = jwt_part(&short, 1)["exp"].as_i64().unwrap();
    // Wait until the clock reaches `exp`: from that second on the token is dead.
    while now() < exp {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.get("/api/me", &Cred::Token(short))
        .await
        .assert_problem(401, "token_expired");
}

#[tokio::test]
async fn tokens_of_a_disabled_or_deleted_user_are_refused() {
    let world = World::new().await;
    let app = &world.app;
    let carol = Cred::Token(world.token_of("carol").await);
    let bob = Cred::Token(world.token_of("bob").await);
    app.get("/api/me", &carol).await.assert_status(200);
    app.get("/api/me", &bob).await.assert_status(200);

    zygo::store::users::set_disabled(&app.state.db, world.carol, true)
        .await
        .unwrap();
    app.state.authn.forget_user(world.carol).await;
    app.get("/api/me", &carol)
        .await
        .assert_problem(401, "invalid_credentials");

    zygo::store::users::delete(&app.state.db, world.bob)
        .await
        .unwrap();
    app.state.authn.forget_user(world.bob).await;
    app.get("/api/me", &bob)
        .await
        .assert_problem(401, "invalid_credentials");
}
