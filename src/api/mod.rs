//! HTTP only: one poem-openapi struct per tag, the OpenAPI document, Swagger UI, and the error
//! rendering every response goes through.

mod audit;
mod auth;
mod body;
pub mod caller;
mod console;
mod decisions;
mod flows;
mod health;
mod invitations;
pub mod json_object;
mod members;
mod models;
pub mod page;
mod serialized;
pub mod state;
pub mod tags;
mod tenants;
mod tokens;

use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::middleware::CatchPanic;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::{OpenApiService, OperationId};

use crate::error::{ApiError, render_error};
use crate::metrics::{Metrics, MetricsTarget};
pub use state::AppState;
pub use tags::ApiTags;

pub use decisions::MAX_ITEMS as MAX_DECISION_ITEMS;

type Apis = (
    auth::AuthApi,
    tokens::TokenApi,
    tenants::TenantApi,
    members::MemberApi,
    invitations::InvitationApi,
    flows::FlowApi,
    decisions::DecisionApi,
    audit::AuditApi,
    health::HealthApi,
);

/// The OpenAPI service: the document and the routes come from the same code.
pub fn service() -> OpenApiService<Apis, ()> {
    let apis: Apis = (
        auth::AuthApi,
        tokens::TokenApi,
        tenants::TenantApi,
        members::MemberApi,
        invitations::InvitationApi,
        flows::FlowApi,
        decisions::DecisionApi,
        audit::AuditApi,
        health::HealthApi,
    );
    OpenApiService::new(apis, "Zygo", env!("CARGO_PKG_VERSION")).description(
        "Multi-tenant API authenticated by browser sessions or API tokens and authorized by \
         Cedar policies. Log in with `POST /api/login` (sets the `session` cookie) or mint a token \
         with `GET /api/token` and send it in the `token` header. Every error is \
         `application/problem+json` with a stable `code`. Every answer to a request the policies \
         decided (the guarded operations, the decision API) carries the deciding policy \
         version's content hash in the `Zygo-Policy-Version` header, to quote in a report.",
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
    // The actions are the policy schema's (a fixed Rust enum); the resource id is a UUID.
    if let Some(action) = spec
        .pointer_mut("/components/schemas/DecisionItem/properties/action")
        .and_then(serde_json::Value::as_object_mut)
    {
        let actions = crate::authz::Action::ALL.map(|a| serde_json::Value::from(a.name()));
        action.insert("enum".into(), actions.to_vec().into());
    }
    if let Some(id) = spec
        .pointer_mut("/components/schemas/ResourceRef/properties/id")
        .and_then(serde_json::Value::as_object_mut)
    {
        id.insert("format".into(), "uuid".into());
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
                schema.insert("minimum".into(), 1.into());
                schema.insert("maximum".into(), max_token_seconds.into());
                schema.insert(
                    "default".into(),
                    tokens::default_expiration(max_token_seconds).into(),
                );
            }
        }
    }
    declare_framing_headers(&mut spec);
    let mut out = serde_json::to_string_pretty(&spec).unwrap_or(raw);
    out.push('\n');
    out
}

/// Declares on every response of every operation the headers [`frame`] adds to every answer:
/// the request id (always) and the deciding policy version (when the policies decided), so
/// generated clients can read them.
fn declare_framing_headers(spec: &mut serde_json::Value) {
    let header = |required: bool, description: &str| {
        serde_json::json!({
            "required": required,
            "deprecated": false,
            "description": description,
            "schema": { "type": "string" },
        })
    };
    let request_id = header(
        true,
        "The request's id: the client's `X-Request-Id` when it is 1 to 64 letters, digits, \
         `-`, `_` or `.`, else a generated one. Error bodies and the decision log name it too.",
    );
    let policy_version = header(
        false,
        "The content hash of the policy version that decided the request; present when the \
         policies decided it (the guarded operations and the decision API).",
    );
    let Some(paths) = spec
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|operations| operations.values_mut())
        .filter_map(|operation| operation.get_mut("responses"))
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|responses| responses.values_mut())
        .filter_map(serde_json::Value::as_object_mut);
    for response in responses {
        let headers = response
            .entry("headers")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(headers) = headers.as_object_mut() {
            headers.insert("X-REQUEST-ID".into(), request_id.clone());
            headers.insert("ZYGO-POLICY-VERSION".into(), policy_version.clone());
        }
    }
}

/// The document this server serves now (the policy folder may be reloaded while it runs).
fn served_document(state: &AppState) -> String {
    let bundle = state.authz.bundle();
    spec_json(bundle.roles(), state.authn.max_token_seconds)
}

/// The whole HTTP application.
pub fn app(state: Arc<AppState>) -> impl Endpoint + use<> {
    let service = service();
    // Swagger UI embeds the document; it gets the served one, not the bare generated one.
    let (raw, ui) = (service.spec(), service.swagger_ui_html());
    let (for_json, for_ui) = (state.clone(), state.clone());
    let mut routes = Route::new();
    if state.settings.metrics == MetricsTarget::Public {
        routes = routes.at("/metrics", metrics_endpoint(state.clone()));
    }
    if state.settings.test_panic_route {
        routes = routes.at(
            "/__test/panic",
            poem::endpoint::make_sync(|_| -> &'static str { panic!("the test panic route") }),
        );
    }
    routes
        .at(
            "/openapi.json",
            poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json")
                    .body(served_document(&for_json))
            })
            .with(never_framed()),
        )
        .nest(
            "/docs",
            Route::new()
                .at(
                    "/",
                    poem::endpoint::make_sync(move |_| {
                        poem::web::Html(ui.replacen(&raw, served_document(&for_ui).trim_end(), 1))
                    }),
                )
                .with(never_framed()),
        )
        .nest("/", service)
        .around(console::serve)
        // A panicking handler becomes a 500 problem; the process and its other requests go on.
        .with(CatchPanic::new().with_handler(panic_response))
        .around(frame)
        .data(state)
        .catch_all_error(render_error)
}

/// Headers that keep a page out of every frame (clickjacking): Swagger UI and the document it
/// shows. The UI's own scripts and styles are inline and stay allowed.
fn never_framed() -> poem::middleware::SetHeader {
    poem::middleware::SetHeader::new()
        .overriding(header::X_FRAME_OPTIONS, "DENY")
        .overriding(header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'")
}

/// `GET /metrics`: the text exposition of this server's metrics.
fn metrics_endpoint(state: Arc<AppState>) -> impl Endpoint + use<> {
    poem::get(poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type(format!("{}; charset=utf-8", Metrics::content_type()))
            .header(header::CACHE_CONTROL, "no-store")
            .body({
                state
                    .metrics
                    .set_decision_sources(&state.authz.bundle().decision_sources());
                let status = state.authz.policy_status();
                state.metrics.render(&crate::metrics::PolicyGauges {
                    version: &status.version,
                    loaded_at: status.loaded_at,
                    policies: status.policies,
                })
            })
    }))
}

/// The separate metrics listener of `--metrics ADDR`: `/metrics` and nothing else.
pub fn metrics_app(state: Arc<AppState>) -> impl Endpoint + use<> {
    Route::new()
        .at("/metrics", metrics_endpoint(state))
        .catch_all_error(render_error)
}

/// The metrics label of a request the OpenAPI service did not answer: the route template of the
/// few routes outside it, else `unmatched` (never the raw path, which may carry ids).
fn static_operation(path: &str) -> &'static str {
    match path {
        "/metrics" => "/metrics",
        "/openapi.json" => "/openapi.json",
        "/docs" | "/docs/" => "/docs",
        _ => console::operation(path).unwrap_or("unmatched"),
    }
}

/// The answer to a request whose handler panicked: a plain 500 problem; the panic is logged.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a handler panicked".to_owned());
    ApiError::Internal(format!("handler panicked: {message}")).into_response()
}

/// Header carrying the policy version (content hash) that decided the request, on every answer
/// whose request was authorized by the policies (the guarded operations and the decision API).
pub const POLICY_VERSION_HEADER: &str = "zygo-policy-version";

/// Header carrying the request id (taken from the client when sane, else generated).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        // A v4 uuid from the thread's CSPRNG: no system call per request.
        .map_or_else(
            || {
                uuid::Builder::from_random_bytes(rand::random())
                    .into_uuid()
                    .to_string()
            },
            str::to_owned,
        )
}

/// Around every request: a request id (in the response header and the decision log), the body
/// size limit, the request deadline (503 past it), and errors rendered as problem+json with the
/// request id attached.
async fn frame<E: Endpoint>(next: std::sync::Arc<E>, mut req: Request) -> poem::Result<Response> {
    let started = std::time::Instant::now();
    let id = request_id(&req);
    let path = req.uri().path().to_owned();
    let deadline = req
        .data::<Arc<AppState>>()
        .map(|state| state.settings.request_timeout);
    let metrics = req
        .data::<Arc<AppState>>()
        .map(|state| state.metrics.clone());
    let max_token_seconds = req
        .data::<Arc<AppState>>()
        .map(|state| state.authn.max_token_seconds);
    let max_body = req.data::<Arc<AppState>>().map_or(
        crate::config::DEFAULT_MAX_DEFINITION_BYTES + crate::config::BODY_HEADROOM_BYTES,
        |state| state.settings.max_body_bytes(),
    );
    // Every audit event the request writes names it, its client and the policies in force.
    let origin = crate::store::audit::Origin {
        request_id: Some(id.clone()),
        client: req
            .remote_addr()
            .as_socket_addr()
            .map(|addr| addr.ip().to_string()),
        policy_version: req
            .data::<Arc<AppState>>()
            .map(|state| state.authz.bundle().provenance()),
    };
    let decided_by = Arc::new(std::sync::Mutex::new(None::<String>));
    let handle = crate::authz::log::REQUEST_ID.scope(
        id.clone(),
        crate::authz::log::DECIDED_BY.scope(
            decided_by.clone(),
            crate::store::audit::ORIGIN.scope(origin, async move {
                query_names_once(&req)?;
                limit_body(&mut req, max_body).await?;
                next.call(req).await.map(IntoResponse::into_response)
            }),
        ),
    );
    // The backstop behind the database timeouts: a connection that stops answering mid-query
    // (a network partition) must not hold a request, or a draining shutdown, for long.
    let result = match deadline {
        Some(deadline) => tokio::time::timeout(deadline, handle)
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::Unavailable(format!("no answer within {deadline:?}")).into())
            }),
        None => handle.await,
    };
    // poem-openapi tags what its operations answer (errors included) with the operation id.
    let (mut response, operation) = match result {
        Ok(response) => {
            let operation = response.data::<OperationId>().map(|op| op.0);
            (response, operation)
        }
        Err(err) => {
            let operation = err.data::<OperationId>().map(|op| op.0);
            let err = say_parameter_range(err, max_token_seconds);
            (
                render_error(name_path_parameter(err, &path)).await,
                operation,
            )
        }
    };
    if let Some(metrics) = metrics {
        metrics.http_request(
            operation.unwrap_or_else(|| match response.status() {
                StatusCode::NOT_FOUND => "unmatched",
                _ => static_operation(&path),
            }),
            response.status().as_str(),
            started.elapsed(),
        );
    }
    // RFC 9110: a 405 lists the methods the resource does support.
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some((_, methods)) = route_for(&path)
        && let Ok(allow) = HeaderValue::from_str(&methods.join(", "))
    {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    // The policy version that decided, so a client's report can name it.
    let decided = decided_by.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(value) = decided.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(POLICY_VERSION_HEADER, value);
    }
    Ok(response)
}

/// Refuses a query that gives one parameter twice (`?limit=5&limit=50`) with a 400 naming it:
/// which one counts is a guess, and the framework's guess (the first) is not one the client can
/// see. No operation takes a list in its query, so a name given twice is always a mistake.
/// A path no operation has is left to its 404.
fn query_names_once(req: &Request) -> Result<(), ApiError> {
    if req.uri().query().is_none_or(|q| !q.contains('&')) || route_for(req.uri().path()).is_none() {
        return Ok(());
    }
    let pairs: Vec<(String, String)> = req.params().unwrap_or_default();
    let mut seen = std::collections::HashSet::with_capacity(pairs.len());
    match pairs.iter().find(|(name, _)| !seen.insert(name.as_str())) {
        Some((name, _)) => {
            // The name as given, cut short: no answer repeats an arbitrary amount of input.
            let shown: String = name.chars().take(64).collect();
            let cut = if shown.len() < name.len() { "…" } else { "" };
            Err(ApiError::BadRequest(format!(
                "{shown}{cut}: given more than once"
            )))
        }
        None => Ok(()),
    }
}

/// Refuses bodies over `max` bytes ([`crate::config::Settings::max_body_bytes`]: the definition
/// limit and room for the rest of a flow) with 413: by `Content-Length` before reading, and by
/// counting while reading when the length is not announced (chunked uploads).
async fn limit_body(req: &mut Request, max: usize) -> poem::Result<()> {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(length) if length > max as u64 => Err(ApiError::PayloadTooLarge.into()),
        Some(_) => Ok(()),
        None => {
            let body = req
                .take_body()
                .into_bytes_limit(max)
                .await
                .map_err(|_| ApiError::PayloadTooLarge)?;
            req.set_body(body);
            Ok(())
        }
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
/// The two ranged whole-number parameters, a list's `limit` and a token's `expiration`, are
/// refused with one sentence naming their range whatever was wrong (`-1`, `soon`, `0`, `501`):
/// the framework would otherwise say "0 or more" for some values and the range for others.
fn say_parameter_range(err: poem::Error, max_token_seconds: Option<u64>) -> poem::Error {
    use poem_openapi::error::ParseParamError;
    match (err.downcast_ref::<ParseParamError>(), max_token_seconds) {
        (Some(parse), _) if parse.name == "limit" => ApiError::bad_limit().into(),
        (Some(parse), Some(max)) if parse.name == "expiration" => {
            ApiError::bad_expiration(max).into()
        }
        _ => err,
    }
}

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
        Some(name) => ApiError::BadRequest(format!(
            "{name}: {}",
            crate::error::plain_reason(&parse.reason)
        ))
        .into(),
        None => err,
    }
}
