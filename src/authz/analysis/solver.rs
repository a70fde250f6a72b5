//! Starting the solver: `cvc5` from `$CVC5` or PATH, found before it is spawned so that a
//! missing one is named as such.

use std::path::PathBuf;

use cedar_policy_symcc::CedarSymCompiler;
use cedar_policy_symcc::err::Error;
use cedar_policy_symcc::solver::LocalSolver;

use super::report::AnalysisError;

/// The solver's path: `$CVC5` if set, else `cvc5` on PATH.
fn locate() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CVC5") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("cvc5"))
        .find(|path| path.is_file())
}

pub fn start() -> Result<CedarSymCompiler<LocalSolver>, AnalysisError> {
    let path = locate().ok_or(AnalysisError::SolverMissing)?;
    let solver = LocalSolver::from_command(
        tokio::process::Command::new(path)
            .args(["--lang", "smt", "--tlimit=60000"])
            .kill_on_drop(true),
    )
    .map_err(|e| AnalysisError::Solver(e.to_string()))?;
    CedarSymCompiler::new(solver).map_err(from_symcc)
}

pub fn from_symcc(err: Error) -> AnalysisError {
    match err {
        Error::PolicyNotWellTyped { errs } => AnalysisError::Invalid(format!(
            "a policy does not validate against the schema it is compared under: {}",
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Error::SolverError(e) => AnalysisError::Solver(e.to_string()),
        Error::SolverUnknown => AnalysisError::Solver("the solver answered `unknown`".into()),
        other => AnalysisError::Internal(other.to_string()),
    }
}
