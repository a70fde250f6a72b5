//! `GET /healthz`: can the service serve (database reachable, policies loaded)?

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;

/// The service's health.
#[derive(Debug, Object)]
pub struct Health {
    /// `ok` when the service can serve.
    pub status: String,
    /// Content hash of the loaded policy set.
    pub policy_version: String,
    /// Number of loaded policies.
    pub policies: usize,
}

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check
    ///
    /// 200 when the database answers and the policies are loaded; 503 (problem+json, code
    /// `unavailable`, "the database is unreachable") when the database does not answer within the
    /// configured timeout. No credentials.
    #[oai(path = "/healthz", method = "get", operation_id = "health")]
    async fn health(&self, state: Data<&Arc<AppState>>) -> ApiResult<Json<Health>> {
        let timeout = state.settings.database.timeout;
        match tokio::time::timeout(timeout, state.db.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(ApiError::Unavailable(err.to_string())),
            Err(_) => {
                return Err(ApiError::Unavailable(format!(
                    "no answer to a ping within {timeout:?}"
                )));
            }
        }
        let bundle = state.authz.bundle();
        Ok(Json(Health {
            status: "ok".into(),
            policy_version: bundle.version().to_owned(),
            policies: bundle.policy_ids().len(),
        }))
    }
}
