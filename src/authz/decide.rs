//! One Cedar decision: typed entities built in code (no JSON on the request path), request and
//! context validated against the schema, and any evaluation error counted as a Deny.

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

/// Who asks to do what to which resource, in which tenant.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub user: UserId,
    /// The user's role in `tenant`; `None` for a non-member.
    pub role: Option<&'a str>,
    pub action: Action,
    /// The tenant named by the request (its URL).
    pub tenant: TenantId,
    pub resource: Resource,
    /// The tenant the resource lives in (the URL tenant for the service; fixtures vary it).
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

impl PolicyBundle {
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

    /// Evaluates the query against this policy set.
    pub fn decide(&self, query: &Query<'_>) -> Decision {
        match self.try_decide(query) {
            Ok(decision) => decision,
            Err(error) => Decision::deny(error),
        }
    }

    fn try_decide(&self, query: &Query<'_>) -> Result<Decision, String> {
        let tenant = uid("Zygo::Tenant", &query.tenant.to_string())?;
        let resource_tenant = uid("Zygo::Tenant", &query.resource_tenant.to_string())?;
        let principal = uid("Zygo::User", &query.user.to_string())?;
        let action = uid("Zygo::Action", query.action.name())?;

        let parents: HashSet<EntityUid> = match query.role {
            Some(role) => HashSet::from([uid(ROLE_TYPE, role)?]),
            None => HashSet::new(),
        };
        let mut entities: Vec<Entity> = self.role_entities.clone();
        entities.push(Entity::new_no_attrs(principal.clone(), parents));
        entities.push(Entity::new_no_attrs(tenant.clone(), HashSet::new()));
        if resource_tenant != tenant {
            entities.push(Entity::new_no_attrs(
                resource_tenant.clone(),
                HashSet::new(),
            ));
        }
        let resource = match query.resource {
            Resource::Tenant => resource_tenant,
            Resource::Flow(id) => {
                let flow = uid("Zygo::Flow", &id.to_string())?;
                entities.push(Entity::new_no_attrs(
                    flow.clone(),
                    HashSet::from([resource_tenant]),
                ));
                flow
            }
            Resource::Member(user) => {
                // A membership is (tenant, user): the id names both so members of two tenants differ.
                let member = uid(
                    "Zygo::Member",
                    &format!("{}/{}", query.resource_tenant, user),
                )?;
                entities.push(Entity::new_no_attrs(
                    member.clone(),
                    HashSet::from([resource_tenant]),
                ));
                member
            }
        };

        let entities =
            Entities::from_entities(entities, Some(&self.schema)).map_err(|e| e.to_string())?;
        let context = Context::from_pairs([(
            "tenant".to_owned(),
            RestrictedExpression::new_entity_uid(tenant),
        )])
        .map_err(|e| e.to_string())?;
        let request = Request::new(principal, action, resource, context, Some(&self.schema))
            .map_err(|e| e.to_string())?;
        let response = Authorizer::new().is_authorized(&request, &self.policies, &entities);
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
}
