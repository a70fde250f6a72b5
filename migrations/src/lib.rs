//! Database migrations for Zygo, run by `zygo serve` at start (`Migrator::up`).
//!
//! Migrations are frozen: each one declares its own identifiers (`DeriveIden` enums) instead of
//! reusing the service's entity structs, so later changes to the code never rewrite history.

pub use sea_orm_migration::prelude::*;

mod m20261129_000001_initial;
mod m20261130_000002_token_revocation;
mod m20261202_000003_token_names_and_shared_limits;
mod m20261202_000004_flow_attributes;
mod m20261206_000001_credentials_valid_after;
mod m20261206_000002_invitations;
mod m20261206_000003_shares_follow_membership;
mod m20261206_000004_flow_definitions_as_text;
mod m20261206_000010_audit_events;
mod m20261206_000020_policy_versions;
mod m20261207_000001_audit_events_fewer_indexes;
mod m20261207_000002_audit_checkpoints;
mod m20261207_000003_audit_events_keyed_by_chain;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_initial::Migration),
            Box::new(m20261130_000002_token_revocation::Migration),
            Box::new(m20261202_000003_token_names_and_shared_limits::Migration),
            Box::new(m20261202_000004_flow_attributes::Migration),
            Box::new(m20261206_000001_credentials_valid_after::Migration),
            Box::new(m20261206_000002_invitations::Migration),
            Box::new(m20261206_000003_shares_follow_membership::Migration),
            Box::new(m20261206_000004_flow_definitions_as_text::Migration),
            Box::new(m20261206_000010_audit_events::Migration),
            Box::new(m20261206_000020_policy_versions::Migration),
            Box::new(m20261207_000001_audit_events_fewer_indexes::Migration),
            Box::new(m20261207_000002_audit_checkpoints::Migration),
            Box::new(m20261207_000003_audit_events_keyed_by_chain::Migration),
        ]
    }
}
