//! `GET /healthz`: can the service serve (database reachable, policies loaded)?

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use crate::error::{ApiError, Errors, can};
use crate::startup::AppState;

/// The loaded policy set.
#[derive(Debug, Object)]
pub struct PolicyHealth {
    /// Content hash of the policy folder as loaded.
    pub version: String,
    /// When this set was loaded.
    pub loaded_at: DateTime<Utc>,
    /// Number of loaded policies.
    pub policies: usize,
    /// The located errors of the last edit that was rejected since this set loaded, if any.
    #[oai(nullable)]
    pub last_reload_error: Option<String>,
    /// When that edit was rejected.
    #[oai(nullable)]
    pub last_reload_error_at: Option<DateTime<Utc>>,
}

/// The service's health.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Health {
    /// `ok` when the service can serve.
    pub status: String,
    pub policy: PolicyHealth,
}

impl poem_openapi::types::Example for Health {
    fn example() -> Self {
        Health {
            status: "ok".into(),
            policy: PolicyHealth {
                version: "3f2a9c41d7e0b865".into(),
                loaded_at: super::models::sample::time(),
                policies: 7,
                last_reload_error: None,
                last_reload_error_at: None,
            },
        }
    }
}

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check
    ///
    /// 200 when the database answers and a policy set is loaded; 503 (problem+json, code
    /// `unavailable`, "the database is unreachable") when the database does not answer within the
    /// configured timeout. Shows which policy version is in force and the last rejected reload, if
    /// any. No credentials.
    #[oai(path = "/healthz", method = "get", operation_id = "health")]
    async fn health(
        &self,
        state: Data<&Arc<AppState>>,
    ) -> Result<Json<Health>, Errors<{ can::SERVER }>> {
        let timeout = state.settings.database.timeout;
        match tokio::time::timeout(timeout, state.db.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(ApiError::Unavailable(err.to_string()).into()),
            Err(_) => {
                return Err(ApiError::Unavailable(format!(
                    "no answer to a ping within {timeout:?}"
                ))
                .into());
            }
        }
        let status = state.authz.policy_status();
        Ok(Json(Health {
            status: "ok".into(),
            policy: PolicyHealth {
                version: status.version,
                loaded_at: status.loaded_at,
                policies: status.policies,
                last_reload_error: status.last_error,
                last_reload_error_at: status.last_error_at,
            },
        }))
    }
}
