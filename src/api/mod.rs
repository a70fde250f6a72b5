//! HTTP only: one poem-openapi struct per tag, the OpenAPI document, Swagger UI, and the error
//! rendering every response goes through.

mod auth;
mod body;
mod flows;
mod health;
pub mod json_object;
mod members;
mod models;
mod tenants;
mod tokens;

use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
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

/// The OpenAPI document of a server configured with these roles (from the policy folder) and this
/// longest token lifetime; with the repository's policies and the defaults it is the committed
/// `openapi/openapi.json`. Both are facts of the running service, not of the Rust types, so they are
/// written into the generated document here: clients then validate a role or an `expiration`
/// before sending it.
pub fn spec_json<'a>(
    roles: impl IntoIterator<Item = &'a String>,
    max_token_seconds: u64,
) -> String {
    let raw = service().spec();
    let Ok(mut spec) = serde_json::from_str::<serde_json::Value>(&raw) else {
        return raw + "\n";
    };
    let roles: Vec<serde_json::Value> = roles.into_iter().map(|r| r.as_str().into()).collect();
    if let Some(role) = spec.pointer_mut("/components/schemas/RoleRequest/properties/role")
        && let Some(role) = role.as_object_mut()
    {
        role.insert("enum".into(), roles.into());
    }
    if let Some(parameters) = spec
        .pointer_mut("/paths/~1api~1token/get/parameters")
        .and_then(serde_json::Value::as_array_mut)
    {
        for parameter in parameters {
            if parameter["name"] == "expiration"
                && let Some(schema) = parameter
                    .get_mut("schema")
                    .and_then(serde_json::Value::as_object_mut)
            {
                schema.insert("maximum".into(), max_token_seconds.into());
            }
        }
    }
    let mut out = serde_json::to_string_pretty(&spec).unwrap_or(raw);
    out.push('\n');
    out
}

/// The whole HTTP application.
pub fn app(state: Arc<AppState>) -> impl Endpoint + use<> {
    let service = service();
    let bundle = state.authz.bundle();
    let spec = spec_json(bundle.roles(), state.authn.max_token_seconds);
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
    let path = req.uri().path().to_owned();
    match next.call(req).await {
        Ok(response) => Ok(response.into_response()),
        // RFC 9110: a 405 lists the methods the resource does support.
        Err(err) if err.status() == StatusCode::METHOD_NOT_ALLOWED => {
            let mut response = ApiError::MethodNotAllowed.into_response();
            if let Some((_, methods)) = route_for(&path)
                && let Ok(allow) = HeaderValue::from_str(&methods.join(", "))
            {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            Ok(response)
        }
        Err(err) => Err(name_path_parameter(err, &path)),
    }
}

/// A path template of the document, split at `/`, and its methods (upper case).
type RouteTemplate = (Vec<String>, Vec<String>);

/// The document's route whose template matches a request path.
fn route_for(path: &str) -> Option<&'static RouteTemplate> {
    use std::sync::OnceLock;
    static ROUTES: OnceLock<Vec<RouteTemplate>> = OnceLock::new();
    let routes = ROUTES.get_or_init(|| {
        let spec: serde_json::Value = serde_json::from_str(&service().spec()).unwrap_or_default();
        spec["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(template, operations)| {
                        let methods = operations
                            .as_object()
                            .map(|ops| ops.keys().map(|m| m.to_uppercase()).collect())
                            .unwrap_or_default();
                        (template.split('/').map(str::to_owned).collect(), methods)
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    let segments: Vec<&str> = path.split('/').collect();
    routes.iter().find(|(template, _)| {
        template.len() == segments.len()
            && template
                .iter()
                .zip(&segments)
                .all(|(t, s)| t.starts_with('{') || t == s)
    })
}

/// The framework reports a bad path parameter by position (`param0`); name it as the document
/// does (`tenant_id`), from the route template that matches the request path.
fn name_path_parameter(err: poem::Error, path: &str) -> poem::Error {
    use poem_openapi::error::ParsePathError;
    let Some(parse) = err.downcast_ref::<ParsePathError>() else {
        return err;
    };
    let Some(index) = parse
        .name
        .strip_prefix("param")
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return err;
    };
    let name = route_for(path).and_then(|(template, _)| {
        template
            .iter()
            .filter(|t| t.starts_with('{'))
            .nth(index)
            .map(|t| t.trim_matches(['{', '}']).to_owned())
    });
    match name {
        Some(name) => ApiError::BadRequest(format!("{name}: {}", parse.reason)).into(),
        None => err,
    }
}
