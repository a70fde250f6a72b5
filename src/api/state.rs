//! What every request handler can reach: the database, authentication, authorization, the
//! caches' invalidation, the settings and the metrics. `startup` builds it; only the HTTP layer
//! uses it whole (the layers below each take the part they serve).

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::Authn;
use crate::authz::Authz;
use crate::config::Settings;
use crate::invalidation;
use crate::metrics::Metrics;
use crate::store;

/// Everything a request handler can reach.
pub struct AppState {
    pub db: DatabaseConnection,
    /// For reads outside a write's transaction (see [`store::reads`]).
    pub reads: store::reads::Reads,
    pub authn: Arc<Authn>,
    pub authz: Arc<Authz>,
    pub settings: Settings,
    /// This server's metrics (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// Changes that make cached roles and user statuses stale: forgotten here, signalled to the
    /// other instances.
    pub caches: Arc<invalidation::Caches>,
    /// The cross-instance invalidation listener (PostgreSQL); stops when the state is dropped.
    pub _listener: Option<invalidation::Stop>,
}
