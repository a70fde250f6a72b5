//! Robustness: body size limit, slow-trickle clients cut off, bounded JSON depth, and a handler
//! panic answered with a 500 problem while the process keeps serving.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Cred, PASSWORD, TestApp, World, send, spawn_with, test_settings};

async fn app_with(edit: impl FnOnce(&mut zygo::config::Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    edit(&mut settings);
    spawn_with(settings, dir).await
}

fn host(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Sends `first`, then one byte of `rest` every `every`; returns how long until the server
/// closed the connection, and whatever it answered.
async fn trickle(app: &TestApp, first: &[u8], rest: &[u8], every: Duration) -> (Duration, String) {
    let mut stream = TcpStream::connect(host(app)).await.unwrap();
    let started = Instant::now();
    stream.write_all(first).await.unwrap();
    let mut answer = Vec::new();
    for byte in rest.iter().chain(std::iter::repeat(&b'x')).take(100) {
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(every, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (started.elapsed(), String::from_utf8_lossy(&answer).into());
            }
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if stream.write_all(&[*byte]).await.is_err() {
            return (started.elapsed(), String::from_utf8_lossy(&answer).into());
        }
    }
    panic!(
        "the connection was never closed; answer so far: {}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    let app = app_with(|s| s.read_timeout = Duration::from_secs(1)).await;
    let (after, answer) = trickle(
        &app,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        Duration::from_millis(150),
    )
    .await;
    assert!(after < Duration::from_secs(3), "cut off after {after:?}");
    assert!(!answer.contains("200 OK"), "{answer}");
    // Others are served meanwhile and after.
    app.get("/healthz", &Cred::None).await.assert_status(200);
}

#[tokio::test]
async fn a_client_trickling_its_body_is_cut_off() {
    let app = app_with(|s| s.read_timeout = Duration::from_secs(1)).await;
    let (after, answer) = trickle(
        &app,
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{",
        b"\"email\": \"erin@example.com\", \"password\": \"..........",
        Duration::from_millis(150),
    )
    .await;
    assert!(after < Duration::from_secs(3), "cut off after {after:?}");
    assert!(!answer.contains("200 OK"), "{answer}");
}

/// Reads one HTTP response with a `Content-Length` from the stream.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("response in time")
            .unwrap();
        assert!(n > 0, "closed early");
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn time_idle_between_keep_alive_requests_does_not_count() {
    let app = app_with(|s| s.read_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(host(&app)).await.unwrap();
    for _ in 0..2 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = read_response(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_a_413_announced_or_not() {
    let world = World::new().await;
    let app = &world.app;
    let token = Cred::Token(world.token_of("alice").await);
    let path = format!("/api/tenants/{}/flows", world.acme);
    let big = format!(
        r#"{{"name": "big", "definition": {{"blob": "{}"}}}}"#,
        "x".repeat(1024 * 1024 + 10)
    );
    let announced = send(
        app.raw(Method::POST, &path, &token)
            .header("content-type", "application/json")
            .body(big.clone()),
    )
    .await;
    announced.assert_problem(413, "payload_too_large");
    // The same without a length: chunked, counted while read.
    let mut stream = TcpStream::connect(host(app)).await.unwrap();
    let Cred::Token(t) = &token else {
        unreachable!()
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\ntoken: {t}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in big.as_bytes().chunks(64 * 1024) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("\"code\":\"payload_too_large\""),
        "{answer}"
    );
    let flows = app.get(&path, &token).await;
    assert_eq!(
        flows.assert_status(200)["items"].as_array().unwrap().len(),
        0
    );
}

fn nested(levels: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..levels {
        value = json!({ "a": value });
    }
    value
}

#[tokio::test]
async fn json_nesting_is_bounded() {
    let world = World::new().await;
    let app = &world.app;
    let token = Cred::Token(world.token_of("alice").await);
    let path = format!("/api/tenants/{}/flows", world.acme);
    // The body object is one level; its definition may nest 31 more.
    app.post(
        &path,
        &token,
        json!({"name": "deep", "definition": nested(31)}),
    )
    .await
    .assert_status(201);
    let reply = app
        .post(
            &path,
            &token,
            json!({"name": "deeper", "definition": nested(32)}),
        )
        .await;
    reply.assert_problem(400, "bad_request");
    assert_eq!(
        reply.body["detail"],
        "the body is nested too deeply: at most 32 levels of arrays and objects"
    );
    // Far deeper than the parser allows (and within the body limit): refused as well, and the
    // service is fine.
    let abyss = format!("{}{}", "[".repeat(60_000), "]".repeat(60_000));
    let reply = send(
        app.raw(Method::POST, &path, &token)
            .header("content-type", "application/json")
            .body(abyss),
    )
    .await;
    reply.assert_problem(400, "bad_request");
    app.post(
        "/api/login",
        &Cred::None,
        json!({"email": "alice@example.com", "password": PASSWORD, "x": nested(40)}),
    )
    .await
    .assert_problem(400, "bad_request");
    app.get("/healthz", &Cred::None).await.assert_status(200);
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_problem_and_the_service_keeps_serving() {
    let app = app_with(|s| s.test_panic_route = true).await;
    for _ in 0..3 {
        let reply = app.get("/__test/panic", &Cred::None).await;
        reply.assert_problem(500, "internal");
        assert_eq!(
            reply.body["detail"], "internal error",
            "nothing internal leaks"
        );
        app.get("/healthz", &Cred::None).await.assert_status(200);
    }
    // Without the test switch there is no such route.
    let plain = app_with(|_| {}).await;
    plain
        .get("/__test/panic", &Cred::None)
        .await
        .assert_problem(404, "not_found");
}
