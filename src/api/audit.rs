//! `GET /api/tenants/{tenant_id}/audit` (a tenant's audit trail, for its Admins) and
//! `GET /api/me/audit` (the caller's own security events).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::page::{self, Page};
use super::state::AppState;
use super::tags::ApiTags;
use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::error::{Errors, can};
use crate::store::audit::Trail;
use crate::store::{self, TenantId, UserId};

/// One audit event: who changed what, when, from where, with which credential.
#[derive(Debug, Clone, Object)]
pub struct AuditEvent {
    pub id: Uuid,
    /// The database's clock when the change committed.
    pub at: DateTime<Utc>,
    /// For example `member.role_changed`, `flow.shared`, `login.failed` (see `docs/audit.md`).
    pub action: String,
    /// The user who made the change; null for the operators' command line and refused logins.
    #[oai(nullable)]
    pub actor_id: Option<Uuid>,
    /// The credential used, without its secret: `token:<jti>`, `session:<hash prefix>`, `cli`.
    #[oai(nullable)]
    pub credential: Option<String>,
    #[oai(nullable)]
    pub tenant_id: Option<Uuid>,
    /// What was changed: `user:<id>`, `flow:<id>`, `token:<jti>`, `family:<id>`, `tenant:<id>`.
    #[oai(nullable)]
    pub target: Option<String>,
    /// What the changed fields were (never a secret, never a flow definition).
    #[oai(nullable)]
    pub before: Option<serde_json::Value>,
    /// What they became.
    #[oai(nullable)]
    pub after: Option<serde_json::Value>,
    #[oai(nullable)]
    pub request_id: Option<String>,
    /// The client's IP address.
    #[oai(nullable)]
    pub client: Option<String>,
    /// The policy version in force.
    #[oai(nullable)]
    pub policy_version: Option<String>,
    /// The event's place in its chain and its hash (see `zygo audit verify`).
    pub seq: i64,
    pub hash: String,
}

impl From<store::audit::AuditEvent> for AuditEvent {
    fn from(e: store::audit::AuditEvent) -> Self {
        let json = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
        AuditEvent {
            id: e.id,
            at: e.at,
            action: e.action,
            actor_id: e.actor_id,
            credential: e.credential,
            tenant_id: e.tenant_id,
            target: e.target,
            before: json(e.before),
            after: json(e.after),
            request_id: e.request_id,
            client: e.client,
            policy_version: e.policy_version,
            seq: e.seq,
            hash: e.hash,
        }
    }
}

pub struct AuditApi;

#[OpenApi(tag = "ApiTags::Audit")]
impl AuditApi {
    /// A tenant's audit trail
    ///
    /// Every administrative change in the tenant (members invited, added, changed, removed;
    /// flows created, changed, deleted, shared, unshared; the tenant's creation), newest first,
    /// a page at a time. Admins only (the policies' `ReadAudit`). A page reads at most 10,000
    /// events of the trail: with filters it may hold fewer than `limit` (even none) and still
    /// name a `next_cursor`; the trail is done when `next_cursor` is null.
    #[oai(
        path = "/api/tenants/:tenant_id/audit",
        method = "get",
        operation_id = "listTenantAudit"
    )]
    // One parameter per query parameter: how poem-openapi documents them.
    #[allow(clippy::too_many_arguments)]
    async fn tenant(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
        /// Only this action, for example `member.role_changed`.
        #[oai(validator(pattern = r"^[a-z_]{1,32}\.[a-z_]{1,31}$"))]
        action: Query<Option<String>>,
        /// Only changes made by this user.
        actor: Query<Option<Uuid>>,
        /// Only events at or after this instant (RFC 3339).
        since: Query<Option<DateTime<Utc>>>,
        /// Only events before this instant (RFC 3339); a window whose `until` is not after its
        /// `since` holds no event.
        until: Query<Option<DateTime<Utc>>>,
        /// Rows per page: 1 to 500 (100 when omitted).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page; the first page when omitted.
        #[oai(validator(pattern = r"^[0-9]{1,18}$"))]
        cursor: Query<Option<String>>,
    ) -> Result<Json<Page<AuditEvent>>, Errors<{ can::TENANT | can::UNPROCESSABLE | can::SERVER }>>
    {
        let tenant = TenantId(tenant_id.0);
        let page = page::chain_page(limit.0, cursor.0.as_deref())?;
        state
            .authz
            .require(&caller, tenant, Action::ReadAudit, Resource::Tenant)
            .await?;
        let filter = store::audit::Filter {
            action: action.0,
            actor: actor.0.map(UserId),
            since: since.0,
            until: until.0,
        };
        let rows = store::audit::list(&state.db, Trail::Tenant(tenant), &filter, page).await?;
        Ok(Json(Page::of(rows, AuditEvent::from)))
    }

    /// Your security events
    ///
    /// Your logins (and the refused attempts on your account), the tokens you minted and revoked,
    /// password changes, log-outs everywhere, and an operator disabling or enabling your
    /// account: newest first, a page at a time. A page reads at most 10,000 events of the
    /// account trail, so it may hold fewer than `limit` (even none) and still name a
    /// `next_cursor`; the list is done when `next_cursor` is null.
    #[oai(path = "/api/me/audit", method = "get", operation_id = "listMyAudit")]
    // One parameter per query parameter: how poem-openapi documents them.
    #[allow(clippy::too_many_arguments)]
    async fn me(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// Only this action, for example `login.failed`.
        #[oai(validator(pattern = r"^[a-z_]{1,32}\.[a-z_]{1,31}$"))]
        action: Query<Option<String>>,
        /// Only events at or after this instant (RFC 3339).
        since: Query<Option<DateTime<Utc>>>,
        /// Only events before this instant (RFC 3339); a window whose `until` is not after its
        /// `since` holds no event.
        until: Query<Option<DateTime<Utc>>>,
        /// Rows per page: 1 to 500 (100 when omitted).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u32>>,
        /// The `next_cursor` of the previous page; the first page when omitted.
        #[oai(validator(pattern = r"^[0-9]{1,18}$"))]
        cursor: Query<Option<String>>,
    ) -> Result<
        Json<Page<AuditEvent>>,
        Errors<{ can::UNAUTHORIZED | can::BAD_REQUEST | can::UNPROCESSABLE | can::SERVER }>,
    > {
        let page = page::chain_page(limit.0, cursor.0.as_deref())?;
        let filter = store::audit::Filter {
            action: action.0,
            since: since.0,
            until: until.0,
            ..Default::default()
        };
        let rows = store::audit::list(&state.db, Trail::Own(caller.user_id), &filter, page).await?;
        Ok(Json(Page::of(rows, AuditEvent::from)))
    }
}
