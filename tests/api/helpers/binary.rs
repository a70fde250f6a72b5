//! The `zygo` executable, started and stopped as an operator does, and spoken to over HTTP.

use serde_json::{Value, json};

/// Reads the stdout lines of `zygo serve` until it prints `listening on http://ADDR`; returns ADDR
/// and every line printed up to then.
pub fn listening_address(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
) -> (String, Vec<String>) {
    let mut printed = Vec::new();
    loop {
        let line = lines
            .next()
            .expect("serve printed its address")
            .expect("stdout line");
        printed.push(line.clone());
        if let Some(rest) = line.strip_prefix("listening on http://") {
            let address = rest.split_whitespace().next().expect("address").to_owned();
            return (address, printed);
        }
    }
}

/// Starts `zygo serve` from a prepared command (stdout piped) and returns the child with the base
/// URL it listens on.
pub fn serve_binary(mut command: std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("zygo serve starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (address, _) = listening_address(&mut lines);
    (child, format!("http://{address}"))
}

/// Logs in over HTTP; returns the `session=…` cookie pair and the body. Asserts a 200.
pub async fn login_over_http(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> (String, Value) {
    let login = client
        .post(format!("{base}/api/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login sent");
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    (cookie, login.json().await.expect("body"))
}

/// Sends SIGTERM and asserts a clean exit.
pub fn stop_binary(mut child: std::process::Child) {
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(
        child.wait().expect("exit").success(),
        "graceful stop exits 0"
    );
}
