//! `GET /api/token`: mint an API token from a session or from a still-valid token.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::auth::Caller;
use crate::config::DEFAULT_TOKEN_SECONDS;
use crate::error::{ApiError, Errors, can};
use crate::startup::AppState;

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

#[OpenApi(tag = "ApiTags::Tokens")]
impl TokenApi {
    /// Mint an API token
    ///
    /// Authenticate with the `session` cookie for your first token; after that a valid token can
    /// mint new ones. The token names you, not a tenant: roles are resolved per request from the
    /// tenant in the URL. Logging in is not counted.
    #[oai(path = "/api/token", method = "get", operation_id = "mintToken")]
    async fn mint(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// Token lifetime in seconds: 1 up to the configured maximum (default 2592000, 30 days).
        #[oai(default = "default_expiration", validator(minimum(value = "1")))]
        expiration: Query<u64>,
    ) -> Result<MintResponse, Errors<{ can::BAD_REQUEST | can::UNAUTHORIZED | can::SERVER }>> {
        let seconds = expiration.0;
        let max = state.authn.max_token_seconds;
        if seconds > max {
            return Err(ApiError::BadRequest(format!(
                "expiration: must be between 1 and {max} seconds"
            ))
            .into());
        }
        let token = state.authn.keys.mint(caller.user_id, seconds)?;
        Ok(MintResponse::Ok(
            Json(TokenResponse {
                token,
                expires_in: seconds,
            }),
            "no-store".to_owned(),
        ))
    }
}

fn default_expiration() -> u64 {
    DEFAULT_TOKEN_SECONDS
}
