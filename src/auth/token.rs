//! API tokens: HS256 JWTs with `kid`, `sub`, `iat`, `exp`, `jti`. No tenant, no role: those are
//! resolved per request.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
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
}

/// The signing key and everything needed to verify with it.
pub struct TokenKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
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

impl TokenKeys {
    pub fn new(secret: &Secret) -> Result<Self, KeyError> {
        let encoding = EncodingKey::from_secret(secret.expose())
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        let decoding = DecodingKey::from_secret(secret.expose())
            .map_err(|e| KeyError::Invalid(e.to_string()))?;
        // The key id names the key without revealing it: a hash of a domain-separated secret.
        let mut hasher = Sha256::new();
        hasher.update(b"zygo-token-kid:");
        hasher.update(secret.expose());
        let kid = hex::encode(&hasher.finalize()[..8]);

        // HS256 only, pinned; no leeway: a token is dead the second its `exp` is reached.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(TokenKeys {
            kid,
            encoding,
            decoding,
            validation,
        })
    }

    /// Mints a token for the user, valid `seconds` from now.
    pub fn mint(&self, user: UserId, seconds: u64) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user.to_string(),
            iat: now,
            exp: now.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX)),
            jti: Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("cannot sign token: {e}")))
    }

    /// Verifies signature, algorithm, key id and expiry; returns the claims.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| ApiError::InvalidCredentials)?;
        if header.alg != Algorithm::HS256 || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(ApiError::InvalidCredentials);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => ApiError::TokenExpired,
                _ => ApiError::InvalidCredentials,
            })?;
        // RFC 7519: the token is valid strictly before `exp`.
        if data.claims.exp <= chrono::Utc::now().timestamp() {
            return Err(ApiError::TokenExpired);
        }
        Ok(data.claims)
    }
}
