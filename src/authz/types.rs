//! The authorization layer's own vocabulary, shared by every file of `authz/`: the actions of
//! the schema, how a caller authenticated, what an action is applied to, who asks, and what is
//! decided. It imports nothing of the folder.

use uuid::Uuid;

use crate::store::flows::Attributes;
use crate::store::{TenantId, UserId};

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
    ShareFlow,
    Authorize,
    AuthorizeOnBehalf,
    ReadAudit,
}

impl Action {
    pub const ALL: [Action; 15] = [
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
        Action::ShareFlow,
        Action::Authorize,
        Action::AuthorizeOnBehalf,
        Action::ReadAudit,
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
            Action::ShareFlow => "ShareFlow",
            Action::Authorize => "Authorize",
            Action::AuthorizeOnBehalf => "AuthorizeOnBehalf",
            Action::ReadAudit => "ReadAudit",
        }
    }

    /// Whether a session must have selected the request's tenant first. Creating a tenant and
    /// selecting one are how a session gets there.
    pub fn needs_selected_tenant(self) -> bool {
        !matches!(self, Action::CreateTenant | Action::SelectTenant)
    }

    /// The position in [`Action::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// How the caller authenticated, as the policies see it in `context.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthContext {
    pub method: AuthMethod,
    /// A read-only token (the `ro` claim); sessions are never read-only.
    pub read_only: bool,
}

/// `context.auth.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    Session,
    Token,
}

impl AuthMethod {
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Session => "session",
            AuthMethod::Token => "token",
        }
    }
}

impl AuthContext {
    /// A browser session (also what the decision API assumes when asking on behalf of a member).
    pub const SESSION: AuthContext = AuthContext {
        method: AuthMethod::Session,
        read_only: false,
    };
}

/// Who asks, as authorization needs to know them: the user, how they authenticated, and which
/// tenants they may address (a browser session is confined to its current tenant). The HTTP
/// layer's authenticated caller is one (`auth::Caller`).
pub trait Principal {
    fn user(&self) -> UserId;
    /// `context.auth` for the policies.
    fn auth(&self) -> AuthContext;
    /// Whether a request may name `tenant` (a session only its current tenant).
    fn may_address(&self, tenant: TenantId) -> bool;
}

/// What an action is applied to, inside the tenant of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    pub fn hidden_as(self) -> Option<&'static str> {
        match self {
            Resource::Tenant => None,
            Resource::Flow(_) => Some("flow"),
            Resource::Member(_) => Some("member"),
        }
    }
}

/// The kind of a [`Resource`], which with the action fixes a request's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Tenant,
    Flow,
    Member,
}

impl Resource {
    pub fn kind(self) -> ResourceKind {
        match self {
            Resource::Tenant => ResourceKind::Tenant,
            Resource::Flow(_) => ResourceKind::Flow,
            Resource::Member(_) => ResourceKind::Member,
        }
    }

    /// `Type:id` as logged and as the decision API names it.
    pub fn describe(self, tenant: TenantId) -> String {
        match self {
            Resource::Tenant => format!("Tenant:{tenant}"),
            Resource::Flow(id) => format!("Flow:{id}"),
            Resource::Member(user) => format!("Member:{user}"),
        }
    }
}

/// Who asks, with which role, in which tenant (the one named by the request's URL).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub user: UserId,
    /// The user's role in `tenant`; `None` for a non-member.
    pub role: Option<&'a str>,
    pub tenant: TenantId,
    /// How the caller authenticated (`context.auth`).
    pub auth: AuthContext,
}

/// One question: may the subject do `action` to `resource`, which lives in `resource_tenant`?
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    pub action: Action,
    pub resource: Resource,
    /// The service always models resources in the URL's tenant (the store then filters by it);
    /// fixtures vary this to prove the tenant boundary.
    pub resource_tenant: TenantId,
    /// A flow's owner, labels and shares; `None` for a flow that is not looked up (the decision
    /// API asking about a flow that does not exist), which has no owner, labels or shares.
    pub flow: Option<&'a Attributes>,
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
    pub auth: AuthContext,
    /// The flow's attributes (see [`Question::flow`]).
    pub flow: Option<&'a Attributes>,
}

/// The outcome and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Ids of the determining policies, sorted.
    pub reasons: Vec<String>,
    /// Evaluation or request-building errors; any of them makes the decision a Deny.
    pub errors: Vec<String>,
}

impl Decision {
    pub fn deny(error: String) -> Decision {
        Decision {
            allowed: false,
            reasons: vec![],
            errors: vec![error],
        }
    }
}
