//! A solver's counterexample turned into the request the service would build, and re-checked:
//! each bundle decides it with its own authorizer (`decide.rs`, `account.rs`), so a printed
//! counterexample is a decision the service would really make.

use std::collections::BTreeSet;
use std::str::FromStr;

use cedar_policy::{EntityUid, EvalResult, Expression, RequestEnv, eval_expression};
use cedar_policy_symcc::Env;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::invariants::{Builder, builder};
use super::report::{Counterexample, FlowWitness, Verdict};
use crate::authz::account::AccountAction;
use crate::authz::policies::{PolicyBundle, ROLE_TYPE};
use crate::authz::types::{AuthContext, AuthMethod, Decision, Query, Resource};
use crate::store::flows::Attributes;
use crate::store::{TenantId, UserId};

/// The solver names entities freely; the service's are UUIDs. An id that is one is kept, any
/// other is mapped to a UUID derived from it (the same id, the same UUID).
fn uuid_of(uid: &EntityUid) -> Uuid {
    let id = uid.id().unescaped();
    Uuid::parse_str(id).unwrap_or_else(|_| {
        let digest = Sha256::digest(format!("{}::{id}", uid.type_name()).as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    })
}

struct Reader<'a> {
    cex: &'a Env,
}

impl Reader<'_> {
    fn eval(&self, expr: &str) -> Result<EvalResult, String> {
        let parsed = Expression::from_str(expr).map_err(|e| e.to_string())?;
        eval_expression(&self.cex.request, &self.cex.entities, &parsed)
            .map_err(|e| format!("{expr}: {e}"))
    }
    fn bool(&self, expr: &str) -> Result<bool, String> {
        match self.eval(expr)? {
            EvalResult::Bool(b) => Ok(b),
            other => Err(format!("{expr} is {other:?}, not a boolean")),
        }
    }
    fn string(&self, expr: &str) -> Result<String, String> {
        match self.eval(expr)? {
            EvalResult::String(s) => Ok(s),
            other => Err(format!("{expr} is {other:?}, not a string")),
        }
    }
    fn uid(&self, expr: &str) -> Result<EntityUid, String> {
        match self.eval(expr)? {
            EvalResult::EntityUid(uid) => Ok(uid),
            other => Err(format!("{expr} is {other:?}, not an entity")),
        }
    }
    fn set(&self, expr: &str) -> Result<Vec<EvalResult>, String> {
        match self.eval(expr)? {
            EvalResult::Set(set) => Ok(set.iter().cloned().collect()),
            other => Err(format!("{expr} is {other:?}, not a set")),
        }
    }
    fn users(&self, expr: &str) -> Result<Vec<UserId>, String> {
        let mut users: Vec<UserId> = self
            .set(expr)?
            .into_iter()
            .filter_map(|v| match v {
                EvalResult::EntityUid(uid) => Some(UserId(uuid_of(&uid))),
                _ => None,
            })
            .collect();
        users.sort();
        users.dedup();
        Ok(users)
    }
}

fn verdict(decision: &Decision) -> Verdict {
    Verdict {
        allowed: decision.allowed,
        reasons: decision.reasons.clone(),
    }
}

/// The principal's role: the role whose closure is exactly the principal's roles.
fn role_of(
    bundle: &PolicyBundle,
    cex: &Env,
    principal: &EntityUid,
) -> Result<Option<String>, String> {
    let held: BTreeSet<String> = cex
        .entities
        .ancestors(principal)
        .map(|a| {
            a.filter(|u| u.type_name().to_string() == ROLE_TYPE)
                .map(|u| u.id().unescaped().to_owned())
                .collect()
        })
        .unwrap_or_default();
    if held.is_empty() {
        return Ok(None);
    }
    bundle
        .role_closure
        .iter()
        .find(|(_, closure)| {
            closure
                .iter()
                .map(|u| u.id().unescaped().to_owned())
                .collect::<BTreeSet<_>>()
                == held
        })
        .map(|(role, _)| Some(role.clone()))
        .ok_or_else(|| format!("the principal holds roles {held:?}, which no one role gives"))
}

/// Rebuilds the solver's request as the service would and decides it with both bundles; the
/// counterexample stands only if NEW allows it and OLD denies it.
pub fn confirm(
    old: &PolicyBundle,
    new: &PolicyBundle,
    env: &RequestEnv,
    cex: &Env,
) -> Result<Counterexample, String> {
    let read = Reader { cex };
    let principal = cex.request.principal().ok_or("no principal")?.clone();
    let resource = cex.request.resource().ok_or("no resource")?.clone();
    let user = UserId(uuid_of(&principal));
    let method = read.string("context.auth.method")?;
    let auth = AuthContext {
        method: if method == "token" {
            AuthMethod::Token
        } else {
            AuthMethod::Session
        },
        read_only: read.bool("context.auth.read_only")?,
    };
    let auth_json = json!({ "method": auth.method.name(), "read_only": auth.read_only });
    let (action_name, role, tenant, resource_name, resource_tenant, flow, context, decisions) =
        match builder(env) {
            Builder::Tenant(action) => {
                let role = role_of(new, cex, &principal)?;
                let tenant = TenantId(uuid_of(&read.uid("context.tenant")?));
                let inside = read.bool("resource in context.tenant")?;
                // The other tenant a resource outside the URL's lives in.
                let resource_tenant = if inside {
                    tenant
                } else {
                    TenantId(uuid_of(
                        &EntityUid::from_str(&format!("Zygo::Tenant::\"outside-{}\"", tenant.0))
                            .map_err(|e| e.to_string())?,
                    ))
                };
                let kind = env.resource().basename().to_owned();
                let (service_resource, attrs) = match kind.as_str() {
                    "Tenant" => (Resource::Tenant, None),
                    "Flow" => {
                        let owner = UserId(uuid_of(&read.uid("resource.owner")?));
                        let mut labels: Vec<String> = read
                            .set("resource.labels")?
                            .into_iter()
                            .filter_map(|v| match v {
                                EvalResult::String(s) => Some(s),
                                _ => None,
                            })
                            .collect();
                        labels.sort();
                        labels.dedup();
                        let attrs = Attributes {
                            owner: Some(owner),
                            labels,
                            editors: read.users("resource.editors")?,
                            readers: read.users("resource.readers")?,
                        };
                        (Resource::Flow(uuid_of(&resource)), Some(attrs))
                    }
                    "Member" => (Resource::Member(UserId(uuid_of(&resource))), None),
                    other => return Err(format!("the service builds no {other} resource")),
                };
                // A tenant resource is the tenant itself.
                let resource_tenant = match service_resource {
                    Resource::Tenant => TenantId(uuid_of(&resource)),
                    _ => resource_tenant,
                };
                let query = Query {
                    user,
                    role: role.as_deref(),
                    action,
                    tenant,
                    resource: service_resource,
                    resource_tenant,
                    auth,
                    flow: attrs.as_ref(),
                };
                let decisions = (old.decide_afresh(&query), new.decide_afresh(&query));
                let flow = attrs.as_ref().map(|a| FlowWitness {
                    owner: format!("User:{}", a.owner.map(|o| o.0).unwrap_or_default()),
                    labels: a.labels.clone(),
                    editors: a.editors.iter().map(|u| format!("User:{}", u.0)).collect(),
                    readers: a.readers.iter().map(|u| format!("User:{}", u.0)).collect(),
                });
                (
                    action.name().to_owned(),
                    role,
                    Some(format!("Tenant:{}", tenant.0)),
                    service_resource.describe(resource_tenant),
                    (resource_tenant != tenant).then(|| format!("Tenant:{}", resource_tenant.0)),
                    flow,
                    json!({ "tenant": format!("Tenant:{}", tenant.0), "auth": auth_json }),
                    decisions,
                )
            }
            Builder::Account(name) => {
                let (action, context) = match name {
                    "MintToken" => {
                        let read_only = read.bool("context.token.read_only")?;
                        (
                            AccountAction::MintToken { read_only },
                            json!({ "auth": auth_json, "token": { "read_only": read_only } }),
                        )
                    }
                    "RevokeToken" => {
                        let own_family = read.bool("context.own_family")?;
                        (
                            AccountAction::RevokeToken { own_family },
                            json!({ "auth": auth_json, "own_family": own_family }),
                        )
                    }
                    "LogoutEverywhere" => (
                        AccountAction::LogoutEverywhere,
                        json!({ "auth": auth_json }),
                    ),
                    "ChangePassword" => {
                        (AccountAction::ChangePassword, json!({ "auth": auth_json }))
                    }
                    _ => (
                        AccountAction::AnswerInvitation,
                        json!({ "auth": auth_json }),
                    ),
                };
                let decisions = (
                    old.decide_account(user, auth, action),
                    new.decide_account(user, auth, action),
                );
                (
                    name.to_owned(),
                    None,
                    None,
                    format!("User:{}", user.0),
                    None,
                    None,
                    context,
                    decisions,
                )
            }
            Builder::Unknown => {
                return Err(format!(
                    "the service builds no request for {}",
                    env.action()
                ));
            }
        };
    let (old_decision, new_decision) = decisions;
    if !new_decision.allowed || old_decision.allowed {
        return Err(format!(
            "the solver's request did not reproduce with the service's request builder (OLD {}, \
             NEW {}; errors: {})",
            if old_decision.allowed {
                "allows"
            } else {
                "denies"
            },
            if new_decision.allowed {
                "allows"
            } else {
                "denies"
            },
            old_decision
                .errors
                .iter()
                .chain(&new_decision.errors)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    Ok(Counterexample {
        principal: format!("User:{}", user.0),
        role,
        action: action_name,
        resource: resource_name,
        tenant,
        resource_tenant,
        flow,
        context,
        old: verdict(&old_decision),
        new: verdict(&new_decision),
    })
}
