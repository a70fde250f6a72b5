//! A fresh, migrated database and nothing else: for tests of the store alone, which need a
//! connection and the request path's readers, not a server or its application state.

use sea_orm::DatabaseConnection;
use tempfile::TempDir;
use uuid::Uuid;
use zygo::auth::password;
use zygo::store::{self, TenantId, UserId, reads::Reads};

use super::app::test_settings;

pub struct TestDb {
    /// The pool writes go through.
    pub db: DatabaseConnection,
    /// The readers the request path uses (direct read-only connections on SQLite).
    pub reads: Reads,
    _dir: TempDir,
}

impl TestDb {
    /// A fresh database (SQLite in a temporary folder, or a new PostgreSQL database), migrated.
    pub async fn open() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = test_settings(dir.path()).database;
        let db = store::open(&settings).await.expect("database opens");
        let readers = store::open_reads(&settings, &db)
            .await
            .expect("readers open");
        TestDb {
            reads: Reads::new(&settings, readers),
            db,
            _dir: dir,
        }
    }

    pub async fn add_user(&self, email: &str, pass: &str) -> UserId {
        add_user(&self.db, email, pass).await
    }

    pub async fn add_tenant(&self, name: &str, owner: UserId) -> TenantId {
        add_tenant(&self.db, name, owner).await
    }
}

/// Creates a user straight in the store (the CLI has its own test).
pub async fn add_user(db: &DatabaseConnection, email: &str, pass: &str) -> UserId {
    let hash = password::hash(pass).expect("hash");
    UserId(
        store::users::create(db, email, hash)
            .await
            .expect("user created")
            .id,
    )
}

/// Creates a tenant owned (as Admin) by `owner`.
pub async fn add_tenant(db: &DatabaseConnection, name: &str, owner: UserId) -> TenantId {
    let id = TenantId(Uuid::new_v4());
    store::tenants::create(
        db,
        id,
        name,
        owner,
        "Admin",
        &store::audit::Actor::default(),
    )
    .await
    .expect("tenant created");
    id
}
