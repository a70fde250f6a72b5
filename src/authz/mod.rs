//! What a caller may do: the Cedar policy set, typed actions and resources, the role cache, and the
//! one `require` call every guarded operation makes before any side effect.

mod decide;
pub mod fixtures;
pub mod policies;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::auth::Caller;
use crate::cache::ConsistentCache;
use crate::error::{ApiError, ApiResult};
use crate::store::{self, TenantId, UserId};

pub use decide::{Decision, Query};
pub use policies::{Diagnostic, LoadError, PolicyBundle};

/// The actions of the schema (`Zygo::Action::"…"`), named as there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    CreateTenant,
    SelectTenant,
    ReadTenant,
    ListMembers,
    SetMemberRole,
    RemoveMember,
    ListFlows,
    CreateFlow,
    ReadFlow,
    UpdateFlow,
    DeleteFlow,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::CreateTenant,
        Action::SelectTenant,
        Action::ReadTenant,
        Action::ListMembers,
        Action::SetMemberRole,
        Action::RemoveMember,
        Action::ListFlows,
        Action::CreateFlow,
        Action::ReadFlow,
        Action::UpdateFlow,
        Action::DeleteFlow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::CreateTenant => "CreateTenant",
            Action::SelectTenant => "SelectTenant",
            Action::ReadTenant => "ReadTenant",
            Action::ListMembers => "ListMembers",
            Action::SetMemberRole => "SetMemberRole",
            Action::RemoveMember => "RemoveMember",
            Action::ListFlows => "ListFlows",
            Action::CreateFlow => "CreateFlow",
            Action::ReadFlow => "ReadFlow",
            Action::UpdateFlow => "UpdateFlow",
            Action::DeleteFlow => "DeleteFlow",
        }
    }

    /// Whether a session must have selected the request's tenant first. Creating a tenant and
    /// selecting one are how a session gets there.
    fn needs_selected_tenant(self) -> bool {
        !matches!(self, Action::CreateTenant | Action::SelectTenant)
    }

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// What an action is applied to, inside the tenant of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// The tenant itself or one of its collections.
    Tenant,
    /// One flow (`…/flows/{flow_id}`).
    Flow(Uuid),
    /// One membership (`…/members/{user_id}`).
    Member(UserId),
}

impl Resource {
    /// The 404 a non-member gets for a specific resource; `None` for tenant-level resources (403).
    fn hidden_as(self) -> Option<&'static str> {
        match self {
            Resource::Tenant => None,
            Resource::Flow(_) => Some("flow"),
            Resource::Member(_) => Some("member"),
        }
    }
}

/// The policy engine and the role lookups it needs.
pub struct Authz {
    bundle: RwLock<Arc<PolicyBundle>>,
    roles: ConsistentCache<(UserId, TenantId), Option<Arc<str>>>,
    db: DatabaseConnection,
}

impl Authz {
    pub fn new(bundle: PolicyBundle, db: DatabaseConnection, cache_ttl: Duration) -> Self {
        Authz {
            bundle: RwLock::new(Arc::new(bundle)),
            roles: ConsistentCache::new(100_000, cache_ttl),
            db,
        }
    }

    /// The policy set in force; a request uses one snapshot from start to end.
    pub fn bundle(&self) -> Arc<PolicyBundle> {
        match self.bundle.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The caller's role in the tenant (`None`: not a member), through the cache.
    pub async fn role_of(&self, user: UserId, tenant: TenantId) -> ApiResult<Option<Arc<str>>> {
        self.roles
            .get_or_load((user, tenant), async {
                store::members::role_of(&self.db, tenant, user)
                    .await
                    .map(|role| role.map(Arc::from))
            })
            .await
            .map_err(ApiError::from)
    }

    /// Forgets a cached role at once; call after every membership change this process makes.
    pub async fn forget_role(&self, user: UserId, tenant: TenantId) {
        self.roles.invalidate(&(user, tenant)).await;
    }

    /// Forgets every cached role (the invalidation listener lost signals while reconnecting).
    pub async fn forget_all_roles(&self) {
        self.roles.invalidate_all().await;
    }

    /// The one authorization call of a guarded operation. `Ok` means go ahead. A Deny is a 403, or a
    /// 404 when a non-member addresses a specific resource (so existence never leaks). A session
    /// that addresses a tenant other than its current one gets `tenant_not_selected`.
    pub async fn require(
        &self,
        caller: &Caller,
        tenant: TenantId,
        action: Action,
        resource: Resource,
    ) -> ApiResult<()> {
        let role = self.role_of(caller.user_id, tenant).await?;
        let decision = self.bundle().decide(&Query {
            user: caller.user_id,
            role: role.as_deref(),
            action,
            tenant,
            resource,
            resource_tenant: tenant,
        });
        if !decision.allowed && role.is_none() {
            return Err(match resource.hidden_as() {
                Some(kind) => ApiError::NotFound(kind),
                None => ApiError::Forbidden,
            });
        }
        if action.needs_selected_tenant() && !caller.may_address(tenant) {
            return Err(ApiError::TenantNotSelected);
        }
        if !decision.allowed {
            return Err(ApiError::Forbidden);
        }
        Ok(())
    }

    /// Whether a tenant whose members hold `roles` still has someone allowed to manage members.
    pub fn keeps_manager(&self, tenant: TenantId, roles: &[&str]) -> bool {
        self.bundle().keeps_manager(tenant, roles)
    }

    /// Whether the policy folder defines this role.
    pub fn is_role(&self, name: &str) -> bool {
        self.bundle().roles().contains(name)
    }
}
