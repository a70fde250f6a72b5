//! Where an archived chain starts again: one checkpoint per chain whose oldest events were
//! archived (`zygo audit archive`).
//!
//! A chain's events are deleted only as a prefix (`seq` 1 to N, never its last event); the
//! checkpoint keeps N and the hash of event N, which the first kept event names as its
//! `prev_hash`, so the rest of the chain still verifies. Each archive also writes an
//! `audit.archived` event on the account chain naming the same N and hash: a checkpoint that no
//! such event vouches for is reported by `zygo audit verify`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditCheckpoints {
    Table,
    Chain,
    Seq,
    Hash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditCheckpoints::Table)
                    .if_not_exists()
                    .col(string_len(AuditCheckpoints::Chain, 64).primary_key())
                    // The last archived event's place in the chain…
                    .col(big_integer(AuditCheckpoints::Seq))
                    // …and its hash: the first kept event's `prev_hash`.
                    .col(string_len(AuditCheckpoints::Hash, 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditCheckpoints::Table).to_owned())
            .await
    }
}
