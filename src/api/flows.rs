//! Flows: `GET/POST …/flows`, `GET/PUT/PATCH/DELETE …/flows/{flow_id}`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::body::Body;
use super::json_object::JsonObject;
use super::models::{Flow, clean_name, sample};
use super::page::{self, Page};
use crate::auth::Caller;
use crate::authz::{Action, Resource};
use crate::error::{ApiError, ApiResult, Errors, can};
use crate::startup::AppState;
use crate::store::flows::FlowChanges;
use crate::store::{self, TenantId};

/// A new flow, or a full replacement. Fields such as `id` or `tenant_id` are ignored.
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
    /// Any JSON object; `{}` when omitted.
    pub definition: Option<JsonObject>,
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
    /// Replaces the whole definition when present.
    pub definition: Option<JsonObject>,
}

impl Example for FlowInput {
    fn example() -> Self {
        FlowInput {
            name: "Invoice approval".into(),
            definition: Some(sample::definition()),
        }
    }
}

impl Example for FlowPatch {
    fn example() -> Self {
        FlowPatch {
            name: Some("Invoice approval (v2)".into()),
            definition: None,
        }
    }
}

#[derive(ApiResponse)]
pub enum CreatedFlow {
    /// Created.
    #[oai(status = 201)]
    Created(Json<Flow>),
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

/// PostgreSQL's `jsonb` cannot hold U+0000: refuse such a definition by name there, instead of
/// failing the write. (SQLite stores it as sent.)
fn storable(state: &AppState, definition: &serde_json::Value) -> ApiResult<()> {
    if state.db.get_database_backend() == sea_orm::DbBackend::Postgres && has_nul(definition) {
        return Err(ApiError::BadRequest(
            "definition: must not contain NUL characters (\\u0000) on this database".into(),
        ));
    }
    Ok(())
}

/// Replace and update alike: authorize first, then validate the input, then write.
async fn change(
    state: &AppState,
    caller: &Caller,
    tenant: TenantId,
    flow: Uuid,
    changes: impl FnOnce() -> ApiResult<FlowChanges>,
) -> ApiResult<Json<Flow>> {
    state
        .authz
        .require(caller, tenant, Action::UpdateFlow, Resource::Flow(flow))
        .await?;
    let changes = changes()?;
    if let Some(definition) = &changes.definition {
        storable(state, definition)?;
    }
    store::flows::update(&state.db, tenant, flow, changes)
        .await?
        .map(|f| Json(f.into()))
        .ok_or(ApiError::NotFound(FLOW))
}

pub struct FlowApi;

#[OpenApi(tag = "ApiTags::Flows")]
impl FlowApi {
    /// List flows
    ///
    /// The tenant's flows, oldest first, a page at a time. Any member (`Viewer` and up).
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
    ) -> Result<Json<Page<Flow>>, Errors<{ can::TENANT | can::SERVER }>> {
        let tenant = TenantId(tenant_id.0);
        let page = page::keyset(limit.0, cursor.0.as_deref())?;
        state
            .authz
            .require(&caller, tenant, Action::ListFlows, Resource::Tenant)
            .await?;
        let flows = store::flows::list(&state.db, tenant, page).await?;
        Ok(Json(Page::of(flows, Flow::from)))
    }

    /// Create a flow
    ///
    /// `Editor` and `Admin`.
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
        let definition = serde_json::Value::Object(body.0.definition.unwrap_or_default().0);
        storable(&state, &definition)?;
        let flow = store::flows::create(&state.db, tenant, &name, definition).await?;
        Ok(CreatedFlow::Created(Json(flow.into())))
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
    ) -> Result<Json<Flow>, Errors<{ can::RESOURCE | can::SERVER }>> {
        let tenant = TenantId(tenant_id.0);
        state
            .authz
            .require(&caller, tenant, Action::ReadFlow, Resource::Flow(flow_id.0))
            .await?;
        state
            .reads
            .flow(tenant, flow_id.0)
            .await?
            .map(|f| Json(f.into()))
            .ok_or(ApiError::NotFound(FLOW).into())
    }

    /// Replace a flow
    ///
    /// Sets the name and the definition (`{}` when omitted). `Editor` and `Admin`.
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
    ) -> Result<Json<Flow>, Errors<{ can::RESOURCE | can::BODY | can::SERVER }>> {
        Ok(change(
            &state,
            &caller,
            TenantId(tenant_id.0),
            flow_id.0,
            move || {
                Ok(FlowChanges {
                    name: Some(clean_name("name", &body.name)?),
                    definition: Some(serde_json::Value::Object(
                        body.0.definition.unwrap_or_default().0,
                    )),
                })
            },
        )
        .await?)
    }

    /// Update a flow
    ///
    /// Changes only the fields sent. `Editor` and `Admin`.
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
    ) -> Result<Json<Flow>, Errors<{ can::RESOURCE | can::BODY | can::SERVER }>> {
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
                    definition: body.0.definition.map(|d| serde_json::Value::Object(d.0)),
                })
            },
        )
        .await?)
    }

    /// Delete a flow
    ///
    /// `Editor` and `Admin`.
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
        state
            .authz
            .require(
                &caller,
                tenant,
                Action::DeleteFlow,
                Resource::Flow(flow_id.0),
            )
            .await?;
        if store::flows::delete(&state.db, tenant, flow_id.0).await? {
            Ok(DeletedFlow::Deleted)
        } else {
            Err(ApiError::NotFound(FLOW).into())
        }
    }
}
