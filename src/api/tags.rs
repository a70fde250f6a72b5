//! The tags that group the operations in the OpenAPI document and Swagger UI.

use poem_openapi::Tags;

#[derive(Tags)]
pub enum ApiTags {
    /// Logging in and out with a browser session, and who you are.
    Auth,
    /// Minting API tokens.
    Tokens,
    /// Tenants and the session's current tenant.
    Tenants,
    /// Who belongs to a tenant, with which role.
    Members,
    /// Invitations to join a tenant, as their invitee sees them.
    Invitations,
    /// Flows: tenant-owned JSON documents.
    Flows,
    /// The audit trail: who changed what, when, with which credential.
    Audit,
    /// The decision API: ask the policies what a member may do.
    Decisions,
    /// Service health.
    Health,
}
