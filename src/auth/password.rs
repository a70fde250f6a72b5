//! Password hashing: argon2id with the OWASP-recommended cost (19 MiB, 2 passes, 1 lane).

use std::sync::OnceLock;

use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier,
    Version,
};

/// OWASP's argon2id minimum: 19 MiB of memory, 2 passes, 1 lane.
pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

/// Shortest password accepted for a new password (API and CLI alike).
pub const MIN_PASSWORD_CHARS: usize = 8;

fn hasher() -> Argon2<'static> {
    // The parameters are constants known to be valid; the fallback is never taken.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes with explicit argon2id parameters (to produce the weaker hashes of older releases in
/// tests; the service always uses [`hash`]).
pub fn hash_with(
    password: &str,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
) -> Result<String, String> {
    let params = Params::new(m_cost_kib, t_cost, p_cost, None).map_err(|e| e.to_string())?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether a stored hash is weaker than the current parameters (another algorithm or version,
/// less memory, fewer passes) and should be replaced at the next successful login.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    if parsed.algorithm != ARGON2ID_IDENT || parsed.version != Some(Version::V0x13.into()) {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(params) => {
            params.m_cost() < M_COST_KIB || params.t_cost() < T_COST || params.p_cost() < P_COST
        }
        Err(_) => true,
    }
}

/// Hashes a password into a PHC string (algorithm, parameters, salt and hash).
pub fn hash(password: &str) -> Result<String, String> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether the password matches the stored hash. Malformed hashes never match.
pub fn verify(password: &str, stored: &str) -> bool {
    // The stored string carries its own parameters: older, weaker hashes still verify.
    hasher()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

/// A hash to verify against when the e-mail is unknown, so both failures cost the same time.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("zygo-dummy-password-for-timing").unwrap_or_default())
}
