//! Key rotation: one key signs, the others still verify until removed; `kid` picks the key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zygo::auth::token::parse_key_list;
use zygo::config::{Secret, Settings};
use zygo::startup::Application;

use crate::helpers::{Cred, PASSWORD, TestApp, kid_of, spawn_with, test_settings};

const OLD: &[u8] = b"old-key-old-key-old-key-old-key-0123456789";
const NEW: &[u8] = b"new-key-new-key-new-key-new-key-0123456789";

fn keys(list: &[(&str, &[u8])]) -> Vec<(String, Secret)> {
    list.iter()
        .map(|(kid, secret)| ((*kid).to_owned(), Secret::new(secret.to_vec())))
        .collect()
}

/// A server on the database of `base` (kept by the caller across restarts) with these keys.
async fn start(base: &Settings, list: &[(&str, &[u8])]) -> TestApp {
    let mut settings = base.clone();
    settings.token_secret = None;
    settings.token_keys = keys(list);
    spawn_with(settings, tempfile::tempdir().unwrap()).await
}

async fn token(app: &TestApp) -> String {
    let (cookie, _) = app.login("erin@example.com", PASSWORD).await;
    app.token(&Cred::Cookie(cookie), None).await
}

#[tokio::test]
async fn a_rotation_keeps_old_tokens_working_until_their_key_is_removed() {
    let data = tempfile::tempdir().unwrap();
    let base = test_settings(data.path());

    // Before: one key.
    let app = start(&base, &[("2026-10", OLD)]).await;
    app.add_user("erin@example.com", PASSWORD).await;
    let old_token = token(&app).await;
    assert_eq!(kid_of(&old_token), "2026-10");
    drop(app);

    // Step 1 and 2: the new key is added and made active (first); the old one still verifies.
    let app = start(&base, &[("2026-11", NEW), ("2026-10", OLD)]).await;
    let new_token = token(&app).await;
    assert_eq!(kid_of(&new_token), "2026-11", "the first key signs");
    for t in [&old_token, &new_token] {
        app.get("/api/me", &Cred::Token(t.clone()))
            .await
            .assert_status(200);
    }
    drop(app);

    // Step 3: the old key is removed; its tokens die, the new ones live on.
    let app = start(&base, &[("2026-11", NEW)]).await;
    app.get("/api/me", &Cred::Token(old_token))
        .await
        .assert_problem(401, "invalid_credentials");
    app.get("/api/me", &Cred::Token(new_token))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn the_kid_selects_the_key_so_a_token_cannot_borrow_another_keys_name() {
    let data = tempfile::tempdir().unwrap();
    let base = test_settings(data.path());
    let app = start(&base, &[("2026-11", NEW), ("2026-10", OLD)]).await;
    app.add_user("erin@example.com", PASSWORD).await;
    let genuine = token(&app).await;
    let (input, _) = genuine.rsplit_once('.').unwrap();
    let claims = input.split('.').nth(1).unwrap();
    use hmac::{Hmac, Mac};
    let sign = |kid: &str, key: &[u8]| {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#));
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
        mac.update(format!("{header}.{claims}").as_bytes());
        format!(
            "{header}.{claims}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    for (kid, key, status) in [
        ("2026-11", NEW, 200),
        ("2026-10", OLD, 200),
        ("2026-10", NEW, 401),
        ("2026-11", OLD, 401),
        ("2026-09", OLD, 401),
    ] {
        let reply = app.get("/api/me", &Cred::Token(sign(kid, key))).await;
        assert_eq!(reply.status, status, "kid {kid}: {}", reply.body);
        if status == 401 {
            reply.assert_problem(401, "invalid_credentials");
        }
    }
}

#[tokio::test]
async fn moving_from_a_single_secret_to_named_keys_keeps_tokens_with_an_unnamed_entry() {
    let data = tempfile::tempdir().unwrap();
    let base = test_settings(data.path());
    let mut settings = base.clone();
    settings.token_secret = Some(Secret::new(OLD.to_vec()));
    let app = spawn_with(settings, tempfile::tempdir().unwrap()).await;
    app.add_user("erin@example.com", PASSWORD).await;
    let before = token(&app).await;
    drop(app);

    let list = format!(
        "2026-11:{}, :{}",
        std::str::from_utf8(NEW).unwrap(),
        std::str::from_utf8(OLD).unwrap()
    );
    let mut settings = base;
    settings.token_secret = None;
    settings.token_keys = parse_key_list(&list).unwrap();
    let app = spawn_with(settings, tempfile::tempdir().unwrap()).await;
    app.get("/api/me", &Cred::Token(before))
        .await
        .assert_status(200);
    assert_eq!(kid_of(&token(&app).await), "2026-11");
}

#[tokio::test]
async fn bad_key_lists_refuse_to_start_with_a_reason_and_no_secret() {
    let long = "x".repeat(40);
    for (spec, reason) in [
        ("", "ZYGO_TOKEN_KEYS names no key"),
        ("no-colon", "ZYGO_TOKEN_KEYS entries are written kid:secret"),
        (
            "k1:short",
            "the key `k1` in ZYGO_TOKEN_KEYS is 5 bytes; it must be at least 32 bytes",
        ),
        (
            &format!("k1:{long},k1:{long}"),
            "the key id `k1` appears twice in ZYGO_TOKEN_KEYS",
        ),
        (
            &format!("bad kid:{long}"),
            "key id `bad kid` in ZYGO_TOKEN_KEYS must be 1 to 64 letters, digits, `-`, `_` or `.`",
        ),
    ] {
        let err = parse_key_list(spec).expect_err(spec).to_string();
        assert!(err.ends_with(reason), "{spec}: {err}");
        assert!(!err.contains(&long));
    }
    // Both ways of configuring keys at once is ambiguous: refused.
    let data = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data.path());
    settings.token_keys = keys(&[("k1", NEW)]);
    let err = Application::build(settings).await.err().expect("refused");
    assert_eq!(
        err.to_string(),
        "invalid token secret: set ZYGO_TOKEN_KEYS or ZYGO_TOKEN_SECRET, not both"
    );
}
