//! `GET …/members`, `PUT …/members/{user_id}`, `DELETE …/members/{user_id}`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::body::Body;
use super::models::{Member, sample};
use super::page::{self, Page};
use super::state::AppState;
use super::tags::ApiTags;
use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::error::{ApiError, Errors, can};
use crate::invalidation::Key;
use crate::store::invitations::Outcome;
use crate::store::members::ChangeError;
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
    /// The user is not a member: they are invited with the role, and become a member when they
    /// accept (`POST /api/invitations/{tenant_id}/accept`). The same answer whether or not the id
    /// names a user (an id that names no one is simply never invited).
    #[oai(status = 202)]
    Invited(Json<Invited>),
}

/// Whether a `PUT …/members/{user_id}` changed a role or left an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum InvitationStatus {
    /// Invited: not a member until they accept.
    Invited,
}

/// An invitation left for a user who is not a member. It says nothing the caller did not send:
/// no e-mail, and nothing that tells whether the id names a user.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Invited {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    /// The role they will have once they accept.
    pub role: String,
    pub status: InvitationStatus,
}

impl Example for Invited {
    fn example() -> Self {
        Invited {
            tenant_id: sample::TENANT,
            user_id: sample::OTHER_USER,
            role: "Editor".into(),
            status: InvitationStatus::Invited,
        }
    }
}

#[derive(ApiResponse)]
pub enum RemovedResponse {
    /// Removed from the tenant; for a user who is not a member, any pending invitation is
    /// withdrawn.
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
    /// Pending invitations are not listed: the list would tell an Admin which of the ids they
    /// invited name a user.
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

    /// Invite a user or change a role
    ///
    /// Changes the role of a member (200), or invites a user who is not a member (202): they
    /// become a member with the role only when they accept (`GET /api/invitations`), and until
    /// then nothing of the tenant shows to them. Inviting again replaces the pending role. The
    /// 202 is the same whether or not the id names a user, and carries no e-mail. Admins only.
    /// The tenant must keep at least one member who can manage members (409 otherwise).
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
        let result = store::invitations::set_role_or_invite(
            &state.db,
            tenant,
            user,
            &body.role,
            caller.user_id,
            &caller.actor(),
            |roles| authz.keeps_manager(tenant, roles),
        )
        .await;
        match result.map_err(change_error)? {
            Outcome::Updated => {
                state.caches.changed(Key::Role(user, tenant)).await;
                let member = store::members::find(&state.db, tenant, user)
                    .await?
                    .ok_or(ApiError::NotFound("member"))?;
                Ok(SetRoleResponse::Updated(Json(member.into())))
            }
            // An invitation grants nothing: no cached role to forget.
            Outcome::Invited => Ok(SetRoleResponse::Invited(Json(Invited {
                tenant_id: tenant.0,
                user_id: user.0,
                role: body.0.role,
                status: InvitationStatus::Invited,
            }))),
        }
    }

    /// Remove a member or withdraw an invitation
    ///
    /// Admins only. The last member who can manage members cannot be removed (409). For a user
    /// who is not a member, any pending invitation is withdrawn; the answer is the same 204
    /// whether there was one or not (and whether or not the id names a user).
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
        let actor = caller.actor();
        let result = store::members::remove(&state.db, tenant, user, &actor, |roles| {
            authz.keeps_manager(tenant, roles)
        })
        .await;
        match state
            .caches
            .after_change(Key::Role(user, tenant), result)
            .await
        {
            Ok(()) => {}
            Err(ChangeError::NotAMember) => {
                store::invitations::withdraw(&state.db, tenant, user, &actor).await?;
            }
            Err(err) => return Err(change_error(err).into()),
        }
        Ok(RemovedResponse::Removed)
    }
}
