//! Cross-instance cache invalidation.
//!
//! Each process caches roles and user statuses (see [`crate::cache`]). A change made through this
//! process forgets its own entry at once; other processes learn of it here. On PostgreSQL every
//! change is followed, after its commit, by `NOTIFY zygo_invalidate, '<key>'`, and every server
//! keeps one `LISTEN` connection that forgets the named entry as soon as the signal arrives. The
//! listener reconnects by itself; on every (re)connect it drops both caches whole, since signals sent
//! while it was away are lost. The cache TTL stays the bound if a signal is lost anyway.
//!
//! On SQLite there is one server process per database; the admin CLI's changes reach it within
//! the TTL.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio::sync::watch;
use uuid::Uuid;

use crate::auth::Authn;
use crate::authz::Authz;
use crate::store::{TenantId, UserId};

/// The PostgreSQL channel the signals travel on.
pub const CHANNEL: &str = "zygo_invalidate";

/// How long the listener waits before connecting again after losing the database.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// A cache entry that a change made stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A user's role in a tenant (membership added, changed or removed).
    Role(UserId, TenantId),
    /// A user's status (disabled, enabled, deleted, credentials ended).
    User(UserId),
    /// A token family was revoked.
    Family(Uuid),
    /// A policy version was published or rolled back to: instances that take their policies
    /// from the database look the active version up now.
    Policies,
}

impl Key {
    /// The NOTIFY payload: `role <user> <tenant>` or `user <user>`.
    pub fn payload(self) -> String {
        match self {
            Key::Role(user, tenant) => format!("role {user} {tenant}"),
            Key::User(user) => format!("user {user}"),
            Key::Family(family) => format!("family {family}"),
            Key::Policies => "policies".to_owned(),
        }
    }

    pub fn parse(payload: &str) -> Option<Key> {
        let mut words = payload.split(' ');
        let key = match (words.next()?, words.next(), words.next()) {
            ("role", Some(user), Some(tenant)) => Key::Role(
                UserId(Uuid::parse_str(user).ok()?),
                TenantId(Uuid::parse_str(tenant).ok()?),
            ),
            ("user", Some(user), None) => Key::User(UserId(Uuid::parse_str(user).ok()?)),
            ("family", Some(family), None) => Key::Family(Uuid::parse_str(family).ok()?),
            ("policies", None, None) => Key::Policies,
            _ => return None,
        };
        words.next().is_none().then_some(key)
    }
}

/// Tells every other process on the database that these entries changed. Call after the change
/// committed. A no-op on SQLite (there the TTL bounds other processes).
pub async fn publish(db: &DatabaseConnection, keys: &[Key]) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for key in keys {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), key.payload().into()],
        ))
        .await?;
    }
    Ok(())
}

/// The caches a change can make stale (roles in `authz`, user statuses and revocations in
/// `authn`), and the database whose other instances are told.
pub struct Caches {
    db: DatabaseConnection,
    authn: Arc<Authn>,
    authz: Arc<Authz>,
}

impl Caches {
    pub fn new(db: DatabaseConnection, authn: Arc<Authn>, authz: Arc<Authz>) -> Self {
        Caches { db, authn, authz }
    }

    /// Records that this process changed what `key` names: forgets the local entry at once and
    /// signals the other processes. A lost signal is logged, not returned: the change itself has
    /// committed, and the other processes' TTL still bounds how stale they get.
    pub async fn changed(&self, key: Key) {
        self.forget(key).await;
        if let Err(err) = publish(&self.db, &[key]).await {
            tracing::warn!(%err, key = %key.payload(), "cannot signal a cache invalidation to other instances");
        }
    }

    /// [`Caches::changed`] when the change succeeded; when it failed, only forgets the local entry
    /// (nothing changed for the others to hear about). Passes the result through.
    pub async fn after_change<T, E>(&self, key: Key, result: Result<T, E>) -> Result<T, E> {
        if result.is_ok() {
            self.changed(key).await;
        } else {
            self.forget(key).await;
        }
        result
    }

    /// Forgets one cached entry of this process.
    pub async fn forget(&self, key: Key) {
        match key {
            Key::Role(user, tenant) => self.authz.forget_role(user, tenant).await,
            Key::User(user) => self.authn.forget_user(user).await,
            Key::Family(family) => self.authn.forget_family(&family.to_string()).await,
            Key::Policies => self.refresh_policies().await,
        }
    }

    /// Revokes token families (stored, forgotten here, signalled to the other processes).
    pub async fn revoke_families(
        &self,
        user: UserId,
        families: &[String],
        actor: &crate::store::audit::Actor,
    ) -> crate::error::ApiResult<()> {
        self.authn.revoke_families(user, families, actor).await?;
        for family in families {
            // Families are minted as UUIDs; anything else was never recorded, so never cached.
            if let Ok(family) = Uuid::parse_str(family) {
                self.changed(Key::Family(family)).await;
            }
        }
        Ok(())
    }

    /// Ends every session and every token of the user issued until now (see
    /// [`crate::store::users::end_credentials`]): a constant number of statements, however many
    /// there are; forgotten here and signalled to the other processes.
    pub async fn end_everything(
        &self,
        user: UserId,
        actor: &crate::store::audit::Actor,
    ) -> crate::error::ApiResult<()> {
        use crate::store::audit::{self, Event, action};
        let txn = sea_orm::TransactionTrait::begin(&self.db).await?;
        crate::store::users::end_credentials(&txn, user).await?;
        let event = Event::new(
            None,
            actor,
            action::LOGGED_OUT_EVERYWHERE,
            format!("user:{}", user.0),
        );
        audit::record(&txn, event).await?;
        txn.commit().await?;
        self.changed(Key::User(user)).await;
        Ok(())
    }

    /// Forgets every cached role and user status of this process (and, with the policies in the
    /// database, looks the active version up: a publish may have been missed).
    pub async fn forget_all(&self) {
        self.authz.forget_all_roles().await;
        self.authn.forget_all_users().await;
        self.authn.forget_all_families().await;
        self.refresh_policies().await;
    }

    /// With the policies in the database: serves the active version now if it changed.
    async fn refresh_policies(&self) {
        if let Err(err) = self.authz.policy_store().refresh().await {
            tracing::warn!("{err}");
        }
    }
}

/// Keeps the listener running while it lives.
pub struct Stop {
    _sender: watch::Sender<()>,
}

/// On PostgreSQL, starts the task that feeds other processes' signals into the caches. It stops
/// when the returned [`Stop`] is dropped (the application state holds it) or the caches are gone.
pub fn spawn_listener(db: &DatabaseConnection, state: Weak<Caches>) -> Option<Stop> {
    if db.get_database_backend() != DbBackend::Postgres {
        return None;
    }
    let pool = db.get_postgres_connection_pool();
    let timeout = pool.options().get_acquire_timeout();
    // A pool of its own, so the long-lived LISTEN connection never takes one from the requests.
    let listen_pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(timeout)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with((*pool.connect_options()).clone());
    let (stop, mut stopped) = watch::channel(());
    tokio::spawn(async move {
        tokio::select! {
            _ = listen(listen_pool, state) => {}
            _ = stopped.changed() => {}
        }
    });
    Some(Stop { _sender: stop })
}

async fn listen(pool: sea_orm::sqlx::PgPool, state: Weak<Caches>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                listener.ignore_pool_close_event(true);
                match listener.listen(CHANNEL).await {
                    Ok(()) => {
                        if !receive(&mut listener, &state).await {
                            return;
                        }
                    }
                    Err(err) => tracing::warn!(%err, "cannot LISTEN for cache invalidations"),
                }
            }
            Err(err) => tracing::warn!(%err, "cannot connect to LISTEN for cache invalidations"),
        }
        if state.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// Applies signals until the connection fails (true: connect again) or the state is gone (false).
async fn receive(listener: &mut PgListener, state: &Weak<Caches>) -> bool {
    // Signals sent while this process was not listening are lost: start from empty caches.
    match state.upgrade() {
        Some(state) => state.forget_all().await,
        None => return false,
    }
    tracing::debug!("listening for cache invalidations");
    loop {
        let received = listener.try_recv().await;
        let Some(state) = state.upgrade() else {
            return false;
        };
        match received {
            Ok(Some(notification)) => match Key::parse(notification.payload()) {
                Some(key) => state.forget(key).await,
                None => tracing::warn!(
                    payload = notification.payload(),
                    "ignoring an unknown cache invalidation"
                ),
            },
            // The connection dropped and was re-established: anything sent meanwhile is lost.
            Ok(None) => state.forget_all().await,
            Err(err) => {
                tracing::warn!(%err, "lost the cache invalidation listener; reconnecting");
                state.forget_all().await;
                return true;
            }
        }
    }
}
