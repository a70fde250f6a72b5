//! The flow list against single reads: random owners, labels and shares, random extra policies
//! from a small grammar (reloaded while serving), and for each caller every page concatenated must
//! be exactly the flows whose `GET …/flows/{id}` answers 200, in order, without repeats. The
//! grammar mixes conditions the list pushes down to SQL with some it cannot (the list then
//! decides rows one by one) and one that errors, so all three paths are compared.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;
use zygo::store::{self, UserId};

use crate::helpers::{Cred, World, copy_policies, spawn_with, test_settings};

const LABELS: [&str; 4] = ["confidential", "finance", "ops", "x-1"];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A random condition over the resource, the principal and the context.
fn condition(rng: &mut StdRng, users: &[UserId], depth: u32) -> String {
    if depth > 0 && rng.random_bool(0.45) {
        let a = condition(rng, users, depth - 1);
        let b = condition(rng, users, depth - 1);
        return match rng.random_range(0..4) {
            0 => format!("({a} && {b})"),
            1 => format!("({a} || {b})"),
            2 => format!("!({a})"),
            _ => {
                let c = condition(rng, users, depth - 1);
                format!("(if {c} then {a} else {b})")
            }
        };
    }
    let user = pick(rng, users);
    let label = pick(rng, &LABELS);
    let other = pick(rng, &LABELS);
    match rng.random_range(0..16) {
        0 | 1 => format!("resource.labels.contains(\"{label}\")"),
        2 => "resource.owner == principal".into(),
        3 => format!("resource.owner == Zygo::User::\"{user}\""),
        4 => format!("resource.owner != Zygo::User::\"{user}\""),
        5 => "resource.editors.contains(principal)".into(),
        6 => "resource.readers.contains(principal)".into(),
        7 => "resource.labels.isEmpty()".into(),
        8 => format!("resource.labels.containsAny([\"{label}\", \"{other}\"])"),
        9 => format!("resource.labels.containsAll([\"{label}\", \"{other}\"])"),
        10 => "principal in resource.editors".into(),
        11 => "context.auth.method == \"token\"".into(),
        12 => format!("resource.readers.contains(Zygo::User::\"{user}\")"),
        // No SQL form: the list decides these rows one by one.
        13 => "resource.editors.contains(resource.owner)".into(),
        14 => format!("(resource.labels.contains(\"{label}\") == resource.readers.isEmpty())"),
        // Errors when reached (overflow): a Deny for those flows, whatever else holds.
        _ => format!("(resource.labels.contains(\"{label}\") && 9223372036854775807 + 1 > 0)"),
    }
}

/// A random policy about reading flows.
fn policy(rng: &mut StdRng, users: &[UserId], n: usize, tenant: Uuid) -> String {
    let effect = if rng.random_bool(0.5) {
        "permit"
    } else {
        "forbid"
    };
    let principal = match rng.random_range(0..5) {
        0 => "principal".to_owned(),
        1 => "principal in Zygo::Role::\"Viewer\"".to_owned(),
        2 => "principal in Zygo::Role::\"Editor\"".to_owned(),
        3 => "principal in Zygo::Role::\"Admin\"".to_owned(),
        _ => format!("principal == Zygo::User::\"{}\"", pick(rng, users)),
    };
    let action = if rng.random_bool(0.5) {
        "action == Zygo::Action::\"ReadFlow\""
    } else {
        "action in [Zygo::Action::\"ReadFlow\", Zygo::Action::\"UpdateFlow\"]"
    };
    let resource = match rng.random_range(0..3) {
        0 => "resource".to_owned(),
        1 => "resource is Zygo::Flow".to_owned(),
        _ => format!("resource in Zygo::Tenant::\"{tenant}\""),
    };
    let clause = if rng.random_bool(0.3) {
        "unless"
    } else {
        "when"
    };
    let condition = condition(rng, users, 2);
    format!(
        "// Generated.\n@id(\"generated-{n}\")\n{effect} ({principal}, {action}, {resource})\n\
         {clause} {{ {condition} }};\n"
    )
}

#[tokio::test]
async fn every_page_concatenated_is_exactly_the_flows_a_single_read_allows() {
    let rounds: u64 = std::env::var("ZYGO_LIST_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.policies_dir = copy_policies(dir.path());
    let policies = settings.policies_dir.clone();
    let world = World::on(spawn_with(settings, tempfile::tempdir().unwrap()).await).await;
    let app = &world.app;
    let acme = world.acme;
    let erin = app
        .add_user("erin@example.com", crate::helpers::PASSWORD)
        .await;
    let users = [world.alice, world.bob, world.carol, erin];
    let callers = [
        ("alice", Cred::Token(world.token_of("alice").await)),
        ("bob", Cred::Token(world.token_of("bob").await)),
        ("carol", Cred::Token(world.token_of("carol").await)),
    ];
    // Carol also through a session, so `context.auth.method` differs between callers.
    let (carol_cookie, _) = app
        .login("carol@example.com", crate::helpers::PASSWORD)
        .await;
    let callers: Vec<(&str, Cred)> = callers
        .into_iter()
        .chain([("carol (session)", Cred::Cookie(carol_cookie))])
        .collect();

    let seed = std::env::var("ZYGO_LIST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut flows = Vec::new();
    for n in 0..45 {
        let owner = *pick(&mut rng, &users);
        let labels: Vec<String> = LABELS
            .iter()
            .filter(|_| rng.random_bool(0.3))
            .map(|l| (*l).to_owned())
            .collect();
        let flow = store::flows::create(
            &app.state.db,
            acme,
            owner,
            &format!("flow {n}"),
            json!({}),
            &labels,
            &zygo::store::audit::Actor::default(),
        )
        .await
        .unwrap();
        for user in users {
            if rng.random_bool(0.2) {
                let access = if rng.random_bool(0.5) {
                    store::flows::Access::Read
                } else {
                    store::flows::Access::Edit
                };
                store::flows::share(&app.state.db, acme, flow.id, user, access)
                    .await
                    .unwrap();
            }
        }
        flows.push(flow.id);
    }
    // Another tenant's flow never shows.
    store::flows::create(
        &app.state.db,
        world.globex,
        world.dave,
        "elsewhere",
        json!({}),
        &[],
        &zygo::store::audit::Actor::default(),
    )
    .await
    .unwrap();

    let base = format!("/api/tenants/{acme}/flows");
    for round in 0..rounds {
        // Round 0 is the shipped policies alone.
        let extra: String = (0..if round == 0 {
            0
        } else {
            rng.random_range(1..5)
        })
            .map(|n| policy(&mut rng, &users, n, acme.0))
            .collect();
        std::fs::write(policies.join("generated.cedar"), &extra).unwrap();
        app.state
            .authz
            .policy_store()
            .reload(true)
            .unwrap_or_else(|err| panic!("the generated policies load: {err}\n{extra}"));
        for (name, cred) in &callers {
            let mut allowed = Vec::new();
            for id in &flows {
                let reply = app.get(&format!("{base}/{id}"), cred).await;
                match reply.status.as_u16() {
                    200 => allowed.push(id.to_string()),
                    404 => reply.assert_problem(404, "not_found"),
                    status => panic!("{name}: GET answered {status}: {}\n{extra}", reply.body),
                }
            }
            let limit = rng.random_range(1..9);
            let mut listed = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..=flows.len() {
                let path = match &cursor {
                    Some(c) => format!("{base}?limit={limit}&cursor={c}"),
                    None => format!("{base}?limit={limit}"),
                };
                let page = app.get(&path, cred).await;
                let page = page.assert_status(200).clone();
                let items = page["items"].as_array().unwrap();
                assert!(items.len() <= limit, "{name}: a page longer than its limit");
                listed.extend(items.iter().map(|f| f["id"].as_str().unwrap().to_owned()));
                match page["next_cursor"].as_str() {
                    Some(next) => {
                        assert_eq!(items.len(), limit, "{name}: a short page before the last");
                        cursor = Some(next.to_owned());
                    }
                    None => break,
                }
            }
            let unique: BTreeSet<&String> = listed.iter().collect();
            assert_eq!(unique.len(), listed.len(), "{name}: repeated ids\n{extra}");
            // Ids compared as sets: flows created in the same instant are ordered by id.
            let allowed: BTreeSet<&String> = allowed.iter().collect();
            assert_eq!(
                unique, allowed,
                "seed {seed}, round {round}, {name}, limit {limit}: the list differs from single reads\n{extra}"
            );
        }
    }
}
