//! Decisions on one flow from the policies' residual over the resource, evaluated in Rust.
//!
//! A decision on a flow depends on the subject (user, role, tenant, how they authenticated), the
//! action, and the flow (its id, tenant, owner, labels and shares). Once per subject and action
//! and per policy snapshot, the whole policy set is partially evaluated with the flow unknown
//! (the same type-aware partial evaluation the flow list uses, see [`super::pushdown`]). What is
//! left of each policy is a condition on the flow; when every one of them has an exact form
//! ([`Pred`]) they are kept compiled, and a decision on a flow of the subject's tenant evaluates
//! them on its attributes: the satisfied forbids deny (and are the determining policies), else the
//! satisfied permits allow, else nothing is determining and the answer is a Deny, as Cedar's
//! authorizer answers.
//!
//! Cedar stays the judge: a policy whose residual has no exact form (it might error, or asks what
//! [`Pred`] cannot say), a partial evaluation that errors or fails, a flow of another tenant or a
//! request shape the schema was not checked for is decided by Cedar's full evaluation. The tests
//! below compare both over random policies, flows and subjects.
//!
//! The compiled residuals are kept in the snapshot's memo (so a reload starts empty), bounded by
//! an estimate of their size ([`super::memo::RESIDUAL_BYTES`]). Their key names the role read for this request,
//! so a role change reads other residuals; shares and labels are the flow's own, read with it.

use std::sync::Arc;

use super::decide::NO_ATTRIBUTES;
use super::memo::{Compiled, ResidualKey};
use super::policies::PolicyBundle;
use super::pred::Pred;
use super::pushdown::exact_pred;
use super::types::{Action, Decision, Question, Resource, ResourceKind, Subject};

impl PolicyBundle {
    /// The decision on a question about a flow from the compiled residuals, or `None` where
    /// Cedar's full evaluation must decide (see the module's documentation).
    pub(super) fn decide_natively(
        &self,
        subject: &Subject<'_>,
        question: &Question<'_>,
    ) -> Option<Decision> {
        let Resource::Flow(id) = question.resource else {
            return None;
        };
        if question.resource_tenant != subject.tenant
            || !self
                .checked_shapes
                .contains(&(question.action, ResourceKind::Flow))
        {
            return None;
        }
        let key = ResidualKey {
            user: subject.user,
            role: subject.role.map(Box::from),
            tenant: subject.tenant,
            auth: subject.auth,
            action: question.action,
        };
        let compiled = self
            .memo
            .residuals(key, || self.compile(subject, question.action).map(Arc::new))?;
        Some(compiled.decide(id, question.flow.unwrap_or(&NO_ATTRIBUTES)))
    }

    /// The residuals of every policy for `subject` doing `action` on a flow of its tenant, each
    /// with its exact condition; `None` when any of them has none or the evaluation fails.
    fn compile(&self, subject: &Subject<'_>, action: Action) -> Option<Compiled> {
        self.partially_evaluate(subject, action, |response| {
            // An error whatever the flow: Cedar reports it.
            if response.error_permits().next().is_some()
                || response.error_forbids().next().is_some()
            {
                return None;
            }
            // A residual no flow of the tenant satisfies (most often a scope naming another
            // tenant) is left out: it can neither decide nor error.
            let residuals = |ids: &mut dyn Iterator<Item = &cedar_policy::PolicyId>,
                             into: &mut Vec<(String, Pred)>|
             -> Option<()> {
                for id in ids {
                    let policy = response.get_policy(id)?;
                    match exact_pred(&policy, subject.tenant)? {
                        Pred::Const(false) => {}
                        pred => into.push((id.to_string(), pred)),
                    }
                }
                Some(())
            };
            let always = |id: &cedar_policy::PolicyId| (id.to_string(), Pred::Const(true));
            let mut permits: Vec<(String, Pred)> = response.true_permits().map(always).collect();
            residuals(&mut response.residual_permits(), &mut permits)?;
            let mut forbids: Vec<(String, Pred)> = response.true_forbids().map(always).collect();
            residuals(&mut response.residual_forbids(), &mut forbids)?;
            permits.sort_by(|a, b| a.0.cmp(&b.0));
            forbids.sort_by(|a, b| a.0.cmp(&b.0));
            Some(Compiled::new(permits, forbids))
        })
        .ok()
        .flatten()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use uuid::Uuid;

    use super::super::policies::PolicyBundle;
    use super::super::types::{Action, AuthContext, AuthMethod, Question, Resource, Subject};
    use crate::store::flows::Attributes;
    use crate::store::{TenantId, UserId};

    const LABELS: [&str; 4] = ["confidential", "finance", "ops", "x-1"];
    const ROLES: [&str; 3] = ["Viewer", "Editor", "Admin"];

    fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
        &items[rng.random_range(0..items.len())]
    }

    /// A user entity literal, from the pool or one nobody is.
    fn user(rng: &mut StdRng, users: &[UserId]) -> String {
        format!("Zygo::User::\"{}\"", pick(rng, users))
    }

    /// A random condition: every form the flow list translates, and some it cannot (which Cedar
    /// then decides) or that error.
    fn condition(rng: &mut StdRng, world: &World, depth: u32) -> String {
        if depth > 0 && rng.random_bool(0.45) {
            let a = condition(rng, world, depth - 1);
            let b = condition(rng, world, depth - 1);
            return match rng.random_range(0..4) {
                0 => format!("({a} && {b})"),
                1 => format!("({a} || {b})"),
                2 => format!("!({a})"),
                _ => {
                    let c = condition(rng, world, depth - 1);
                    format!("(if {c} then {a} else {b})")
                }
            };
        }
        let users = &world.users;
        let u = user(rng, users);
        let v = user(rng, users);
        let label = pick(rng, &LABELS);
        let other = pick(rng, &LABELS);
        let flow = pick(rng, &world.flows);
        let tenant = if rng.random_bool(0.5) {
            world.tenant
        } else {
            world.other
        };
        let share = pick(rng, &["editors", "readers"]);
        match rng.random_range(0..30) {
            0 | 1 => format!("resource.labels.contains(\"{label}\")"),
            2 => "resource.owner == principal".into(),
            3 => format!("resource.owner == {u}"),
            4 => format!("resource.owner != {u}"),
            5 => format!("resource.{share}.contains(principal)"),
            6 => format!("resource.{share}.isEmpty()"),
            7 => "resource.labels.isEmpty()".into(),
            8 => format!("resource.labels.containsAny([\"{label}\", \"{other}\"])"),
            9 => format!("resource.labels.containsAll([\"{label}\", \"{other}\"])"),
            10 => format!("principal in resource.{share}"),
            11 => "context.auth.method == \"token\"".into(),
            12 => format!("resource.{share}.contains({u})"),
            13 => format!("resource.{share}.containsAny([{u}, {v}])"),
            14 => format!("resource.{share}.containsAll([{u}, principal])"),
            15 => format!("resource == Zygo::Flow::\"{flow}\""),
            16 => format!("resource != Zygo::Flow::\"{flow}\""),
            17 => format!("resource in Zygo::Tenant::\"{tenant}\""),
            18 => format!(
                "resource in [Zygo::Flow::\"{flow}\", Zygo::Flow::\"{}\"]",
                pick(rng, &world.flows)
            ),
            19 => format!("resource is Zygo::Flow in Zygo::Tenant::\"{tenant}\""),
            20 => "resource has owner".into(),
            21 => format!("principal in Zygo::Role::\"{}\"", pick(rng, &ROLES)),
            22 => "context.auth.read_only".into(),
            23 => format!("{u} in resource.owner"),
            24 => format!("principal == {u}"),
            25 => format!("context.tenant == Zygo::Tenant::\"{tenant}\""),
            // No native form: Cedar decides these.
            26 => "resource.editors.contains(resource.owner)".into(),
            27 => format!("(resource.labels.contains(\"{label}\") == resource.readers.isEmpty())"),
            28 => "resource.labels.contains(context.auth.method)".into(),
            // Errors when reached (overflow): a Deny for those flows, whatever else holds.
            _ => format!("(resource.labels.contains(\"{label}\") && 9223372036854775807 + 1 > 0)"),
        }
    }

    struct World {
        users: Vec<UserId>,
        flows: Vec<Uuid>,
        tenant: TenantId,
        other: TenantId,
    }

    /// A random policy on flows, with any scope the grammar of the list's test has and more.
    fn policy(rng: &mut StdRng, world: &World, n: usize) -> String {
        let effect = if rng.random_bool(0.5) {
            "permit"
        } else {
            "forbid"
        };
        let principal = match rng.random_range(0..6) {
            0 => "principal".to_owned(),
            1 => "principal is Zygo::User".to_owned(),
            2 => format!("principal == {}", user(rng, &world.users)),
            _ => format!("principal in Zygo::Role::\"{}\"", pick(rng, &ROLES)),
        };
        let action = match rng.random_range(0..3) {
            0 => "action == Zygo::Action::\"ReadFlow\"",
            1 => "action in [Zygo::Action::\"ReadFlow\", Zygo::Action::\"UpdateFlow\"]",
            _ => {
                "action in [Zygo::Action::\"ReadFlow\", Zygo::Action::\"UpdateFlow\", \
                 Zygo::Action::\"DeleteFlow\", Zygo::Action::\"ShareFlow\"]"
            }
        };
        let tenant = if rng.random_bool(0.5) {
            world.tenant
        } else {
            world.other
        };
        let resource = match rng.random_range(0..5) {
            0 => "resource".to_owned(),
            1 => "resource is Zygo::Flow".to_owned(),
            2 => format!("resource in Zygo::Tenant::\"{tenant}\""),
            3 => format!("resource is Zygo::Flow in Zygo::Tenant::\"{tenant}\""),
            _ => format!("resource == Zygo::Flow::\"{}\"", pick(rng, &world.flows)),
        };
        let mut clauses = String::new();
        for _ in 0..rng.random_range(0..3) {
            let clause = if rng.random_bool(0.3) {
                "unless"
            } else {
                "when"
            };
            clauses.push_str(&format!("{clause} {{ {} }}\n", condition(rng, world, 2)));
        }
        format!(
            "@id(\"generated-{n}\")\n{effect} ({principal}, {action}, {resource})\n{clauses};\n"
        )
    }

    fn attributes(rng: &mut StdRng, world: &World) -> Attributes {
        let some = |rng: &mut StdRng, p: f64| -> Vec<UserId> {
            world
                .users
                .iter()
                .filter(|_| rng.random_bool(p))
                .copied()
                .collect()
        };
        Attributes {
            owner: rng.random_bool(0.9).then(|| *pick(rng, &world.users)),
            labels: LABELS
                .iter()
                .filter(|_| rng.random_bool(0.3))
                .map(|l| (*l).to_owned())
                .collect(),
            editors: some(rng, 0.2),
            readers: some(rng, 0.2),
        }
    }

    #[test]
    fn decisions_from_the_residuals_are_cedars_own_with_the_same_determining_policies() {
        let seed: u64 = std::env::var("ZYGO_RESIDUAL_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(26);
        let rounds: usize = std::env::var("ZYGO_RESIDUAL_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60);
        let mut rng = StdRng::seed_from_u64(seed);
        let world = World {
            users: (1..=5).map(|n| UserId(Uuid::from_u128(n))).collect(),
            flows: (100..104).map(Uuid::from_u128).collect(),
            tenant: TenantId(Uuid::from_u128(7)),
            other: TenantId(Uuid::from_u128(8)),
        };
        let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&shipped).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        let auths = [
            AuthContext::SESSION,
            AuthContext {
                method: AuthMethod::Token,
                read_only: false,
            },
            AuthContext {
                method: AuthMethod::Token,
                read_only: true,
            },
        ];
        let actions = [
            Action::ReadFlow,
            Action::UpdateFlow,
            Action::DeleteFlow,
            Action::ShareFlow,
        ];
        let (mut native, mut total, mut allowed) = (0, 0, 0);
        for round in 0..rounds {
            // Round 0 is the shipped policies alone.
            let count = if round == 0 {
                0
            } else {
                rng.random_range(1..6)
            };
            let extra: String = (0..count).map(|n| policy(&mut rng, &world, n)).collect();
            std::fs::write(dir.path().join("generated.cedar"), &extra).unwrap();
            let bundle = PolicyBundle::load(dir.path())
                .unwrap_or_else(|err| panic!("the generated policies load: {err:?}\n{extra}"));
            for _ in 0..150 {
                let attrs = attributes(&mut rng, &world);
                let role = rng.random_bool(0.9).then(|| *pick(&mut rng, &ROLES));
                let subject = Subject {
                    user: *pick(&mut rng, &world.users),
                    role,
                    tenant: world.tenant,
                    auth: *pick(&mut rng, &auths),
                };
                let question = Question {
                    action: *pick(&mut rng, &actions),
                    resource: Resource::Flow(*pick(&mut rng, &world.flows)),
                    resource_tenant: if rng.random_bool(0.95) {
                        world.tenant
                    } else {
                        world.other
                    },
                    flow: rng.random_bool(0.97).then_some(&attrs),
                };
                let query = crate::authz::Query {
                    user: subject.user,
                    role: subject.role,
                    action: question.action,
                    tenant: subject.tenant,
                    resource: question.resource,
                    resource_tenant: question.resource_tenant,
                    auth: subject.auth,
                    flow: question.flow,
                };
                let cedar = bundle.decide_with_whole_set(&query);
                total += 1;
                allowed += usize::from(cedar.allowed);
                if let Some(decided) = bundle.decide_natively(&subject, &question) {
                    native += 1;
                    assert_eq!(
                        decided, cedar,
                        "seed {seed}, round {round}: {subject:?} {question:?}\n{extra}"
                    );
                }
                // What the service calls, residual or not, memo or not.
                assert_eq!(bundle.decide_afresh(&query), cedar, "{extra}");
                assert_eq!(bundle.decide(&query), cedar, "{extra}");
                assert_eq!(bundle.decide(&query), cedar, "{extra}");
            }
        }
        // Both paths and both answers were exercised.
        assert!(native * 2 > total, "{native} of {total} decided natively");
        assert!(native < total, "Cedar decided none");
        assert!(
            allowed * 10 > total && allowed * 10 < total * 9,
            "{allowed} of {total} allowed"
        );
    }
}
