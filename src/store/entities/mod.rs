//! sea-orm entities, one module per table (see `migrations/` for the schema and its reasons).

pub mod audit_event;
pub mod flow;
pub mod flow_label;
pub mod flow_share;
pub mod invitation;
pub mod issued_token;
pub mod login_failure;
pub mod membership;
pub mod policy_activation;
pub mod policy_version;
pub mod revoked_family;
pub mod session;
pub mod tenant;
pub mod user;
