//! The `zygo` binary: admin commands against a database, and `serve` as an operator runs it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::helpers::{Cred, World, fresh_database_url, policies_dir};

/// A `zygo` command on the suite's backend: the SQLite file in `data`, or on PostgreSQL one fresh
/// database per data folder (every command of a test sees the same one).
pub fn zygo_command(data: &Path) -> Command {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static DATABASES: OnceLock<Mutex<HashMap<PathBuf, Option<String>>>> = OnceLock::new();
    let url = DATABASES
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(data.to_path_buf())
        .or_insert_with(fresh_database_url)
        .clone();
    let mut command = Command::new(env!("CARGO_BIN_EXE_zygo"));
    command
        .env("ZYGO_DATA_DIR", data)
        .env("ZYGO_POLICIES", policies_dir());
    match url {
        Some(url) => command.env("ZYGO_DATABASE_URL", url),
        None => command.env_remove("ZYGO_DATABASE_URL"),
    };
    command
}

fn zygo(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = zygo_command(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("zygo runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

#[test]
fn an_operator_sets_up_users_tenants_and_members_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    let migrate = zygo(data, &["migrate"], None);
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    assert_eq!(stdout(&migrate), "the database schema is up to date");

    let ann = zygo(
        data,
        &["user", "add", "ann@example.com"],
        Some("ann-password\n"),
    );
    assert!(ann.status.success(), "{}", stderr(&ann));
    let ann_id = stdout(&ann);
    assert!(
        uuid::Uuid::parse_str(&ann_id).is_ok(),
        "prints the id alone: {ann_id}"
    );
    let ben = zygo(
        data,
        &[
            "user",
            "add",
            "ben@example.com",
            "--password",
            "ben-password",
        ],
        None,
    );
    assert!(ben.status.success(), "{}", stderr(&ben));

    let again = zygo(
        data,
        &[
            "user",
            "add",
            "ANN@example.com",
            "--password",
            "another-password",
        ],
        None,
    );
    assert!(!again.status.success());
    assert_eq!(
        stderr(&again),
        "a user with e-mail ann@example.com already exists"
    );
    let weak = zygo(
        data,
        &["user", "add", "cy@example.com", "--password", "short"],
        None,
    );
    assert!(!weak.status.success());
    assert_eq!(stderr(&weak), "the password must be at least 8 characters");

    let tenant = zygo(
        data,
        &["tenant", "add", "Acme", "--admin", "ann@example.com"],
        None,
    );
    assert!(tenant.status.success(), "{}", stderr(&tenant));
    let tenant_id = stdout(&tenant);
    assert!(uuid::Uuid::parse_str(&tenant_id).is_ok());

    let set = zygo(
        data,
        &["member", "set", &tenant_id, "ben@example.com", "Editor"],
        None,
    );
    assert!(set.status.success(), "{}", stderr(&set));
    let bad_role = zygo(
        data,
        &["member", "set", &tenant_id, "ben@example.com", "Owner"],
        None,
    );
    assert!(!bad_role.status.success());
    assert!(stderr(&bad_role).contains("`Owner` is not a role defined by the policies"));
    let last = zygo(
        data,
        &["member", "remove", &tenant_id, "ann@example.com"],
        None,
    );
    assert!(!last.status.success());
    assert!(stderr(&last).contains("without a member who can manage members"));
    let removed = zygo(
        data,
        &["member", "remove", &tenant_id, "ben@example.com"],
        None,
    );
    assert!(removed.status.success(), "{}", stderr(&removed));
    let nobody = zygo(
        data,
        &["tenant", "add", "X", "--admin", "nobody@example.com"],
        None,
    );
    assert_eq!(stderr(&nobody), "no user with e-mail nobody@example.com");
    assert!(!nobody.status.success());
}

#[test]
fn policy_validate_and_test_pass_on_the_shipped_policies() {
    let dir = tempfile::tempdir().unwrap();
    let validate = zygo(dir.path(), &["policy", "validate"], None);
    assert!(validate.status.success(), "{}", stderr(&validate));
    // Every policy of the folder is counted: one `@id` each.
    let policies: usize = std::fs::read_dir(crate::helpers::policies_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cedar"))
        .map(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .matches("@id(")
                .count()
        })
        .sum();
    assert!(
        stdout(&validate).contains(&format!("{policies} policies, roles Admin, Editor, Viewer")),
        "{}",
        stdout(&validate)
    );
    let test = zygo(dir.path(), &["policy", "test"], None);
    assert!(test.status.success(), "{}", stdout(&test));
    // Every case of every fixture file ran and passed.
    let cases: usize = std::fs::read_dir(crate::helpers::policies_dir().join("tests"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| {
            let file: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            file["cases"].as_array().unwrap().len()
        })
        .sum();
    assert!(
        stdout(&test).ends_with(&format!("{cases} passed, 0 failed")),
        "{}",
        stdout(&test)
    );
    let fmt = zygo(dir.path(), &["policy", "fmt", "--check"], None);
    assert!(fmt.status.success(), "{}", stdout(&fmt));
}

#[test]
fn policy_test_shows_expected_and_actual_with_the_determining_policies() {
    let dir = tempfile::tempdir().unwrap();
    let policies = crate::helpers::copy_policies(dir.path());
    std::fs::create_dir(policies.join("tests")).unwrap();
    std::fs::write(
        policies.join("tests/wrong.json"),
        r#"{"cases": [{"who": "a viewer who wants to write", "role": "Viewer", "action": "CreateFlow", "resource": "Tenant", "in": "own", "expect": "Allow"},
                      {"role": "Editor", "action": "ReadFlow", "resource": "Flow", "in": "own", "expect": "Deny"}]}"#,
    )
    .unwrap();
    let out = zygo(
        dir.path(),
        &["policy", "test", "--policies", policies.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("FAIL  Viewer   CreateFlow"), "{text}");
    assert!(text.contains("a viewer who wants to write"), "{text}");
    assert!(
        text.contains("got Some(Deny); determining policies: []"),
        "{text}"
    );
    assert!(
        text.contains("got Some(Allow); determining policies: [viewers-read-flows]"),
        "{text}"
    );
    assert!(text.ends_with("0 passed, 2 failed"), "{text}");

    std::fs::write(
        policies.join("flows.cedar"),
        "permit(principal,action,resource) when {true};\n",
    )
    .unwrap();
    let fmt = zygo(
        dir.path(),
        &[
            "policy",
            "fmt",
            "--check",
            "--policies",
            policies.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(fmt.status.code(), Some(1));
    assert!(stdout(&fmt).contains("flows.cedar: not formatted"));
}

#[test]
fn policy_explain_answers_against_the_live_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert!(
        zygo(
            data,
            &["user", "add", "ann@example.com", "--password", "pw-ann-123"],
            None
        )
        .status
        .success()
    );
    assert!(
        zygo(
            data,
            &["user", "add", "ben@example.com", "--password", "pw-ben-123"],
            None
        )
        .status
        .success()
    );
    let tenant = stdout(&zygo(
        data,
        &["tenant", "add", "Acme", "--admin", "ann@example.com"],
        None,
    ));
    assert!(
        zygo(
            data,
            &["member", "set", &tenant, "ben@example.com", "Viewer"],
            None
        )
        .status
        .success()
    );
    let flow = uuid::Uuid::new_v4();
    let resource = format!("Flow:{flow}");
    let explain = |user: &str, action: &str| {
        zygo(
            data,
            &[
                "policy",
                "explain",
                "--user",
                user,
                "--tenant",
                &tenant,
                "--action",
                action,
                "--resource",
                &resource,
            ],
            None,
        )
    };
    let ben = explain("ben@example.com", "DeleteFlow");
    assert!(ben.status.success(), "{}", stderr(&ben));
    let text = stdout(&ben);
    assert!(text.contains("decision: Deny"), "{text}");
    assert!(text.contains("role: Viewer"), "{text}");
    assert!(text.contains("determining policies: (none)"), "{text}");
    assert!(
        text.contains("the service would answer (token request): 404 not_found (there is no such flow in this tenant)"),
        "{text}"
    );
    let ann = stdout(&explain("ann@example.com", "DeleteFlow"));
    assert!(ann.contains("decision: Allow"), "{ann}");
    assert!(
        ann.contains("determining policies: ") && ann.contains("admins-write-flows"),
        "{ann}"
    );
    assert!(
        ann.contains(
            "would answer (token request): 404 not_found (there is no such flow in this tenant)"
        ),
        "{ann}"
    );
    assert!(
        zygo(
            data,
            &["user", "add", "cy@example.com", "--password", "pw-cy-1234"],
            None
        )
        .status
        .success()
    );
    let outsider = stdout(&explain("cy@example.com", "ReadFlow"));
    assert!(outsider.contains("role: (not a member)"), "{outsider}");
    assert!(
        outsider.contains("would answer (token request): 404 not_found"),
        "{outsider}"
    );
    let bad = explain("ann@example.com", "Fly");
    assert!(!bad.status.success());
    assert!(stderr(&bad).starts_with("`Fly` is not an action"));
}

#[test]
fn serve_prints_where_it_listens_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = zygo_command(dir.path())
        .args(["serve", "--demo", "--bind", "127.0.0.1:0"])
        .env_remove("ZYGO_TOKEN_SECRET")
        .env_remove("ZYGO_TOKEN_KEYS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (address, printed) = crate::helpers::listening_address(&mut lines);
    assert!(
        printed
            .iter()
            .any(|l| l.contains("admin@acme.example / acme-admin-demo"))
    );
    let health = std::net::TcpStream::connect(&address).map(|mut s| {
        use std::io::Read;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    });
    assert!(health.unwrap().starts_with("HTTP/1.1 200"));
    // The generated token secret is persisted, readable by its owner only.
    let secret = dir.path().join("token-secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful stop exits 0: {status:?}");
}

#[test]
fn serve_refuses_to_start_on_invalid_policies_with_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for entry in std::fs::read_dir(policies_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, policies.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        policies.join("broken.cedar"),
        "@id(\"oops\")\npermit (principal, action, resource) when { ;\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_zygo"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("ZYGO_DATA_DIR", dir.path().join("data"))
        .env("ZYGO_POLICIES", &policies)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("zygo cannot start: the policies in"), "{err}");
    assert!(
        err.contains("broken.cedar:2:45: unexpected token `;`"),
        "{err}"
    );
    let validate = zygo(
        dir.path(),
        &[
            "policy",
            "validate",
            "--policies",
            policies.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(validate.status.code(), Some(1));
}

#[test]
fn serve_refuses_a_malformed_key_list_without_printing_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_zygo"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("ZYGO_DATA_DIR", dir.path())
        .env("ZYGO_POLICIES", policies_dir())
        .env_remove("ZYGO_DATABASE_URL")
        .env_remove("ZYGO_TOKEN_SECRET")
        .env("ZYGO_TOKEN_KEYS", "2026-11:short-secret-do-not-print")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "the key `2026-11` in ZYGO_TOKEN_KEYS is 25 bytes; it must be at least 32 bytes"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("short-secret-do-not-print"), "{stderr}");
}

#[tokio::test]
async fn serve_writes_the_decision_log_its_flag_names() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let mut command = zygo_command(dir.path());
    command
        .args(["serve", "--demo", "--bind", "127.0.0.1:0", "--decision-log"])
        .arg(&log);
    let (child, base) = crate::helpers::serve_binary(command);
    let client = reqwest::Client::new();
    let (cookie, me) =
        crate::helpers::login_over_http(&client, &base, "viewer@acme.example", "acme-viewer-demo")
            .await;
    let tenant = me["current_tenant_id"].as_str().unwrap().to_owned();
    let flows = client
        .get(format!("{base}/api/tenants/{tenant}/flows"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(flows.status(), 200);
    crate::helpers::stop_binary(child);
    let text = std::fs::read_to_string(&log).expect("the decision log was written");
    let line: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["action"] == "ListFlows")
        .expect("the ListFlows decision is logged");
    assert_eq!(line["decision"], "Allow");
    assert_eq!(line["tenant"], tenant);
    assert_eq!(line["role"], "Viewer");
    assert!(
        !text.contains(cookie.trim_start_matches("session=")),
        "a session id reached the log"
    );
}

#[tokio::test]
async fn disabling_a_user_ends_its_sessions_and_tokens_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let added = zygo(
        data,
        &[
            "user",
            "add",
            "ann@example.com",
            "--password",
            "ann-password-1",
        ],
        None,
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let mut command = zygo_command(data);
    command.args(["serve", "--bind", "127.0.0.1:0", "--cache-ttl-seconds", "1"]);
    let (child, base) = crate::helpers::serve_binary(command);
    let client = reqwest::Client::new();
    let (cookie, _) =
        crate::helpers::login_over_http(&client, &base, "ann@example.com", "ann-password-1").await;
    let token: serde_json::Value = client
        .get(format!("{base}/api/token"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let me = |with_token: bool| {
        let request = client.get(format!("{base}/api/me"));
        let request = if with_token {
            request.header("token", &token)
        } else {
            request.header("cookie", &cookie)
        };
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!((me(true).await, me(false).await), (200, 200));

    for command in ["disable", "enable"] {
        let out = zygo(data, &["user", command, "ann@example.com"], None);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // Past the cache TTL of the running server, the old token and session are dead, although
    // the account is enabled again.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!((me(true).await, me(false).await), (401, 401));
    let again = client
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({"email": "ann@example.com", "password": "ann-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "the enabled account logs in again");
    crate::helpers::stop_binary(child);
}

#[tokio::test]
async fn policy_explain_shows_the_flow_attributes_it_decided_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for (email, password) in [
        ("ann@example.com", "pw-ann-123"),
        ("ben@example.com", "pw-ben-123"),
    ] {
        let added = zygo(data, &["user", "add", email, "--password", password], None);
        assert!(added.status.success(), "{}", stderr(&added));
    }
    let tenant = stdout(&zygo(
        data,
        &["tenant", "add", "Acme", "--admin", "ann@example.com"],
        None,
    ));
    let ben = stdout(&zygo(
        data,
        &["member", "set", &tenant, "ben@example.com", "Viewer"],
        None,
    ));
    assert!(!tenant.is_empty(), "{ben}");
    // The database the commands use, to give a flow labels and a share.
    let command = zygo_command(data);
    let url = command
        .get_envs()
        .find(|(key, _)| *key == "ZYGO_DATABASE_URL")
        .and_then(|(_, value)| value.map(|v| v.to_string_lossy().into_owned()));
    let db = zygo::store::open(&zygo::config::DatabaseSettings::new(
        url,
        data.to_path_buf(),
    ))
    .await
    .unwrap();
    let tenant_id = zygo::store::TenantId(uuid::Uuid::parse_str(&tenant).unwrap());
    let members = zygo::store::members::list(
        &db,
        tenant_id,
        zygo::store::page::Keyset {
            after: None,
            limit: 10,
        },
    )
    .await
    .unwrap();
    let id_of = |email: &str| {
        members
            .items
            .iter()
            .find(|m| m.email == email)
            .unwrap()
            .user_id
    };
    let (ann, ben) = (id_of("ann@example.com"), id_of("ben@example.com"));
    let flow = zygo::store::flows::create(
        &db,
        tenant_id,
        ann,
        "secret",
        serde_json::json!({}),
        &["confidential".into()],
        &zygo::store::audit::Actor::default(),
    )
    .await
    .unwrap();
    let explain = |user: &str| {
        zygo(
            data,
            &[
                "policy",
                "explain",
                "--user",
                user,
                "--tenant",
                &tenant,
                "--action",
                "ReadFlow",
                "--resource",
                &format!("Flow:{}", flow.id),
            ],
            None,
        )
    };
    let hidden = stdout(&explain("ben@example.com"));
    assert!(
        hidden.contains(&format!(
            "flow: owner {ann}, labels [confidential], editors [], readers []"
        )),
        "{hidden}"
    );
    assert!(hidden.contains("decision: Deny"), "{hidden}");
    assert!(
        hidden.contains("determining policies: confidential-flows"),
        "{hidden}"
    );
    assert!(
        hidden.contains("would answer (token request): 404 not_found (a flow you may not read"),
        "{hidden}"
    );
    zygo::store::flows::share(
        &db,
        tenant_id,
        flow.id,
        ben,
        zygo::store::flows::Access::Read,
    )
    .await
    .unwrap();
    let shared = stdout(&explain("ben@example.com"));
    assert!(
        shared.contains(&format!(
            "flow: owner {ann}, labels [confidential], editors [], readers [{ben}]"
        )),
        "{shared}"
    );
    assert!(shared.contains("decision: Allow"), "{shared}");
}

#[tokio::test]
async fn member_remove_deletes_the_members_shares_and_clears_its_ownership_in_that_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    for (email, password) in [
        ("ann@example.com", "pw-ann-123"),
        ("ben@example.com", "pw-ben-123"),
    ] {
        let added = zygo(data, &["user", "add", email, "--password", password], None);
        assert!(added.status.success(), "{}", stderr(&added));
    }
    let tenant = stdout(&zygo(
        data,
        &["tenant", "add", "Acme", "--admin", "ann@example.com"],
        None,
    ));
    let set = zygo(
        data,
        &["member", "set", &tenant, "ben@example.com", "Editor"],
        None,
    );
    assert!(set.status.success(), "{}", stderr(&set));
    let url = zygo_command(data)
        .get_envs()
        .find(|(key, _)| *key == "ZYGO_DATABASE_URL")
        .and_then(|(_, value)| value.map(|v| v.to_string_lossy().into_owned()));
    let db = zygo::store::open(&zygo::config::DatabaseSettings::new(
        url,
        data.to_path_buf(),
    ))
    .await
    .unwrap();
    let tenant_id = zygo::store::TenantId(uuid::Uuid::parse_str(&tenant).unwrap());
    let members = zygo::store::members::list(
        &db,
        tenant_id,
        zygo::store::page::Keyset {
            after: None,
            limit: 10,
        },
    )
    .await
    .unwrap();
    let id_of = |email: &str| {
        members
            .items
            .iter()
            .find(|m| m.email == email)
            .unwrap()
            .user_id
    };
    let (ann, ben) = (id_of("ann@example.com"), id_of("ben@example.com"));
    let flow = |owner| {
        let db = db.clone();
        async move {
            zygo::store::flows::create(
                &db,
                tenant_id,
                owner,
                "flow",
                serde_json::json!({}),
                &["confidential".into()],
                &zygo::store::audit::Actor::default(),
            )
            .await
            .unwrap()
            .id
        }
    };
    let (anns, bens) = (flow(ann).await, flow(ben).await);
    zygo::store::flows::share(&db, tenant_id, anns, ben, zygo::store::flows::Access::Edit)
        .await
        .unwrap();

    let removed = zygo(
        data,
        &["member", "remove", &tenant, "ben@example.com"],
        None,
    );
    assert!(removed.status.success(), "{}", stderr(&removed));
    let find = |id| {
        let db = db.clone();
        async move {
            zygo::store::flows::find(&db, tenant_id, id)
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(find(anns).await.attrs.editors, vec![]);
    assert_eq!(find(bens).await.attrs.owner, None);
    // Back as an Editor: the role alone.
    let again = zygo(
        data,
        &["member", "set", &tenant, "ben@example.com", "Editor"],
        None,
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(find(anns).await.attrs.editors, vec![]);
    assert_eq!(find(bens).await.attrs.owner, None);
}

/// What `zygo policy explain` says the service would answer: `(200, "")` for `allowed`, else the
/// status and the problem's code.
fn explained_answer(text: &str) -> (u16, String) {
    let answer = text
        .lines()
        .find_map(|line| line.strip_prefix("the service would answer (token request): "))
        .unwrap_or_else(|| panic!("no answer in {text}"));
    if answer == "allowed" {
        return (200, String::new());
    }
    let mut words = answer.split_whitespace();
    let status = words.next().and_then(|s| s.parse().ok());
    let code = words.next().map(str::to_owned);
    status
        .zip(code)
        .unwrap_or_else(|| panic!("not an answer: {answer}"))
}

#[tokio::test]
async fn policy_explain_answers_what_the_api_answers_for_each_role_and_each_kind_of_flow() {
    let world = World::new().await;
    let app = &world.app;
    let alice = Cred::Token(world.token_of("alice").await);
    let dave = Cred::Token(world.token_of("dave").await);
    let acme_flows = format!("/api/tenants/{}/flows", world.acme);
    let readable = world.flow(world.acme, &alice, "readable").await;
    // Confidential and Alice's: hidden from the Editor and the Viewer, who neither own it nor
    // have it shared.
    let hidden = app
        .post(
            &acme_flows,
            &alice,
            json!({"name": "hidden", "definition": {}, "labels": ["confidential"]}),
        )
        .await
        .assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let missing = uuid::Uuid::new_v4().to_string();
    let elsewhere = world.flow(world.globex, &dave, "in Globex").await;
    let flows = [
        ("readable", &readable),
        ("hidden", &hidden),
        ("missing", &missing),
        ("other tenant", &elsewhere),
    ];
    let mut answers = Vec::new();
    // Admin, Editor and Viewer of Acme, and Dave, who is not a member of it.
    for name in ["alice", "bob", "carol", "dave"] {
        let cred = Cred::Token(world.token_of(name).await);
        for (kind, flow) in flows {
            for action in ["ReadFlow", "UpdateFlow"] {
                let explained = zygo_command(app._dir.path())
                    .env("ZYGO_DATABASE_URL", &app.state.settings.database.url)
                    .args([
                        "policy",
                        "explain",
                        "--user",
                        &format!("{name}@example.com"),
                        "--tenant",
                        &world.acme.to_string(),
                        "--action",
                        action,
                        "--resource",
                        &format!("Flow:{flow}"),
                        "--via",
                        "token",
                    ])
                    .output()
                    .unwrap();
                assert!(explained.status.success(), "{}", stderr(&explained));
                let (status, code) = explained_answer(&stdout(&explained));
                let path = format!("{acme_flows}/{flow}");
                let reply = match action {
                    "ReadFlow" => app.get(&path, &cred).await,
                    _ => {
                        app.patch(&path, &cred, json!({"name": format!("{kind} by {name}")}))
                            .await
                    }
                };
                if status == 200 {
                    assert_eq!(
                        reply.assert_status(200)["id"],
                        flow.as_str(),
                        "{name} {action} {kind}"
                    );
                } else {
                    assert_eq!(
                        reply.status.as_u16(),
                        status,
                        "{name} {action} {kind}: explain says {status} {code}, the API {}",
                        reply.body
                    );
                    reply.assert_problem(status, &code);
                }
                answers.push(format!("{name} {action} {kind}: {status} {code}"));
            }
        }
    }
    // The cases are the ones meant: every answer (allowed, forbidden, hidden) occurs.
    let expected = [
        "alice ReadFlow readable: 200 ",
        "alice UpdateFlow readable: 200 ",
        "alice ReadFlow hidden: 200 ",
        "alice UpdateFlow hidden: 200 ",
        "alice ReadFlow missing: 404 not_found",
        "alice UpdateFlow missing: 404 not_found",
        "alice ReadFlow other tenant: 404 not_found",
        "alice UpdateFlow other tenant: 404 not_found",
        "bob ReadFlow readable: 200 ",
        "bob UpdateFlow readable: 403 forbidden",
        "bob ReadFlow hidden: 404 not_found",
        "bob UpdateFlow hidden: 404 not_found",
        "bob ReadFlow missing: 404 not_found",
        "bob UpdateFlow missing: 404 not_found",
        "bob ReadFlow other tenant: 404 not_found",
        "bob UpdateFlow other tenant: 404 not_found",
        "carol ReadFlow readable: 200 ",
        "carol UpdateFlow readable: 403 forbidden",
        "carol ReadFlow hidden: 404 not_found",
        "carol UpdateFlow hidden: 404 not_found",
        "carol ReadFlow missing: 404 not_found",
        "carol UpdateFlow missing: 404 not_found",
        "carol ReadFlow other tenant: 404 not_found",
        "carol UpdateFlow other tenant: 404 not_found",
        "dave ReadFlow readable: 404 not_found",
        "dave UpdateFlow readable: 404 not_found",
        "dave ReadFlow hidden: 404 not_found",
        "dave UpdateFlow hidden: 404 not_found",
        "dave ReadFlow missing: 404 not_found",
        "dave UpdateFlow missing: 404 not_found",
        "dave ReadFlow other tenant: 404 not_found",
        "dave UpdateFlow other tenant: 404 not_found",
    ];
    assert_eq!(answers, expected);
}
