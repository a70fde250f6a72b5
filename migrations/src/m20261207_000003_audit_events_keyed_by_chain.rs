//! The audit trail is keyed by each event's place in its chain, `(chain, seq)`, and keeps no
//! other index: an event is two B-tree entries (the row and its key) where it was four (the row,
//! its `id` key, `(chain, seq)`, and `(tenant_id, at, id)`).
//!
//! Every audited write inserts one event. The `id` key was the costliest of the four: ids are
//! random, so each event dirtied a page at a random place in that index, written to SQLite's WAL
//! at commit (BENCHMARKS.md, the audit trail's cost, measures it). Nothing looks an event up by
//! its id. Every reader follows a chain: a tenant's trail is its chain (`tenant:<id>`), newest
//! first along the key; a user's own events are the account chain's; `verify`, `archive` and
//! `export` walk chains in `seq` order. The id stays a column (it is hashed, shown and exported):
//! a random UUID, unique without an index to say so.
//!
//! PostgreSQL swaps its primary key for the `(chain, seq)` index it already has. SQLite cannot
//! change a table's key, so the table is rebuilt with its rows copied as they are, byte for byte
//! (an edited row stays edited: `zygo audit verify` still names it).

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
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

/// The columns, in table order.
const COLUMNS: &str = "id, chain, seq, at, actor_id, credential, tenant_id, action, target, \
     before, after, request_id, client, policy_version, prev_hash, hash";

/// The table as created before, with the given key: `id` alone, or `(chain, seq)`.
fn table(name: &str, keyed_by_chain: bool) -> TableCreateStatement {
    let mut id = uuid(AuditEvents::Id);
    if !keyed_by_chain {
        id.primary_key();
    }
    let mut table = Table::create();
    table
        .table(Alias::new(name))
        .col(id)
        .col(string_len(AuditEvents::Chain, 64))
        .col(big_integer(AuditEvents::Seq))
        .col(timestamp_with_time_zone(AuditEvents::At))
        .col(uuid_null(AuditEvents::ActorId))
        .col(string_len_null(AuditEvents::Credential, 128))
        .col(uuid_null(AuditEvents::TenantId))
        .col(string_len(AuditEvents::Action, 64))
        .col(string_len_null(AuditEvents::Target, 128))
        .col(text_null(AuditEvents::Before))
        .col(text_null(AuditEvents::After))
        .col(string_len_null(AuditEvents::RequestId, 64))
        .col(string_len_null(AuditEvents::Client, 64))
        .col(string_len_null(AuditEvents::PolicyVersion, 128))
        .col(string_len(AuditEvents::PrevHash, 64))
        .col(string_len(AuditEvents::Hash, 64));
    if keyed_by_chain {
        table.primary_key(
            Index::create()
                .name("pk_audit_events")
                .col(AuditEvents::Chain)
                .col(AuditEvents::Seq),
        );
    }
    table.to_owned()
}

/// SQLite: the table rebuilt with the other key, every row copied as stored.
async fn rebuild(manager: &SchemaManager<'_>, keyed_by_chain: bool) -> Result<(), DbErr> {
    let db = manager.get_connection();
    manager
        .create_table(table("audit_events_rebuilt", keyed_by_chain))
        .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO audit_events_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM audit_events"
    ))
    .await?;
    db.execute_unprepared("DROP TABLE audit_events").await?;
    db.execute_unprepared("ALTER TABLE audit_events_rebuilt RENAME TO audit_events")
        .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite as well: a rebuild cut short leaves the old table whole.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            for statement in [
                "ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey",
                "ALTER TABLE audit_events ADD CONSTRAINT audit_events_pkey \
                 PRIMARY KEY USING INDEX idx_audit_events_chain_seq",
                "DROP INDEX IF EXISTS idx_audit_events_tenant",
            ] {
                db.execute_unprepared(statement).await?;
            }
            return Ok(());
        }
        // The rebuilt table's key replaces the `(chain, seq)` index; the tenant index goes with
        // the old table.
        rebuild(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            for statement in [
                "ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey",
                "ALTER TABLE audit_events ADD CONSTRAINT audit_events_pkey PRIMARY KEY (id)",
            ] {
                db.execute_unprepared(statement).await?;
            }
        } else {
            rebuild(manager, false).await?;
        }
        for statement in [
            "CREATE UNIQUE INDEX IF NOT EXISTS idx_audit_events_chain_seq \
             ON audit_events (chain, seq)",
            "CREATE INDEX IF NOT EXISTS idx_audit_events_tenant ON audit_events (tenant_id, at, id)",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
