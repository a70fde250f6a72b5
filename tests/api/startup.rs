//! Start-up: the token secret, the port, the restart.

use zygo::config::Secret;
use zygo::startup::Application;

use crate::helpers::{Cred, PASSWORD, spawn_with, test_settings};

#[tokio::test]
async fn a_short_token_secret_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.token_secret = Some(Secret::new(b"too-short".to_vec()));
    let err = Application::build(settings).await.err().expect("refused");
    assert_eq!(
        err.to_string(),
        "ZYGO_TOKEN_SECRET is 9 bytes; it must be at least 32 bytes"
    );
}

#[tokio::test]
async fn a_taken_port_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut settings = test_settings(dir.path());
    settings.bind = listener.local_addr().unwrap().to_string();
    let err = Application::build(settings).await.err().expect("refused");
    assert!(
        err.to_string().starts_with("cannot listen on 127.0.0.1:"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is written before the port is known to be free"
    );
}

#[tokio::test]
async fn a_generated_secret_survives_a_restart_so_tokens_do_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.token_secret = None;
    let keep = dir.path().to_path_buf();
    // The app gets a scratch folder to own; `dir` (the data) outlives it.
    let app = spawn_with(settings.clone(), tempfile::tempdir().unwrap()).await;
    app.add_user("erin@example.com", PASSWORD).await;
    let (cookie, _) = app.login("erin@example.com", PASSWORD).await;
    let token = app.token(&Cred::Cookie(cookie.clone()), None).await;
    let secret = std::fs::read(keep.join("data/token-secret")).unwrap();
    assert!(secret.len() >= 32);
    drop(app);

    // Same data folder, new process state: the token and the session still work.
    let again = spawn_with(settings, tempfile::tempdir().unwrap()).await;
    let me = again.get("/api/me", &Cred::Token(token)).await;
    assert_eq!(me.assert_status(200)["email"], "erin@example.com");
    again
        .get("/api/me", &Cred::Cookie(cookie))
        .await
        .assert_status(200);
}
