//! The audit trail: one row per administrative change (and per login), written in the same
//! transaction as the change, chained per tenant (and one chain for account- and server-level
//! events) so that an edited, removed or reordered row is found by `zygo audit verify`.
//!
//! Rows are only ever inserted. There is no foreign key on the tenant or the users: the trail
//! outlives what it speaks of (a deleted user's events stay, and still verify).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    Chain,
    Seq,
    At,
    ActorId,
    Credential,
    TenantId,
    Action,
    Target,
    Before,
    After,
    RequestId,
    Client,
    PolicyVersion,
    PrevHash,
    Hash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .if_not_exists()
                    .col(uuid(AuditEvents::Id).primary_key())
                    // `tenant:<uuid>`, or `account` for account- and server-level events.
                    .col(string_len(AuditEvents::Chain, 64))
                    // 1, 2, 3… within the chain: a gap is a removed event.
                    .col(big_integer(AuditEvents::Seq))
                    // The database's clock when the event was appended.
                    .col(timestamp_with_time_zone(AuditEvents::At))
                    .col(uuid_null(AuditEvents::ActorId))
                    // `token:<jti>`, `session:<hash prefix>` or `cli`: never a secret.
                    .col(string_len_null(AuditEvents::Credential, 128))
                    .col(uuid_null(AuditEvents::TenantId))
                    .col(string_len(AuditEvents::Action, 64))
                    .col(string_len_null(AuditEvents::Target, 128))
                    // Small JSON objects (what changed), as the exact text that was hashed.
                    .col(text_null(AuditEvents::Before))
                    .col(text_null(AuditEvents::After))
                    .col(string_len_null(AuditEvents::RequestId, 64))
                    .col(string_len_null(AuditEvents::Client, 64))
                    .col(string_len_null(AuditEvents::PolicyVersion, 128))
                    // SHA-256, hex: the previous event's hash (64 zeros for the first), and this
                    // event's over its canonical encoding and the previous hash.
                    .col(string_len(AuditEvents::PrevHash, 64))
                    .col(string_len(AuditEvents::Hash, 64))
                    .to_owned(),
            )
            .await?;
        // One event per place in a chain: two writers can never fork it, whatever the locking.
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_chain_seq")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::Chain)
                    .col(AuditEvents::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // `GET /api/tenants/{tenant_id}/audit`, newest first, a page at a time.
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_tenant")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::TenantId)
                    .col(AuditEvents::At)
                    .col(AuditEvents::Id)
                    .to_owned(),
            )
            .await?;
        // `GET /api/me/audit`: a user's own events.
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_actor")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::ActorId)
                    .col(AuditEvents::At)
                    .col(AuditEvents::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}
