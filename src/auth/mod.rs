//! Who is calling: API tokens, browser sessions, and the [`Caller`] they resolve to. The HTTP
//! layer turns a request into a `Caller` (`api::caller`), which every guarded operation takes as
//! a parameter, so the requirement shows in its signature and in the spec.

pub mod csrf;
pub mod mint_rate;
pub mod password;
pub mod session;
pub mod throttle;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use poem::Request;
use poem::http::header;
use poem::web::cookie::CookieJar;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use crate::authz::{AuthContext, AuthMethod, Principal};
use crate::cache::ConsistentCache;
use crate::config::Settings;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::store::{self, TenantId, UserId};

pub use session::SESSION_COOKIE;
pub use token::TokenKeys;

/// Header carrying an API token.
pub const TOKEN_HEADER: &str = "token";

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A browser session: the hash of its id and the tenant it has selected.
    Session {
        id_hash: String,
        current_tenant: Option<TenantId>,
        /// When the session started (a kill switch ends the sessions started before it).
        created_at: chrono::DateTime<chrono::Utc>,
    },
    /// An API token, with its family (revocation works on families) and whether it is read-only.
    Token {
        jti: String,
        family: String,
        read_only: bool,
        /// The token's `iat` (seconds since the epoch).
        issued_at: i64,
        /// The token's `exp` (seconds since the epoch): a token minted from it expires no later.
        expires_at: i64,
    },
}

/// Verified tokens remembered at most (see [`Authn::from_token`]).
const VERIFIED_TOKENS: u64 = 10_000;

/// How long a verified token is remembered before it is verified again.
const VERIFIED_FOR: Duration = Duration::from_secs(60);

/// What every request checks about its user, besides the credential itself: the account exists
/// and is enabled, and since when its credentials count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Sessions created and tokens issued before this instant are refused (the kill switches:
    /// log out everywhere, a password change, disabling the account).
    pub credentials_valid_after: Option<chrono::DateTime<chrono::Utc>>,
}

impl Standing {
    /// Whether a session created at `created_at` still counts.
    pub fn admits_session(&self, created_at: chrono::DateTime<chrono::Utc>) -> bool {
        self.credentials_valid_after
            .is_none_or(|after| created_at >= after)
    }

    /// The first whole second whose tokens count: a token's `iat` has whole seconds only, so a
    /// token issued in the same second as a kill switch is ended too (it could have come
    /// before it).
    pub fn first_token_second(&self) -> Option<i64> {
        self.credentials_valid_after.map(|after| {
            let seconds = after.timestamp();
            if after.timestamp_subsec_nanos() > 0 {
                seconds.saturating_add(1)
            } else {
                seconds
            }
        })
    }

    /// Whether a token issued at `iat` (seconds since the epoch) still counts.
    pub fn admits_token(&self, iat: i64) -> bool {
        self.first_token_second().is_none_or(|first| iat >= first)
    }
}

/// A token that verified, and its user.
struct Verified {
    user: UserId,
    claims: token::Claims,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: UserId,
    pub via: Via,
}

impl Caller {
    /// Sessions are confined to their current tenant; tokens may name any tenant.
    pub fn may_address(&self, tenant: TenantId) -> bool {
        match &self.via {
            Via::Session { current_tenant, .. } => *current_tenant == Some(tenant),
            Via::Token { .. } => true,
        }
    }

    /// How the caller authenticated, for the policies' `context.auth`.
    pub fn auth(&self) -> AuthContext {
        match &self.via {
            Via::Session { .. } => AuthContext::SESSION,
            Via::Token { read_only, .. } => AuthContext {
                method: AuthMethod::Token,
                read_only: *read_only,
            },
        }
    }

    /// The caller as an audit event names it: the user and the credential, never its secret (a
    /// token's `jti`; the first 16 hex digits of the hash of the session id).
    pub fn actor(&self) -> store::audit::Actor {
        let credential = match &self.via {
            Via::Session { id_hash, .. } => {
                format!("session:{}", id_hash.get(..16).unwrap_or(id_hash))
            }
            Via::Token { jti, .. } => format!("token:{jti}"),
        };
        store::audit::Actor {
            user: Some(self.user_id),
            credential: Some(credential),
        }
    }

    /// The session's current tenant (`None` for tokens).
    pub fn current_tenant(&self) -> Option<TenantId> {
        match &self.via {
            Via::Session { current_tenant, .. } => *current_tenant,
            Via::Token { .. } => None,
        }
    }
}

impl Principal for Caller {
    fn user(&self) -> UserId {
        self.user_id
    }

    fn auth(&self) -> AuthContext {
        Caller::auth(self)
    }

    fn may_address(&self, tenant: TenantId) -> bool {
        Caller::may_address(self, tenant)
    }
}

/// What a caller asks of a new token.
#[derive(Debug, Clone, Copy)]
pub struct MintRequest<'a> {
    /// Lifetime in seconds (already checked against the maximum).
    pub seconds: u64,
    /// A name to tell the token apart in `GET /api/tokens`.
    pub name: Option<&'a str>,
    /// Whether the token may only read (a claim, checked by the policies).
    pub read_only: bool,
}

/// Authentication state: the token key, the user-status cache and session settings.
pub struct Authn {
    pub keys: TokenKeys,
    db: DatabaseConnection,
    /// Read connections for the lookups every request makes (see `store::reads`).
    reads: store::reads::Reads,
    /// A user's [`Standing`] (`None`: no such user, or disabled); a request costs no query
    /// when warm.
    active_users: ConsistentCache<UserId, Option<Standing>>,
    /// Whether a token family is revoked, checked on every token request (see `cache_ttl` for
    /// revocations made by another process).
    revoked_families: ConsistentCache<String, bool>,
    /// Tokens whose signature, header and claims checked out, by their exact text, so a token
    /// is verified once rather than on every request (see [`Authn::from_token`]).
    verified: moka::sync::Cache<Box<str>, Arc<Verified>>,
    pub session_lifetime: Duration,
    pub session_idle: Duration,
    pub secure_cookies: bool,
    pub max_token_seconds: u64,
    /// Most live tokens a user may hold (`ZYGO_MAX_LIVE_TOKENS`).
    max_live_tokens: u64,
    /// How fast one user may mint tokens here (`ZYGO_TOKEN_MINTS_PER_MINUTE`).
    mint_rate: mint_rate::MintRate,
    /// `ZYGO_PUBLIC_URL`: when set, the one origin browsers may send state-changing requests from.
    public_url: Option<String>,
    /// Failed-login counters (429 with `Retry-After`).
    pub throttle: throttle::LoginThrottle,
    metrics: Arc<Metrics>,
}

impl Authn {
    pub fn new(
        keys: TokenKeys,
        db: DatabaseConnection,
        reads: store::reads::Reads,
        settings: &Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let throttle = throttle::LoginThrottle::new(settings, &db, metrics.clone());
        Authn {
            keys,
            db,
            reads,
            active_users: ConsistentCache::new(100_000, settings.cache_ttl),
            revoked_families: ConsistentCache::new(100_000, settings.cache_ttl),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_TOKENS)
                .time_to_live(VERIFIED_FOR)
                .build(),
            session_lifetime: settings.session_lifetime,
            session_idle: settings.session_idle,
            secure_cookies: settings.secure_cookies(),
            max_token_seconds: settings.max_token_seconds,
            max_live_tokens: settings.max_live_tokens,
            mint_rate: mint_rate::MintRate::new(settings.token_mints_per_minute),
            public_url: settings.public_url.clone(),
            throttle,
            metrics,
        }
    }

    /// Refuses a cookie-authenticated (or cookie-starting) state-changing request that a browser
    /// says comes from another site.
    pub fn check_same_origin(&self, req: &Request) -> ApiResult<()> {
        if csrf::is_state_changing(req.method())
            && csrf::is_cross_site(req, self.public_url.as_deref())
        {
            return Err(ApiError::CrossSiteRequest);
        }
        Ok(())
    }

    /// The user's standing (cached): `None` when the user does not exist or is disabled.
    pub async fn standing(&self, user: UserId) -> ApiResult<Option<Standing>> {
        self.active_users
            .get_or_load(user, async {
                store::users::find(&self.reads.pool, user).await.map(|u| {
                    u.filter(|u| !u.disabled).map(|u| Standing {
                        credentials_valid_after: u.credentials_valid_after,
                    })
                })
            })
            .await
            .map_err(ApiError::from)
    }

    /// Revokes token families in the database and forgets them here; other processes hear of it
    /// through [`crate::startup::AppState::revoke_families`] (or within the cache TTL).
    pub async fn revoke_families(
        &self,
        user: UserId,
        families: &[String],
        actor: &store::audit::Actor,
    ) -> ApiResult<()> {
        use store::audit::{Event, action};
        let txn = sea_orm::TransactionTrait::begin(&self.db).await?;
        store::tokens::revoke(&txn, user, families).await?;
        for family in families {
            let event = Event::new(
                None,
                actor,
                action::TOKEN_REVOKED,
                format!("family:{family}"),
            )
            .after(serde_json::json!({ "user": user.0 }));
            store::audit::record(&txn, event).await?;
        }
        txn.commit().await?;
        self.metrics.tokens_revoked(families.len());
        for family in families {
            self.revoked_families.invalidate(family).await;
        }
        Ok(())
    }

    /// Whether the token family is revoked (cached).
    pub async fn is_revoked(&self, family: &str) -> ApiResult<bool> {
        self.revoked_families
            .get_or_load(family.to_owned(), async {
                store::tokens::is_revoked(&self.reads.pool, family).await
            })
            .await
            .map_err(ApiError::from)
    }

    /// Mints and records a token: a new family from a session, the caller's family from a token.
    /// Returns the token and its lifetime in seconds.
    ///
    /// A token never outlives the token it is minted from (its lifetime is cut to the parent's
    /// remaining one). Refused: a user minting faster than the configured rate (429), or holding
    /// the most live tokens allowed (409). Whether the caller may mint this token at all (a
    /// read-only token asking for a writing one) is the policies' decision, taken before.
    pub async fn mint(
        &self,
        caller: &Caller,
        request: MintRequest<'_>,
    ) -> ApiResult<(String, u64)> {
        let user = caller.user_id;
        self.mint_rate.take(user)?;
        let standing = self
            .standing(user)
            .await?
            .ok_or(ApiError::InvalidCredentials)?;
        // A token issued in the second of a kill switch counts as issued before it (tokens carry
        // whole seconds): a caller that is valid after the switch waits for the next second.
        if let Some(first) = standing.first_token_second() {
            let wait_ms = first
                .saturating_mul(1000)
                .saturating_sub(chrono::Utc::now().timestamp_millis());
            if wait_ms > 0 {
                tokio::time::sleep(Duration::from_millis(wait_ms.unsigned_abs())).await;
            }
        }
        let now = chrono::Utc::now().timestamp();
        let (family, seconds) = match &caller.via {
            Via::Token {
                family, expires_at, ..
            } => {
                let left = u64::try_from(expires_at.saturating_sub(now)).unwrap_or(0);
                if left == 0 {
                    return Err(ApiError::TokenExpired);
                }
                (Some(family.as_str()), request.seconds.min(left))
            }
            Via::Session { .. } => (None, request.seconds),
        };
        let issued_from = standing
            .first_token_second()
            .and_then(|second| chrono::DateTime::from_timestamp(second, 0));
        let (token, claims) = self
            .keys
            .mint_at(user, now, seconds, family, request.read_only)?;
        let at = |seconds: i64| {
            chrono::DateTime::from_timestamp(seconds, 0)
                .ok_or_else(|| ApiError::Internal("token time out of range".into()))
        };
        // The bound holds across instances: one user's mints are counted one at a time (the
        // user's row lock on PostgreSQL, the database's write lock on SQLite, both taken before
        // the count), each seeing every mint before it. The count comes before the token's
        // insert, which is the last statement and carries the event: a refused mint writes
        // nothing, and the audit chain's lock is held only from that statement to the commit.
        let txn = sea_orm::TransactionTrait::begin(&self.db).await?;
        store::users::lock_for_counting(&txn, user).await?;
        if store::tokens::count_live(&txn, user, issued_from).await? >= self.max_live_tokens {
            txn.rollback().await?;
            return Err(ApiError::TokenLimit {
                limit: self.max_live_tokens,
            });
        }
        // What was asked for and given, never the token itself; recorded with the token's row.
        let event = store::audit::Event::new(
            None,
            &caller.actor(),
            store::audit::action::TOKEN_MINTED,
            format!("token:{}", claims.jti),
        )
        .after(serde_json::json!({
            "name": request.name,
            "read_only": request.read_only,
            "lifetime_seconds": seconds,
            "family": claims.fam,
        }));
        let minted = store::tokens::insert(
            txn.get_database_backend(),
            store::tokens::NewToken {
                jti: &claims.jti,
                user,
                family: &claims.fam,
                issued_at: at(claims.iat)?,
                expires_at: at(claims.exp)?,
                name: request.name,
                read_only: request.read_only,
            },
        );
        store::audit::record_with(&txn, event, minted).await?;
        txn.commit().await?;
        // A kill switch (log out everywhere, a password change, disabling) that committed after
        // the caller was authenticated must not leave this token alive: check the caller's
        // credential once more against the stored user, past the cache.
        if !self.still_valid(caller).await? {
            self.revoke_families(user, std::slice::from_ref(&claims.fam), &caller.actor())
                .await?;
            return Err(match caller.via {
                Via::Session { .. } => ApiError::SessionInvalid,
                Via::Token { .. } => ApiError::TokenRevoked,
            });
        }
        self.metrics.token_minted(family.is_none());
        Ok((token, seconds))
    }

    /// Whether the caller's credential is still valid as stored now (not as cached).
    async fn still_valid(&self, caller: &Caller) -> ApiResult<bool> {
        let Some(stored) = store::users::find_settled(&self.db, caller.user_id).await? else {
            return Ok(false);
        };
        let standing = Standing {
            credentials_valid_after: stored.credentials_valid_after,
        };
        Ok(!stored.disabled
            && match &caller.via {
                Via::Session {
                    id_hash,
                    created_at,
                    ..
                } => {
                    standing.admits_session(*created_at)
                        && store::sessions::find(&self.db, id_hash).await?.is_some()
                }
                Via::Token { issued_at, .. } => standing.admits_token(*issued_at),
            })
    }

    /// The user's live tokens, a page at a time (those a kill switch ended are not listed).
    pub async fn live_tokens(
        &self,
        user: UserId,
        page: store::page::Keyset,
    ) -> ApiResult<store::page::Rows<store::tokens::IssuedToken>> {
        let issued_from = self
            .standing(user)
            .await?
            .and_then(|standing| standing.first_token_second())
            .and_then(|second| chrono::DateTime::from_timestamp(second, 0));
        Ok(store::tokens::list_live(&self.db, user, issued_from, page).await?)
    }

    /// Forgets the cached status after this process disables or deletes a user.
    pub async fn forget_user(&self, user: UserId) {
        self.active_users.invalidate(&user).await;
    }

    /// Forgets whether a token family is revoked (another process revoked it).
    pub async fn forget_family(&self, family: &str) {
        self.revoked_families.invalidate(&family.to_owned()).await;
    }

    /// Forgets every cached revocation status.
    pub async fn forget_all_families(&self) {
        self.revoked_families.invalidate_all().await;
    }

    /// Forgets every cached user status (the invalidation listener lost signals while reconnecting).
    pub async fn forget_all_users(&self) {
        self.active_users.invalidate_all().await;
    }

    /// Authenticates a token: signature, algorithm, key, expiry, then the user's status.
    ///
    /// A token's text fixes everything the verification looks at except the clock, and the keys
    /// only change with a restart; so a token that verified is remembered by its exact text (a
    /// bounded set, each for at most [`VERIFIED_FOR`]) and on later requests only its expiry is
    /// checked again, to the second as before. Only tokens that verified are remembered. The
    /// user's status and the family's revocation are checked on every request either way.
    pub async fn from_token(&self, token: &str) -> ApiResult<Caller> {
        let now = chrono::Utc::now().timestamp();
        let verified = match self.verified.get(token) {
            Some(verified) => verified,
            None => {
                let claims = self.keys.verify_at(token, now)?;
                let user = Uuid::parse_str(&claims.sub)
                    .map(UserId)
                    .map_err(|_| ApiError::InvalidCredentials)?;
                let verified = Arc::new(Verified { user, claims });
                self.verified.insert(token.into(), verified.clone());
                verified
            }
        };
        let (user, claims) = (verified.user, &verified.claims);
        // RFC 7519: the token is valid strictly before `exp`; no leeway.
        if claims.exp <= now {
            return Err(ApiError::TokenExpired);
        }
        let Some(standing) = self.standing(user).await? else {
            return Err(ApiError::InvalidCredentials);
        };
        // Ended by a kill switch, or its family revoked.
        if !standing.admits_token(claims.iat) || self.is_revoked(&claims.fam).await? {
            return Err(ApiError::TokenRevoked);
        }
        Ok(Caller {
            user_id: user,
            via: Via::Token {
                jti: claims.jti.clone(),
                family: claims.fam.clone(),
                read_only: claims.ro,
                issued_at: claims.iat,
                expires_at: claims.exp,
            },
        })
    }

    /// Starts a fresh session (never one the client proposed) and returns its cookie value and the
    /// stored session.
    pub async fn start_session(
        &self,
        db: &impl ConnectionTrait,
        user: UserId,
        tenant: Option<TenantId>,
    ) -> ApiResult<(String, store::sessions::Session)> {
        let id = session::new_id();
        let lifetime = chrono::Duration::from_std(self.session_lifetime)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let session = store::sessions::create(
            db,
            session::hash_id(&id),
            user,
            tenant,
            chrono::Utc::now() + lifetime,
        )
        .await?;
        Ok((id, session))
    }

    /// Resolves a session cookie into a caller; unknown, expired (absolute lifetime or idle timeout)
    /// or disabled-user sessions are a 401. A database that cannot be read is a 503, never a pass.
    pub async fn from_session(&self, id: &str) -> ApiResult<Caller> {
        let (db, reads) = (&self.db, &self.reads);
        let id_hash = session::hash_id(id);
        let session = reads
            .session(&id_hash)
            .await?
            .ok_or(ApiError::SessionInvalid)?;
        let now = chrono::Utc::now();
        let idle = chrono::Duration::from_std(self.session_idle)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if session.expires_at <= now || session.last_seen_at + idle <= now {
            store::sessions::delete(db, &id_hash).await?;
            return Err(ApiError::SessionInvalid);
        }
        let user = UserId(session.user_id);
        // A disabled user, or a session started before the user's last kill switch.
        if !self
            .standing(user)
            .await?
            .is_some_and(|standing| standing.admits_session(session.created_at))
        {
            return Err(ApiError::SessionInvalid);
        }
        let touch_after =
            chrono::Duration::from_std(session::TOUCH_AFTER.min(self.session_idle / 2))
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        if now - session.last_seen_at >= touch_after {
            store::sessions::touch(db, &id_hash).await?;
        }
        Ok(Caller {
            user_id: user,
            via: Via::Session {
                id_hash,
                current_tenant: session.current_tenant_id.map(TenantId),
                created_at: session.created_at,
            },
        })
    }

    /// Authenticates the request: a token (`token` header, or `Authorization: Bearer`) alone
    /// decides when present, even next to a valid cookie; otherwise the `session` cookie.
    pub async fn authenticate(&self, req: &Request) -> ApiResult<Caller> {
        let mut tokens = req.headers().get_all(TOKEN_HEADER).iter();
        if let Some(value) = tokens.next() {
            if tokens.next().is_some() {
                return Err(ApiError::InvalidCredentials);
            }
            let token = value.to_str().map_err(|_| ApiError::InvalidCredentials)?;
            return self.from_token(token.trim()).await;
        }
        // Only the Bearer scheme carries a token; other schemes (a proxy's Basic) are not ours.
        if let Some(value) = req.headers().get(header::AUTHORIZATION) {
            let value = value.to_str().map_err(|_| ApiError::InvalidCredentials)?;
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            if scheme.eq_ignore_ascii_case("bearer") {
                return self.from_token(token.trim()).await;
            }
        }
        let jar = req.cookie();
        if let Some(cookie) = CookieJar::get(jar, SESSION_COOKIE) {
            self.check_same_origin(req)?;
            return self.from_session(cookie.value_str()).await;
        }
        Err(ApiError::MissingCredentials)
    }
}
