//! The tenancy matrix: every caller (each role, a non-member, anonymous) × every tenant-scoped
//! operation × the caller's own tenant, a foreign tenant, a non-existent tenant, and a resource of
//! another tenant addressed under the caller's tenant. Every cell asserts its status and code; all
//! 404s of a kind have identical bodies and headers. Then self-escalation, mass assignment, and
//! the timing of hidden versus missing resources.

use std::collections::BTreeMap;
use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use zygo::store::{self, TenantId, UserId};

use crate::helpers::{Cred, PASSWORD, Reply, World};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Who {
    Admin,
    Editor,
    Viewer,
    NonMember,
    Anonymous,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    ReadTenant,
    ListMembers,
    SetMemberRole,
    RemoveMember,
    ListFlows,
    CreateFlow,
    ReadFlow,
    ReplaceFlow,
    PatchFlow,
    DeleteFlow,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    /// Acme, where Admin/Editor/Viewer hold their roles and NonMember holds none.
    Own,
    /// Initech: nobody of the callers belongs to it.
    Foreign,
    /// A tenant id that does not exist.
    Missing,
    /// Initech's flow or member, addressed under Acme's path.
    Cross,
}

pub(crate) const OPS: [Op; 10] = [
    Op::ReadTenant,
    Op::ListMembers,
    Op::SetMemberRole,
    Op::RemoveMember,
    Op::ListFlows,
    Op::CreateFlow,
    Op::ReadFlow,
    Op::ReplaceFlow,
    Op::PatchFlow,
    Op::DeleteFlow,
];

impl Op {
    fn specific(self) -> Option<&'static str> {
        match self {
            Op::SetMemberRole | Op::RemoveMember => Some("member"),
            Op::ReadFlow | Op::ReplaceFlow | Op::PatchFlow | Op::DeleteFlow => Some("flow"),
            _ => None,
        }
    }
}

/// The expected status and code of a cell; `None`: the cell does not apply.
pub(crate) fn expected(who: Who, op: Op, target: Target) -> Option<(u16, &'static str)> {
    use Op::*;
    if who == Who::Anonymous {
        return Some((401, "unauthenticated"));
    }
    let member = who != Who::NonMember && target != Target::Foreign && target != Target::Missing;
    if !member {
        // Not a member of the tenant in the URL: 403 on the tenant, 404 on anything in it.
        return Some(match op.specific() {
            Some(_) => (404, "not_found"),
            None => (403, "forbidden"),
        });
    }
    let allowed = match op {
        ReadTenant | ListMembers | ListFlows | ReadFlow => true,
        CreateFlow | ReplaceFlow | PatchFlow | DeleteFlow => who != Who::Viewer,
        SetMemberRole | RemoveMember => who == Who::Admin,
    };
    if target == Target::Cross {
        return match (op.specific(), op) {
            // Users are global: putting one in your tenant is inviting them, not a leak.
            (_, SetMemberRole) | (None, _) => None,
            // Not a member here: any invitation is withdrawn, the same 204 whether or not there
            // was one (so the answer never tells whether the id names a user).
            (_, RemoveMember) if allowed => Some((204, "")),
            // Another tenant's flow is a missing flow here, whatever the caller may do to one.
            (Some("flow"), _) => Some((404, "not_found")),
            (Some(_), _) if !allowed => Some((403, "forbidden")),
            (Some(_), _) => Some((404, "not_found")),
        };
    }
    if !allowed {
        return Some((403, "forbidden"));
    }
    Some(match op {
        CreateFlow => (201, ""),
        SetMemberRole | ReadTenant | ListMembers | ListFlows | ReadFlow | ReplaceFlow
        | PatchFlow => (200, ""),
        RemoveMember | DeleteFlow => (204, ""),
    })
}

pub(crate) struct Matrix {
    pub(crate) world: World,
    pub(crate) initech: TenantId,
    pub(crate) initech_flow: Uuid,
    /// A Viewer of Initech only.
    pub(crate) gina: UserId,
    /// A Viewer of Acme, the target of member operations there.
    pub(crate) frank: UserId,
    pub(crate) creds: Vec<(Who, Cred)>,
}

impl Matrix {
    pub(crate) async fn new() -> Matrix {
        let world = World::new().await;
        let app = &world.app;
        let erin = app.add_user("erin@example.com", PASSWORD).await;
        let gina = app.add_user("gina@example.com", PASSWORD).await;
        let frank = app.add_user("frank@example.com", PASSWORD).await;
        let initech = app.add_tenant("Initech", erin).await;
        app.set_role(initech, gina, "Viewer").await;
        app.set_role(world.acme, frank, "Viewer").await;
        let initech_flow = store::flows::create(
            &app.state.db,
            initech,
            erin,
            "tps",
            json!({}),
            &[],
            &zygo::store::audit::Actor::default(),
        )
        .await
        .unwrap()
        .id;
        let creds = vec![
            (Who::Admin, Cred::Token(world.token_of("alice").await)),
            (Who::Editor, Cred::Token(world.token_of("bob").await)),
            (Who::Viewer, Cred::Token(world.token_of("carol").await)),
            (Who::NonMember, Cred::Token(world.token_of("dave").await)),
            (Who::Anonymous, Cred::None),
        ];
        Matrix {
            world,
            initech,
            initech_flow,
            gina,
            frank,
            creds,
        }
    }

    /// A fresh Acme flow and Frank back in Acme, so destructive cells do not affect others.
    pub(crate) async fn reset(&self) -> Uuid {
        self.reset_for(self.world.bob).await
    }

    /// As [`Matrix::reset`], the flow owned by `owner`.
    pub(crate) async fn reset_for(&self, owner: UserId) -> Uuid {
        let app = &self.world.app;
        app.set_role(self.world.acme, self.frank, "Viewer").await;
        app.state
            .authz
            .forget_role(self.frank, self.world.acme)
            .await;
        // Owned by the Editor, who may then change and delete it like the Admin.
        store::flows::create(
            &app.state.db,
            self.world.acme,
            owner,
            "fresh",
            json!({}),
            &[],
            &zygo::store::audit::Actor::default(),
        )
        .await
        .unwrap()
        .id
    }

    pub(crate) fn request(
        &self,
        op: Op,
        target: Target,
        acme_flow: Uuid,
    ) -> (Method, String, Option<Value>) {
        let tenant = match target {
            Target::Own | Target::Cross => self.world.acme.0,
            Target::Foreign => self.initech.0,
            Target::Missing => Uuid::new_v4(),
        };
        let flow = match target {
            Target::Own => acme_flow,
            Target::Foreign | Target::Cross => self.initech_flow,
            Target::Missing => Uuid::new_v4(),
        };
        let member = match target {
            Target::Own => self.frank.0,
            Target::Foreign | Target::Cross => self.gina.0,
            Target::Missing => Uuid::new_v4(),
        };
        let base = format!("/api/tenants/{tenant}");
        match op {
            Op::ReadTenant => (Method::GET, base, None),
            Op::ListMembers => (Method::GET, format!("{base}/members"), None),
            Op::SetMemberRole => (
                Method::PUT,
                format!("{base}/members/{member}"),
                Some(json!({"role": "Viewer"})),
            ),
            Op::RemoveMember => (Method::DELETE, format!("{base}/members/{member}"), None),
            Op::ListFlows => (Method::GET, format!("{base}/flows"), None),
            Op::CreateFlow => (
                Method::POST,
                format!("{base}/flows"),
                Some(json!({"name": "new"})),
            ),
            Op::ReadFlow => (Method::GET, format!("{base}/flows/{flow}"), None),
            Op::ReplaceFlow => (
                Method::PUT,
                format!("{base}/flows/{flow}"),
                Some(json!({"name": "replaced"})),
            ),
            Op::PatchFlow => (
                Method::PATCH,
                format!("{base}/flows/{flow}"),
                Some(json!({"name": "patched"})),
            ),
            Op::DeleteFlow => (Method::DELETE, format!("{base}/flows/{flow}"), None),
        }
    }
}

/// Headers that must match between indistinguishable replies (all but the date).
fn comparable_headers(reply: &Reply) -> BTreeMap<String, String> {
    reply
        .headers
        .iter()
        // The date and the request id differ per request whatever the resource.
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_caller_operation_and_tenant_gets_exactly_its_status() {
    let matrix = Matrix::new().await;
    let app = &matrix.world.app;
    let mut not_found: BTreeMap<&str, Vec<(String, Reply)>> = BTreeMap::new();
    let mut forbidden: Vec<(String, Reply)> = Vec::new();
    let mut cells = 0;
    for (who, cred) in &matrix.creds {
        for op in OPS {
            for target in [Target::Own, Target::Foreign, Target::Missing, Target::Cross] {
                let Some((status, code)) = expected(*who, op, target) else {
                    continue;
                };
                let acme_flow = matrix.reset().await;
                let (method, path, body) = matrix.request(op, target, acme_flow);
                let reply = app.request(method, &path, cred, body).await;
                let cell = format!("{who:?} {op:?} {target:?}");
                assert_eq!(reply.status.as_u16(), status, "{cell}: {}", reply.body);
                cells += 1;
                if code.is_empty() {
                    continue;
                }
                reply.assert_problem(status, code);
                if status == 404 {
                    let kind = op.specific().unwrap();
                    not_found.entry(kind).or_default().push((cell, reply));
                } else if status == 403
                    && (*who == Who::NonMember
                        || matches!(target, Target::Foreign | Target::Missing))
                {
                    forbidden.push((cell, reply));
                }
            }
        }
    }
    assert_eq!(cells, 5 * 10 * 3 + 5 * 6 + 5, "every applicable cell ran");
    // Indistinguishable: one body and one header set per kind of 404, and for non-member 403s.
    let groups = not_found
        .iter()
        .map(|(k, v)| (*k, v))
        .chain([("tenant", &forbidden)]);
    for (kind, replies) in groups {
        let (first_cell, first) = &replies[0];
        for (cell, reply) in replies {
            assert_eq!(reply.body, first.body, "{kind}: {cell} vs {first_cell}");
            assert_eq!(
                comparable_headers(reply),
                comparable_headers(first),
                "{kind}: {cell} vs {first_cell}"
            );
        }
    }
    assert!(not_found["flow"].len() >= 4 * 3 * 4);
    // Nothing of Initech was touched by all of that.
    let erin = Cred::Token(matrix.world.token_of("erin").await);
    let kept = app
        .get(
            &format!(
                "/api/tenants/{}/flows/{}",
                matrix.initech, matrix.initech_flow
            ),
            &erin,
        )
        .await;
    assert_eq!(kept.assert_status(200)["name"], "tps");
    let members = app
        .get(&format!("/api/tenants/{}/members", matrix.initech), &erin)
        .await;
    assert_eq!(
        members.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn nobody_raises_their_own_role_and_mass_assignment_is_ignored() {
    let matrix = Matrix::new().await;
    let world = &matrix.world;
    let app = &world.app;
    for (who, user) in [(Who::Editor, world.bob), (Who::Viewer, world.carol)] {
        let cred = &matrix.creds.iter().find(|(w, _)| *w == who).unwrap().1;
        for role in ["Admin", "Editor", "Viewer"] {
            app.put(
                &format!("/api/tenants/{}/members/{user}", world.acme),
                cred,
                json!({"role": role}),
            )
            .await
            .assert_problem(403, "forbidden");
        }
    }
    let roles = app
        .get(
            &format!("/api/tenants/{}/members", world.acme),
            &matrix.creds[0].1,
        )
        .await;
    let roles: BTreeMap<String, String> = roles.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(roles["bob@example.com"], "Editor");
    assert_eq!(roles["carol@example.com"], "Viewer");

    // A flow body naming another id, tenant, role or timestamps: those fields are not applied.
    let editor = &matrix.creds[1].1;
    let chosen = Uuid::new_v4();
    let created = app
        .post(
            &format!("/api/tenants/{}/flows", world.acme),
            editor,
            json!({
                "name": "mine", "id": chosen, "tenant_id": matrix.initech.0,
                "role": "Admin", "created_at": "2000-01-01T00:00:00Z"
            }),
        )
        .await;
    let created = created.assert_status(201).clone();
    let id = created["id"].as_str().unwrap();
    assert_ne!(id, chosen.to_string());
    assert_ne!(created["created_at"], "2000-01-01T00:00:00Z");
    assert!(created.get("tenant_id").is_none() && created.get("role").is_none());
    for (method, body) in [
        (
            Method::PUT,
            json!({"name": "moved", "tenant_id": matrix.initech.0, "id": chosen}),
        ),
        (
            Method::PATCH,
            json!({"tenant_id": matrix.initech.0, "id": chosen}),
        ),
    ] {
        app.request(
            method,
            &format!("/api/tenants/{}/flows/{id}", world.acme),
            editor,
            Some(body),
        )
        .await
        .assert_status(200);
    }
    app.get(&format!("/api/tenants/{}/flows/{id}", world.acme), editor)
        .await
        .assert_status(200);
    let erin = Cred::Token(world.token_of("erin").await);
    let initech_flows = app
        .get(&format!("/api/tenants/{}/flows", matrix.initech), &erin)
        .await;
    assert_eq!(
        initech_flows.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.get(
        &format!("/api/tenants/{}/flows/{chosen}", world.acme),
        editor,
    )
    .await
    .assert_problem(404, "not_found");

    // A member body naming another user or tenant changes only the user of the path.
    let admin = &matrix.creds[0].1;
    app.put(
        &format!("/api/tenants/{}/members/{}", world.acme, matrix.frank),
        admin,
        json!({"role": "Editor", "user_id": world.bob.0, "tenant_id": matrix.initech.0}),
    )
    .await
    .assert_status(200);
    assert_eq!(
        store::members::role_of(&app.state.db, world.acme, world.bob)
            .await
            .unwrap()
            .as_deref(),
        Some("Editor")
    );
    assert_eq!(
        store::members::role_of(&app.state.db, matrix.initech, world.bob)
            .await
            .unwrap(),
        None
    );
    // A tenant created with a chosen id gets its own.
    let tenant = app
        .post(
            "/api/tenants",
            admin,
            json!({"name": "New", "id": matrix.initech.0}),
        )
        .await;
    assert_ne!(tenant.assert_status(201)["id"], matrix.initech.to_string());
}

/// The fraction of pairs whose `a` took longer than its `b` (a sign test): 0.5 when the two
/// requests cost the same. Pairs are measured back to back, so load bursts hit both members.
fn paired_superiority(a: &[f64], b: &[f64]) -> f64 {
    let wins: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            }
        })
        .sum();
    wins / a.len() as f64
}

#[tokio::test]
async fn a_hidden_resource_and_a_missing_one_take_the_same_time() {
    let matrix = Matrix::new().await;
    let world = &matrix.world;
    let app = &world.app;
    let editor = &matrix.creds[1].1;
    let non_member = &matrix.creds[3].1;
    // Pairs of (hidden, missing) paths, as a member of Acme and as a non-member of Initech.
    let pairs = [
        (
            editor,
            format!("/api/tenants/{}/flows/{}", world.acme, matrix.initech_flow),
            format!("/api/tenants/{}/flows/{}", world.acme, Uuid::new_v4()),
        ),
        (
            non_member,
            format!(
                "/api/tenants/{}/flows/{}",
                matrix.initech, matrix.initech_flow
            ),
            format!("/api/tenants/{}/flows/{}", Uuid::new_v4(), Uuid::new_v4()),
        ),
    ];
    for (cred, hidden_path, missing_path) in pairs {
        // Warm-up (caches, connections), then measure.
        for _ in 0..20 {
            app.get(&hidden_path, cred).await;
            app.get(&missing_path, cred).await;
        }
        // The suite runs tests in parallel on a small machine: a burst of load from another test
        // can skew one run, so a run that looks different is repeated (a real difference shows
        // in every run).
        let mut runs = Vec::new();
        let indistinguishable = loop {
            let (p, h, m) = measure(app, cred, &hidden_path, &missing_path).await;
            eprintln!(
                "timing {hidden_path}: P(hidden > missing) = {p:.3}; medians {h:.6}s vs {m:.6}s"
            );
            // Under the same distribution p is 0.5 ± 0.03 (one standard deviation, 300 pairs); a
            // database query more on one side would push it far out.
            let same = (0.35..=0.65).contains(&p) && (h - m).abs() <= 0.5 * h.max(m);
            runs.push(format!("P = {p:.3}, medians {h:.6}s vs {m:.6}s"));
            if same || runs.len() == 3 {
                break same;
            }
        };
        assert!(indistinguishable, "{hidden_path}: {runs:?}");
    }
}

/// 300 pairs of requests, each pair back to back in alternating order so load hits both alike:
/// the fraction of pairs where the hidden one took longer, and the two medians.
async fn measure(
    app: &crate::helpers::TestApp,
    cred: &Cred,
    hidden_path: &str,
    missing_path: &str,
) -> (f64, f64, f64) {
    let (mut hidden, mut missing) = (Vec::new(), Vec::new());
    for i in 0..300 {
        let mut pair = [0.0f64; 2];
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let path = if which == 0 {
                hidden_path
            } else {
                missing_path
            };
            let started = Instant::now();
            let reply = app.get(path, cred).await;
            pair[which] = started.elapsed().as_secs_f64();
            assert_eq!(reply.status, 404);
        }
        hidden.push(pair[0]);
        missing.push(pair[1]);
    }
    let p = paired_superiority(&hidden, &missing);
    hidden.sort_by(f64::total_cmp);
    missing.sort_by(f64::total_cmp);
    (p, hidden[150], missing[150])
}
