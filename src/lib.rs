//! Zygo: a multi-tenant HTTP API whose every request is authenticated (browser session or API token)
//! and then authorized by Cedar policies.
//!
//! The modules stand on floors, and each imports only from its own floor or below (checked by
//! `scripts/check-layers`): `main → cli → startup → api → (invalidation, demo) → auth → authz →
//! error → (store, metrics) → (config, cache, net)`.

/// HTTP only: the application state, the `Caller` extractor and security schemes, operations,
/// bodies, the OpenAPI document and Swagger UI.
pub mod api;
/// Who is calling: sessions, API tokens, passwords, login throttling, the `Caller`.
pub mod auth;
/// What they may do: the Cedar policy set, its types (`authz::types`), the role cache, `require`;
/// takes a `Principal` of its own, never the HTTP caller.
pub mod authz;
/// A moka cache that never serves a value this process invalidated.
pub mod cache;
/// The command line: `serve`, `user`, `tenant`, `member`, `policy`, `audit`, `openapi` (one file each).
pub mod cli;
/// One typed `Settings`, with where decisions and metrics go.
pub mod config;
/// A small demo world for `serve --demo`.
pub mod demo;
/// The one error enum and its status table.
pub mod error;
/// Changes that make cached roles and user statuses stale: forgotten here, signalled to the other
/// instances (PostgreSQL NOTIFY/LISTEN); works on a handle of the caches, not on the state.
pub mod invalidation;
/// Prometheus metrics: one registry per server; told the action names when built.
pub mod metrics;
/// Connection-level limits: the request deadline that cuts off slow-trickle clients.
pub mod net;
/// Building and running the application: the state, the listeners, the background tasks.
pub mod startup;
/// The database: migrations, entities and queries.
pub mod store;
