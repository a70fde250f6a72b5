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
//!
//! On PostgreSQL every read is a round trip to another process, and a pooled sqlx query makes
//! three (a ping when the connection is taken, the query, a ping when it is given back), each
//! waking the database's backend and then the request's thread. Under load that, not the
//! query, is the cost. So the requests that read a flow or a session at the same moment share a
//! statement: each request queues its key, and a lane takes everything queued, asks for all of
//! it in one `unnest(…)` query on a pooled connection it keeps while there is work, and hands
//! every request its row. A request that finds no query running starts one at once, so a lone
//! request waits for no one; under load a query answers a dozen requests or more. A request's
//! query always starts after the request arrived, so it sees every write committed before then,
//! as a query of its own would: nothing here is a cache.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::{PgConnection, PgPool, Postgres, Row as _};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, RuntimeErr};
use tokio::sync::oneshot;
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
    direct: Option<Arc<Direct>>,
    shared: Option<Arc<Shared>>,
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
        let direct = super::sqlite_file(&settings.url).map(|path| {
            Arc::new(Direct {
                path,
                idle: Mutex::new(Vec::new()),
            })
        });
        let shared = (pool.get_database_backend() == DbBackend::Postgres).then(|| {
            let pool = pool.get_postgres_connection_pool().clone();
            Arc::new(Shared {
                flows: Arc::new(Gather::new(pool.clone(), settings.timeout)),
                attributes: Arc::new(Gather::new(pool.clone(), settings.timeout)),
                sessions: Arc::new(Gather::new(pool, settings.timeout)),
            })
        });
        Reads {
            pool,
            direct,
            shared,
        }
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
        if let Some(shared) = &self.shared {
            return shared.flows.get((tenant, id)).await;
        }
        flows::find(&self.pool, tenant, id).await
    }

    /// The attributes of one flow of the tenant (as [`flows::find_attributes`]): its owner, labels
    /// and shares, without its name or definition. For decisions that do not show the flow.
    pub async fn flow_attributes(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<flows::Attributes>, DbErr> {
        if let Some(direct) = &self.direct {
            match direct.flow_attributes(tenant, id) {
                Ok(found) => return Ok(found),
                Err(Failed::Error(err)) => return Err(err),
                Err(Failed::Busy) => {}
            }
        }
        if let Some(shared) = &self.shared {
            return shared.attributes.get((tenant, id)).await;
        }
        flows::find_attributes(&self.pool, tenant, id).await
    }

    /// One flow of the tenant, read in full only when `allow` lets it through on its attributes
    /// (`None` given to `allow`: no such flow); `Ok(Err(…))` is `allow`'s refusal. The decision
    /// comes before the name and the definition are read, so a flow refused costs what a missing
    /// one does, whatever its size. On a SQLite file both reads are one read transaction, so
    /// the row served is the row decided; elsewhere the row read after the decision is decided
    /// again when its attributes changed in between.
    pub async fn flow_if<E>(
        &self,
        tenant: TenantId,
        id: Uuid,
        allow: impl Fn(Option<&flows::Attributes>) -> Result<(), E>,
    ) -> Result<Result<Option<flows::Flow>, E>, DbErr> {
        if let Some(direct) = &self.direct {
            match direct.flow_if(tenant, id, &allow) {
                Ok(read) => return Ok(read),
                Err(Failed::Error(err)) => return Err(err),
                Err(Failed::Busy) => {}
            }
        }
        let attrs = self.flow_attributes(tenant, id).await?;
        if let Err(refused) = allow(attrs.as_ref()) {
            return Ok(Err(refused));
        }
        let flow = self.flow(tenant, id).await?;
        let read = flow.as_ref().map(|f| &f.attrs);
        if read != attrs.as_ref()
            && let Err(refused) = allow(read)
        {
            return Ok(Err(refused));
        }
        Ok(Ok(flow))
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
        if let Some(shared) = &self.shared {
            return shared.sessions.get(id_hash.to_owned()).await;
        }
        sessions::find(&self.pool, id_hash).await
    }
}

/// Queries running at once for one kind of read. One lane makes the biggest batches: under load
/// its next statement carries every request that arrived while the last one ran (13 keys a
/// statement under `scripts/bench`, against 6 with two lanes, and less of the database's CPU).
/// A statement that fails because the database cannot serve answers the requests queued behind
/// it with the same 503, so none waits longer than about one database timeout.
const LANES: usize = 1;

/// Keys asked in one statement at most.
const MAX_BATCH: usize = 256;

/// How long a lane with nothing to do waits for more before giving its connection back to the
/// pool (and ending). Under load a lane never waits that long, so it keeps its connection; an
/// idle service holds none (closing the pool waits for every connection to come back).
const LANE_IDLE: Duration = Duration::from_millis(50);

/// The shared reads of a PostgreSQL database.
struct Shared {
    flows: Arc<Gather<FlowRead>>,
    attributes: Arc<Gather<AttributesRead>>,
    sessions: Arc<Gather<SessionRead>>,
}

/// A point read that many requests can share a statement for.
trait Batch: Send + Sync + 'static {
    type Key: Send + Sync + 'static;
    type Value: Send + 'static;

    /// The row of each key, in the keys' order (`None`: no such row).
    fn fetch<'c>(
        connection: &'c mut PgConnection,
        keys: &'c [Self::Key],
    ) -> impl Future<Output = Result<Vec<Option<Self::Value>>, DbErr>> + Send + 'c;
}

/// A request waiting for its row.
struct Waiter<B: Batch> {
    key: B::Key,
    reply: oneshot::Sender<Result<Option<B::Value>, DbErr>>,
}

/// The keys waiting for a lane, and how many lanes run.
struct Queue<B: Batch> {
    waiting: Vec<Waiter<B>>,
    lanes: usize,
}

/// Gathers the reads of concurrent requests into shared statements (see the module's docs).
struct Gather<B: Batch> {
    pool: PgPool,
    /// Bounds a lane's wait for a connection and for its statement, like every database wait.
    timeout: Duration,
    queue: Mutex<Queue<B>>,
    /// Wakes a lane that waits for work (see [`LANE_IDLE`]).
    work: tokio::sync::Notify,
}

impl<B: Batch> Gather<B> {
    fn new(pool: PgPool, timeout: Duration) -> Self {
        Gather {
            pool,
            timeout,
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                lanes: 0,
            }),
            work: tokio::sync::Notify::new(),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue<B>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The row of `key`, read by the next statement a lane starts.
    async fn get(self: &Arc<Self>, key: B::Key) -> Result<Option<B::Value>, DbErr> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = self.queue();
            queue.waiting.push(Waiter { key, reply });
            let start = queue.lanes < LANES;
            if start {
                queue.lanes += 1;
            }
            start
        };
        if start {
            tokio::spawn(self.clone().lane());
        } else {
            self.work.notify_one();
        }
        answer.await.unwrap_or_else(|_| {
            Err(DbErr::Conn(RuntimeErr::Internal(
                "the shared read stopped before answering".into(),
            )))
        })
    }

    /// Takes what is queued, reads it, answers, and again until the queue is empty.
    async fn lane(self: Arc<Self>) {
        let mut lane = Lane {
            gather: &self,
            running: true,
        };
        // Taking a connection from the pool and giving it back costs a round trip each: a lane
        // keeps one for as long as it has work.
        let mut connection: Option<PoolConnection<Postgres>> = None;
        let mut waited = false;
        loop {
            let Some(batch) = self.next_batch(waited) else {
                lane.running = false;
                return;
            };
            if batch.is_empty() {
                // A request that queues now finds this lane counted and wakes it; a wake that
                // comes before the wait is kept by the `Notify` and ends it at once.
                waited = tokio::time::timeout(LANE_IDLE, self.work.notified())
                    .await
                    .is_err();
                continue;
            }
            waited = false;
            let (keys, replies): (Vec<B::Key>, Vec<_>) =
                batch.into_iter().map(|w| (w.key, w.reply)).unzip();
            let read = tokio::time::timeout(self.timeout, self.read(&mut connection, &keys))
                .await
                .unwrap_or_else(|_| {
                    Err(DbErr::Conn(RuntimeErr::Internal(format!(
                        "no answer within {:?}",
                        self.timeout
                    ))))
                });
            match read {
                Ok(rows) => {
                    for (reply, row) in replies.into_iter().zip(rows) {
                        let _ = reply.send(Ok(row));
                    }
                }
                Err(err) => {
                    // A connection that failed or hung is in an unknown state: close it.
                    if let Some(mut failed) = connection.take() {
                        failed.close_on_drop();
                    }
                    // When the database cannot serve, the requests that queued meanwhile get the
                    // same answer now, instead of waiting for a statement of their own to fail
                    // (each failure takes up to the database timeout): an outage costs a request
                    // at most about one timeout, as a query of its own would.
                    for reply in replies {
                        let _ = reply.send(Err(err.clone()));
                    }
                    if super::is_unavailable(&err) {
                        fail(std::mem::take(&mut self.queue().waiting), &err);
                    }
                }
            }
        }
    }

    /// The next keys to read (empty: wait for work), or `None` when the lane ends: nothing
    /// queued after a wait of [`LANE_IDLE`], or the pool closed (the service is stopping; what
    /// is queued is refused and the kept connection goes back, which closing the pool waits for).
    fn next_batch(&self, waited: bool) -> Option<Vec<Waiter<B>>> {
        let mut queue = self.queue();
        // Requests that gave up (their client left, their deadline passed) need no row.
        queue.waiting.retain(|waiter| !waiter.reply.is_closed());
        let closed = self.pool.is_closed();
        if closed {
            let closed = DbErr::Conn(RuntimeErr::SqlxError(Arc::new(
                sea_orm::sqlx::Error::PoolClosed,
            )));
            fail(std::mem::take(&mut queue.waiting), &closed);
        }
        if queue.waiting.is_empty() && (waited || closed) {
            queue.lanes -= 1;
            return None;
        }
        let n = queue.waiting.len().min(MAX_BATCH);
        Some(queue.waiting.drain(..n).collect())
    }

    /// One statement for `keys`, on the kept connection or one from the pool. A kept connection
    /// may have died with the server since its last use (the pool would have pinged it): when
    /// it fails so, the statement is tried once more on a fresh one.
    async fn read(
        &self,
        connection: &mut Option<PoolConnection<Postgres>>,
        keys: &[B::Key],
    ) -> Result<Vec<Option<B::Value>>, DbErr> {
        loop {
            let fresh = connection.is_none();
            let current = match connection {
                Some(current) => current,
                None => connection.insert(
                    self.pool
                        .acquire()
                        .await
                        .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?,
                ),
            };
            match B::fetch(current, keys).await {
                Err(err) if !fresh && super::is_unavailable(&err) => {
                    if let Some(mut dead) = connection.take() {
                        dead.close_on_drop();
                    }
                }
                read => return read,
            }
        }
    }
}

/// Answers every waiter with `err`.
fn fail<B: Batch>(waiters: Vec<Waiter<B>>, err: &DbErr) {
    for waiter in waiters {
        let _ = waiter.reply.send(Err(err.clone()));
    }
}

/// A running lane; if it ends without emptying the queue (a panic), the lane count stays true
/// and the requests it left are answered with an error instead of waiting for ever.
struct Lane<'a, B: Batch> {
    gather: &'a Gather<B>,
    running: bool,
}

impl<B: Batch> Drop for Lane<'_, B> {
    fn drop(&mut self) {
        if self.running {
            let mut queue = self.gather.queue();
            queue.lanes -= 1;
            if queue.lanes == 0 {
                queue.waiting.clear();
            }
        }
    }
}

/// Runs a shared statement and orders its rows by the `n` (1-based, column 0) of their key.
async fn rows_by_key<V>(
    connection: &mut PgConnection,
    statement: sea_orm::sqlx::query::Query<'_, Postgres, sea_orm::sqlx::postgres::PgArguments>,
    count: usize,
    value: impl Fn(&PgRow) -> Result<V, sea_orm::sqlx::Error>,
) -> Result<Vec<Option<V>>, DbErr> {
    let rows = statement.fetch_all(connection).await.map_err(query_err)?;
    let mut found: Vec<Option<V>> = std::iter::repeat_with(|| None).take(count).collect();
    for row in rows {
        let n: i64 = row.try_get(0).map_err(query_err)?;
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|i| found.get_mut(i))
            .ok_or_else(|| DbErr::Custom(format!("shared read: row for key {n}")))?;
        *slot = Some(value(&row).map_err(query_err)?);
    }
    Ok(found)
}

fn query_err(err: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}

/// Flows by (tenant, id): the row with its labels and shares, as [`flows::find`] reads it.
struct FlowRead;

impl Batch for FlowRead {
    type Key = (TenantId, Uuid);
    type Value = flows::Flow;

    async fn fetch(
        connection: &mut PgConnection,
        keys: &[(TenantId, Uuid)],
    ) -> Result<Vec<Option<flows::Flow>>, DbErr> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            format!(
                "SELECT q.n, flows.id, flows.tenant_id, flows.name, flows.definition, \
                 flows.created_at, flows.updated_at, flows.owner_id, {} AS labels, {} AS shares \
                 FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS q(id, tenant_id, n) \
                 JOIN flows ON flows.id = q.id AND flows.tenant_id = q.tenant_id",
                flows::PG_LABELS,
                flows::PG_SHARES
            )
        });
        let ids: Vec<Uuid> = keys.iter().map(|(_, id)| *id).collect();
        let tenants: Vec<Uuid> = keys.iter().map(|(tenant, _)| tenant.0).collect();
        let statement = sea_orm::sqlx::query(sql.as_str()).bind(ids).bind(tenants);
        rows_by_key(connection, statement, keys.len(), |row| {
            let labels: Option<&str> = row.try_get(8)?;
            let shares: Option<&str> = row.try_get(9)?;
            let owner: Option<Uuid> = row.try_get(7)?;
            Ok(flows::Flow {
                id: row.try_get(1)?,
                tenant_id: row.try_get(2)?,
                name: row.try_get(3)?,
                definition: flows::Definition::stored(row.try_get(4)?)
                    .map_err(|err| sea_orm::sqlx::Error::Decode(Box::new(err)))?,
                created_at: row.try_get(5)?,
                updated_at: row.try_get(6)?,
                attrs: flows::Attributes {
                    owner: owner.map(UserId),
                    ..flows::unfold(labels, shares)
                },
            })
        })
        .await
    }
}

/// Flow attributes by (tenant, id), as [`flows::find_attributes`] reads them: the definition
/// stays in the database.
struct AttributesRead;

impl Batch for AttributesRead {
    type Key = (TenantId, Uuid);
    type Value = flows::Attributes;

    async fn fetch(
        connection: &mut PgConnection,
        keys: &[(TenantId, Uuid)],
    ) -> Result<Vec<Option<flows::Attributes>>, DbErr> {
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            format!(
                "SELECT q.n, flows.owner_id, {} AS labels, {} AS shares \
                 FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS q(id, tenant_id, n) \
                 JOIN flows ON flows.id = q.id AND flows.tenant_id = q.tenant_id",
                flows::PG_LABELS,
                flows::PG_SHARES
            )
        });
        let ids: Vec<Uuid> = keys.iter().map(|(_, id)| *id).collect();
        let tenants: Vec<Uuid> = keys.iter().map(|(tenant, _)| tenant.0).collect();
        let statement = sea_orm::sqlx::query(sql.as_str()).bind(ids).bind(tenants);
        rows_by_key(connection, statement, keys.len(), |row| {
            let owner: Option<Uuid> = row.try_get(1)?;
            let labels: Option<&str> = row.try_get(2)?;
            let shares: Option<&str> = row.try_get(3)?;
            Ok(flows::Attributes {
                owner: owner.map(UserId),
                ..flows::unfold(labels, shares)
            })
        })
        .await
    }
}

/// Sessions by the hash of their id, as [`sessions::find`] reads them.
struct SessionRead;

impl Batch for SessionRead {
    type Key = String;
    type Value = sessions::Session;

    async fn fetch(
        connection: &mut PgConnection,
        keys: &[String],
    ) -> Result<Vec<Option<sessions::Session>>, DbErr> {
        let statement = sea_orm::sqlx::query(
            "SELECT q.n, sessions.id_hash, sessions.user_id, sessions.current_tenant_id, \
             sessions.created_at, sessions.last_seen_at, sessions.expires_at \
             FROM unnest($1::text[]) WITH ORDINALITY AS q(id_hash, n) \
             JOIN sessions ON sessions.id_hash = q.id_hash",
        )
        .bind(keys);
        rows_by_key(connection, statement, keys.len(), |row| {
            Ok(sessions::Session {
                id_hash: row.try_get(1)?,
                user_id: row.try_get(2)?,
                current_tenant_id: row.try_get(3)?,
                created_at: row.try_get(4)?,
                last_seen_at: row.try_get(5)?,
                expires_at: row.try_get(6)?,
            })
        })
        .await
    }
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
        // A connection left inside a transaction (one that failed to end) is closed, never
        // handed to the next read, which would see its old snapshot.
        if connection.is_autocommit()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEEP
        {
            idle.push(connection);
        }
        result
    }

    fn flow(&self, tenant: TenantId, id: Uuid) -> Result<Option<flows::Flow>, Failed> {
        self.with(|connection| read_flow(connection, tenant, id))
    }

    fn flow_attributes(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<flows::Attributes>, Failed> {
        self.with(|connection| read_attributes(connection, tenant, id))
    }

    /// See [`Reads::flow_if`]: one read transaction, so the row read second is the one decided.
    fn flow_if<E>(
        &self,
        tenant: TenantId,
        id: Uuid,
        allow: &impl Fn(Option<&flows::Attributes>) -> Result<(), E>,
    ) -> Result<Result<Option<flows::Flow>, E>, Failed> {
        self.with(|connection| {
            connection.prepare_cached("BEGIN")?.execute([])?;
            let read: Result<Result<Option<flows::Flow>, E>, Failed> = (|| {
                let attrs = read_attributes(connection, tenant, id)?;
                if let Err(refused) = allow(attrs.as_ref()) {
                    return Ok(Err(refused));
                }
                // The same snapshot: the attributes just decided on are the row's own.
                let rest =
                    attrs.and_then(|attrs| read_rest(connection, tenant, id, attrs).transpose());
                Ok(Ok(rest.transpose()?))
            })();
            // A read transaction ends the same way whichever way the reads went.
            let ended = connection.prepare_cached("COMMIT")?.execute([]);
            let read = read?;
            ended?;
            Ok(read)
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

/// One flow of the tenant on `connection`, in one statement: the row, and its labels and shares
/// folded into two strings (as `flows::find` reads them).
fn read_flow(
    connection: &Connection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<flows::Flow>, Failed> {
    let mut statement = connection.prepare_cached(
        "SELECT id, tenant_id, name, definition, created_at, updated_at, owner_id, \
         (SELECT group_concat(label, ' ') FROM flow_labels WHERE flow_id = flows.id), \
         (SELECT group_concat(substr(access, 1, 1) || hex(user_id), ' ') \
          FROM flow_shares WHERE flow_id = flows.id) \
         FROM flows WHERE id = ?1 AND tenant_id = ?2",
    )?;
    let row = statement
        .query_row((id.as_bytes(), tenant.0.as_bytes()), |row| {
            let folded = |index| folded(row, index);
            let attrs = flows::Attributes {
                owner: match row.get_ref(6)? {
                    ValueRef::Null => None,
                    value => Some(UserId(uuid(value)?)),
                },
                ..flows::unfold(folded(7)?, folded(8)?)
            };
            flow_of(row, attrs)
        })
        .optional()?;
    Ok(row)
}

/// The rest of a flow's row (name, definition, times) on `connection`, around `attrs` read
/// before in the same read transaction ([`Direct::flow_if`]): the labels and shares are not
/// looked up twice.
fn read_rest(
    connection: &Connection,
    tenant: TenantId,
    id: Uuid,
    attrs: flows::Attributes,
) -> Result<Option<flows::Flow>, Failed> {
    let mut statement = connection.prepare_cached(
        "SELECT id, tenant_id, name, definition, created_at, updated_at \
         FROM flows WHERE id = ?1 AND tenant_id = ?2",
    )?;
    let mut attrs = Some(attrs);
    let row = statement
        .query_row((id.as_bytes(), tenant.0.as_bytes()), |row| {
            flow_of(row, attrs.take().unwrap_or_default())
        })
        .optional()?;
    Ok(row)
}

/// A flow's attributes on `connection`, as [`read_flow`] reads them, without the name and the
/// definition.
fn read_attributes(
    connection: &Connection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<flows::Attributes>, Failed> {
    // The labels and shares are looked up by the id asked, whether or not the tenant has that
    // flow, and a row comes back either way: a flow that is not there costs what one that is
    // does.
    let mut statement = connection.prepare_cached(
        "SELECT flows.owner_id, \
         (SELECT group_concat(label, ' ') FROM flow_labels WHERE flow_id = ?1), \
         (SELECT group_concat(substr(access, 1, 1) || hex(user_id), ' ') \
          FROM flow_shares WHERE flow_id = ?1), \
         flows.id IS NOT NULL \
         FROM (SELECT 1) LEFT JOIN flows ON flows.id = ?1 AND flows.tenant_id = ?2",
    )?;
    let row = statement
        .query_row((id.as_bytes(), tenant.0.as_bytes()), |row| {
            if !row.get::<_, bool>(3)? {
                return Ok(None);
            }
            let folded = |index| folded(row, index);
            Ok(Some(flows::Attributes {
                owner: match row.get_ref(0)? {
                    ValueRef::Null => None,
                    value => Some(UserId(uuid(value)?)),
                },
                ..flows::unfold(folded(1)?, folded(2)?)
            }))
        })
        .optional()?;
    Ok(row.flatten())
}

/// A flow from a row whose first columns are `id, tenant_id, name, definition, created_at,
/// updated_at`, with `attrs`.
fn flow_of(row: &rusqlite::Row<'_>, attrs: flows::Attributes) -> rusqlite::Result<flows::Flow> {
    Ok(flows::Flow {
        id: uuid(row.get_ref(0)?)?,
        tenant_id: uuid(row.get_ref(1)?)?,
        name: row.get(2)?,
        definition: flows::Definition::stored(text("definition", row.get_ref(3)?)?.to_owned())
            .map_err(|e| conversion("definition", e))?,
        created_at: time(row.get_ref(4)?)?,
        updated_at: time(row.get_ref(5)?)?,
        attrs,
    })
}

/// A flow's labels or shares folded into one string (see `flows::unfold`), or none.
fn folded<'r>(row: &'r rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Option<&'r str>> {
    match row.get_ref(index)? {
        ValueRef::Text(text) => std::str::from_utf8(text)
            .map(Some)
            .map_err(|e| conversion("attributes", e)),
        _ => Ok(None),
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
