//! The database: connection, migrations and every query the service makes.
//!
//! Queries that read or write tenant data take a [`TenantId`] and filter by it, so a handler cannot
//! reach another tenant's rows by forgetting a `WHERE`.

pub mod audit;
pub mod entities;
pub mod flows;
pub mod invitations;
pub mod login_failures;
pub mod members;
pub mod page;
pub mod policy_versions;
pub mod purge;
pub mod reads;
pub mod sessions;
pub mod tenants;
pub mod tokens;
pub mod users;

use std::path::PathBuf;

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
///
/// Every wait is bounded by `settings.timeout`: connecting, taking a connection from the pool, a
/// lock held by another process (SQLite's busy timeout) and a statement (PostgreSQL's
/// `statement_timeout`). A dead or unreachable database therefore turns into a quick error (503),
/// never a hung request, and the pool reconnects by itself when the database returns.
pub async fn open(settings: &DatabaseSettings) -> Result<DatabaseConnection, OpenError> {
    let is_sqlite = settings.url.starts_with("sqlite:");
    if is_sqlite {
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| OpenError::DataDir {
            path: settings.data_dir.display().to_string(),
            source,
        })?;
    }
    let timeout = settings.timeout;
    let mut options = ConnectOptions::new(settings.url.clone());
    options
        .sqlx_logging(false)
        .connect_timeout(timeout)
        .acquire_timeout(timeout)
        // A connection that died with the server is noticed before use and replaced.
        .test_before_acquire(true);
    if is_sqlite {
        // One connection serialises writers inside the process, so read-then-write transactions
        // (the last-Admin rule) cannot interleave and no write of this process ever meets
        // "database is locked"; WAL lets other processes (the admin CLI) read while the server
        // writes, and the busy timeout makes a writer from another process wait instead of failing.
        options
            .max_connections(1)
            .map_sqlx_sqlite_opts(move |opts| {
                opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(timeout)
                    .foreign_keys(true)
            });
    } else {
        let millis = timeout.as_millis().to_string();
        options
            .max_connections(16)
            .map_sqlx_postgres_opts(move |opts| {
                opts.options([
                    ("statement_timeout", millis.as_str()),
                    ("lock_timeout", millis.as_str()),
                ])
            });
    }
    let db = Database::connect(options)
        .await
        .map_err(OpenError::Connect)?;
    migrate(&db).await.map_err(OpenError::Migrate)?;
    Ok(db)
}

/// The file of a `sqlite:` URL (`sqlite://path?mode=rwc`); `None` for other databases and for
/// in-memory SQLite, which another connection could not see.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Read-only connections to a SQLite file, opened next to [`open`]'s single writer.
const SQLITE_READERS: u32 = 8;

/// The connections for reads that need no transaction with a write (the hot path: role, user and
/// revocation lookups, sessions, single reads). On SQLite the writer is one connection (see
/// [`open`]); in WAL mode readers never wait for it, so reads get a pool of read-only connections
/// of their own and do not queue behind writes or behind each other. On PostgreSQL, and for an
/// in-memory SQLite database (which another connection could not see), it is the same pool.
pub async fn open_reads(
    settings: &DatabaseSettings,
    main: &DatabaseConnection,
) -> Result<DatabaseConnection, OpenError> {
    let url = &settings.url;
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(main.clone());
    }
    let timeout = settings.timeout;
    let mut options = ConnectOptions::new(url.clone());
    options
        .sqlx_logging(false)
        .connect_timeout(timeout)
        .acquire_timeout(timeout)
        // A local file does not drop connections the way a network peer does; a ping before
        // each use would double the cost of every read.
        .test_before_acquire(false)
        .min_connections(1)
        .max_connections(SQLITE_READERS)
        .map_sqlx_sqlite_opts(move |opts| {
            // The writer created the file and put it in WAL mode (a property of the file).
            opts.read_only(true)
                .create_if_missing(false)
                .busy_timeout(timeout)
                .foreign_keys(true)
        });
    Database::connect(options).await.map_err(OpenError::Connect)
}

/// Makes the transactions of one kind take turns, whichever process or instance runs them: the
/// transaction's first statement waits for the one before it to end, so what it then reads is
/// final until it commits. PostgreSQL: the transaction-scoped advisory lock `key`. SQLite:
/// `noop`, a write that changes nothing, which takes the database's write lock before anything
/// is read (waiting, within the busy timeout, for another writer).
pub(crate) async fn take_turn(
    txn: &sea_orm::DatabaseTransaction,
    key: i64,
    noop: &'static str,
) -> Result<(), DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = txn.get_database_backend();
    let statement = match backend {
        DbBackend::Postgres => Statement::from_sql_and_values(
            backend,
            "SELECT pg_advisory_xact_lock($1)",
            [key.into()],
        ),
        _ => Statement::from_string(backend, noop),
    };
    txn.execute_raw(statement).await?;
    Ok(())
}

/// Key of the PostgreSQL advisory lock that serialises migrations between instances.
const MIGRATION_LOCK: i64 = 0x7a79_676f_6d69_6772; // "zygomigr"

/// Applies pending migrations. On PostgreSQL, instances starting together take turns under an
/// advisory lock (held by a connection of its own, without the statement timeout), so exactly one
/// applies each migration and the others find nothing left to do.
async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        // Two processes opening one SQLite file at once both find the same migrations pending;
        // the second to get the write lock fails on what the first applied. If nothing is left
        // to do after all, it goes on.
        return match Migrator::up(db, None).await {
            Ok(()) => Ok(()),
            Err(err) => match Migrator::get_pending_migrations(db).await {
                Ok(pending) if pending.is_empty() => Ok(()),
                _ => Err(err),
            },
        };
    }
    use sea_orm::sqlx::{self, Connection};
    let sqlx_err = |e: sqlx::Error| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e.into()));
    let options = (*db.get_postgres_connection_pool().connect_options()).clone();
    let mut lock = sqlx::PgConnection::connect_with(&options)
        .await
        .map_err(sqlx_err)?;
    for setting in ["SET statement_timeout = 0", "SET lock_timeout = 0"] {
        sqlx::query(setting)
            .execute(&mut lock)
            .await
            .map_err(sqlx_err)?;
    }
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut lock)
        .await
        .map_err(sqlx_err)?;
    let migrated = Migrator::up(db, None).await;
    // Closing the session releases the lock even if the unlock fails.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut lock)
        .await;
    let _ = lock.close().await;
    migrated
}

/// Whether the error means "the database cannot serve right now" (unreachable, restarting, a lock
/// or statement that timed out) rather than a bug: those are answered 503 and retried by clients.
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error;
    let runtime = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return false;
    };
    match sqlx.as_ref() {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(db) => db.code().is_some_and(|code| {
            // PostgreSQL: connection exceptions (08…), shutdown and restart (57P01–57P03),
            // statement timeout (57014), lock timeout (55P03). SQLite: BUSY (5) and LOCKED (6),
            // with their extended codes.
            code.starts_with("08")
                || code.starts_with("57P0")
                || code == "57014"
                || code == "55P03"
                // SQLSTATEs are five characters; SQLite's numeric codes are shorter.
                || (code.len() < 5 && code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6)))
        }),
        _ => false,
    }
}

/// Whether the error is a unique-constraint violation (a duplicate e-mail, say).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Whether row locks (`SELECT … FOR UPDATE`) are available; SQLite serialises writers instead.
pub fn supports_row_locks(backend: DbBackend) -> bool {
    backend == DbBackend::Postgres
}
