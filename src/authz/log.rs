//! The decision log: one JSON line per authorization decision (time, decision id, request id,
//! policy version, principal, tenant, action, resource, decision, determining policies,
//! duration), to stdout or a file.
//! Only ids appear: never a token, a session id or a password.

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

pub use crate::config::LogTarget;

tokio::task_local! {
    /// The id of the request being served (set by the HTTP layer for the request's lifetime).
    pub static REQUEST_ID: String;
}

tokio::task_local! {
    /// The policy version that decided the request being served (set by the HTTP layer for the
    /// request's lifetime, filled in by the decisions; the `Zygo-Policy-Version` header).
    pub static DECIDED_BY: std::sync::Arc<Mutex<Option<String>>>;
}

/// Notes that the current request was decided by `version` (no-op outside a request).
pub fn note_version(version: &str) {
    let _ = DECIDED_BY.try_with(|cell| {
        let mut cell = cell.lock().unwrap_or_else(|p| p.into_inner());
        if cell.as_deref() != Some(version) {
            *cell = Some(version.to_owned());
        }
    });
}

/// A fresh decision id (v4 UUID).
pub fn decision_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// The current request's id, if any.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// One decision, as logged.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub time: String,
    /// This decision's own id (one request may make several decisions).
    pub decision_id: String,
    pub request_id: Option<String>,
    /// The policy version (content hash) that decided.
    pub policy_version: &'a str,
    /// The published version's number, when the policies come from the database.
    pub policy_release: Option<i64>,
    /// `require` (an operation's own check) or `decision_api`.
    pub source: &'static str,
    pub principal: String,
    pub role: Option<&'a str>,
    pub tenant: String,
    pub action: &'static str,
    pub resource: String,
    pub decision: &'static str,
    pub policies: &'a [String],
    pub errors: &'a [String],
    pub duration_us: u128,
}

pub struct DecisionLog {
    sink: Option<Mutex<Box<dyn Write + Send>>>,
}

impl DecisionLog {
    pub fn open(target: &LogTarget) -> std::io::Result<Self> {
        let sink: Option<Box<dyn Write + Send>> = match target {
            LogTarget::Off => None,
            LogTarget::Stdout => Some(Box::new(std::io::stdout())),
            LogTarget::File(path) => Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
        };
        Ok(DecisionLog {
            sink: sink.map(Mutex::new),
        })
    }

    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// Writes one line; a failing sink is reported in the service log, never to the client.
    pub fn record(&self, entry: &Entry<'_>) {
        let Some(sink) = &self.sink else {
            return;
        };
        let Ok(mut line) = serde_json::to_vec(entry) else {
            return;
        };
        line.push(b'\n');
        let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = sink.write_all(&line).and_then(|()| sink.flush()) {
            tracing::warn!(%err, "cannot write the decision log");
        }
    }
}
