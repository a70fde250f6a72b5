//! API tokens: HS256 JWTs with `kid`, `sub`, `iat`, `exp`, `jti`. No tenant, no role: those are
//! resolved per request.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::{MIN_SECRET_BYTES, Secret};
use crate::error::ApiError;
use crate::store::UserId;

/// Name of the generated secret under the data folder.
pub const SECRET_FILE: &str = "token-secret";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The family: the `jti` of the token minted from a session that this one descends from
    /// (itself for such a token). Revocation works on families.
    pub fam: String,
    /// A read-only token (`context.auth.read_only` for the policies); absent means false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ro: bool,
}

/// The signing key and every key still accepted for verifying, each named by its `kid`.
pub struct TokenKeys {
    /// The key id new tokens are signed with.
    kid: String,
    encoding: EncodingKey,
    keys: Vec<NamedKey>,
}

/// Why no signing key could be set up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("ZYGO_TOKEN_SECRET is {0} bytes; it must be at least {MIN_SECRET_BYTES} bytes")]
    TooShort(usize),
    #[error("cannot read or create the token secret file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid token secret: {0}")]
    Invalid(String),
}

/// The configured secret, or the one generated and persisted under the data folder.
pub fn load_secret(configured: Option<&Secret>, data_dir: &Path) -> Result<Secret, KeyError> {
    if let Some(secret) = configured {
        if secret.expose().len() < MIN_SECRET_BYTES {
            return Err(KeyError::TooShort(secret.expose().len()));
        }
        return Ok(secret.clone());
    }
    let path = data_dir.join(SECRET_FILE);
    let file_error = |source| KeyError::File {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= MIN_SECRET_BYTES => return Ok(Secret::new(bytes)),
        Ok(bytes) => return Err(KeyError::TooShort(bytes.len())),
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(file_error(err)),
        Err(_) => {}
    }
    std::fs::create_dir_all(data_dir).map_err(file_error)?;
    let mut bytes = vec![0u8; 64];
    rand::rng().fill_bytes(&mut bytes);
    let encoded = URL_SAFE_NO_PAD.encode(&bytes).into_bytes();
    write_private(&path, &encoded).map_err(file_error)?;
    // Another process may have won the race to create it: use whatever is on disk.
    std::fs::read(&path).map(Secret::new).map_err(file_error)
}

/// Creates the file readable by its owner only; fails if it already exists.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => file.write_all(contents),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// One named HMAC key, keyed once: each verify clones the keyed state instead of hashing the
/// secret into the inner and outer pads again.
struct NamedKey {
    kid: String,
    mac: Hmac<Sha256>,
}

/// The key id a single secret gets when it is not named: a hash of the domain-separated secret,
/// so it names the key without revealing it (and stays the same across restarts).
pub fn derived_kid(secret: &Secret) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"zygo-token-kid:");
    hasher.update(secret.expose());
    hex::encode(&hasher.finalize()[..8])
}

/// Longest accepted token, in bytes; longer ones are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Whether a key id is acceptable in configuration: short, and URL- and header-safe.
fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Parses `ZYGO_TOKEN_KEYS`: comma-separated `kid:secret` entries, the first one signs, all of
/// them verify. An entry written `:secret` gets the derived key id (the one `ZYGO_TOKEN_SECRET`
/// or the generated file would give), so a deployment can move to named keys without
/// invalidating its tokens.
pub fn parse_key_list(spec: &str) -> Result<Vec<(String, Secret)>, KeyError> {
    let mut keys: Vec<(String, Secret)> = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (kid, secret) = entry.split_once(':').ok_or_else(|| {
            KeyError::Invalid("ZYGO_TOKEN_KEYS entries are written kid:secret".into())
        })?;
        let secret = Secret::new(secret.as_bytes().to_vec());
        let kid = if kid.is_empty() {
            derived_kid(&secret)
        } else {
            kid.to_owned()
        };
        if !valid_kid(&kid) {
            return Err(KeyError::Invalid(format!(
                "key id `{kid}` in ZYGO_TOKEN_KEYS must be 1 to 64 letters, digits, `-`, `_` or `.`"
            )));
        }
        if secret.expose().len() < MIN_SECRET_BYTES {
            return Err(KeyError::Invalid(format!(
                "the key `{kid}` in ZYGO_TOKEN_KEYS is {} bytes; it must be at least {MIN_SECRET_BYTES} bytes",
                secret.expose().len()
            )));
        }
        if keys.iter().any(|(k, _)| *k == kid) {
            return Err(KeyError::Invalid(format!(
                "the key id `{kid}` appears twice in ZYGO_TOKEN_KEYS"
            )));
        }
        keys.push((kid, secret));
    }
    if keys.is_empty() {
        return Err(KeyError::Invalid("ZYGO_TOKEN_KEYS names no key".into()));
    }
    Ok(keys)
}

/// The protected header of a token. Exactly these members are allowed: anything else (`jku`,
/// `x5u`, `jwk`, `x5c`, `crit`, `cty`, …) refuses the token, so no header can make the service
/// fetch a key, trust an embedded key or skip a check. A duplicated member is refused too.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictHeader {
    alg: String,
    kid: String,
    #[serde(default)]
    typ: Option<String>,
}

/// The claims, strictly typed: integers for `iat`/`exp` (a string or a float is refused), no
/// duplicates, nothing unknown.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictClaims {
    sub: String,
    iat: i64,
    exp: i64,
    jti: String,
    fam: String,
    #[serde(default)]
    ro: bool,
}

/// Decodes one segment: base64url without padding, canonical (no stray trailing bits), so each
/// token has exactly one spelling.
fn segment(part: &str) -> Result<Vec<u8>, ApiError> {
    if part.is_empty() {
        return Err(ApiError::InvalidCredentials);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ApiError::InvalidCredentials)?;
    // The engine already refuses padding and non-zero trailing bits; re-encoding proves it.
    if URL_SAFE_NO_PAD.encode(&bytes) != part {
        return Err(ApiError::InvalidCredentials);
    }
    Ok(bytes)
}

impl TokenKeys {
    /// One key, named by its derived id (`ZYGO_TOKEN_SECRET` or the generated secret).
    pub fn new(secret: &Secret) -> Result<Self, KeyError> {
        Self::from_list(vec![(derived_kid(secret), secret.clone())])
    }

    /// Several keys: the first signs, every one verifies the tokens that name its `kid`.
    pub fn from_list(keys: Vec<(String, Secret)>) -> Result<Self, KeyError> {
        let (active_kid, active_secret) = keys
            .first()
            .ok_or_else(|| KeyError::Invalid("no token key configured".into()))?;
        let encoding = EncodingKey::from_secret(active_secret.expose())
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        let active_kid = active_kid.clone();
        let keys = keys
            .into_iter()
            .map(|(kid, secret)| {
                <Hmac<Sha256> as Mac>::new_from_slice(secret.expose())
                    .map(|mac| NamedKey { kid, mac })
                    .map_err(|e| KeyError::Invalid(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(TokenKeys {
            kid: active_kid,
            encoding,
            keys,
        })
    }

    /// The key id new tokens are signed with.
    pub fn active_kid(&self) -> &str {
        &self.kid
    }

    /// Mints a token for the user, valid `seconds` from now, in `family` (a new family, named
    /// by the token's own `jti`, when `None`), read-only or not. Returns the token and its claims.
    pub fn mint(
        &self,
        user: UserId,
        seconds: u64,
        family: Option<&str>,
        read_only: bool,
    ) -> Result<(String, Claims), ApiError> {
        self.mint_at(
            user,
            chrono::Utc::now().timestamp(),
            seconds,
            family,
            read_only,
        )
    }

    /// [`Self::mint`] issued at `now` (seconds since the epoch).
    pub fn mint_at(
        &self,
        user: UserId,
        now: i64,
        seconds: u64,
        family: Option<&str>,
        read_only: bool,
    ) -> Result<(String, Claims), ApiError> {
        let jti = Uuid::new_v4().to_string();
        let claims = Claims {
            sub: user.to_string(),
            iat: now,
            exp: now.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX)),
            fam: family.map_or_else(|| jti.clone(), str::to_owned),
            jti,
            ro: read_only,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("cannot sign token: {e}")))?;
        Ok((token, claims))
    }

    /// Verifies a token strictly, refusing anything but the one shape this service mints:
    /// at most [`MAX_TOKEN_BYTES`]; exactly three canonical base64url segments; a header of
    /// `alg` exactly `HS256`, a known `kid` and optionally `typ: JWT`, nothing else; an HMAC-SHA256
    /// signature by the key the `kid` names (compared in constant time); claims `sub`, `iat`,
    /// `exp`, `jti` with integer times, `iat` not in the future, and `exp` not reached.
    ///
    /// Only a token whose signature checks out can learn that it expired (`token_expired`); every
    /// other refusal is the same `invalid_credentials`.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        self.verify_at(token, chrono::Utc::now().timestamp())
    }

    /// [`Self::verify`] at a given clock (seconds since the epoch), for tests and fuzzing.
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Claims, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::InvalidCredentials);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ApiError::InvalidCredentials);
        };
        let header: StrictHeader = serde_json::from_slice(&segment(header_b64)?)
            .map_err(|_| ApiError::InvalidCredentials)?;
        if header.alg != "HS256" || header.typ.as_deref().is_some_and(|t| t != "JWT") {
            return Err(ApiError::InvalidCredentials);
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == header.kid)
            .ok_or(ApiError::InvalidCredentials)?;
        let signature = segment(signature_b64)?;
        let mut mac = key.mac.clone();
        mac.update(header_b64.as_bytes());
        mac.update(b".");
        mac.update(claims_b64.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| ApiError::InvalidCredentials)?;

        let claims: StrictClaims = serde_json::from_slice(&segment(claims_b64)?)
            .map_err(|_| ApiError::InvalidCredentials)?;
        if claims.iat > now || claims.exp <= claims.iat {
            return Err(ApiError::InvalidCredentials);
        }
        // RFC 7519: the token is valid strictly before `exp`; no leeway.
        if claims.exp <= now {
            return Err(ApiError::TokenExpired);
        }
        Ok(Claims {
            sub: claims.sub,
            iat: claims.iat,
            exp: claims.exp,
            jti: claims.jti,
            fam: claims.fam,
            ro: claims.ro,
        })
    }
}
