//! `zygo serve`: its flags (each also a `ZYGO_*` environment variable) and the settings they
//! make.

use std::time::Duration;

use clap::Args;

use super::common::CliResult;
use super::options::{DbArgs, PolicyArgs};
use crate::authz::LogTarget;
use crate::config::{
    DEFAULT_MAX_LIVE_TOKENS, DEFAULT_MAX_TOKEN_SECONDS, DEFAULT_REQUEST_TIMEOUT_SECONDS,
    DEFAULT_TOKEN_MINTS_PER_MINUTE, Secret, Settings,
};
use crate::startup::Application;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ZYGO_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The URL users reach the service at; `https://…` marks the session cookie Secure.
    #[arg(long, env = "ZYGO_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Longest token lifetime `GET /api/token` grants, in seconds.
    #[arg(long, env = "ZYGO_MAX_TOKEN_SECONDS", default_value_t = DEFAULT_MAX_TOKEN_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_token_seconds: u64,
    /// Most live tokens (neither expired nor revoked) one user may hold; the next mint is
    /// refused until one expires or is revoked.
    #[arg(long, env = "ZYGO_MAX_LIVE_TOKENS", default_value_t = DEFAULT_MAX_LIVE_TOKENS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_live_tokens: u64,
    /// Tokens one user may mint on this instance: this many at once, then this many a minute (0: no
    /// limit).
    #[arg(long, env = "ZYGO_TOKEN_MINTS_PER_MINUTE", default_value_t = DEFAULT_TOKEN_MINTS_PER_MINUTE)]
    pub token_mints_per_minute: u32,
    /// How long a cached role or user status may be used before it is read again, in seconds.
    #[arg(long, env = "ZYGO_CACHE_TTL_SECONDS", default_value_t = 5)]
    pub cache_ttl_seconds: u64,
    /// Longest time a request may take before it is answered 503, in seconds (a backstop behind
    /// the database timeout).
    #[arg(long, env = "ZYGO_REQUEST_TIMEOUT_SECONDS", default_value_t = DEFAULT_REQUEST_TIMEOUT_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_seconds: u64,
    /// How long a browser session lives after login, in seconds.
    #[arg(long, env = "ZYGO_SESSION_SECONDS", default_value_t = 7 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub session_seconds: u64,
    /// How long a browser session survives without a request, in seconds.
    #[arg(long, env = "ZYGO_SESSION_IDLE_SECONDS", default_value_t = crate::config::DEFAULT_SESSION_IDLE_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub session_idle_seconds: u64,
    /// Seconds a client may take from a request's first byte until its answer starts; slower
    /// clients (a slow trickle of headers or body) are disconnected.
    #[arg(long, env = "ZYGO_READ_TIMEOUT_SECONDS", default_value_t = crate::config::DEFAULT_READ_TIMEOUT_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub read_timeout_seconds: u64,
    /// Window in which failed logins are counted, in seconds.
    #[arg(long, env = "ZYGO_LOGIN_WINDOW_SECONDS", default_value_t = crate::config::DEFAULT_LOGIN_WINDOW_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub login_window_seconds: u64,
    /// Failed logins per window for one account from one address before 429.
    #[arg(
        long,
        env = "ZYGO_LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS",
        default_value_t = 5
    )]
    pub login_failures_per_account_and_address: u32,
    /// Failed logins per window from one address before 429.
    #[arg(long, env = "ZYGO_LOGIN_FAILURES_PER_ADDRESS", default_value_t = 30)]
    pub login_failures_per_address: u32,
    /// Failed logins per window for one account from all addresses before 429.
    #[arg(long, env = "ZYGO_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = 100)]
    pub login_failures_per_account: u32,
    /// How many password checks and hashes (argon2) may run at once; more wait for a turn
    /// within the request timeout. Default: the number of cores.
    #[arg(long, env = "ZYGO_PASSWORD_CHECKS", value_parser = clap::value_parser!(u64).range(1..))]
    pub password_checks: Option<u64>,
    /// Where the policies come from: `folder` (the policy folder, watched for edits; one machine
    /// and authoring) or `database` (the active version published with `zygo policy publish`;
    /// every instance on the database serves it and follows publishes and rollbacks).
    #[arg(long, env = "ZYGO_POLICY_SOURCE", value_enum, default_value = "folder")]
    pub policy_source: crate::config::PolicySource,
    /// Milliseconds the policy folder must stay unchanged before an edit is loaded (so a folder
    /// caught half-written is not); 0 loads as soon as a change is seen.
    #[arg(long, env = "ZYGO_POLICY_SETTLE_MS", default_value_t = crate::config::DEFAULT_POLICY_SETTLE_MS)]
    pub policy_settle_ms: u64,
    /// Show the policy set's details and a rejected edit's located errors (file paths, policy
    /// text) in `GET /healthz` to every caller; only where operators alone can reach it.
    #[arg(long, env = "ZYGO_HEALTH_DETAILS")]
    pub health_details: bool,
    /// How long a pending invitation can be accepted, in seconds (inviting again renews it);
    /// an expired one is not listed, cannot be accepted and is purged.
    #[arg(long, env = "ZYGO_INVITATION_SECONDS", default_value_t = crate::config::DEFAULT_INVITATION_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub invitation_seconds: u64,
    /// Seconds between two purges of expired tokens, unneeded revocations, ended sessions,
    /// closed login-throttling windows and expired invitations (in bounded batches, in the
    /// background); 0 never purges.
    #[arg(long, env = "ZYGO_PURGE_INTERVAL_SECONDS", default_value_t = crate::config::DEFAULT_PURGE_INTERVAL_SECONDS)]
    pub purge_interval_seconds: u64,
    /// Where to log every authorization decision as a JSON line: `off`, `stdout`, or a file path.
    #[arg(long, env = "ZYGO_DECISION_LOG", default_value = "off")]
    pub decision_log: LogTarget,
    /// Where to serve Prometheus metrics (`GET /metrics`): `on` (on the public listener), `off`,
    /// or an address such as `127.0.0.1:9100` (a listener of its own, not the public one).
    #[arg(long, env = "ZYGO_METRICS", default_value = "on")]
    pub metrics: crate::metrics::MetricsTarget,
    /// Who may create tenants: `anyone` (any authenticated user, through `POST /api/tenants`, as
    /// the `CreateTenant` policy decides) or `operators` (only `zygo tenant add`; the API answers
    /// 403 `tenant_creation_restricted`).
    #[arg(
        long,
        env = "ZYGO_TENANT_CREATION",
        value_enum,
        default_value = "anyone"
    )]
    pub tenant_creation: crate::config::TenantCreation,
    /// Largest flow definition, in bytes of compact JSON; a larger one is refused (413 naming
    /// `definition`). Request bodies may hold this plus 64 KiB.
    #[arg(long, env = "ZYGO_MAX_DEFINITION_BYTES", default_value_t = crate::config::DEFAULT_MAX_DEFINITION_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(2..=(1 << 30)))]
    pub max_definition_bytes: u64,
    /// Bytes of flow definitions one page of `GET …/flows` holds at most (always one flow at
    /// least); the rest comes with the page's `next_cursor`.
    #[arg(long, env = "ZYGO_MAX_PAGE_BYTES", default_value_t = crate::config::DEFAULT_MAX_PAGE_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1..=(1 << 32)))]
    pub max_page_bytes: u64,
    /// First create a demo world (tenants, users with each role, flows) and print its logins.
    #[arg(long)]
    pub demo: bool,
}

pub(super) async fn serve(args: ServeArgs) -> CliResult {
    let mut settings = Settings::new(args.db.settings());
    settings.bind = args.bind;
    settings.decision_log = args.decision_log;
    settings.metrics = args.metrics;
    settings.policies_dir = args.policy.policies;
    settings.public_url = args.public_url;
    settings.max_token_seconds = args.max_token_seconds;
    settings.max_live_tokens = args.max_live_tokens;
    settings.token_mints_per_minute = args.token_mints_per_minute;
    settings.cache_ttl = Duration::from_secs(args.cache_ttl_seconds);
    settings.request_timeout = Duration::from_secs(args.request_timeout_seconds);
    settings.session_lifetime = Duration::from_secs(args.session_seconds);
    settings.session_idle = Duration::from_secs(args.session_idle_seconds);
    settings.read_timeout = Duration::from_secs(args.read_timeout_seconds);
    settings.login_window = Duration::from_secs(args.login_window_seconds);
    settings.login_failures_per_account_and_address = args.login_failures_per_account_and_address;
    settings.login_failures_per_address = args.login_failures_per_address;
    settings.login_failures_per_account = args.login_failures_per_account;
    if let Some(checks) = args.password_checks {
        settings.password_checks = usize::try_from(checks).unwrap_or(usize::MAX);
    }
    settings.policy_source = args.policy_source;
    settings.policy_settle = Duration::from_millis(args.policy_settle_ms);
    settings.health_details = args.health_details;
    settings.invitation_lifetime = Duration::from_secs(args.invitation_seconds);
    settings.purge_interval = Duration::from_secs(args.purge_interval_seconds);
    settings.tenant_creation = args.tenant_creation;
    settings.max_definition_bytes =
        usize::try_from(args.max_definition_bytes).unwrap_or(usize::MAX);
    settings.max_page_bytes = usize::try_from(args.max_page_bytes).unwrap_or(usize::MAX);
    settings.token_secret =
        std::env::var_os("ZYGO_TOKEN_SECRET").map(|s| Secret::new(s.into_encoded_bytes()));
    if let Ok(spec) = std::env::var("ZYGO_TOKEN_KEYS") {
        settings.token_keys = crate::auth::token::parse_key_list(&spec)
            .map_err(|e| format!("zygo cannot start: {e}"))?;
    }
    let creator_role = settings.creator_role.clone();
    let app = Application::build(settings)
        .await
        .map_err(|e| format!("zygo cannot start: {e}"))?;
    if args.demo {
        let world = crate::demo::seed(&app.state().db, &creator_role)
            .await
            .map_err(|e| format!("cannot create the demo world: {e}"))?;
        println!("{world}");
    }
    let addr = app.local_addr();
    // Before the `listening on` line, which scripts wait for.
    if let Some(metrics) = app.metrics_addr() {
        println!("metrics on http://{metrics}/metrics");
    }
    println!(
        "listening on http://{addr} (console at http://{addr}/, Swagger UI at http://{addr}/docs)"
    );
    app.run_until_stopped()
        .await
        .map_err(|e| format!("the server stopped: {e}"))
}
