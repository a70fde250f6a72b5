//! Request and response bodies shared by the API modules.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use poem_openapi::types::Example;
use uuid::Uuid;

use super::json_object::{JsonObject, RawObject};
use crate::store;

/// A user's membership in a tenant.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Membership {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    /// A role defined by the policy folder (`Admin`, `Editor`, `Viewer` by default).
    pub role: String,
}

/// The authenticated user.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Me {
    pub id: Uuid,
    pub email: String,
    /// Successful browser logins; tokens never change it.
    pub login_count: i64,
    /// The session's current tenant; `null` for token requests (they name the tenant in the URL),
    /// and for a session whose user is no longer a member of the tenant it was in.
    #[oai(nullable)]
    pub current_tenant_id: Option<Uuid>,
    pub memberships: Vec<Membership>,
}

/// A tenant.
#[derive(Debug, Clone, Object)]
#[oai(example)]
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
#[oai(example)]
pub struct TenantWithRole {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The caller's role in this tenant.
    pub role: String,
}

/// A member of a tenant.
#[derive(Debug, Clone, Object)]
#[oai(example)]
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
// Written with serde on the read path (see `api::serialized`), so the serde form follows the
// poem-openapi one field for field.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(example)]
pub struct Flow {
    pub id: Uuid,
    pub name: String,
    pub definition: RawObject,
    /// The user who created the flow (set by the service, never by a body). Null for a flow whose
    /// creator has left the tenant, and for one created before flows had owners in a tenant that
    /// then had no Admin.
    #[oai(nullable)]
    pub owner: Option<Uuid>,
    /// The flow's labels, sorted; policies may decide on them (`confidential`, say).
    pub labels: Vec<String>,
    #[serde(serialize_with = "super::serialized::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::serialized::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl From<store::flows::Flow> for Flow {
    fn from(f: store::flows::Flow) -> Self {
        Flow {
            id: f.id,
            name: f.name,
            definition: RawObject(f.definition),
            owner: f.attrs.owner.map(|u| u.0),
            labels: f.attrs.labels,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// Ids and times the examples of the document share, so they read as one story.
pub mod sample {
    use chrono::{DateTime, TimeZone, Utc};
    use uuid::Uuid;

    pub const USER: Uuid = Uuid::from_u128(0x5f0c_1d3e_8a41_4c52_9b7e_2a6f_0d9c_3b11);
    pub const OTHER_USER: Uuid = Uuid::from_u128(0x7a2b_4c9d_1e3f_4a5b_8c6d_9e0f_1a2b_3c4d);
    pub const TENANT: Uuid = Uuid::from_u128(0x2710_4c53_4db6_4487_bdac_4a87_61cf_7992);
    pub const FLOW: Uuid = Uuid::from_u128(0x9b1e_6a0f_3c2d_4e5f_a6b7_c8d9_e0f1_a2b3);

    pub fn time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, 9, 30, 0)
            .single()
            .unwrap_or_default()
    }

    pub fn definition() -> super::JsonObject {
        let mut map = serde_json::Map::new();
        map.insert(
            "steps".into(),
            serde_json::json!(["submit", "approve", "pay"]),
        );
        super::JsonObject(map)
    }
}

impl Example for Membership {
    fn example() -> Self {
        Membership {
            tenant_id: sample::TENANT,
            tenant_name: "Acme".into(),
            role: "Admin".into(),
        }
    }
}

impl Example for Me {
    fn example() -> Self {
        Me {
            id: sample::USER,
            email: "admin@acme.example".into(),
            login_count: 3,
            current_tenant_id: Some(sample::TENANT),
            memberships: vec![Membership::example()],
        }
    }
}

impl Example for Tenant {
    fn example() -> Self {
        Tenant {
            id: sample::TENANT,
            name: "Acme".into(),
            created_at: sample::time(),
        }
    }
}

impl Example for TenantWithRole {
    fn example() -> Self {
        TenantWithRole {
            id: sample::TENANT,
            name: "Acme".into(),
            created_at: sample::time(),
            role: "Admin".into(),
        }
    }
}

impl Example for Member {
    fn example() -> Self {
        Member {
            user_id: sample::OTHER_USER,
            email: "editor@acme.example".into(),
            role: "Editor".into(),
        }
    }
}

impl Example for Flow {
    fn example() -> Self {
        Flow {
            id: sample::FLOW,
            name: "Invoice approval".into(),
            definition: RawObject(
                store::flows::Definition::of(&sample::definition())
                    .unwrap_or_else(|_| store::flows::Definition::empty()),
            ),
            owner: Some(sample::USER),
            labels: vec!["finance".into()],
            created_at: sample::time(),
            updated_at: sample::time(),
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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use poem_openapi::types::ToJSON;
    use serde_json::json;
    use uuid::Uuid;

    use super::super::json_object::RawObject;
    use super::Flow;
    use crate::store::flows::Definition;

    fn flow(owner: Option<Uuid>, nanos: u32, definition: serde_json::Value) -> Flow {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 6, 10, 0, 0)
            .single()
            .and_then(|t| {
                t.with_timezone(&Utc)
                    .checked_add_signed(chrono::Duration::nanoseconds(i64::from(nanos)))
            })
            .expect("a valid time");
        Flow {
            id: Uuid::new_v4(),
            name: "Ünïcode \"quoted\" \\ name\n".into(),
            definition: RawObject(Definition::of(&definition).expect("json")),
            owner,
            labels: vec!["confidential".into(), "team-7".into()],
            created_at: at,
            updated_at: at + chrono::Duration::days(400),
        }
    }

    #[test]
    fn a_flow_serialises_as_its_documented_json() {
        let cases = [
            flow(None, 0, json!({})),
            flow(
                Some(Uuid::new_v4()),
                123_456_789,
                json!({"z": 1, "a": [1, 2.5, "x", null, true], "m": {"k": {}}}),
            ),
            flow(
                Some(Uuid::nil()),
                1_000,
                json!({"\u{0000}": "nul", "emoji": "🦀"}),
            ),
            flow(
                None,
                7,
                json!({"n": [0, -1, 1.5, 1e300, 18446744073709551615u64, -9223372036854775808i64],
                       "s": "\"\\/\u{1f}\u{7f}\u{2028}é", "deep": {"a": [{"b": [[]]}]}}),
            ),
        ];
        for case in cases {
            let documented = serde_json::to_string(&case.to_json()).expect("json");
            let written = serde_json::to_string(&case).expect("json");
            assert_eq!(written, documented);
        }
    }
}
