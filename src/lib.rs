//! Zygo: a multi-tenant HTTP API whose every request is authenticated (browser session or API token)
//! and then authorized by Cedar policies.

/// HTTP only: operations, request and response bodies, the OpenAPI document and Swagger UI.
pub mod api;
/// Who is calling: sessions, API tokens, passwords, and the `Caller` extractor.
pub mod auth;
/// What they may do: the Cedar policy set, typed actions, the role cache, `require`.
pub mod authz;
/// A moka cache that never serves a value this process invalidated.
pub mod cache;
/// The command line: `serve`, `user`, `tenant`, `member`, `policy`, `openapi`.
pub mod cli;
/// One typed `Settings`.
pub mod config;
/// A small demo world for `serve --demo`.
pub mod demo;
/// The one error enum and its status table.
pub mod error;
/// Cross-instance cache invalidation: PostgreSQL NOTIFY after a change, LISTEN into the caches.
pub mod invalidation;
/// Prometheus metrics: one registry per server, rendered at `GET /metrics`.
pub mod metrics;
/// Connection-level limits: the request deadline that cuts off slow-trickle clients.
pub mod net;
/// Building and running the application.
pub mod startup;
/// The database: migrations, entities and queries.
pub mod store;
