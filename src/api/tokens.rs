//! `GET /api/token`: mint an API token from a session or from a still-valid token.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::body::Body;
use super::page::{self, Page};
use super::state::AppState;
use super::tags::ApiTags;
use crate::auth::{Caller, MintRequest, Via, csrf};
use crate::authz::AccountAction;
use crate::config::DEFAULT_TOKEN_SECONDS;
use crate::error::{ApiError, Errors, can};
use crate::store;

/// A freshly minted token.
#[derive(Debug, Object)]
#[oai(example)]
pub struct TokenResponse {
    /// An HS256 JWT; send it in the `token` header (or as `Authorization: Bearer`).
    pub token: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

#[derive(ApiResponse)]
pub enum MintResponse {
    /// The token. Responses are never cached.
    #[oai(status = 200)]
    Ok(Json<TokenResponse>, #[oai(header = "Cache-Control")] String),
}

impl Example for TokenResponse {
    fn example() -> Self {
        TokenResponse {
            token: "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiIsImtpZCI6IjNmMmEifQ.eyJzdWIiOiI1ZjBjMWQzZS04YTQxLTRjNTItOWI3ZS0yYTZmMGQ5YzNiMTEifQ.c2lnbmF0dXJl".into(),
            expires_in: 600,
        }
    }
}

pub struct TokenApi;

/// How a token was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum MintedFrom {
    /// From a browser session (`GET /api/token` with the `session` cookie).
    Session,
    /// From another token of the same family.
    Token,
}

/// One of your tokens, as listed: never the token itself.
#[derive(Debug, Object)]
#[oai(example)]
pub struct IssuedToken {
    /// The token's id: pass it to `POST /api/token/revoke`.
    pub jti: String,
    /// The name given at minting, if any.
    #[oai(nullable)]
    pub name: Option<String>,
    /// Whether the policies refuse writes made with it.
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub minted_from: MintedFrom,
}

impl From<store::tokens::IssuedToken> for IssuedToken {
    fn from(row: store::tokens::IssuedToken) -> Self {
        IssuedToken {
            // A token minted from a session starts its own family, named by its `jti`.
            minted_from: if row.family == row.jti {
                MintedFrom::Session
            } else {
                MintedFrom::Token
            },
            jti: row.jti,
            name: row.name,
            read_only: row.read_only,
            created_at: row.issued_at,
            expires_at: row.expires_at,
        }
    }
}

impl Example for IssuedToken {
    fn example() -> Self {
        IssuedToken {
            jti: "0b6f3c2e-3f1d-4c55-9a61-2d2f4f7f6e10".into(),
            name: Some("nightly export".into()),
            read_only: true,
            created_at: super::models::sample::time(),
            expires_at: super::models::sample::time() + chrono::Duration::seconds(600),
            minted_from: MintedFrom::Session,
        }
    }
}

/// Which token to revoke; any field other than `jti` is refused (400).
// `{}` revokes the token the request is sent with: a misspelt `jti` must not quietly mean that.
#[derive(Debug, Object)]
#[oai(example, deny_unknown_fields)]
pub struct RevokeRequest {
    /// The `jti` of one of your tokens; omit it to revoke the token this request is sent with.
    #[oai(validator(min_length = 1, max_length = 64))]
    pub jti: Option<String>,
}

impl Example for RevokeRequest {
    fn example() -> Self {
        RevokeRequest {
            jti: Some("0b6f3c2e-3f1d-4c55-9a61-2d2f4f7f6e10".into()),
        }
    }
}

#[derive(ApiResponse)]
pub enum RevokeResponse {
    /// Revoked: the token, the token it was minted from and every token minted from either
    /// (its whole family) are refused from now on, by every instance within the cache TTL.
    #[oai(status = 204)]
    Done,
}

#[OpenApi(tag = "ApiTags::Tokens")]
impl TokenApi {
    /// Mint an API token
    ///
    /// Authenticate with the `session` cookie for your first token; after that a valid token can
    /// mint new ones. The token names you, not a tenant: roles are resolved per request from the
    /// tenant in the URL. Logging in is not counted.
    ///
    /// A token never grants more than the credential that minted it: a token minted from a token
    /// expires no later than it (`expires_in` says the lifetime granted, which may be shorter than
    /// asked), and a read-only token mints read-only tokens only. A user holds at most a
    /// configured number of live tokens (1,000 unless configured; 409 `token_limit` beyond) and
    /// mints at a configured rate: up to 120 at once, then 120 a minute, unless configured (429
    /// `too_many_mints` with `Retry-After` beyond).
    ///
    /// With the `session` cookie, a request another site or a sibling subdomain started
    /// (`Sec-Fetch-Site` other than `same-origin` or `none`)
    /// is refused with 403 `cross_site_request`.
    #[oai(path = "/api/token", method = "get", operation_id = "mintToken")]
    async fn mint(
        &self,
        req: &poem::Request,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// Token lifetime in seconds: 1 up to the configured maximum (2592000, 30 days, unless
        /// configured otherwise); 600 when omitted (or the maximum, if that is lower).
        expiration: Query<Option<u64>>,
        /// A name to tell the token apart in `GET /api/tokens` ("deploy script"): 1 to 64
        /// letters, digits, spaces, `.`, `_` or `-`, starting with a letter or digit.
        #[oai(validator(max_length = 64, pattern = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$"))]
        name: Query<Option<String>>,
        /// `true` for a token that may only read: the policies refuse every write made with it
        /// (`context.auth.read_only`). Default: `false` from a session or a full token, `true`
        /// from a read-only token, which may mint read-only tokens only (`false` is a 403).
        read_only: Query<Option<bool>>,
    ) -> Result<
        MintResponse,
        Errors<
            {
                can::BAD_REQUEST
                    | can::UNAUTHORIZED
                    | can::FORBIDDEN
                    | can::CONFLICT
                    | can::TOO_MANY
                    | can::SERVER
            },
        >,
    > {
        // A cross-site navigation carries the cookie (SameSite=Lax): it must not mint.
        if matches!(caller.via, Via::Session { .. }) && csrf::is_cross_site_fetch(req) {
            return Err(ApiError::CrossSiteRequest.into());
        }
        let max = state.authn.max_token_seconds;
        let seconds = expiration.0.unwrap_or(default_expiration(max));
        if !(1..=max).contains(&seconds) {
            return Err(ApiError::bad_expiration(max).into());
        }
        let read_only = read_only.0.unwrap_or(caller.auth().read_only);
        state
            .authz
            .require_account(&caller, AccountAction::MintToken { read_only })?;
        let request = MintRequest {
            seconds,
            name: name.0.as_deref(),
            read_only,
        };
        let (token, expires_in) = state.authn.mint(&caller, request).await?;
        Ok(MintResponse::Ok(
            Json(TokenResponse { token, expires_in }),
            "no-store".to_owned(),
        ))
    }

    /// List your tokens
    ///
    /// Your tokens that are neither expired nor revoked, newest first, a page at a time: their
    /// `jti`, name, whether they are read-only, when they were made and expire, and whether they
    /// were minted from a session or from a token. Never the tokens themselves. Revoke one with
    /// `POST /api/token/revoke {"jti": …}`.
    #[oai(path = "/api/tokens", method = "get", operation_id = "listTokens")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// Rows per page: 1 to 500 (100 when omitted).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page; the first page when omitted.
        #[oai(validator(pattern = r"^[0-9]{1,11}\.[0-9]{9}-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
    ) -> Result<
        Json<Page<IssuedToken>>,
        Errors<{ can::BAD_REQUEST | can::UNAUTHORIZED | can::SERVER }>,
    > {
        let page = page::keyset(limit.0, cursor.0.as_deref())?;
        let tokens = state.authn.live_tokens(caller.user_id, page).await?;
        Ok(Json(Page::of(tokens, IssuedToken::from)))
    }

    /// Revoke a token and its family
    ///
    /// Revokes the token this request authenticates with, or (with `jti`) one of your tokens.
    /// Revocation works on families: a token minted from a token belongs to the family of the
    /// session token it descends from, and the whole family is refused from then on, because
    /// whoever held one of them could have minted the others. A `jti` that is not one of your
    /// tokens is a 404. A read-only token may revoke its own family only (403 for another). To
    /// end everything at once, use `POST /api/logout-everywhere`.
    #[oai(
        path = "/api/token/revoke",
        method = "post",
        operation_id = "revokeToken"
    )]
    async fn revoke(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        body: Body<RevokeRequest>,
    ) -> Result<
        RevokeResponse,
        Errors<
            {
                can::BODY
                    | can::UNAUTHORIZED
                    | can::FORBIDDEN
                    | can::NOT_FOUND
                    | can::UNPROCESSABLE
                    | can::SERVER
            },
        >,
    > {
        let target = match (&body.jti, &caller.via) {
            // Ids are UUIDs: a NUL (which PostgreSQL cannot compare) names no token.
            (Some(jti), _) if jti.contains('\0') => return Err(ApiError::NotFound("token").into()),
            (Some(jti), _) => {
                store::tokens::find_for_user(&state.db, jti, caller.user_id)
                    .await?
                    .ok_or(ApiError::NotFound("token"))?
                    .family
            }
            (None, Via::Token { family, .. }) => family.clone(),
            (None, Via::Session { .. }) => {
                return Err(ApiError::Validation {
                    field: "jti".into(),
                    message: "is required when the request is authenticated by a session".into(),
                }
                .into());
            }
        };
        let own_family = matches!(&caller.via, Via::Token { family, .. } if *family == target);
        state
            .authz
            .require_account(&caller, AccountAction::RevokeToken { own_family })?;
        state
            .caches
            .revoke_families(caller.user_id, &[target], &caller.actor())
            .await?;
        Ok(RevokeResponse::Done)
    }
}

/// The lifetime of a token minted without `expiration`: 600 s, or the maximum if that is lower.
pub fn default_expiration(max: u64) -> u64 {
    DEFAULT_TOKEN_SECONDS.min(max)
}
