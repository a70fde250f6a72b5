//! The one error type of the service and its status table.
//!
//! Every failure a client can see is an [`ApiError`] variant. Each variant has one HTTP status and one
//! stable `code` (part of the API: clients branch on it), and renders as an RFC 9457
//! `application/problem+json` body. Errors from the framework (malformed parameters, unknown routes,
//! wrong content type) are mapped into the same table by [`ApiError::from_framework`], so no error body
//! ever leaves the service in another shape. 5xx details go to the log, never to the client.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::{ApiResponse, Object, types::Type};

/// A problem detail (RFC 9457), the body of every error response.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize, PartialEq)]
#[oai(example)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:zygo:problem:` followed by `code`.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this request, naming the offending field when there is one.
    pub detail: String,
    /// A stable machine-readable code, for example `token_expired`, `forbidden`, `not_found`.
    pub code: String,
}

/// Everything that can go wrong in a request, with the status each maps to.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a query or path parameter, header or body that cannot be parsed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no credentials were sent.
    #[error("authentication required: send a `token` header, a bearer token or a `session` cookie")]
    MissingCredentials,
    /// 401: the credentials are malformed, wrongly signed, of another algorithm, or unknown.
    #[error("the credentials are invalid")]
    InvalidCredentials,
    /// 401: the token's `exp` has passed.
    #[error("the token has expired")]
    TokenExpired,
    /// 401: the token was revoked (by its owner, "log out everywhere" or a password change).
    #[error("the token has been revoked")]
    TokenRevoked,
    /// 401: the session is unknown, logged out or expired.
    #[error("the session is not valid; log in again")]
    SessionInvalid,
    /// 401: the e-mail and password do not match an active user (same body for both cases).
    #[error("e-mail or password is incorrect")]
    LoginFailed,
    /// 403: authenticated, but the policies do not allow this action.
    #[error("you are not allowed to do this")]
    Forbidden,
    /// 403: a session request named a tenant other than the session's current tenant.
    #[error(
        "this tenant is not the session's current tenant; switch with POST /session/{{tenant_id}}"
    )]
    TenantNotSelected,
    /// 403: the operation needs a browser session and a token was used.
    #[error("this operation needs a browser session")]
    SessionRequired,
    /// 403: a state-changing request authenticated by the session cookie came from another site.
    #[error(
        "cross-site request refused: state-changing requests with the session cookie must come from this service's own origin"
    )]
    CrossSiteRequest,
    /// 403: this server lets only its operators create tenants (`--tenant-creation operators`).
    #[error(
        "tenants are created by this server's operators (`zygo tenant add`); ask one to create it"
    )]
    TenantCreationRestricted,
    /// 403: the current password given to change it is wrong.
    #[error("current_password: is incorrect")]
    WrongPassword,
    /// 404: the resource does not exist, lives in another tenant, or its tenant is not yours.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 404: no such route.
    #[error("no such endpoint")]
    RouteNotFound,
    /// 405: the route exists but not with this method.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// 409: the change would break an invariant (for example remove a tenant's last administrator).
    #[error("{0}")]
    Conflict(String),
    /// 409: the e-mail is already registered.
    #[error("a user with this e-mail already exists")]
    EmailTaken,
    /// 413: the request body is too large.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// 413: a flow's definition is larger than the server's limit (`--max-definition-bytes`),
    /// counted in bytes of compact JSON; nothing was written.
    #[error("definition: must be at most {max} bytes of JSON (this one is {size})")]
    DefinitionTooLarge { size: usize, max: usize },
    /// 415: the body is not `application/json`.
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// 422: well-formed input that breaks a rule, naming the field.
    #[error("{field}: {message}")]
    Validation {
        field: std::borrow::Cow<'static, str>,
        message: String,
    },
    /// 429: too many failed logins; retry after the given number of seconds.
    #[error("too many failed attempts; retry in {retry_after} seconds")]
    TooManyRequests { retry_after: u64 },
    /// 429: this user minted tokens faster than the configured rate; retry after the given
    /// number of seconds.
    #[error(
        "too many tokens minted: up to {per_minute} at once, then {per_minute} a minute; retry in {retry_after} seconds"
    )]
    TooManyMints { per_minute: u32, retry_after: u64 },
    /// 409: the user already holds the most live tokens allowed.
    #[error(
        "you hold {limit} live tokens, the most allowed (ZYGO_MAX_LIVE_TOKENS): revoke one (POST /api/token/revoke) or let one expire"
    )]
    TokenLimit { limit: u64 },
    /// 500: a bug or an unexpected failure; the cause is logged, never sent.
    #[error("internal error")]
    Internal(String),
    /// 503: the database cannot be reached (down, restarting, or too slow to answer within the
    /// configured timeout); the cause is logged.
    #[error("the database is unreachable; retry later")]
    Unavailable(String),
}

impl poem_openapi::types::Example for Problem {
    fn example() -> Self {
        ApiError::NotFound("flow").problem()
    }
}

impl ApiError {
    /// The status table: one line per variant.
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            BadRequest(_) => StatusCode::BAD_REQUEST,
            MissingCredentials | InvalidCredentials | TokenExpired | TokenRevoked
            | SessionInvalid | LoginFailed => StatusCode::UNAUTHORIZED,
            Forbidden
            | TenantNotSelected
            | SessionRequired
            | CrossSiteRequest
            | WrongPassword
            | TenantCreationRestricted => StatusCode::FORBIDDEN,
            NotFound(_) | RouteNotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict(_) | EmailTaken | TokenLimit { .. } => StatusCode::CONFLICT,
            PayloadTooLarge | DefinitionTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            TooManyRequests { .. } | TooManyMints { .. } => StatusCode::TOO_MANY_REQUESTS,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            BadRequest(_) => "bad_request",
            MissingCredentials => "unauthenticated",
            InvalidCredentials => "invalid_credentials",
            TokenExpired => "token_expired",
            TokenRevoked => "token_revoked",
            SessionInvalid => "session_invalid",
            LoginFailed => "login_failed",
            Forbidden => "forbidden",
            TenantNotSelected => "tenant_not_selected",
            SessionRequired => "session_required",
            CrossSiteRequest => "cross_site_request",
            WrongPassword => "wrong_password",
            TenantCreationRestricted => "tenant_creation_restricted",
            NotFound(_) | RouteNotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Conflict(_) => "conflict",
            EmailTaken => "email_taken",
            PayloadTooLarge => "payload_too_large",
            DefinitionTooLarge { .. } => "definition_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            Validation { .. } => "validation_failed",
            TooManyRequests { .. } => "too_many_requests",
            TooManyMints { .. } => "too_many_mints",
            TokenLimit { .. } => "token_limit",
            Internal(_) => "internal",
            Unavailable(_) => "unavailable",
        }
    }

    /// The problem body sent to the client. Server errors say nothing about their cause.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        Problem {
            kind: format!("urn:zygo:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.code().to_owned(),
        }
    }

    /// A list's `limit` outside its range (or not a number).
    pub fn bad_limit() -> ApiError {
        ApiError::BadRequest(format!(
            "limit: must be a whole number from 1 to {}",
            crate::store::page::MAX_LIMIT
        ))
    }

    /// A token lifetime (`expiration`) outside 1 to `max` seconds, or not a number.
    pub fn bad_expiration(max: u64) -> ApiError {
        ApiError::BadRequest(format!(
            "expiration: must be a whole number of seconds from 1 to {max}"
        ))
    }

    /// Maps an error raised by the framework (parameter parsing, routing, content negotiation) into
    /// the table. Errors that already are an `ApiError` pass through unchanged.
    pub fn from_framework(err: poem::Error) -> ApiError {
        if err.is::<ApiError>() {
            return err
                .downcast::<ApiError>()
                .unwrap_or_else(|e| ApiError::Internal(e.to_string()));
        }
        use poem_openapi::error::{ParseParamError, ParsePathError, ParseRequestPayloadError};
        if let Some(e) = err.downcast_ref::<ParseParamError>() {
            return ApiError::BadRequest(format!("{}: {}", e.name, plain_reason(&e.reason)));
        }
        if let Some(e) = err.downcast_ref::<ParsePathError>() {
            return ApiError::BadRequest(format!("{}: {}", e.name, plain_reason(&e.reason)));
        }
        if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
            return ApiError::BadRequest(e.reason.clone());
        }
        match err.status() {
            StatusCode::BAD_REQUEST => ApiError::BadRequest(err.to_string()),
            StatusCode::UNAUTHORIZED => ApiError::MissingCredentials,
            StatusCode::NOT_FOUND => ApiError::RouteNotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(err.to_string()),
            _ => ApiError::Internal(err.to_string()),
        }
    }

    /// Logs server-side failures with their cause; client errors are not worth a log line.
    fn log(&self) {
        match self {
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "service unavailable"),
            _ => {}
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        if crate::store::is_unavailable(&err) {
            ApiError::Unavailable(err.to_string())
        } else {
            ApiError::Internal(err.to_string())
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn as_response(&self) -> Response {
        self.log();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = Response::builder()
            .status(self.status())
            .content_type("application/problem+json")
            .body(body);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let ApiError::TooManyRequests { retry_after }
        | ApiError::TooManyMints { retry_after, .. } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        poem::error::ResponseError::as_response(&self)
    }
}

/// The documented rows of the status table. An operation declares the rows it can answer with
/// (see [`Errors`]), so generated clients get a typed error for each status that can happen and
/// for no other.
const DOCUMENTED: &[(u16, &str)] = &[
    (
        400,
        "Malformed input: a parameter or body field that cannot be parsed or breaks the schema (the detail names it)",
    ),
    (
        401,
        "Missing, malformed, wrongly signed or expired credentials, or an unknown or disabled user",
    ),
    (
        403,
        "Authenticated, but the policies do not allow this (or not a member of the tenant, or not the session's current tenant); or a cross-site request carrying the session cookie",
    ),
    (
        404,
        "The resource does not exist, lives in another tenant, or its tenant is not yours",
    ),
    (
        409,
        "The change conflicts with the current state (for example the last Admin of a tenant, or the most live tokens a user may hold)",
    ),
    (
        413,
        "The request body is larger than the server accepts (the flow definition limit and 64 KiB: 128 KiB by default), or a flow's `definition` is larger than its limit (64 KiB of compact JSON by default); the detail says which",
    ),
    (415, "The request body is not `application/json`"),
    (
        422,
        "Well-formed input that breaks a rule (the detail names the field)",
    ),
    (
        429,
        "Too many attempts (failed password checks, or tokens minted too fast); `Retry-After` says how many seconds to wait",
    ),
    (500, "Unexpected failure; the cause is logged, never sent"),
    (503, "The database is unreachable; retry later"),
];

/// The bit of a documented status in an [`Errors`] set (compile error for an undocumented one).
const fn bit(status: u16) -> u32 {
    let mut i = 0;
    while i < DOCUMENTED.len() {
        if DOCUMENTED[i].0 == status {
            return 1 << i;
        }
        i += 1;
    }
    panic!("status not in the documented table")
}

/// Sets of documented statuses, combined with `|` in an operation's `Errors<{ … }>`.
pub mod can {
    use super::bit;
    pub const BAD_REQUEST: u32 = bit(400);
    pub const UNAUTHORIZED: u32 = bit(401);
    pub const FORBIDDEN: u32 = bit(403);
    pub const NOT_FOUND: u32 = bit(404);
    pub const CONFLICT: u32 = bit(409);
    pub const UNPROCESSABLE: u32 = bit(422);
    /// Throttled: too many failed password checks or token mints (429 with `Retry-After`).
    pub const TOO_MANY: u32 = bit(429);
    /// Every operation: a bug (500) or an unreachable database (503).
    pub const SERVER: u32 = bit(500) | bit(503);
    /// An operation with a JSON body: unparsable or schema-breaking (400), too large (413), not
    /// JSON (415).
    pub const BODY: u32 = bit(400) | bit(413) | bit(415);
    /// An authenticated operation on a tenant named in the path: a malformed id (400), no or bad
    /// credentials (401), denied or not a member (403).
    pub const TENANT: u32 = BAD_REQUEST | UNAUTHORIZED | FORBIDDEN;
    /// As [`TENANT`], on one resource of it: also 404.
    pub const RESOURCE: u32 = TENANT | NOT_FOUND;
}

/// The errors one operation can answer with: an [`ApiError`] whose OpenAPI declaration is the rows
/// of the status table in `SET` (built from [`can`]). One enum, one table; the set only chooses
/// what the document promises for that operation.
#[derive(Debug)]
pub struct Errors<const SET: u32>(pub ApiError);

impl<const SET: u32> From<ApiError> for Errors<SET> {
    fn from(err: ApiError) -> Self {
        Errors(err)
    }
}

impl<const SET: u32> From<sea_orm::DbErr> for Errors<SET> {
    fn from(err: sea_orm::DbErr) -> Self {
        Errors(err.into())
    }
}

impl<const SET: u32> From<Errors<SET>> for poem::Error {
    fn from(err: Errors<SET>) -> Self {
        let status = err.0.status().as_u16();
        if DOCUMENTED
            .iter()
            .enumerate()
            .any(|(i, (s, _))| *s == status && SET & (1 << i) == 0)
        {
            // The document would be wrong: a test (or schemathesis) must catch this in debug.
            tracing::error!(
                status,
                "an operation answered with a status it does not declare"
            );
            debug_assert!(false, "undeclared status {status} for {:?}", err.0);
        }
        err.0.into()
    }
}

impl<const SET: u32> ApiResponse for Errors<SET> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: DOCUMENTED
                .iter()
                .enumerate()
                .filter(|(i, _)| SET & (1 << i) != 0)
                .map(|(_, (status, description))| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/problem+json",
                        schema: Problem::schema_ref(),
                    }],
                    headers: if *status == 429 {
                        vec![MetaHeader {
                            name: "Retry-After".into(),
                            description: Some("Seconds to wait before trying again".into()),
                            required: true,
                            deprecated: false,
                            schema: u64::schema_ref(),
                        }]
                    } else {
                        vec![]
                    },
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// The framework explains a value it could not parse in its own type names
/// (`failed to parse "string_uuid": …`); say what the value must be instead.
pub fn plain_reason(reason: &str) -> String {
    const KINDS: &[(&str, &str)] = &[
        ("\"string_uuid\"", "must be a UUID"),
        (
            "\"string_date-time\"",
            "must be an RFC 3339 instant such as 2026-12-07T19:13:58Z (an offset's `+` sent as %2B)",
        ),
        ("\"integer(uint", "must be a whole number, 0 or more"),
        ("\"integer(", "must be a whole number"),
        ("\"number(", "must be a number"),
        ("\"boolean\"", "must be true or false"),
    ];
    if let Some(plain) = reason
        .strip_prefix("verification failed. ")
        .and_then(plain_rule)
    {
        return plain;
    }
    KINDS
        .iter()
        .find(|(kind, _)| reason.starts_with("failed to parse ") && reason.contains(kind))
        .map_or_else(|| reason.to_owned(), |(_, plain)| (*plain).to_owned())
}

/// A rule the document states for a value, as the framework names it when the value breaks it
/// (`minimum(1, exclusive: false)`, `maxLength(64)`, `pattern("^…$")`), said in words.
fn plain_rule(rule: &str) -> Option<String> {
    let (name, args) = rule.strip_suffix(')')?.split_once('(')?;
    let bound = |words: [&str; 2]| {
        let (n, exclusive) = args.split_once(", exclusive: ")?;
        Some(match exclusive {
            "true" => format!("must be {} {n}", words[1]),
            _ => format!("must be {n} {}", words[0]),
        })
    };
    match name {
        "minimum" => bound(["or more", "more than"]),
        "maximum" => bound(["or less", "less than"]),
        "minLength" | "maxLength" => {
            let most = if name == "minLength" { "least" } else { "most" };
            let unit = if args == "1" {
                "character"
            } else {
                "characters"
            };
            Some(format!("must be at {most} {args} {unit} long"))
        }
        "pattern" => Some(format!("must match the pattern {args}")),
        _ => None,
    }
}

/// Renders any error that escaped a handler (or never reached one) as problem+json.
pub async fn render_error(err: poem::Error) -> Response {
    ApiError::from_framework(err).into_response()
}

#[cfg(test)]
mod tests {
    use super::plain_reason;

    #[test]
    fn the_rules_a_value_breaks_are_said_in_words() {
        for (reason, plain) in [
            (
                "verification failed. minimum(1, exclusive: false)",
                "must be 1 or more",
            ),
            (
                "verification failed. minimum(0, exclusive: true)",
                "must be more than 0",
            ),
            (
                "verification failed. maximum(500, exclusive: false)",
                "must be 500 or less",
            ),
            (
                "verification failed. maximum(1.5, exclusive: true)",
                "must be less than 1.5",
            ),
            (
                "verification failed. maxLength(64)",
                "must be at most 64 characters long",
            ),
            (
                "verification failed. minLength(1)",
                "must be at least 1 character long",
            ),
            (
                "verification failed. pattern(\"^[a-z]+$\")",
                "must match the pattern \"^[a-z]+$\"",
            ),
            (
                "failed to parse \"integer(uint32)\": invalid digit",
                "must be a whole number, 0 or more",
            ),
            (
                "failed to parse \"string_date-time\": premature end of input (occurred while parsing \"optional_string_date-time\")",
                "must be an RFC 3339 instant such as 2026-12-07T19:13:58Z (an offset's `+` sent as %2B)",
            ),
            // A rule not known here is passed on as the framework says it.
            (
                "verification failed. multipleOf(2)",
                "verification failed. multipleOf(2)",
            ),
        ] {
            assert_eq!(plain_reason(reason), plain, "{reason}");
        }
    }
}
