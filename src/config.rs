//! One typed `Settings` for the server and the admin commands.
//!
//! Values come from built-in defaults, then `ZYGO_*` environment variables, then command-line flags
//! (clap resolves the precedence). Secrets are wrapped in [`Secret`], whose `Debug` never prints them.

use std::path::PathBuf;
use std::time::Duration;

/// Default upper bound of `GET /api/token?expiration=` (30 days).
pub const DEFAULT_MAX_TOKEN_SECONDS: u64 = 2_592_000;
/// Default lifetime of a token when `expiration` is not given.
pub const DEFAULT_TOKEN_SECONDS: u64 = 600;
/// Default bound on a user's live tokens (neither expired, revoked nor ended by a kill switch).
pub const DEFAULT_MAX_LIVE_TOKENS: u64 = 1_000;
/// Default number of tokens one user may mint per minute on one instance.
pub const DEFAULT_TOKEN_MINTS_PER_MINUTE: u32 = 120;
/// Default idle timeout of a browser session (2 hours).
pub const DEFAULT_SESSION_IDLE_SECONDS: u64 = 7200;
/// Default time a client may take from a request's first byte until its answer starts.
pub const DEFAULT_READ_TIMEOUT_SECONDS: u64 = 30;
/// Default window in which failed logins are counted (15 minutes).
pub const DEFAULT_LOGIN_WINDOW_SECONDS: u64 = 900;
/// Default lifetime of a pending invitation (7 days).
pub const DEFAULT_INVITATION_SECONDS: u64 = 7 * 24 * 3600;
/// Default time between two purges of expired rows (5 minutes).
pub const DEFAULT_PURGE_INTERVAL_SECONDS: u64 = 300;
/// Shortest accepted `ZYGO_TOKEN_SECRET`, in bytes (HS256 wants a key at least as long as its hash).
pub const MIN_SECRET_BYTES: usize = 32;
/// Default bound, in seconds, on a whole request.
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 15;
/// Default time the policy folder must stay unchanged before an edit is loaded, in milliseconds.
pub const DEFAULT_POLICY_SETTLE_MS: u64 = 500;
/// Default bound, in seconds, on waiting for the database (connect, pool, lock, statement).
pub const DEFAULT_DB_TIMEOUT_SECONDS: u64 = 3;
/// Default largest flow definition, in bytes of compact JSON (64 KiB; see the README).
pub const DEFAULT_MAX_DEFINITION_BYTES: usize = 64 * 1024;
/// Default bytes of definitions one page of flows holds at most (4 MiB; see the README).
pub const DEFAULT_MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// What a request body may hold besides a flow's definition: its name, its labels, whitespace.
pub const BODY_HEADROOM_BYTES: usize = 64 * 1024;

/// Who may create tenants through the API (`POST /api/tenants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TenantCreation {
    /// Any authenticated user, as the `CreateTenant` policy decides (the default).
    #[default]
    Anyone,
    /// Only the operators, with `zygo tenant add`; `POST /api/tenants` answers 403.
    Operators,
}

/// Where the policy set in force comes from (`--policy-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PolicySource {
    /// The policy folder, watched for edits (the default: one machine, authoring, `serve --demo`
    /// on a fresh clone).
    #[default]
    Folder,
    /// The active version published in the database (`zygo policy publish`): every instance on
    /// the database serves the same one and follows publishes and rollbacks.
    Database,
}

/// A secret value; `Debug` prints a placeholder so it never reaches a log by accident.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where the data lives: shared by `serve` and the admin commands.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`.
    pub url: String,
    /// Folder for the default SQLite file and the generated token secret.
    pub data_dir: PathBuf,
    /// How long a request may wait for the database (a connection, a lock, a statement) before it
    /// is answered 503: a dead database never hangs a request for longer than this.
    pub timeout: Duration,
}

impl DatabaseSettings {
    /// The explicit URL, or a SQLite file under the data folder.
    pub fn new(url: Option<String>, data_dir: PathBuf) -> Self {
        let url = url
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("zygo.db").display()));
        DatabaseSettings {
            url,
            data_dir,
            timeout: Duration::from_secs(DEFAULT_DB_TIMEOUT_SECONDS),
        }
    }

    /// Whether the URL names a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres:") || self.url.starts_with("postgresql:")
    }
}

/// Everything `zygo serve` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port (tests).
    pub bind: String,
    pub database: DatabaseSettings,
    /// The policy folder: `schema.cedarschema`, `*.cedar`, `roles.cedarentities.json`.
    pub policies_dir: PathBuf,
    /// `ZYGO_TOKEN_SECRET`; when absent a secret is generated once under the data folder.
    pub token_secret: Option<Secret>,
    /// `ZYGO_TOKEN_KEYS`: named keys for rotation, the first signs, all verify (overrides the
    /// single secret; setting both is refused at start).
    pub token_keys: Vec<(String, Secret)>,
    /// Upper bound of a token's lifetime in seconds.
    pub max_token_seconds: u64,
    /// Most live tokens one user may hold; the next mint is refused (409 `token_limit`).
    pub max_live_tokens: u64,
    /// Tokens one user may mint per minute on one instance (a bucket that refills evenly);
    /// beyond it a mint is refused with 429 and `Retry-After`. Zero: no limit.
    pub token_mints_per_minute: u32,
    /// How long a cached role or user status may be served before it is read again.
    pub cache_ttl: Duration,
    /// How long a browser session lives after login, however busy (absolute lifetime).
    pub session_lifetime: Duration,
    /// How long a browser session survives without a request (idle timeout).
    pub session_idle: Duration,
    /// Longest time a request may take; past it the client gets 503 (a backstop behind the
    /// database timeouts, for a database that stops answering in the middle of a query).
    pub request_timeout: Duration,
    /// The URL users reach the service at; `https://…` marks the session cookie `Secure`.
    pub public_url: Option<String>,
    /// The window failed logins are counted in.
    pub login_window: Duration,
    /// Failed logins allowed per window for one account from one address.
    pub login_failures_per_account_and_address: u32,
    /// Failed logins allowed per window from one address, whatever the accounts.
    pub login_failures_per_address: u32,
    /// Failed logins allowed per window for one account from all addresses together.
    pub login_failures_per_account: u32,
    /// How many argon2 computations (password checks and hashes) may run at once; more wait for
    /// a turn within the request's deadline. Default: the number of cores.
    pub password_checks: usize,
    /// How long a client may take from the first byte of a request to the start of the answer;
    /// slower connections (a slow-trickle client) are closed. Longer than `request_timeout`,
    /// so in practice it bounds how slowly headers and body may arrive.
    pub read_timeout: Duration,
    /// How long an idle keep-alive connection is kept open.
    pub idle_timeout: Duration,
    /// Mounts `GET /__test/panic`, a handler that panics, so tests can prove a panic becomes a
    /// 500. Only settable from Rust (tests); never from the command line or the environment.
    #[doc(hidden)]
    pub test_panic_route: bool,
    /// The role given to whoever creates a tenant (must be defined by the policy folder).
    pub creator_role: String,
    /// Who may create tenants through the API; when allowed, the `CreateTenant` policy still
    /// decides.
    pub tenant_creation: TenantCreation,
    /// Where authorization decisions are logged (off by default).
    pub decision_log: LogTarget,
    /// Where the policy set in force comes from: the folder (default) or the database's active
    /// published version.
    pub policy_source: PolicySource,
    /// Whether to pick up edits of the policy folder while serving (file watch and SIGHUP).
    pub watch_policies: bool,
    /// How long the policy folder must stay unchanged before an edit is loaded, so a folder
    /// caught half-written is not; zero loads as soon as a change is seen.
    pub policy_settle: Duration,
    /// Whether `GET /healthz` shows the policy set's details and a rejected edit's located
    /// errors (file paths, policy text) to every caller. Off: it says only whether the last
    /// edit was rejected.
    pub health_details: bool,
    /// How long a pending invitation may be accepted after it was made (or last renewed by
    /// inviting again); an older one is not listed, cannot be accepted and is purged.
    pub invitation_lifetime: Duration,
    /// How often expired tokens, unneeded revocations, ended sessions, closed throttling
    /// windows and expired invitations are purged; zero never purges.
    pub purge_interval: Duration,
    /// Where `GET /metrics` is served: on the public listener, on an address of its own, or not.
    pub metrics: MetricsTarget,
    /// Largest flow definition, in bytes of compact JSON (as stored and as read back); a larger
    /// one is refused with 413 naming `definition`. Bounds what one flow costs on every read.
    pub max_definition_bytes: usize,
    /// Bytes of definitions one page of flows holds at most: a list stops before the flow that
    /// would pass it (a page always holds one flow) and gives a `next_cursor` for the rest.
    pub max_page_bytes: usize,
}

/// The default number of argon2 computations at once: the number of cores.
pub fn default_password_checks() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl Settings {
    /// Defaults suitable for a local run; the CLI and tests override what they need.
    pub fn new(database: DatabaseSettings) -> Self {
        Settings {
            bind: "127.0.0.1:8080".into(),
            database,
            policies_dir: PathBuf::from("policies"),
            token_secret: None,
            token_keys: Vec::new(),
            max_token_seconds: DEFAULT_MAX_TOKEN_SECONDS,
            max_live_tokens: DEFAULT_MAX_LIVE_TOKENS,
            token_mints_per_minute: DEFAULT_TOKEN_MINTS_PER_MINUTE,
            cache_ttl: Duration::from_secs(5),
            session_lifetime: Duration::from_secs(7 * 24 * 3600),
            session_idle: Duration::from_secs(DEFAULT_SESSION_IDLE_SECONDS),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECONDS),
            public_url: None,
            login_window: Duration::from_secs(DEFAULT_LOGIN_WINDOW_SECONDS),
            login_failures_per_account_and_address: 5,
            login_failures_per_address: 30,
            login_failures_per_account: 100,
            password_checks: default_password_checks(),
            read_timeout: Duration::from_secs(DEFAULT_READ_TIMEOUT_SECONDS),
            idle_timeout: Duration::from_secs(75),
            test_panic_route: false,
            creator_role: "Admin".into(),
            tenant_creation: TenantCreation::Anyone,
            decision_log: LogTarget::Off,
            policy_source: PolicySource::Folder,
            watch_policies: true,
            policy_settle: Duration::from_millis(DEFAULT_POLICY_SETTLE_MS),
            health_details: false,
            invitation_lifetime: Duration::from_secs(DEFAULT_INVITATION_SECONDS),
            purge_interval: Duration::from_secs(DEFAULT_PURGE_INTERVAL_SECONDS),
            metrics: MetricsTarget::Public,
            max_definition_bytes: DEFAULT_MAX_DEFINITION_BYTES,
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
        }
    }

    /// Largest accepted request body: a flow definition at the limit plus [`BODY_HEADROOM_BYTES`]
    /// for the rest of the body, so the body limit follows the definition limit.
    pub fn max_body_bytes(&self) -> usize {
        self.max_definition_bytes
            .saturating_add(BODY_HEADROOM_BYTES)
    }

    /// Whether cookies must carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }
}

/// Where decisions are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Off,
    Stdout,
    File(PathBuf),
}

impl std::str::FromStr for LogTarget {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(match value {
            "" | "off" => LogTarget::Off,
            "stdout" | "-" => LogTarget::Stdout,
            path => LogTarget::File(PathBuf::from(path)),
        })
    }
}

/// Where `GET /metrics` is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsTarget {
    /// Not served at all.
    Off,
    /// On the public listener, next to the API.
    Public,
    /// On a listener of its own at this address, and not on the public one.
    Listen(String),
}

impl std::str::FromStr for MetricsTarget {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "off" => Ok(MetricsTarget::Off),
            "on" => Ok(MetricsTarget::Public),
            addr if addr
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok()) =>
            {
                Ok(MetricsTarget::Listen(addr.to_owned()))
            }
            other => Err(format!(
                "`{other}` is not `on`, `off` or an address such as 127.0.0.1:9100"
            )),
        }
    }
}
