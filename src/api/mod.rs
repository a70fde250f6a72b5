//! HTTP only: one poem-openapi struct per tag, the OpenAPI document, Swagger UI, and the error
//! rendering every response goes through.

mod auth;
mod flows;
mod health;
pub mod json_object;
mod members;
mod models;
mod tenants;
mod tokens;

use std::sync::Arc;

use poem::http::header;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::{OpenApiService, Tags};

use crate::error::{ApiError, render_error};
use crate::startup::AppState;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Tags)]
pub enum ApiTags {
    /// Logging in and out with a browser session, and who you are.
    Auth,
    /// Minting API tokens.
    Tokens,
    /// Tenants and the session's current tenant.
    Tenants,
    /// Who belongs to a tenant, with which role.
    Members,
    /// Flows: tenant-owned JSON documents.
    Flows,
    /// Service health.
    Health,
}

type Apis = (
    auth::AuthApi,
    tokens::TokenApi,
    tenants::TenantApi,
    members::MemberApi,
    flows::FlowApi,
    health::HealthApi,
);

/// The OpenAPI service: the document and the routes come from the same code.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            auth::AuthApi,
            tokens::TokenApi,
            tenants::TenantApi,
            members::MemberApi,
            flows::FlowApi,
            health::HealthApi,
        ),
        "Zygo",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Multi-tenant API authenticated by browser sessions or API tokens and authorized by \
         Cedar policies. Log in with `POST /api/login` (sets the `session` cookie) or mint a token \
         with `GET /api/token` and send it in the `token` header. Every error is \
         `application/problem+json` with a stable `code`.",
    )
}

/// The OpenAPI document as committed in `openapi/openapi.json`.
pub fn spec_json() -> String {
    let mut spec = service().spec();
    spec.push('\n');
    spec
}

/// The whole HTTP application.
pub fn app(state: Arc<AppState>) -> impl Endpoint + use<> {
    let service = service();
    let spec = spec_json();
    Route::new()
        .at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(spec.clone())
            }),
        )
        .nest("/docs", service.swagger_ui())
        .nest("/", service)
        .around(limit_body)
        .data(state)
        .catch_all_error(render_error)
}

/// Refuses bodies over [`MAX_BODY_BYTES`] with 413: by `Content-Length` before reading, and by
/// counting while reading when the length is not announced (chunked uploads).
async fn limit_body<E: Endpoint>(
    next: std::sync::Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(length) if length > MAX_BODY_BYTES as u64 => {
            return Err(ApiError::PayloadTooLarge.into());
        }
        Some(_) => {}
        None => {
            let body = req
                .take_body()
                .into_bytes_limit(MAX_BODY_BYTES)
                .await
                .map_err(|_| ApiError::PayloadTooLarge)?;
            req.set_body(body);
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}
