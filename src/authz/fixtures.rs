//! Decision fixtures: the policy folder's own tests (`policies/tests/*.json`).
//!
//! A fixture file is `{"about": "...", "cases": [...]}`; each case may describe the caller
//! (`who`), and names the caller's role in the
//! request's tenant (`null` for a non-member), an action, a resource type (`Tenant`, `Flow`,
//! `Member`), whether the resource lives in the request's tenant (`"own"`) or another one
//! (`"other"`), and the expected decision (`"Allow"` or `"Deny"`). A case may say how the caller
//! authenticated (`"auth": {"method": "token", "read_only": true}`; a session when omitted).
//!
//! A case about a flow may describe it: `"flow": {"owner": "caller", "labels": ["confidential"],
//! "editors": ["caller"], "readers": []}`, users being `"caller"` (the case's caller), `"someone"`
//! (another member) or `"nobody"` (for `owner`: a flow without an owner). When omitted, the flow
//! is owned by someone else and has no labels and no shares.
//!
//! A case about the caller's own account names the resource `Account` (role `null`, `"in":
//! "own"`) and one of the account actions (`MintToken`, `RevokeToken`, `LogoutEverywhere`,
//! `ChangePassword`); `"token_read_only": true` is the token a `MintToken` asks for, and
//! `"own_family": true` says a `RevokeToken` stays in the caller's own family.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use uuid::Uuid;

use super::account::AccountAction;
use super::policies::PolicyBundle;
use super::types::{Action, AuthContext, AuthMethod, Query, Resource};
use crate::store::flows::Attributes;
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

/// A user a flow fixture names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Who {
    Caller,
    Someone,
    Nobody,
}

/// The flow of a case: its owner, labels and shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFlow {
    #[serde(default = "someone")]
    pub owner: Who,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub editors: Vec<Who>,
    #[serde(default)]
    pub readers: Vec<Who>,
}

fn someone() -> Who {
    Who::Someone
}

const CALLER: UserId = UserId(Uuid::from_u128(30));
const SOMEONE: UserId = UserId(Uuid::from_u128(31));

impl Who {
    fn user(self) -> Option<UserId> {
        match self {
            Who::Caller => Some(CALLER),
            Who::Someone => Some(SOMEONE),
            Who::Nobody => None,
        }
    }
}

impl CaseFlow {
    fn attributes(&self) -> Attributes {
        let users = |who: &[Who]| {
            let mut users: Vec<UserId> = who.iter().filter_map(|w| w.user()).collect();
            users.sort();
            users.dedup();
            users
        };
        let mut labels = self.labels.clone();
        labels.sort();
        labels.dedup();
        Attributes {
            owner: self.owner.user(),
            labels,
            editors: users(&self.editors),
            readers: users(&self.readers),
        }
    }
}

impl Default for CaseFlow {
    fn default() -> Self {
        CaseFlow {
            owner: Who::Someone,
            labels: vec![],
            editors: vec![],
            readers: vec![],
        }
    }
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
    /// The flow's owner, labels and shares, for a `Flow` resource.
    #[serde(default)]
    pub flow: Option<CaseFlow>,
    /// `MintToken` on the `Account`: whether the token asked for is read-only.
    #[serde(default)]
    pub token_read_only: bool,
    /// `RevokeToken` on the `Account`: whether the revoked token is in the caller's family.
    #[serde(default)]
    pub own_family: bool,
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
    let mut texts = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        texts.push((file, text));
    }
    run_texts(bundle, texts)
}

/// Runs fixture files given as (name, text) against the bundle: a stored version's fixtures, or
/// a folder's as read.
pub fn run_texts(
    bundle: &PolicyBundle,
    files: impl IntoIterator<Item = (PathBuf, String)>,
) -> Result<Vec<Outcome>, String> {
    let own = TenantId(Uuid::from_u128(1));
    let other = TenantId(Uuid::from_u128(2));
    let mut outcomes = Vec::new();
    for (file, text) in files {
        let fixture: FixtureFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        for case in fixture.cases {
            if case.resource == "Account" {
                outcomes.push(run_account(bundle, &file, case));
                continue;
            }
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
            let flow = case.flow.clone().unwrap_or_default().attributes();
            let decision = bundle.decide(&Query {
                user: CALLER,
                role: case.role.as_deref(),
                action,
                tenant: own,
                resource,
                resource_tenant: if case.place == Place::Own { own } else { other },
                auth: case.auth.map_or(AuthContext::SESSION, CaseAuth::context),
                flow: Some(&flow),
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

/// One case about the caller's own account.
fn run_account(bundle: &PolicyBundle, file: &Path, case: Case) -> Outcome {
    let action = match case.action.as_str() {
        "MintToken" => Some(AccountAction::MintToken {
            read_only: case.token_read_only,
        }),
        "RevokeToken" => Some(AccountAction::RevokeToken {
            own_family: case.own_family,
        }),
        "LogoutEverywhere" => Some(AccountAction::LogoutEverywhere),
        "ChangePassword" => Some(AccountAction::ChangePassword),
        "AnswerInvitation" => Some(AccountAction::AnswerInvitation),
        _ => None,
    };
    let Some(action) = action else {
        return Outcome {
            file: file.to_owned(),
            actual: None,
            reasons: vec![],
            errors: vec![format!("unknown account action `{}`", case.action)],
            case,
        };
    };
    let auth = case.auth.map_or(AuthContext::SESSION, CaseAuth::context);
    let decision = bundle.decide_account(CALLER, auth, action);
    Outcome {
        file: file.to_owned(),
        actual: Some(if decision.allowed {
            Expect::Allow
        } else {
            Expect::Deny
        }),
        reasons: decision.reasons,
        errors: decision.errors,
        case,
    }
}
