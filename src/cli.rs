//! The `zygo` command line. Every flag of `serve` is also a `ZYGO_*` environment variable; the
//! admin commands take the same database options and may run next to a live server.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::auth::password;
use crate::authz::{PolicyBundle, fixtures};
use crate::config::{DEFAULT_MAX_TOKEN_SECONDS, DatabaseSettings, Secret, Settings};
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
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// Database URL: `sqlite://…` or `postgres://…` (default: a SQLite file in the data folder).
    #[arg(long, env = "ZYGO_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Folder for the default SQLite database and the generated token secret.
    #[arg(long, env = "ZYGO_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

impl DbArgs {
    fn settings(&self) -> DatabaseSettings {
        DatabaseSettings::new(self.database_url.clone(), self.data_dir.clone())
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
    /// How long a cached role or user status may be used before it is read again, in seconds.
    #[arg(long, env = "ZYGO_CACHE_TTL_SECONDS", default_value_t = 5)]
    pub cache_ttl_seconds: u64,
    /// How long a browser session lives after login, in seconds.
    #[arg(long, env = "ZYGO_SESSION_SECONDS", default_value_t = 7 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub session_seconds: u64,
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
    /// Disable a user: logins, sessions and tokens are refused from then on.
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
    /// Add a user to a tenant or change their role.
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
                    "{:4}  {:<8} {:<14} {:<7} {:<6} expect {:?}",
                    if outcome.passed() { "ok" } else { "FAIL" },
                    case.role.as_deref().unwrap_or("(none)"),
                    case.action,
                    case.resource,
                    format!("{:?}", case.place).to_lowercase(),
                    case.expect
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
        Command::Openapi(policy) => {
            let bundle = load_policies(&policy)?;
            print!(
                "{}",
                crate::api::spec_json(bundle.roles(), DEFAULT_MAX_TOKEN_SECONDS)
            );
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
    store::users::set_disabled(&conn, user, disable)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
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
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> CliResult {
    let mut settings = Settings::new(args.db.settings());
    settings.bind = args.bind;
    settings.policies_dir = args.policy.policies;
    settings.public_url = args.public_url;
    settings.max_token_seconds = args.max_token_seconds;
    settings.cache_ttl = Duration::from_secs(args.cache_ttl_seconds);
    settings.session_lifetime = Duration::from_secs(args.session_seconds);
    settings.token_secret =
        std::env::var_os("ZYGO_TOKEN_SECRET").map(|s| Secret::new(s.into_encoded_bytes()));
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
    println!("listening on http://{addr} (Swagger UI at http://{addr}/docs)");
    app.run_until_stopped()
        .await
        .map_err(|e| format!("the server stopped: {e}"))
}
