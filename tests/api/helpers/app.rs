//! The service in-process on a free port with a fresh database, and a client that speaks to it.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use zygo::config::{DatabaseSettings, Secret, Settings};
use zygo::startup::{AppState, Application};

use super::postgres::fresh_database_url;

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
