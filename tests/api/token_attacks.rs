//! Attacks on the token verifier, each tried against the running service. Every refusal is a 401
//! `invalid_credentials` (only a genuine, expired token learns `token_expired`).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{Cred, SECRET, TestApp, World, kid_of};

const RSA_DER: &[u8] = include_bytes!("keys/rsa-pkcs1-test-only.der");
const EC_DER: &[u8] = include_bytes!("keys/ec-pkcs8-test-only.der");

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// HMAC-SHA256 over `header.claims` as given (raw JSON text, so any shape can be forged).
fn sign_raw(header: &str, claims: &str, key: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(claims));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(mac.finalize().into_bytes()))
}

struct Forge {
    kid: String,
    sub: String,
}

impl Forge {
    fn header(&self) -> String {
        json!({"alg": "HS256", "typ": "JWT", "kid": self.kid}).to_string()
    }
    fn claims(&self) -> Value {
        json!({"sub": self.sub, "iat": now() - 5, "exp": now() + 600, "jti": "forged", "fam": "forged"})
    }
    /// Validly signed with the service's own key: only its content can make it fail.
    fn signed(&self, header: &str, claims: &Value) -> String {
        sign_raw(header, &claims.to_string(), SECRET)
    }
    fn with_claims(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.claims();
        edit(&mut claims);
        self.signed(&self.header(), &claims)
    }
    fn with_header(&self, header: Value) -> String {
        self.signed(&header.to_string(), &self.claims())
    }
}

async fn setup() -> (World, Forge) {
    let world = World::new().await;
    let real = world.token_of("alice").await;
    let forge = Forge {
        kid: kid_of(&real),
        sub: world.alice.to_string(),
    };
    (world, forge)
}

/// Sends the token both ways it may travel and asserts the same 401 for each.
#[track_caller]
fn check(reply: &crate::helpers::Reply, why: &str, code: &str) {
    assert_eq!(reply.status, 401, "{why} was not refused: {}", reply.body);
    reply.assert_problem(401, code);
}

async fn refused(app: &TestApp, token: &str, why: &str) {
    let reply = app.get("/api/me", &Cred::Token(token.to_owned())).await;
    check(&reply, why, "invalid_credentials");
    let reply = app
        .get("/api/tenants", &Cred::Bearer(token.to_owned()))
        .await;
    check(&reply, why, "invalid_credentials");
}

#[tokio::test]
async fn the_forging_harness_makes_tokens_the_service_accepts() {
    let (world, forge) = setup().await;
    let token = forge.signed(&forge.header(), &forge.claims());
    let me = world.app.get("/api/me", &Cred::Token(token)).await;
    assert_eq!(me.assert_status(200)["id"], forge.sub);
    // Without `typ`, too: it is optional.
    let token = forge.with_header(json!({"alg": "HS256", "kid": forge.kid}));
    world
        .app
        .get("/api/me", &Cred::Token(token))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn alg_none_in_any_case_or_a_missing_alg_is_refused() {
    let (world, forge) = setup().await;
    let claims = b64(forge.claims().to_string());
    for alg in ["none", "None", "NONE", "nOnE", "", "hs256", "HS256 "] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": forge.kid}).to_string();
        // Unsigned, as `none` asks, and validly signed with the real key: both refused.
        refused(&world.app, &format!("{}.{claims}.", b64(&header)), alg).await;
        refused(
            &world.app,
            &forge.with_header(serde_json::from_str(&header).unwrap()),
            alg,
        )
        .await;
    }
    refused(
        &world.app,
        &forge.with_header(json!({"typ": "JWT", "kid": forge.kid})),
        "missing alg",
    )
    .await;
    refused(
        &world.app,
        &forge.with_header(json!({"alg": null, "kid": forge.kid})),
        "null alg",
    )
    .await;
    // A duplicated member: a lenient parser would keep the last `alg` and accept.
    let duplicated = format!(r#"{{"alg":"none","alg":"HS256","kid":"{}"}}"#, forge.kid);
    refused(
        &world.app,
        &forge.signed(&duplicated, &forge.claims()),
        "duplicate alg",
    )
    .await;
}

#[tokio::test]
async fn other_algorithms_are_refused_even_when_validly_signed() {
    let (world, forge) = setup().await;
    let claims = forge.claims();
    let sign = |alg: Algorithm, key: EncodingKey| {
        let mut header = Header::new(alg);
        header.kid = Some(forge.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let cases = [
        (
            "HS384 with the real key",
            sign(Algorithm::HS384, EncodingKey::from_secret(SECRET).unwrap()),
        ),
        (
            "HS512 with the real key",
            sign(Algorithm::HS512, EncodingKey::from_secret(SECRET).unwrap()),
        ),
        (
            "RS256",
            sign(Algorithm::RS256, EncodingKey::from_rsa_der(RSA_DER)),
        ),
        (
            "PS256",
            sign(Algorithm::PS256, EncodingKey::from_rsa_der(RSA_DER)),
        ),
        (
            "ES256",
            sign(Algorithm::ES256, EncodingKey::from_ec_der(EC_DER)),
        ),
    ];
    for (why, token) in cases {
        refused(&world.app, &token, why).await;
    }
}

#[tokio::test]
async fn a_wrong_key_or_a_damaged_signature_is_refused() {
    let (world, forge) = setup().await;
    let good = forge.signed(&forge.header(), &forge.claims());
    let (signing_input, signature) = good.rsplit_once('.').unwrap();
    let mut flipped = URL_SAFE_NO_PAD.decode(signature).unwrap();
    flipped[7] ^= 0x01;
    let mut flipped_last = URL_SAFE_NO_PAD.decode(signature).unwrap();
    *flipped_last.last_mut().unwrap() ^= 0x80;
    let cases = [
        (
            "wrong key",
            sign_raw(
                &forge.header(),
                &forge.claims().to_string(),
                b"another-secret-another-secret-0123456789",
            ),
        ),
        ("stripped signature", format!("{signing_input}.")),
        ("no signature segment", signing_input.to_owned()),
        ("truncated signature", good[..good.len() - 3].to_owned()),
        (
            "signature of 31 bytes",
            format!(
                "{signing_input}.{}",
                b64(&URL_SAFE_NO_PAD.decode(signature).unwrap()[..31])
            ),
        ),
        (
            "bit-flipped signature",
            format!("{signing_input}.{}", b64(&flipped)),
        ),
        (
            "last bit flipped",
            format!("{signing_input}.{}", b64(&flipped_last)),
        ),
        ("signature of another token", {
            let other = forge.with_claims(|c| c["jti"] = json!("other"));
            format!("{signing_input}.{}", other.rsplit_once('.').unwrap().1)
        }),
        ("one segment", b64(forge.header())),
        ("four segments", format!("{good}.{signature}")),
        ("four segments, empty last", format!("{good}.")),
        ("five segments", format!("{good}.a.b")),
        ("empty", String::new()),
        ("dots only", "..".to_owned()),
    ];
    for (why, token) in cases {
        refused(&world.app, &token, why).await;
    }
}

#[tokio::test]
async fn non_canonical_base64_is_refused_even_when_it_decodes_to_the_right_bytes() {
    let (world, forge) = setup().await;
    // A signature whose base64url spelling uses `-` or `_`, so the standard alphabet differs.
    let good = (0..200)
        .map(|i| forge.with_claims(|c| c["jti"] = json!(format!("n{i}"))))
        .find(|t| t.rsplit('.').next().unwrap().contains(['-', '_']))
        .expect("a signature with - or _");
    let parts: Vec<&str> = good.split('.').collect();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    // 32 bytes take 43 characters with 2 spare bits; setting them spells the same bytes.
    let last = parts[2].chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).unwrap();
    let sloppy_last = alphabet.chars().nth(index | 0b01).unwrap();
    assert_ne!(
        sloppy_last, last,
        "the canonical last character has zero spare bits"
    );
    let sloppy = format!("{}{}", &parts[2][..parts[2].len() - 1], sloppy_last);
    assert_eq!(
        base64::engine::GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        )
        .decode(&sloppy)
        .unwrap(),
        signature,
        "the sloppy spelling decodes to the genuine signature"
    );
    let cases = [
        (
            "spare bits set in the signature",
            format!("{}.{}.{sloppy}", parts[0], parts[1]),
        ),
        (
            "padded signature",
            format!("{}.{}.{}", parts[0], parts[1], URL_SAFE.encode(&signature)),
        ),
        (
            "standard alphabet signature",
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                STANDARD.encode(&signature).trim_end_matches('=')
            ),
        ),
        ("padded header", {
            let header = URL_SAFE.encode(forge.header());
            let header = if header.ends_with('=') {
                header
            } else {
                format!("{header}=")
            };
            format!("{header}.{}.{}", parts[1], parts[2])
        }),
        (
            "whitespace inside",
            format!("{}.{} .{}", parts[0], parts[1], parts[2]),
        ),
        (
            "percent-encoded",
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                parts[2].replace('-', "%2D").replace('_', "%5F") + "%3D"
            ),
        ),
    ];
    for (why, token) in cases {
        refused(&world.app, &token, why).await;
    }
    // Control: the canonical token passes.
    world
        .app
        .get("/api/me", &Cred::Token(good))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn claims_of_the_wrong_shape_or_time_are_refused() {
    let (world, forge) = setup().await;
    let sub = forge.sub.clone();
    let t = now();
    let cases: Vec<(&str, Value)> = vec![
        (
            "missing exp",
            json!({"sub": sub, "iat": t, "jti": "x", "fam": "x"}),
        ),
        (
            "missing iat",
            json!({"sub": sub, "exp": t + 600, "jti": "x", "fam": "x"}),
        ),
        (
            "missing sub",
            json!({"iat": t, "exp": t + 600, "jti": "x", "fam": "x"}),
        ),
        (
            "missing jti",
            json!({"sub": sub, "iat": t, "exp": t + 600, "fam": "x"}),
        ),
        (
            "missing fam",
            json!({"sub": sub, "iat": t, "exp": t + 600, "jti": "x"}),
        ),
        (
            "exp as a string",
            json!({"sub": sub, "iat": t, "exp": (t + 600).to_string(), "jti": "x", "fam": "x"}),
        ),
        (
            "exp as a float",
            json!({"sub": sub, "iat": t, "exp": (t + 600) as f64 + 0.5, "jti": "x", "fam": "x"}),
        ),
        (
            "exp as a boolean",
            json!({"sub": sub, "iat": t, "exp": true, "jti": "x", "fam": "x"}),
        ),
        (
            "exp null",
            json!({"sub": sub, "iat": t, "exp": null, "jti": "x", "fam": "x"}),
        ),
        (
            "iat as a string",
            json!({"sub": sub, "iat": t.to_string(), "exp": t + 600, "jti": "x", "fam": "x"}),
        ),
        (
            "iat as a float",
            json!({"sub": sub, "iat": t as f64 + 0.25, "exp": t + 600, "jti": "x", "fam": "x"}),
        ),
        (
            "iat in the future",
            json!({"sub": sub, "iat": t + 120, "exp": t + 600, "jti": "x", "fam": "x"}),
        ),
        (
            "exp before iat",
            json!({"sub": sub, "iat": t, "exp": t - 1, "jti": "x", "fam": "x"}),
        ),
        (
            "sub as a number",
            json!({"sub": 42, "iat": t, "exp": t + 600, "jti": "x", "fam": "x"}),
        ),
        (
            "an extra claim (a role)",
            json!({"sub": sub, "iat": t, "exp": t + 600, "jti": "x", "fam": "x", "role": "Admin"}),
        ),
        ("claims as an array", json!([sub, t, t + 600])),
    ];
    for (why, claims) in cases {
        refused(&world.app, &forge.signed(&forge.header(), &claims), why).await;
    }
    let duplicated = format!(
        r#"{{"sub":"{sub}","iat":{t},"exp":{},"exp":{},"jti":"x","fam":"x"}}"#,
        t - 10,
        t + 600
    );
    refused(
        &world.app,
        &sign_raw(&forge.header(), &duplicated, SECRET),
        "duplicate exp",
    )
    .await;
    refused(
        &world.app,
        &sign_raw(&forge.header(), "not json", SECRET),
        "claims not JSON",
    )
    .await;
    // A genuine expired token is told so: the signature proves it is ours.
    let expired = forge.with_claims(|c| {
        c["iat"] = json!(t - 700);
        c["exp"] = json!(t - 100);
    });
    let reply = world.app.get("/api/me", &Cred::Token(expired)).await;
    check(&reply, "expired", "token_expired");
}

#[tokio::test]
async fn an_unknown_or_missing_kid_is_refused() {
    let (world, forge) = setup().await;
    for (why, header) in [
        ("unknown kid", json!({"alg": "HS256", "kid": "not-a-key"})),
        (
            "kid of another case",
            json!({"alg": "HS256", "kid": forge.kid.to_uppercase()}),
        ),
        ("kid as a number", json!({"alg": "HS256", "kid": 1})),
        ("missing kid", json!({"alg": "HS256", "typ": "JWT"})),
        (
            "typ other than JWT",
            json!({"alg": "HS256", "kid": forge.kid, "typ": "at+jwt"}),
        ),
    ] {
        refused(&world.app, &forge.with_header(header), why).await;
    }
}

#[tokio::test]
async fn key_fetching_headers_are_refused_and_never_followed() {
    let (world, forge) = setup().await;
    // A listener the headers point at: the service must never connect to it.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let url = format!("http://{}/keys", trap.local_addr().unwrap());
    let jwk = json!({"kty": "oct", "k": b64(b"attacker-key-attacker-key-attacker-key")});
    for (why, header) in [
        ("jku", json!({"alg": "HS256", "kid": forge.kid, "jku": url})),
        ("x5u", json!({"alg": "HS256", "kid": forge.kid, "x5u": url})),
        ("jwk", json!({"alg": "HS256", "kid": forge.kid, "jwk": jwk})),
        (
            "x5c",
            json!({"alg": "HS256", "kid": forge.kid, "x5c": ["MIIB"]}),
        ),
        (
            "crit",
            json!({"alg": "HS256", "kid": forge.kid, "crit": ["exp"], "exp": 1}),
        ),
        (
            "cty",
            json!({"alg": "HS256", "kid": forge.kid, "cty": "JWT"}),
        ),
    ] {
        refused(&world.app, &forge.with_header(header), why).await;
    }
    // Signed with the attacker's embedded key: refused too.
    let header = json!({"alg": "HS256", "kid": forge.kid, "jwk": jwk}).to_string();
    refused(
        &world.app,
        &sign_raw(
            &header,
            &forge.claims().to_string(),
            b"attacker-key-attacker-key-attacker-key",
        ),
        "signed with the embedded jwk",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    match trap.accept() {
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the service connected out: {other:?}"),
    }
}

#[tokio::test]
async fn a_token_over_8_kib_is_refused_even_when_validly_signed() {
    let (world, forge) = setup().await;
    let fits = forge.with_claims(|c| c["jti"] = json!("j".repeat(5000)));
    assert!(fits.len() <= 8 * 1024);
    world
        .app
        .get("/api/me", &Cred::Token(fits))
        .await
        .assert_status(200);
    let big = forge.with_claims(|c| c["jti"] = json!("j".repeat(6200)));
    assert!(big.len() > 8 * 1024, "{}", big.len());
    refused(&world.app, &big, "over 8 KiB").await;
}

#[tokio::test]
async fn two_token_headers_are_refused_even_when_both_are_valid() {
    let (world, forge) = setup().await;
    let token = forge.signed(&forge.header(), &forge.claims());
    let reply = world
        .app
        .client
        .get(format!("{}/api/me", world.app.address))
        .header("token", &token)
        .header("token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["code"], "invalid_credentials");
}
