//! Who is calling: API tokens, browser sessions, and the [`Caller`] extractor every guarded
//! operation takes as a parameter (so the requirement shows in its signature and in the spec).

pub mod password;
pub mod session;
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

use crate::cache::ConsistentCache;
use crate::error::{ApiError, ApiResult};
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
    /// An API token.
    Token { jti: String },
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

    /// The session's current tenant (`None` for tokens).
    pub fn current_tenant(&self) -> Option<TenantId> {
        match &self.via {
            Via::Session { current_tenant, .. } => *current_tenant,
            Via::Token { .. } => None,
        }
    }
}

/// Authentication state: the token key, the user-status cache and session settings.
pub struct Authn {
    pub keys: TokenKeys,
    db: DatabaseConnection,
    /// Whether a user exists and is enabled; a token request costs no query when warm.
    active_users: ConsistentCache<UserId, bool>,
    pub session_lifetime: Duration,
    pub secure_cookies: bool,
    pub max_token_seconds: u64,
}

impl Authn {
    pub fn new(
        keys: TokenKeys,
        db: DatabaseConnection,
        cache_ttl: Duration,
        session_lifetime: Duration,
        secure_cookies: bool,
        max_token_seconds: u64,
    ) -> Self {
        Authn {
            keys,
            db,
            active_users: ConsistentCache::new(100_000, cache_ttl),
            session_lifetime,
            secure_cookies,
            max_token_seconds,
        }
    }

    /// Whether the user exists and is not disabled (cached).
    pub async fn is_active(&self, user: UserId) -> ApiResult<bool> {
        self.active_users
            .get_or_load(user, async {
                store::users::find(&self.db, user)
                    .await
                    .map(|u| u.is_some_and(|u| !u.disabled))
            })
            .await
            .map_err(ApiError::from)
    }

    /// Forgets the cached status after this process disables or deletes a user.
    pub async fn forget_user(&self, user: UserId) {
        self.active_users.invalidate(&user).await;
    }

    /// Forgets every cached user status (the invalidation listener lost signals while reconnecting).
    pub async fn forget_all_users(&self) {
        self.active_users.invalidate_all().await;
    }

    /// Authenticates a token: signature, algorithm, key, expiry, then the user's status.
    pub async fn from_token(&self, token: &str) -> ApiResult<Caller> {
        let claims = self.keys.verify(token)?;
        let user = Uuid::parse_str(&claims.sub)
            .map(UserId)
            .map_err(|_| ApiError::InvalidCredentials)?;
        if !self.is_active(user).await? {
            return Err(ApiError::InvalidCredentials);
        }
        Ok(Caller {
            user_id: user,
            via: Via::Token { jti: claims.jti },
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
            return session::authenticate(self, &self.db, cookie.value_str()).await;
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
