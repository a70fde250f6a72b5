//! The `zygo` command line. Every flag of `serve` is also a `ZYGO_*` environment variable; the
//! admin commands take the same database options and may run next to a live server.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::auth::password;
use crate::authz::{
    Action, AuthContext, AuthMethod, FlowAsk, FlowJudgement, LogTarget, PolicyBundle, Query,
    Resource, Subject, fixtures, outcome,
};
use crate::config::{
    DEFAULT_DB_TIMEOUT_SECONDS, DEFAULT_MAX_LIVE_TOKENS, DEFAULT_MAX_TOKEN_SECONDS,
    DEFAULT_REQUEST_TIMEOUT_SECONDS, DEFAULT_TOKEN_MINTS_PER_MINUTE, DatabaseSettings, Secret,
    Settings,
};
use crate::invalidation::{self, Key};
use crate::startup::Application;
use crate::store::{self, TenantId, UserId, members::ChangeError};

#[derive(Debug, Parser)]
#[command(
    name = "zygo",
    version,
    about = "Multi-tenant API authorized by Cedar policies"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage memberships.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Work with the policy folder.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print the OpenAPI document (the committed `openapi/openapi.json`): the roles come from the
    /// policy folder, the token lifetime bound is the default.
    Openapi(PolicyArgs),
    /// Apply pending database migrations and exit (run it ahead of a rollout; `serve` also
    /// applies them at start).
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// Database URL: `sqlite://…` or `postgres://…` (default: a SQLite file in the data folder).
    #[arg(long, env = "ZYGO_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Folder for the default SQLite database and the generated token secret.
    #[arg(long, env = "ZYGO_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Longest wait for the database (connection, lock, statement) before giving up, in seconds;
    /// the server answers 503 after it.
    #[arg(long, env = "ZYGO_DB_TIMEOUT_SECONDS", default_value_t = DEFAULT_DB_TIMEOUT_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub db_timeout_seconds: u64,
}

impl DbArgs {
    fn settings(&self) -> DatabaseSettings {
        let mut settings = DatabaseSettings::new(self.database_url.clone(), self.data_dir.clone());
        settings.timeout = Duration::from_secs(self.db_timeout_seconds);
        settings
    }
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The policy folder.
    #[arg(long, env = "ZYGO_POLICIES", default_value = "policies")]
    pub policies: PathBuf,
}

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
    /// Tokens one user may mint per minute on this instance (0: no limit).
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

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input (one line) unless given.
    Add {
        email: String,
        #[arg(long)]
        password: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Disable a user: logins are refused, and every session and token issued so far ends for
    /// good (enabling the user again does not bring them back).
    Disable {
        email: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Enable a disabled user again.
    Enable {
        email: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant whose first member is the given user, as the creator role (Admin).
    Add {
        name: String,
        #[arg(long)]
        admin: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add a user to a tenant or change their role, directly (no invitation: through the API,
    /// adding a user who is not a member invites them instead). Drops a pending invitation.
    Set {
        tenant_id: Uuid,
        email: String,
        role: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Remove a user from a tenant.
    Remove {
        tenant_id: Uuid,
        email: String,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate the policy folder against its schema (strict); problems as file:line:col.
    Validate {
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Run the decision fixtures in the policy folder's `tests/`.
    Test {
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Explain a decision against the live database: the decision, the determining policies, the
    /// role used, any evaluation errors, and what the service would answer.
    Explain {
        /// The user's e-mail.
        #[arg(long)]
        user: String,
        /// The tenant named by the request.
        #[arg(long)]
        tenant: Uuid,
        /// An action of the schema, for example `DeleteFlow`.
        #[arg(long)]
        action: String,
        /// `Tenant:ID`, `Flow:ID` or `Member:USER_ID`.
        #[arg(long)]
        resource: String,
        /// How the caller authenticates (`context.auth.method`).
        #[arg(long, value_enum, default_value = "session")]
        via: ExplainVia,
        /// Ask as a read-only token (`context.auth.read_only`; only with `--via token`).
        #[arg(long, requires = "via")]
        read_only: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Format the `.cedar` files canonically (with `--check`, only report which are not).
    Fmt {
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

/// A user mistake or an operational failure, printed as one sentence.
pub type CliResult = Result<(), String>;

fn load_policies(args: &PolicyArgs) -> Result<PolicyBundle, String> {
    PolicyBundle::load(&args.policies).map_err(|err| {
        format!(
            "the policies in {} do not validate:\n{err}",
            args.policies.display()
        )
    })
}

async fn open_db(args: &DbArgs) -> Result<sea_orm::DatabaseConnection, String> {
    store::open(&args.settings())
        .await
        .map_err(|e| e.to_string())
}

async fn user_by_email(db: &sea_orm::DatabaseConnection, email: &str) -> Result<UserId, String> {
    store::users::find_by_email(db, email)
        .await
        .map_err(|e| e.to_string())?
        .map(|u| UserId(u.id))
        .ok_or_else(|| format!("no user with e-mail {email}"))
}

fn change_error(err: ChangeError) -> String {
    match err {
        ChangeError::NoSuchUser => "no such user".into(),
        ChangeError::NotAMember => "that user is not a member of this tenant".into(),
        ChangeError::LastManager => {
            "refused: the tenant would be left without a member who can manage members".into()
        }
        ChangeError::Db(err) => err.to_string(),
    }
}

fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err("the password is empty: give it on standard input or with --password".into());
    }
    Ok(password)
}

pub async fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::User(command) => user(command).await,
        Command::Tenant(TenantCommand::Add {
            name,
            admin,
            db,
            policy,
        }) => {
            let bundle = load_policies(&policy)?;
            let role = Settings::new(db.settings()).creator_role;
            if !bundle.roles().contains(&role) {
                return Err(format!(
                    "the creator role `{role}` is not defined by the policies"
                ));
            }
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 {
                return Err("the tenant name must be 1 to 200 characters".into());
            }
            let conn = open_db(&db).await?;
            let user = user_by_email(&conn, &admin).await?;
            let id = TenantId(Uuid::new_v4());
            store::tenants::create(&conn, id, name, user, &role)
                .await
                .map_err(|e| e.to_string())?;
            println!("{id}");
            Ok(())
        }
        Command::Member(command) => member(command).await,
        Command::Policy(PolicyCommand::Validate { policy }) => {
            let bundle = load_policies(&policy)?;
            for warning in bundle.warnings() {
                eprintln!("{warning}");
            }
            println!(
                "{}: {} policies, roles {}, version {}",
                policy.policies.display(),
                bundle.policy_ids().len(),
                bundle
                    .roles()
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                bundle.version()
            );
            Ok(())
        }
        Command::Policy(PolicyCommand::Test { policy }) => {
            let bundle = load_policies(&policy)?;
            let outcomes = fixtures::run(&bundle, &policy.policies.join("tests"))?;
            let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed()).collect();
            for outcome in &outcomes {
                let case = &outcome.case;
                println!(
                    "{:4}  {:<8} {:<18} {:<7} {:<6} expect {:<6} {}",
                    if outcome.passed() { "ok" } else { "FAIL" },
                    case.role.as_deref().unwrap_or("(none)"),
                    case.action,
                    case.resource,
                    format!("{:?}", case.place).to_lowercase(),
                    format!("{:?}", case.expect),
                    case.who.as_deref().unwrap_or("")
                );
                if !outcome.passed() {
                    println!(
                        "      got {:?}; determining policies: [{}]; errors: [{}]",
                        outcome.actual,
                        outcome.reasons.join(", "),
                        outcome.errors.join("; ")
                    );
                }
            }
            println!(
                "{} passed, {} failed",
                outcomes.len() - failed.len(),
                failed.len()
            );
            if failed.is_empty() {
                Ok(())
            } else {
                Err(format!("{} decision fixtures failed", failed.len()))
            }
        }
        Command::Policy(PolicyCommand::Explain {
            user,
            tenant,
            action,
            resource,
            via,
            read_only,
            db,
            policy,
        }) => {
            if read_only && via == ExplainVia::Session {
                return Err("--read-only applies to tokens: add --via token".into());
            }
            let auth = AuthContext {
                method: match via {
                    ExplainVia::Session => AuthMethod::Session,
                    ExplainVia::Token => AuthMethod::Token,
                },
                read_only,
            };
            explain(
                &user,
                TenantId(tenant),
                &action,
                &resource,
                auth,
                &db,
                &policy,
            )
            .await
        }
        Command::Policy(PolicyCommand::Fmt { check, policy }) => fmt(check, &policy),
        Command::Openapi(policy) => {
            let bundle = load_policies(&policy)?;
            print!(
                "{}",
                crate::api::spec_json(bundle.roles(), DEFAULT_MAX_TOKEN_SECONDS)
            );
            Ok(())
        }
        Command::Migrate { db } => {
            open_db(&db).await?;
            println!("the database schema is up to date");
            Ok(())
        }
    }
}

async fn user(command: UserCommand) -> CliResult {
    match command {
        UserCommand::Add {
            email,
            password,
            db,
        } => {
            let email = store::users::normalize_email(&email);
            if !email.contains('@') || email.len() > 320 {
                return Err(format!("`{email}` is not an e-mail address"));
            }
            let password = match password {
                Some(p) if !p.is_empty() => p,
                Some(_) => return Err("the password is empty".into()),
                None => read_password()?,
            };
            if password.chars().count() < password::MIN_PASSWORD_CHARS {
                return Err(format!(
                    "the password must be at least {} characters",
                    password::MIN_PASSWORD_CHARS
                ));
            }
            let hash = password::hash(&password)?;
            let conn = open_db(&db).await?;
            let user = store::users::create(&conn, &email, hash)
                .await
                .map_err(|e| {
                    if store::is_unique_violation(&e) {
                        format!("a user with e-mail {email} already exists")
                    } else {
                        e.to_string()
                    }
                })?;
            println!("{}", user.id);
            Ok(())
        }
        UserCommand::Disable { email, db } => set_disabled(&email, &db, true).await,
        UserCommand::Enable { email, db } => set_disabled(&email, &db, false).await,
    }
}

async fn set_disabled(email: &str, db: &DbArgs, disable: bool) -> CliResult {
    let conn = open_db(db).await?;
    let user = user_by_email(&conn, email).await?;
    // Disabling is a kill switch: every session and token issued so far stays dead even if the
    // account is enabled again later (enabling never moves `credentials_valid_after` back).
    store::users::set_disabled_ending_credentials(&conn, user, disable)
        .await
        .map_err(|e| e.to_string())?;
    signal(&conn, Key::User(user)).await;
    Ok(())
}

/// Tells running servers (PostgreSQL) to drop what they cached about `key`. The change has
/// committed either way; a lost signal only means the servers' cache TTL bounds it instead.
async fn signal(conn: &sea_orm::DatabaseConnection, key: Key) {
    if let Err(err) = invalidation::publish(conn, &[key]).await {
        eprintln!(
            "warning: done, but running servers were not signalled ({err}); they see the change within their cache TTL"
        );
    }
}

async fn member(command: MemberCommand) -> CliResult {
    match command {
        MemberCommand::Set {
            tenant_id,
            email,
            role,
            db,
            policy,
        } => {
            let bundle = load_policies(&policy)?;
            if !bundle.roles().contains(&role) {
                let defined: Vec<_> = bundle.roles().iter().cloned().collect();
                return Err(format!(
                    "`{role}` is not a role defined by the policies (defined: {})",
                    defined.join(", ")
                ));
            }
            let conn = open_db(&db).await?;
            let tenant = TenantId(tenant_id);
            if store::tenants::find(&conn, tenant)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                return Err(format!("no tenant with id {tenant_id}"));
            }
            let user = user_by_email(&conn, &email).await?;
            store::members::set_role(&conn, tenant, user, &role, |roles| {
                bundle.keeps_manager(tenant, roles)
            })
            .await
            .map_err(change_error)?;
            signal(&conn, Key::Role(user, tenant)).await;
            Ok(())
        }
        MemberCommand::Remove {
            tenant_id,
            email,
            db,
            policy,
        } => {
            let bundle = load_policies(&policy)?;
            let conn = open_db(&db).await?;
            let tenant = TenantId(tenant_id);
            let user = user_by_email(&conn, &email).await?;
            store::members::remove(&conn, tenant, user, |roles| {
                bundle.keeps_manager(tenant, roles)
            })
            .await
            .map_err(change_error)?;
            signal(&conn, Key::Role(user, tenant)).await;
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> CliResult {
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

/// `policy explain --via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExplainVia {
    Session,
    Token,
}

async fn explain(
    email: &str,
    tenant: TenantId,
    action: &str,
    resource: &str,
    auth: AuthContext,
    db: &DbArgs,
    policy: &PolicyArgs,
) -> CliResult {
    let bundle = load_policies(policy)?;
    let action = Action::parse(action).ok_or_else(|| {
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        format!(
            "`{action}` is not an action (actions: {})",
            names.join(", ")
        )
    })?;
    let (kind, id) = resource
        .split_once(':')
        .ok_or("--resource must be TYPE:ID, for example Flow:9f0c…")?;
    let id = Uuid::parse_str(id).map_err(|_| format!("`{id}` is not a UUID"))?;
    let conn = open_db(db).await?;
    let user = user_by_email(&conn, email).await?;
    let role = store::members::role_of(&conn, tenant, user)
        .await
        .map_err(|e| e.to_string())?;
    let mut flow = None;
    let (resource, resource_tenant, missing_flow) = match kind {
        "Tenant" => (Resource::Tenant, TenantId(id), false),
        "Flow" => {
            flow = store::flows::find(&conn, tenant, id)
                .await
                .map_err(|e| e.to_string())?;
            (Resource::Flow(id), tenant, flow.is_none())
        }
        "Member" => (Resource::Member(UserId(id)), tenant, false),
        other => {
            return Err(format!(
                "`{other}` is not a resource type (Tenant, Flow, Member)"
            ));
        }
    };
    // The policies' own decision, shown for a flow that exists or not (a missing flow has no
    // owner, labels or shares); what the service answers follows `authz::judge_flows` below.
    let decision = bundle.decide(&Query {
        user,
        role: role.as_deref(),
        action,
        tenant,
        resource,
        resource_tenant,
        auth,
        flow: flow.as_ref().map(|f| &f.attrs),
    });
    let none = || "(none)".to_owned();
    if let Some(flow) = &flow {
        let users = |users: &[UserId]| -> String {
            let ids: Vec<String> = users.iter().map(|u| u.to_string()).collect();
            format!("[{}]", ids.join(", "))
        };
        println!(
            "flow: owner {}, labels [{}], editors {}, readers {}",
            flow.attrs
                .owner
                .map_or_else(|| "(none)".to_owned(), |u| u.to_string()),
            flow.attrs.labels.join(", "),
            users(&flow.attrs.editors),
            users(&flow.attrs.readers),
        );
    }
    println!(
        "decision: {}",
        if decision.allowed { "Allow" } else { "Deny" }
    );
    println!(
        "role: {}",
        role.clone().unwrap_or_else(|| "(not a member)".into())
    );
    println!(
        "determining policies: {}",
        Some(decision.reasons.join(", "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(none)
    );
    println!(
        "errors: {}",
        Some(decision.errors.join("; "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(none)
    );
    let status = |err: crate::error::ApiError| format!("{} {}", err.status().as_u16(), err.code());
    let answer = match resource {
        // The same rule as the flow operations: not a member, no such flow, or a flow the user
        // may not read are one 404.
        Resource::Flow(id) => match crate::authz::flow_gate(role.as_deref(), false) {
            Err(err) => status(err),
            Ok(()) => {
                let subject = Subject {
                    user,
                    role: role.as_deref(),
                    tenant,
                    auth,
                };
                let asks = [FlowAsk {
                    action,
                    id,
                    flow: flow.as_ref().map(|f| &f.attrs),
                }];
                let judgement = crate::authz::judge_flows(&bundle, &subject, &subject, &asks)
                    .pop()
                    .unwrap_or(FlowJudgement::Hidden);
                match (&judgement, missing_flow) {
                    (FlowJudgement::Hidden, true) => {
                        "404 not_found (there is no such flow in this tenant)".to_owned()
                    }
                    (FlowJudgement::Hidden, false) => {
                        "404 not_found (a flow you may not read is answered like a missing one)"
                            .to_owned()
                    }
                    _ => match crate::authz::flow_outcome(&judgement) {
                        Ok(()) => "allowed".to_owned(),
                        Err(err) => status(err),
                    },
                }
            }
        },
        _ => match outcome(&decision, role.as_deref(), action, resource, false) {
            Ok(()) => "allowed".to_owned(),
            Err(err) => status(err),
        },
    };
    println!("the service would answer (token request): {answer}");
    println!("policy version: {}", bundle.version());
    Ok(())
}

fn fmt(check: bool, policy: &PolicyArgs) -> CliResult {
    let config = cedar_policy_formatter::Config {
        line_width: 80,
        indent_width: 2,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&policy.policies)
        .map_err(|e| format!("{}: {e}", policy.policies.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "cedar"))
        .collect();
    files.sort();
    let mut unformatted = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let pretty = cedar_policy_formatter::policies_str_to_pretty(&text, &config)
            .map_err(|e| format!("{}: cannot format: {e}", file.display()))?;
        if pretty != text {
            if check {
                println!("{}: not formatted", file.display());
            } else {
                std::fs::write(&file, pretty).map_err(|e| format!("{}: {e}", file.display()))?;
                println!("{}: formatted", file.display());
            }
            unformatted.push(file);
        }
    }
    if check && !unformatted.is_empty() {
        return Err(format!(
            "{} policy files are not formatted; run `zygo policy fmt`",
            unformatted.len()
        ));
    }
    Ok(())
}
