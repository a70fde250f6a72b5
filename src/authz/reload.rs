//! The policy set in force, and hot reload: the folder is watched (polled every half second for a
//! change of content, and reloaded on SIGHUP). A change is loaded only once the folder has stayed
//! unchanged for the settle time (`--policy-settle-ms`, 500 ms by default), and only if the
//! folder still reads the same after loading, so a folder caught half-written (one file copied,
//! the next not yet) is not loaded even when it happens to validate. A changed folder is parsed
//! and validated first and swapped in atomically only when valid; an invalid edit keeps the last
//! good set, logs the located errors and reports the rejection in `/healthz`. Every request
//! holds one `Arc` snapshot from start to end, so it is evaluated against exactly one complete
//! set.
//!
//! With the database as the source (`--policy-source database`), the set in force is the active
//! published version instead (see [`crate::store::policy_versions`]): it is looked up at once when
//! another process signals a publish or rollback (PostgreSQL NOTIFY, through
//! [`crate::invalidation`]) and polled as a fallback ([`DATABASE_POLL_SQLITE`],
//! [`DATABASE_POLL_POSTGRES`]). A version that does not validate against this binary is never
//! served: the last good set stays, `/healthz` says `degraded` and names the refused version,
//! and `zygo_policy_active_refused` is 1.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::policies::{Diagnostic, LoadError, PolicyBundle, ROLES_FILE, SCHEMA_FILE};
use crate::store::policy_versions;

/// How often the folder is checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How often the active published version is looked up on SQLite (no signal between processes).
pub const DATABASE_POLL_SQLITE: Duration = Duration::from_millis(250);

/// How often it is looked up on PostgreSQL, where NOTIFY is the fast path and this the fallback.
pub const DATABASE_POLL_POSTGRES: Duration = Duration::from_secs(1);

/// What `/healthz` says about the policies.
#[derive(Debug, Clone)]
pub struct PolicyStatus {
    pub version: String,
    pub loaded_at: DateTime<Utc>,
    pub policies: usize,
    /// The located errors of the last rejected edit since the current set loaded.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// `folder` or `database`.
    pub source: &'static str,
    /// The published version in force (database source).
    pub release: Option<i64>,
    /// The version the database names active, when it is one this binary refused.
    pub refused_release: Option<i64>,
}

pub struct PolicyStore {
    dir: PathBuf,
    current: RwLock<Arc<PolicyBundle>>,
    status: Mutex<PolicyStatus>,
    /// Content hash of the folder as last examined (loaded or rejected).
    seen: Mutex<String>,
    /// A changed content hash not loaded yet, and since when the folder has read so.
    pending: Mutex<Option<(String, Instant)>>,
    /// How long a change must stay unchanged before it is loaded.
    settle: Duration,
    /// Counts rejected reloads (`zygo_policy_reloads_rejected_total`).
    rejected: prometheus::IntCounter,
    /// The database the active version is read from, when it is the source.
    database: Option<Database>,
    /// A role every set must define: the one a tenant's creator gets (`creator_role`). Startup
    /// refuses a set without it; a set loaded later is refused the same way, so the service never
    /// goes on to create tenants whose creator holds a role no policy knows.
    required_role: Option<String>,
}

/// The database source's connection and state.
struct Database {
    db: sea_orm::DatabaseConnection,
    /// One lookup at a time (a signal and the poll may arrive together).
    refreshing: tokio::sync::Mutex<()>,
    /// 1 while the active version is one this binary refused (`zygo_policy_active_refused`).
    refused_gauge: prometheus::IntGauge,
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
    /// The store of `bundle`, loaded from `dir`; edits are loaded once unchanged for `settle`.
    pub fn new(
        dir: PathBuf,
        bundle: PolicyBundle,
        rejected: prometheus::IntCounter,
        settle: Duration,
    ) -> Self {
        let status = PolicyStatus {
            version: bundle.version().to_owned(),
            loaded_at: Utc::now(),
            policies: bundle.policy_ids().len(),
            last_error: None,
            last_error_at: None,
            source: "folder",
            release: bundle.release(),
            refused_release: None,
        };
        let seen = fingerprint(&dir);
        PolicyStore {
            dir,
            current: RwLock::new(Arc::new(bundle)),
            status: Mutex::new(status),
            seen: Mutex::new(seen),
            pending: Mutex::new(None),
            settle,
            rejected,
            database: None,
            required_role: None,
        }
    }

    /// Refuses, from now on, any set that does not define `role` (see `required_role`).
    pub fn requiring_role(mut self, role: String) -> Self {
        self.required_role = Some(role);
        self
    }

    /// `bundle`, unless it lacks the required role.
    fn admit(&self, bundle: PolicyBundle) -> Result<PolicyBundle, LoadError> {
        match &self.required_role {
            Some(role) if !bundle.roles().contains(role) => Err(LoadError {
                diagnostics: vec![Diagnostic {
                    file: PathBuf::from(ROLES_FILE),
                    line: 1,
                    column: 1,
                    message: format!(
                        "the set has no role {role}, the role a tenant's creator gets \
                         (creator_role): it must stay in {ROLES_FILE}"
                    ),
                    warning: false,
                }],
            }),
            _ => Ok(bundle),
        }
    }

    /// The store of `bundle`, the active version of `db` as read at start; it follows the
    /// database's active version (see [`PolicyStore::refresh`]), never a folder.
    pub fn from_database(
        db: sea_orm::DatabaseConnection,
        bundle: PolicyBundle,
        rejected: prometheus::IntCounter,
        refused_gauge: prometheus::IntGauge,
    ) -> Self {
        let mut store = PolicyStore::new(PathBuf::new(), bundle, rejected, Duration::ZERO);
        store
            .status
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .source = "database";
        store.database = Some(Database {
            db,
            refreshing: tokio::sync::Mutex::new(()),
            refused_gauge,
        });
        store
    }

    /// Whether the set follows the database's active version.
    pub fn follows_database(&self) -> bool {
        self.database.is_some()
    }

    /// Database source: serves the active published version if it is not the one in force.
    /// A version that does not validate here is refused once (logged, counted, shown on
    /// `/healthz`) and the set in force stays. Returns the number newly in force, if any.
    pub async fn refresh(&self) -> Result<Option<i64>, String> {
        let Some(database) = &self.database else {
            return Ok(None);
        };
        let _one = database.refreshing.lock().await;
        let active = policy_versions::active(&database.db)
            .await
            .map_err(|e| format!("cannot read the active policy version: {e}"))?;
        let Some(number) = active else {
            return Ok(None);
        };
        let status = self.status();
        if status.release == Some(number) {
            if status.refused_release.is_some() {
                // Rolled back to the version in force: nothing is refused any more.
                let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
                status.refused_release = None;
                status.last_error = None;
                status.last_error_at = None;
                database.refused_gauge.set(0);
            }
            return Ok(None);
        }
        if status.refused_release == Some(number) {
            return Ok(None);
        }
        let version = policy_versions::find(&database.db, number)
            .await
            .map_err(|e| format!("cannot read policy version {number}: {e}"))?
            .ok_or_else(|| format!("the active policy version {number} is missing"))?;
        let built = tokio::task::spawn_blocking(move || super::releases::bundle_of(&version)).await;
        let built = built
            .map_err(|e| format!("loading policy version {number} failed: {e}"))?
            .and_then(|bundle| self.admit(bundle));
        let now = Utc::now();
        match built {
            Ok(bundle) => {
                let version = bundle.version().to_owned();
                let policies = bundle.policy_ids().len();
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(bundle);
                *self.status.lock().unwrap_or_else(|p| p.into_inner()) = PolicyStatus {
                    version: version.clone(),
                    loaded_at: now,
                    policies,
                    last_error: None,
                    last_error_at: None,
                    source: "database",
                    release: Some(number),
                    refused_release: None,
                };
                database.refused_gauge.set(0);
                tracing::info!(%version, release = number, policies, "policy version now in force");
                Ok(Some(number))
            }
            Err(err) => {
                self.rejected.inc();
                database.refused_gauge.set(1);
                tracing::error!(
                    "policy version {number} does not validate against this binary, keeping version {}:\n{err}",
                    status.version
                );
                let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
                status.last_error = Some(format!(
                    "published version {number} does not validate against this binary:\n{err}"
                ));
                status.last_error_at = Some(now);
                status.refused_release = Some(number);
                Err(err.to_string())
            }
        }
    }

    /// Database source: looks the active version up every `every` until the store is dropped.
    pub fn poll_database(self: &Arc<Self>, every: Duration) {
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(store) = store.upgrade() else {
                    return;
                };
                if let Err(err) = store.refresh().await {
                    tracing::debug!("policy version lookup: {err}");
                }
            }
        });
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

    /// Reloads now if the folder changed since it was last examined (or always, when `force`),
    /// without waiting for it to settle. Returns the new version when a new set was swapped in.
    pub fn reload(&self, force: bool) -> Result<Option<String>, LoadError> {
        let print = fingerprint(&self.dir);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if !force && *seen == print {
                return Ok(None);
            }
            *seen = print.clone();
        }
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.load(print)
    }

    /// One look of the watch: a change is loaded once the folder has read the same for the
    /// settle time, never on first sight (unless the settle time is zero).
    pub fn poll(&self) -> Result<Option<String>, LoadError> {
        let print = fingerprint(&self.dir);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if *self.seen.lock().unwrap_or_else(|p| p.into_inner()) == print {
            *pending = None;
            return Ok(None);
        }
        let settled = match pending.as_ref() {
            Some((waiting, since)) if *waiting == print => since.elapsed() >= self.settle,
            _ => {
                *pending = Some((print.clone(), Instant::now()));
                self.settle.is_zero()
            }
        };
        if !settled {
            return Ok(None);
        }
        *pending = None;
        drop(pending);
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = print.clone();
        self.load(print)
    }

    /// Loads the folder, expected to read as `print`; a folder that changed while it was read
    /// is left for the next look (never half a set).
    fn load(&self, print: String) -> Result<Option<String>, LoadError> {
        let now = Utc::now();
        let loaded = PolicyBundle::load(&self.dir).and_then(|bundle| self.admit(bundle));
        if fingerprint(&self.dir) != print {
            // Edited while being read: forget this look, the watch sees the new content.
            *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = String::new();
            return Ok(None);
        }
        match loaded {
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
                    source: "folder",
                    release: None,
                    refused_release: None,
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

    /// Waits until the folder reads the same twice, the settle time apart.
    async fn settled(self: &Arc<Self>) {
        let print = |store: Arc<Self>| async move {
            tokio::task::spawn_blocking(move || fingerprint(&store.dir))
                .await
                .unwrap_or_default()
        };
        let mut before = print(self.clone()).await;
        loop {
            tokio::time::sleep(self.settle).await;
            let now = print(self.clone()).await;
            if now == before {
                return;
            }
            before = now;
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
                let _ = tokio::task::spawn_blocking(move || store.poll()).await;
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
                tracing::info!("SIGHUP: reloading policies once the folder has settled");
                self.settled().await;
                let store = self.clone();
                let _ = tokio::task::spawn_blocking(move || store.reload(true)).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A store over a private copy of the shipped policies.
    fn store(settle: Duration) -> (tempfile::TempDir, Arc<PolicyStore>) {
        let dir = tempfile::tempdir().unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        for entry in std::fs::read_dir(shipped).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        let bundle = PolicyBundle::load(dir.path()).unwrap();
        let counter = prometheus::IntCounter::new("rejected", "rejected").unwrap();
        let store = PolicyStore::new(dir.path().to_owned(), bundle, counter, settle);
        (dir, Arc::new(store))
    }

    const EXTRA: &str =
        "@id(\"extra\")\npermit (principal, action == Zygo::Action::\"ReadFlow\", resource);\n";

    #[test]
    fn a_change_is_loaded_only_once_the_folder_has_stayed_the_same_for_the_settle_time() {
        let (dir, store) = store(Duration::from_millis(300));
        let before = store.status().version;
        assert_eq!(store.poll().unwrap(), None, "nothing changed");
        std::fs::write(dir.path().join("extra.cedar"), EXTRA).unwrap();
        assert_eq!(store.poll().unwrap(), None, "first sight: not yet");
        std::thread::sleep(Duration::from_millis(150));
        // Still changing: the wait starts over.
        std::fs::write(
            dir.path().join("extra.cedar"),
            EXTRA.replace("extra", "extra2"),
        )
        .unwrap();
        assert_eq!(store.poll().unwrap(), None);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(store.poll().unwrap(), None, "only 200 ms unchanged");
        assert_eq!(store.status().version, before);
        std::thread::sleep(Duration::from_millis(150));
        let loaded = store.poll().unwrap().expect("settled: loaded");
        assert_ne!(loaded, before);
        assert_eq!(store.current().version(), loaded);
        assert_eq!(store.poll().unwrap(), None, "loaded once");
    }

    #[test]
    fn without_a_settle_time_a_change_is_loaded_on_first_sight() {
        let (dir, store) = store(Duration::ZERO);
        std::fs::write(dir.path().join("extra.cedar"), EXTRA).unwrap();
        assert!(store.poll().unwrap().is_some());
    }

    #[test]
    fn a_set_without_the_creator_role_is_refused_and_the_set_in_force_stays() {
        let (dir, store) = store(Duration::ZERO);
        let roles_path = dir.path().join(ROLES_FILE);
        let shipped = std::fs::read_to_string(&roles_path).unwrap();
        let mut roles: serde_json::Value = serde_json::from_str(&shipped).unwrap();
        roles.as_array_mut().unwrap().push(serde_json::json!({
            "uid": { "type": "Zygo::Role", "id": "Owner" }, "attrs": {}, "parents": []
        }));
        let with_owner = serde_json::to_string_pretty(&roles).unwrap();
        std::fs::write(&roles_path, &with_owner).unwrap();
        let store = Arc::try_unwrap(store)
            .ok()
            .unwrap()
            .requiring_role("Owner".into());
        assert!(store.poll().unwrap().is_some(), "a set with the role loads");
        let in_force = store.status().version;

        std::fs::write(&roles_path, &shipped).unwrap();
        let refused = store.poll().expect_err("a set without Owner is refused");
        assert!(refused.to_string().contains("no role Owner"), "{refused}");
        assert_eq!(store.current().version(), in_force);
        let status = store.status();
        assert_eq!(status.version, in_force);
        assert!(status.last_error.unwrap().contains("creator_role"));

        std::fs::write(&roles_path, &with_owner).unwrap();
        assert_eq!(
            store.poll().unwrap().as_deref(),
            Some(in_force.as_str()),
            "with the role back, the set loads again"
        );
        std::fs::write(dir.path().join("extra.cedar"), EXTRA).unwrap();
        assert!(
            store.poll().unwrap().is_some(),
            "with the role back, changes load"
        );
    }
}
