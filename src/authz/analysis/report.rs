//! What the analysis answers: a diff per request environment, a report per policy, and why it
//! could not answer. Everything serializes for `--format json`.

use std::fmt;

use serde::Serialize;

/// One request environment: a principal type, an action, a resource type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Environment {
    pub principal: String,
    pub action: String,
    pub resource: String,
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = |name: &str| name.rsplit("::").next().unwrap_or(name).to_owned();
        write!(
            f,
            "{} ({} → {})",
            self.action,
            short(&self.principal),
            short(&self.resource)
        )
    }
}

/// How NEW decides an environment's requests compared with OLD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Same,
    GrantsLess,
    GrantsMore,
    /// Some requests newly allowed, others newly denied.
    Both,
}

impl Change {
    pub fn grants_more(self) -> bool {
        matches!(self, Change::GrantsMore | Change::Both)
    }
}

/// A decision of one bundle, made by its own authorizer on the request the service would build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub allowed: bool,
    /// The determining policies.
    pub reasons: Vec<String>,
}

/// A flow's attributes in a counterexample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowWitness {
    pub owner: String,
    pub labels: Vec<String>,
    pub editors: Vec<String>,
    pub readers: Vec<String>,
}

/// A request NEW allows and OLD denies, re-checked with both bundles' authorizers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counterexample {
    /// `User:<id>`.
    pub principal: String,
    /// The principal's role in the request's tenant (`None`: not a member, or an account action).
    pub role: Option<String>,
    pub action: String,
    /// `Flow:<id>`, `Tenant:<id>`, `Member:<id>` or `User:<id>`.
    pub resource: String,
    /// The tenant named by the URL (`None` for an action on the caller's own account).
    pub tenant: Option<String>,
    /// The tenant the resource lives in, when it is not the URL's.
    pub resource_tenant: Option<String>,
    pub flow: Option<FlowWitness>,
    /// The request's `context`, as the policies see it.
    pub context: serde_json::Value,
    pub old: Verdict,
    pub new: Verdict,
}

/// One environment of a diff.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentDiff {
    pub environment: Environment,
    pub change: Change,
    /// For an environment that grants more: a request NEW allows and OLD denies.
    pub counterexample: Option<Counterexample>,
    /// Why there is no counterexample although the environment grants more.
    pub note: Option<String>,
}

/// OLD against NEW, environment by environment.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyDiff {
    pub old_version: String,
    pub new_version: String,
    pub environments: Vec<EnvironmentDiff>,
    pub grants_more: bool,
    pub summary: String,
}

impl PolicyDiff {
    pub(super) fn new(old: String, new: String, environments: Vec<EnvironmentDiff>) -> PolicyDiff {
        let count = |change: Change| environments.iter().filter(|e| e.change == change).count();
        let mut parts = vec![format!("{} environments same", count(Change::Same))];
        for (change, label) in [
            (Change::GrantsMore, "grants more"),
            (Change::GrantsLess, "grants less"),
            (Change::Both, "grants both more and less"),
        ] {
            if count(change) > 0 {
                parts.push(format!("{} {label}", count(change)));
            }
        }
        PolicyDiff {
            old_version: old,
            new_version: new,
            grants_more: environments.iter().any(|e| e.change.grants_more()),
            summary: parts.join(", "),
            environments,
        }
    }

    /// Whether NEW allows some request the service could build that OLD denies.
    pub fn grants_more(&self) -> bool {
        self.grants_more
    }

    /// One line: "17 environments same, 1 grants more".
    pub fn summary(&self) -> String {
        self.summary.clone()
    }
}

/// What `analyze` found about one policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    pub id: String,
    pub effect: String,
    /// The environments where it can match a request the service builds.
    pub applies_in: Vec<Environment>,
    /// Never matches any request the service builds.
    pub vacuous: bool,
    /// The environments where evaluating it can fail (a failing policy is skipped by Cedar).
    pub can_error_in: Vec<Environment>,
    /// Policies that alone already decide every request it matches: a permit that allows all
    /// it allows, a forbid that overrides it (for a permit) or forbids all it forbids.
    pub shadowed_by: Vec<String>,
    /// The set without it decides every request the same.
    pub redundant: bool,
}

impl PolicyReport {
    pub fn findings(&self) -> Vec<String> {
        let mut found = Vec::new();
        if self.vacuous {
            found.push("never applies to a request the service builds (vacuous)".into());
        }
        if !self.can_error_in.is_empty() {
            let envs: Vec<String> = self.can_error_in.iter().map(|e| e.to_string()).collect();
            found.push(format!("can error in {}", envs.join(", ")));
        }
        if !self.shadowed_by.is_empty() {
            found.push(format!("shadowed by {}", self.shadowed_by.join(", ")));
        }
        if self.redundant && !self.vacuous {
            found.push("redundant: the set without it decides every request the same".into());
        }
        found
    }
}

/// `analyze`'s answer for one set.
#[derive(Debug, Clone, Serialize)]
pub struct AnalysisReport {
    pub version: String,
    pub environments: usize,
    pub policies: Vec<PolicyReport>,
    pub clean: bool,
}

impl AnalysisReport {
    pub(super) fn new(version: String, environments: usize, policies: Vec<PolicyReport>) -> Self {
        let clean = policies.iter().all(|p| p.findings().is_empty());
        AnalysisReport {
            version,
            environments,
            policies,
            clean,
        }
    }

    /// No policy with a finding.
    pub fn clean(&self) -> bool {
        self.clean
    }
}

/// Why the analysis could not answer.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The solver is not installed.
    #[error(
        "the SMT solver `cvc5` was not found (looked for $CVC5, then `cvc5` on PATH): install the \
         Debian package `cvc5` (apt-get install cvc5)"
    )]
    SolverMissing,
    /// The solver failed or answered `unknown`.
    #[error("the SMT solver failed: {0}")]
    Solver(String),
    /// The sets cannot be compared (OLD does not validate against NEW's schema, …).
    #[error("{0}")]
    Invalid(String),
    #[error("analysis failed: {0}")]
    Internal(String),
}
