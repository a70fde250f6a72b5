//! Faults: the database down or locked, and a stop signal with requests in flight.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sea_orm::sqlx::{self, Connection};

use crate::cli::zygo_command;
use crate::helpers::{
    Cred, FreezableProxy, PASSWORD, PrivatePostgres, World, backend, postgres_admin_url,
    spawn_with, test_settings, time_until,
};

/// The database timeout these tests configure; answers must come within it plus some slack.
const DB_TIMEOUT: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_secs(3);

#[tokio::test]
async fn postgres_stopped_mid_run_gives_503_then_the_service_recovers_by_itself() {
    if postgres_admin_url().is_none() {
        eprintln!(
            "skipped on {}: stops and restarts a PostgreSQL server",
            backend()
        );
        return;
    }
    let pg = PrivatePostgres::start().expect("ZYGO_TEST_PG_BIN names the PostgreSQL binaries");
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.database.url = pg.url();
    settings.database.timeout = DB_TIMEOUT;
    let world = World::on(spawn_with(settings, dir).await).await;
    let app = &world.app;
    let bob = Cred::Token(world.token_of("bob").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    app.get("/healthz", &Cred::None).await.assert_status(200);

    pg.stop();

    // Bob's role in Acme is not cached: the decision needs the database, so no Allow, a 503.
    let started = Instant::now();
    app.get(&flows, &bob)
        .await
        .assert_problem(503, "unavailable");
    let login = app
        .post(
            "/api/login",
            &Cred::None,
            serde_json::json!({"email": "carol@example.com", "password": PASSWORD}),
        )
        .await;
    login.assert_problem(503, "unavailable");
    let health = app.get("/healthz", &Cred::None).await;
    health.assert_problem(503, "unavailable");
    assert_eq!(
        health.body["detail"],
        "the database is unreachable; retry later"
    );
    let took = started.elapsed();
    println!("stopped database: three 503s in {took:?}");
    assert!(took < 3 * (DB_TIMEOUT + SLACK), "three 503s took {took:?}");

    assert!(pg.start_again(), "PostgreSQL starts again");
    let recovered = time_until(Duration::from_secs(20), || async {
        app.get("/healthz", &Cred::None).await.status == 200
    })
    .await
    .expect("the service recovers without a restart");
    println!("healthy again {recovered:?} after PostgreSQL restarted");
    app.get(&flows, &bob).await.assert_status(200);
    app.login("carol@example.com", PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_gives_503_within_the_timeouts_then_the_service_recovers() {
    if postgres_admin_url().is_none() {
        eprintln!(
            "skipped on {}: partitions a PostgreSQL connection",
            backend()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    let (proxy, url) = FreezableProxy::start(&settings.database.url).await;
    settings.database.url = url;
    settings.database.timeout = DB_TIMEOUT;
    settings.request_timeout = Duration::from_secs(4);
    let world = World::on(spawn_with(settings, dir).await).await;
    let app = &world.app;
    let bob = Cred::Token(world.token_of("bob").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    app.get("/healthz", &Cred::None).await.assert_status(200);

    proxy.freeze(true);
    let started = Instant::now();
    app.get(&flows, &bob)
        .await
        .assert_problem(503, "unavailable");
    let first = started.elapsed();
    let health = app.get("/healthz", &Cred::None).await;
    health.assert_problem(503, "unavailable");
    assert_eq!(
        health.body["detail"],
        "the database is unreachable; retry later"
    );
    let took = started.elapsed();
    println!("unreachable database: first 503 after {first:?}, two 503s in {took:?}");
    assert!(took < 2 * Duration::from_secs(4) + SLACK, "took {took:?}");

    proxy.freeze(false);
    let recovered = time_until(Duration::from_secs(20), || async {
        app.get("/healthz", &Cred::None).await.status == 200
    })
    .await
    .expect("the service recovers without a restart");
    println!("healthy again {recovered:?} after the partition healed");
    app.get(&flows, &bob).await.assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_never_outlives_the_request_timeout_even_when_the_database_hangs() {
    if postgres_admin_url().is_none() {
        eprintln!(
            "skipped on {}: partitions a PostgreSQL connection",
            backend()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    let (proxy, url) = FreezableProxy::start(&settings.database.url).await;
    settings.database.url = url;
    // Database waits far longer than the request deadline: only the deadline can answer.
    settings.database.timeout = Duration::from_secs(60);
    settings.request_timeout = Duration::from_secs(2);
    let world = World::on(spawn_with(settings, dir).await).await;
    let app = &world.app;
    let bob = Cred::Token(world.token_of("bob").await);

    proxy.freeze(true);
    let started = Instant::now();
    app.get(&format!("/api/tenants/{}/flows", world.acme), &bob)
        .await
        .assert_problem(503, "unavailable");
    let took = started.elapsed();
    println!("hung database: 503 after {took:?} (request timeout 2s)");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(2) + SLACK);
    proxy.freeze(false);
}

#[tokio::test]
async fn sqlite_locked_by_another_process_gives_503_within_the_timeout_then_recovers() {
    if postgres_admin_url().is_some() {
        eprintln!("skipped on postgres: holds a SQLite write lock");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.database.timeout = DB_TIMEOUT;
    let url = settings.database.url.clone();
    let world = World::on(spawn_with(settings, dir).await).await;
    let app = &world.app;

    // Another process (an admin command, a backup) holds the write lock longer than the timeout.
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let started = Instant::now();
    let login = app
        .post(
            "/api/login",
            &Cred::None,
            serde_json::json!({"email": "carol@example.com", "password": PASSWORD}),
        )
        .await;
    login.assert_problem(503, "unavailable");
    assert!(
        started.elapsed() < DB_TIMEOUT + SLACK,
        "took {:?}",
        started.elapsed()
    );

    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    app.login("carol@example.com", PASSWORD).await;
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = zygo_command(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (address, _) = crate::helpers::listening_address(&mut lines);

    // A request whose body is still arriving when the signal comes. A first request on the same
    // connection proves the server is serving it (not merely holding it in the listen backlog).
    let body = br#"{"email": "nobody@example.com", "password": "not this one"}"#;
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    let mut first = Vec::new();
    let mut buf = [0u8; 4096];
    while !first.ends_with(b"}") {
        let n = stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&first)
        );
        first.extend_from_slice(&buf[..n]);
    }
    assert!(first.starts_with(b"HTTP/1.1 200"));
    write!(
        stream,
        "POST /api/login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..10]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(500));
    // Draining: no new connections, the process still runs for the one in flight.
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "still accepting after SIGTERM"
    );

    stream.write_all(&body[10..]).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    assert!(reply.contains("\"code\":\"login_failed\""), "{reply}");

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after draining");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "graceful stop exits 0: {status:?}");
}
