//! Login hardening: throttling (429 with Retry-After, never permanent), equal timing for unknown
//! e-mails and wrong passwords, password changes and argon2 parameter upgrades.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zygo::auth::password;
use zygo::config::Settings;
use zygo::store::{self, UserId};

use crate::helpers::{Cred, PASSWORD, Reply, TestApp, spawn_with, test_settings};

async fn app_with(edit: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    edit(&mut settings);
    spawn_with(settings, dir).await
}

async fn try_login(app: &TestApp, email: &str, pass: &str) -> Reply {
    app.post(
        "/api/login",
        &Cred::None,
        json!({"email": email, "password": pass}),
    )
    .await
}

fn retry_after(reply: &Reply) -> u64 {
    reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_with_retry_after_then_released() {
    let app = app_with(|s| {
        s.login_failures_per_account_and_address = 3;
        s.login_window = Duration::from_secs(2);
    })
    .await;
    app.add_user("erin@example.com", PASSWORD).await;
    app.add_user("finn@example.com", PASSWORD).await;
    for _ in 0..3 {
        try_login(&app, "erin@example.com", "guess")
            .await
            .assert_problem(401, "login_failed");
    }
    // Throttled: even the right password is not checked (the attacker learns nothing).
    for pass in ["guess", PASSWORD] {
        let reply = try_login(&app, "Erin@Example.com ", pass).await;
        reply.assert_problem(429, "too_many_requests");
        let wait = retry_after(&reply);
        assert!((1..=2).contains(&wait), "Retry-After {wait}");
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("retry in {wait} seconds"))
        );
    }
    // Another account from the same address is not affected.
    app.login("finn@example.com", PASSWORD).await;
    // Unknown e-mails are counted the same way: throttling does not reveal who is registered.
    for _ in 0..3 {
        try_login(&app, "nobody@example.com", "guess")
            .await
            .assert_problem(401, "login_failed");
    }
    try_login(&app, "nobody@example.com", "guess")
        .await
        .assert_problem(429, "too_many_requests");
    // Not permanent: after Retry-After the owner logs in.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, me) = app.login("erin@example.com", PASSWORD).await;
    assert_eq!(me["email"], "erin@example.com");
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address_across_accounts() {
    let app = app_with(|s| {
        s.login_failures_per_address = 4;
        s.login_window = Duration::from_secs(60);
    })
    .await;
    app.add_user("erin@example.com", PASSWORD).await;
    for i in 0..4 {
        try_login(&app, &format!("user{i}@example.com"), "guess")
            .await
            .assert_problem(401, "login_failed");
    }
    let reply = try_login(&app, "erin@example.com", PASSWORD).await;
    reply.assert_problem(429, "too_many_requests");
    assert!((1..=60).contains(&retry_after(&reply)));
}

#[tokio::test]
async fn a_successful_login_clears_the_accounts_counter_but_not_the_addresss() {
    let app = app_with(|s| {
        s.login_failures_per_account_and_address = 3;
        s.login_failures_per_address = 5;
    })
    .await;
    app.add_user("erin@example.com", PASSWORD).await;
    for round in 0..2 {
        for _ in 0..2 {
            try_login(&app, "erin@example.com", "guess")
                .await
                .assert_problem(401, "login_failed");
        }
        assert_eq!(
            try_login(&app, "erin@example.com", PASSWORD).await.status,
            200,
            "round {round}"
        );
    }
    // Four failures so far from this address; the fifth fills it, whatever the account.
    try_login(&app, "erin@example.com", "guess")
        .await
        .assert_problem(401, "login_failed");
    try_login(&app, "erin@example.com", PASSWORD)
        .await
        .assert_problem(429, "too_many_requests");
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

#[tokio::test]
async fn unknown_email_and_wrong_password_take_the_same_time_and_body() {
    let app = app_with(|s| {
        s.login_failures_per_account_and_address = u32::MAX;
        s.login_failures_per_address = u32::MAX;
        s.login_failures_per_account = u32::MAX;
    })
    .await;
    app.add_user("erin@example.com", PASSWORD).await;
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    let (mut wrong_body, mut unknown_body) = (Value::Null, Value::Null);
    // Interleaved, so load on the machine hits both alike.
    for i in 0..40 {
        for (email, times, body) in [
            ("erin@example.com", &mut wrong, &mut wrong_body),
            ("nobody@example.com", &mut unknown, &mut unknown_body),
        ] {
            let started = Instant::now();
            let reply = try_login(&app, email, &format!("guess-{i}")).await;
            times.push(started.elapsed().as_secs_f64());
            reply.assert_problem(401, "login_failed");
            *body = reply.body;
        }
    }
    assert_eq!(wrong_body, unknown_body, "same body");
    let (wrong, unknown) = (median(&mut wrong), median(&mut unknown));
    // Both pay one argon2 verification. Without the dummy hash the unknown path would take a
    // small fraction of the wrong-password path; allow generous noise, catch that.
    let ratio = unknown / wrong;
    assert!(
        (0.6..=1.67).contains(&ratio),
        "median unknown {unknown:.4}s vs wrong password {wrong:.4}s"
    );
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_every_session() {
    let app = app_with(|s| s.login_failures_per_account_and_address = 3).await;
    app.add_user("erin@example.com", PASSWORD).await;
    let (cookie, _) = app.login("erin@example.com", PASSWORD).await;
    let (other, _) = app.login("erin@example.com", PASSWORD).await;
    let cred = Cred::Cookie(cookie.clone());
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    app.put("/api/me/password", &cred, change("wrong", "a-new-password"))
        .await
        .assert_problem(403, "wrong_password");
    let short = app
        .put("/api/me/password", &cred, change(PASSWORD, "short"))
        .await;
    short.assert_problem(422, "validation_failed");
    assert_eq!(
        short.body["detail"],
        "new_password: must be at least 8 characters"
    );
    app.put(
        "/api/me/password",
        &cred,
        json!({"new_password": "a-new-password"}),
    )
    .await
    .assert_problem(400, "bad_request");
    // Nothing changed so far.
    app.get("/api/me", &Cred::Cookie(other.clone()))
        .await
        .assert_status(200);

    let reply = app
        .put(
            "/api/me/password",
            &cred,
            change(PASSWORD, "a-new-password"),
        )
        .await;
    reply.assert_status(204);
    let fresh = crate::helpers::session_cookie(&reply).expect("a fresh session cookie");
    assert_ne!(fresh, cookie);
    for dead in [cookie, other] {
        app.get("/api/me", &Cred::Cookie(dead))
            .await
            .assert_problem(401, "session_invalid");
    }
    app.get("/api/me", &Cred::Cookie(fresh))
        .await
        .assert_status(200);
    try_login(&app, "erin@example.com", PASSWORD)
        .await
        .assert_problem(401, "login_failed");
    app.login("erin@example.com", "a-new-password").await;
}

#[tokio::test]
async fn guessing_the_current_password_is_throttled_too() {
    let app = app_with(|s| s.login_failures_per_account_and_address = 2).await;
    app.add_user("erin@example.com", PASSWORD).await;
    let (cookie, _) = app.login("erin@example.com", PASSWORD).await;
    let cred = Cred::Cookie(cookie);
    let body = json!({"current_password": "guess", "new_password": "a-new-password"});
    for _ in 0..2 {
        app.put("/api/me/password", &cred, body.clone())
            .await
            .assert_problem(403, "wrong_password");
    }
    let reply = app
        .put(
            "/api/me/password",
            &cred,
            json!({"current_password": PASSWORD, "new_password": "a-new-password"}),
        )
        .await;
    reply.assert_problem(429, "too_many_requests");
    assert!(retry_after(&reply) >= 1);
}

#[tokio::test]
async fn weak_password_hashes_are_upgraded_at_the_next_login() {
    let app = app_with(|_| {}).await;
    let weak = password::hash_with(PASSWORD, 8 * 1024, 1, 1).unwrap();
    assert!(password::needs_rehash(&weak));
    let user = UserId(
        store::users::create(&app.state.db, "erin@example.com", weak.clone())
            .await
            .unwrap()
            .id,
    );
    app.login("erin@example.com", PASSWORD).await;
    let stored = store::users::find(&app.state.db, user)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert_ne!(stored, weak);
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(!password::needs_rehash(&stored));
    // The upgraded hash still opens the door.
    app.login("erin@example.com", PASSWORD).await;
    // Stronger than the minimum is left alone; another algorithm or garbage is replaced.
    let strong = password::hash_with(PASSWORD, 32 * 1024, 3, 1).unwrap();
    assert!(!password::needs_rehash(&strong));
    assert!(password::needs_rehash(
        "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"
    ));
    assert!(password::needs_rehash("not a hash"));
}

#[tokio::test]
async fn concurrent_guesses_cannot_slip_past_the_throttle() {
    let app = app_with(|s| s.login_failures_per_account_and_address = 3).await;
    app.add_user("gwen@example.com", PASSWORD).await;
    // Twenty guesses at once: every one is counted before any password is checked, so only the
    // first three reach a password check.
    let passwords: Vec<String> = (0..20).map(|i| format!("guess-{i}")).collect();
    let guesses = passwords
        .iter()
        .map(|guess| try_login(&app, "gwen@example.com", guess));
    let replies = futures_util::future::join_all(guesses).await;
    let checked = replies.iter().filter(|r| r.status == 401).count();
    let throttled = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!(
        (checked, throttled),
        (3, 17),
        "statuses: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status == 429) {
        reply.assert_problem(429, "too_many_requests");
    }
}

#[tokio::test]
async fn nul_characters_never_reach_the_database_as_an_error() {
    let world = crate::helpers::World::new().await;
    let app = &world.app;
    let login = app
        .post(
            "/api/login",
            &Cred::None,
            json!({"email": "a\u{0}b@example.com", "password": "whatever-it-is"}),
        )
        .await;
    login.assert_problem(401, "login_failed");
    let bob = Cred::Token(world.token_of("bob").await);
    let revoke = app
        .post("/api/token/revoke", &bob, json!({"jti": "x\u{0}y"}))
        .await;
    revoke.assert_problem(404, "not_found");
    let definition = json!({"steps": ["ok", "bad\u{0}"]});
    let flow = app
        .post(
            &format!("/api/tenants/{}/flows", world.acme),
            &bob,
            json!({"name": "x", "definition": definition}),
        )
        .await;
    if crate::helpers::postgres_admin_url().is_some() {
        // jsonb cannot hold U+0000: a clear 400, not a failed write.
        flow.assert_problem(400, "bad_request");
        assert_eq!(
            flow.body["detail"],
            "definition: must not contain NUL characters (\\u0000) on this database"
        );
    } else {
        assert_eq!(flow.assert_status(201)["definition"], definition);
    }
}

#[tokio::test]
async fn guesses_spread_over_two_instances_are_refused_after_the_same_number_as_on_one() {
    if crate::helpers::postgres_admin_url().is_none() {
        eprintln!(
            "skipped on {}: one SQLite file has one server, whose counters are its own",
            crate::helpers::backend()
        );
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data.path());
    settings.login_failures_per_account_and_address = 4;
    settings.login_window = Duration::from_secs(60);
    let a = spawn_with(settings.clone(), tempfile::tempdir().unwrap()).await;
    let b = spawn_with(settings, tempfile::tempdir().unwrap()).await;
    a.add_user("gail@example.com", PASSWORD).await;
    // Four guesses, alternating instances: each counts on the one shared counter.
    for i in 0..4 {
        let app = if i % 2 == 0 { &a } else { &b };
        try_login(app, "gail@example.com", "guess")
            .await
            .assert_problem(401, "login_failed");
    }
    // The fifth is refused on both, with the same window's wait, the right password too.
    for app in [&a, &b] {
        for pass in ["guess", PASSWORD] {
            let reply = try_login(app, "gail@example.com", pass).await;
            reply.assert_problem(429, "too_many_requests");
            assert!((1..=60).contains(&retry_after(&reply)));
        }
    }
    // The counters are rows of the database, keyed by hashes: no e-mail stored as typed.
    use sea_orm::ConnectionTrait;
    let rows = a
        .state
        .db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT key FROM login_failures",
        ))
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let key: String = row.try_get("", "key").unwrap();
        assert_eq!(key.len(), 64, "{key}");
        assert!(!key.contains("gail"));
    }
}

/// Password checks the server has run so far (argon2 verifications and hashes).
fn checks(app: &TestApp) -> u64 {
    app.state.authn.throttle.argon2_started()
}

#[tokio::test]
async fn parallel_guesses_at_different_accounts_from_one_address_get_at_most_the_address_limit_of_checks()
 {
    let app = app_with(|s| {
        s.login_failures_per_address = 3;
        s.login_window = Duration::from_secs(60);
    })
    .await;
    let before = checks(&app);
    // Twelve guesses at once, each at another e-mail: only the per-address counter is shared.
    let emails: Vec<String> = (0..12).map(|i| format!("user{i}@example.com")).collect();
    let replies =
        futures_util::future::join_all(emails.iter().map(|email| try_login(&app, email, "guess")))
            .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    let failed = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((failed, throttled), (3, 9), "statuses: {statuses:?}");
    for reply in &replies {
        if reply.status == 401 {
            reply.assert_problem(401, "login_failed");
        } else {
            reply.assert_problem(429, "too_many_requests");
            assert!((1..=60).contains(&retry_after(reply)));
        }
    }
    assert_eq!(checks(&app) - before, 3, "password checks");
    // The metrics agree: three checked logins, nine throttled.
    let metrics = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("zygo_logins_total{result=\"failure\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zygo_login_throttled_total 9"),
        "{metrics}"
    );
}

#[tokio::test]
async fn parallel_guesses_at_the_current_password_get_at_most_the_limit_of_checks() {
    let app = app_with(|s| {
        s.login_failures_per_account_and_address = u32::MAX;
        s.login_failures_per_account = u32::MAX;
        s.login_failures_per_address = 3;
    })
    .await;
    app.add_user("erin@example.com", PASSWORD).await;
    let (cookie, _) = app.login("erin@example.com", PASSWORD).await;
    let token = Cred::Token(app.token(&Cred::Cookie(cookie), None).await);
    let before = checks(&app);
    let bodies: Vec<Value> = (0..12)
        .map(
            |i| json!({"current_password": format!("guess-{i}"), "new_password": "a-new-password"}),
        )
        .collect();
    let replies = futures_util::future::join_all(
        bodies
            .iter()
            .map(|body| app.put("/api/me/password", &token, body.clone())),
    )
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    for reply in &replies {
        if reply.status == 403 {
            reply.assert_problem(403, "wrong_password");
        } else {
            reply.assert_problem(429, "too_many_requests");
            assert!(retry_after(reply) >= 1);
        }
    }
    // The successful login gave its reservation back: three wrong guesses fill the address.
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        3,
        "statuses: {statuses:?}"
    );
    assert_eq!(checks(&app) - before, 3, "password checks");
}

#[tokio::test]
async fn password_checks_run_at_most_the_configured_number_at_once_and_the_rest_wait() {
    let app = app_with(|s| {
        s.password_checks = 1;
        s.login_failures_per_account_and_address = u32::MAX;
        s.login_failures_per_address = u32::MAX;
        s.login_failures_per_account = u32::MAX;
    })
    .await;
    app.add_user("erin@example.com", PASSWORD).await;
    let before = checks(&app);
    // Eight at once, wrong and right: every one waits for its turn and is answered, none fails.
    let passwords: Vec<String> = (0..8)
        .map(|i| {
            if i % 2 == 0 {
                PASSWORD.to_owned()
            } else {
                format!("guess-{i}")
            }
        })
        .collect();
    let replies = futures_util::future::join_all(
        passwords
            .iter()
            .map(|pass| try_login(&app, "erin@example.com", pass)),
    )
    .await;
    for (pass, reply) in passwords.iter().zip(&replies) {
        if pass == PASSWORD {
            assert_eq!(reply.assert_status(200)["email"], "erin@example.com");
        } else {
            reply.assert_problem(401, "login_failed");
        }
    }
    assert_eq!(checks(&app) - before, 8);
    assert_eq!(app.state.authn.throttle.argon2_peak(), 1);
}

#[tokio::test]
async fn a_refund_gives_back_only_a_count_of_the_window_it_was_reserved_in() {
    use zygo::store::login_failures;
    let app = crate::helpers::spawn_app().await;
    let db = &app.state.db;
    let key = "refund-window-test";
    let count = |counted: Vec<(String, login_failures::Counted)>| counted[0].1;
    // Two attempts in one window.
    let first = count(
        login_failures::reserve(db, &[key], Duration::from_secs(900))
            .await
            .unwrap(),
    );
    let second = count(
        login_failures::reserve(db, &[key], Duration::from_secs(900))
            .await
            .unwrap(),
    );
    assert_eq!((first.failures, second.failures), (1, 2));
    assert_eq!(first.window_started_at, second.window_started_at);
    // That window closes (a zero-second window has always passed) and a new one starts.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = count(
        login_failures::reserve(db, &[key], Duration::ZERO)
            .await
            .unwrap(),
    );
    assert_eq!(fresh.failures, 1);
    assert_ne!(fresh.window_started_at, first.window_started_at);
    // A late refund of the old window takes nothing off the new one.
    login_failures::refund(db, key, first.window_started_at)
        .await
        .unwrap();
    let now = count(
        login_failures::reserve(db, &[key], Duration::from_secs(900))
            .await
            .unwrap(),
    );
    assert_eq!(
        now.failures, 2,
        "a refund of a closed window counted in the new one"
    );
    assert_eq!(now.window_started_at, fresh.window_started_at);
    // A refund of the window it was reserved in gives back one count.
    login_failures::refund(db, key, fresh.window_started_at)
        .await
        .unwrap();
    let after = count(
        login_failures::reserve(db, &[key], Duration::from_secs(900))
            .await
            .unwrap(),
    );
    assert_eq!(after.failures, 2);
}

#[tokio::test]
async fn changing_the_password_again_and_again_uses_up_no_login_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.login_failures_per_account_and_address = 2;
    settings.login_failures_per_address = 2;
    settings.login_failures_per_account = 2;
    let app = crate::helpers::spawn_with(settings, dir).await;
    app.add_user("erin@example.com", PASSWORD).await;
    let (cookie, _) = app.login("erin@example.com", PASSWORD).await;
    let mut cred = Cred::Cookie(cookie);
    let mut current = PASSWORD.to_owned();
    // Five successful changes with limits of two: each settles its reservation as a login does.
    for round in 0..5 {
        let next = format!("a-new-password-{round}");
        let reply = app
            .put(
                "/api/me/password",
                &cred,
                json!({"current_password": current, "new_password": next}),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 204, "round {round}: {}", reply.body);
        cred = Cred::Cookie(crate::helpers::session_cookie(&reply).expect("a fresh session"));
        current = next;
    }
    // The budget is whole: two wrong guesses are checked (403), the third is throttled.
    for _ in 0..2 {
        app.put(
            "/api/me/password",
            &cred,
            json!({"current_password": "guess", "new_password": "a-new-password"}),
        )
        .await
        .assert_problem(403, "wrong_password");
    }
    app.put(
        "/api/me/password",
        &cred,
        json!({"current_password": "guess", "new_password": "a-new-password"}),
    )
    .await
    .assert_problem(429, "too_many_requests");
}
