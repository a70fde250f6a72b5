//! Memory is bounded by configuration, not by what users store: a flow definition has a maximum
//! size (and the body limit follows it), definitions travel as text (the bytes written come back),
//! a page of flows stops at a byte budget, and decisions read a flow's attributes only.

use reqwest::Method;
use serde_json::{Value, json};
use zygo::store::{self, TenantId};

use crate::helpers::{Cred, Reply, World, send, spawn_with, test_settings};

/// A definition `{"d":"xxx…"}` of exactly `bytes` bytes of compact JSON.
fn definition_of(bytes: usize) -> Value {
    let definition = json!({"d": "x".repeat(bytes - 8)});
    assert_eq!(serde_json::to_string(&definition).unwrap().len(), bytes);
    definition
}

/// A world whose server has these limits.
async fn world_with(max_definition_bytes: usize, max_page_bytes: usize) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    settings.max_definition_bytes = max_definition_bytes;
    settings.max_page_bytes = max_page_bytes;
    World::on(spawn_with(settings, dir).await).await
}

#[track_caller]
fn assert_names_definition(reply: &Reply, size: usize, max: usize) {
    reply.assert_problem(413, "definition_too_large");
    assert_eq!(
        reply.body["detail"],
        format!("definition: must be at most {max} bytes of JSON (this one is {size})")
    );
}

#[tokio::test]
async fn a_definition_over_the_default_limit_is_refused_naming_it_on_post_put_and_patch_and_nothing_is_written()
 {
    let world = World::new().await;
    let bob = Cred::Token(world.token_of("bob").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    let max = zygo::config::DEFAULT_MAX_DEFINITION_BYTES;
    assert_eq!(max, 64 * 1024, "the documented default");

    let over = world
        .app
        .post(
            &flows,
            &bob,
            json!({"name": "too big", "definition": definition_of(max + 1)}),
        )
        .await;
    assert_names_definition(&over, max + 1, max);
    let listed = world.app.get(&flows, &bob).await;
    assert_eq!(
        listed.assert_status(200)["items"],
        json!([]),
        "nothing written"
    );

    // Exactly at the limit: accepted, and read back as sent.
    let at = definition_of(max);
    let created = world
        .app
        .post(
            &flows,
            &bob,
            json!({"name": "at the limit", "definition": at}),
        )
        .await;
    assert_eq!(created.assert_status(201)["definition"], at);
    let flow = format!("{flows}/{}", created.body["id"].as_str().unwrap());

    let small = json!({"steps": [1]});
    let replaced = world
        .app
        .put(&flow, &bob, json!({"name": "small", "definition": small}))
        .await;
    assert_eq!(replaced.assert_status(200)["definition"], small);

    let put = world
        .app
        .put(
            &flow,
            &bob,
            json!({"name": "renamed", "definition": definition_of(max + 1)}),
        )
        .await;
    assert_names_definition(&put, max + 1, max);
    let patch = world
        .app
        .patch(
            &flow,
            &bob,
            json!({"name": "renamed", "definition": definition_of(max + 100)}),
        )
        .await;
    assert_names_definition(&patch, max + 100, max);
    let unchanged = world.app.get(&flow, &bob).await;
    let unchanged = unchanged.assert_status(200);
    assert_eq!(unchanged["name"], "small", "nothing written");
    assert_eq!(unchanged["definition"], small);
    assert_eq!(unchanged["updated_at"], replaced.body["updated_at"]);

    let patched = world
        .app
        .patch(&flow, &bob, json!({"definition": definition_of(max)}))
        .await;
    assert_eq!(patched.assert_status(200)["definition"], definition_of(max));
}

#[tokio::test]
async fn the_definition_limit_is_a_setting_and_the_body_limit_follows_it() {
    let world = world_with(1000, zygo::config::DEFAULT_MAX_PAGE_BYTES).await;
    let bob = Cred::Token(world.token_of("bob").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    let over = world
        .app
        .post(
            &flows,
            &bob,
            json!({"name": "over", "definition": definition_of(1001)}),
        )
        .await;
    assert_names_definition(&over, 1001, 1000);
    let at = world
        .app
        .post(
            &flows,
            &bob,
            json!({"name": "at", "definition": definition_of(1000)}),
        )
        .await;
    assert_eq!(at.assert_status(201)["definition"], definition_of(1000));
    // The limit counts the definition's compact JSON: the same object sent indented fits.
    let indented = serde_json::to_string_pretty(
        &json!({"name": "indented", "definition": definition_of(1000)}),
    )
    .unwrap();
    let reply = send(
        world
            .app
            .raw(Method::POST, &flows, &bob)
            .header("content-type", "application/json")
            .body(indented),
    )
    .await;
    reply.assert_status(201);

    // A body is limited to the definition limit and 64 KiB: this one (70 KiB, of any kind) is
    // refused before it is read, where it used to be read up to 1 MiB.
    let body = json!({"items": [{"action": "x".repeat(70 * 1024), "resource": {}}]});
    let big = world
        .app
        .post(
            &format!("/api/tenants/{}/authorize", world.acme),
            &bob,
            body,
        )
        .await;
    big.assert_problem(413, "payload_too_large");
    let just_fits = world
        .app
        .post(
            &flows,
            &bob,
            json!({"name": "fits", "definition": definition_of(1000), "pad": "x".repeat(60 * 1024)}),
        )
        .await;
    just_fits.assert_status(201);
}

/// Every page of the flow list for `cred` (limit 500), with each page's items.
async fn pages(world: &World, cred: &Cred) -> Vec<Vec<Value>> {
    let path = format!("/api/tenants/{}/flows?limit=500", world.acme);
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.clone(),
        };
        let reply = world.app.get(&url, cred).await;
        let body = reply.assert_status(200);
        let items = body["items"].as_array().unwrap().clone();
        assert!(!items.is_empty(), "a page always holds a flow: {body}");
        pages.push(items);
        assert!(pages.len() < 50, "bounded");
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
    }
}

fn definition_bytes(items: &[Value]) -> usize {
    items
        .iter()
        .map(|item| serde_json::to_string(&item["definition"]).unwrap().len())
        .sum()
}

#[tokio::test]
async fn a_page_stops_at_the_byte_budget_and_its_cursor_reads_every_flow_exactly_once() {
    let budget = 3000;
    let world = world_with(8000, budget).await;
    let bob = Cred::Token(world.token_of("bob").await);
    let carol = Cred::Token(world.token_of("carol").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    // Sizes around the budget: small ones that share a page, one exactly at the budget, and one
    // larger than the budget, which must still come (alone on its page).
    let sizes = [
        1000, 1000, 1000, 1001, 10, 2990, 3000, 5000, 20, 20, 1500, 1500, 1500,
    ];
    let mut created = Vec::new();
    for (n, size) in sizes.iter().enumerate() {
        let reply = world
            .app
            .post(
                &flows,
                &bob,
                json!({"name": format!("flow {n}"), "definition": definition_of(*size)}),
            )
            .await;
        created.push(reply.assert_status(201)["id"].as_str().unwrap().to_owned());
    }
    // A Viewer lists with the largest row limit: the budget, not the limit, cuts the pages.
    let pages = pages(&world, &carol).await;
    let read: Vec<String> = pages
        .iter()
        .flatten()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(read, created, "every flow once, in order");
    for page in &pages {
        assert!(
            page.len() == 1 || definition_bytes(page) <= budget,
            "{} bytes in {} flows",
            definition_bytes(page),
            page.len()
        );
    }
    let per_page: Vec<usize> = pages.iter().map(Vec::len).collect();
    // Greedy: a page ends before the flow that would pass 3000 bytes.
    assert_eq!(per_page, vec![3, 2, 1, 1, 1, 3, 2], "{per_page:?}");
    for (page, item) in pages.iter().flatten().zip(sizes) {
        assert_eq!(page["definition"], definition_of(item));
    }
}

#[tokio::test]
async fn a_definition_round_trips_numbers_unicode_and_nesting_through_create_get_and_list() {
    let world = World::new().await;
    let bob = Cred::Token(world.token_of("bob").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    let definition = json!({
        "zeta": "keys keep their order",
        "alpha": 1,
        "numbers": [0, -1, 1.5, 0.1, -2.5e-7, 1e300, 1.7976931348623157e308,
                    18446744073709551615u64, -9223372036854775808i64, 9007199254740993u64],
        "unicode": ["é", "日本語", "🦀", "\u{2028}\u{2029}", "\u{7f}", "\"quoted\" \\ /", "\t\n\r"],
        "nested": {"a": [{"b": [[], {}, [[[[{"c": null}]]]]]}], "t": true, "f": false},
        "empty": {},
    });
    let compact = serde_json::to_string(&definition).unwrap();
    let created = world
        .app
        .post(
            &flows,
            &bob,
            json!({"name": "exact", "definition": definition}),
        )
        .await;
    assert_eq!(created.assert_status(201)["definition"], definition);
    let id = created.body["id"].as_str().unwrap();

    // The stored text is the compact JSON written once: the response carries it byte for byte
    // (key order, number forms, escapes), on SQLite and on PostgreSQL.
    for path in [format!("{flows}/{id}"), flows.clone()] {
        let response = world
            .app
            .raw(Method::GET, &path, &bob)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(
            text.contains(&format!("\"definition\":{compact}")),
            "{path}: {text}"
        );
        let body: Value = serde_json::from_str(&text).unwrap();
        let flow = if body["items"].is_array() {
            body["items"][0].clone()
        } else {
            body
        };
        assert_eq!(flow["definition"], definition);
        assert_eq!(serde_json::to_string(&flow["definition"]).unwrap(), compact);
    }
}

#[tokio::test]
async fn the_decision_api_decides_on_a_flows_owner_labels_and_shares_read_without_its_definition() {
    let world = World::new().await;
    let alice = Cred::Token(world.token_of("alice").await);
    let bob = Cred::Token(world.token_of("bob").await);
    let carol = Cred::Token(world.token_of("carol").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    let big = zygo::config::DEFAULT_MAX_DEFINITION_BYTES;
    let mut ids = Vec::new();
    for (name, labels) in [("open", json!([])), ("shared", json!(["confidential"]))] {
        let reply = world
            .app
            .post(
                &flows,
                &alice,
                json!({"name": name, "definition": definition_of(big), "labels": labels}),
            )
            .await;
        ids.push(reply.assert_status(201)["id"].as_str().unwrap().to_owned());
    }
    for (user, access) in [(world.carol, "read"), (world.bob, "edit")] {
        world
            .app
            .put(
                &format!("{flows}/{}/shares/{user}", ids[1]),
                &alice,
                json!({"access": access}),
            )
            .await
            .assert_status(200);
    }
    let ask =
        |action: &str, id: &str| json!({"action": action, "resource": {"type": "Flow", "id": id}});
    let authorize = format!("/api/tenants/{}/authorize", world.acme);
    let decisions = |reply: &Reply| -> Vec<Value> {
        reply.assert_status(200)["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["decision"].clone())
            .collect()
    };
    // Carol (a Viewer) reads both, the confidential one through her share, and edits neither.
    let reply = world
        .app
        .post(
            &authorize,
            &carol,
            json!({"items": [ask("ReadFlow", &ids[0]), ask("ReadFlow", &ids[1]), ask("UpdateFlow", &ids[1])]}),
        )
        .await;
    assert_eq!(
        decisions(&reply),
        vec!["Allow", "Allow", "Deny"],
        "{}",
        reply.body
    );
    // Bob (an Editor) may not update Alice's flow (its owner), but may update the one shared
    // with him for editing.
    let reply = world
        .app
        .post(
            &authorize,
            &bob,
            json!({"items": [ask("UpdateFlow", &ids[0]), ask("UpdateFlow", &ids[1])]}),
        )
        .await;
    assert_eq!(decisions(&reply), vec!["Deny", "Allow"], "{}", reply.body);
}

#[tokio::test]
async fn a_flows_attributes_read_alone_are_those_read_with_the_flow() {
    let world = World::new().await;
    let alice = Cred::Token(world.token_of("alice").await);
    let flows = format!("/api/tenants/{}/flows", world.acme);
    let created = world
        .app
        .post(
            &flows,
            &alice,
            json!({"name": "x", "definition": {"a": 1}, "labels": ["team-7", "confidential"]}),
        )
        .await;
    let id: uuid::Uuid = created.assert_status(201)["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for (user, access) in [(world.bob, "edit"), (world.carol, "read")] {
        world
            .app
            .put(
                &format!("{flows}/{id}/shares/{user}"),
                &alice,
                json!({"access": access}),
            )
            .await
            .assert_status(200);
    }
    let state = &world.app.state;
    let tenant = TenantId(world.acme.0);
    let full = state.reads.flow(tenant, id).await.unwrap().unwrap();
    let alone = state.reads.flow_attributes(tenant, id).await.unwrap();
    let pooled = store::flows::find_attributes(&state.db, tenant, id)
        .await
        .unwrap();
    assert_eq!(alone.as_ref(), Some(&full.attrs));
    assert_eq!(pooled.as_ref(), Some(&full.attrs));
    assert_eq!(full.attrs.owner, Some(world.alice));
    assert_eq!(full.attrs.labels, vec!["confidential", "team-7"]);
    assert_eq!(full.attrs.editors, vec![world.bob]);
    assert_eq!(full.attrs.readers, vec![world.carol]);
    // Another tenant's id, and an unknown one: nothing.
    for (tenant, id) in [
        (TenantId(world.globex.0), id),
        (tenant, uuid::Uuid::new_v4()),
    ] {
        assert_eq!(state.reads.flow_attributes(tenant, id).await.unwrap(), None);
        assert_eq!(
            store::flows::find_attributes(&state.db, tenant, id)
                .await
                .unwrap(),
            None
        );
    }
}
