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
//! Counters live in this process: with N instances an attacker gets at most N times the budget.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;

use crate::config::Settings;
use crate::error::ApiError;
use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// The three counters one login attempt touches, with their limits.
pub struct Attempt {
    keys: [(String, u32); 3],
}

pub struct LoginThrottle {
    counters: Cache<String, Window>,
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
    pub fn new(settings: &Settings, metrics: Arc<Metrics>) -> Self {
        LoginThrottle {
            counters: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(settings.login_window)
                .build(),
            window: settings.login_window,
            per_account_and_address: settings.login_failures_per_account_and_address,
            per_address: settings.login_failures_per_address,
            per_account: settings.login_failures_per_account,
            metrics,
        }
    }

    /// The counters of an attempt on `email` (already normalised) from `addr`.
    pub fn attempt(&self, email: &str, addr: Option<IpAddr>) -> Attempt {
        let address = address_key(addr);
        Attempt {
            keys: [
                (
                    format!("pair\u{0}{email}\u{0}{address}"),
                    self.per_account_and_address,
                ),
                (format!("addr\u{0}{address}"), self.per_address),
                (format!("acct\u{0}{email}"), self.per_account),
            ],
        }
    }

    fn bump(&self, key: &str) -> impl std::future::Future<Output = Window> + '_ {
        let window = self.window;
        let key = key.to_owned();
        async move {
            self.counters
                .entry(key)
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
                .into_value()
        }
    }

    /// Before any password is checked: counts the attempt on the account's counters in one atomic
    /// step each (so concurrent guesses at one account cannot all slip through a read-only check),
    /// and reads the address's counter (which counts failures only, so many people behind one
    /// address can log in at once). `Err(429)` with the seconds until the latest full window ends.
    pub async fn reserve(&self, attempt: &Attempt) -> Result<(), ApiError> {
        let mut wait: Option<Duration> = None;
        for (key, limit) in &attempt.keys {
            let counted = if key.starts_with("addr\u{0}") {
                match self.counters.get(key).await {
                    Some(w) if w.started.elapsed() < self.window => Window {
                        started: w.started,
                        failures: w.failures.saturating_add(1),
                    },
                    _ => continue,
                }
            } else {
                self.bump(key).await
            };
            if counted.failures > *limit {
                let left = self.window.saturating_sub(counted.started.elapsed());
                wait = Some(wait.map_or(left, |w| w.max(left)));
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
    pub async fn failed(&self, attempt: &Attempt) {
        for (key, _) in &attempt.keys {
            if key.starts_with("addr\u{0}") {
                self.bump(key).await;
            }
        }
    }

    /// A successful password check clears the account's counters (the address's stays).
    pub async fn succeeded(&self, attempt: &Attempt) {
        for (key, _) in &attempt.keys {
            if !key.starts_with("addr\u{0}") {
                self.counters.invalidate(key).await;
            }
        }
    }
}
