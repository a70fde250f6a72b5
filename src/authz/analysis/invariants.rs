//! What the service guarantees about every request it builds (see `decide.rs`, `account.rs` and
//! `names.rs`), written as a Cedar condition per request environment, so the solver only looks
//! at requests the service could meet:
//!
//! - the roles form exactly the hierarchy of `roles.cedarentities.json` (`Role::"Admin" in
//!   Role::"Editor"` and no other edge);
//! - in a tenant, the principal holds at most one role: its roles are the closure of one role,
//!   or none (a non-member); on its own account (no tenant) it holds none, and the resource is
//!   the principal itself;
//! - `context.auth.method` is "session" or "token", and a session is never read-only (nor
//!   revokes its "own family");
//! - a flow's owner, unless it is the caller, holds no role in the request (only the caller's
//!   entity is built with parents), and no caller is the placeholder owner (the nil user).
//!
//! Not assumed, on purpose: that the resource lies in the URL's tenant. The service builds it
//! so, but `tenant-boundary` is there in case it ever does not, and a change that weakens it is
//! reported.

use cedar_policy::{Policy, PolicyId, RequestEnv};
use serde_json::Value;

use super::report::AnalysisError;
use crate::authz::account::AccountAction;
use crate::authz::policies::{PolicyBundle, ROLE_TYPE};
use crate::authz::types::Action;

/// The id of the guard policy added to both sets of a diff.
pub const GUARD_ID: &str = "zygo-service-invariants";
const NIL_USER: &str = "00000000-0000-0000-0000-000000000000";

fn role(name: &str) -> String {
    format!("{ROLE_TYPE}::{}", quote(name))
}

fn quote(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

fn all(parts: Vec<String>) -> String {
    if parts.is_empty() {
        "true".into()
    } else {
        parts
            .into_iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join(" && ")
    }
}

fn any(parts: Vec<String>) -> String {
    if parts.is_empty() {
        "false".into()
    } else {
        parts
            .into_iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join(" || ")
    }
}

/// Which of the service's request builders makes requests of an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    /// `decide.rs`: a tenant's request (its action is one of [`Action::ALL`]).
    Tenant(Action),
    /// `account.rs`: an action on the caller's own account.
    Account(&'static str),
    /// An action the service has no builder for: only the general invariants hold.
    Unknown,
}

pub fn builder(env: &RequestEnv) -> Builder {
    let name = env.action().id().unescaped().to_owned();
    if let Some(action) = Action::parse(&name) {
        Builder::Tenant(action)
    } else if let Some(account) = AccountAction::NAMES.iter().find(|n| **n == name) {
        Builder::Account(account)
    } else {
        Builder::Unknown
    }
}

/// The condition every request of `env` the service builds satisfies, with `bundle`'s roles.
pub fn condition(bundle: &PolicyBundle, env: &RequestEnv) -> String {
    let roles: Vec<&String> = bundle.roles().iter().collect();
    let closure = |r: &str| -> Vec<String> {
        bundle
            .role_closure
            .get(r)
            .map(|c| c.iter().map(|u| u.id().unescaped().to_owned()).collect())
            .unwrap_or_default()
    };
    let mut parts = Vec::new();
    // The hierarchy is exactly the one of the roles file.
    for a in &roles {
        let up = closure(a);
        for b in &roles {
            if a == b {
                continue;
            }
            let edge = format!("{} in {}", role(a), role(b));
            parts.push(if up.contains(b) {
                edge
            } else {
                format!("!({edge})")
            });
        }
    }
    let user_type = env.principal().to_string();
    let is_user = user_type.ends_with("::User");
    let none_held = all(roles
        .iter()
        .map(|r| format!("!(principal in {})", role(r)))
        .collect());
    let builder = builder(env);
    if is_user {
        parts.push(format!("principal != {user_type}::{}", quote(NIL_USER)));
        match builder {
            Builder::Account(_) => {
                parts.push(none_held.clone());
                if env.resource().to_string() == user_type {
                    parts.push("resource == principal".into());
                }
            }
            _ => {
                // At most one role: the closure of one, or none.
                let mut one_of = vec![none_held.clone()];
                for r in &roles {
                    let up = closure(r);
                    let mut held = vec![format!("principal in {}", role(r))];
                    held.extend(
                        roles
                            .iter()
                            .filter(|s| !up.contains(s))
                            .map(|s| format!("!(principal in {})", role(s))),
                    );
                    one_of.push(all(held));
                }
                parts.push(any(one_of));
            }
        }
    }
    parts.push(
        "(context.auth.method == \"session\" && !context.auth.read_only) || \
         context.auth.method == \"token\""
            .into(),
    );
    if builder == Builder::Account("RevokeToken") {
        parts.push("context.auth.method == \"token\" || !context.own_family".into());
    }
    if env.resource().to_string().ends_with("::Flow") && is_user {
        for r in &roles {
            parts.push(format!(
                "resource.owner == principal || !(resource.owner in {})",
                role(r)
            ));
        }
    }
    all(parts)
}

/// A forbid of every request outside the invariants: added to both sets of a diff, so they are
/// compared on the service's requests only.
pub fn guard(bundle: &PolicyBundle, env: &RequestEnv) -> Result<Policy, AnalysisError> {
    let text = format!(
        "forbid (principal, action, resource) unless {{ {} }};",
        condition(bundle, env)
    );
    Policy::parse(Some(PolicyId::new(GUARD_ID)), text)
        .map_err(|e| AnalysisError::Internal(format!("the invariants do not parse: {e}")))
}

/// `policy` with the invariants as its first condition: it matches only requests the service
/// builds, and what follows is evaluated only for them.
pub fn restrict(
    bundle: &PolicyBundle,
    env: &RequestEnv,
    policy: &Policy,
) -> Result<Policy, AnalysisError> {
    let internal = |e: String| AnalysisError::Internal(e);
    let guard = Policy::parse(
        None,
        format!(
            "permit (principal, action, resource) when {{ {} }};",
            condition(bundle, env)
        ),
    )
    .map_err(|e| internal(e.to_string()))?;
    let guard = guard.to_json().map_err(|e| internal(e.to_string()))?;
    let mut json = policy.to_json().map_err(|e| internal(e.to_string()))?;
    let first = guard["conditions"][0].clone();
    match json.get_mut("conditions").and_then(Value::as_array_mut) {
        Some(conditions) => conditions.insert(0, first),
        None => json["conditions"] = Value::Array(vec![first]),
    }
    Policy::from_json(Some(policy.id().clone()), json).map_err(|e| internal(e.to_string()))
}
