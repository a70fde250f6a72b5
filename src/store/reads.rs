//! The reads every request makes, without waiting behind writes or hopping threads.
//!
//! On SQLite the server writes through one connection (see [`super::open`]). Reads do not take
//! it: in WAL mode readers never wait for the writer, so they get connections of their own. And
//! sqlx runs each SQLite connection on a thread of its own, handing every statement and row over
//! channels: for a point read that hand-over costs several times the read (two context switches
//! per query, most of an authorized request's time under load). A point read of a WAL database
//! from the page cache takes microseconds, so the per-request reads — one flow, one session — run
//! with rusqlite on the calling thread, on read-only connections of their own; everything else
//! (writes, transactions, cache misses, PostgreSQL) goes through sea-orm. `tests/api/reads.rs`
//! checks that both paths return the same rows.
//!
//! A reader that meets a lock (rare in WAL mode: a checkpoint that resets the log, a crash
//! recovery) does not wait on the calling thread: it gives up after [`BUSY_WAIT`] and the read
//! goes through the sea-orm pool instead, which waits asynchronously.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use super::entities::session;
use super::{TenantId, UserId, flows, sessions};
use crate::config::DatabaseSettings;

/// The longest a reader waits for a lock on the calling thread before handing the read over.
const BUSY_WAIT: Duration = Duration::from_millis(20);

/// Idle connections kept; more may be open at once under load, and are closed after use.
const KEEP: usize = 8;

/// Read connections: the sea-orm pool, and on a SQLite file the direct readers.
#[derive(Clone)]
pub struct Reads {
    /// For reads outside a write's transaction (the SQLite read pool, or the PostgreSQL pool).
    pub pool: DatabaseConnection,
    direct: Option<std::sync::Arc<Direct>>,
}

/// Read-only rusqlite connections to the SQLite file.
struct Direct {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Why a direct read did not answer: hand it to the pool, or report the failure.
enum Failed {
    Busy,
    Error(DbErr),
}

impl From<rusqlite::Error> for Failed {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Failed::Busy
            }
            _ => Failed::Error(DbErr::Custom(format!("sqlite read: {err}"))),
        }
    }
}

impl Reads {
    /// Direct readers for a SQLite file named by `settings`; the pool alone otherwise.
    pub fn new(settings: &DatabaseSettings, pool: DatabaseConnection) -> Reads {
        let direct = sqlite_file(&settings.url).map(|path| {
            std::sync::Arc::new(Direct {
                path,
                idle: Mutex::new(Vec::new()),
            })
        });
        Reads { pool, direct }
    }

    /// One flow of the tenant (as [`flows::find`]).
    pub async fn flow(&self, tenant: TenantId, id: Uuid) -> Result<Option<flows::Flow>, DbErr> {
        if let Some(direct) = &self.direct {
            match direct.flow(tenant, id) {
                Ok(found) => return Ok(found),
                Err(Failed::Error(err)) => return Err(err),
                Err(Failed::Busy) => {}
            }
        }
        flows::find(&self.pool, tenant, id).await
    }

    /// A session by the hash of its id (as [`sessions::find`]).
    pub async fn session(&self, id_hash: &str) -> Result<Option<sessions::Session>, DbErr> {
        if let Some(direct) = &self.direct {
            match direct.session(id_hash) {
                Ok(found) => return Ok(found),
                Err(Failed::Error(err)) => return Err(err),
                Err(Failed::Busy) => {}
            }
        }
        sessions::find(&self.pool, id_hash).await
    }
}

/// The file of a `sqlite:` URL (`sqlite://path?mode=rwc`); `None` for other databases and for
/// in-memory SQLite, which another connection could not see.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

impl Direct {
    fn with<T>(&self, read: impl FnOnce(&Connection) -> Result<T, Failed>) -> Result<T, Failed> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let connection = match idle {
            Some(connection) => connection,
            None => {
                let connection = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )?;
                connection.busy_timeout(BUSY_WAIT)?;
                connection
            }
        };
        let result = read(&connection);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEEP
        {
            idle.push(connection);
        }
        result
    }

    fn flow(&self, tenant: TenantId, id: Uuid) -> Result<Option<flows::Flow>, Failed> {
        self.with(|connection| {
            // One statement: the row, and its labels and shares folded into two strings (as
            // `flows::find` reads them).
            let mut statement = connection.prepare_cached(
                "SELECT id, tenant_id, name, definition, created_at, updated_at, owner_id, \
                 (SELECT group_concat(label, ' ') FROM flow_labels WHERE flow_id = flows.id), \
                 (SELECT group_concat(substr(access, 1, 1) || hex(user_id), ' ') \
                  FROM flow_shares WHERE flow_id = flows.id) \
                 FROM flows WHERE id = ?1 AND tenant_id = ?2",
            )?;
            let row = statement
                .query_row((id.as_bytes(), tenant.0.as_bytes()), |row| {
                    let folded = |index: usize| -> rusqlite::Result<Option<&str>> {
                        match row.get_ref(index)? {
                            ValueRef::Text(text) => std::str::from_utf8(text)
                                .map(Some)
                                .map_err(|e| conversion("attributes", e)),
                            _ => Ok(None),
                        }
                    };
                    let attrs = flows::Attributes {
                        owner: match row.get_ref(6)? {
                            ValueRef::Null => None,
                            value => Some(UserId(uuid(value)?)),
                        },
                        ..flows::unfold(folded(7)?, folded(8)?)
                    };
                    Ok(flows::Flow {
                        id: uuid(row.get_ref(0)?)?,
                        tenant_id: uuid(row.get_ref(1)?)?,
                        name: row.get(2)?,
                        definition: json(row.get_ref(3)?)?,
                        created_at: time(row.get_ref(4)?)?,
                        updated_at: time(row.get_ref(5)?)?,
                        attrs,
                    })
                })
                .optional()?;
            Ok(row)
        })
    }

    fn session(&self, id_hash: &str) -> Result<Option<session::Model>, Failed> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id_hash, user_id, current_tenant_id, created_at, last_seen_at, \
                 expires_at FROM sessions WHERE id_hash = ?1",
            )?;
            let row = statement
                .query_row([id_hash], |row| {
                    let tenant = row.get_ref(2)?;
                    Ok(session::Model {
                        id_hash: row.get(0)?,
                        user_id: uuid(row.get_ref(1)?)?,
                        current_tenant_id: match tenant {
                            ValueRef::Null => None,
                            value => Some(uuid(value)?),
                        },
                        created_at: time(row.get_ref(3)?)?,
                        last_seen_at: time(row.get_ref(4)?)?,
                        expires_at: time(row.get_ref(5)?)?,
                    })
                })
                .optional()?;
            Ok(row)
        })
    }
}

fn conversion(column: &str, err: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("{column}: {err}").into(),
    )
}

/// A UUID as sqlx stores it in SQLite: 16 bytes (text is accepted too).
fn uuid(value: ValueRef<'_>) -> rusqlite::Result<Uuid> {
    match value {
        ValueRef::Blob(bytes) => Uuid::from_slice(bytes).map_err(|e| conversion("uuid", e)),
        ValueRef::Text(text) => std::str::from_utf8(text)
            .map_err(|e| conversion("uuid", e))
            .and_then(|t| Uuid::parse_str(t).map_err(|e| conversion("uuid", e))),
        _ => Err(conversion("uuid", "not a blob or text")),
    }
}

fn text<'a>(column: &str, value: ValueRef<'a>) -> rusqlite::Result<&'a str> {
    match value {
        ValueRef::Text(text) => std::str::from_utf8(text).map_err(|e| conversion(column, e)),
        _ => Err(conversion(column, "not text")),
    }
}

/// A timestamp as sqlx stores it in SQLite: RFC 3339 text.
fn time(value: ValueRef<'_>) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text("timestamp", value)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| conversion("timestamp", e))
}

/// A JSON document, stored as text.
fn json(value: ValueRef<'_>) -> rusqlite::Result<serde_json::Value> {
    serde_json::from_str(text("json", value)?).map_err(|e| conversion("json", e))
}
