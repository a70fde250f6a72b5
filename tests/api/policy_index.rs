//! The policy index against the whole set: random policy folders (the shipped schema, roles and
//! policies plus random ones from a small grammar of scopes and conditions) and random requests
//! must get the same decision, the same determining policies and the same errors either way.
//! Run longer with `PROPTEST_CASES=2000 cargo test --test api policy_index`.

use proptest::prelude::*;
use uuid::Uuid;
use zygo::authz::{Action, AuthContext, AuthMethod, PolicyBundle, Query, Resource};
use zygo::store::{TenantId, UserId};

use crate::helpers::policies_dir;

/// A handful of ids, so random scopes and random requests meet often.
fn id(n: u8) -> Uuid {
    Uuid::from_u128(u128::from(n % 3) + 1)
}

const ROLES: [&str; 4] = ["Viewer", "Editor", "Admin", "Nobody"];

#[derive(Debug, Clone)]
struct Generated {
    forbid: bool,
    principal: u8,
    principal_arg: u8,
    actions: Vec<Action>,
    action_form: u8,
    resource: u8,
    resource_arg: u8,
    condition: u8,
}

impl Generated {
    fn text(&self, n: usize) -> String {
        let effect = if self.forbid { "forbid" } else { "permit" };
        let principal = match self.principal {
            0 => "principal".to_owned(),
            1 => format!(
                "principal in Zygo::Role::\"{}\"",
                ROLES[usize::from(self.principal_arg) % 3]
            ),
            2 => format!("principal == Zygo::User::\"{}\"", id(self.principal_arg)),
            _ => "principal is Zygo::User".to_owned(),
        };
        let name = |a: &Action| format!("Zygo::Action::\"{}\"", a.name());
        let action = match self.action_form {
            0 => "action".to_owned(),
            1 => format!("action == {}", name(&self.actions[0])),
            _ => format!(
                "action in [{}]",
                self.actions.iter().map(name).collect::<Vec<_>>().join(", ")
            ),
        };
        let resource = match self.resource {
            0 => "resource".to_owned(),
            1 => format!("resource in Zygo::Tenant::\"{}\"", id(self.resource_arg)),
            2 => format!("resource == Zygo::Flow::\"{}\"", id(self.resource_arg)),
            3 => "resource is Zygo::Flow".to_owned(),
            _ => format!(
                "resource is Zygo::Member in Zygo::Tenant::\"{}\"",
                id(self.resource_arg)
            ),
        };
        let condition = match self.condition {
            0 => String::new(),
            1 => "when { resource in context.tenant }".to_owned(),
            2 => format!("unless {{ context.tenant == Zygo::Tenant::\"{}\" }}", id(1)),
            3 => "when { principal in Zygo::Role::\"Admin\" }".to_owned(),
            4 => "when { context.auth.read_only }".to_owned(),
            _ => "unless { context.auth.method == \"session\" }".to_owned(),
        };
        format!(
            "@id(\"generated-{n}\")\n{effect} ({principal}, {action}, {resource}) {condition};\n"
        )
    }
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        any::<bool>(),
        0u8..4,
        any::<u8>(),
        proptest::sample::subsequence(Action::ALL.to_vec(), 1..4),
        0u8..3,
        0u8..5,
        any::<u8>(),
        0u8..6,
    )
        .prop_map(
            |(
                forbid,
                principal,
                principal_arg,
                actions,
                action_form,
                resource,
                resource_arg,
                condition,
            )| {
                Generated {
                    forbid,
                    principal,
                    principal_arg,
                    actions,
                    action_form,
                    resource,
                    resource_arg,
                    condition,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct Asked {
    user: u8,
    role: u8,
    action: Action,
    tenant: u8,
    resource: u8,
    resource_tenant: u8,
    resource_id: u8,
}

fn asked() -> impl Strategy<Value = Asked> {
    (
        any::<u8>(),
        0u8..5,
        proptest::sample::select(Action::ALL.to_vec()),
        any::<u8>(),
        0u8..3,
        any::<u8>(),
        any::<u8>(),
    )
        .prop_map(
            |(user, role, action, tenant, resource, resource_tenant, resource_id)| Asked {
                user,
                role,
                action,
                tenant,
                resource,
                resource_tenant,
                resource_id,
            },
        )
}

/// The shipped folder plus the generated policies; `None` when the set does not validate (a
/// scope the schema rules out), which the test then skips.
fn folder(policies: &[Generated]) -> Option<(tempfile::TempDir, PolicyBundle)> {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(policies_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let text: String = policies
        .iter()
        .enumerate()
        .map(|(n, p)| p.text(n))
        .collect();
    std::fs::write(dir.path().join("generated.cedar"), text).unwrap();
    let bundle = PolicyBundle::load(dir.path()).ok()?;
    Some((dir, bundle))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_index_answers_exactly_as_the_whole_policy_set(
        policies in proptest::collection::vec(generated(), 0..24),
        requests in proptest::collection::vec(asked(), 1..40),
    ) {
        let Some((_dir, bundle)) = folder(&policies) else {
            return Ok(());
        };
        for asked in requests {
            let tenant = TenantId(id(asked.tenant));
            let resource_tenant = TenantId(id(asked.resource_tenant));
            let query = Query {
                user: UserId(id(asked.user)),
                role: [None, Some("Viewer"), Some("Editor"), Some("Admin"), Some("Nobody")]
                    [usize::from(asked.role)],
                action: asked.action,
                tenant,
                resource: match asked.resource {
                    0 => Resource::Tenant,
                    1 => Resource::Flow(id(asked.resource_id)),
                    _ => Resource::Member(UserId(id(asked.resource_id))),
                },
                resource_tenant,
                auth: match asked.user % 3 {
                    0 => AuthContext::SESSION,
                    n => AuthContext { method: AuthMethod::Token, read_only: n == 2 },
                },
                flow: None,
            };
            let indexed = bundle.decide_afresh(&query);
            // The memo answers a question, first evaluated then remembered, exactly as the
            // evaluation does.
            for _ in 0..2 {
                prop_assert_eq!(&bundle.decide(&query), &indexed, "{:?}", query);
            }
            let mut whole = bundle.decide_with_whole_set(&query);
            let mut reasons = indexed.reasons.clone();
            reasons.sort();
            whole.reasons.sort();
            prop_assert_eq!(indexed.allowed, whole.allowed, "{:?}", query);
            prop_assert_eq!(reasons, whole.reasons, "{:?}", query);
            prop_assert_eq!(indexed.errors.len(), whole.errors.len(), "{:?}", query);
        }
    }
}

#[test]
fn the_shipped_policies_are_all_reachable_through_the_index() {
    // Every shipped permit must still decide something: an Admin of the tenant is allowed each
    // action the policies grant Admins, through the index as through the whole set.
    let bundle = PolicyBundle::load(&policies_dir()).unwrap();
    let tenant = TenantId(id(1));
    for action in Action::ALL {
        for resource in [
            Resource::Tenant,
            Resource::Flow(id(2)),
            Resource::Member(UserId(id(2))),
        ] {
            let query = Query {
                user: UserId(id(0)),
                role: Some("Admin"),
                action,
                tenant,
                resource,
                resource_tenant: tenant,
                auth: AuthContext::SESSION,
                flow: None,
            };
            assert_eq!(
                bundle.decide(&query),
                bundle.decide_with_whole_set(&query),
                "{action:?} on {resource:?}"
            );
        }
    }
    let allowed = Action::ALL
        .iter()
        .filter(|action| {
            [
                Resource::Tenant,
                Resource::Flow(id(2)),
                Resource::Member(UserId(id(2))),
            ]
            .iter()
            .any(|resource| {
                bundle
                    .decide(&Query {
                        user: UserId(id(0)),
                        role: Some("Admin"),
                        action: **action,
                        tenant,
                        resource: *resource,
                        resource_tenant: tenant,
                        auth: AuthContext::SESSION,
                        flow: None,
                    })
                    .allowed
            })
        })
        .count();
    // An Admin may do every action of the schema in its own tenant.
    assert_eq!(allowed, Action::ALL.len());
}
