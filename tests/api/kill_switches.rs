//! Kill switches that always hold: log out everywhere, a password change and disabling a user end
//! every session and token of the user in a constant number of statements, however many tokens
//! there are; a change that fails ends nothing; enabling a user again revives nothing. And a token
//! never grants more than the credential that minted it: its lifetime, read-only or not, and what
//! it may do to the account. Each runs on SQLite and PostgreSQL.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use serde_json::{Value, json};
use zygo::store::{self, UserId};

use crate::helpers::{Cred, PASSWORD, TestApp, World, spawn_with, test_settings};

/// More tokens than one multi-row statement with three parameters a row could ever revoke.
const MANY: usize = 11_000;

fn claims(token: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// Mints `count` tokens for the user exactly as `GET /api/token` records them (one transaction,
/// so the test takes seconds), and returns a few of them to try: the first, one in the middle
/// and the last.
async fn mint_many(app: &TestApp, user: UserId, count: usize) -> Vec<String> {
    let before = store::tokens::count_live(&app.state.db, user, None)
        .await
        .unwrap();
    let txn = app.state.db.begin().await.unwrap();
    let mut kept = Vec::new();
    for n in 0..count {
        let (token, claims) = app.state.authn.keys.mint(user, 3_600, None, false).unwrap();
        let at = |seconds| chrono::DateTime::from_timestamp(seconds, 0).unwrap();
        store::tokens::record(
            &txn,
            store::tokens::NewToken {
                jti: &claims.jti,
                user,
                family: &claims.fam,
                issued_at: at(claims.iat),
                expires_at: at(claims.exp),
                name: None,
                read_only: false,
            },
        )
        .await
        .unwrap();
        if n == 0 || n == count / 2 || n + 1 == count {
            kept.push(token);
        }
    }
    txn.commit().await.unwrap();
    assert_eq!(
        store::tokens::count_live(&app.state.db, user, None)
            .await
            .unwrap(),
        before + u64::try_from(count).unwrap()
    );
    kept
}

/// The test world on a server whose settings `configure` changed.
async fn world_with(configure: impl FnOnce(&mut zygo::config::Settings)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    configure(&mut settings);
    World::on(spawn_with(settings, dir).await).await
}

/// A world whose users may hold and mint as many tokens as the test needs.
async fn roomy_world() -> World {
    world_with(|settings| {
        settings.max_live_tokens = 100_000;
        settings.token_mints_per_minute = 0;
    })
    .await
}

/// Every token is refused: `token_revoked`, or `invalid_credentials` while the user is disabled.
/// What `zygo user disable` and `zygo user enable` run, then this instance's cache of the user
/// dropped as the command's notice would; whether the flag changed.
async fn set_disabled(app: &TestApp, user: UserId, disabled: bool) -> bool {
    let changed = store::users::set_disabled_ending_credentials(
        &app.state.db,
        user,
        disabled,
        &zygo::store::audit::Actor::default(),
    )
    .await
    .unwrap();
    app.state.authn.forget_user(user).await;
    changed
}

async fn assert_all_dead_as(app: &TestApp, tokens: &[String], code: &str) {
    for token in tokens {
        app.get("/api/me", &Cred::Token(token.clone()))
            .await
            .assert_problem(401, code);
    }
}

async fn assert_all_dead(app: &TestApp, tokens: &[String]) {
    assert_all_dead_as(app, tokens, "token_revoked").await;
}

#[tokio::test]
async fn log_out_everywhere_ends_eleven_thousand_tokens_at_once() {
    let world = roomy_world().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let minted = app.token(&Cred::Cookie(cookie.clone()), Some(3_600)).await;
    let mut tokens = mint_many(app, world.alice, MANY).await;
    tokens.push(minted.clone());
    for token in &tokens {
        app.get("/api/me", &Cred::Token(token.clone()))
            .await
            .assert_status(200);
    }

    app.post("/api/logout-everywhere", &Cred::Token(minted), json!({}))
        .await
        .assert_status(204);
    assert_all_dead(app, &tokens).await;
    app.get("/api/me", &Cred::Cookie(cookie))
        .await
        .assert_problem(401, "session_invalid");
    // Nobody else is touched, and the user starts afresh at once.
    let bob = world.token_of("bob").await;
    app.get("/api/me", &Cred::Token(bob))
        .await
        .assert_status(200);
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let fresh = app.token(&Cred::Cookie(cookie.clone()), None).await;
    app.get("/api/me", &Cred::Token(fresh.clone()))
        .await
        .assert_status(200);
    // Only the fresh token is listed: the ended ones no longer count as live.
    let listed = app.get("/api/tokens", &Cred::Cookie(cookie)).await;
    let items = listed.assert_status(200)["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", listed.body);
    assert_eq!(items[0]["jti"], claims(&fresh)["jti"]);
}

#[tokio::test]
async fn a_password_change_ends_eleven_thousand_tokens_and_keeps_the_browser_signed_in() {
    let world = roomy_world().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let (other_browser, _) = app.login("alice@example.com", PASSWORD).await;
    let tokens = mint_many(app, world.alice, MANY).await;

    let reply = app
        .put(
            "/api/me/password",
            &Cred::Cookie(cookie.clone()),
            json!({"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"}),
        )
        .await;
    reply.assert_status(204);
    let fresh = crate::helpers::session_cookie(&reply).expect("a fresh session cookie");
    assert_all_dead(app, &tokens).await;
    for old in [cookie, other_browser] {
        app.get("/api/me", &Cred::Cookie(old))
            .await
            .assert_problem(401, "session_invalid");
    }
    // The browser that made the change goes on with its fresh session, and may mint at once.
    app.get("/api/me", &Cred::Cookie(fresh.clone()))
        .await
        .assert_status(200);
    let token = app.token(&Cred::Cookie(fresh), None).await;
    app.get("/api/me", &Cred::Token(token))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn disabling_a_user_with_eleven_thousand_tokens_ends_them_for_good() {
    let world = roomy_world().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let tokens = mint_many(app, world.alice, MANY).await;
    // What `zygo user disable` and `zygo user enable` run (tests/api/cli.rs runs the binary).
    assert!(set_disabled(app, world.alice, true).await);
    assert_all_dead_as(app, &tokens, "invalid_credentials").await;
    set_disabled(app, world.alice, false).await;
    // Enabled again: the user logs in, but nothing issued before the switch comes back.
    assert_all_dead(app, &tokens).await;
    app.get("/api/me", &Cred::Cookie(cookie))
        .await
        .assert_problem(401, "session_invalid");
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    app.get("/api/me", &Cred::Cookie(cookie))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn the_disable_command_holds_with_eleven_thousand_tokens_and_enable_revives_none() {
    let world = roomy_world().await;
    let app = &world.app;
    let tokens = mint_many(app, world.alice, MANY).await;
    let data = tempfile::tempdir().unwrap();
    let run = |command: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_zygo"))
            .env("ZYGO_DATA_DIR", data.path())
            .env("ZYGO_DATABASE_URL", &app.state.settings.database.url)
            .args(["user", command, "alice@example.com"])
            .output()
            .unwrap()
    };
    let out = run("disable");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.state.authn.forget_user(world.alice).await;
    assert_all_dead_as(app, &tokens, "invalid_credentials").await;
    let out = run("enable");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.state.authn.forget_user(world.alice).await;
    assert_all_dead(app, &tokens).await;
}

/// Makes every write of `credentials_valid_after` fail, as a database fault in the middle of a
/// password change would.
async fn break_kill_switch(app: &TestApp) {
    let db = &app.state.db;
    let backend = db.get_database_backend();
    let statements: &[&str] = if backend == sea_orm::DbBackend::Postgres {
        &[
            "CREATE FUNCTION refuse_kill() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_kill BEFORE UPDATE OF credentials_valid_after ON users \
             FOR EACH ROW EXECUTE FUNCTION refuse_kill()",
        ]
    } else {
        &[
            "CREATE TRIGGER refuse_kill BEFORE UPDATE OF credentials_valid_after ON users \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        ]
    };
    for sql in statements {
        db.execute_raw(Statement::from_string(backend, *sql))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_password_change_that_fails_changes_nothing() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let token = app.token(&Cred::Cookie(cookie.clone()), None).await;
    break_kill_switch(app).await;

    let reply = app
        .put(
            "/api/me/password",
            &Cred::Token(token.clone()),
            json!({"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"}),
        )
        .await;
    reply.assert_problem(500, "internal");
    // The password did not change, and every credential still works.
    app.get("/api/me", &Cred::Token(token))
        .await
        .assert_status(200);
    app.get("/api/me", &Cred::Cookie(cookie))
        .await
        .assert_status(200);
    app.login("alice@example.com", PASSWORD).await;
    app.post(
        "/api/login",
        &Cred::None,
        json!({"email": "alice@example.com", "password": "a-brand-new-passphrase"}),
    )
    .await
    .assert_problem(401, "login_failed");
}

#[tokio::test]
async fn a_user_holds_at_most_the_configured_number_of_live_tokens() {
    let world = world_with(|settings| {
        settings.max_live_tokens = 3;
    })
    .await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    let first = app.token(&session, None).await;
    app.token(&Cred::Token(first.clone()), None).await;
    app.token(&session, None).await;

    // From a session and from a token alike, the fourth is refused, naming the limit.
    for cred in [session.clone(), Cred::Token(first.clone())] {
        let refused = app.get("/api/token", &cred).await;
        refused.assert_problem(409, "token_limit");
        assert!(
            refused.body["detail"]
                .as_str()
                .unwrap()
                .contains("3 live tokens"),
            "{}",
            refused.body
        );
    }
    // Another user is not affected.
    world.token_of("bob").await;
    // A revoked family frees its places (first and its child).
    app.post("/api/token/revoke", &Cred::Token(first), json!({}))
        .await
        .assert_status(204);
    app.token(&session, None).await;
    app.token(&session, None).await;
    app.get("/api/token", &session)
        .await
        .assert_problem(409, "token_limit");
}

#[tokio::test]
async fn concurrent_mints_never_pass_the_live_token_bound() {
    let world = world_with(|settings| {
        settings.max_live_tokens = 5;
    })
    .await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    let replies =
        futures_util::future::join_all((0..20).map(|_| app.get("/api/token", &session))).await;
    let minted = replies.iter().filter(|r| r.status == 200).count();
    for reply in replies.iter().filter(|r| r.status != 200) {
        reply.assert_problem(409, "token_limit");
    }
    assert!((1..=5).contains(&minted), "{minted} minted");
    let live = store::tokens::count_live(&app.state.db, world.alice, None)
        .await
        .unwrap();
    assert_eq!(live, u64::try_from(minted).unwrap());
}

#[tokio::test]
async fn minting_faster_than_the_configured_rate_is_refused_with_a_wait() {
    let world = world_with(|settings| {
        settings.token_mints_per_minute = 2;
    })
    .await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    app.token(&session, None).await;
    app.token(&session, None).await;
    let refused = app.get("/api/token", &session).await;
    refused.assert_problem(429, "too_many_mints");
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "Retry-After: {wait}");
    // The rate is per user.
    world.token_of("bob").await;
}

#[tokio::test]
async fn a_token_minted_from_a_token_never_outlives_it() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let parent = app.token(&Cred::Cookie(cookie), Some(60)).await;
    let reply = app
        .get(
            "/api/token?expiration=2592000",
            &Cred::Token(parent.clone()),
        )
        .await;
    let body = reply.assert_status(200);
    let child = body["token"].as_str().unwrap().to_owned();
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!(expires_in <= 60, "expires_in {expires_in}");
    assert!(claims(&child)["exp"].as_i64() <= claims(&parent)["exp"].as_i64());
    let grandchild = app.token(&Cred::Token(child), Some(2_592_000)).await;
    assert!(claims(&grandchild)["exp"].as_i64() <= claims(&parent)["exp"].as_i64());
    // A shorter lifetime than the parent's is granted as asked.
    let reply = app
        .get("/api/token?expiration=10", &Cred::Token(parent))
        .await;
    assert_eq!(reply.assert_status(200)["expires_in"], 10);
}

#[tokio::test]
async fn a_read_only_token_cannot_manage_the_account() {
    let world = World::new().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let session = Cred::Cookie(cookie);
    let other = app.token(&session, None).await;
    let reply = app
        .get("/api/token?read_only=true&name=reader", &session)
        .await;
    let reader = reply.assert_status(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ro = Cred::Token(reader.clone());

    app.post("/api/logout-everywhere", &ro, json!({}))
        .await
        .assert_problem(403, "forbidden");
    let jti = claims(&other)["jti"].as_str().unwrap().to_owned();
    app.post("/api/token/revoke", &ro, json!({"jti": jti}))
        .await
        .assert_problem(403, "forbidden");
    app.put(
        "/api/me/password",
        &ro,
        json!({"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.get("/api/token?read_only=false", &ro)
        .await
        .assert_problem(403, "forbidden");
    // Nothing changed: the other token and the session work, the password is the same.
    app.get("/api/me", &Cred::Token(other))
        .await
        .assert_status(200);
    app.get("/api/me", &session).await.assert_status(200);
    app.login("alice@example.com", PASSWORD).await;

    // What it may do: mint read-only tokens (the default for it) and revoke its own family.
    let child = app.token(&ro, None).await;
    assert_eq!(claims(&child)["ro"], true);
    let reply = app.get("/api/token?read_only=true", &ro).await;
    assert_eq!(
        claims(reply.assert_status(200)["token"].as_str().unwrap())["ro"],
        true
    );
    app.post("/api/token/revoke", &ro, json!({}))
        .await
        .assert_status(204);
    app.get("/api/me", &Cred::Token(child))
        .await
        .assert_problem(401, "token_revoked");
}

#[tokio::test]
async fn a_token_minted_while_the_user_logs_out_everywhere_does_not_survive_it() {
    let world = roomy_world().await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let parent = app.token(&Cred::Cookie(cookie.clone()), Some(3_600)).await;
    let creds = [Cred::Cookie(cookie), Cred::Token(parent.clone())];
    let mints =
        futures_util::future::join_all((0..30).map(|n| app.get("/api/token", &creds[n % 2])));
    let logout = async {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        app.post(
            "/api/logout-everywhere",
            &Cred::Token(parent.clone()),
            json!({}),
        )
        .await
    };
    let (replies, logout) = tokio::join!(mints, logout);
    logout.assert_status(204);
    let minted: Vec<String> = replies
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.body["token"].as_str().unwrap().to_owned())
        .collect();
    for reply in replies.iter().filter(|r| r.status != 200) {
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    assert_all_dead(app, &minted).await;
}

#[tokio::test]
async fn a_login_racing_a_password_change_or_a_disable_keeps_no_session() {
    // Logins in flight hold places on the throttle's counters: room for all of them.
    let world = world_with(|settings| {
        settings.login_failures_per_account_and_address = 100;
        settings.login_failures_per_address = 100;
        settings.login_failures_per_account = 100;
    })
    .await;
    let app = &world.app;
    let (cookie, _) = app.login("alice@example.com", PASSWORD).await;
    let login = || {
        app.post(
            "/api/login",
            &Cred::None,
            json!({"email": "alice@example.com", "password": PASSWORD}),
        )
    };
    // Logins with the old password, some of them checking it while the password changes.
    let logins = futures_util::future::join_all((0..12).map(|_| login()));
    let change = async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        app.put(
            "/api/me/password",
            &Cred::Cookie(cookie.clone()),
            json!({"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"}),
        )
        .await
    };
    let (replies, changed) = tokio::join!(logins, change);
    changed.assert_status(204);
    for reply in &replies {
        match crate::helpers::session_cookie(reply) {
            // Whenever it was made, a session of the old password is dead now.
            Some(session) => app
                .get("/api/me", &Cred::Cookie(session))
                .await
                .assert_problem(401, "session_invalid"),
            None => reply.assert_problem(401, "login_failed"),
        }
    }

    // The same while an operator disables the account, then enables it again.
    let password = "a-brand-new-passphrase";
    let login = || {
        app.post(
            "/api/login",
            &Cred::None,
            json!({"email": "alice@example.com", "password": password}),
        )
    };
    let logins = futures_util::future::join_all((0..12).map(|_| login()));
    let disable = async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        set_disabled(app, world.alice, true).await;
    };
    let (replies, ()) = tokio::join!(logins, disable);
    set_disabled(app, world.alice, false).await;
    for reply in &replies {
        match crate::helpers::session_cookie(reply) {
            Some(session) => app
                .get("/api/me", &Cred::Cookie(session))
                .await
                .assert_problem(401, "session_invalid"),
            None => reply.assert_problem(401, "login_failed"),
        }
    }
    // Enabled again, the account logs in afresh.
    app.login("alice@example.com", password).await;
}
