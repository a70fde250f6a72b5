//! Property-based fuzzing (proptest). Runs briefly in the suite; run longer by hand with
//! `PROPTEST_CASES=100000 ZYGO_FUZZ_STEPS=5000 cargo test --test api fuzz`.
//!
//! - the token verifier against random bytes, mutations of genuine tokens, and validly signed
//!   tokens of every header and claim shape, checked against a reference model of the rules;
//! - the Cedar decision path against a reference model of the policies;
//! - the running service: random role changes and requests, each status checked against the
//!   model of the tenancy matrix (this exercises the role cache's invalidation too).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use uuid::Uuid;
use zygo::auth::TokenKeys;
use zygo::authz::{Action, PolicyBundle, Query, Resource};
use zygo::config::Secret;
use zygo::error::ApiError;
use zygo::store::{TenantId, UserId};

use crate::helpers::{Cred, SECRET, policies_dir};
use crate::tenancy_matrix::{Matrix, OPS, Target, Who, expected};

const NOW: i64 = 1_800_000_000;

fn keys() -> TokenKeys {
    TokenKeys::from_list(vec![("k1".into(), Secret::new(SECRET.to_vec()))]).unwrap()
}

fn sign(header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn genuine() -> String {
    let claims = json!({"sub": Uuid::nil().to_string(), "iat": NOW - 10, "exp": NOW + 600, "jti": "j", "fam": "j"});
    sign(&json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}), &claims)
}

proptest! {
    #[test]
    fn random_strings_are_never_accepted(token in "[A-Za-z0-9_.=+/ -]{0,300}") {
        prop_assert!(keys().verify_at(&token, NOW).is_err());
    }

    #[test]
    fn random_bytes_never_panic_or_pass(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(keys().verify_at(&text, NOW).is_err());
    }

    #[test]
    fn any_change_to_a_genuine_token_is_refused(
        position in 0usize..400,
        replacement in "[A-Za-z0-9_.=+/-]",
        kind in 0u8..4,
    ) {
        let token = genuine();
        prop_assume!(keys().verify_at(&token, NOW).is_ok());
        let at = position % token.len();
        let mutated = match kind {
            0 => format!("{}{}{}", &token[..at], replacement, &token[at + 1..]),
            1 => format!("{}{}", &token[..at], &token[at + 1..]),
            2 => format!("{}{}{}", &token[..at], replacement, &token[at..]),
            _ => token[..at].to_owned(),
        };
        prop_assume!(mutated != token);
        prop_assert!(keys().verify_at(&mutated, NOW).is_err(), "accepted {mutated}");
    }
}

/// A header or claim member: absent, right, or of a wrong type or value.
#[derive(Debug, Clone)]
enum Member {
    Absent,
    Value(Value),
}

fn member(right: Vec<Value>, wrong: Vec<Value>) -> impl Strategy<Value = (Member, bool)> {
    let right: Vec<(Member, bool)> = right
        .into_iter()
        .map(|v| (Member::Value(v), true))
        .collect();
    let mut wrong: Vec<(Member, bool)> = wrong
        .into_iter()
        .map(|v| (Member::Value(v), false))
        .collect();
    wrong.push((Member::Absent, false));
    proptest::sample::select([right, wrong].concat())
}

fn put(map: &mut Map<String, Value>, name: &str, m: &Member) {
    if let Member::Value(v) = m {
        map.insert(name.to_owned(), v.clone());
    }
}

proptest! {
    #[test]
    fn validly_signed_tokens_are_judged_as_the_model_says(
        (alg, alg_ok) in member(vec![json!("HS256")], vec![json!("none"), json!("HS512"), json!("hs256"), json!("RS256"), json!(1)]),
        (kid, kid_ok) in member(vec![json!("k1")], vec![json!("k2"), json!(""), json!(7)]),
        typ in proptest::sample::select(vec![(Member::Absent, true), (Member::Value(json!("JWT")), true), (Member::Value(json!("jwt")), false), (Member::Value(json!(null)), false)]),
        extra_header in proptest::sample::select(vec![None, Some("jku"), Some("x5u"), Some("jwk"), Some("crit"), Some("cty")]),
        (sub, sub_ok) in member(vec![json!(Uuid::nil().to_string())], vec![json!(5), json!(null)]),
        (jti, jti_ok) in member(vec![json!("j")], vec![json!(1), json!(["j"])]),
        (fam, fam_ok) in member(vec![json!("f")], vec![json!(false)]),
        iat_offset in -1000i64..1000,
        exp_offset in -1000i64..1000,
        iat_kind in 0u8..5,
        exp_kind in 0u8..5,
        extra_claim in proptest::sample::select(vec![None, Some("role"), Some("tenant")]),
    ) {
        let (typ, typ_ok) = typ;
        let mut header = Map::new();
        put(&mut header, "alg", &alg);
        put(&mut header, "kid", &kid);
        put(&mut header, "typ", &typ);
        if let Some(name) = extra_header {
            header.insert(name.into(), json!("http://127.0.0.1:9/"));
        }
        let time = |kind: u8, value: i64| match kind {
            0..=2 => (Member::Value(json!(value)), true),
            3 => (Member::Value(json!(value.to_string())), false),
            _ => (Member::Value(json!(value as f64 + 0.5)), false),
        };
        let (iat, iat_ok) = time(iat_kind, NOW + iat_offset);
        let (exp, exp_ok) = time(exp_kind, NOW + exp_offset);
        let mut claims = Map::new();
        put(&mut claims, "sub", &sub);
        put(&mut claims, "iat", &iat);
        put(&mut claims, "exp", &exp);
        put(&mut claims, "jti", &jti);
        put(&mut claims, "fam", &fam);
        if let Some(name) = extra_claim {
            claims.insert(name.into(), json!("Admin"));
        }
        let token = sign(&Value::Object(header), &Value::Object(claims));

        // The model.
        let shape_ok = alg_ok && kid_ok && typ_ok && extra_header.is_none()
            && sub_ok && jti_ok && fam_ok && iat_ok && exp_ok && extra_claim.is_none();
        let (iat_v, exp_v) = (NOW + iat_offset, NOW + exp_offset);
        let model = if !shape_ok || iat_v > NOW || exp_v <= iat_v {
            "invalid"
        } else if exp_v <= NOW {
            "expired"
        } else {
            "ok"
        };
        let actual = match keys().verify_at(&token, NOW) {
            Ok(_) => "ok",
            Err(ApiError::TokenExpired) => "expired",
            Err(ApiError::InvalidCredentials) => "invalid",
            Err(other) => panic!("unexpected error {other:?}"),
        };
        prop_assert_eq!(actual, model, "token {}", token);
    }
}

/// The reference model of the shipped policies (and of the schema: each action applies to one
/// kind of resource, 0 tenant, 1 flow, 2 member; any other request is invalid, so denied).
fn model_allows(role: Option<&str>, action: Action, same_tenant: bool, kind: u8) -> bool {
    use Action::*;
    let rank = match role {
        Some("Admin") => 3,
        Some("Editor") => 2,
        Some("Viewer") => 1,
        _ => 0,
    };
    let needed = match action {
        CreateTenant => 0,
        SelectTenant | ReadTenant | ListMembers | ListFlows | ReadFlow | Authorize => 1,
        CreateFlow => 2,
        // The flow of these questions has no owner and no shares: only Admins write or share it.
        UpdateFlow | DeleteFlow | ShareFlow | SetMemberRole | RemoveMember | AuthorizeOnBehalf
        | ReadAudit => 3,
    };
    let applies_to = match action {
        ReadFlow | UpdateFlow | DeleteFlow | ShareFlow => 1,
        SetMemberRole | RemoveMember | AuthorizeOnBehalf => 2,
        _ => 0,
    };
    same_tenant && rank >= needed && kind == applies_to
}

proptest! {
    #[test]
    fn cedar_decisions_match_the_reference_model(
        role in proptest::sample::select(vec![None, Some("Admin"), Some("Editor"), Some("Viewer"), Some("Owner")]),
        action in proptest::sample::select(Action::ALL.to_vec()),
        same_tenant in any::<bool>(),
        resource_kind in 0u8..3,
        user in any::<u128>(),
        tenant in any::<u128>(),
        other in any::<u128>(),
        id in any::<u128>(),
    ) {
        static BUNDLE: std::sync::OnceLock<PolicyBundle> = std::sync::OnceLock::new();
        let bundle = BUNDLE.get_or_init(|| PolicyBundle::load(&policies_dir()).unwrap());
        prop_assume!(tenant != other);
        let tenant = TenantId(Uuid::from_u128(tenant));
        let resource_tenant = if same_tenant { tenant } else { TenantId(Uuid::from_u128(other)) };
        let resource = match resource_kind {
            0 => Resource::Tenant,
            1 => Resource::Flow(Uuid::from_u128(id)),
            _ => Resource::Member(UserId(Uuid::from_u128(id))),
        };
        let decision = bundle.decide(&Query {
            user: UserId(Uuid::from_u128(user)),
            role,
            action,
            tenant,
            resource,
            resource_tenant,
            auth: zygo::authz::AuthContext::SESSION,
            flow: None,
        });
        prop_assert_eq!(
            decision.allowed,
            model_allows(role, action, same_tenant, resource_kind),
            "{:?} {:?} same tenant {}: {:?}", role, action, same_tenant, decision
        );
    }
}

/// One step of the service fuzz: change Zed's role in Acme, or make a request as Zed.
#[derive(Debug, Clone)]
enum Step {
    SetRole(Option<&'static str>),
    Request(usize, Target),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => proptest::sample::select(vec![None, Some("Admin"), Some("Editor"), Some("Viewer")])
            .prop_map(Step::SetRole),
        4 => (0..OPS.len(), proptest::sample::select(vec![Target::Own, Target::Foreign, Target::Missing, Target::Cross]))
            .prop_map(|(op, target)| Step::Request(op, target)),
    ]
}

#[tokio::test]
async fn the_running_service_follows_the_model_through_random_role_changes() {
    let steps: usize = std::env::var("ZYGO_FUZZ_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let matrix = Matrix::new().await;
    let app = &matrix.world.app;
    let zed = app
        .add_user("zed@example.com", crate::helpers::PASSWORD)
        .await;
    let zed_cred = Cred::Token(matrix.world.token_of("zed").await);
    let admin = matrix.creds[0].1.clone();
    let acme = matrix.world.acme;
    let mut runner = TestRunner::deterministic();
    let mut role: Option<&str> = None;
    let mut log = Vec::new();
    for _ in 0..steps {
        let step = step().new_tree(&mut runner).unwrap().current();
        log.push(format!("{step:?}"));
        match step {
            Step::SetRole(Some(new)) => {
                let reply = app
                    .put(
                        &format!("/api/tenants/{acme}/members/{}", zed),
                        &admin,
                        json!({"role": new}),
                    )
                    .await;
                assert!(reply.status.is_success(), "{log:?}: {}", reply.body);
                if role.is_none() {
                    // A non-member is invited; the role is theirs once they accept.
                    assert_eq!(reply.status, 202, "{log:?}: {}", reply.body);
                    let accepted = app
                        .post(
                            &format!("/api/invitations/{acme}/accept"),
                            &zed_cred,
                            json!({}),
                        )
                        .await;
                    assert_eq!(accepted.status, 200, "{log:?}: {}", accepted.body);
                }
                role = Some(new);
            }
            Step::SetRole(None) => {
                let reply = app
                    .delete(&format!("/api/tenants/{acme}/members/{}", zed), &admin)
                    .await;
                // A non-member's removal withdraws any invitation: 204 too.
                assert_eq!(reply.status.as_u16(), 204, "{log:?}: {}", reply.body);
                role = None;
            }
            Step::Request(op, target) => {
                let who = match role {
                    Some("Admin") => Who::Admin,
                    Some("Editor") => Who::Editor,
                    Some("Viewer") => Who::Viewer,
                    _ => Who::NonMember,
                };
                let Some((status, code)) = expected(who, OPS[op], target) else {
                    continue;
                };
                // Zed's own flow: the model is about roles, and Editors write the flows they own.
                let flow = matrix.reset_for(zed).await;
                let (method, path, body) = matrix.request(OPS[op], target, flow);
                let reply = app.request(method, &path, &zed_cred, body).await;
                assert_eq!(reply.status.as_u16(), status, "{log:?}: {}", reply.body);
                if !code.is_empty() {
                    reply.assert_problem(status, code);
                }
            }
        }
    }
}
