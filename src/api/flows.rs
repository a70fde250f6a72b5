//! Flows: `GET/POST …/flows`, `GET/PUT/PATCH/DELETE …/flows/{flow_id}`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::body::Body;
use super::json_object::JsonObject;
use super::models::{Flow, clean_name, sample};
use super::page::{self, Page};
use super::serialized::Serialized;
use super::state::AppState;
use super::tags::ApiTags;
use crate::auth::Caller;
use crate::authz::{self, Action, Resource};
use crate::error::{ApiError, ApiResult, Errors, can};
use crate::store::flows::FlowChanges;
use crate::store::flows::{Access, ByteBudget, Definition};
use crate::store::{self, TenantId, UserId};

/// A new flow, or a full replacement. Fields such as `id`, `tenant_id` or `owner` are ignored: the
/// owner is whoever created the flow.
#[derive(Debug, Object)]
#[oai(example)]
pub struct FlowInput {
    /// 1 to 200 characters, not blank, no control characters; surrounding spaces are trimmed.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
    ))]
    pub name: String,
    /// Any JSON object; `{}` when omitted. At most 64 KiB of compact JSON by default (the
    /// server's `--max-definition-bytes`); a larger one is a 413 naming `definition`.
    pub definition: Option<JsonObject>,
    /// Up to 16 labels as sent, each 1 to 64 characters of `a-z`, `0-9` and `-`, not starting
    /// with `-` (`confidential`, `team-7`); duplicates are dropped. Policies may decide on them.
    #[oai(validator(max_items = 16, pattern = r"^[a-z0-9][a-z0-9-]{0,63}$"))]
    pub labels: Option<Vec<String>>,
}

/// A partial update: only the fields present change.
#[derive(Debug, Object)]
#[oai(example)]
pub struct FlowPatch {
    /// As in `FlowInput`.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
    ))]
    pub name: Option<String>,
    /// Replaces the whole definition when present (at most as large as in `FlowInput`).
    pub definition: Option<JsonObject>,
    /// Replaces every label when present (as in `FlowInput`).
    #[oai(validator(max_items = 16, pattern = r"^[a-z0-9][a-z0-9-]{0,63}$"))]
    pub labels: Option<Vec<String>>,
}

impl Example for FlowInput {
    fn example() -> Self {
        FlowInput {
            name: "Invoice approval".into(),
            definition: Some(sample::definition()),
            labels: Some(vec!["finance".into()]),
        }
    }
}

impl Example for FlowPatch {
    fn example() -> Self {
        FlowPatch {
            name: Some("Invoice approval (v2)".into()),
            definition: None,
            labels: None,
        }
    }
}

/// What a share grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum ShareAccess {
    /// Read the flow (also when it is confidential).
    Read,
    /// Read and change it (Editors may delete it too).
    Edit,
}

impl From<ShareAccess> for Access {
    fn from(access: ShareAccess) -> Access {
        match access {
            ShareAccess::Read => Access::Read,
            ShareAccess::Edit => Access::Edit,
        }
    }
}

/// The access to give.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ShareInput {
    pub access: ShareAccess,
}

impl Example for ShareInput {
    fn example() -> Self {
        ShareInput {
            access: ShareAccess::Edit,
        }
    }
}

/// One member's access to one flow.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Share {
    pub flow_id: Uuid,
    pub user_id: Uuid,
    pub access: ShareAccess,
}

impl Example for Share {
    fn example() -> Self {
        Share {
            flow_id: sample::FLOW,
            user_id: sample::OTHER_USER,
            access: ShareAccess::Edit,
        }
    }
}

#[derive(ApiResponse)]
pub enum Unshared {
    /// The user has no share of the flow any more (also when it had none).
    #[oai(status = 204)]
    Removed,
}

#[derive(ApiResponse)]
pub enum CreatedFlow {
    /// Created.
    #[oai(status = 201)]
    Created(Serialized<Flow>),
}

#[derive(ApiResponse)]
pub enum DeletedFlow {
    /// Deleted.
    #[oai(status = 204)]
    Deleted,
}

const FLOW: &str = "flow";

/// Whether a string or key anywhere in the value holds U+0000.
fn has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(has_nul),
        serde_json::Value::Object(fields) => fields
            .iter()
            .any(|(key, field)| key.contains('\0') || has_nul(field)),
        _ => false,
    }
}

/// A definition as it is stored: its compact JSON, written once, no larger than the server's
/// limit (413 naming `definition` otherwise, before anything is written). On PostgreSQL a
/// definition holding U+0000 is refused by name as well, as it always has been there.
fn storable(state: &AppState, definition: JsonObject) -> ApiResult<Definition> {
    if state.db.get_database_backend() == sea_orm::DbBackend::Postgres
        && definition
            .0
            .iter()
            .any(|(key, field)| key.contains('\0') || has_nul(field))
    {
        return Err(ApiError::BadRequest(
            "definition: must not contain NUL characters (\\u0000) on this database".into(),
        ));
    }
    let definition = Definition::of(&definition)
        .map_err(|err| ApiError::Internal(format!("cannot write a definition: {err}")))?;
    let max = state.settings.max_definition_bytes;
    if definition.len() > max {
        return Err(ApiError::DefinitionTooLarge {
            size: definition.len(),
            max,
        });
    }
    Ok(definition)
}

/// The caller's role in the tenant, once the caller has passed [`authz::flow_gate`]: a
/// non-member's request on a flow is the 404 of a missing flow before any policy is evaluated
/// and before the flow is read (so it also takes the time of a missing flow's).
async fn flow_member(
    state: &AppState,
    caller: &Caller,
    tenant: TenantId,
) -> ApiResult<Option<Arc<str>>> {
    let role = state.authz.role_of(caller.user_id, tenant).await?;
    authz::flow_gate(role.as_deref(), !caller.may_address(tenant))?;
    Ok(role)
}

/// Reads the flow for a member and decides `action` on it (see [`authz::judge_flows`]): a
/// missing flow and one the caller may not read are the same 404.
///
/// The decision is made on the flow's attributes alone, and the rest of the row (its name and
/// its definition, up to the definition limit) is read only once it is allowed (see
/// `store::reads::Reads::flow_if`): a hidden flow costs what a missing one does, whatever its
/// size, so the time of a 404 does not tell them apart.
async fn authorized_flow(
    state: &AppState,
    caller: &Caller,
    tenant: TenantId,
    action: Action,
    flow: Uuid,
) -> ApiResult<store::flows::Flow> {
    let role = flow_member(state, caller, tenant).await?;
    let read = state
        .reads
        .flow_if(tenant, flow, |attrs| {
            state
                .authz
                .require_flow(caller, tenant, role.as_deref(), action, flow, attrs)
        })
        .await?;
    read?.ok_or(ApiError::NotFound(FLOW))
}

/// Replace and update alike: in one transaction, read the flow, authorize on it, then validate
/// the input, then write (see `store::flows::update_decided`).
async fn change(
    state: &AppState,
    caller: &Caller,
    tenant: TenantId,
    flow: Uuid,
    changes: impl FnOnce() -> ApiResult<FlowChanges>,
) -> ApiResult<Serialized<Flow>> {
    let role = flow_member(state, caller, tenant).await?;
    store::flows::update_decided(&state.db, tenant, flow, &caller.actor(), |existing| {
        state.authz.require_flow(
            caller,
            tenant,
            role.as_deref(),
            Action::UpdateFlow,
            flow,
            existing,
        )?;
        changes()
    })
    .await?
    .map(|f| Serialized(f.into()))
    .ok_or(ApiError::NotFound(FLOW))
}

/// Shares and unshares alike (`access`: none to unshare): in one transaction, read the flow,
/// authorize `ShareFlow` on it, then check the user (see `store::flows::set_share_decided`). A
/// flow is never shared with the caller or its owner: their rights come from their role and
/// ownership, never from a share.
async fn set_share(
    state: &AppState,
    caller: &Caller,
    tenant: TenantId,
    flow: Uuid,
    user: UserId,
    access: Option<Access>,
) -> ApiResult<()> {
    let role = flow_member(state, caller, tenant).await?;
    let found = store::flows::set_share_decided(
        &state.db,
        tenant,
        flow,
        user,
        access,
        &caller.actor(),
        |existing, member| {
            state.authz.require_flow(
                caller,
                tenant,
                role.as_deref(),
                Action::ShareFlow,
                flow,
                existing,
            )?;
            if access.is_none() {
                return Ok(());
            }
            if user == caller.user_id {
                return Err(ApiError::BadRequest(
                    "user_id: you cannot share a flow with yourself".into(),
                ));
            }
            if existing.and_then(|f| f.owner) == Some(user) {
                return Err(ApiError::BadRequest(
                    "user_id: is the flow's owner, who is never given a share".into(),
                ));
            }
            if !member {
                return Err(ApiError::BadRequest(
                    "user_id: must be a member of this tenant".into(),
                ));
            }
            Ok::<_, ApiError>(())
        },
    )
    .await?;
    if found {
        Ok(())
    } else {
        Err(ApiError::NotFound(FLOW))
    }
}

pub struct FlowApi;

#[OpenApi(tag = "ApiTags::Flows")]
impl FlowApi {
    /// List flows
    ///
    /// The tenant's flows that you may read, oldest first, a page at a time: exactly those whose
    /// `GET …/flows/{flow_id}` would answer 200 (the same policies decide). Any member
    /// (`Viewer` and up) may list.
    ///
    /// A page holds at most `limit` flows and at most 4 MiB of definitions by default (the
    /// server's `--max-page-bytes`): it ends before the flow that would pass that budget, so it
    /// may hold fewer than `limit` flows while `next_cursor` is set. It always holds at least one
    /// flow. Follow `next_cursor` until it is null to read every flow exactly once.
    #[oai(
        path = "/api/tenants/:tenant_id/flows",
        method = "get",
        operation_id = "listFlows"
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
    ) -> Result<Serialized<Page<Flow>>, Errors<{ can::TENANT | can::SERVER }>> {
        let tenant = TenantId(tenant_id.0);
        let page = page::keyset(limit.0, cursor.0.as_deref())?;
        state
            .authz
            .require(&caller, tenant, Action::ListFlows, Resource::Tenant)
            .await?;
        let flows = state
            .authz
            .flows(
                &caller,
                tenant,
                Action::ReadFlow,
                page,
                ByteBudget(state.settings.max_page_bytes),
            )
            .await?;
        Ok(Serialized(Page::of(flows, Flow::from)))
    }

    /// Create a flow
    ///
    /// `Editor` and `Admin`. You become the flow's `owner`.
    #[oai(
        path = "/api/tenants/:tenant_id/flows",
        method = "post",
        operation_id = "createFlow"
    )]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
        body: Body<FlowInput>,
    ) -> Result<CreatedFlow, Errors<{ can::TENANT | can::BODY | can::SERVER }>> {
        let tenant = TenantId(tenant_id.0);
        state
            .authz
            .require(&caller, tenant, Action::CreateFlow, Resource::Tenant)
            .await?;
        let name = clean_name("name", &body.name)?;
        let definition = storable(&state, body.0.definition.unwrap_or_default())?;
        let labels = body.0.labels.unwrap_or_default();
        let flow = store::flows::create(
            &state.db,
            tenant,
            caller.user_id,
            &name,
            definition,
            &labels,
            &caller.actor(),
        )
        .await?;
        Ok(CreatedFlow::Created(Serialized(flow.into())))
    }

    /// Get a flow
    ///
    /// Any member. A flow that does not exist, lives in another tenant, or is in a tenant you are
    /// not a member of is the same 404.
    #[oai(
        path = "/api/tenants/:tenant_id/flows/:flow_id",
        method = "get",
        operation_id = "getFlow"
    )]
    async fn get(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
        /// The flow, by id.
        flow_id: Path<Uuid>,
    ) -> Result<Serialized<Flow>, Errors<{ can::RESOURCE | can::SERVER }>> {
        let tenant = TenantId(tenant_id.0);
        let flow = authorized_flow(&state, &caller, tenant, Action::ReadFlow, flow_id.0).await?;
        Ok(Serialized(flow.into()))
    }

    /// Replace a flow
    ///
    /// Sets the name, the definition (`{}` when omitted) and the labels (none when omitted).
    /// Admins, and Editors on flows they own or that are shared with them for editing; members
    /// given `edit` may change it too.
    #[oai(
        path = "/api/tenants/:tenant_id/flows/:flow_id",
        method = "put",
        operation_id = "replaceFlow"
    )]
    async fn replace(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
        /// The flow, by id.
        flow_id: Path<Uuid>,
        body: Body<FlowInput>,
    ) -> Result<Serialized<Flow>, Errors<{ can::RESOURCE | can::BODY | can::SERVER }>> {
        Ok(change(
            &state,
            &caller,
            TenantId(tenant_id.0),
            flow_id.0,
            move || {
                Ok(FlowChanges {
                    name: Some(clean_name("name", &body.name)?),
                    definition: Some(storable(&state, body.0.definition.unwrap_or_default())?),
                    labels: Some(body.0.labels.unwrap_or_default()),
                })
            },
        )
        .await?)
    }

    /// Update a flow
    ///
    /// Changes only the fields sent. Who may: as for *Replace a flow*.
    #[oai(
        path = "/api/tenants/:tenant_id/flows/:flow_id",
        method = "patch",
        operation_id = "updateFlow"
    )]
    async fn update(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
        /// The flow, by id.
        flow_id: Path<Uuid>,
        body: Body<FlowPatch>,
    ) -> Result<Serialized<Flow>, Errors<{ can::RESOURCE | can::BODY | can::SERVER }>> {
        Ok(change(
            &state,
            &caller,
            TenantId(tenant_id.0),
            flow_id.0,
            move || {
                Ok(FlowChanges {
                    name: body
                        .name
                        .as_deref()
                        .map(|n| clean_name("name", n))
                        .transpose()?,
                    definition: body.0.definition.map(|d| storable(&state, d)).transpose()?,
                    labels: body.0.labels,
                })
            },
        )
        .await?)
    }

    /// Delete a flow
    ///
    /// Admins, and Editors on flows they own or that are shared with them for editing.
    #[oai(
        path = "/api/tenants/:tenant_id/flows/:flow_id",
        method = "delete",
        operation_id = "deleteFlow"
    )]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
        /// The flow, by id.
        flow_id: Path<Uuid>,
    ) -> Result<DeletedFlow, Errors<{ can::RESOURCE | can::SERVER }>> {
        let tenant = TenantId(tenant_id.0);
        let role = flow_member(&state, &caller, tenant).await?;
        let actor = caller.actor();
        let deleted =
            store::flows::delete_decided(&state.db, tenant, flow_id.0, &actor, |existing| {
                state.authz.require_flow(
                    &caller,
                    tenant,
                    role.as_deref(),
                    Action::DeleteFlow,
                    flow_id.0,
                    existing,
                )
            })
            .await?;
        if deleted {
            Ok(DeletedFlow::Deleted)
        } else {
            Err(ApiError::NotFound(FLOW).into())
        }
    }

    /// Share a flow
    ///
    /// Gives a member of the tenant read or edit access to the flow, replacing the access it had.
    /// The flow's owner (while an Editor or Admin) and Admins may share (the `ShareFlow` action).
    /// A user who is not a member of this tenant, yourself and the flow's owner are a 400 naming
    /// `user_id`. A member's shares end when it leaves the tenant.
    #[oai(
        path = "/api/tenants/:tenant_id/flows/:flow_id/shares/:user_id",
        method = "put",
        operation_id = "shareFlow"
    )]
    async fn share(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
        /// The flow, by id.
        flow_id: Path<Uuid>,
        /// The member to share with, by user id.
        user_id: Path<Uuid>,
        body: Body<ShareInput>,
    ) -> Result<Json<Share>, Errors<{ can::RESOURCE | can::BODY | can::SERVER }>> {
        let tenant = TenantId(tenant_id.0);
        let user = UserId(user_id.0);
        set_share(
            &state,
            &caller,
            tenant,
            flow_id.0,
            user,
            Some(body.access.into()),
        )
        .await?;
        Ok(Json(Share {
            flow_id: flow_id.0,
            user_id: user.0,
            access: body.access,
        }))
    }

    /// Stop sharing a flow
    ///
    /// Takes a user's share of the flow away (nothing happens when it had none). Who may: as for
    /// *Share a flow*.
    #[oai(
        path = "/api/tenants/:tenant_id/flows/:flow_id/shares/:user_id",
        method = "delete",
        operation_id = "unshareFlow"
    )]
    async fn unshare(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
        /// The flow, by id.
        flow_id: Path<Uuid>,
        /// The user whose share ends, by id.
        user_id: Path<Uuid>,
    ) -> Result<Unshared, Errors<{ can::RESOURCE | can::SERVER }>> {
        let tenant = TenantId(tenant_id.0);
        set_share(&state, &caller, tenant, flow_id.0, UserId(user_id.0), None).await?;
        Ok(Unshared::Removed)
    }
}
