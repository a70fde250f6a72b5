//! The test harness: a real server on 127.0.0.1 port 0 with a fresh database per test, and small
//! helpers that speak to it as a client would.
//!
//! The backend is SQLite unless `ZYGO_TEST_DATABASE` names a PostgreSQL server (an admin URL such as
//! `postgres://postgres@127.0.0.1:54329/postgres`); then every test gets its own fresh database
//! there (`zygo_test_<uuid>`), so tests stay independent and run in parallel. `scripts/test` runs
//! the suite once per backend.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;
use zygo::auth::password;
use zygo::config::{DatabaseSettings, Secret, Settings};
use zygo::startup::{AppState, Application};
use zygo::store::{self, TenantId, UserId};

/// The secret every test server signs with, so tests can forge tokens with the real key.
pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret-0123456789";

pub fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// A private copy of the shipped policy folder (without its tests), to edit in a test.
pub fn copy_policies(into: &std::path::Path) -> PathBuf {
    let dir = into.join("policies");
    std::fs::create_dir_all(&dir).expect("policy dir");
    for entry in std::fs::read_dir(policies_dir()).expect("policies") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    dir
}

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

pub struct TestApp {
    pub address: String,
    /// `http://ADDR` of the separate metrics listener, when the settings asked for one.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub state: Arc<AppState>,
    pub _dir: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The PostgreSQL admin URL when the suite runs against PostgreSQL.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("ZYGO_TEST_DATABASE")
        .ok()
        .filter(|url| url.starts_with("postgres"))
}

/// Which backend the suite runs against, for messages.
pub fn backend() -> &'static str {
    if postgres_admin_url().is_some() {
        "postgres"
    } else {
        "sqlite"
    }
}

/// A fresh, empty database: `None` on SQLite (the data folder holds one), the URL of a newly
/// created PostgreSQL database otherwise. Blocking, so it also works from synchronous tests.
pub fn fresh_database_url() -> Option<String> {
    let admin = postgres_admin_url()?;
    let name = format!("zygo_test_{}", Uuid::new_v4().simple());
    let (base, _) = admin.rsplit_once('/').expect("admin URL names a database");
    let url = format!("{base}/{name}");
    let create = admin.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            use sea_orm::ConnectionTrait;
            let db = sea_orm::Database::connect(&create)
                .await
                .expect("connect to the PostgreSQL test server (ZYGO_TEST_DATABASE)");
            db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create the test database");
            db.close().await.expect("close");
        })
    })
    .join()
    .expect("database created");
    Some(url)
}

/// Settings for a fresh database (SQLite in `dir`, or a new PostgreSQL database), with the test
/// secret.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut settings = Settings::new(DatabaseSettings::new(
        fresh_database_url(),
        dir.join("data"),
    ));

    settings.bind = "127.0.0.1:0".into();
    settings.policies_dir = policies_dir();
    settings.token_secret = Some(Secret::new(SECRET.to_vec()));
    settings
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = test_settings(dir.path());
    spawn_with(settings, dir).await
}

pub async fn spawn_with(settings: Settings, dir: TempDir) -> TestApp {
    let app = Application::build(settings).await.expect("app builds");
    let address = format!("http://{}", app.local_addr());
    let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let state = app.state();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        metrics_address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        state,
        _dir: dir,
        stop: Some(stop),
    }
}

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Cred {
    None,
    Token(String),
    Bearer(String),
    Cookie(String),
    /// A token header and a cookie together.
    Both(String, String),
}

/// A response's status, headers and parsed body (JSON, or null when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts an error reply: status, problem+json content type, and the stable code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        assert_eq!(self.body["type"], format!("urn:zygo:problem:{code}"));
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        &self.body
    }
}

impl TestApp {
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        cred: &Cred,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.raw(method, path, cred);
        if let Some(body) = body {
            req = req.json(&body);
        }
        send(req).await
    }

    /// A request built by hand (odd headers, raw bodies), authenticated as `cred`.
    pub fn raw(&self, method: Method, path: &str, cred: &Cred) -> reqwest::RequestBuilder {
        let req = self
            .client
            .request(method, format!("{}{}", self.address, path));
        match cred {
            Cred::None => req,
            Cred::Token(t) => req.header("token", t),
            Cred::Bearer(t) => req.header("authorization", format!("Bearer {t}")),
            Cred::Cookie(c) => req.header("cookie", format!("session={c}")),
            Cred::Both(t, c) => req
                .header("token", t)
                .header("cookie", format!("session={c}")),
        }
    }

    pub async fn get(&self, path: &str, cred: &Cred) -> Reply {
        self.request(Method::GET, path, cred, None).await
    }

    pub async fn post(&self, path: &str, cred: &Cred, body: Value) -> Reply {
        self.request(Method::POST, path, cred, Some(body)).await
    }

    pub async fn put(&self, path: &str, cred: &Cred, body: Value) -> Reply {
        self.request(Method::PUT, path, cred, Some(body)).await
    }

    pub async fn patch(&self, path: &str, cred: &Cred, body: Value) -> Reply {
        self.request(Method::PATCH, path, cred, Some(body)).await
    }

    pub async fn delete(&self, path: &str, cred: &Cred) -> Reply {
        self.request(Method::DELETE, path, cred, None).await
    }

    /// Creates a user straight in the store (the CLI has its own test).
    pub async fn add_user(&self, email: &str, pass: &str) -> UserId {
        let hash = password::hash(pass).expect("hash");
        UserId(
            store::users::create(&self.state.db, email, hash)
                .await
                .expect("user created")
                .id,
        )
    }

    /// Creates a tenant owned (as Admin) by `owner`.
    pub async fn add_tenant(&self, name: &str, owner: UserId) -> TenantId {
        let id = TenantId(Uuid::new_v4());
        store::tenants::create(&self.state.db, id, name, owner, "Admin")
            .await
            .expect("tenant created");
        id
    }

    pub async fn set_role(&self, tenant: TenantId, user: UserId, role: &str) {
        store::members::set_role(&self.state.db, tenant, user, role, |_| true)
            .await
            .expect("role set");
    }

    /// Logs in and returns the session cookie value and the response body.
    pub async fn login(&self, email: &str, pass: &str) -> (String, Value) {
        let reply = self
            .post(
                "/api/login",
                &Cred::None,
                json!({"email": email, "password": pass}),
            )
            .await;
        assert_eq!(reply.status, 200, "login failed: {}", reply.body);
        let cookie = session_cookie(&reply).expect("session cookie set");
        (cookie, reply.body)
    }

    /// Mints a token with the given credential.
    pub async fn token(&self, cred: &Cred, expiration: Option<u64>) -> String {
        let path = match expiration {
            Some(e) => format!("/api/token?expiration={e}"),
            None => "/api/token".into(),
        };
        let reply = self.get(&path, cred).await;
        assert_eq!(reply.status, 200, "token failed: {}", reply.body);
        reply.body["token"]
            .as_str()
            .expect("token string")
            .to_owned()
    }
}

/// Sends a request and collects its reply.
pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body read");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// The `session` value of a `Set-Cookie` header.
pub fn session_cookie(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("session="))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
        .filter(|v| !v.is_empty())
}

/// A small world: two tenants, users with each role, and one outsider.
pub struct World {
    pub app: TestApp,
    pub acme: TenantId,
    pub globex: TenantId,
    /// Admin of Acme, Viewer of Globex.
    pub alice: UserId,
    /// Editor of Acme.
    pub bob: UserId,
    /// Viewer of Acme.
    pub carol: UserId,
    /// Admin of Globex, nothing in Acme.
    pub dave: UserId,
}

pub const PASSWORD: &str = "correct horse battery staple";

impl World {
    pub async fn new() -> World {
        World::on(spawn_app().await).await
    }

    /// The same world on an app started with custom settings.
    pub async fn on(app: TestApp) -> World {
        let alice = app.add_user("alice@example.com", PASSWORD).await;
        let bob = app.add_user("bob@example.com", PASSWORD).await;
        let carol = app.add_user("carol@example.com", PASSWORD).await;
        let dave = app.add_user("dave@example.com", PASSWORD).await;
        let acme = app.add_tenant("Acme", alice).await;
        let globex = app.add_tenant("Globex", dave).await;
        app.set_role(acme, bob, "Editor").await;
        app.set_role(acme, carol, "Viewer").await;
        app.set_role(globex, alice, "Viewer").await;
        World {
            app,
            acme,
            globex,
            alice,
            bob,
            carol,
            dave,
        }
    }

    /// A token for the user named by e-mail prefix (logs in once to get it).
    pub async fn token_of(&self, name: &str) -> String {
        let (cookie, _) = self
            .app
            .login(&format!("{name}@example.com"), PASSWORD)
            .await;
        self.app.token(&Cred::Cookie(cookie), None).await
    }

    /// Creates a flow in the tenant as the given credential and returns its id.
    pub async fn flow(&self, tenant: TenantId, cred: &Cred, name: &str) -> String {
        let reply = self
            .app
            .post(
                &format!("/api/tenants/{tenant}/flows"),
                cred,
                json!({"name": name, "definition": {"steps": [1, 2]}}),
            )
            .await;
        reply.assert_status(201)["id"]
            .as_str()
            .expect("flow id")
            .to_owned()
    }
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

/// A PostgreSQL server of the test's own, which the test may stop and start again (the suite's
/// shared server must stay up for the other tests). Needs `ZYGO_TEST_PG_BIN` (the server's `bin`
/// folder; `scripts/test` sets it) and, when the tests run as root, `ZYGO_TEST_PG_USER`.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: TempDir,
    pub port: u16,
}

impl PrivatePostgres {
    /// `None` when no PostgreSQL binaries are configured.
    pub fn start() -> Option<PrivatePostgres> {
        let bin = PathBuf::from(std::env::var_os("ZYGO_TEST_PG_BIN")?);
        let dir = tempfile::Builder::new()
            .prefix("zygo-pg-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        if let Ok(user) = std::env::var("ZYGO_TEST_PG_USER") {
            let chown = std::process::Command::new("chown")
                .arg(format!("{user}:"))
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(chown.success());
        }
        let mut pg = PrivatePostgres { bin, dir, port: 0 };
        let init = pg.tool(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        for _ in 0..5 {
            pg.port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            if pg.start_again() {
                return Some(pg);
            }
        }
        panic!("the private PostgreSQL server does not start");
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn tool(&self, name: &str, args: &[&str]) -> std::process::Output {
        let program = self.bin.join(name);
        let mut command = match std::env::var("ZYGO_TEST_PG_USER") {
            Ok(user) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", &user, "--"]).arg(&program);
                c
            }
            Err(_) => std::process::Command::new(&program),
        };
        command.args(args).output().expect("PostgreSQL tool runs")
    }

    /// The admin URL (database `postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts (again) on the same port and data; false when it could not.
    pub fn start_again(&self) -> bool {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-w",
                "-t",
                "30",
                "-l",
                &log,
                "-o",
                &options,
                "start",
            ],
        )
        .status
        .success()
    }

    /// Stops the server, terminating its connections (as an operator's fast shutdown does).
    pub fn stop(&self) {
        let out = self.tool("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.tool(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }
}

/// A TCP proxy in front of the database that can "freeze": it keeps every connection open but
/// stops forwarding bytes, as a network partition does (the server is up, nobody answers).
pub struct FreezableProxy {
    frozen: Arc<std::sync::atomic::AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl FreezableProxy {
    /// Proxies to the host and port of `url` and returns the proxy with `url` rewritten to it.
    pub async fn start(url: &str) -> (FreezableProxy, String) {
        let (scheme, rest) = url.split_once('@').expect("URL with a user");
        let (upstream, path) = rest.split_once('/').expect("URL with a database");
        let upstream = upstream.to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = frozen.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let flag = flag.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pipe(client_read, server_write, flag.clone()),
                        pipe(server_read, client_write, flag),
                    );
                });
            }
        });
        let proxied = format!("{scheme}@{addr}/{path}");
        (FreezableProxy { frozen, accept }, proxied)
    }

    pub fn freeze(&self, frozen: bool) {
        self.frozen
            .store(frozen, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for FreezableProxy {
    fn drop(&mut self) {
        self.freeze(false);
        self.accept.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Frozen: hold the bytes until thawed (the test always thaws, or its runtime ends).
        while frozen.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
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

/// Reads the stdout lines of `zygo serve` until it prints `listening on http://ADDR`; returns ADDR
/// and every line printed up to then.
pub fn listening_address(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
) -> (String, Vec<String>) {
    let mut printed = Vec::new();
    loop {
        let line = lines
            .next()
            .expect("serve printed its address")
            .expect("stdout line");
        printed.push(line.clone());
        if let Some(rest) = line.strip_prefix("listening on http://") {
            let address = rest.split_whitespace().next().expect("address").to_owned();
            return (address, printed);
        }
    }
}

/// Starts `zygo serve` from a prepared command (stdout piped) and returns the child with the base
/// URL it listens on.
pub fn serve_binary(mut command: std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("zygo serve starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (address, _) = listening_address(&mut lines);
    (child, format!("http://{address}"))
}

/// Logs in over HTTP; returns the `session=…` cookie pair and the body. Asserts a 200.
pub async fn login_over_http(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> (String, Value) {
    let login = client
        .post(format!("{base}/api/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login sent");
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    (cookie, login.json().await.expect("body"))
}

/// Sends SIGTERM and asserts a clean exit.
pub fn stop_binary(mut child: std::process::Child) {
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(
        child.wait().expect("exit").success(),
        "graceful stop exits 0"
    );
}
