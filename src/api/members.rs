//! `GET …/members`, `PUT …/members/{user_id}`, `DELETE …/members/{user_id}`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::body::Body;
use super::models::Member;
use super::page::{self, Page};
use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::error::{ApiError, Errors, can};
use crate::invalidation::Key;
use crate::startup::AppState;
use crate::store::members::{Change, ChangeError};
use crate::store::{self, TenantId, UserId};

/// The role to give.
#[derive(Debug, Object)]
#[oai(example)]
pub struct RoleRequest {
    /// A role name (a letter, then letters, digits or `_`) that the policy folder defines:
    /// `Admin`, `Editor`, `Viewer`, or another role the security team added.
    #[oai(validator(pattern = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"))]
    pub role: String,
}

#[derive(ApiResponse)]
pub enum SetRoleResponse {
    /// The member's role was changed.
    #[oai(status = 200)]
    Updated(Json<Member>),
    /// The user was added to the tenant.
    #[oai(status = 201)]
    Added(Json<Member>),
}

#[derive(ApiResponse)]
pub enum RemovedResponse {
    /// Removed from the tenant.
    #[oai(status = 204)]
    Removed,
}

const LAST_MANAGER: &str = "the tenant must keep a member who can manage members: the last Admin cannot be removed or demoted";

fn change_error(err: ChangeError) -> ApiError {
    match err {
        ChangeError::NoSuchUser => ApiError::NotFound("user"),
        ChangeError::NotAMember => ApiError::NotFound("member"),
        ChangeError::LastManager => ApiError::Conflict(LAST_MANAGER.into()),
        ChangeError::Db(err) => err.into(),
    }
}

impl Example for RoleRequest {
    fn example() -> Self {
        RoleRequest {
            role: "Editor".into(),
        }
    }
}

pub struct MemberApi;

#[OpenApi(tag = "ApiTags::Members")]
impl MemberApi {
    /// List members
    ///
    /// The members of the tenant with their role, oldest first, a page at a time. Members only.
    #[oai(
        path = "/api/tenants/:tenant_id/members",
        method = "get",
        operation_id = "listMembers"
    )]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
        /// Rows per page: 1 to 500 (100 when omitted).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page; the first page when omitted.
        #[oai(validator(pattern = r"^[0-9]{1,11}\.[0-9]{9}-[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<Member>>, Errors<{ can::TENANT | can::SERVER }>> {
        let tenant = TenantId(tenant_id.0);
        let page = page::keyset(limit.0, cursor.0.as_deref())?;
        state
            .authz
            .require(&caller, tenant, Action::ListMembers, Resource::Tenant)
            .await?;
        let members = store::members::list(&state.db, tenant, page).await?;
        Ok(Json(Page::of(members, Member::from)))
    }

    /// Add a member or change a role
    ///
    /// Adds the user with the role, or changes the role of a member. Admins only. The tenant must
    /// keep at least one member who can manage members (409 otherwise).
    #[oai(
        path = "/api/tenants/:tenant_id/members/:user_id",
        method = "put",
        operation_id = "setMemberRole"
    )]
    async fn set_role(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
        /// The user, by id (see `GET /api/tenants/{tenant_id}/members` or `GET /api/me`).
        user_id: Path<Uuid>,
        body: Body<RoleRequest>,
    ) -> Result<
        SetRoleResponse,
        Errors<{ can::RESOURCE | can::BODY | can::CONFLICT | can::UNPROCESSABLE | can::SERVER }>,
    > {
        let tenant = TenantId(tenant_id.0);
        let user = UserId(user_id.0);
        state
            .authz
            .require(
                &caller,
                tenant,
                Action::SetMemberRole,
                Resource::Member(user),
            )
            .await?;
        if !state.authz.is_role(&body.role) {
            let defined: Vec<String> = state.authz.bundle().roles().iter().cloned().collect();
            return Err(ApiError::Validation {
                field: "role".into(),
                message: format!(
                    "`{}` is not a role defined by the policies (defined: {})",
                    body.role,
                    defined.join(", ")
                ),
            }
            .into());
        }
        let authz = &state.authz;
        let result = store::members::set_role(&state.db, tenant, user, &body.role, |roles| {
            authz.keeps_manager(tenant, roles)
        })
        .await;
        let change = state
            .after_change(Key::Role(user, tenant), result)
            .await
            .map_err(change_error)?;
        let member = store::members::find(&state.db, tenant, user)
            .await?
            .ok_or(ApiError::NotFound("member"))?;
        Ok(match change {
            Change::Added => SetRoleResponse::Added(Json(member.into())),
            Change::Updated => SetRoleResponse::Updated(Json(member.into())),
        })
    }

    /// Remove a member
    ///
    /// Admins only. The last member who can manage members cannot be removed (409).
    #[oai(
        path = "/api/tenants/:tenant_id/members/:user_id",
        method = "delete",
        operation_id = "removeMember"
    )]
    async fn remove(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
        /// The user, by id (see `GET /api/tenants/{tenant_id}/members` or `GET /api/me`).
        user_id: Path<Uuid>,
    ) -> Result<RemovedResponse, Errors<{ can::RESOURCE | can::CONFLICT | can::SERVER }>> {
        let tenant = TenantId(tenant_id.0);
        let user = UserId(user_id.0);
        state
            .authz
            .require(
                &caller,
                tenant,
                Action::RemoveMember,
                Resource::Member(user),
            )
            .await?;
        let authz = &state.authz;
        let result = store::members::remove(&state.db, tenant, user, |roles| {
            authz.keeps_manager(tenant, roles)
        })
        .await;
        state
            .after_change(Key::Role(user, tenant), result)
            .await
            .map_err(change_error)?;
        Ok(RemovedResponse::Removed)
    }
}
