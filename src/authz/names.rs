//! The entity types and actions a Cedar request is made of, parsed once per policy snapshot.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use uuid::Uuid;

use super::types::{Action, Question, Resource};
use crate::store::flows::Attributes;
use crate::store::{TenantId, UserId};

/// The entity types and actions a request is made of, parsed once per snapshot.
pub struct Names {
    pub user: EntityTypeName,
    tenant: EntityTypeName,
    flow: EntityTypeName,
    member: EntityTypeName,
    /// `Zygo::Action::"…"` of each [`Action`], by [`Action::index`].
    actions: Vec<EntityUid>,
}

impl Names {
    pub fn new() -> Result<Names, String> {
        let parse = |name: &str| EntityTypeName::from_str(name).map_err(|e| e.to_string());
        let action = parse("Zygo::Action")?;
        Ok(Names {
            user: parse("Zygo::User")?,
            tenant: parse("Zygo::Tenant")?,
            flow: parse("Zygo::Flow")?,
            member: parse("Zygo::Member")?,
            actions: Action::ALL
                .iter()
                .map(|a| EntityUid::from_type_name_and_id(action.clone(), EntityId::new(a.name())))
                .collect(),
        })
    }

    pub fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
    }

    pub fn user(&self, user: UserId) -> EntityUid {
        Self::uid(&self.user, &user.to_string())
    }

    pub fn flow_type(&self) -> &EntityTypeName {
        &self.flow
    }

    /// A `Zygo::Flow` with its attributes, a child of its tenant. A flow without an owner is
    /// given the nil user, whom no caller is.
    pub fn flow_entity(
        &self,
        uid: EntityUid,
        tenant: EntityUid,
        attrs: &Attributes,
    ) -> Result<Entity, String> {
        let user = |id: UserId| RestrictedExpression::new_entity_uid(self.user(id));
        Entity::new(
            uid,
            HashMap::from([
                (
                    "owner".to_owned(),
                    user(attrs.owner.unwrap_or(UserId(Uuid::nil()))),
                ),
                (
                    "labels".to_owned(),
                    RestrictedExpression::new_set(
                        attrs
                            .labels
                            .iter()
                            .map(|l| RestrictedExpression::new_string(l.clone())),
                    ),
                ),
                (
                    "editors".to_owned(),
                    RestrictedExpression::new_set(attrs.editors.iter().copied().map(user)),
                ),
                (
                    "readers".to_owned(),
                    RestrictedExpression::new_set(attrs.readers.iter().copied().map(user)),
                ),
            ]),
            HashSet::from([tenant]),
        )
        .map_err(|e| e.to_string())
    }

    pub fn tenant(&self, tenant: TenantId) -> EntityUid {
        Self::uid(&self.tenant, &tenant.to_string())
    }

    pub fn action(&self, action: Action) -> &EntityUid {
        &self.actions[action.index()]
    }

    /// The entity a question is about.
    pub fn resource(&self, question: &Question) -> EntityUid {
        match question.resource {
            Resource::Tenant => self.tenant(question.resource_tenant),
            Resource::Flow(id) => Self::uid(&self.flow, &id.to_string()),
            // A membership is (tenant, user): the id names both so members of two tenants differ.
            Resource::Member(user) => Self::uid(
                &self.member,
                &format!("{}/{}", question.resource_tenant, user),
            ),
        }
    }
}
