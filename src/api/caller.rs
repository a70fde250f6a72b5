//! The security schemes of the OpenAPI document (`token` header, bearer, `session` cookie) and
//! the extractor that turns a request into an authenticated [`Caller`] (see [`crate::auth`]).

use std::sync::Arc;

use poem::Request;
use poem_openapi::auth::{ApiKey, Bearer};
use poem_openapi::registry::Registry;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme};

use super::state::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

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
