//! `GET /healthz`: can the service serve (database reachable, policies loaded)?

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use crate::error::{ApiError, Errors, can};
use crate::startup::AppState;

/// The service's health.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Health {
    /// `ok` when the service can serve.
    pub status: String,
    /// Content hash of the loaded policy set.
    pub policy_version: String,
    /// Number of loaded policies.
    pub policies: usize,
}

impl poem_openapi::types::Example for Health {
    fn example() -> Self {
        Health {
            status: "ok".into(),
            policy_version: "3f2a9c41d7e0b865".into(),
            policies: 6,
        }
    }
}

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check
    ///
    /// 200 when the database answers and the policies are loaded; 503 otherwise. No credentials.
    #[oai(path = "/healthz", method = "get", operation_id = "health")]
    async fn health(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<Json<Health>, Errors<{ can::SERVER }>> {
        state
            .db
            .ping()
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let bundle = state.authz.bundle();
        Ok(Json(Health {
            status: "ok".into(),
            policy_version: bundle.version().to_owned(),
            policies: bundle.policy_ids().len(),
        }))
    }
}
