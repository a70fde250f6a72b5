//! Cedar decisions: typed entities built in code (no JSON on the request path), request and
//! context validated against the schema, and any evaluation error counted as a Deny. A batch of
//! questions about one principal in one tenant shares a single entity build.

use std::collections::HashSet;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, Request, RestrictedExpression,
};
use uuid::Uuid;

use super::policies::{PolicyBundle, ROLE_TYPE};
use super::{Action, Resource};
use crate::store::{TenantId, UserId};

/// Who asks, with which role, in which tenant (the one named by the request's URL).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub user: UserId,
    /// The user's role in `tenant`; `None` for a non-member.
    pub role: Option<&'a str>,
    pub tenant: TenantId,
}

/// One question: may the subject do `action` to `resource`, which lives in `resource_tenant`?
#[derive(Debug, Clone, Copy)]
pub struct Question {
    pub action: Action,
    pub resource: Resource,
    /// The service always models resources in the URL's tenant (the store then filters by it);
    /// fixtures vary this to prove the tenant boundary.
    pub resource_tenant: TenantId,
}

/// Who asks to do what to which resource, in which tenant: one subject, one question.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub user: UserId,
    pub role: Option<&'a str>,
    pub action: Action,
    pub tenant: TenantId,
    pub resource: Resource,
    pub resource_tenant: TenantId,
}

/// The outcome and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Ids of the determining policies.
    pub reasons: Vec<String>,
    /// Evaluation or request-building errors; any of them makes the decision a Deny.
    pub errors: Vec<String>,
}

impl Decision {
    fn deny(error: String) -> Decision {
        Decision {
            allowed: false,
            reasons: vec![],
            errors: vec![error],
        }
    }
}

fn uid(type_name: &str, id: &str) -> Result<EntityUid, String> {
    let type_name = EntityTypeName::from_str(type_name).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(
        type_name,
        EntityId::new(id),
    ))
}

fn tenant_uid(tenant: TenantId) -> Result<EntityUid, String> {
    uid("Zygo::Tenant", &tenant.to_string())
}

/// The entity a question is about, and its parent tenant.
fn resource_uid(question: &Question) -> Result<EntityUid, String> {
    match question.resource {
        Resource::Tenant => tenant_uid(question.resource_tenant),
        Resource::Flow(id) => uid("Zygo::Flow", &id.to_string()),
        // A membership is (tenant, user): the id names both so members of two tenants differ.
        Resource::Member(user) => uid(
            "Zygo::Member",
            &format!("{}/{}", question.resource_tenant, user),
        ),
    }
}

impl PolicyBundle {
    /// Evaluates one query.
    pub fn decide(&self, query: &Query<'_>) -> Decision {
        let subject = Subject {
            user: query.user,
            role: query.role,
            tenant: query.tenant,
        };
        let question = Question {
            action: query.action,
            resource: query.resource,
            resource_tenant: query.resource_tenant,
        };
        self.decide_many(&subject, &[question])
            .pop()
            .unwrap_or_else(|| Decision::deny("no decision".into()))
    }

    /// Evaluates several questions for one subject against one entity set.
    pub fn decide_many(&self, subject: &Subject<'_>, questions: &[Question]) -> Vec<Decision> {
        let built = self.build(subject, questions);
        questions
            .iter()
            .map(|question| match &built {
                Ok((principal, context, entities)) => self
                    .evaluate(principal, context, entities, question)
                    .unwrap_or_else(Decision::deny),
                Err(error) => Decision::deny(error.clone()),
            })
            .collect()
    }

    fn build(
        &self,
        subject: &Subject<'_>,
        questions: &[Question],
    ) -> Result<(EntityUid, Context, Entities), String> {
        let tenant = tenant_uid(subject.tenant)?;
        let principal = uid("Zygo::User", &subject.user.to_string())?;
        let parents: HashSet<EntityUid> = match subject.role {
            Some(role) => match self.role_closure.get(role) {
                Some(closure) => closure.clone(),
                None => HashSet::from([uid(ROLE_TYPE, role)?]),
            },
            None => HashSet::new(),
        };
        let mut entities: Vec<Entity> = self.role_entities.clone();
        entities.extend(self.action_entities.iter().cloned());
        entities.push(Entity::new_no_attrs(principal.clone(), parents));
        let mut seen: HashSet<EntityUid> = HashSet::from([principal.clone()]);
        let mut add = |entity: Entity, entities: &mut Vec<Entity>| {
            if seen.insert(entity.uid()) {
                entities.push(entity);
            }
        };
        add(
            Entity::new_no_attrs(tenant.clone(), HashSet::new()),
            &mut entities,
        );
        for question in questions {
            let owner = tenant_uid(question.resource_tenant)?;
            add(
                Entity::new_no_attrs(owner.clone(), HashSet::new()),
                &mut entities,
            );
            if !matches!(question.resource, Resource::Tenant) {
                add(
                    Entity::new_no_attrs(resource_uid(question)?, HashSet::from([owner])),
                    &mut entities,
                );
            }
        }
        // The entities are built here from typed values, so they are not validated against the
        // schema again (that costs more than the decision); the request itself is validated.
        let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
        let context = Context::from_pairs([(
            "tenant".to_owned(),
            RestrictedExpression::new_entity_uid(tenant),
        )])
        .map_err(|e| e.to_string())?;
        Ok((principal, context, entities))
    }

    fn evaluate(
        &self,
        principal: &EntityUid,
        context: &Context,
        entities: &Entities,
        question: &Question,
    ) -> Result<Decision, String> {
        let action = uid("Zygo::Action", question.action.name())?;
        let request = Request::new(
            principal.clone(),
            action,
            resource_uid(question)?,
            context.clone(),
            Some(&self.schema),
        )
        .map_err(|e| e.to_string())?;
        let response = Authorizer::new().is_authorized(&request, &self.policies, entities);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        Ok(Decision {
            allowed: response.decision() == CedarDecision::Allow && errors.is_empty(),
            reasons: response
                .diagnostics()
                .reason()
                .map(|id| id.to_string())
                .collect(),
            errors,
        })
    }

    /// Whether a member with `role` may select `tenant` as a session's current tenant.
    pub fn may_select(&self, user: UserId, tenant: TenantId, role: &str) -> bool {
        self.decide(&Query {
            user,
            role: Some(role),
            action: Action::SelectTenant,
            tenant,
            resource: Resource::Tenant,
            resource_tenant: tenant,
        })
        .allowed
    }

    /// Whether a tenant whose members hold `roles` still has someone allowed to manage members.
    /// The rule asks the policies, so it holds for any role a security team defines.
    pub fn keeps_manager(&self, tenant: TenantId, roles: &[&str]) -> bool {
        roles.iter().any(|role| {
            self.decide(&Query {
                user: UserId(Uuid::nil()),
                role: Some(role),
                action: Action::SetMemberRole,
                tenant,
                resource: Resource::Member(UserId(Uuid::nil())),
                resource_tenant: tenant,
            })
            .allowed
        })
    }
}
