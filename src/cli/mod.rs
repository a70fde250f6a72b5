//! The `zygo` command line. Every flag of `serve` is also a `ZYGO_*` environment variable; the
//! admin commands take the same database options and may run next to a live server.
//!
//! - [`args`]: the commands and their flags;
//! - [`serve`]: `zygo serve` and the settings its flags make;
//! - [`admin`]: users, tenants and memberships;
//! - [`analysis`]: `policy diff` and `policy analyze`, with their own exit codes;
//! - [`policy`]: validate, test, explain and format the policies, and the OpenAPI document;
//! - [`releases`]: publish, list, show, pull and roll back policy versions in the database;
//! - [`audit`]: verify and export the audit trail.

mod admin;
mod analysis;
mod args;
mod audit;
mod common;
mod options;
mod policy;
mod releases;
mod serve;

pub use args::{
    AuditCommand, Cli, Command, ExplainVia, MemberCommand, OutputFormat, PolicyCommand,
    TenantCommand, UserCommand,
};
pub use common::CliResult;
pub use options::{DbArgs, PolicyArgs};
pub use serve::ServeArgs;

/// Runs a command and gives the process's exit code, printing a failure on stderr: 0 success, 1
/// failure; `policy diff` and `policy analyze` answer 0 (no new access / clean), 1 (new access /
/// findings) or 2 (failed: bad input, solver missing).
pub async fn exit_code(cli: Cli) -> u8 {
    let checked = match cli.command {
        Command::Policy(PolicyCommand::Diff { sets, format, db }) => {
            analysis::diff(&sets, format, &db).await
        }
        Command::Policy(PolicyCommand::Analyze { policy, format }) => {
            analysis::analyze(&policy, format).await
        }
        command => {
            return match run(Cli { command }).await {
                Ok(()) => 0,
                Err(message) => {
                    eprintln!("{message}");
                    1
                }
            };
        }
    };
    match checked {
        Ok(false) => 0,
        Ok(true) => 1,
        Err(message) => {
            eprintln!("{message}");
            2
        }
    }
}

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
