//! Proving a policy change: what NEW grants that OLD did not ([`diff`]), and what is wrong with
//! a set's policies ([`analyze`]). Both compile the policies to SMT with `cedar-policy-symcc`
//! and ask the solver `cvc5` (from `$CVC5` or PATH; Debian package `cvc5`), on the requests the
//! service can build (its invariants are in [`invariants`]). Only these commands need the
//! solver; serving never does.
//!
//! - [`report`]: what they answer, and why they could not;
//! - [`invariants`]: the service's guarantees about its requests, as Cedar conditions;
//! - [`diff`](mod@diff) and [`lint`]: the two analyses; [`witness`]: counterexamples re-checked
//!   with the real authorizer; [`solver`]: finding and starting `cvc5`.

mod diff;
pub mod invariants;
mod lint;
pub mod report;
mod solver;
mod witness;

pub use report::{
    AnalysisError, AnalysisReport, Change, Counterexample, Environment, EnvironmentDiff,
    FlowWitness, PolicyDiff, PolicyReport, Verdict,
};

use super::policies::PolicyBundle;

/// Compares OLD and NEW per request environment (principal type × action × resource type of
/// NEW's schema), with a counterexample re-checked by both authorizers for every environment
/// where NEW grants more.
pub async fn diff(old: &PolicyBundle, new: &PolicyBundle) -> Result<PolicyDiff, AnalysisError> {
    diff::diff(old, new).await
}

/// Per policy: can it error, can it apply, is it shadowed, is it redundant.
pub async fn analyze(bundle: &PolicyBundle) -> Result<AnalysisReport, AnalysisError> {
    lint::analyze(bundle).await
}
