//! A small world of two tenants and a user in each role, and the store fixtures that build it.

use serde_json::json;
use zygo::store::{self, TenantId, UserId};

use super::app::{Cred, TestApp, spawn_app};
use super::database::{add_tenant, add_user};

impl TestApp {
    /// Creates a user straight in the store (the CLI has its own test).
    pub async fn add_user(&self, email: &str, pass: &str) -> UserId {
        add_user(&self.state.db, email, pass).await
    }

    /// Creates a tenant owned (as Admin) by `owner`.
    pub async fn add_tenant(&self, name: &str, owner: UserId) -> TenantId {
        add_tenant(&self.state.db, name, owner).await
    }

    pub async fn set_role(&self, tenant: TenantId, user: UserId, role: &str) {
        store::members::set_role(
            &self.state.db,
            tenant,
            user,
            role,
            &zygo::store::audit::Actor::default(),
            |_| true,
        )
        .await
        .expect("role set");
    }
}

/// A small world: two tenants, users with each role, and one outsider.
pub struct World {
    pub app: TestApp,
    pub acme: TenantId,
    pub globex: TenantId,
    /// Admin of Acme, Viewer of Globex.
    pub alice: UserId,
    /// Editor of Acme.
    pub bob: UserId,
    /// Viewer of Acme.
    pub carol: UserId,
    /// Admin of Globex, nothing in Acme.
    pub dave: UserId,
}

pub const PASSWORD: &str = "correct horse battery staple";

impl World {
    pub async fn new() -> World {
        World::on(spawn_app().await).await
    }

    /// The same world on an app started with custom settings.
    pub async fn on(app: TestApp) -> World {
        let alice = app.add_user("alice@example.com", PASSWORD).await;
        let bob = app.add_user("bob@example.com", PASSWORD).await;
        let carol = app.add_user("carol@example.com", PASSWORD).await;
        let dave = app.add_user("dave@example.com", PASSWORD).await;
        let acme = app.add_tenant("Acme", alice).await;
        let globex = app.add_tenant("Globex", dave).await;
        app.set_role(acme, bob, "Editor").await;
        app.set_role(acme, carol, "Viewer").await;
        app.set_role(globex, alice, "Viewer").await;
        World {
            app,
            acme,
            globex,
            alice,
            bob,
            carol,
            dave,
        }
    }

    /// A token for the user named by e-mail prefix (logs in once to get it).
    pub async fn token_of(&self, name: &str) -> String {
        let (cookie, _) = self
            .app
            .login(&format!("{name}@example.com"), PASSWORD)
            .await;
        self.app.token(&Cred::Cookie(cookie), None).await
    }

    /// Creates a flow in the tenant as the given credential and returns its id.
    pub async fn flow(&self, tenant: TenantId, cred: &Cred, name: &str) -> String {
        let reply = self
            .app
            .post(
                &format!("/api/tenants/{tenant}/flows"),
                cred,
                json!({"name": name, "definition": {"steps": [1, 2]}}),
            )
            .await;
        reply.assert_status(201)["id"]
            .as_str()
            .expect("flow id")
            .to_owned()
    }
}
