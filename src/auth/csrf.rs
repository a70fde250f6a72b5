//! Cross-site request forgery: a browser attaches the `session` cookie to requests other sites
//! make, so a state-changing request that authenticates with the cookie must come from our own
//! origin. Browsers say where a request comes from in `Sec-Fetch-Site` and `Origin`; either one
//! naming another site refuses the request. Requests with neither are not from a modern browser
//! (a script or an old client) and the `SameSite=Lax` cookie already keeps cross-site POSTs out.
//! Tokens are never sent automatically by a browser, so token requests need no check.
//!
//! Minting a token (`GET /api/token`) is a read that hands out a credential: with the cookie it
//! is refused when the browser says another site, or a sibling subdomain, started it
//! ([`is_cross_site_fetch`]), such as a link, an image or a redirect that sends the victim's
//! browser there.

use poem::Request;
use poem::http::{Method, header};

/// Whether the method may change state (anything but GET, HEAD, OPTIONS, TRACE).
pub fn is_state_changing(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether the browser says anything but this origin started this request: `Sec-Fetch-Site`
/// present and neither `same-origin` nor `none` (typed in the address bar, a bookmark).
/// `same-site` is a sibling subdomain, another application, refused as in [`is_cross_site`]. A
/// request without the header is not from a modern browser.
pub fn is_cross_site_fetch(req: &Request) -> bool {
    req.headers().get("sec-fetch-site").is_some_and(|site| {
        !matches!(
            site.to_str()
                .map(|s| s.trim().to_ascii_lowercase())
                .as_deref(),
            Ok("same-origin") | Ok("none")
        )
    })
}

/// The `scheme://host[:port]` of a URL, lower-cased, or `None` when it is not one.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if scheme.is_empty() || authority.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// Whether the request comes from a site other than this service, as far as the browser says.
/// `public_url`, when configured, is the one origin accepted; otherwise the origin must name the
/// host the request was sent to (`Host`).
pub fn is_cross_site(req: &Request, public_url: Option<&str>) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        // `same-site` is a sibling subdomain: another application, so refused as well.
        match site.to_str().map(str::to_ascii_lowercase).as_deref() {
            Ok("same-origin") | Ok("none") => {}
            _ => return true,
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Some(origin) = origin.to_str().ok().and_then(origin_of) else {
        // `Origin: null` (sandboxed frames, file: pages, some redirects) or garbage.
        return true;
    };
    match public_url.and_then(origin_of) {
        Some(ours) => origin != ours,
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_ascii_lowercase);
            let authority = origin.split_once("://").map(|(_, a)| a.to_owned());
            host.is_none() || authority != host
        }
    }
}
