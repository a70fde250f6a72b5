//! `POST /api/tenants`, `GET /api/tenants`, `GET /api/tenants/{tenant_id}`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::body::Body;
use super::models::{Tenant, TenantWithRole, clean_name};
use super::page::{self, Page};
use super::state::AppState;
use super::tags::ApiTags;
use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::config::TenantCreation;
use crate::error::{ApiError, Errors, can};
use crate::invalidation::Key;
use crate::store::{self, TenantId};

/// A new tenant.
#[derive(Debug, Object)]
#[oai(example)]
pub struct NewTenant {
    /// 1 to 200 characters, not blank, no control characters; surrounding spaces are trimmed.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
    ))]
    pub name: String,
}

#[derive(ApiResponse)]
pub enum CreatedTenant {
    /// Created; the caller is its first member, with the creator role (`Admin`).
    #[oai(status = 201)]
    Created(Json<TenantWithRole>),
}

impl Example for NewTenant {
    fn example() -> Self {
        NewTenant {
            name: "Acme".into(),
        }
    }
}

pub struct TenantApi;

#[OpenApi(tag = "ApiTags::Tenants")]
impl TenantApi {
    /// Create a tenant
    ///
    /// The caller becomes its first member as `Admin`. Who may create tenants is a server
    /// setting (`--tenant-creation`): `anyone` (the default; the `CreateTenant` policy decides),
    /// or `operators`, where tenants are made with `zygo tenant add` and this answers 403
    /// `tenant_creation_restricted`.
    #[oai(path = "/api/tenants", method = "post", operation_id = "createTenant")]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        body: Body<NewTenant>,
    ) -> Result<
        CreatedTenant,
        Errors<{ can::BODY | can::UNAUTHORIZED | can::FORBIDDEN | can::SERVER }>,
    > {
        if state.settings.tenant_creation == TenantCreation::Operators {
            return Err(ApiError::TenantCreationRestricted.into());
        }
        let name = clean_name("name", &body.name)?;
        let id = TenantId(Uuid::new_v4());
        state
            .authz
            .require(&caller, id, Action::CreateTenant, Resource::Tenant)
            .await?;
        let role = state.settings.creator_role.clone();
        let tenant =
            store::tenants::create(&state.db, id, &name, caller.user_id, &role, &caller.actor())
                .await?;
        state.caches.changed(Key::Role(caller.user_id, id)).await;
        Ok(CreatedTenant::Created(Json(TenantWithRole {
            id: tenant.id,
            name: tenant.name,
            created_at: tenant.created_at,
            role,
        })))
    }

    /// List your tenants
    ///
    /// The tenants the caller belongs to, with the caller's role in each, in the order the caller
    /// joined them, a page at a time.
    #[oai(path = "/api/tenants", method = "get", operation_id = "listTenants")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// Rows per page: 1 to 500 (100 when omitted).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page; the first page when omitted.
        #[oai(validator(pattern = r"^[0-9]{1,11}\.[0-9]{9}-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
    ) -> Result<
        Json<Page<TenantWithRole>>,
        Errors<{ can::BAD_REQUEST | can::UNAUTHORIZED | can::SERVER }>,
    > {
        let page = page::keyset(limit.0, cursor.0.as_deref())?;
        let tenants = store::tenants::list_for_user(&state.db, caller.user_id, page).await?;
        Ok(Json(Page::of(tenants, |(t, role)| TenantWithRole {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
            role,
        })))
    }

    /// Get a tenant
    ///
    /// Members only; anyone else gets 403, whether or not the tenant exists.
    #[oai(
        path = "/api/tenants/:tenant_id",
        method = "get",
        operation_id = "getTenant"
    )]
    async fn get(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
    ) -> Result<Json<Tenant>, Errors<{ can::TENANT | can::SERVER }>> {
        let tenant = TenantId(tenant_id.0);
        state
            .authz
            .require(&caller, tenant, Action::ReadTenant, Resource::Tenant)
            .await?;
        store::tenants::find(&state.db, tenant)
            .await?
            .map(|t| Json(t.into()))
            // A member of a tenant that vanished between the two reads: as if not a member.
            .ok_or(ApiError::Forbidden.into())
    }
}
