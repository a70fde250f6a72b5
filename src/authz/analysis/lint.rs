//! Each policy on its own, on the requests the service builds: can it error, can it apply at
//! all, does another policy already decide all it would (shadowed), would the set decide every
//! request the same without it (redundant).

use std::collections::{BTreeMap, BTreeSet};

use cedar_policy::Effect;
use cedar_policy_symcc::{CompiledPolicy, CompiledPolicySet};

use super::diff::{environments, guarded};
use super::invariants;
use super::report::{AnalysisError, AnalysisReport, PolicyReport};
use super::solver::{self, from_symcc};
use crate::authz::policies::PolicyBundle;

pub async fn analyze(bundle: &PolicyBundle) -> Result<AnalysisReport, AnalysisError> {
    let mut compiler = solver::start()?;
    let schema = &bundle.schema;
    let envs = environments(bundle);
    let mut policies: Vec<_> = bundle.policies.policies().collect();
    policies.sort_by_key(|p| p.id().to_string());
    let ids: Vec<String> = policies.iter().map(|p| p.id().to_string()).collect();

    // Per policy: the environments it applies in (with its compiled form there), and those in
    // which it can error.
    let mut applies: Vec<BTreeMap<usize, CompiledPolicy>> = vec![BTreeMap::new(); policies.len()];
    let mut errors: Vec<Vec<usize>> = vec![Vec::new(); policies.len()];
    for (e, (_, env)) in envs.iter().enumerate() {
        for (p, policy) in policies.iter().enumerate() {
            let restricted = invariants::restrict(bundle, env, policy)?;
            let compiled = CompiledPolicy::compile(&restricted, env, schema).map_err(from_symcc)?;
            if compiler
                .check_never_matches_opt(&compiled)
                .await
                .map_err(from_symcc)?
            {
                continue;
            }
            if !compiler
                .check_never_errors_opt(&compiled)
                .await
                .map_err(from_symcc)?
            {
                errors[p].push(e);
            }
            applies[p].insert(e, compiled);
        }
    }

    let mut reports = Vec::new();
    for (p, policy) in policies.iter().enumerate() {
        let mine: BTreeSet<usize> = applies[p].keys().copied().collect();
        let mut shadowed_by = Vec::new();
        let mut redundant = false;
        if !mine.is_empty() {
            for (q, other) in policies.iter().enumerate() {
                let decides = other.effect() == policy.effect()
                    || (policy.effect() == Effect::Permit && other.effect() == Effect::Forbid);
                if q == p || !decides || !mine.iter().all(|e| applies[q].contains_key(e)) {
                    continue;
                }
                let mut covered = true;
                for e in &mine {
                    if !compiler
                        .check_matches_implies_opt(&applies[p][e], &applies[q][e])
                        .await
                        .map_err(from_symcc)?
                    {
                        covered = false;
                        break;
                    }
                }
                if covered {
                    shadowed_by.push(ids[q].clone());
                }
            }
            redundant = true;
            for e in &mine {
                let env = &envs[*e].1;
                let with =
                    CompiledPolicySet::compile(&guarded(bundle, bundle, env, None)?, env, schema)
                        .map_err(from_symcc)?;
                let without = CompiledPolicySet::compile(
                    &guarded(bundle, bundle, env, Some(&ids[p]))?,
                    env,
                    schema,
                )
                .map_err(from_symcc)?;
                if !compiler
                    .check_equivalent_opt(&with, &without)
                    .await
                    .map_err(from_symcc)?
                {
                    redundant = false;
                    break;
                }
            }
        }
        reports.push(PolicyReport {
            id: ids[p].clone(),
            effect: match policy.effect() {
                Effect::Permit => "permit".into(),
                Effect::Forbid => "forbid".into(),
            },
            applies_in: mine.iter().map(|e| envs[*e].0.clone()).collect(),
            vacuous: mine.is_empty(),
            can_error_in: errors[p].iter().map(|e| envs[*e].0.clone()).collect(),
            shadowed_by,
            redundant,
        });
    }
    Ok(AnalysisReport::new(
        bundle.version().to_owned(),
        envs.len(),
        reports,
    ))
}
