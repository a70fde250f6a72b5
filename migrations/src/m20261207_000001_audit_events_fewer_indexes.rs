//! The audit trail writes four B-trees per event instead of five: the actor index goes.
//!
//! Every audited write inserts one event, and on SQLite each B-tree the event touches is at least
//! one more page written to the WAL at commit (the table, its `id` key, `(chain, seq)`, the
//! tenant index, and this one). The actor index served no query the service makes: a user's own
//! events (`GET /api/me/audit`) are the account chain's events where the user is the actor *or*
//! the target, which one index on the actor cannot answer. A tenant's events filtered by actor
//! are read through the tenant index, newest first, as its unfiltered pages are: a rare actor in a
//! long trail walks further for a page than it did, a cost paid by the reader of the trail rather
//! than by every write (see BENCHMARKS.md, the audit trail's cost).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_audit_events_actor")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_audit_events_actor \
                 ON audit_events (actor_id, at, id)",
            )
            .await?;
        Ok(())
    }
}
