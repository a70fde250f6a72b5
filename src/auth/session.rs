//! Browser sessions: a random 256-bit id in an HttpOnly cookie; the database keeps its SHA-256, the
//! user, the selected tenant and the expiry, so any instance can serve any session.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "session";

/// How stale `last_seen_at` may get before a request refreshes it (saves a write per request);
/// never more than half the idle timeout, so the timeout stays accurate.
pub(super) const TOUCH_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// The stored key of a session id.
pub fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// A fresh session id: 256 random bits, URL-safe (never one the client proposed).
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The `Set-Cookie` value for a session id.
pub fn cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}")
}
