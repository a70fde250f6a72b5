//! Browser sessions: a random 256-bit id in an HttpOnly cookie; the database keeps its SHA-256, the
//! user, the selected tenant and the expiry, so any instance can serve any session.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use rand::RngCore;
use sea_orm::ConnectionTrait;
use sha2::{Digest, Sha256};

use super::{Authn, Caller, Via};
use crate::error::{ApiError, ApiResult};
use crate::store::{self, TenantId, UserId};

pub const SESSION_COOKIE: &str = "session";

/// How stale `last_seen_at` may get before a request refreshes it (saves a write per request);
/// never more than half the idle timeout, so the timeout stays accurate.
const TOUCH_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// The stored key of a session id.
pub fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Starts a fresh session (never one the client proposed) and returns its cookie value and the
/// stored session.
pub async fn start(
    authn: &Authn,
    db: &impl ConnectionTrait,
    user: UserId,
    tenant: Option<TenantId>,
) -> ApiResult<(String, store::sessions::Session)> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let id = URL_SAFE_NO_PAD.encode(bytes);
    let lifetime = chrono::Duration::from_std(authn.session_lifetime)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let session =
        store::sessions::create(db, hash_id(&id), user, tenant, Utc::now() + lifetime).await?;
    Ok((id, session))
}

/// Resolves a session cookie into a caller; unknown, expired (absolute lifetime or idle timeout)
/// or disabled-user sessions are a 401. A database that cannot be read is a 503, never a pass.
pub async fn authenticate(authn: &Authn, id: &str) -> ApiResult<Caller> {
    let (db, reads) = (&authn.db, &authn.reads);
    let id_hash = hash_id(id);
    let session = reads
        .session(&id_hash)
        .await?
        .ok_or(ApiError::SessionInvalid)?;
    let now = Utc::now();
    let idle = chrono::Duration::from_std(authn.session_idle)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if session.expires_at <= now || session.last_seen_at + idle <= now {
        store::sessions::delete(db, &id_hash).await?;
        return Err(ApiError::SessionInvalid);
    }
    let user = UserId(session.user_id);
    // A disabled user, or a session started before the user's last kill switch.
    if !authn
        .standing(user)
        .await?
        .is_some_and(|standing| standing.admits_session(session.created_at))
    {
        return Err(ApiError::SessionInvalid);
    }
    let touch_after = chrono::Duration::from_std(TOUCH_AFTER.min(authn.session_idle / 2))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if now - session.last_seen_at >= touch_after {
        store::sessions::touch(db, &id_hash).await?;
    }
    Ok(Caller {
        user_id: user,
        via: Via::Session {
            id_hash,
            current_tenant: session.current_tenant_id.map(TenantId),
            created_at: session.created_at,
        },
    })
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
