//! `GET /healthz`: can the service serve (database reachable, policies loaded)?
//!
//! Anyone may ask; every caller learns the status, the policy version and whether the last edit
//! of the policy folder was rejected. The details of the set in force and of a rejected edit
//! (file paths, policy text) are shown only where an operator turned them on
//! (`--health-details`): a member of some tenant is not an operator.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Object, OpenApi};

use super::state::AppState;
use super::tags::ApiTags;
use crate::error::{ApiError, Errors, can};

/// The loaded policy set. Only `version` and `last_reload_rejected` are shown unless the server
/// runs with `--health-details`.
#[derive(Debug, Object)]
pub struct PolicyHealth {
    /// Content hash of the policy folder as loaded.
    pub version: String,
    /// Whether the last edit of the policy folder, or the last version published in the
    /// database, was rejected (an older set is in force).
    pub last_reload_rejected: bool,
    /// Where the set comes from: `folder` or `database` (`--policy-source`; with
    /// `--health-details`).
    #[oai(skip_serializing_if_is_none)]
    pub source: Option<String>,
    /// The number of the published version in force (database source, with
    /// `--health-details`).
    #[oai(skip_serializing_if_is_none)]
    pub release: Option<i64>,
    /// The version the database names active but this binary refused because it does not
    /// validate here; the version in `release` stays in force (database source, with
    /// `--health-details`).
    #[oai(skip_serializing_if_is_none)]
    pub refused_release: Option<i64>,
    /// When this set was loaded (with `--health-details`).
    #[oai(skip_serializing_if_is_none)]
    pub loaded_at: Option<DateTime<Utc>>,
    /// Number of loaded policies (with `--health-details`).
    #[oai(skip_serializing_if_is_none)]
    pub policies: Option<usize>,
    /// The located errors of the last edit that was rejected since this set loaded, or null
    /// (with `--health-details`).
    #[oai(nullable)]
    pub last_reload_error: MaybeUndefined<String>,
    /// When that edit was rejected, or null (with `--health-details`).
    #[oai(nullable)]
    pub last_reload_error_at: MaybeUndefined<DateTime<Utc>>,
}

/// The service's health.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Health {
    /// `ok` when the service can serve with the policies as edited or published; `degraded`
    /// when it serves, but the last edit of the policy folder (or the active published version)
    /// was rejected and an older set is in force.
    pub status: String,
    pub policy: PolicyHealth,
}

impl poem_openapi::types::Example for Health {
    fn example() -> Self {
        Health {
            status: "ok".into(),
            policy: PolicyHealth {
                version: "3f2a9c41d7e0b865".into(),
                last_reload_rejected: false,
                source: Some("database".into()),
                release: Some(12),
                refused_release: None,
                loaded_at: Some(super::models::sample::time()),
                policies: Some(7),
                last_reload_error: MaybeUndefined::Null,
                last_reload_error_at: MaybeUndefined::Null,
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
    /// configured timeout. Shows which policy version is in force, and `degraded` when the last
    /// edit of the policies was rejected. No credentials needed, and credentials change nothing.
    /// Only when the server runs with `--health-details` does it also show when the set loaded,
    /// how many policies it holds and the rejected edit's located errors (file paths, policy
    /// text).
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
        let health = if status.last_error.is_some() {
            "degraded"
        } else {
            "ok"
        };
        let rejected = status.last_error.is_some();
        // Diagnostics only where the operator chose to show them, whoever asks.
        let policy = if state.settings.health_details {
            PolicyHealth {
                version: status.version,
                last_reload_rejected: rejected,
                source: Some(status.source.into()),
                release: status.release,
                refused_release: status.refused_release,
                loaded_at: Some(status.loaded_at),
                policies: Some(status.policies),
                last_reload_error: MaybeUndefined::from_opt_null(status.last_error),
                last_reload_error_at: MaybeUndefined::from_opt_null(status.last_error_at),
            }
        } else {
            PolicyHealth {
                version: status.version,
                last_reload_rejected: rejected,
                source: None,
                release: None,
                refused_release: None,
                loaded_at: None,
                policies: None,
                last_reload_error: MaybeUndefined::Undefined,
                last_reload_error_at: MaybeUndefined::Undefined,
            }
        };
        Ok(Json(Health {
            status: health.into(),
            policy,
        }))
    }
}
