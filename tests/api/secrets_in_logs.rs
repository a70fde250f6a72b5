//! Tokens, session ids, passwords and the signing secret never reach a log, even at `trace`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::helpers::policies_dir;

#[tokio::test]
async fn a_traced_server_logs_no_token_session_id_password_or_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let secret = "signing-secret-canary-0123456789abcdef-XYZ";
    let mut child = Command::new(env!("CARGO_BIN_EXE_zygo"))
        .args(["serve", "--demo", "--bind", "127.0.0.1:0"])
        .env("ZYGO_DATA_DIR", dir.path())
        .env("ZYGO_POLICIES", policies_dir())
        .env("ZYGO_LOG", "trace")
        .env("ZYGO_TOKEN_SECRET", secret)
        .env_remove("ZYGO_DATABASE_URL")
        .env_remove("ZYGO_TOKEN_KEYS")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (address, _) = crate::helpers::listening_address(&mut lines);
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    let wrong = "wrong-password-canary-314159";
    let new_password = "new-password-canary-271828";
    let _ = client
        .post(format!("{base}/api/login"))
        .json(&json!({"email": "admin@acme.example", "password": wrong}))
        .send()
        .await
        .unwrap();
    let login = client
        .post(format!("{base}/api/login"))
        .json(&json!({"email": "admin@acme.example", "password": "acme-admin-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("session=")
        .to_owned();
    let minted: serde_json::Value = client
        .get(format!("{base}/api/token"))
        .header("cookie", format!("session={cookie}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = minted["token"].as_str().unwrap().to_owned();
    let forged = format!("{}x", token);
    for value in [&token, &forged] {
        let _ = client
            .get(format!("{base}/api/me"))
            .header("token", value.as_str())
            .send()
            .await
            .unwrap();
    }
    let changed = client
        .put(format!("{base}/api/me/password"))
        .header("token", token.as_str())
        .json(&json!({"current_password": "acme-admin-demo", "new_password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.len() > 100, "the server logged something: {log}");
    let signature = token.rsplit('.').next().unwrap();
    for (what, canary) in [
        ("token", token.as_str()),
        ("token signature", signature),
        ("session id", cookie.as_str()),
        ("wrong password", wrong),
        ("right password", "acme-admin-demo"),
        ("new password", new_password),
        ("signing secret", secret),
    ] {
        assert!(!log.contains(canary), "the log contains the {what}");
    }
}
