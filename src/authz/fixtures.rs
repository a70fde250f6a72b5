//! Decision fixtures: the policy folder's own tests (`policies/tests/*.json`).
//!
//! A fixture file is `{"about": "...", "cases": [...]}`; each case may describe the caller
//! (`who`), and names the caller's role in the
//! request's tenant (`null` for a non-member), an action, a resource type (`Tenant`, `Flow`,
//! `Member`), whether the resource lives in the request's tenant (`"own"`) or another one
//! (`"other"`), and the expected decision (`"Allow"` or `"Deny"`). A case may say how the caller
//! authenticated (`"auth": {"method": "token", "read_only": true}`; a session when omitted).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use uuid::Uuid;

use super::{Action, AuthContext, AuthMethod, PolicyBundle, Query, Resource};
use crate::store::{TenantId, UserId};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureFile {
    #[serde(default)]
    pub about: String,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    Own,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Expect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Session,
    Token,
}

/// `context.auth` of a case.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseAuth {
    pub method: Method,
    #[serde(default)]
    pub read_only: bool,
}

impl CaseAuth {
    fn context(self) -> AuthContext {
        AuthContext {
            method: match self.method {
                Method::Session => AuthMethod::Session,
                Method::Token => AuthMethod::Token,
            },
            read_only: self.read_only,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// A description of the caller, for the reader of the table.
    #[serde(default)]
    pub who: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub resource: String,
    #[serde(rename = "in")]
    pub place: Place,
    /// How the caller authenticated; a session when omitted.
    #[serde(default)]
    pub auth: Option<CaseAuth>,
    pub expect: Expect,
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub file: PathBuf,
    pub case: Case,
    pub actual: Option<Expect>,
    pub reasons: Vec<String>,
    pub errors: Vec<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.actual == Some(self.case.expect)
    }
}

/// Runs every fixture file under `dir` against the bundle.
pub fn run(bundle: &PolicyBundle, dir: &Path) -> Result<Vec<Outcome>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let own = TenantId(Uuid::from_u128(1));
    let other = TenantId(Uuid::from_u128(2));
    let mut outcomes = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let fixture: FixtureFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        for case in fixture.cases {
            let resource = match case.resource.as_str() {
                "Tenant" => Some(Resource::Tenant),
                "Flow" => Some(Resource::Flow(Uuid::from_u128(10))),
                "Member" => Some(Resource::Member(UserId(Uuid::from_u128(20)))),
                _ => None,
            };
            let (Some(action), Some(resource)) = (Action::parse(&case.action), resource) else {
                outcomes.push(Outcome {
                    file: file.clone(),
                    actual: None,
                    reasons: vec![],
                    errors: vec![format!(
                        "unknown action `{}` or resource `{}`",
                        case.action, case.resource
                    )],
                    case,
                });
                continue;
            };
            let decision = bundle.decide(&Query {
                user: UserId(Uuid::from_u128(30)),
                role: case.role.as_deref(),
                action,
                tenant: own,
                resource,
                resource_tenant: if case.place == Place::Own { own } else { other },
                auth: case.auth.map_or(AuthContext::SESSION, CaseAuth::context),
            });
            outcomes.push(Outcome {
                file: file.clone(),
                actual: Some(if decision.allowed {
                    Expect::Allow
                } else {
                    Expect::Deny
                }),
                reasons: decision.reasons,
                errors: decision.errors,
                case,
            });
        }
    }
    Ok(outcomes)
}
