//! Prometheus metrics, in the text exposition format at `GET /metrics`.
//!
//! Each server has a registry of its own (not the process-wide default one), so many servers in
//! one process (the test suite) never mix their counts. Labels only ever hold values from small
//! fixed sets (operation ids, route templates, status codes, action names, Allow/Deny): never a
//! token, a session id, an e-mail, a user or tenant id, or a raw path with ids in it.
//!
//! `--metrics` (`ZYGO_METRICS`) says where the endpoint is served: `on` (the default, on the
//! public listener), `off`, or an address such as `127.0.0.1:9100` (a listener of its own, and
//! not on the public one), so an operator can keep it off a public address.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub use crate::config::MetricsTarget;

/// Latency buckets, in seconds: most requests here take well under a millisecond, and the
/// request deadline (15 s by default) bounds the slowest.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
];

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    /// `zygo_decisions_total` of each action (by its position in the names given to
    /// [`Metrics::new`]): `[Deny, Allow]`, resolved
    /// once, since every guarded request counts one.
    decisions: Vec<[IntCounter; 2]>,
    /// `zygo_role_cache_requests_total`: `[miss, hit]`.
    role_cache: [IntCounter; 2],
    policy_info: IntGaugeVec,
    decision_sources: IntGaugeVec,
    policy_loaded: IntGauge,
    policy_count: IntGauge,
    /// Rejected policy reloads (a bad edit of the folder kept the last good set).
    pub policy_reloads_rejected: IntCounter,
    /// 1 while the database's active policy version is one this binary refused (the last good
    /// set stays in force); 0 otherwise.
    pub policy_active_refused: IntGauge,
    tokens_minted: IntCounterVec,
    token_revocations: IntCounter,
    login_throttled: IntCounter,
    logins: IntCounterVec,
}

/// What the policy gauges show, read when the metrics are rendered.
pub struct PolicyGauges<'a> {
    pub version: &'a str,
    pub loaded_at: chrono::DateTime<chrono::Utc>,
    pub policies: usize,
}

/// Registers a collector; the names are fixed and distinct, so this cannot fail in practice.
fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    if let Err(err) = registry.register(Box::new(c.clone())) {
        tracing::error!("metric not registered: {err}");
    }
    c
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(
        registry,
        IntCounter::new(name, help).unwrap_or_else(|_| unreachable!("valid metric name {name}")),
    )
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels)
            .unwrap_or_else(|_| unreachable!("valid metric name {name}")),
    )
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(
        registry,
        IntGauge::new(name, help).unwrap_or_else(|_| unreachable!("valid metric name {name}")),
    )
}

impl Metrics {
    /// The metrics of one server; `actions` names the authorization actions, in the order
    /// [`Metrics::decision`] counts them by.
    pub fn new(actions: &[&'static str]) -> Self {
        let registry = Registry::new();
        let r = &registry;
        let http_duration = register(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "zygo_http_request_duration_seconds",
                    "Time from a request's arrival until its response starts, by operation.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["operation"],
            )
            .unwrap_or_else(|_| unreachable!("valid histogram")),
        );
        Metrics {
            http_requests: counter_vec(
                r,
                "zygo_http_requests_total",
                "HTTP requests answered, by operation (OpenAPI operation id or route template) and status code.",
                &["operation", "status"],
            ),
            http_duration,
            decisions: {
                let decisions = counter_vec(
                    r,
                    "zygo_decisions_total",
                    "Authorization decisions, by action and decision (Allow or Deny); operations' own checks and the decision API alike.",
                    &["action", "decision"],
                );
                actions
                    .iter()
                    .map(|action| ["Deny", "Allow"].map(|d| decisions.with_label_values(&[action, d])))
                    .collect()
            },
            role_cache: {
                let role_cache = counter_vec(
                    r,
                    "zygo_role_cache_requests_total",
                    "Role lookups, by result: hit (answered by the cache) or miss (read from the database).",
                    &["result"],
                );
                ["miss", "hit"].map(|result| role_cache.with_label_values(&[result]))
            },
            policy_info: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "zygo_policy_info",
                        "The policy set in force: 1, labelled with its version (a content hash, as in /healthz).",
                    ),
                    &["version"],
                )
                .unwrap_or_else(|_| unreachable!("valid gauge")),
            ),
            decision_sources: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "zygo_decision_sources",
                        "Decisions given since the policy set in force was loaded, by source: memo (remembered from an earlier request on the same inputs), residual (evaluated from the policies' residuals compiled for the caller), cedar (evaluated by Cedar).",
                    ),
                    &["source"],
                )
                .unwrap_or_else(|_| unreachable!("valid gauge")),
            ),
            policy_loaded: gauge(
                r,
                "zygo_policy_loaded_timestamp_seconds",
                "When the policy set in force was loaded (Unix time).",
            ),
            policy_count: gauge(
                r,
                "zygo_policies",
                "Number of policies in the set in force.",
            ),
            policy_reloads_rejected: counter(
                r,
                "zygo_policy_reloads_rejected_total",
                "Policy reloads refused because the edited folder did not validate (the last good set stays).",
            ),
            policy_active_refused: gauge(
                r,
                "zygo_policy_active_refused",
                "1 while the active published policy version does not validate against this binary and an older one stays in force; 0 otherwise.",
            ),
            tokens_minted: counter_vec(
                r,
                "zygo_tokens_minted_total",
                "API tokens minted, by what authenticated the request (session or token).",
                &["from"],
            ),
            token_revocations: counter(
                r,
                "zygo_token_revocations_total",
                "Token families revoked explicitly by their owner, one each; a kill switch (log out everywhere, password change, disabling) ends all of a user's tokens at once and is not counted here.",
            ),
            login_throttled: counter(
                r,
                "zygo_login_throttled_total",
                "Login (and password change) attempts refused with 429 by the failed-login throttle.",
            ),
            logins: counter_vec(
                r,
                "zygo_logins_total",
                "Logins whose password was checked, by result: success or failure (throttled ones are in zygo_login_throttled_total).",
                &["result"],
            ),
            registry,
        }
    }

    /// One answered request; `status` is the code's three digits.
    pub fn http_request(&self, operation: &str, status: &str, took: Duration) {
        self.http_requests
            .with_label_values(&[operation, status])
            .inc();
        self.http_duration
            .with_label_values(&[operation])
            .observe(took.as_secs_f64());
    }

    /// One authorization decision of the action at `action` in the names given to [`Metrics::new`].
    pub fn decision(&self, action: usize, allowed: bool) {
        if let Some(counters) = self.decisions.get(action) {
            counters[usize::from(allowed)].inc();
        }
    }

    /// One role lookup, answered by the cache or not.
    pub fn role_lookup(&self, hit: bool) {
        self.role_cache[usize::from(hit)].inc();
    }

    /// One token minted; `from_session` when a session (not a token) asked for it.
    pub fn token_minted(&self, from_session: bool) {
        let from = if from_session { "session" } else { "token" };
        self.tokens_minted.with_label_values(&[from]).inc();
    }

    /// Token families revoked.
    pub fn tokens_revoked(&self, families: usize) {
        self.token_revocations.inc_by(families as u64);
    }

    /// One login whose password was checked.
    pub fn login(&self, succeeded: bool) {
        let result = if succeeded { "success" } else { "failure" };
        self.logins.with_label_values(&[result]).inc();
    }

    /// One login attempt refused by the throttle.
    pub fn login_throttled(&self) {
        self.login_throttled.inc();
    }

    /// Sets `zygo_decision_sources` from the policy set in force (its counts restart at a reload).
    pub fn set_decision_sources(&self, sources: &[(&str, u64)]) {
        for (source, count) in sources {
            self.decision_sources
                .with_label_values(&[source])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
    }

    /// The text exposition of every metric, with the policy gauges set from the policy set in
    /// force now: its version, when it was loaded, and how many policies it holds.
    pub fn render(&self, policies: &PolicyGauges<'_>) -> String {
        self.policy_info.reset();
        self.policy_info
            .with_label_values(&[policies.version])
            .set(1);
        self.policy_loaded.set(policies.loaded_at.timestamp());
        self.policy_count
            .set(i64::try_from(policies.policies).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("cannot encode the metrics: {err}");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// The content type of [`Metrics::render`]'s output.
    pub fn content_type() -> &'static str {
        prometheus::TEXT_FORMAT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_from_the_flag() {
        assert_eq!("on".parse(), Ok(MetricsTarget::Public));
        assert_eq!("off".parse(), Ok(MetricsTarget::Off));
        assert_eq!(
            "127.0.0.1:9100".parse(),
            Ok(MetricsTarget::Listen("127.0.0.1:9100".into()))
        );
        assert_eq!(
            "[::1]:9100".parse(),
            Ok(MetricsTarget::Listen("[::1]:9100".into()))
        );
        for bad in ["", "yes", "9100", ":9100", "host:port"] {
            assert!(bad.parse::<MetricsTarget>().is_err(), "{bad}");
        }
    }
}
