//! `GET /api/invitations`, `POST /api/invitations/{tenant_id}/accept`,
//! `POST /api/invitations/{tenant_id}/decline`: the invitee's side of an invitation.
//!
//! Accepting or declining is the invitee's own act on their account, not an act inside the
//! tenant (they are not a member of it yet), so no tenant policy decides it: the invitation
//! addressed to the caller is the permission.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::models::{Membership, sample};
use super::page::{self, Page};
use super::state::AppState;
use super::tags::ApiTags;
use crate::auth::Caller;
use crate::authz::AccountAction;
use crate::error::{ApiError, Errors, can};
use crate::invalidation::Key;
use crate::store::{self, TenantId};

/// An invitation addressed to the caller: a role in a tenant, theirs once they accept.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Invitation {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    /// The role they will have once they accept.
    pub role: String,
    /// The Admin who invited them; null when that user no longer exists.
    #[oai(nullable)]
    pub invited_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<store::invitations::Invitation> for Invitation {
    fn from(i: store::invitations::Invitation) -> Self {
        Invitation {
            tenant_id: i.tenant_id.0,
            tenant_name: i.tenant_name,
            role: i.role,
            invited_by: i.invited_by.map(|u| u.0),
            created_at: i.created_at,
        }
    }
}

impl Example for Invitation {
    fn example() -> Self {
        Invitation {
            tenant_id: sample::TENANT,
            tenant_name: "Acme".into(),
            role: "Editor".into(),
            invited_by: Some(sample::USER),
            created_at: sample::time(),
        }
    }
}

#[derive(ApiResponse)]
pub enum DeclinedResponse {
    /// Declined: the invitation is gone.
    #[oai(status = 204)]
    Declined,
}

pub struct InvitationApi;

/// Invitations made before this instant have expired (`--invitation-seconds`).
fn issued_after(state: &AppState) -> DateTime<Utc> {
    store::invitations::issued_after(Utc::now(), state.settings.invitation_lifetime)
}

#[OpenApi(tag = "ApiTags::Invitations")]
impl InvitationApi {
    /// List your invitations
    ///
    /// The invitations addressed to the caller, oldest first, a page at a time. An invitation
    /// grants nothing until it is accepted: the tenant shows neither in `GET /api/tenants` nor in
    /// `GET /api/me` before then. Expired invitations (older than the server's invitation
    /// lifetime, 7 days by default) are not listed.
    #[oai(
        path = "/api/invitations",
        method = "get",
        operation_id = "listInvitations"
    )]
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
        Json<Page<Invitation>>,
        Errors<{ can::BAD_REQUEST | can::UNAUTHORIZED | can::SERVER }>,
    > {
        let page = page::keyset(limit.0, cursor.0.as_deref())?;
        let rows = store::invitations::list_for_user(
            &state.db,
            caller.user_id,
            issued_after(&state),
            page,
        )
        .await?;
        Ok(Json(Page::of(rows, Invitation::from)))
    }

    /// Accept an invitation
    ///
    /// The caller becomes a member of the tenant with the invited role, and the invitation is
    /// gone; answers the membership. A session then selects the tenant with
    /// `POST /session/{tenant_id}`. 404 when no invitation to that tenant is addressed to the
    /// caller; 403 for a read-only token. Accepting decides again: an invitation that expired,
    /// whose inviter left the tenant or is disabled, or whose inviter the policies no longer let
    /// give that role, is deleted and answered the same 404.
    #[oai(
        path = "/api/invitations/:tenant_id/accept",
        method = "post",
        operation_id = "acceptInvitation"
    )]
    async fn accept(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The inviting tenant, by id (see `GET /api/invitations`).
        tenant_id: Path<Uuid>,
    ) -> Result<Json<Membership>, Errors<{ can::RESOURCE | can::SERVER }>> {
        // The policies decide (`AnswerInvitation`): a read-only token never changes memberships.
        state
            .authz
            .require_account(&caller, AccountAction::AnswerInvitation)?;
        let tenant = TenantId(tenant_id.0);
        let invitee = caller.user_id;
        let authz = &state.authz;
        let result = store::invitations::accept(
            &state.db,
            tenant,
            invitee,
            issued_after(&state),
            &caller.actor(),
            |inviter, inviter_role, invited_role| {
                authz.may_invite(tenant, inviter, inviter_role, invitee, invited_role)
            },
        )
        .await;
        let (found, role) = state
            .caches
            .after_change(Key::Role(caller.user_id, tenant), result)
            .await?
            .ok_or(ApiError::NotFound("invitation"))?;
        Ok(Json(Membership {
            tenant_id: found.id,
            tenant_name: found.name,
            role,
        }))
    }

    /// Decline an invitation
    ///
    /// The invitation is gone; the caller never became a member. 404 when no invitation to that
    /// tenant is addressed to the caller (or only an expired one); 403 for a read-only token.
    #[oai(
        path = "/api/invitations/:tenant_id/decline",
        method = "post",
        operation_id = "declineInvitation"
    )]
    async fn decline(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The inviting tenant, by id (see `GET /api/invitations`).
        tenant_id: Path<Uuid>,
    ) -> Result<DeclinedResponse, Errors<{ can::RESOURCE | can::SERVER }>> {
        // The policies decide (`AnswerInvitation`): a read-only token never changes memberships.
        state
            .authz
            .require_account(&caller, AccountAction::AnswerInvitation)?;
        let tenant = TenantId(tenant_id.0);
        if store::invitations::decline(
            &state.db,
            tenant,
            caller.user_id,
            issued_after(&state),
            &caller.actor(),
        )
        .await?
        {
            Ok(DeclinedResponse::Declined)
        } else {
            Err(ApiError::NotFound("invitation").into())
        }
    }
}
