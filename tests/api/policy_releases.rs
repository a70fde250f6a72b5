//! Policies as released versions: publish, list, show, pull and roll back with the command line;
//! instances serving `--policy-source database` follow the active version; every decision names
//! the version that made it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::{Value, json};
use zygo::authz::PolicyBundle;
use zygo::config::{PolicySource, Settings};

use crate::helpers::{
    Cred, TestApp, World, copy_policies, eventually, policies_dir, spawn_with, test_settings,
};

/// `zygo ARGS` on the database of `settings`, as an operator runs it.
fn zygo(settings: &Settings, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zygo"))
        .env("ZYGO_DATA_DIR", &settings.database.data_dir)
        .env("ZYGO_DATABASE_URL", &settings.database.url)
        .env_remove("ZYGO_POLICY_SOURCE")
        .env("ZYGO_OPERATOR", "test-operator")
        .args(args)
        .output()
        .expect("zygo runs")
}

/// Runs `zygo ARGS`, asserts it succeeded and returns its standard output.
#[track_caller]
fn ok(settings: &Settings, args: &[&str]) -> String {
    let out = zygo(settings, args);
    assert!(
        out.status.success(),
        "zygo {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn publish(settings: &Settings, dir: &Path, message: &str) -> Output {
    zygo(
        settings,
        &[
            "policy",
            "publish",
            "--policies",
            dir.to_str().unwrap(),
            "--message",
            message,
        ],
    )
}

/// Settings on a fresh database in `data` where the shipped policies are published as version 1.
#[track_caller]
fn with_shipped_published(data: &Path, message: &str) -> Settings {
    let settings = test_settings(data);
    let out = publish(&settings, &policies_dir(), message);
    assert!(out.status.success(), "{out:?}");
    settings
}

/// A copy of the shipped policies whose content (and so version) differs by a comment.
fn changed_policies(into: &Path) -> PathBuf {
    let dir = copy_policies(into);
    let flows = dir.join("flows.cedar");
    let text = std::fs::read_to_string(&flows).unwrap();
    std::fs::write(&flows, format!("{text}\n// reviewed\n")).unwrap();
    dir
}

fn version_of(dir: &Path) -> String {
    PolicyBundle::load(dir).unwrap().version().to_owned()
}

/// An instance serving the database's active version, on the database of `settings`.
async fn database_instance(settings: &Settings) -> TestApp {
    let mut settings = settings.clone();
    settings.policy_source = PolicySource::Database;
    settings.health_details = true;
    spawn_with(settings, tempfile::tempdir().unwrap()).await
}

async fn health(app: &TestApp) -> Value {
    app.get("/healthz", &Cred::None).await.body
}

#[tokio::test]
async fn a_published_folder_comes_back_whole_from_versions_show_and_pull() {
    let data = tempfile::tempdir().unwrap();
    let settings = test_settings(data.path());
    let shipped = version_of(&policies_dir());

    assert!(ok(&settings, &["policy", "versions"]).contains("no policy version is published"));
    let out = publish(&settings, &policies_dir(), "the shipped policies");
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("published version 1 ({shipped}")),
        "{printed}"
    );

    let listed = ok(&settings, &["policy", "versions"]);
    let first = listed.lines().next().unwrap();
    assert!(first.starts_with("*    1  "), "{listed}");
    assert!(first.contains(&shipped) && first.contains("test-operator"));
    assert!(first.ends_with("the shipped policies"), "{listed}");
    assert!(
        listed.contains("version    1  publish   by test-operator"),
        "{listed}"
    );

    let shown = ok(&settings, &["policy", "show", "1"]);
    for line in [
        "version: 1".to_owned(),
        format!("content hash: {shipped}"),
        "active: yes".into(),
        "published by: test-operator".into(),
        "message: the shipped policies".into(),
        "diff: first version: nothing to compare with".into(),
    ] {
        assert!(shown.lines().any(|l| l == line), "no `{line}` in:\n{shown}");
    }

    let pulled = tempfile::tempdir().unwrap();
    let into = pulled.path().join("v1");
    ok(&settings, &["policy", "pull", "1", into.to_str().unwrap()]);
    assert_eq!(version_of(&into), shipped);
    for entry in std::fs::read_dir(policies_dir().join("tests")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        assert_eq!(
            std::fs::read(into.join("tests").join(name)).unwrap(),
            std::fs::read(&path).unwrap(),
            "fixture {name:?}"
        );
    }

    let missing = zygo(&settings, &["policy", "show", "7"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("there is no policy version 7"));
}

#[tokio::test]
async fn a_set_the_binary_refuses_is_not_published_and_an_instance_keeps_its_last_good_version() {
    let data = tempfile::tempdir().unwrap();
    let settings = with_shipped_published(data.path(), "first");
    let app = database_instance(&settings).await;
    let good = version_of(&policies_dir());
    let body = health(&app).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["policy"]["source"], "database");
    assert_eq!(body["policy"]["release"], 1);
    assert_eq!(body["policy"]["version"], good.as_str());

    // An action the schema does not have: publish refuses it and writes nothing.
    let scratch = tempfile::tempdir().unwrap();
    let bad = copy_policies(scratch.path());
    std::fs::write(
        bad.join("fly.cedar"),
        "@id(\"fly\")\npermit (principal, action == Zygo::Action::\"Fly\", resource);\n",
    )
    .unwrap();
    let refused = publish(&settings, &bad, "bad");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("fly.cedar:2:"), "{stderr}");
    assert!(
        !ok(&settings, &["policy", "versions"]).contains("bad"),
        "nothing stored"
    );

    // Valid, but its own fixtures fail: refused too.
    let failing = tempfile::tempdir().unwrap();
    let failing = copy_policies(failing.path());
    std::fs::create_dir_all(failing.join("tests")).unwrap();
    std::fs::write(
        failing.join("tests").join("wrong.json"),
        r#"{"cases": [{"role": "Viewer", "action": "DeleteFlow", "resource": "Flow", "in": "own", "expect": "Allow"}]}"#,
    )
    .unwrap();
    let refused = publish(&settings, &failing, "bad");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("1 decision fixtures failed"), "{stderr}");
    assert!(
        stderr.contains("wrong.json: Viewer DeleteFlow Flow"),
        "{stderr}"
    );

    // Forced into the table anyway (another binary, or by hand): the instance keeps version 1.
    let files = zygo::authz::PolicyFiles::read(&bad).unwrap_or_else(|e| panic!("{e}"));
    let json =
        |map: &std::collections::BTreeMap<String, String>| serde_json::to_string(map).unwrap();
    zygo::store::policy_versions::publish(
        &app.state.db,
        Some(1),
        zygo::store::policy_versions::NewVersion {
            content_hash: "forced".into(),
            schema: files.schema.clone().unwrap(),
            roles: files.roles.clone().unwrap(),
            policies: json(&files.policies),
            fixtures: json(&files.fixtures),
            published_by: "someone else".into(),
            message: "forced".into(),
            diff_summary: "none".into(),
        },
    )
    .await
    .unwrap();
    assert!(
        eventually(10, || async {
            health(&app).await["policy"]["refused_release"] == 2
        })
        .await,
        "the refusal shows: {}",
        health(&app).await
    );
    let body = health(&app).await;
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["policy"]["release"], 1);
    assert_eq!(body["policy"]["version"], good.as_str());
    assert_eq!(body["policy"]["last_reload_rejected"], true);
    let metrics = app.get("/metrics", &Cred::None).await.body;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("\nzygo_policy_active_refused 1\n"),
        "{metrics}"
    );
    assert_eq!(app.state.authz.bundle().release(), Some(1));

    // Rolling back to version 1 clears the refusal.
    let rolled = ok(&settings, &["policy", "rollback", "1"]);
    assert!(rolled.contains("version 1 (") && rolled.contains("rolled back from 2"));
    assert!(
        eventually(10, || async { health(&app).await["status"] == "ok" }).await,
        "{}",
        health(&app).await
    );
    let body = health(&app).await;
    assert_eq!(body["policy"]["release"], 1);
    assert!(body["policy"].get("refused_release").is_none(), "{body}");
    let listed = ok(&settings, &["policy", "versions"]);
    assert!(
        listed.lines().next().unwrap().starts_with("     2  forced"),
        "{listed}"
    );
    assert!(
        listed.contains("version    1  rollback  by test-operator"),
        "{listed}"
    );
}

#[tokio::test]
async fn a_database_source_with_nothing_published_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data.path());
    settings.policy_source = PolicySource::Database;
    let err = zygo::startup::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("no policy version is published yet: run `zygo policy publish"),
        "{err}"
    );
}

/// The decision API's answer for Bob, on `app`.
async fn ask(app: &TestApp, world: &World, token: &str) -> Value {
    app.post(
        &format!("/api/tenants/{}/authorize", world.acme),
        &Cred::Token(token.to_owned()),
        json!({"items": [{"action": "CreateFlow", "resource": {"type": "Tenant", "id": world.acme.to_string()}}]}),
    )
    .await
    .assert_status(200)
    .clone()
}

#[tokio::test]
async fn two_instances_on_one_database_both_follow_a_publish_and_a_rollback() {
    let data = tempfile::tempdir().unwrap();
    let settings = with_shipped_published(data.path(), "first");
    let world = World::on(database_instance(&settings).await).await;
    let other = database_instance(&settings).await;
    let bob = world.token_of("bob").await;
    let first = version_of(&policies_dir());
    for app in [&world.app, &other] {
        let body = ask(app, &world, &bob).await;
        assert_eq!(body["policy_release"], 1);
        assert_eq!(body["policy_version"], first.as_str());
    }

    let scratch = tempfile::tempdir().unwrap();
    let changed = changed_policies(scratch.path());
    let second = version_of(&changed);
    let published = Instant::now();
    ok(
        &settings,
        &[
            "policy",
            "publish",
            "--policies",
            changed.to_str().unwrap(),
            "--message",
            "second",
            "--allow-new-access",
        ],
    );
    let mut seen = Vec::new();
    for app in [&world.app, &other] {
        let followed = eventually(10, || async {
            ask(app, &world, &bob).await["policy_release"] == 2
        })
        .await;
        assert!(followed, "an instance stayed on version 1");
        seen.push(published.elapsed());
        let body = ask(app, &world, &bob).await;
        assert_eq!(body["policy_version"], second.as_str());
        assert_eq!(body["results"][0]["decision"], "Allow");
    }
    eprintln!(
        "figure: both instances answered with version 2 after {:?} (publish included)",
        seen.iter().max().unwrap()
    );

    let rolled = Instant::now();
    ok(&settings, &["policy", "rollback", "1"]);
    for app in [&world.app, &other] {
        assert!(
            eventually(10, || async {
                ask(app, &world, &bob).await["policy_release"] == 1
            })
            .await
        );
        assert_eq!(
            ask(app, &world, &bob).await["policy_version"],
            first.as_str()
        );
    }
    eprintln!(
        "figure: both instances answered with version 1 again {:?} after the rollback began",
        rolled.elapsed()
    );
}

#[tokio::test]
async fn guarded_operations_the_decision_api_and_the_decision_log_name_the_deciding_version() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("decisions.jsonl");
    let mut settings = test_settings(data.path());
    settings.decision_log = zygo::authz::LogTarget::File(log.clone());
    let world = World::on(spawn_with(settings, tempfile::tempdir().unwrap()).await).await;
    let version = version_of(&policies_dir());
    let bob = world.token_of("bob").await;

    let flows = world
        .app
        .get(
            &format!("/api/tenants/{}/flows", world.acme),
            &Cred::Token(bob.clone()),
        )
        .await;
    flows.assert_status(200);
    assert_eq!(flows.headers["zygo-policy-version"], version.as_str());
    // Refused by the policies: still named.
    let refused = world
        .app
        .get(
            &format!("/api/tenants/{}/flows", world.globex),
            &Cred::Token(bob.clone()),
        )
        .await;
    assert_eq!(refused.headers["zygo-policy-version"], version.as_str());
    // Not decided by the policies at all: no header.
    let health = world.app.get("/healthz", &Cred::None).await;
    assert!(health.headers.get("zygo-policy-version").is_none());

    let body = ask(&world.app, &world, &bob).await;
    assert_eq!(body["policy_version"], version.as_str());
    assert_eq!(body["policy_release"], Value::Null);

    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    let mut ids = std::collections::HashSet::new();
    for line in &lines {
        assert_eq!(line["policy_version"], version.as_str(), "{line}");
        assert_eq!(line["policy_release"], Value::Null);
        assert!(ids.insert(line["decision_id"].as_str().unwrap().to_owned()));
    }
}

#[tokio::test]
async fn a_database_instance_names_the_published_number_in_its_answers_and_explain_does_too() {
    let data = tempfile::tempdir().unwrap();
    let settings = with_shipped_published(data.path(), "first");
    let world = World::on(database_instance(&settings).await).await;
    let bob = world.token_of("bob").await;
    let body = ask(&world.app, &world, &bob).await;
    assert_eq!(body["policy_release"], 1);
    let version = version_of(&policies_dir());
    let explained = ok(
        &settings,
        &[
            "policy",
            "explain",
            "--user",
            "bob@example.com",
            "--tenant",
            &world.acme.to_string(),
            "--action",
            "CreateFlow",
            "--resource",
            &format!("Tenant:{}", world.acme),
            "--policy-source",
            "database",
        ],
    );
    assert!(
        explained
            .lines()
            .any(|l| l == format!("policy version: {version} (published version 1)")),
        "{explained}"
    );
    // The plain app (folder source) is unaffected by what is published.
    let mut folder = test_settings(data.path());
    folder.health_details = true;
    let folder = spawn_with(folder, tempfile::tempdir().unwrap()).await;
    assert_eq!(health(&folder).await["policy"]["source"], "folder");
    assert!(health(&folder).await["policy"].get("release").is_none());
}

/// The shipped policies with one more rule: Viewers may delete flows.
fn widened_policies(into: &Path) -> PathBuf {
    let dir = copy_policies(into);
    let flows = dir.join("flows.cedar");
    let text = std::fs::read_to_string(&flows).unwrap();
    std::fs::write(
        &flows,
        format!(
            "{text}\n@id(\"viewers-delete-flows\")\npermit (\n  principal in Zygo::Role::\"Viewer\",\n  \
             action == Zygo::Action::\"DeleteFlow\",\n  resource\n);\n"
        ),
    )
    .unwrap();
    dir
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_publish_that_grants_new_access_is_refused_with_a_counterexample_unless_allowed() {
    let data = tempfile::tempdir().unwrap();
    let settings = with_shipped_published(data.path(), "baseline");
    let edits = tempfile::tempdir().unwrap();
    let widened = widened_policies(edits.path());
    let widened = widened.to_str().unwrap();

    // Refused: the counterexample is printed and nothing is stored.
    let refused = publish(&settings, Path::new(widened), "viewers delete");
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("DeleteFlow (User → Flow)") && stdout.contains("GRANTS MORE"),
        "{stdout}"
    );
    assert!(
        stdout.contains("as Viewer") && stdout.contains("NEW allows (by viewers-delete-flows)"),
        "{stdout}"
    );
    assert!(stderr.contains("not published") && stderr.contains("--allow-new-access"));
    let listed = ok(&settings, &["policy", "versions"]);
    assert!(
        listed.starts_with("*    1  ") && !listed.contains("   2  "),
        "{listed}"
    );

    // The same question before publishing: OLD defaults to the active version.
    let diff = zygo(&settings, &["policy", "diff", widened]);
    let (stdout, _) = text(&diff);
    assert_eq!(diff.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "OLD = version 1 (active), NEW = folder {widened}\n"
        )),
        "{stdout}"
    );

    // Allowed on purpose: stored, with what the proof found.
    let allowed = zygo(
        &settings,
        &[
            "policy",
            "publish",
            "--policies",
            widened,
            "--message",
            "viewers delete",
            "--allow-new-access",
        ],
    );
    assert!(allowed.status.success(), "{allowed:?}");
    let shown = ok(&settings, &["policy", "show", "2"]);
    assert!(
        shown.lines().any(|l| l
            == "diff: against version 1: 19 environments same, 1 grants more \
                (new access allowed with --allow-new-access)"),
        "{shown}"
    );

    // Published versions compare by number, either way round.
    let forward = zygo(&settings, &["policy", "diff", "1", "2", "--format", "json"]);
    assert_eq!(forward.status.code(), Some(1));
    let forward: Value = serde_json::from_slice(&forward.stdout).unwrap();
    assert_eq!(forward["grants_more"], true);
    assert_eq!(forward["summary"], "19 environments same, 1 grants more");
    let back = zygo(&settings, &["policy", "diff", "2", "1"]);
    let (stdout, _) = text(&back);
    assert_eq!(back.status.code(), Some(0), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("19 environments same, 1 grants less")
    );
    let missing = zygo(&settings, &["policy", "diff", "7", "1"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).1.contains("there is no policy version 7"));

    // Publish and rollback are in the audit trail, which verifies.
    ok(&settings, &["policy", "rollback", "1"]);
    let export = ok(&settings, &["audit", "export", "--since", "2000-01-01"]);
    let events: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<String> = events
        .iter()
        .map(|e| {
            e["unmapped"]["action"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        actions,
        ["policy.published", "policy.published", "policy.rolled_back"],
        "{export}"
    );
    let verified = ok(&settings, &["audit", "verify"]);
    assert!(verified.contains("account: 3 events, intact"), "{verified}");
}

/// What a publish stores, with a content hash of its own.
fn release(n: usize) -> zygo::store::policy_versions::NewVersion {
    zygo::store::policy_versions::NewVersion {
        content_hash: format!("{n:064x}"),
        schema: String::new(),
        roles: String::new(),
        policies: "{}".into(),
        fixtures: "{}".into(),
        published_by: format!("operator-{n}"),
        message: format!("release {n}"),
        diff_summary: String::new(),
    }
}

#[tokio::test]
async fn publishes_racing_from_two_processes_give_one_version_and_a_moved_answer_to_the_rest() {
    use zygo::store::policy_versions::{self, ReleaseError};
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(dir.path()).database;
    // Two connections of their own, as two `zygo policy publish` would have.
    let (one, two) = (
        zygo::store::open(&settings).await.unwrap(),
        zygo::store::open(&settings).await.unwrap(),
    );
    for round in 0..3_usize {
        let expected = policy_versions::active(&one).await.unwrap();
        let (a, b) = tokio::join!(
            policy_versions::publish(&one, expected, release(2 * round)),
            policy_versions::publish(&two, expected, release(2 * round + 1)),
        );
        let won = expected.map_or(1, |n| n + 1);
        match (a, b) {
            (Ok(n), Err(ReleaseError::Moved(now))) | (Err(ReleaseError::Moved(now)), Ok(n)) => {
                assert_eq!((n, now), (won, Some(won)), "round {round}");
            }
            other => panic!("round {round}: one publish wins, one is told: {other:?}"),
        }
        assert_eq!(policy_versions::active(&two).await.unwrap(), Some(won));
    }
    assert_eq!(policy_versions::list(&one).await.unwrap().len(), 3);
}
