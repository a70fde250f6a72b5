//! The hot path of a token-authenticated request, measured piece by piece and end to end, and the
//! cost of one decision as the policy set grows (with the index, and with the whole set side by
//! side as the baseline). Decisions are measured both evaluated (what the first request on a set
//! of inputs costs) and remembered (every later request on the same inputs, see
//! `src/authz/memo.rs`); the policy-count curve always evaluates.
//!
//! An evaluated decision on a flow comes from the policies' residuals compiled once per subject,
//! action and snapshot (see `src/authz/residual.rs`); the rows show it next to Cedar's own
//! evaluation of the same request, and what compiling the residuals costs the first request.
//! The bench runs with the server's allocator (mimalloc).
//!
//! `cargo bench --bench hot_path` prints figures; nothing here asserts a time. Each loop is bounded.
//! The service runs in-process on 127.0.0.1 with a fresh SQLite database. Each row times batches of
//! operations and prints the median and the mean per operation.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use uuid::Uuid;
use zygo::auth::password;
use zygo::authz::{Action, AuthContext, PolicyBundle, Query, Question, Resource, Subject};
use zygo::config::{DatabaseSettings, Secret, Settings};
use zygo::startup::Application;
use zygo::store::{self, TenantId, UserId};

/// The server's allocator, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Batches per row; the median is over batches.
const BATCHES: u32 = 50;

fn report(name: &str, per_op: &mut [Duration], ops: u32) {
    per_op.sort();
    let median = per_op[per_op.len() / 2];
    let mean = per_op.iter().sum::<Duration>() / per_op.len() as u32;
    println!(
        "{name:<52} {ops:>7} ops  median {:>9.2} µs  mean {:>9.2} µs",
        median.as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );
}

/// Times `ops` calls of `f` in [`BATCHES`] batches; returns the median per call.
async fn measure<F, Fut>(name: &str, ops: u32, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let per_batch = (ops / BATCHES).max(1);
    let mut per_op = Vec::with_capacity(BATCHES as usize);
    for _ in 0..BATCHES {
        let started = Instant::now();
        for _ in 0..per_batch {
            f().await;
        }
        per_op.push(started.elapsed() / per_batch);
    }
    report(name, &mut per_op, per_batch * BATCHES);
    per_op[per_op.len() / 2]
}

/// The shipped policy folder plus generated tenant-specific grants, `total` policies in all.
/// The grants name tenants other than the one asked about, as a service with many customers would
/// hold them, so every size gives the same answers.
fn policy_folder(into: &Path, total: usize) -> PathBuf {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies");
    let dir = into.join(format!("policies-{total}"));
    std::fs::create_dir_all(&dir).expect("folder");
    for entry in std::fs::read_dir(&shipped).expect("policies") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let count = PolicyBundle::load(&dir)
        .expect("shipped")
        .policy_ids()
        .len();
    let roles = ["Viewer", "Editor", "Admin"];
    let actions = ["ReadFlow", "UpdateFlow", "ListFlows", "ReadTenant"];
    let mut text = String::new();
    for n in 0..total.saturating_sub(count) {
        let tenant = Uuid::from_u128(n as u128 + 1_000);
        text.push_str(&format!(
            "// Generated: grant {n}.\n@id(\"generated-{n}\")\npermit (\n  principal in Zygo::Role::\"{}\",\n  action == Zygo::Action::\"{}\",\n  resource in Zygo::Tenant::\"{tenant}\"\n);\n\n",
            roles[n % 3],
            actions[n % 4]
        ));
    }
    std::fs::write(dir.join("generated.cedar"), text).expect("write");
    dir
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::new(DatabaseSettings::new(None, dir.path().join("data")));
    settings.bind = "127.0.0.1:0".into();
    settings.policies_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies");
    settings.token_secret = Some(Secret::new(vec![7; 48]));
    settings.watch_policies = false;
    let app = Application::build(settings).await.expect("app");
    let address = format!("http://{}", app.local_addr());
    let state = app.state();
    tokio::spawn(app.run_until(std::future::pending()));

    let hash = password::hash("bench-password").expect("hash");
    let user = UserId(
        store::users::create(&state.db, "bench@example.com", hash)
            .await
            .expect("user")
            .id,
    );
    let tenant = TenantId(Uuid::new_v4());
    store::tenants::create(
        &state.db,
        tenant,
        "Bench",
        user,
        "Admin",
        &zygo::store::audit::Actor::default(),
    )
    .await
    .expect("tenant");
    let flow = store::flows::create(
        &state.db,
        tenant,
        user,
        "one",
        serde_json::json!({"a": 1}),
        &[],
        &zygo::store::audit::Actor::default(),
    )
    .await
    .expect("flow");
    let (token, _) = state
        .authn
        .keys
        .mint(user, 600, None, false)
        .expect("token");

    println!("in-process, one thread, warm caches:");
    let n = 20_000;
    measure("HS256 verify (strict checks included)", n, || async {
        state.authn.keys.verify(&token).expect("valid");
    })
    .await;
    let caller = state.authn.from_token(&token).await.expect("caller");
    measure(
        "authenticate token (remembered verification + user + revocation cache)",
        n,
        || async {
            state.authn.from_token(&token).await.expect("caller");
        },
    )
    .await;
    let read = Resource::Flow(flow.id);
    let attrs = store::flows::Attributes {
        owner: Some(user),
        ..Default::default()
    };
    let query = Query {
        user,
        role: Some("Admin"),
        action: Action::ReadFlow,
        tenant,
        resource: read,
        resource_tenant: tenant,
        auth: caller.auth(),
        flow: Some(&attrs),
    };
    let bundle = state.authz.bundle();
    // `HOT_PATH_PROFILE=cedar|evaluated` runs only that decision, for a profiler to attach.
    if let Ok(which) = std::env::var("HOT_PATH_PROFILE") {
        for _ in 0..300_000 {
            let decision = match which.as_str() {
                "cedar" => bundle.decide_in_cedar(&query),
                _ => bundle.decide_afresh(&query),
            };
            assert!(decision.allowed);
        }
        return;
    }
    measure(
        "decision in Cedar (index, no residual, no memo)",
        n,
        || async {
            assert!(bundle.decide_in_cedar(&query).allowed);
        },
    )
    .await;
    measure(
        "decision, evaluated (compiled residual, no memo)",
        n,
        || async {
            assert!(bundle.decide_afresh(&query).allowed);
        },
    )
    .await;
    // Every flow differs, as in real traffic: the residual is shared, the flow is evaluated.
    let flows: Vec<(Uuid, store::flows::Attributes)> = (0..1_000u128)
        .map(|n| {
            let owner = if n % 3 == 0 {
                user
            } else {
                UserId(Uuid::from_u128(n))
            };
            let attrs = store::flows::Attributes {
                owner: Some(owner),
                labels: ["confidential", "finance", "ops"]
                    .iter()
                    .take((n % 4) as usize)
                    .map(|l| (*l).to_owned())
                    .collect(),
                editors: vec![UserId(Uuid::from_u128(n + 7))],
                readers: vec![],
            };
            (Uuid::from_u128(n + 10_000), attrs)
        })
        .collect();
    let mut next = 0usize;
    measure("decision, evaluated, a different flow each time", n, || {
        next = (next + 1) % flows.len();
        let (id, attrs) = &flows[next];
        bundle.decide_afresh(&Query {
            resource: Resource::Flow(*id),
            flow: Some(attrs),
            ..query.clone()
        });
        std::future::ready(())
    })
    .await;
    measure(
        "decision as served (flows: residual, else memo)",
        n,
        || async {
            assert!(bundle.decide(&query).allowed);
        },
    )
    .await;
    measure(
        "authorize (role cache + remembered decision)",
        n,
        || async {
            state
                .authz
                .require(&caller, tenant, Action::ReadFlow, read)
                .await
                .expect("allowed");
        },
    )
    .await;
    measure(
        "authenticate + cached role + remembered decision",
        n,
        || async {
            let caller = state.authn.from_token(&token).await.expect("caller");
            state
                .authz
                .require(&caller, tenant, Action::ReadFlow, read)
                .await
                .expect("allowed");
        },
    )
    .await;
    measure(
        "HS256 verify + cached user + cached role + evaluated decision",
        n,
        || async {
            // Nothing remembered: the token verified afresh, the decision evaluated afresh.
            let claims = state.authn.keys.verify(&token).expect("valid");
            assert!(state.authn.standing(user).await.expect("status").is_some());
            assert!(
                !state
                    .authn
                    .is_revoked(&claims.fam)
                    .await
                    .expect("revocation")
            );
            let role = state
                .authz
                .role_of(caller.user_id, tenant)
                .await
                .expect("role");
            let decision = bundle.decide_afresh(&Query {
                role: role.as_deref(),
                auth: caller.auth(),
                ..query.clone()
            });
            assert!(decision.allowed);
        },
    )
    .await;
    let questions: Vec<Question> = (0..100)
        .map(|i| Question {
            action: Action::ALL[i % Action::ALL.len()],
            resource: match Action::ALL[i % Action::ALL.len()] {
                Action::ReadFlow | Action::UpdateFlow | Action::DeleteFlow => {
                    Resource::Flow(Uuid::from_u128(i as u128))
                }
                Action::SetMemberRole | Action::RemoveMember | Action::AuthorizeOnBehalf => {
                    Resource::Member(UserId(Uuid::from_u128(i as u128)))
                }
                _ => Resource::Tenant,
            },
            resource_tenant: tenant,
            flow: None,
        })
        .collect();
    let batch = measure("decision API: a batch of 100 questions", 2_000, || async {
        state
            .authz
            .answer(user, tenant, AuthContext::SESSION, &questions)
            .await
            .expect("answers");
    })
    .await;
    let subject = Subject {
        user,
        role: Some("Admin"),
        tenant,
        auth: AuthContext::SESSION,
    };
    let evaluated = measure(
        "a batch of 100 questions, evaluated (one entity build)",
        2_000,
        || async {
            assert_eq!(bundle.decide_many_afresh(&subject, &questions).len(), 100);
        },
    )
    .await;
    for (name, batch) in [
        ("decision API: per question (remembered)", batch),
        ("a batch, evaluated: per question", evaluated),
    ] {
        println!(
            "{name:<52} {:>7}      median {:>9.2} µs",
            "",
            batch.as_secs_f64() * 1e6 / 100.0
        );
    }

    println!("\none decision (ReadFlow, an Editor) as the policy set grows, evaluated each time:");
    println!(
        "{:>8}  {:>14}  {:>14}  {:>14}  {:>10}  {:>16}",
        "policies",
        "evaluated µs",
        "Cedar, index µs",
        "whole set µs",
        "vs 10",
        "first (compile) µs"
    );
    let mut at_ten = None;
    for total in [10usize, 100, 1_000, 10_000] {
        let folder = policy_folder(dir.path(), total);
        let bundle = PolicyBundle::load(&folder).expect("generated policies load");
        let query = Query {
            user,
            role: Some("Editor"),
            action: Action::ReadFlow,
            tenant,
            resource: read,
            resource_tenant: tenant,
            auth: AuthContext::SESSION,
            flow: None,
        };
        let started = Instant::now();
        let first = bundle.decide_afresh(&query);
        let compile = started.elapsed();
        assert_eq!(first, bundle.decide_with_whole_set(&query));
        assert_eq!(first, bundle.decide_in_cedar(&query));
        let median = |ops: u32, how: u8| {
            let mut per_op = Vec::new();
            let per_batch = (ops / BATCHES).max(1);
            for _ in 0..BATCHES {
                let started = Instant::now();
                for _ in 0..per_batch {
                    let decision = match how {
                        0 => bundle.decide_afresh(&query),
                        1 => bundle.decide_in_cedar(&query),
                        _ => bundle.decide_with_whole_set(&query),
                    };
                    assert!(decision.allowed);
                }
                per_op.push(started.elapsed() / per_batch);
            }
            per_op.sort();
            per_op[per_op.len() / 2]
        };
        let evaluated = median(10_000, 0);
        let indexed = median(10_000, 1);
        let whole = median((2_000_000 / total as u32).clamp(50, 10_000), 2);
        let ten = *at_ten.get_or_insert(evaluated);
        println!(
            "{total:>8}  {:>14.2}  {:>14.2}  {:>14.2}  {:>9.2}×  {:>16.0}",
            evaluated.as_secs_f64() * 1e6,
            indexed.as_secs_f64() * 1e6,
            whole.as_secs_f64() * 1e6,
            evaluated.as_secs_f64() / ten.as_secs_f64(),
            compile.as_secs_f64() * 1e6
        );
    }

    println!("\nover HTTP, one client in series:");
    let client = reqwest::Client::new();
    let url = format!("{address}/api/tenants/{tenant}/flows/{}", flow.id);
    for _ in 0..100 {
        client
            .get(&url)
            .header("token", &token)
            .send()
            .await
            .expect("warm");
    }
    measure("GET …/flows/{id} with a token", 2_000, || async {
        let reply = client
            .get(&url)
            .header("token", &token)
            .send()
            .await
            .expect("sent");
        assert_eq!(reply.status(), 200);
        reply.bytes().await.expect("body");
    })
    .await;
}
