//! The policy set in force, and hot reload: the folder is watched (polled every half second for a
//! change of content, and reloaded at once on SIGHUP). A changed folder is parsed and validated
//! first and swapped in atomically only when valid; an invalid edit keeps the last good set, logs
//! the located errors and shows them in `/healthz`. Every request holds one `Arc` snapshot from
//! start to end, so it is evaluated against exactly one complete set.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::policies::{LoadError, PolicyBundle, ROLES_FILE, SCHEMA_FILE};

/// How often the folder is checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What `/healthz` says about the policies.
#[derive(Debug, Clone)]
pub struct PolicyStatus {
    pub version: String,
    pub loaded_at: DateTime<Utc>,
    pub policies: usize,
    /// The located errors of the last rejected edit since the current set loaded.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

pub struct PolicyStore {
    dir: PathBuf,
    current: RwLock<Arc<PolicyBundle>>,
    status: Mutex<PolicyStatus>,
    /// Content hash of the folder as last examined (loaded or rejected).
    seen: Mutex<String>,
    /// Counts rejected reloads (`zygo_policy_reloads_rejected_total`).
    rejected: prometheus::IntCounter,
}

/// A hash of everything the bundle is built from; cheap enough to compute twice a second.
fn fingerprint(dir: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|ext| ext == "cedar")
                        || p.file_name()
                            .is_some_and(|n| n == SCHEMA_FILE || n == ROLES_FILE)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut hasher = Sha256::new();
    for name in names {
        hasher.update(name.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(&name).unwrap_or_default());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

impl PolicyStore {
    pub fn new(dir: PathBuf, bundle: PolicyBundle, rejected: prometheus::IntCounter) -> Self {
        let status = PolicyStatus {
            version: bundle.version().to_owned(),
            loaded_at: Utc::now(),
            policies: bundle.policy_ids().len(),
            last_error: None,
            last_error_at: None,
        };
        let seen = fingerprint(&dir);
        PolicyStore {
            dir,
            current: RwLock::new(Arc::new(bundle)),
            status: Mutex::new(status),
            seen: Mutex::new(seen),
            rejected,
        }
    }

    /// The set in force.
    pub fn current(&self) -> Arc<PolicyBundle> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn status(&self) -> PolicyStatus {
        match self.status.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads if the folder changed since it was last examined (or always, when `force`).
    /// Returns the new version when a new set was swapped in.
    pub fn reload(&self, force: bool) -> Result<Option<String>, LoadError> {
        let print = fingerprint(&self.dir);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if !force && *seen == print {
                return Ok(None);
            }
            *seen = print;
        }
        let now = Utc::now();
        match PolicyBundle::load(&self.dir) {
            Ok(bundle) => {
                let version = bundle.version().to_owned();
                for warning in bundle.warnings() {
                    tracing::warn!("{warning}");
                }
                let policies = bundle.policy_ids().len();
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(bundle);
                *self.status.lock().unwrap_or_else(|p| p.into_inner()) = PolicyStatus {
                    version: version.clone(),
                    loaded_at: now,
                    policies,
                    last_error: None,
                    last_error_at: None,
                };
                tracing::info!(%version, policies, "policies reloaded");
                Ok(Some(version))
            }
            Err(err) => {
                self.rejected.inc();
                tracing::error!(
                    "policy reload rejected, keeping version {}:\n{err}",
                    self.status().version
                );
                let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
                status.last_error = Some(err.to_string());
                status.last_error_at = Some(now);
                Err(err)
            }
        }
    }

    /// Watches the folder until the process ends: polling for content changes, and SIGHUP.
    pub fn watch(self: Arc<Self>) {
        let polled = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let store = polled.clone();
                // Reading files and validating is blocking work: keep it off the reactor.
                let _ = tokio::task::spawn_blocking(move || store.reload(false)).await;
            }
        });
        #[cfg(unix)]
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP; policy reload relies on the file watch");
                return;
            };
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading policies");
                let store = self.clone();
                let _ = tokio::task::spawn_blocking(move || store.reload(true)).await;
            }
        });
    }
}
