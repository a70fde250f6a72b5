//! Request and response bodies shared by the API modules.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use uuid::Uuid;

use super::json_object::JsonObject;
use crate::store;

/// A user's membership in a tenant.
#[derive(Debug, Clone, Object)]
pub struct Membership {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    /// A role defined by the policy folder (`Admin`, `Editor`, `Viewer` by default).
    pub role: String,
}

/// The authenticated user.
#[derive(Debug, Clone, Object)]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    /// Successful browser logins; tokens never change it.
    pub login_count: i64,
    /// The session's current tenant; `null` for token requests (they name the tenant in the URL).
    pub current_tenant_id: Option<Uuid>,
    pub memberships: Vec<Membership>,
}

/// A tenant.
#[derive(Debug, Clone, Object)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<store::tenants::Tenant> for Tenant {
    fn from(t: store::tenants::Tenant) -> Self {
        Tenant {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
        }
    }
}

/// A tenant with the caller's role in it.
#[derive(Debug, Clone, Object)]
pub struct TenantWithRole {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The caller's role in this tenant.
    pub role: String,
}

/// A member of a tenant.
#[derive(Debug, Clone, Object)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub role: String,
}

impl From<store::members::Member> for Member {
    fn from(m: store::members::Member) -> Self {
        Member {
            user_id: m.user_id.0,
            email: m.email,
            role: m.role,
        }
    }
}

/// A flow: a named JSON document owned by a tenant.
#[derive(Debug, Clone, Object)]
pub struct Flow {
    pub id: Uuid,
    pub name: String,
    pub definition: JsonObject,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<store::flows::Flow> for Flow {
    fn from(f: store::flows::Flow) -> Self {
        let definition = match f.definition {
            serde_json::Value::Object(map) => JsonObject(map),
            _ => JsonObject::default(),
        };
        Flow {
            id: f.id,
            name: f.name,
            definition,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// A name after trimming, or a 422 naming the field.
pub fn clean_name(field: &'static str, name: &str) -> crate::error::ApiResult<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(crate::error::ApiError::Validation {
            field: field.into(),
            message: "must not be blank".into(),
        });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(crate::error::ApiError::Validation {
            field: field.into(),
            message: "must not contain control characters".into(),
        });
    }
    Ok(trimmed.to_owned())
}
