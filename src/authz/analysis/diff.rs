//! OLD against NEW, per request environment of NEW's schema: does NEW allow a request OLD
//! denies (grants more), the reverse (grants less), both or neither, on the requests the
//! service builds (see [`super::invariants`]).

use cedar_policy::{PolicySet, RequestEnv};
use cedar_policy_symcc::CompiledPolicySet;

use super::invariants;
use super::report::{AnalysisError, Change, Environment, EnvironmentDiff, PolicyDiff};
use super::solver::{self, from_symcc};
use super::witness;
use crate::authz::policies::PolicyBundle;

/// The schema's request environments, in a stable order.
pub fn environments(bundle: &PolicyBundle) -> Vec<(Environment, RequestEnv)> {
    let mut envs: Vec<(Environment, RequestEnv)> = bundle
        .schema
        .request_envs()
        .map(|env| {
            (
                Environment {
                    principal: env.principal().to_string(),
                    action: env.action().id().unescaped().to_owned(),
                    resource: env.resource().to_string(),
                },
                env,
            )
        })
        .collect();
    envs.sort_by(|a, b| a.0.cmp(&b.0));
    envs
}

/// `bundle`'s policies and the guard of `env`'s invariants.
pub fn guarded(
    bundle: &PolicyBundle,
    invariants_of: &PolicyBundle,
    env: &RequestEnv,
    without: Option<&str>,
) -> Result<PolicySet, AnalysisError> {
    let mut set = PolicySet::new();
    for policy in bundle.policies.policies() {
        if Some(policy.id().to_string().as_str()) == without {
            continue;
        }
        set.add(policy.clone())
            .map_err(|e| AnalysisError::Internal(e.to_string()))?;
    }
    set.add(invariants::guard(invariants_of, env)?)
        .map_err(|e| AnalysisError::Internal(e.to_string()))?;
    Ok(set)
}

pub async fn diff(old: &PolicyBundle, new: &PolicyBundle) -> Result<PolicyDiff, AnalysisError> {
    let mut compiler = solver::start()?;
    let schema = &new.schema;
    let mut results = Vec::new();
    for (environment, env) in environments(new) {
        // Both sets are compared under NEW's schema and NEW's roles (the re-check decides with
        // each bundle's own).
        let old_set = CompiledPolicySet::compile(&guarded(old, new, &env, None)?, &env, schema)
            .map_err(|e| {
                AnalysisError::Invalid(format!(
                    "OLD cannot be compared under NEW's schema ({environment}): {}",
                    from_symcc(e)
                ))
            })?;
        let new_set = CompiledPolicySet::compile(&guarded(new, new, &env, None)?, &env, schema)
            .map_err(from_symcc)?;
        let more = compiler
            .check_implies_with_counterexample_opt(&new_set, &old_set)
            .await
            .map_err(from_symcc)?;
        let less = !compiler
            .check_implies_opt(&old_set, &new_set)
            .await
            .map_err(from_symcc)?;
        let change = match (more.is_some(), less) {
            (false, false) => Change::Same,
            (true, false) => Change::GrantsMore,
            (false, true) => Change::GrantsLess,
            (true, true) => Change::Both,
        };
        let (counterexample, note) = match &more {
            Some(cex) => match witness::confirm(old, new, &env, cex) {
                Ok(found) => (Some(found), None),
                Err(why) => (None, Some(why)),
            },
            None => (None, None),
        };
        results.push(EnvironmentDiff {
            environment,
            change,
            counterexample,
            note,
        });
    }
    Ok(PolicyDiff::new(
        old.version().to_owned(),
        new.version().to_owned(),
        results,
    ))
}
