//! The command line's arguments: every command and its flags (`serve`'s own are in
//! [`super::serve::ServeArgs`]).

use clap::{Parser, Subcommand};
use uuid::Uuid;

use super::options::{DbArgs, PolicyArgs};
use super::serve::ServeArgs;

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
    /// Check and export the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
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
pub enum AuditCommand {
    /// Walk the audit chains (every chain, or one tenant's) and name the first event that was
    /// edited, removed or reordered (exit status 1). Prints each chain's head hash: kept
    /// elsewhere, it later proves that no event was cut off the end.
    Verify {
        /// Only this tenant's chain.
        #[arg(long)]
        tenant: Option<Uuid>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Delete the events older than `--before` (export them first), keeping each chain
    /// verifiable: the chain's last event stays, and a checkpoint (the last deleted event's place
    /// and hash, recorded by an `audit.archived` event on the account chain) is where `verify`
    /// starts it again. Every chain is verified first; a broken one is refused (exit status 1).
    Archive {
        /// An RFC 3339 instant or a date (YYYY-MM-DD, midnight UTC).
        #[arg(long)]
        before: String,
        /// Only this tenant's chain.
        #[arg(long)]
        tenant: Option<Uuid>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write the events from `--since` on as JSON lines in the OCSF schema (Authentication 3002,
    /// Account Change 3001, Entity Management 3004): chain by chain (the account chain, then each
    /// tenant's), each oldest first.
    Export {
        /// An RFC 3339 instant or a date (YYYY-MM-DD, midnight UTC).
        #[arg(long)]
        since: String,
        /// Only this tenant's events.
        #[arg(long)]
        tenant: Option<Uuid>,
        #[command(flatten)]
        db: DbArgs,
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
        /// Explain with the policy folder or with the database's active published version.
        #[arg(long, env = "ZYGO_POLICY_SOURCE", value_enum, default_value = "folder")]
        policy_source: crate::config::PolicySource,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Compare two policy sets with the SMT solver `cvc5`: per request environment, does NEW
    /// grant more or less than OLD, with a counterexample for new access. Each set is a folder or
    /// a published version (a number: `3`; write `./3` for a folder of that name); with one
    /// argument, OLD is the active published version. Exits 0 when NEW grants nothing new, 1 when
    /// it does, 2 when the comparison failed.
    Diff {
        /// `[OLD] NEW`: the set in force and the edited one.
        #[arg(num_args = 1..=2, required = true, value_names = ["OLD", "NEW"])]
        sets: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
        /// Where published versions are read from (only when one is named or implied).
        #[command(flatten)]
        db: DbArgs,
    },
    /// Check each policy with the SMT solver `cvc5`: can it error, can it apply at all, is it
    /// shadowed or redundant. Exits 0 when clean, 1 with findings, 2 when the analysis failed.
    Analyze {
        #[command(flatten)]
        policy: PolicyArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Publish the policy folder as the next version in the database and make it the active one:
    /// validates, runs the fixtures, refuses new access (unless `--allow-new-access`), stores
    /// the set and activates it in one transaction. Instances serving `--policy-source database`
    /// follow within a second.
    Publish {
        /// What the change is, for the history.
        #[arg(long)]
        message: String,
        /// Publish even when the change lets someone do something the active version does not.
        #[arg(long)]
        allow_new_access: bool,
        /// Who publishes (default: the OS user, from `USER`/`LOGNAME`).
        #[arg(long, env = "ZYGO_OPERATOR")]
        by: Option<String>,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// List the published versions (newest first, the active one marked) and the activations.
    Versions {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Show one published version: who, when, message, diff summary, hash and files.
    Show {
        number: i64,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write a published version's files into a folder (created if needed), fixtures in `tests/`.
    Pull {
        number: i64,
        dir: std::path::PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Make an earlier published version the active one again (recorded as a rollback).
    Rollback {
        number: i64,
        /// Who rolls back (default: the OS user, from `USER`/`LOGNAME`).
        #[arg(long, env = "ZYGO_OPERATOR")]
        by: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Format the `.cedar` files canonically (with `--check`, only report which are not).
    Fmt {
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

/// How `policy diff` and `policy analyze` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// For a pipeline.
    Json,
}

/// `policy explain --via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExplainVia {
    Session,
    Token,
}
