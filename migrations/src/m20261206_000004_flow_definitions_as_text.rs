//! Flow definitions are stored as the JSON text the service wrote, on PostgreSQL too.
//!
//! The service checks a definition's size on the compact JSON it writes, and sends the stored
//! text back as it is, without parsing it on every read. `jsonb` does not keep that text: it
//! prints numbers in full (`1e300` comes back as 301 digits, a definition of such numbers grows
//! fifty-fold between the write and the read) and re-parses on every `::text`. A `text` column
//! holds exactly the bytes that were checked. (SQLite already stores the definition as text.)

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE flows ALTER COLUMN definition TYPE text USING definition::text",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE flows ALTER COLUMN definition TYPE jsonb USING definition::jsonb",
                )
                .await?;
        }
        Ok(())
    }
}
