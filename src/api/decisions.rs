//! `POST /api/tenants/{tenant_id}/authorize`: the decision API, for other services and for UIs.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use super::body::Body;
use super::state::AppState;
use super::tags::ApiTags;
use crate::auth::Caller;
use crate::authz::{Action, AuthContext, Question, Resource};
use crate::error::{ApiError, ApiResult, Errors, can};
use crate::store::{TenantId, UserId};

/// Most questions one request may ask.
pub const MAX_ITEMS: usize = 100;

/// Kinds of resource a question can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ResourceType {
    /// The tenant itself or one of its collections (id: the tenant's id).
    Tenant,
    /// A flow (id: the flow's id).
    Flow,
    /// A membership (id: the member's user id).
    Member,
}

/// What a question is about.
#[derive(Debug, Clone, Object)]
pub struct ResourceRef {
    #[oai(rename = "type")]
    pub kind: ResourceType,
    /// A UUID (the document says `format: uuid`; anything else is a 422 naming the field).
    #[oai(validator(max_length = 36))]
    pub id: String,
}

/// One question: may the principal do `action` to `resource`?
#[derive(Debug, Clone, Object)]
pub struct DecisionItem {
    /// An action of the policy schema, for example `ReadFlow`, `UpdateFlow`, `SetMemberRole`.
    #[oai(validator(pattern = r"^[A-Za-z]{1,64}$"))]
    pub action: String,
    pub resource: ResourceRef,
}

/// A batch of questions, for the caller or (Admins) on behalf of another member.
#[derive(Debug, Object)]
#[oai(example)]
pub struct DecisionRequest {
    /// Whose rights to evaluate; the caller when omitted. Asking for someone else needs the
    /// `AuthorizeOnBehalf` permission (Admins by default).
    pub principal: Option<Uuid>,
    /// 1 to 100 questions.
    #[oai(validator(min_items = 1, max_items = 100))]
    pub items: Vec<DecisionItem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum Verdict {
    Allow,
    Deny,
}

/// The answer to one question.
#[derive(Debug, Object)]
pub struct DecisionResult {
    pub action: String,
    pub resource: ResourceRef,
    pub decision: Verdict,
    /// Ids of the determining policies (the permits that allowed, or the forbids that denied).
    pub reasons: Vec<String>,
    /// Evaluation errors; any error makes the decision a Deny.
    pub errors: Vec<String>,
}

/// The answers, in the order asked.
#[derive(Debug, Object)]
#[oai(example)]
pub struct DecisionResponse {
    pub principal: Uuid,
    /// The principal's role in the tenant; null for a non-member.
    #[oai(nullable)]
    pub role: Option<String>,
    /// The policy version the answers come from (the content hash of the set).
    pub policy_version: String,
    /// The number of the published version the answers come from, when the server takes its
    /// policies from the database; null for a policy folder.
    #[oai(nullable)]
    pub policy_release: Option<i64>,
    pub results: Vec<DecisionResult>,
}

fn example_question() -> DecisionItem {
    DecisionItem {
        action: Action::UpdateFlow.name().into(),
        resource: ResourceRef {
            kind: ResourceType::Flow,
            id: super::models::sample::FLOW.to_string(),
        },
    }
}

impl Example for DecisionRequest {
    fn example() -> Self {
        DecisionRequest {
            principal: None,
            items: vec![example_question()],
        }
    }
}

impl Example for DecisionResponse {
    fn example() -> Self {
        let question = example_question();
        DecisionResponse {
            principal: super::models::sample::USER,
            role: Some("Editor".into()),
            policy_version: "3f2a9c41d7e0b865".into(),
            policy_release: Some(12),
            results: vec![DecisionResult {
                action: question.action,
                resource: question.resource,
                decision: Verdict::Allow,
                reasons: vec!["editors-write-flows".into()],
                errors: vec![],
            }],
        }
    }
}

fn invalid(index: usize, field: &str, message: String) -> ApiError {
    ApiError::Validation {
        field: format!("items[{index}].{field}").into(),
        message,
    }
}

fn question(index: usize, item: &DecisionItem, tenant: TenantId) -> ApiResult<Question<'static>> {
    let action = Action::parse(&item.action).ok_or_else(|| {
        invalid(
            index,
            "action",
            format!("`{}` is not an action of the policy schema", item.action),
        )
    })?;
    let id = Uuid::parse_str(&item.resource.id)
        .map_err(|_| invalid(index, "resource.id", "must be a UUID".into()))?;
    let (resource, resource_tenant) = match item.resource.kind {
        // A tenant other than the URL's is outside the boundary, and the policies say so.
        ResourceType::Tenant => (Resource::Tenant, TenantId(id)),
        // Flows and members are taken to be in the URL's tenant, exactly as operations see them
        // (a flow's attributes are looked up there, see `authorize`).
        ResourceType::Flow => (Resource::Flow(id), tenant),
        ResourceType::Member => (Resource::Member(UserId(id)), tenant),
    };
    Ok(Question {
        action,
        resource,
        resource_tenant,
        flow: None,
    })
}

pub struct DecisionApi;

#[OpenApi(tag = "ApiTags::Decisions")]
impl DecisionApi {
    /// Ask what is allowed
    ///
    /// Evaluates up to 100 questions `{action, resource: {type, id}}` against the policies in
    /// force, for the caller or, with `principal`, on behalf of another member (Admins). Each
    /// answer carries the decision, the determining policy ids and any evaluation errors. The
    /// batch shares one role lookup and one entity build. Flows and members are taken to be in
    /// this tenant: a flow of this tenant is decided on its owner, labels and shares. A flow you
    /// may not read yourself, and any id that is not a flow of this tenant, is a `Deny` without
    /// reasons or errors (also when asking on behalf of a member). Non-members get 403.
    #[oai(
        path = "/api/tenants/:tenant_id/authorize",
        method = "post",
        operation_id = "authorize"
    )]
    async fn authorize(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// The tenant, by id (see `GET /api/tenants`).
        tenant_id: Path<Uuid>,
        body: Body<DecisionRequest>,
    ) -> Result<
        Json<DecisionResponse>,
        Errors<{ can::RESOURCE | can::BODY | can::UNPROCESSABLE | can::SERVER }>,
    > {
        let tenant = TenantId(tenant_id.0);
        let principal = body.principal.map_or(caller.user_id, UserId);
        // Questions about yourself are answered as you are calling now (a read-only token is
        // told it may not write); questions on behalf of a member as that member signed in.
        let auth = if principal == caller.user_id {
            caller.auth()
        } else {
            AuthContext::SESSION
        };
        if principal == caller.user_id {
            state
                .authz
                .require(&caller, tenant, Action::Authorize, Resource::Tenant)
                .await?;
        } else {
            state
                .authz
                .require(
                    &caller,
                    tenant,
                    Action::AuthorizeOnBehalf,
                    Resource::Member(principal),
                )
                .await?;
        }
        let questions = body
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| question(index, item, tenant))
            .collect::<ApiResult<Vec<_>>>()?;
        // A flow of this tenant is decided on its owner, labels and shares; a flow that is not
        // here, or that the caller may not read, is a Deny without reasons (see
        // `authz::judge_flows`), so the answer says nothing about flows the caller cannot see.
        let mut flows = std::collections::HashMap::new();
        for question in &questions {
            if let Resource::Flow(id) = question.resource
                && !flows.contains_key(&id)
                && let Some(attrs) = state.reads.flow_attributes(tenant, id).await?
            {
                flows.insert(id, attrs);
            }
        }
        let questions: Vec<Question> = questions
            .into_iter()
            .map(|question| Question {
                flow: match question.resource {
                    Resource::Flow(id) => flows.get(&id),
                    _ => None,
                },
                ..question
            })
            .collect();
        let (role, provenance, decisions) = state
            .authz
            .answer_asked_by(
                (caller.user_id, caller.auth()),
                principal,
                tenant,
                auth,
                &questions,
            )
            .await?;
        let results = body
            .0
            .items
            .into_iter()
            .zip(decisions)
            .map(|(item, decision)| DecisionResult {
                action: item.action,
                resource: item.resource,
                decision: if decision.allowed {
                    Verdict::Allow
                } else {
                    Verdict::Deny
                },
                reasons: decision.reasons,
                errors: decision.errors,
            })
            .collect();
        Ok(Json(DecisionResponse {
            principal: principal.0,
            role: role.map(|r| r.to_string()),
            policy_version: provenance.version,
            policy_release: provenance.release,
            results,
        }))
    }
}
