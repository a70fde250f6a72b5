//! The request path's reads (`store::reads`): on SQLite they run on direct read-only connections,
//! elsewhere through the pool; either way they return exactly what the sea-orm queries return.

use serde_json::json;
use uuid::Uuid;
use zygo::auth::session;
use zygo::store::{self, TenantId};

use crate::helpers::spawn_app;

#[tokio::test]
async fn direct_reads_return_the_same_flow_and_session_rows_as_the_pool() {
    let app = spawn_app().await;
    let state = &app.state;
    let owner = app.add_user("reads@example.com", "reads-password-1").await;
    let tenant = app.add_tenant("Reads", owner).await;
    let flow = store::flows::create(
        &state.db,
        tenant,
        owner,
        "Ünïcode name",
        json!({"nested": {"list": [1, 2.5, "three", null, true]}}),
        &["zeta".into(), "alpha".into(), "alpha".into()],
    )
    .await
    .unwrap();
    let reader = app.add_user("reader@example.com", "reads-password-2").await;
    let editor = app.add_user("editor@example.com", "reads-password-3").await;
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
        let id = session::start(&state.authn, &state.db, owner, current)
            .await
            .unwrap();
        let hash = session::hash_id(&id);
        let direct = state.reads.session(&hash).await.unwrap();
        let pooled = store::sessions::find(&state.db, &hash).await.unwrap();
        assert!(direct.is_some());
        assert_eq!(direct, pooled);
        store::sessions::delete(&state.db, &hash).await.unwrap();
        assert_eq!(state.reads.session(&hash).await.unwrap(), None);
    }
}
