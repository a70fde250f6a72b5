//! `serve --demo`: a small world to try the service with at once. Idempotent: users, tenants and
//! flows are created only when missing. The passwords are public; never use `--demo` on a server
//! that others can reach.

use sea_orm::DatabaseConnection;

use crate::auth::password;
use crate::store::{self, TenantId, UserId};

/// A demo account and its roles.
pub struct DemoUser {
    pub email: &'static str,
    pub password: &'static str,
    pub roles: &'static [(&'static str, &'static str)],
}

pub const USERS: &[DemoUser] = &[
    DemoUser {
        email: "admin@acme.example",
        password: "acme-admin-demo",
        roles: &[("Acme", "Admin"), ("Globex", "Viewer")],
    },
    DemoUser {
        email: "editor@acme.example",
        password: "acme-editor-demo",
        roles: &[("Acme", "Editor")],
    },
    DemoUser {
        email: "viewer@acme.example",
        password: "acme-viewer-demo",
        roles: &[("Acme", "Viewer")],
    },
    DemoUser {
        email: "admin@globex.example",
        password: "globex-admin-demo",
        roles: &[("Globex", "Admin"), ("Acme", "Editor")],
    },
];

const FLOWS: &[(&str, &str, &str)] = &[
    (
        "Acme",
        "Onboarding",
        r#"{"steps": ["account", "training", "first project"]}"#,
    ),
    (
        "Acme",
        "Invoice approval",
        r#"{"steps": ["submit", "approve", "pay"], "limit": 5000}"#,
    ),
    (
        "Globex",
        "Incident response",
        r#"{"steps": ["triage", "mitigate", "review"]}"#,
    ),
];

async fn user_id(db: &DatabaseConnection, user: &DemoUser) -> Result<UserId, String> {
    if let Some(existing) = store::users::find_by_email(db, user.email)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(UserId(existing.id));
    }
    let hash = password::hash(user.password)?;
    let created = store::users::create(db, user.email, hash)
        .await
        .map_err(|e| e.to_string())?;
    Ok(UserId(created.id))
}

/// Creates what is missing of the demo world and returns a description to print.
pub async fn seed(db: &DatabaseConnection, creator_role: &str) -> Result<String, String> {
    let mut ids = Vec::new();
    for user in USERS {
        ids.push(user_id(db, user).await?);
    }
    let mut tenants: Vec<(&str, TenantId)> = Vec::new();
    // Each tenant is created by its administrator, who becomes its first member.
    for (name, owner) in [("Acme", ids[0]), ("Globex", ids[3])] {
        let mine = store::tenants::all_for_user(db, owner)
            .await
            .map_err(|e| e.to_string())?;
        let id = match mine.iter().find(|(t, _)| t.name == name) {
            Some((t, _)) => TenantId(t.id),
            None => {
                let id = TenantId(uuid::Uuid::new_v4());
                store::tenants::create(
                    db,
                    id,
                    name,
                    owner,
                    creator_role,
                    &store::audit::Actor::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
                for (_, flow, definition) in FLOWS.iter().filter(|f| f.0 == name) {
                    let definition: serde_json::Value =
                        serde_json::from_str(definition).map_err(|e| e.to_string())?;
                    store::flows::create(
                        db,
                        id,
                        owner,
                        flow,
                        definition,
                        &[],
                        &store::audit::Actor::default(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                }
                id
            }
        };
        tenants.push((name, id));
    }
    for (user, id) in USERS.iter().zip(&ids) {
        for (tenant_name, role) in user.roles {
            let Some((_, tenant)) = tenants.iter().find(|(n, _)| n == tenant_name) else {
                continue;
            };
            if store::members::role_of(db, *tenant, *id)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                store::members::set_role(
                    db,
                    *tenant,
                    *id,
                    role,
                    &store::audit::Actor::default(),
                    |_| true,
                )
                .await
                .map_err(|e| e.to_string())?;
            }
        }
    }
    let mut out = String::from("demo world (passwords are public, for local use only):\n");
    for (name, id) in &tenants {
        out.push_str(&format!("  tenant {name}: {id}\n"));
    }
    for user in USERS {
        let roles: Vec<String> = user
            .roles
            .iter()
            .map(|(t, r)| format!("{r} in {t}"))
            .collect();
        out.push_str(&format!(
            "  {} / {}  ({})\n",
            user.email,
            user.password,
            roles.join(", ")
        ));
    }
    Ok(out)
}
