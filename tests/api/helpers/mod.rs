//! The test harness: a real server on 127.0.0.1 port 0 with a fresh database per test, and small
//! helpers that speak to it as a client would.
//!
//! The backend is SQLite unless `ZYGO_TEST_DATABASE` names a PostgreSQL server (an admin URL such as
//! `postgres://postgres@127.0.0.1:54329/postgres`); then every test gets its own fresh database
//! there (`zygo_test_<uuid>`), so tests stay independent and run in parallel. `scripts/test` runs
//! the suite once per backend.
//!
//! One file per concern, every item re-exported here so tests import `crate::helpers::X`:
//!
//! - `app`: the in-process server ([`TestApp`], [`spawn_app`], [`spawn_with`], [`test_settings`])
//!   and the client side ([`Cred`], [`Reply`], [`send`]);
//! - `database`: [`TestDb`], a fresh migrated database with the request path's readers and no
//!   server, for tests of the store alone;
//! - `world`: [`World`], two tenants with a user in each role, and the store fixtures behind it;
//! - `postgres`: which backend runs, fresh PostgreSQL databases, and [`PrivatePostgres`], a server a
//!   test may stop;
//! - `proxy`: [`FreezableProxy`], a database link that stops answering;
//! - `binary`: the `zygo` executable started as an operator runs it.

use serde_json::Value;

mod app;
mod binary;
mod database;
mod postgres;
mod proxy;
mod world;

pub use app::{
    Cred, Reply, SECRET, TestApp, copy_policies, policies_dir, send, session_cookie, spawn_app,
    spawn_with, test_settings,
};
pub use binary::{listening_address, login_over_http, serve_binary, stop_binary};
pub use database::TestDb;
pub use postgres::{PrivatePostgres, backend, fresh_database_url, postgres_admin_url};
pub use proxy::FreezableProxy;
pub use world::{PASSWORD, World};

/// Polls `check` every 100 ms until it holds, for at most `seconds`; returns whether it held.
pub async fn eventually<F, Fut>(seconds: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// Polls `check` every 5 ms until it holds and returns how long that took; `None` if it still does
/// not hold after `limit`.
pub async fn time_until<F, Fut>(
    limit: std::time::Duration,
    mut check: F,
) -> Option<std::time::Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while started.elapsed() <= limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    None
}

/// One segment of a JWT (0: the header, 1: the claims), decoded.
pub fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(index).expect("JWT part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

/// The `kid` of a JWT's header.
pub fn kid_of(token: &str) -> String {
    jwt_part(token, 0)["kid"].as_str().expect("kid").to_owned()
}
