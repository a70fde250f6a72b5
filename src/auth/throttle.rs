//! Login throttling: failed password checks are counted per account from one address, per
//! address, and per account from everywhere, each in a fixed window. Once a counter reaches its
//! limit, further attempts on that key are refused with 429 and `Retry-After` *before* any
//! password is checked, so a throttled attacker learns nothing. Nothing is permanent: a counter
//! dies with its window, and a successful login clears the account's counters (not the
//! address's: a valid login of the attacker's own must not reset it).
//!
//! The account key is the normalised e-mail as typed, known or not, so throttling does not tell
//! registered e-mails apart. The address is the peer address of the connection (an IPv6 address
//! counts by its /64); behind a proxy it is the proxy's, so the per-account limits still hold.
//! On PostgreSQL the counters live in the database (table `login_failures`), so N instances
//! sharing it give an attacker the budget of one; on SQLite (one instance) they live in this
//! process.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use sea_orm::{DatabaseConnection, DbBackend};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::login_failures::{self, Counted};

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

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
}

/// Where the counters live.
enum Counters {
    /// In this process (SQLite: one instance).
    Local(Cache<String, Window>),
    /// In the database, shared by every instance on it (PostgreSQL).
    Shared(DatabaseConnection),
}

pub struct LoginThrottle {
    counters: Counters,
    window: Duration,
    per_account_and_address: u32,
    per_address: u32,
    per_account: u32,
    metrics: Arc<Metrics>,
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
    /// Counters in the database when it is PostgreSQL (instances share them), else in this
    /// process.
    pub fn new(settings: &Settings, db: &DatabaseConnection, metrics: Arc<Metrics>) -> Self {
        let counters = if db.get_database_backend() == DbBackend::Postgres {
            Counters::Shared(db.clone())
        } else {
            Counters::Local(
                Cache::builder()
                    .max_capacity(1_000_000)
                    .time_to_live(settings.login_window)
                    .build(),
            )
        };
        LoginThrottle {
            counters,
            window: settings.login_window,
            per_account_and_address: settings.login_failures_per_account_and_address,
            per_address: settings.login_failures_per_address,
            per_account: settings.login_failures_per_account,
            metrics,
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
        }
    }

    /// Counts one more on `key`, in a new window when the last one has passed.
    async fn bump(&self, key: &str) -> Result<Counted, ApiError> {
        let window = self.window;
        match &self.counters {
            Counters::Shared(db) => Ok(login_failures::bump(db, key, window).await?),
            Counters::Local(cache) => {
                let w = cache
                    .entry(key.to_owned())
                    .and_upsert_with(|old| {
                        let now = Instant::now();
                        let next = match old.map(|e| e.into_value()) {
                            Some(w) if now.duration_since(w.started) < window => Window {
                                started: w.started,
                                failures: w.failures.saturating_add(1),
                            },
                            _ => Window {
                                started: now,
                                failures: 1,
                            },
                        };
                        std::future::ready(next)
                    })
                    .await
                    .into_value();
                Ok(Counted {
                    failures: w.failures,
                    left: window.saturating_sub(w.started.elapsed()),
                })
            }
        }
    }

    /// The counter of `key` while its window is open.
    async fn peek(&self, key: &str) -> Result<Option<Counted>, ApiError> {
        match &self.counters {
            Counters::Shared(db) => Ok(login_failures::peek(db, key, self.window).await?),
            Counters::Local(cache) => Ok(cache
                .get(key)
                .await
                .filter(|w| w.started.elapsed() < self.window)
                .map(|w| Counted {
                    failures: w.failures,
                    left: self.window.saturating_sub(w.started.elapsed()),
                })),
        }
    }

    async fn clear(&self, key: &str) -> Result<(), ApiError> {
        match &self.counters {
            Counters::Shared(db) => Ok(login_failures::clear(db, key).await?),
            Counters::Local(cache) => {
                cache.invalidate(key).await;
                Ok(())
            }
        }
    }

    /// Before any password is checked: counts the attempt on the account's counters in one atomic
    /// step each (so concurrent guesses at one account cannot all slip through a read-only check),
    /// and reads the address's counter (which counts failures only, so many people behind one
    /// address can log in at once). `Err(429)` with the seconds until the latest full window ends.
    pub async fn reserve(&self, attempt: &Attempt) -> Result<(), ApiError> {
        let mut wait: Option<Duration> = None;
        for (kind, key, limit) in &attempt.keys {
            let counted = if *kind == Kind::Address {
                match self.peek(key).await? {
                    Some(c) => Counted {
                        failures: c.failures.saturating_add(1),
                        left: c.left,
                    },
                    None => continue,
                }
            } else {
                self.bump(key).await?
            };
            if counted.failures > *limit {
                wait = Some(wait.map_or(counted.left, |w| w.max(counted.left)));
            }
        }
        match wait {
            None => Ok(()),
            Some(left) => {
                self.metrics.login_throttled();
                Err(ApiError::TooManyRequests {
                    retry_after: (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1),
                })
            }
        }
    }

    /// A failed password check also counts against the address.
    pub async fn failed(&self, attempt: &Attempt) -> Result<(), ApiError> {
        for (kind, key, _) in &attempt.keys {
            if *kind == Kind::Address {
                self.bump(key).await?;
            }
        }
        Ok(())
    }

    /// A successful password check clears the account's counters (the address's stays).
    pub async fn succeeded(&self, attempt: &Attempt) -> Result<(), ApiError> {
        for (kind, key, _) in &attempt.keys {
            if *kind != Kind::Address {
                self.clear(key).await?;
            }
        }
        Ok(())
    }
}
