//! The decision log: one JSON line per authorization decision (time, request id, principal,
//! tenant, action, resource, decision, determining policies, duration), to stdout or a file.
//! Only ids appear: never a token, a session id or a password.

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

pub use crate::config::LogTarget;

tokio::task_local! {
    /// The id of the request being served (set by the HTTP layer for the request's lifetime).
    pub static REQUEST_ID: String;
}

/// The current request's id, if any.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// One decision, as logged.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub time: String,
    pub request_id: Option<String>,
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
