//! Paginated lists: `limit` and `cursor` on flows, members and tenants; pages concatenated give
//! the whole list once, in order, even with inserts between pages; bad input is a 400 naming the
//! field.

use serde_json::Value;

use crate::helpers::{Cred, World};

/// Every page of `path` with `limit`, concatenated, and how many pages that took.
async fn all_pages(world: &World, cred: &Cred, path: &str, limit: u32) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let reply = world.app.get(&url, cred).await;
        let body = reply.assert_status(200).clone();
        let page = body["items"].as_array().unwrap();
        assert!(page.len() <= limit as usize, "{body}");
        items.extend(page.iter().cloned());
        pages += 1;
        assert!(pages < 100, "bounded");
        match body["next_cursor"].as_str() {
            Some(c) => {
                assert!(!page.is_empty(), "a cursor follows a full page");
                cursor = Some(c.to_owned());
            }
            None => {
                assert!(body["next_cursor"].is_null(), "{body}");
                break;
            }
        }
    }
    (items, pages)
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn flow_pages_concatenate_to_the_whole_list_in_order() {
    let world = World::new().await;
    let bob = Cred::Token(world.token_of("bob").await);
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(world.flow(world.acme, &bob, &format!("flow {n}")).await);
    }
    let path = format!("/api/tenants/{}/flows", world.acme);
    let (items, pages) = all_pages(&world, &bob, &path, 3).await;
    assert_eq!(ids(&items), created);
    assert_eq!(pages, 3, "3 + 3 + 1");
    // An exact multiple ends with a null cursor on the last full page.
    let (items, pages) = all_pages(&world, &bob, &path, 7).await;
    assert_eq!(ids(&items), created);
    assert_eq!(pages, 1);
    // Without parameters: the first 100.
    let reply = world.app.get(&path, &bob).await;
    assert_eq!(
        reply.assert_status(200)["items"].as_array().unwrap().len(),
        7
    );
    assert!(reply.body["next_cursor"].is_null());
}

#[tokio::test]
async fn a_cursor_is_stable_under_inserts_between_pages() {
    let world = World::new().await;
    let bob = Cred::Token(world.token_of("bob").await);
    let mut created = Vec::new();
    for n in 0..4 {
        created.push(world.flow(world.acme, &bob, &format!("flow {n}")).await);
    }
    let path = format!("/api/tenants/{}/flows", world.acme);
    let first = world.app.get(&format!("{path}?limit=2"), &bob).await;
    let first = first.assert_status(200).clone();
    assert_eq!(ids(first["items"].as_array().unwrap()), created[..2]);
    // A flow created (and one deleted) between two pages: nothing skipped, nothing repeated.
    created.push(world.flow(world.acme, &bob, "late").await);
    world
        .app
        .delete(&format!("{path}/{}", created[0]), &bob)
        .await
        .assert_status(204);
    let mut rest = Vec::new();
    let mut cursor = first["next_cursor"].as_str().unwrap().to_owned();
    loop {
        let reply = world
            .app
            .get(&format!("{path}?limit=2&cursor={cursor}"), &bob)
            .await;
        let body = reply.assert_status(200).clone();
        rest.extend(ids(body["items"].as_array().unwrap()));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(rest, created[2..]);
}

#[tokio::test]
async fn member_and_tenant_lists_page_too() {
    let world = World::new().await;
    let alice = Cred::Token(world.token_of("alice").await);
    let members = format!("/api/tenants/{}/members", world.acme);
    let (items, pages) = all_pages(&world, &alice, &members, 1).await;
    let users: Vec<_> = items
        .iter()
        .map(|m| m["user_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        users,
        [world.alice, world.bob, world.carol].map(|u| u.to_string())
    );
    assert_eq!(pages, 3);
    let (items, pages) = all_pages(&world, &alice, "/api/tenants", 1).await;
    assert_eq!(
        ids(&items),
        [world.acme, world.globex].map(|t| t.to_string())
    );
    assert_eq!(pages, 2);
}

#[tokio::test]
async fn bad_limits_and_cursors_are_a_400_naming_the_field() {
    let world = World::new().await;
    let bob = Cred::Token(world.token_of("bob").await);
    world.flow(world.acme, &bob, "one").await;
    let flows = format!("/api/tenants/{}/flows", world.acme);
    let members = format!("/api/tenants/{}/members", world.acme);
    for path in [flows.as_str(), members.as_str(), "/api/tenants"] {
        for limit in ["0", "501", "-1", "ten", "1.5", ""] {
            let reply = world.app.get(&format!("{path}?limit={limit}"), &bob).await;
            reply.assert_problem(400, "bad_request");
            let detail = reply.body["detail"].as_str().unwrap();
            assert!(detail.starts_with("limit:"), "{path} {limit}: {detail}");
        }
        // Not of the cursor's pattern: garbage, an old base64 form, a time without its
        // nanoseconds, an id with dashes, or too long.
        for cursor in [
            "x",
            "%21%21%21",
            "bm9wZQ",
            "MjAyNi0xMi0wMnw",
            "1764670000-0b6f3c2e3f1d4c559a612d2f4f7f6e10",
            "1764670000.000000000-0b6f3c2e-3f1d-4c55-9a61-2d2f4f7f6e10",
            &"1".repeat(1025),
        ] {
            let reply = world
                .app
                .get(&format!("{path}?cursor={cursor}"), &bob)
                .await;
            reply.assert_problem(400, "bad_request");
            let detail = reply.body["detail"].as_str().unwrap();
            assert!(detail.starts_with("cursor:"), "{path} {cursor}: {detail}");
        }
    }
}

#[tokio::test]
async fn any_cursor_of_the_documented_pattern_reads_the_rows_after_its_position() {
    let world = World::new().await;
    let bob = Cred::Token(world.token_of("bob").await);
    for n in 0..3 {
        world.flow(world.acme, &bob, &format!("flow {n}")).await;
    }
    let path = format!("/api/tenants/{}/flows", world.acme);
    // Before every row: the whole list; after every row: an empty last page.
    let start = "0.000000000-00000000000000000000000000000000";
    let all = world.app.get(&format!("{path}?cursor={start}"), &bob).await;
    assert_eq!(all.assert_status(200)["items"].as_array().unwrap().len(), 3);
    let end = "99999999999.999999999-ffffffffffffffffffffffffffffffff";
    let none = world.app.get(&format!("{path}?cursor={end}"), &bob).await;
    assert_eq!(
        none.assert_status(200),
        &serde_json::json!({"items": [], "next_cursor": null})
    );
}

#[tokio::test]
async fn a_non_member_learns_nothing_from_a_cursor() {
    let world = World::new().await;
    let bob = Cred::Token(world.token_of("bob").await);
    for n in 0..3 {
        world.flow(world.acme, &bob, &format!("flow {n}")).await;
    }
    let path = format!("/api/tenants/{}/flows", world.acme);
    let first = world.app.get(&format!("{path}?limit=1"), &bob).await;
    let cursor = first.assert_status(200)["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let dave = Cred::Token(world.token_of("dave").await);
    world
        .app
        .get(&format!("{path}?limit=1&cursor={cursor}"), &dave)
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn a_page_size_out_of_range_or_a_parameter_given_twice_is_refused_naming_it() {
    let world = World::new().await;
    let bob = Cred::Token(world.token_of("bob").await);
    let lists = [
        "/api/tenants".to_owned(),
        format!("/api/tenants/{}/flows", world.acme),
        format!("/api/tenants/{}/members", world.acme),
        "/api/me/audit".to_owned(),
    ];
    for list in &lists {
        for limit in ["0", "-1", "501", "4294967296", "ten", "1.5", ""] {
            let reply = world.app.get(&format!("{list}?limit={limit}"), &bob).await;
            reply.assert_problem(400, "bad_request");
            assert_eq!(
                reply.body["detail"], "limit: must be a whole number from 1 to 500",
                "{list}?limit={limit}"
            );
        }
        let edge = world.app.get(&format!("{list}?limit=500"), &bob).await;
        let edge = edge.assert_status(200);
        assert!(
            edge["items"].is_array() && edge["next_cursor"].is_null(),
            "{list}: {edge}"
        );
    }
    // A parameter given twice is refused, however it is spelt: which one counts would be a guess.
    let tenants = "/api/tenants";
    for query in [
        "limit=5&limit=50",
        "limit=5&%6Cimit=5",
        "cursor=&limit=2&cursor=",
    ] {
        let reply = world.app.get(&format!("{tenants}?{query}"), &bob).await;
        reply.assert_problem(400, "bad_request");
        let name = if query.starts_with("cursor") {
            "cursor"
        } else {
            "limit"
        };
        assert_eq!(
            reply.body["detail"],
            format!("{name}: given more than once"),
            "{query}"
        );
    }
    let one_each = world
        .app
        .get(&format!("{tenants}?limit=2&unknown=1"), &bob)
        .await;
    let one_each = one_each.assert_status(200);
    // An unknown name given once is let be: Bob's one tenant.
    assert_eq!(one_each["items"].as_array().unwrap().len(), 1, "{one_each}");
    // A long name is named cut short; a path no operation has stays a 404.
    let long = "n".repeat(100);
    let reply = world
        .app
        .get(&format!("{tenants}?{long}=1&{long}=2"), &bob)
        .await;
    reply.assert_problem(400, "bad_request");
    assert_eq!(
        reply.body["detail"],
        format!("{}…: given more than once", "n".repeat(64))
    );
    world
        .app
        .get("/api/no-such-list?limit=1&limit=2", &bob)
        .await
        .assert_status(404);
    // Other rules the document states are said in words, not in the framework's terms.
    let reply = world.app.get("/api/me/audit?cursor=soon", &bob).await;
    reply.assert_problem(400, "bad_request");
    assert_eq!(
        reply.body["detail"],
        "cursor: must match the pattern \"^[0-9]{1,18}$\""
    );
    for since in ["notadate", "2026-12-07", "2026-02-30T00:00:00Z"] {
        let reply = world
            .app
            .get(&format!("/api/me/audit?since={since}"), &bob)
            .await;
        reply.assert_problem(400, "bad_request");
        assert_eq!(
            reply.body["detail"],
            "since: must be an RFC 3339 instant such as 2026-12-07T19:13:58Z (an offset's `+` sent as %2B)",
            "{since}"
        );
    }
    let reply = world.app.get("/api/me/audit?action=LOGIN", &bob).await;
    reply.assert_problem(400, "bad_request");
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("action: must match the pattern \""),
        "{}",
        reply.body
    );
}
