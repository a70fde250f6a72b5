//! The web console at `/`: one HTML page, two scripts and a style sheet from `console/`, embedded in
//! the binary (no build step). It speaks only the public API, with the session cookie, exactly
//! as any other browser client would: same-origin `fetch`, so the CSRF rule (`Origin` and
//! `Sec-Fetch-Site` name this service) holds without anything special. Its pages get a strict
//! Content-Security-Policy: scripts, styles and requests from this origin only, no inline code.

use poem::http::{Method, header};
use poem::{Endpoint, IntoResponse, Request, Response};

const INDEX_HTML: &str = include_str!("../../console/index.html");
const CONSOLE_JS: &str = include_str!("../../console/console.js");
const AUDIT_JS: &str = include_str!("../../console/audit.js");
const CONSOLE_CSS: &str = include_str!("../../console/console.css");

/// What the console's responses may load and do.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The console's assets: path, content type, body.
const ASSETS: [(&str, &str, &str); 4] = [
    ("/", "text/html; charset=utf-8", INDEX_HTML),
    (
        "/console/console.js",
        "text/javascript; charset=utf-8",
        CONSOLE_JS,
    ),
    // The audit pages (the tenant's trail, your security events).
    (
        "/console/audit.js",
        "text/javascript; charset=utf-8",
        AUDIT_JS,
    ),
    (
        "/console/console.css",
        "text/css; charset=utf-8",
        CONSOLE_CSS,
    ),
];

fn asset(content_type: &'static str, body: &'static str) -> Response {
    Response::builder()
        .content_type(content_type)
        // Revalidated on every load, so an upgraded binary serves its own console at once.
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::REFERRER_POLICY, "no-referrer")
        .body(body)
}

/// Answers `GET` (and `HEAD`) of the console's paths, and passes every other request on. A
/// middleware rather than a route: the OpenAPI service is nested at `/` and would take `/` itself.
pub async fn serve<E: Endpoint>(next: std::sync::Arc<E>, req: Request) -> poem::Result<Response> {
    if matches!(*req.method(), Method::GET | Method::HEAD)
        && let Some((_, content_type, body)) =
            ASSETS.iter().find(|(path, _, _)| *path == req.uri().path())
    {
        return Ok(asset(content_type, body));
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// The metrics label of a console route.
pub fn operation(path: &str) -> Option<&'static str> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(p, _, _)| *p)
}
