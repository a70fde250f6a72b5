//! The `zygo` command line. Every flag of `serve` is also a `ZYGO_*` environment variable; the
//! admin commands take the same database options and may run next to a live server.
//!
//! - [`args`]: the commands and their flags;
//! - [`serve`]: `zygo serve` and the settings its flags make;
//! - [`admin`]: users, tenants and memberships;
//! - [`policy`]: validate, test, explain and format the policies, and the OpenAPI document;
//! - [`audit`]: verify and export the audit trail.

mod admin;
mod args;
mod audit;
mod common;
mod options;
mod policy;
mod serve;

pub use args::{
    AuditCommand, Cli, Command, ExplainVia, MemberCommand, PolicyCommand, TenantCommand,
    UserCommand,
};
pub use common::CliResult;
pub use options::{DbArgs, PolicyArgs};
pub use serve::ServeArgs;

pub async fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::User(command) => admin::user(command).await,
        Command::Tenant(command) => admin::tenant(command).await,
        Command::Member(command) => admin::member(command).await,
        Command::Policy(command) => policy::policy(command).await,
        Command::Audit(command) => audit::audit(command).await,
        Command::Openapi(policy) => policy::openapi(&policy),
        Command::Migrate { db } => {
            common::open_db(&db).await?;
            println!("the database schema is up to date");
            Ok(())
        }
    }
}
