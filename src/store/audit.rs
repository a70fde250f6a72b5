//! The audit trail: who changed what, when, from where, with which credential.
//!
//! [`record`] appends an event inside the caller's transaction, so a change and its event commit
//! or roll back together; [`record_with`] does so in the change's own statement, which saves the
//! event a trip to the database. Events are chained: one chain per tenant (`tenant:<id>`) and one for
//! account- and server-level events (`account`). Each event carries its place in the chain
//! (`seq`, from 1), the previous event's hash, and its own hash: SHA-256 over the previous hash
//! and a canonical encoding of every other column ([`hash_of`]). [`verify`] walks the chains and
//! names the first event that was edited, removed or reordered. [`archive`] deletes a chain's
//! oldest events and leaves a checkpoint the rest of the chain verifies from.
//!
//! Appends to one chain are serialised: on PostgreSQL by a transaction-scoped advisory lock on
//! the chain (released at commit or rollback); on SQLite by the database's single writer. The
//! table's key is `(chain, seq)`, which makes a fork impossible regardless, and it is the only
//! index: every reader follows a chain along it ([`list`], [`verify`], [`since`]), so an event
//! costs its writer two B-tree entries. Each process remembers the heads it wrote, as a hint the
//! database checks in the append itself (see [`record`]).
//!
//! The HTTP layer says where a request comes from once, for every event the request writes:
//! [`ORIGIN`] (request id, client address, the policy version in force), a task-local like the
//! decision log's request id.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::entities::audit_event;
use super::page::{ChainPage, Rows, cut};
use super::{TenantId, UserId};

pub use audit_event::Model as AuditEvent;

/// The action names.
pub mod action {
    pub const LOGIN_SUCCEEDED: &str = "login.succeeded";
    pub const LOGIN_FAILED: &str = "login.failed";
    pub const TOKEN_MINTED: &str = "token.minted";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const LOGGED_OUT_EVERYWHERE: &str = "account.logged_out_everywhere";
    pub const PASSWORD_CHANGED: &str = "password.changed";
    pub const USER_DISABLED: &str = "user.disabled";
    pub const USER_ENABLED: &str = "user.enabled";
    pub const TENANT_CREATED: &str = "tenant.created";
    pub const MEMBER_INVITED: &str = "member.invited";
    pub const MEMBER_ADDED: &str = "member.added";
    pub const MEMBER_ROLE_CHANGED: &str = "member.role_changed";
    pub const MEMBER_REMOVED: &str = "member.removed";
    pub const INVITATION_WITHDRAWN: &str = "invitation.withdrawn";
    pub const INVITATION_DECLINED: &str = "invitation.declined";
    pub const FLOW_CREATED: &str = "flow.created";
    pub const FLOW_CHANGED: &str = "flow.changed";
    pub const FLOW_DELETED: &str = "flow.deleted";
    pub const FLOW_SHARED: &str = "flow.shared";
    pub const FLOW_UNSHARED: &str = "flow.unshared";
    /// A policy version published and activated (`zygo policy publish`).
    pub const POLICY_PUBLISHED: &str = "policy.published";
    /// An earlier policy version activated again (`zygo policy rollback`).
    pub const POLICY_ROLLED_BACK: &str = "policy.rolled_back";
    /// A chain's oldest events deleted, its checkpoint moved (`zygo audit archive`).
    pub const AUDIT_ARCHIVED: &str = "audit.archived";

    /// A user's own security events (`GET /api/me/audit`).
    pub const SECURITY: &[&str] = &[
        LOGIN_SUCCEEDED,
        LOGIN_FAILED,
        TOKEN_MINTED,
        TOKEN_REVOKED,
        LOGGED_OUT_EVERYWHERE,
        PASSWORD_CHANGED,
        USER_DISABLED,
        USER_ENABLED,
    ];
}

/// The chain of account- and server-level events.
pub const ACCOUNT_CHAIN: &str = "account";

/// The `prev_hash` of a chain's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who made a change: the user and the credential used, named without its secret
/// (`token:<jti>`, `session:<prefix of the session id's hash>`, `cli` for the operator).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub user: Option<UserId>,
    pub credential: Option<String>,
}

impl Actor {
    /// The operator running the command line.
    pub fn cli() -> Self {
        Actor {
            user: None,
            credential: Some("cli".into()),
        }
    }
}

/// Where the request that writes events comes from (see [`ORIGIN`]).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub request_id: Option<String>,
    pub client: Option<String>,
    pub policy_version: Option<std::sync::Arc<str>>,
}

tokio::task_local! {
    /// The origin of the events the current task records.
    pub static ORIGIN: Origin;
}

/// One change to record.
#[derive(Debug, Clone)]
pub struct Event {
    /// The tenant (its chain), or `None` for the account chain.
    pub tenant: Option<TenantId>,
    pub actor: Actor,
    pub action: &'static str,
    /// What was changed: `user:<id>`, `flow:<id>`, `token:<jti>`, `tenant:<id>`…
    pub target: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl Event {
    /// An event with no before/after.
    pub fn new(
        tenant: Option<TenantId>,
        actor: &Actor,
        action: &'static str,
        target: impl Into<Option<String>>,
    ) -> Self {
        Event {
            tenant,
            actor: actor.clone(),
            action,
            target: target.into(),
            before: None,
            after: None,
        }
    }

    pub fn before(mut self, value: serde_json::Value) -> Self {
        self.before = Some(value);
        self
    }

    pub fn after(mut self, value: serde_json::Value) -> Self {
        self.after = Some(value);
        self
    }
}

/// The chain of a tenant's events, or of account events.
pub fn chain_of(tenant: Option<TenantId>) -> String {
    tenant.map_or_else(|| ACCOUNT_CHAIN.to_owned(), |t| format!("tenant:{}", t.0))
}

/// The advisory lock key of a chain (PostgreSQL).
fn lock_key(chain: &str) -> i64 {
    let digest = Sha256::digest(format!("zygo-audit:{chain}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A chain's last event, as this process last appended or read it.
#[derive(Debug, Clone)]
struct Head {
    seq: i64,
    hash: String,
}

/// The head of each chain this process appended to: a hint, never trusted. An append built on
/// it only succeeds if the database still agrees (the event at `seq` has `hash` and none
/// follows it); otherwise the head is read again. So a head left stale by a rollback or by
/// another instance on the same database costs a retry, never a broken chain.
static HEADS: std::sync::LazyLock<moka::sync::Cache<String, Head>> =
    std::sync::LazyLock::new(|| moka::sync::Cache::new(100_000));

#[cfg(feature = "bench-baseline")]
tokio::task_local! {
    /// Set by [`without_events`].
    static UNRECORDED: ();
}

/// Runs `work` with [`record`] writing nothing: the audit benchmark's baseline (the same write
/// without its event). It exists only in a build with the `bench-baseline` feature (which
/// `scripts/bench-audit` turns on): the service as built and shipped has no way to write a
/// change without its event.
#[cfg(feature = "bench-baseline")]
#[doc(hidden)]
pub async fn without_events<F: std::future::Future>(work: F) -> F::Output {
    UNRECORDED.scope((), work).await
}

/// Appends `event` to its chain, inside the caller's transaction.
///
/// The usual case is one statement: an insert built on the chain's head as this process last
/// wrote it, which inserts nothing (PostgreSQL) or is refused (SQLite) unless that is still the
/// head. On PostgreSQL the same
/// statement takes the chain's advisory lock, reads the database clock once the chain is ours,
/// and computes the event's hash in the database ([`hash_of`], the same bytes); the hash is
/// checked here before the event counts. When the head was stale (first append to the chain
/// in this process, a rolled-back append, another instance appended), the chain is locked, its
/// head read, and the insert made again on it.
///
/// A change that ends in one plain statement records its event with [`record_with`] instead,
/// which sends the two together.
///
/// Answers the event's place in its chain (0 when nothing was written: the benchmark's baseline).
pub async fn record(txn: &DatabaseTransaction, event: Event) -> Result<i64, DbErr> {
    #[cfg(feature = "bench-baseline")]
    if UNRECORDED.try_with(|_| ()).is_ok() {
        return Ok(0);
    }
    let mut model = model_of(event);
    if let Some(head) = HEADS.get(&model.chain)
        && let Appended::Both(_) = append(txn, &mut model, &head, None).await?
    {
        let seq = model.seq;
        remember(model);
        return Ok(seq);
    }
    append_locked(txn, &mut model).await?;
    let seq = model.seq;
    remember(model);
    Ok(seq)
}

/// Makes `change` (an `INSERT`, `UPDATE` or `DELETE` without `RETURNING`, as the query builders
/// build it for this backend) and appends `event` to its chain, in one statement sent to the
/// database, inside the caller's transaction; answers the rows `change` affected.
///
/// Each statement of a write is a trip to the database (to PostgreSQL over the network, to
/// SQLite's connection thread), and the trip, not the insert, is most of what a statement
/// costs; an event riding on the change's own statement costs almost nothing more
/// (`scripts/bench-audit`).
///
/// - PostgreSQL: one statement whose `WITH` makes the change, then takes the chain's lock and
///   appends the event as [`record`] does (rows first, the chain last, as every write locks);
///   both run, so when the head turns out stale the change is made and the event is then
///   appended as [`record`] does after a stale head.
/// - SQLite: the event's insert, then `change`, in one call. A stale head makes the insert fail
///   on its `hash` (which it leaves empty), before `change` runs; the statement alone is undone,
///   the event is appended as after a stale head, and `change` is made on its own.
pub async fn record_with(
    txn: &DatabaseTransaction,
    event: Event,
    change: Statement,
) -> Result<u64, DbErr> {
    #[cfg(feature = "bench-baseline")]
    if UNRECORDED.try_with(|_| ()).is_ok() {
        return Ok(txn.execute_raw(change).await?.rows_affected());
    }
    let mut model = model_of(event);
    let mut pending = Some(change);
    let mut changed = 0;
    if let Some(head) = HEADS.get(&model.chain) {
        match append(txn, &mut model, &head, pending.as_ref()).await? {
            Appended::Both(rows) => {
                remember(model);
                return Ok(rows);
            }
            Appended::ChangeOnly(rows) => {
                changed = rows;
                pending = None;
            }
            Appended::Neither => {}
        }
    }
    append_locked(txn, &mut model).await?;
    remember(model);
    if let Some(change) = pending {
        changed = txn.execute_raw(change).await?.rows_affected();
    }
    Ok(changed)
}

/// The row `event` becomes, before its place in the chain, time and hash are known.
fn model_of(event: Event) -> AuditEvent {
    let origin = ORIGIN.try_with(Clone::clone).unwrap_or_default();
    AuditEvent {
        id: Uuid::new_v4(),
        chain: chain_of(event.tenant),
        seq: 0,
        at: DateTime::<Utc>::UNIX_EPOCH,
        actor_id: event.actor.user.map(|u| u.0),
        credential: event.actor.credential,
        tenant_id: event.tenant.map(|t| t.0),
        action: event.action.to_owned(),
        target: event.target,
        before: event.before.map(|v| v.to_string()),
        after: event.after.map(|v| v.to_string()),
        request_id: origin.request_id,
        client: origin.client,
        policy_version: origin.policy_version.map(|v| v.to_string()),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Appends `model` on the chain's head as the database has it, the chain locked first.
async fn append_locked(txn: &DatabaseTransaction, model: &mut AuditEvent) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT pg_advisory_xact_lock($1)",
            [lock_key(&model.chain).into()],
        ))
        .await?;
    }
    let head = read_head(txn, &model.chain).await?;
    match append(txn, model, &head, None).await? {
        Appended::Both(_) => Ok(()),
        _ => Err(DbErr::Custom(format!(
            "the audit chain {} moved while it was locked",
            model.chain
        ))),
    }
}

fn remember(model: AuditEvent) {
    HEADS.insert(
        model.chain,
        Head {
            seq: model.seq,
            hash: model.hash,
        },
    );
}

/// The chain's last event as the database has it now (the chain is ours).
async fn read_head(txn: &DatabaseTransaction, chain: &str) -> Result<Head, DbErr> {
    let backend = txn.get_database_backend();
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT seq, hash FROM audit_events WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
            [chain.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => Head {
            seq: row.try_get("", "seq")?,
            hash: row.try_get("", "hash")?,
        },
        None => Head {
            seq: 0,
            hash: GENESIS.to_owned(),
        },
    })
}

/// The condition that the event to insert (`$2` its chain, `$3` its seq, `$14` its previous
/// hash) follows the chain's head: the event before it is there with that hash, none after.
const STILL_HEAD: &str = "($3 = 1 OR EXISTS (SELECT 1 FROM audit_events \
     WHERE chain = $2 AND seq = $3 - 1 AND hash = $14)) \
     AND NOT EXISTS (SELECT 1 FROM audit_events WHERE chain = $2 AND seq >= $3)";

/// The columns an event's insert fills, in the order of its parameters.
const COLUMNS: &str = "id, chain, seq, actor_id, credential, tenant_id, action, target, \
     before, after, request_id, client, policy_version, prev_hash";

/// The chain's lock and the database clock once the chain is ours (PostgreSQL; `$15` the lock).
const HELD: &str = "held AS MATERIALIZED \
     (SELECT pg_advisory_xact_lock($15) AS locked, clock_timestamp() AS now)";

/// The event's insert on PostgreSQL, given `held` (the chain's lock and the clock): its time is
/// the held clock, its hash computed in the database over `$16`, that time and `$17` (see
/// [`canonical_around_time`]). The head is checked in the statement's snapshot, taken before
/// any wait for the lock: an event appended meanwhile by the lock's holder is a conflict on
/// (chain, seq), which inserts nothing.
fn insert_on_postgres() -> String {
    format!(
        "INSERT INTO audit_events ({COLUMNS}, at, hash) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, held.now, \
           encode(sha256(convert_to($16::text \
             || to_char(held.now AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
             || $17::text, 'UTF8')), 'hex') \
         FROM held WHERE {STILL_HEAD} \
         ON CONFLICT (chain, seq) DO NOTHING RETURNING at, hash"
    )
}

/// `sql` with each parameter `$n` numbered `$n + offset`, to follow another statement's
/// parameters (the event's statements hold no other `$`).
fn shifted(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 32);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// What [`append`] made.
enum Appended {
    /// The event, and the change (the rows it affected; 0 without one).
    Both(u64),
    /// The change alone: the head was stale (PostgreSQL, where both parts run).
    ChangeOnly(u64),
    /// Nothing: the head was stale.
    Neither,
}

/// The error SQLite gives the event's insert when the head was stale.
const STALE_ON_SQLITE: &str = "NOT NULL constraint failed: audit_events.hash";

/// Inserts `model` after `head`, if that is still the chain's head, with `change` in the same
/// statement when there is one (see [`record_with`]); fills in the event's place, time and hash.
async fn append(
    txn: &DatabaseTransaction,
    model: &mut AuditEvent,
    head: &Head,
    change: Option<&Statement>,
) -> Result<Appended, DbErr> {
    let backend = txn.get_database_backend();
    model.seq = head.seq + 1;
    model.prev_hash = head.hash.clone();
    let (change_sql, mut values) = match change {
        Some(change) => (
            Some(change.sql.as_str()),
            change.values.clone().map(|v| v.0).unwrap_or_default(),
        ),
        None => (None, Vec::new()),
    };
    let offset = values.len();
    values.extend::<[sea_orm::Value; 14]>([
        model.id.into(),
        model.chain.clone().into(),
        model.seq.into(),
        model.actor_id.into(),
        model.credential.clone().into(),
        model.tenant_id.into(),
        model.action.clone().into(),
        model.target.clone().into(),
        model.before.clone().into(),
        model.after.clone().into(),
        model.request_id.clone().into(),
        model.client.clone().into(),
        model.policy_version.clone().into(),
        model.prev_hash.clone().into(),
    ]);
    if backend == DbBackend::Postgres {
        let (before_time, after_time) = canonical_around_time(model);
        values.push(lock_key(&model.chain).into());
        values.push(before_time.into());
        values.push(after_time.into());
        let sql = match change_sql {
            None => format!("WITH {HELD} {}", insert_on_postgres()),
            // The change first, then the chain's lock, as every other write takes its locks
            // (its rows, then the chain in `record`): `held` reads the change's count in its
            // `FROM`, so the change has run, and holds its rows, before the lock is asked for;
            // the other order would deadlock against a write that holds one of those rows and
            // waits for the chain.
            Some(change) => format!(
                "WITH changed AS ({change} RETURNING 1), \
                 held AS MATERIALIZED (SELECT pg_advisory_xact_lock(${}) AS locked, \
                   clock_timestamp() AS now, counted.n AS changed \
                   FROM (SELECT count(*) AS n FROM changed) AS counted), \
                 appended AS ({}) \
                 SELECT (SELECT changed FROM held) AS changed, \
                   (SELECT at FROM appended) AS at, (SELECT hash FROM appended) AS hash",
                15 + offset,
                shifted(&insert_on_postgres(), offset),
            ),
        };
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        let (changed, appended) = match (change_sql, row) {
            (None, None) => return Ok(Appended::Neither),
            (None, Some(row)) => (
                0,
                Some(row.try_get("", "at")?).zip(row.try_get("", "hash")?),
            ),
            (Some(_), None) => {
                return Err(DbErr::Custom("an audited change answered no row".into()));
            }
            (Some(_), Some(row)) => {
                let changed: i64 = row.try_get("", "changed")?;
                let at: Option<DateTime<Utc>> = row.try_get("", "at")?;
                let hash: Option<String> = row.try_get("", "hash")?;
                (u64::try_from(changed).unwrap_or(0), at.zip(hash))
            }
        };
        let Some((at, stored)) = appended else {
            return Ok(Appended::ChangeOnly(changed));
        };
        model.at = at;
        model.hash = hash_of(model);
        if stored != model.hash {
            return Err(DbErr::Custom(format!(
                "the database hashed audit event {} differently: refusing to append it",
                model.id
            )));
        }
        Ok(Appended::Both(changed))
    } else {
        // SQLite: the single writer serialises appends, and its clock is this machine's.
        model.at = Utc::now().trunc_subsecs(6);
        model.hash = hash_of(model);
        values.push(model.at.into());
        values.push(model.hash.clone().into());
        // The event first, its hash left empty (refused) on a stale head, so that a `change`
        // never runs without it; then the change, whose `?` parameters come first in `values`.
        let insert = format!(
            "INSERT INTO audit_events ({COLUMNS}, at, hash) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
               CASE WHEN {STILL_HEAD} THEN $16 END"
        );
        let sql = match change_sql {
            Some(change) => format!("{};\n{change}", shifted(&insert, offset)),
            None => insert,
        };
        match txn
            .execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
        {
            Ok(done) => Ok(Appended::Both(done.rows_affected().saturating_sub(1))),
            Err(err) if err.to_string().contains(STALE_ON_SQLITE) => Ok(Appended::Neither),
            Err(err) => Err(err),
        }
    }
}

/// The canonical text an event's hash covers, split around its time: the previous hash, a
/// newline and the JSON array up to the time's opening quote; and from its closing quote on.
fn canonical_around_time(event: &AuditEvent) -> (String, String) {
    let head = serde_json::json!([event.id.to_string(), event.chain, event.seq]).to_string();
    let tail = serde_json::json!([
        event.actor_id.map(|u| u.to_string()),
        event.credential,
        event.tenant_id.map(|t| t.to_string()),
        event.action,
        event.target,
        event.before,
        event.after,
        event.request_id,
        event.client,
        event.policy_version,
    ])
    .to_string();
    (
        format!(
            "{}\n{},\"",
            event.prev_hash,
            head.strip_suffix(']').unwrap_or(&head)
        ),
        format!("\",{}", tail.strip_prefix('[').unwrap_or(&tail)),
    )
}

/// The hash an event must carry: SHA-256 (hex) over its previous hash, a newline, and the JSON
/// array of its other columns in a fixed order (time as RFC 3339 in microseconds, UTC).
pub fn hash_of(event: &AuditEvent) -> String {
    let (before_time, after_time) = canonical_around_time(event);
    let mut hasher = Sha256::new();
    hasher.update(before_time.as_bytes());
    hasher.update(
        event
            .at
            .to_rfc3339_opts(SecondsFormat::Micros, true)
            .as_bytes(),
    );
    hasher.update(after_time.as_bytes());
    hex::encode(hasher.finalize())
}

/// What is wrong with the first bad event of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    /// Its content no longer matches its hash.
    Edited,
    /// Events before it are missing (its `seq` skips).
    Removed,
    /// It is not chained to the event before it: that one was edited (with its hash
    /// recomputed), removed, or the two were reordered.
    Unlinked,
    /// The chain starts at a checkpoint that the account chain's last intact `audit.archived`
    /// event for it does not record (or has no checkpoint where one was recorded): events were
    /// deleted, or the checkpoint written or moved, behind the service's back.
    Unvouched,
    /// Its place lies outside the chain: below 1, or within the range an archive deleted.
    Outside,
    /// The chain starts at a checkpoint that no intact account event records, because the
    /// account chain is broken before any record of it: see the account chain's flaw.
    Unrecorded,
}

impl std::fmt::Display for Flaw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flaw::Edited => "edited: its content does not match its hash",
            Flaw::Removed => "an event before it was removed: its sequence number skips",
            Flaw::Unlinked => {
                "not chained to the event before it: that event was edited, removed or reordered"
            }
            Flaw::Unvouched => {
                "the chain does not start where its last archive said: events before it were \
                 removed or its checkpoint was changed"
            }
            Flaw::Outside => {
                "inserted outside the chain: its place is below 1 or in the range an archive \
                 deleted"
            }
            Flaw::Unrecorded => {
                "its checkpoint is recorded by no intact account event: the account chain is \
                 broken before the record"
            }
        })
    }
}

/// The first bad event of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub chain: String,
    pub seq: i64,
    pub id: Uuid,
    pub flaw: Flaw,
}

/// A chain walked by [`verify`].
#[derive(Debug, Clone, Default)]
pub struct ChainReport {
    pub chain: String,
    pub events: u64,
    /// The last archived event's place (0: nothing archived); the walk starts after it.
    pub archived: i64,
    /// The account chain's event that records this chain's checkpoint, if one does.
    pub recorded_by: Option<i64>,
    /// The last event's hash: recorded elsewhere, it also proves later that no event was cut off
    /// the end.
    pub head: Option<String>,
    pub broken: Option<Broken>,
}

/// Events read per query while walking a chain.
const WALK_BATCH: u64 = 1000;

/// The checkpoints the account chain records: chain → (seq, hash, the recording event's seq)
/// of its latest `audit.archived` event for that chain before the account chain's first flaw.
type Vouchers = std::collections::BTreeMap<String, (i64, String, i64)>;

/// Whether `tenant` names a tenant, or a chain with events or a checkpoint (a tenant's trail
/// outlives it): what `--tenant` must name.
pub async fn chain_known(db: &impl ConnectionTrait, tenant: TenantId) -> Result<bool, DbErr> {
    if super::entities::tenant::Entity::find_by_id(tenant.0)
        .one(db)
        .await?
        .is_some()
    {
        return Ok(true);
    }
    let chain = chain_of(Some(tenant));
    let event = audit_event::Entity::find()
        .filter(audit_event::Column::Chain.eq(&chain))
        .one(db)
        .await?;
    Ok(event.is_some() || checkpoint(db, &chain).await?.is_some())
}

/// [`verify`] on one snapshot of the database (a read-only repeatable-read transaction on
/// PostgreSQL, one read transaction on SQLite), so that an archive committing meanwhile cannot
/// make an intact trail look cut.
pub async fn verify_snapshot(
    db: &DatabaseConnection,
    tenant: Option<TenantId>,
) -> Result<Vec<ChainReport>, DbErr> {
    let txn = match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(
                Some(sea_orm::IsolationLevel::RepeatableRead),
                Some(sea_orm::AccessMode::ReadOnly),
            )
            .await?
        }
        _ => db.begin().await?,
    };
    let reports = verify(&txn, tenant).await?;
    txn.commit().await?;
    Ok(reports)
}

/// Walks the chains (a tenant's, or every chain) and reports the first bad event of each. The
/// account chain is walked in every case: its intact `audit.archived` events say where each
/// archived chain must start; with a tenant, its report comes first when it is broken, since the
/// tenant's chain is only as sound as the chain that records its archives.
pub async fn verify(
    db: &impl ConnectionTrait,
    tenant: Option<TenantId>,
) -> Result<Vec<ChainReport>, DbErr> {
    let (mut account, vouchers) = walk(db, ACCOUNT_CHAIN.to_owned()).await?;
    let account_intact = account.report.broken.is_none();
    // The chains of the tenants that exist (only the one asked for, with a tenant).
    let tenants: std::collections::BTreeSet<String> = match tenant {
        Some(tenant) => super::entities::tenant::Entity::find_by_id(tenant.0)
            .one(db)
            .await?
            .map(|_| chain_of(Some(tenant)))
            .into_iter()
            .collect(),
        None => super::entities::tenant::Entity::find()
            .select_only()
            .column(super::entities::tenant::Column::Id)
            .into_tuple::<Uuid>()
            .all(db)
            .await?
            .into_iter()
            .map(|id| chain_of(Some(TenantId(id))))
            .collect(),
    };
    let chains = match tenant {
        Some(tenant) if account_intact => vec![chain_of(Some(tenant))],
        Some(tenant) => vec![ACCOUNT_CHAIN.to_owned(), chain_of(Some(tenant))],
        None => chains(db, &vouchers, &tenants).await?,
    };
    let mut reports = Vec::with_capacity(chains.len());
    for chain in chains {
        let mut walked = if chain == ACCOUNT_CHAIN {
            std::mem::take(&mut account)
        } else {
            walk(db, chain).await?.0
        };
        walked.of_tenant = tenants.contains(&walked.report.chain);
        settle(&mut walked, &vouchers, account_intact);
        reports.push(walked.report);
    }
    Ok(reports)
}

/// Every chain that has events, a checkpoint, an archive recorded for it, or a tenant, in order.
async fn chains(
    db: &impl ConnectionTrait,
    vouchers: &Vouchers,
    tenants: &std::collections::BTreeSet<String>,
) -> Result<Vec<String>, DbErr> {
    let mut chains = stored_chains(db).await?;
    let archived = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT chain FROM audit_checkpoints",
        ))
        .await?;
    for row in archived {
        chains.push(row.try_get("", "chain")?);
    }
    chains.extend(vouchers.keys().cloned());
    chains.extend(tenants.iter().cloned());
    chains.sort();
    chains.dedup();
    Ok(chains)
}

/// Where a chain starts after its oldest events were archived: the last archived event's place
/// and hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Checkpoint {
    seq: i64,
    hash: String,
}

/// One chain walked from its checkpoint: the report, the checkpoint, the first event seen.
#[derive(Debug, Clone, Default)]
struct Walked {
    report: ChainReport,
    /// The chain of a tenant that exists.
    of_tenant: bool,
    checkpoint: Option<Checkpoint>,
    first: Option<(i64, Uuid)>,
}

async fn checkpoint(db: &impl ConnectionTrait, chain: &str) -> Result<Option<Checkpoint>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT seq, hash FROM audit_checkpoints WHERE chain = $1",
            [chain.into()],
        ))
        .await?;
    row.map(|row| {
        Ok(Checkpoint {
            seq: row.try_get("", "seq")?,
            hash: row.try_get("", "hash")?,
        })
    })
    .transpose()
}

/// Walks one chain from its checkpoint (or from the start), naming its first bad event; also
/// returns the checkpoints its `audit.archived` events record, up to its first bad event.
async fn walk(db: &impl ConnectionTrait, chain: String) -> Result<(Walked, Vouchers), DbErr> {
    let checkpoint = checkpoint(db, &chain).await?;
    let archived = checkpoint.as_ref().map_or(0, |at| at.seq);
    let mut walked = Walked {
        report: ChainReport {
            chain: chain.clone(),
            archived,
            ..ChainReport::default()
        },
        checkpoint: checkpoint.clone(),
        of_tenant: false,
        first: None,
    };
    let mut vouchers = Vouchers::new();
    // A row at a place the walk never reads (below 1, or in the archived range) is an insert.
    let outside = stored(
        db,
        audit_event::Entity::find()
            .filter(audit_event::Column::Chain.eq(&chain))
            .filter(audit_event::Column::Seq.lte(archived))
            .order_by_asc(audit_event::Column::Seq)
            .limit(1),
    )
    .await?;
    let outside = outside.first().map(|row| Broken {
        chain: chain.clone(),
        seq: row.seq().unwrap_or(0),
        id: row.id(),
        flaw: Flaw::Outside,
    });
    // The walk reads only the places after the checkpoint: a row outside them does not stop it.
    let mut flawed: Option<Broken> = None;
    let mut last: Option<(i64, String)> = checkpoint.map(|at| (at.seq, at.hash));
    'walk: loop {
        let after = last.as_ref().map_or(0, |(seq, _)| *seq);
        let batch = stored(
            db,
            audit_event::Entity::find()
                .filter(audit_event::Column::Chain.eq(&chain))
                .filter(audit_event::Column::Seq.gt(after))
                .order_by_asc(audit_event::Column::Seq)
                .limit(WALK_BATCH),
        )
        .await?;
        let done = (batch.len() as u64) < WALK_BATCH;
        for row in batch {
            walked.report.events += 1;
            let event = match row {
                Stored::Event(event) => *event,
                Stored::Garbled { seq, id } => {
                    // Only an edit in the database stores a value of the wrong kind.
                    let expected = last.as_ref().map_or(1, |(seq, _)| seq + 1);
                    walked.first.get_or_insert((seq.unwrap_or(expected), id));
                    flawed.get_or_insert(Broken {
                        chain: chain.clone(),
                        seq: seq.unwrap_or(expected),
                        id,
                        flaw: Flaw::Edited,
                    });
                    match seq {
                        // Its hash is not to be trusted: the next event cannot link to it.
                        Some(seq) => {
                            last = Some((seq, String::new()));
                            continue;
                        }
                        // A place that is not a number sorts apart from the others: the
                        // order past it means nothing, and the walk ends on it.
                        None => {
                            last = None;
                            break 'walk;
                        }
                    }
                }
            };
            walked.first.get_or_insert((event.seq, event.id));
            if flawed.is_none() {
                let (expected_seq, expected_prev) = match &last {
                    Some((seq, hash)) => (seq + 1, hash.as_str()),
                    None => (1, GENESIS),
                };
                let flaw = if hash_of(&event) != event.hash {
                    Some(Flaw::Edited)
                } else if event.seq != expected_seq {
                    Some(Flaw::Removed)
                } else if event.prev_hash != expected_prev {
                    Some(Flaw::Unlinked)
                } else {
                    None
                };
                flawed = flaw.map(|flaw| Broken {
                    chain: chain.clone(),
                    seq: event.seq,
                    id: event.id,
                    flaw,
                });
                if flawed.is_none() && event.action == action::AUDIT_ARCHIVED {
                    let after = event
                        .after
                        .as_deref()
                        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok());
                    let target = event
                        .target
                        .as_deref()
                        .and_then(|t| t.strip_prefix("chain:"));
                    if let (Some(target), Some(after)) = (target, after)
                        && let (Some(seq), Some(hash)) =
                            (after["seq"].as_i64(), after["hash"].as_str())
                    {
                        vouchers.insert(target.to_owned(), (seq, hash.to_owned(), event.seq));
                    }
                }
            }
            last = Some((event.seq, event.hash));
        }
        if done {
            break;
        }
    }
    walked.report.broken = outside.or(flawed);
    walked.report.head = last.map(|(_, hash)| hash).filter(|hash| !hash.is_empty());
    Ok((walked, vouchers))
}

/// A row of `audit_events` as the walk reads it.
enum Stored {
    Event(Box<AuditEvent>),
    /// A row with a column that does not decode as its kind (SQLite keeps whatever an `UPDATE`
    /// puts in a column): what can be read of its place and id (the nil id when not that).
    Garbled {
        seq: Option<i64>,
        id: Uuid,
    },
}

impl Stored {
    fn seq(&self) -> Option<i64> {
        match self {
            Stored::Event(event) => Some(event.seq),
            Stored::Garbled { seq, .. } => *seq,
        }
    }

    fn id(&self) -> Uuid {
        match self {
            Stored::Event(event) => event.id,
            Stored::Garbled { id, .. } => *id,
        }
    }
}

/// The rows `select` reads, each decoded on its own, so that one tampered row is named by the
/// walk instead of failing it.
async fn stored(
    db: &impl ConnectionTrait,
    select: sea_orm::Select<audit_event::Entity>,
) -> Result<Vec<Stored>, DbErr> {
    use sea_orm::{FromQueryResult, QueryTrait};
    let rows = db
        .query_all_raw(select.build(db.get_database_backend()))
        .await?;
    Ok(rows
        .iter()
        .map(|row| match AuditEvent::from_query_result(row, "") {
            Ok(event) => Stored::Event(Box::new(event)),
            Err(_) => Stored::Garbled {
                seq: row.try_get("", "seq").ok(),
                id: row.try_get("", "id").unwrap_or(Uuid::nil()),
            },
        })
        .collect())
}

/// Holds a walked chain's start against what the account chain recorded for it.
fn settle(walked: &mut Walked, vouchers: &Vouchers, account_intact: bool) {
    let report = &mut walked.report;
    let vouched = vouchers.get(&report.chain);
    report.recorded_by = vouched.map(|(_, _, by)| *by);
    if matches!(&report.broken, Some(broken) if broken.flaw == Flaw::Outside) {
        return;
    }
    let start_flaw = match (&walked.checkpoint, vouched) {
        (None, None) => None,
        (Some(at), Some((seq, hash, _))) if at.seq == *seq && at.hash == *hash => None,
        // With the account chain broken its record may lie past the flaw: not this chain's fault.
        (Some(_), None) if !account_intact => Some(Flaw::Unrecorded),
        _ => Some(Flaw::Unvouched),
    };
    let start = vouched.map_or(0, |(seq, ..)| *seq).max(report.archived);
    if start_flaw == Some(Flaw::Unrecorded) && report.broken.is_some() {
        // A flaw of the chain's own says more than a missing record.
        return;
    }
    report.broken = match (start_flaw, walked.first) {
        // The start comes before any flaw the walk found after it.
        (Some(flaw), Some((seq, id))) => Some(Broken {
            chain: report.chain.clone(),
            seq,
            id,
            flaw,
        }),
        // An archive keeps a chain's last event: an archived chain with none lost its head,
        // and so did a tenant's chain with none (its first event is the tenant's creation).
        (_, None) if start > 0 || walked.of_tenant => Some(Broken {
            chain: report.chain.clone(),
            seq: start + 1,
            id: Uuid::nil(),
            flaw: Flaw::Removed,
        }),
        _ => report.broken.take(),
    };
}

/// One chain's archive: its events up to `seq` (whose hash is `hash`) are gone, `events` of them
/// by this archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    pub chain: String,
    pub seq: i64,
    pub hash: String,
    pub events: u64,
    /// The account chain's event that records this checkpoint.
    pub recorded_by: i64,
    /// An earlier checkpoint recorded again (the account chain was cut), nothing deleted.
    pub restated: bool,
}

/// Archives take turns (see [`super::take_turn`]), and on SQLite an archive holds the writer
/// from its first read, so that no write slips between its checks and its deletes.
async fn take_turn(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    super::take_turn(
        txn,
        5139283817264912002,
        "UPDATE audit_checkpoints SET seq = seq WHERE seq < 0",
    )
    .await
}

/// Archives the events older than `before` (of a tenant's chain, or of every chain) in one
/// transaction: in each chain the events after its checkpoint up to the last one appended
/// before `before` are deleted, never the chain's last event (the next append links to it), and
/// that event's place and hash become the chain's checkpoint, where `verify` starts it again.
/// Every chain is verified first, and any flaw refuses the whole archive, so an archive never
/// hides tampering. Each chain archived writes an `audit.archived` event on the account chain;
/// when the account chain itself is cut, every other checkpoint is restated by a new event, so
/// each checkpoint stays recorded on the chain that remains. Export the events first: this
/// deletes them.
pub async fn archive(
    db: &DatabaseConnection,
    before: DateTime<Utc>,
    tenant: Option<TenantId>,
    actor: &Actor,
) -> Result<Vec<Archived>, DbErr> {
    if before > Utc::now() {
        return Err(DbErr::Custom(format!(
            "the cut {before} is in the future: an archive takes only events already written"
        )));
    }
    let wanted = tenant.map(|tenant| chain_of(Some(tenant)));
    let txn = db.begin().await?;
    take_turn(&txn).await?;
    let backend = txn.get_database_backend();
    let reports = verify(&txn, None).await?;
    // The account chain (it records every archive) and the chains to cut must be intact.
    let concerned = |chain: &str| {
        chain == ACCOUNT_CHAIN || wanted.as_deref().is_none_or(|wanted| wanted == chain)
    };
    if let Some(broken) = reports
        .iter()
        .filter(|report| concerned(&report.chain))
        .find_map(|report| report.broken.as_ref())
    {
        return Err(DbErr::Custom(format!(
            "chain {} is broken at event {} (id {}): {}; refusing to archive (`zygo audit \
             verify` lists every chain)",
            broken.chain, broken.seq, broken.id, broken.flaw
        )));
    }
    let mut cuts = Vec::new();
    for report in &reports {
        if wanted.as_ref().is_some_and(|chain| *chain != report.chain) || report.events == 0 {
            continue;
        }
        // Below the head the walk verified: what was appended since stays, unchecked or not.
        let verified_head = report.archived + i64::try_from(report.events).unwrap_or(i64::MAX);
        let cut = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                "SELECT seq, hash FROM audit_events WHERE chain = $1 AND at < $2 AND seq < $3 \
                 ORDER BY seq DESC LIMIT 1",
                [
                    report.chain.clone().into(),
                    before.into(),
                    verified_head.into(),
                ],
            ))
            .await?;
        if let Some(row) = cut {
            let seq: i64 = row.try_get("", "seq")?;
            let hash: String = row.try_get("", "hash")?;
            if seq > report.archived {
                cuts.push((report.chain.clone(), report.archived, seq, hash));
            }
        }
    }
    // The deletes and checkpoints first, the events last: on PostgreSQL the first event takes
    // the account chain's lock, which logins wait for, until the commit.
    let mut archived = Vec::with_capacity(cuts.len());
    for (chain, _, seq, hash) in &cuts {
        let events = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "DELETE FROM audit_events WHERE chain = $1 AND seq <= $2",
                [chain.clone().into(), (*seq).into()],
            ))
            .await?
            .rows_affected();
        let moved = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO audit_checkpoints (chain, seq, hash) VALUES ($1, $2, $3) \
                 ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash \
                 WHERE audit_checkpoints.seq < excluded.seq",
                [chain.clone().into(), (*seq).into(), hash.clone().into()],
            ))
            .await?
            .rows_affected();
        if moved != 1 {
            return Err(DbErr::Custom(format!(
                "chain {chain}: its checkpoint moved past event {seq} meanwhile"
            )));
        }
        archived.push(Archived {
            chain: chain.clone(),
            seq: *seq,
            hash: hash.clone(),
            events,
            recorded_by: 0,
            restated: false,
        });
    }
    let older_than = before.to_rfc3339_opts(SecondsFormat::Micros, true);
    for (chain, from, seq, hash) in &cuts {
        let event = Event::new(
            None,
            actor,
            action::AUDIT_ARCHIVED,
            format!("chain:{chain}"),
        )
        .before(serde_json::json!({ "seq": from }))
        .after(serde_json::json!({
            "seq": seq,
            "hash": hash,
            "events": archived.iter().find(|a| a.chain == *chain).map_or(0, |a| a.events),
            "older_than": older_than,
        }));
        let by = record(&txn, event).await?;
        if let Some(done) = archived.iter_mut().find(|a| a.chain == *chain) {
            done.recorded_by = by;
        }
    }
    if cuts.iter().any(|(chain, ..)| chain == ACCOUNT_CHAIN) {
        for report in &reports {
            let restated = report.archived > 0 && !cuts.iter().any(|(c, ..)| *c == report.chain);
            if !restated {
                continue;
            }
            let Some(at) = checkpoint(&txn, &report.chain).await? else {
                continue;
            };
            let event = Event::new(
                None,
                actor,
                action::AUDIT_ARCHIVED,
                format!("chain:{}", report.chain),
            )
            .before(serde_json::json!({ "seq": at.seq }))
            .after(serde_json::json!({
                "seq": at.seq,
                "hash": at.hash,
                "events": 0,
                "restated": true,
            }));
            let by = record(&txn, event).await?;
            archived.push(Archived {
                chain: report.chain.clone(),
                seq: at.seq,
                hash: at.hash,
                events: 0,
                recorded_by: by,
                restated: true,
            });
        }
    }
    txn.commit().await?;
    Ok(archived)
}

/// Whose events to list: a tenant's chain, or a user's own events on the account chain.
#[derive(Debug, Clone, Copy)]
pub enum Trail {
    Tenant(TenantId),
    /// The account chain's events where the user is the actor or the target.
    Own(UserId),
}

/// Which of a trail's events to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub actor: Option<UserId>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// `at` as a bound on stored times that selects what it says. SQLite keeps times as text and
/// compares them as text; a year past 9999 is written `+10000-…`, which sorts before every
/// stored time, so a bound that late would select as if it were the earliest. No event is
/// stored that late: the last instant of 9999 selects the same events and sorts right.
fn comparable(at: DateTime<Utc>) -> DateTime<Utc> {
    let last = chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|day| day.and_hms_micro_opt(23, 59, 59, 999_999))
        .map(|last| last.and_utc());
    match last {
        Some(last) if at > last => last,
        _ => at,
    }
}

/// A page of a trail's events, newest first: its chain read backwards along the `(chain, seq)`
/// key from the head (or from the page's cursor), the filters checked on the way, until the page
/// is full or the page's window of places is read (no index serves the filters: one would cost
/// every write, BENCHMARKS.md, the audit trail's cost). A page that a filter leaves short says
/// where to go on, so that no request reads a whole chain; a time window that holds no instant
/// is an empty last page at once.
pub async fn list(
    db: &impl ConnectionTrait,
    trail: Trail,
    filter: &Filter,
    page: ChainPage,
) -> Result<Rows<AuditEvent, i64>, DbErr> {
    let empty = Rows {
        items: Vec::new(),
        next: None,
    };
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && until <= since
    {
        return Ok(empty);
    }
    let chain = match trail {
        Trail::Tenant(tenant) => chain_of(Some(tenant)),
        Trail::Own(_) => ACCOUNT_CHAIN.to_owned(),
    };
    let (top, floor, lowest) = match ends(db, &chain).await? {
        Ends::Empty => return Ok(empty),
        Ends::Known(lowest, highest) => {
            let top = page
                .before
                .map_or(highest + 1, |before| before.min(highest + 1));
            (
                top,
                top.saturating_sub(page.window.max(1)).max(lowest),
                lowest,
            )
        }
        // A place edited into something that is not a number (SQLite keeps whatever it is
        // given; `verify` names it): no window to page by, the chain is read as it is.
        Ends::Unreadable => (page.before.unwrap_or(i64::MAX), i64::MIN, i64::MIN),
    };
    let mut select = audit_event::Entity::find()
        .filter(audit_event::Column::Chain.eq(chain))
        .filter(audit_event::Column::Seq.lt(top))
        .filter(audit_event::Column::Seq.gte(floor));
    if let Trail::Own(user) = trail {
        select = select.filter(
            Condition::any()
                .add(audit_event::Column::ActorId.eq(user.0))
                .add(audit_event::Column::Target.eq(format!("user:{}", user.0))),
        );
    }
    if let Some(action) = &filter.action {
        select = select.filter(audit_event::Column::Action.eq(action.as_str()));
    }
    if let Some(actor) = filter.actor {
        select = select.filter(audit_event::Column::ActorId.eq(actor.0));
    }
    if let Some(since) = filter.since {
        select = select.filter(audit_event::Column::At.gte(comparable(since)));
    }
    if let Some(until) = filter.until {
        select = select.filter(audit_event::Column::At.lt(comparable(until)));
    }
    let rows = select
        .order_by_desc(audit_event::Column::Seq)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(page.collect(rows, |e| e.seq, floor, lowest))
}

/// The places a chain holds, as [`ends`] reads them.
enum Ends {
    Empty,
    /// The first and the last.
    Known(i64, i64),
    /// One end is not a number.
    Unreadable,
}

/// The first and last places a chain holds, read at the two ends of its key.
async fn ends(db: &impl ConnectionTrait, chain: &str) -> Result<Ends, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT min(seq) AS lowest, max(seq) AS highest FROM audit_events WHERE chain = $1",
            [chain.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(Ends::Empty);
    };
    let lowest = row.try_get::<Option<i64>>("", "lowest");
    let highest = row.try_get::<Option<i64>>("", "highest");
    Ok(match (lowest, highest) {
        (Ok(Some(lowest)), Ok(Some(highest))) => Ends::Known(lowest, highest),
        (Ok(None), Ok(None)) => Ends::Empty,
        _ => Ends::Unreadable,
    })
}

/// The chains that hold events, in order (`account`, then `tenant:<id>` by id).
pub async fn stored_chains(db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT DISTINCT chain FROM audit_events ORDER BY chain",
        ))
        .await?;
    // A chain name edited into something that is not text names no chain: the events it took
    // away are missing from the chain they were in.
    Ok(rows
        .iter()
        .filter_map(|row| row.try_get("", "chain").ok())
        .collect())
}

/// A batch of `chain`'s events at or after `since`, oldest first (in `seq` order), after the
/// place `after`: the export reads each chain a batch at a time.
pub async fn since(
    db: &impl ConnectionTrait,
    chain: &str,
    since: DateTime<Utc>,
    after: i64,
    limit: u64,
) -> Result<Rows<AuditEvent, i64>, DbErr> {
    let rows = audit_event::Entity::find()
        .filter(audit_event::Column::Chain.eq(chain))
        .filter(audit_event::Column::Seq.gt(after))
        .filter(audit_event::Column::At.gte(comparable(since)))
        .order_by_asc(audit_event::Column::Seq)
        .limit(limit + 1)
        .all(db)
        .await?;
    Ok(cut(limit, rows, |e| e.seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_renumbers_every_parameter_and_nothing_else() {
        assert_eq!(shifted("$1, $2 = $14", 0), "$1, $2 = $14");
        assert_eq!(shifted("$1, $2 = $14", 3), "$4, $5 = $17");
        assert_eq!(shifted("a $ b $1x", 10), "a $ b $11x");
        // Every parameter of the event's statements moves, none is left behind.
        let sql = shifted(&insert_on_postgres(), 5);
        for n in 1..=5 {
            assert!(!sql.contains(&format!("${n},")), "{sql}");
        }
        assert!(sql.contains("$22::text") && sql.contains("$19"), "{sql}");
    }
}
