//! `zygo policy diff` and `zygo policy analyze`: the symbolic analysis of policy changes, run as
//! an operator runs it (the binary, with `cvc5` on PATH as `scripts/test` installs it).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use uuid::Uuid;
use zygo::authz::{AuthContext, AuthMethod, PolicyBundle, Query, Resource};
use zygo::store::flows::Attributes;
use zygo::store::{TenantId, UserId};

use crate::helpers::{copy_policies, policies_dir};

fn zygo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zygo"))
        .args(args)
        .env_remove("ZYGO_POLICIES")
        .output()
        .expect("zygo runs")
}

fn path(dir: &Path) -> &str {
    dir.to_str().expect("utf-8 path")
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// A copy of the shipped policies with `extra` appended to `file`.
fn edited(root: &Path, file: &str, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let dir = copy_policies(root);
    let target = dir.join(file);
    let text = std::fs::read_to_string(&target).unwrap_or_default();
    std::fs::write(&target, edit(text)).expect("edit");
    dir
}

fn environment<'a>(diff: &'a Value, action: &str) -> &'a Value {
    diff["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .find(|e| e["environment"]["action"] == action)
        .unwrap_or_else(|| panic!("no {action} environment in {diff}"))
}

fn uuid(text: &Value, prefix: &str) -> Uuid {
    let text = text.as_str().expect("string");
    Uuid::parse_str(text.strip_prefix(prefix).expect("prefix")).expect("uuid")
}

#[test]
fn diffing_the_shipped_policies_against_themselves_finds_every_environment_the_same() {
    let shipped = policies_dir();
    let output = zygo(&[
        "policy",
        "diff",
        path(&shipped),
        path(&shipped),
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let diff = json(&output);
    assert_eq!(diff["grants_more"], false);
    let environments = diff["environments"].as_array().expect("environments");
    assert_eq!(environments.len(), 20);
    assert!(environments.iter().all(|e| e["change"] == "same"), "{diff}");
    assert_eq!(diff["summary"], "20 environments same");
}

#[test]
fn letting_viewers_delete_flows_grants_more_with_a_counterexample_both_authorizers_confirm() {
    let root = tempfile::tempdir().expect("tempdir");
    let new = edited(root.path(), "flows.cedar", |text| {
        text + "\n@id(\"viewers-delete-flows\")\npermit (\n  principal in Zygo::Role::\"Viewer\",\n  \
                action == Zygo::Action::\"DeleteFlow\",\n  resource\n);\n"
    });
    let output = zygo(&[
        "policy",
        "diff",
        path(&policies_dir()),
        path(&new),
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let diff = json(&output);
    assert_eq!(diff["grants_more"], true);
    assert_eq!(diff["summary"], "19 environments same, 1 grants more");
    let delete = environment(&diff, "DeleteFlow");
    assert_eq!(delete["change"], "grants_more");
    let example = &delete["counterexample"];
    // The role the service could give: a Viewer (an Editor or Admin already deletes own flows,
    // but only a Viewer is refused every deletion).
    assert_eq!(example["action"], "DeleteFlow");
    assert_eq!(example["new"]["allowed"], true);
    assert_eq!(
        example["new"]["reasons"],
        serde_json::json!(["viewers-delete-flows"])
    );
    assert_eq!(example["old"]["allowed"], false);
    assert_eq!(
        example["resource_tenant"],
        Value::Null,
        "inside the URL's tenant"
    );
    let method = example["context"]["auth"]["method"]
        .as_str()
        .expect("method");
    assert!(method == "session" || method == "token");

    // Decided again here, with each set's own authorizer, from the printed JSON alone.
    let flow = &example["flow"];
    let users = |list: &Value| -> Vec<UserId> {
        let mut users: Vec<UserId> = list
            .as_array()
            .expect("users")
            .iter()
            .map(|u| UserId(uuid(u, "User:")))
            .collect();
        users.sort();
        users
    };
    let attrs = Attributes {
        owner: Some(UserId(uuid(&flow["owner"], "User:"))),
        labels: flow["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(|l| l.as_str().expect("label").to_owned())
            .collect(),
        editors: users(&flow["editors"]),
        readers: users(&flow["readers"]),
    };
    let tenant = TenantId(uuid(&example["tenant"], "Tenant:"));
    let role = example["role"].as_str().map(str::to_owned);
    let query = Query {
        user: UserId(uuid(&example["principal"], "User:")),
        role: role.as_deref(),
        action: zygo::authz::Action::DeleteFlow,
        tenant,
        resource: Resource::Flow(uuid(&example["resource"], "Flow:")),
        resource_tenant: tenant,
        auth: AuthContext {
            method: if method == "token" {
                AuthMethod::Token
            } else {
                AuthMethod::Session
            },
            read_only: example["context"]["auth"]["read_only"] == true,
        },
        flow: Some(&attrs),
    };
    let old = PolicyBundle::load(&policies_dir()).expect("old loads");
    let new = PolicyBundle::load(&new).expect("new loads");
    assert!(!old.decide_afresh(&query).allowed);
    assert!(new.decide_afresh(&query).allowed);
}

#[test]
fn taking_flow_deletion_from_admins_grants_less_and_exits_zero() {
    let root = tempfile::tempdir().expect("tempdir");
    let new = edited(root.path(), "flows.cedar", |text| {
        text.replace(
            "principal in Zygo::Role::\"Admin\",\n  action in [Zygo::Action::\"UpdateFlow\", \
             Zygo::Action::\"DeleteFlow\"],",
            "principal in Zygo::Role::\"Admin\",\n  action in [Zygo::Action::\"UpdateFlow\"],",
        )
    });
    let output = zygo(&["policy", "diff", path(&policies_dir()), path(&new)]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("DeleteFlow (User → Flow)"), "{text}");
    assert!(text.contains("grants less"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("19 environments same, 1 grants less"),
        "{text}"
    );
}

#[test]
fn a_rule_only_requests_the_service_never_builds_would_meet_grants_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    // A user that is an Admin but not an Editor (another hierarchy), and a read-only session:
    // the schema admits both, the service builds neither.
    let new = edited(root.path(), "impossible.cedar", |_| {
        "@id(\"admins-outside-the-hierarchy\")\npermit (\n  principal,\n  \
         action == Zygo::Action::\"DeleteFlow\",\n  resource\n)\n\
         when { principal in Zygo::Role::\"Admin\" && !(principal in Zygo::Role::\"Editor\") };\n\n\
         @id(\"read-only-sessions\")\npermit (principal, action == Zygo::Action::\"RemoveMember\", \
         resource)\nwhen { context.auth.method == \"session\" && context.auth.read_only };\n"
            .to_owned()
    });
    let output = zygo(&[
        "policy",
        "diff",
        path(&policies_dir()),
        path(&new),
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let diff = json(&output);
    assert_eq!(diff["summary"], "20 environments same", "{diff}");
}

#[test]
fn the_shipped_policies_analyze_clean() {
    let output = zygo(&[
        "policy",
        "analyze",
        "--policies",
        path(&policies_dir()),
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = json(&output);
    assert_eq!(report["clean"], true, "{report}");
    for policy in report["policies"].as_array().expect("policies") {
        assert_eq!(policy["vacuous"], false, "{policy}");
        assert_eq!(policy["can_error_in"], serde_json::json!([]), "{policy}");
        assert_eq!(policy["shadowed_by"], serde_json::json!([]), "{policy}");
        assert_eq!(policy["redundant"], false, "{policy}");
    }
}

#[test]
fn analyze_finds_a_vacuous_policy_and_a_shadowed_one() {
    let root = tempfile::tempdir().expect("tempdir");
    // Account actions have no tenant, so no role: a role's rule on them never applies. Admins are
    // Viewers, so Admins reading flows is already `viewers-read-flows`.
    let dir = edited(root.path(), "crafted.cedar", |_| {
        "@id(\"admins-mint-tokens\")\npermit (\n  principal in Zygo::Role::\"Admin\",\n  \
         action == Zygo::Action::\"MintToken\",\n  resource\n);\n\n\
         @id(\"admins-read-flows\")\npermit (\n  principal in Zygo::Role::\"Admin\",\n  \
         action == Zygo::Action::\"ReadFlow\",\n  resource\n);\n"
            .to_owned()
    });
    let output = zygo(&[
        "policy",
        "analyze",
        "--policies",
        path(&dir),
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let report = json(&output);
    assert_eq!(report["clean"], false);
    let policy = |id: &str| {
        report["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("no {id}"))
            .clone()
    };
    let vacuous = policy("admins-mint-tokens");
    assert_eq!(vacuous["vacuous"], true);
    assert_eq!(vacuous["applies_in"], serde_json::json!([]));
    let shadowed = policy("admins-read-flows");
    assert_eq!(shadowed["vacuous"], false);
    assert_eq!(
        shadowed["shadowed_by"],
        serde_json::json!(["viewers-read-flows"])
    );
    assert_eq!(shadowed["redundant"], true);
    // The others are untouched.
    assert_eq!(
        policy("viewers-read-flows")["shadowed_by"],
        serde_json::json!([])
    );

    let text = zygo(&["policy", "analyze", "--policies", path(&dir)]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("FIND  admins-mint-tokens: never applies"),
        "{text}"
    );
    assert!(
        text.contains("FIND  admins-read-flows: shadowed by viewers-read-flows"),
        "{text}"
    );
}

#[test]
fn without_the_solver_diff_and_analyze_fail_with_exit_2_naming_the_debian_package() {
    let shipped = policies_dir();
    for args in [
        vec!["policy", "diff", path(&shipped), path(&shipped)],
        vec!["policy", "analyze", "--policies", path(&shipped)],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_zygo"))
            .args(&args)
            .env("PATH", "/nonexistent")
            .env_remove("CVC5")
            .output()
            .expect("zygo runs");
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("Debian package `cvc5`"), "{stderr}");
        assert!(stderr.contains("apt-get install cvc5"), "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn a_diff_of_a_folder_that_does_not_validate_fails_with_exit_2() {
    let root = tempfile::tempdir().expect("tempdir");
    let broken = edited(root.path(), "broken.cedar", |_| {
        "permit (principal".to_owned()
    });
    let output = zygo(&["policy", "diff", path(&policies_dir()), path(&broken)]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("do not validate"), "{stderr}");
    assert!(stderr.contains("broken.cedar"), "{stderr}");
}
