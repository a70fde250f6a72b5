//! Who is calling: API tokens, browser sessions, and the [`Caller`] extractor every guarded
//! operation takes as a parameter (so the requirement shows in its signature and in the spec).

pub mod csrf;
pub mod password;
pub mod session;
pub mod throttle;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use poem::Request;
use poem::http::header;
use poem::web::cookie::CookieJar;
use poem_openapi::auth::{ApiKey, Bearer};
use poem_openapi::registry::Registry;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::authz::{AuthContext, AuthMethod};
use crate::cache::ConsistentCache;
use crate::config::Settings;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::startup::AppState;
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
    },
    /// An API token, with its family (revocation works on families) and whether it is read-only.
    Token {
        jti: String,
        family: String,
        read_only: bool,
    },
}

/// Verified tokens remembered at most (see [`Authn::from_token`]).
const VERIFIED_TOKENS: u64 = 10_000;

/// How long a verified token is remembered before it is verified again.
const VERIFIED_FOR: Duration = Duration::from_secs(60);

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

    /// The session's current tenant (`None` for tokens).
    pub fn current_tenant(&self) -> Option<TenantId> {
        match &self.via {
            Via::Session { current_tenant, .. } => *current_tenant,
            Via::Token { .. } => None,
        }
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
    /// Whether a user exists and is enabled; a token request costs no query when warm.
    active_users: ConsistentCache<UserId, bool>,
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

    /// Whether the user exists and is not disabled (cached).
    pub async fn is_active(&self, user: UserId) -> ApiResult<bool> {
        self.active_users
            .get_or_load(user, async {
                store::users::find(&self.reads.pool, user)
                    .await
                    .map(|u| u.is_some_and(|u| !u.disabled))
            })
            .await
            .map_err(ApiError::from)
    }

    /// Revokes token families in the database and forgets them here; other processes hear of it
    /// through [`crate::startup::AppState::revoke_families`] (or within the cache TTL).
    pub async fn revoke_families(&self, user: UserId, families: &[String]) -> ApiResult<()> {
        store::tokens::revoke(&self.db, user, families).await?;
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
    pub async fn mint(&self, caller: &Caller, request: MintRequest<'_>) -> ApiResult<String> {
        let family = match &caller.via {
            Via::Token { family, .. } => Some(family.as_str()),
            Via::Session { .. } => None,
        };
        // A token minted from a read-only token is read-only too, whatever was asked.
        let read_only = request.read_only || caller.auth().read_only;
        let (token, claims) = self
            .keys
            .mint(caller.user_id, request.seconds, family, read_only)?;
        let at = |seconds: i64| {
            chrono::DateTime::from_timestamp(seconds, 0)
                .ok_or_else(|| ApiError::Internal("token time out of range".into()))
        };
        store::tokens::record(
            &self.db,
            store::tokens::NewToken {
                jti: &claims.jti,
                user: caller.user_id,
                family: &claims.fam,
                issued_at: at(claims.iat)?,
                expires_at: at(claims.exp)?,
                name: request.name,
                read_only,
            },
        )
        .await?;
        // "Log out everywhere" deletes the sessions, then revokes the families it finds. A token
        // minted from a session that was checked before the delete but recorded after that read
        // would escape it; the session is gone by now in that case, so the new family dies here.
        if let Via::Session { id_hash, .. } = &caller.via
            && store::sessions::find(&self.db, id_hash).await?.is_none()
        {
            self.revoke_families(caller.user_id, std::slice::from_ref(&claims.fam))
                .await?;
            return Err(ApiError::SessionInvalid);
        }
        self.metrics.token_minted(family.is_none());
        Ok(token)
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
        if !self.is_active(user).await? {
            return Err(ApiError::InvalidCredentials);
        }
        if self.is_revoked(&claims.fam).await? {
            return Err(ApiError::TokenRevoked);
        }
        Ok(Caller {
            user_id: user,
            via: Via::Token {
                jti: claims.jti.clone(),
                family: claims.fam.clone(),
                read_only: claims.ro,
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
            return session::authenticate(self, cookie.value_str()).await;
        }
        Err(ApiError::MissingCredentials)
    }
}

/// The `token` header scheme (for the OpenAPI document and Swagger UI's Authorize dialog).
#[derive(SecurityScheme)]
#[oai(
    rename = "TokenHeader",
    ty = "api_key",
    key_name = "token",
    key_in = "header"
)]
#[allow(dead_code)]
pub struct TokenHeaderScheme(ApiKey);

/// `Authorization: Bearer <token>`, accepted as an alternative to the `token` header.
#[derive(SecurityScheme)]
#[oai(rename = "Bearer", ty = "bearer", bearer_format = "JWT")]
#[allow(dead_code)]
pub struct BearerScheme(Bearer);

/// The `session` cookie set by `POST /api/login`.
#[derive(SecurityScheme)]
#[oai(
    rename = "SessionCookie",
    ty = "api_key",
    key_name = "session",
    key_in = "cookie"
)]
#[allow(dead_code)]
pub struct SessionCookieScheme(ApiKey);

impl<'a> ApiExtractor<'a> for Caller {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <TokenHeaderScheme as ApiExtractor>::register(registry);
        <BearerScheme as ApiExtractor>::register(registry);
        <SessionCookieScheme as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec!["TokenHeader", "Bearer", "SessionCookie"]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut poem::RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = req
            .data::<Arc<AppState>>()
            .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
        Ok(state.authn.authenticate(req).await?)
    }
}
