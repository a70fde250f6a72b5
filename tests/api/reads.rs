//! The request path's reads (`store::reads`): on SQLite they run on direct read-only connections,
//! elsewhere through the pool; either way they return exactly what the sea-orm queries return.

use serde_json::json;
use uuid::Uuid;
use zygo::auth::session;
use zygo::store::{self, TenantId, UserId};

use crate::helpers::TestDb;

/// Stores a session as a login does and returns the hash it is found by.
async fn start_session(db: &TestDb, user: UserId, tenant: Option<TenantId>) -> String {
    let hash = session::hash_id(&session::new_id());
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    store::sessions::create(&db.db, hash.clone(), user, tenant, expires)
        .await
        .unwrap();
    hash
}

#[tokio::test]
async fn direct_reads_return_the_same_flow_and_session_rows_as_the_pool() {
    let state = TestDb::open().await;
    let owner = state
        .add_user("reads@example.com", "reads-password-1")
        .await;
    let tenant = state.add_tenant("Reads", owner).await;
    let flow = store::flows::create(
        &state.db,
        tenant,
        owner,
        "Ünïcode name",
        json!({"nested": {"list": [1, 2.5, "three", null, true]}}),
        &["zeta".into(), "alpha".into(), "alpha".into()],
        &zygo::store::audit::Actor::default(),
    )
    .await
    .unwrap();
    let reader = state
        .add_user("reader@example.com", "reads-password-2")
        .await;
    let editor = state
        .add_user("editor@example.com", "reads-password-3")
        .await;
    for (user, access) in [
        (reader, store::flows::Access::Read),
        (editor, store::flows::Access::Edit),
        (owner, store::flows::Access::Read),
    ] {
        assert!(
            store::flows::share(&state.db, tenant, flow.id, user, access)
                .await
                .unwrap()
        );
    }

    let direct = state.reads.flow(tenant, flow.id).await.unwrap();
    let pooled = store::flows::find(&state.db, tenant, flow.id)
        .await
        .unwrap();
    assert_eq!(direct, pooled);
    let attrs = &direct.as_ref().unwrap().attrs;
    assert_eq!(attrs.owner, Some(owner));
    assert_eq!(attrs.labels, ["alpha", "zeta"]);
    assert_eq!(attrs.editors, [editor]);
    let mut readers = vec![reader, owner];
    readers.sort();
    assert_eq!(attrs.readers, readers);
    assert_eq!(
        direct.as_ref().map(|f| f.name.as_str()),
        Some("Ünïcode name")
    );
    // Another tenant's id or a missing id finds nothing, as the pool's query does.
    assert_eq!(
        state
            .reads
            .flow(TenantId(Uuid::new_v4()), flow.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        state.reads.flow(tenant, Uuid::new_v4()).await.unwrap(),
        None
    );

    // Read on a decision: `allow` sees the attributes (nothing for a missing or foreign flow),
    // a refusal reads no row, and a flow let through is the row `flow` reads.
    let asked = std::sync::Mutex::new(Vec::new());
    let decided = |id: Uuid, tenant: TenantId, allowed: bool| {
        let asked = &asked;
        let reads = &state.reads;
        async move {
            reads
                .flow_if(tenant, id, |attrs| {
                    asked.lock().unwrap().push(attrs.cloned());
                    if allowed { Ok(()) } else { Err("refused") }
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(decided(flow.id, tenant, true).await, Ok(direct.clone()));
    assert_eq!(decided(flow.id, tenant, false).await, Err("refused"));
    assert_eq!(decided(Uuid::new_v4(), tenant, true).await, Ok(None));
    assert_eq!(
        decided(flow.id, TenantId(Uuid::new_v4()), true).await,
        Ok(None)
    );
    assert_eq!(
        *asked.lock().unwrap(),
        [Some(attrs.clone()), Some(attrs.clone()), None, None]
    );

    // A change is seen by the next direct read (WAL readers see every commit).
    store::flows::update(
        &state.db,
        tenant,
        flow.id,
        store::flows::FlowChanges {
            name: Some("renamed".into()),
            definition: None,
            labels: Some(vec![]),
        },
    )
    .await
    .unwrap();
    let renamed = state.reads.flow(tenant, flow.id).await.unwrap().unwrap();
    assert_eq!(renamed.name, "renamed");
    assert!(renamed.attrs.labels.is_empty());
    assert_eq!(
        Some(renamed),
        store::flows::find(&state.db, tenant, flow.id)
            .await
            .unwrap()
    );

    for current in [None, Some(tenant)] {
        let hash = start_session(&state, owner, current).await;
        let direct = state.reads.session(&hash).await.unwrap();
        let pooled = store::sessions::find(&state.db, &hash).await.unwrap();
        assert!(direct.is_some());
        assert_eq!(direct, pooled);
        store::sessions::delete(&state.db, &hash).await.unwrap();
        assert_eq!(state.reads.session(&hash).await.unwrap(), None);
    }
}

/// Many reads at once (on PostgreSQL they share statements): each request gets its own row, a
/// missing or foreign flow is `None` next to found ones, and a read that starts after a write
/// commits sees it, whatever else is being read at the same moment.
#[tokio::test]
async fn concurrent_reads_each_get_their_own_row_and_see_committed_writes() {
    let state = std::sync::Arc::new(TestDb::open().await);
    let owner = state.add_user("many@example.com", "reads-password-1").await;
    let tenant = state.add_tenant("Many", owner).await;
    let other = state.add_tenant("Other", owner).await;
    let mut flows = Vec::new();
    for n in 0..40 {
        let labels = if n % 3 == 0 {
            vec![format!("l{n}")]
        } else {
            vec![]
        };
        let flow = store::flows::create(
            &state.db,
            tenant,
            owner,
            &format!("flow {n}"),
            json!({"n": n}),
            &labels,
            &zygo::store::audit::Actor::default(),
        )
        .await
        .unwrap();
        flows.push(flow);
    }
    let mut sessions = Vec::new();
    for _ in 0..10 {
        sessions.push(start_session(&state, owner, Some(tenant)).await);
    }

    // Every flow three times, a missing id and each flow asked in the wrong tenant, all at once.
    let mut asks = Vec::new();
    for round in 0..3 {
        for flow in &flows {
            let ask_tenant = if round == 2 { other } else { tenant };
            asks.push((ask_tenant, flow.id));
        }
        asks.push((tenant, Uuid::new_v4()));
    }
    let reads = asks.iter().map(|&(t, id)| {
        let state = state.clone();
        tokio::spawn(async move { state.reads.flow(t, id).await })
    });
    let unknown = "0".repeat(64);
    let session_reads = sessions.iter().chain([&unknown]).map(|hash| {
        let (state, hash) = (state.clone(), hash.clone());
        tokio::spawn(async move { state.reads.session(&hash).await })
    });
    let (found, found_sessions) = tokio::join!(
        futures_util::future::join_all(reads),
        futures_util::future::join_all(session_reads)
    );
    for (&(t, id), got) in asks.iter().zip(found) {
        let got = got.unwrap().unwrap();
        let expected = flows.iter().find(|f| f.id == id && t == tenant);
        assert_eq!(got.as_ref(), expected, "flow {id} in tenant {t}");
    }
    for (hash, got) in sessions.iter().map(Some).chain([None]).zip(found_sessions) {
        let got = got.unwrap().unwrap();
        assert_eq!(got.as_ref().map(|s| &s.id_hash), hash, "session {hash:?}");
        if let Some(got) = got {
            assert_eq!(got.current_tenant_id, Some(tenant.0));
            assert_eq!(got.user_id, owner.0);
        }
    }

    // Writes interleaved with a crowd of readers: each read that starts after a write's commit
    // sees that write.
    let target = flows[1].id;
    for n in 0..10 {
        let name = format!("renamed {n}");
        store::flows::update(
            &state.db,
            tenant,
            target,
            store::flows::FlowChanges {
                name: Some(name.clone()),
                definition: None,
                labels: Some(vec![format!("v{n}")]),
            },
        )
        .await
        .unwrap();
        let crowd = flows.iter().map(|f| {
            let (state, id) = (state.clone(), f.id);
            tokio::spawn(async move { state.reads.flow(tenant, id).await })
        });
        let (mine, crowd) = tokio::join!(
            state.reads.flow(tenant, target),
            futures_util::future::join_all(crowd)
        );
        let mine = mine.unwrap().unwrap();
        assert_eq!(mine.name, name);
        assert_eq!(mine.attrs.labels, [format!("v{n}")]);
        let seen = crowd[1]
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap();
        assert_eq!(seen.name, name);
    }
}
