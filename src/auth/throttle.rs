//! Login throttling: password checks are counted per account from one address, per address,
//! and per account from everywhere, each in a fixed window. Every attempt *reserves* its place
//! on all three counters in one atomic statement before any password is checked, so concurrent
//! guesses each see their own count and at most the limit of them get a check; one over a limit
//! is refused with 429 and `Retry-After` and learns nothing. Nothing is permanent: a counter dies
//! with its window. The address's counter counts failures only (many people behind one address
//! may log in): a successful check gives its reservation back, and so does a refused attempt
//! (no password was checked). A successful check clears the account's counters (not the
//! address's: a valid login of the attacker's own must not reset it).
//!
//! The account key is the normalised e-mail as typed, known or not, so throttling does not tell
//! registered e-mails apart. The address is the peer address of the connection (an IPv6 address
//! counts by its /64); behind a proxy it is the proxy's, so the per-account limits still hold.
//! The counters live in the database (table `login_failures`) on SQLite and PostgreSQL alike, so
//! N instances sharing a PostgreSQL database give an attacker the budget of one.
//!
//! The argon2 work itself (checks and hashes) runs at most `password_checks` at a time (by
//! default the number of cores); more wait for a turn, within the request's deadline, so a flood
//! of guesses cannot starve the rest of the service of CPU.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::login_failures;

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One account from one address.
    Pair,
    /// One address, every account: counts failures only.
    Address,
    /// One account from everywhere.
    Account,
}

/// The three counters one login attempt touches, with their limits.
pub struct Attempt {
    keys: [(Kind, String, u32); 3],
    /// When the address's window that [`LoginThrottle::reserve`] counted this attempt in
    /// started: a refund gives back a count of that window only, never of a later one.
    reserved: Mutex<Option<DateTime<Utc>>>,
}

pub struct LoginThrottle {
    db: DatabaseConnection,
    window: Duration,
    per_account_and_address: u32,
    per_address: u32,
    per_account: u32,
    metrics: Arc<Metrics>,
    argon2: Argon2Slots,
}

/// Turns at the argon2 work, and what a test needs to see that they hold.
struct Argon2Slots {
    permits: Arc<Semaphore>,
    /// Argon2 computations running now, and the most ever seen at once.
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    /// Argon2 computations started since the process started.
    started: Arc<AtomicU64>,
}

/// The address a client counts under: IPv4 as is, IPv6 by its /64 (one customer's network).
fn address_key(addr: Option<IpAddr>) -> String {
    match addr {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "unknown".to_owned(),
    }
}

impl LoginThrottle {
    /// Counters in `db`; `settings.password_checks` argon2 computations at a time (at least one).
    pub fn new(settings: &Settings, db: &DatabaseConnection, metrics: Arc<Metrics>) -> Self {
        LoginThrottle {
            db: db.clone(),
            window: settings.login_window,
            per_account_and_address: settings.login_failures_per_account_and_address,
            per_address: settings.login_failures_per_address,
            per_account: settings.login_failures_per_account,
            metrics,
            argon2: Argon2Slots {
                permits: Arc::new(Semaphore::new(settings.password_checks.max(1))),
                running: Arc::new(AtomicUsize::new(0)),
                peak: Arc::new(AtomicUsize::new(0)),
                started: Arc::new(AtomicU64::new(0)),
            },
        }
    }

    /// The counters of an attempt on `email` (already normalised) from `addr`. A key is the
    /// SHA-256 of what it counts, so no typed e-mail is stored as such.
    pub fn attempt(&self, email: &str, addr: Option<IpAddr>) -> Attempt {
        let address = address_key(addr);
        let key = |text: String| hex::encode(Sha256::digest(text.as_bytes()));
        Attempt {
            keys: [
                (
                    Kind::Pair,
                    key(format!("pair\u{0}{address}\u{0}{email}")),
                    self.per_account_and_address,
                ),
                (
                    Kind::Address,
                    key(format!("addr\u{0}{address}")),
                    self.per_address,
                ),
                (
                    Kind::Account,
                    key(format!("acct\u{0}{email}")),
                    self.per_account,
                ),
            ],
            reserved: Mutex::new(None),
        }
    }

    /// Before any password is checked: reserves the attempt on its three counters in one atomic
    /// statement. `Err(429)` with the seconds until the latest full window ends when any counter
    /// is over its limit; the address's reservation is then given back (nothing was checked).
    pub async fn reserve(&self, attempt: &Attempt) -> Result<(), ApiError> {
        let keys: Vec<&str> = attempt
            .keys
            .iter()
            .map(|(_, key, _)| key.as_str())
            .collect();
        let counted = login_failures::reserve(&self.db, &keys, self.window).await?;
        let mut wait: Option<Duration> = None;
        for (kind, key, limit) in &attempt.keys {
            let Some((_, counted)) = counted.iter().find(|(k, _)| k == key) else {
                continue;
            };
            if *kind == Kind::Address {
                *attempt.reserved.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(counted.window_started_at);
            }
            if counted.failures > *limit {
                wait = Some(wait.map_or(counted.left, |w| w.max(counted.left)));
            }
        }
        match wait {
            None => Ok(()),
            Some(left) => {
                self.refund_address(attempt).await?;
                self.metrics.login_throttled();
                Err(ApiError::TooManyRequests {
                    retry_after: (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1),
                })
            }
        }
    }

    /// Gives the address's reservation back, in the window it was made in (taken, so an
    /// attempt is refunded at most once; nothing when nothing was reserved).
    async fn refund_address(&self, attempt: &Attempt) -> Result<(), ApiError> {
        let reserved = attempt
            .reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(window_started_at) = reserved else {
            return Ok(());
        };
        for (kind, key, _) in &attempt.keys {
            if *kind == Kind::Address {
                login_failures::refund(&self.db, key, window_started_at).await?;
            }
        }
        Ok(())
    }

    /// A failed password check: its reservations stand as the failure they counted.
    pub async fn failed(&self, _attempt: &Attempt) -> Result<(), ApiError> {
        Ok(())
    }

    /// A successful password check clears the account's counters and gives the address's
    /// reservation back (the address counts failures only, and is never cleared).
    pub async fn succeeded(&self, attempt: &Attempt) -> Result<(), ApiError> {
        let account: Vec<&str> = attempt
            .keys
            .iter()
            .filter(|(kind, _, _)| *kind != Kind::Address)
            .map(|(_, key, _)| key.as_str())
            .collect();
        login_failures::clear(&self.db, &account).await?;
        self.refund_address(attempt).await
    }

    /// Runs argon2 work (a password check or hash) on the blocking pool once a turn is free. The
    /// turn is held until the work ends, even when the request gives up waiting for it.
    pub async fn argon2<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self
            .argon2
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let (running, peak, started) = (
            self.argon2.running.clone(),
            self.argon2.peak.clone(),
            self.argon2.started.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            started.fetch_add(1, Ordering::Relaxed);
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let out = work();
            running.fetch_sub(1, Ordering::SeqCst);
            out
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// Argon2 computations started so far (password checks and hashes).
    pub fn argon2_started(&self) -> u64 {
        self.argon2.started.load(Ordering::Relaxed)
    }

    /// The most argon2 computations ever seen running at once.
    pub fn argon2_peak(&self) -> usize {
        self.argon2.peak.load(Ordering::SeqCst)
    }
}
