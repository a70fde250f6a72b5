//! The `zygo` command line. Every flag of `serve` is also a `ZYGO_*` environment variable; the
//! admin commands take the same database options and may run next to a live server.
//!
//! - [`args`]: the commands and their flags;
//! - [`serve`]: `zygo serve` and the settings its flags make;
//! - [`admin`]: users, tenants and memberships;
//! - [`policy`]: validate, test, explain and format the policies, and the OpenAPI document.

mod admin;
mod args;
mod policy;
mod serve;

pub use args::{
    Cli, Command, DbArgs, ExplainVia, MemberCommand, PolicyArgs, PolicyCommand, TenantCommand,
    UserCommand,
};
pub use serve::ServeArgs;

use crate::authz::PolicyBundle;
use crate::store::{self, UserId};

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

pub async fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::User(command) => admin::user(command).await,
        Command::Tenant(command) => admin::tenant(command).await,
        Command::Member(command) => admin::member(command).await,
        Command::Policy(command) => policy::policy(command).await,
        Command::Openapi(policy) => policy::openapi(&policy),
        Command::Migrate { db } => {
            open_db(&db).await?;
            println!("the database schema is up to date");
            Ok(())
        }
    }
}
