//! The database: connection, migrations and every query the service makes.
//!
//! Queries that read or write tenant data take a [`TenantId`] and filter by it, so a handler cannot
//! reach another tenant's rows by forgetting a `WHERE`.

pub mod entities;
pub mod flows;
pub mod members;
pub mod sessions;
pub mod tenants;
pub mod tokens;
pub mod users;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, SqlErr};
use uuid::Uuid;

use crate::config::DatabaseSettings;

/// A tenant's id. Store functions that touch tenant data take one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub Uuid);

/// A user's id (the `sub` of a token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub Uuid);

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why the database could not be opened, in words for an operator.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data folder {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Connect(DbErr),
    #[error("cannot apply the database migrations: {0}")]
    Migrate(DbErr),
}

/// Opens the database named by the settings (creating the SQLite file and its folder when needed)
/// and applies pending migrations.
pub async fn open(settings: &DatabaseSettings) -> Result<DatabaseConnection, OpenError> {
    let is_sqlite = settings.url.starts_with("sqlite:");
    if is_sqlite {
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| OpenError::DataDir {
            path: settings.data_dir.display().to_string(),
            source,
        })?;
    }
    let mut options = ConnectOptions::new(settings.url.clone());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5));
    if is_sqlite {
        // One connection serialises writers inside the process, so read-then-write transactions
        // (the last-Admin rule) cannot interleave; WAL lets other processes (the admin CLI) read
        // while the server writes, and the busy timeout makes them wait instead of failing.
        options.max_connections(1).map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    } else {
        options.max_connections(16);
    }
    let db = Database::connect(options)
        .await
        .map_err(OpenError::Connect)?;
    Migrator::up(&db, None).await.map_err(OpenError::Migrate)?;
    Ok(db)
}

/// Whether the error is a unique-constraint violation (a duplicate e-mail, say).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Whether row locks (`SELECT … FOR UPDATE`) are available; SQLite serialises writers instead.
pub fn supports_row_locks(backend: DbBackend) -> bool {
    backend == DbBackend::Postgres
}
