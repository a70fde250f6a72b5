//! `zygo policy diff` and `zygo policy analyze`: the symbolic analyses of `authz::analysis`,
//! printed for people or as JSON. Their exit codes: 0 no new access / clean, 1 new access /
//! findings, 2 failed (bad input, solver missing).

use super::args::OutputFormat;
use super::common::{active_labelled, load_policies, named_set};
use super::options::{DbArgs, PolicyArgs};
use crate::authz::analysis::{self, AnalysisReport, Change, Counterexample, PolicyDiff};

/// What a check found: `Ok(true)` when it found something (exit 1), `Err` when it failed (exit 2).
pub type CheckResult = Result<bool, String>;

fn json<T: serde::Serialize>(value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}

/// `zygo policy diff [OLD] NEW`: each a folder or a published version; OLD defaults to the active
/// version.
pub async fn diff(sets: &[String], format: OutputFormat, db: &DbArgs) -> CheckResult {
    let (old, new) = match sets {
        [new] => (active_labelled(db).await?, named_set(new, db).await?),
        [old, new] => (named_set(old, db).await?, named_set(new, db).await?),
        _ => return Err("policy diff takes [OLD] NEW".into()),
    };
    let names = format!("OLD = {}, NEW = {}", old.0, new.0);
    let (old, new) = (old.1, new.1);
    let diff = analysis::diff(&old, &new)
        .await
        .map_err(|e| e.to_string())?;
    match format {
        OutputFormat::Json => json(&diff)?,
        OutputFormat::Text => {
            println!("{names}");
            print_diff(&diff)
        }
    }
    Ok(diff.grants_more())
}

pub(super) fn print_diff(diff: &PolicyDiff) {
    println!("OLD {} → NEW {}", diff.old_version, diff.new_version);
    for env in diff
        .environments
        .iter()
        .filter(|e| e.change != Change::Same)
    {
        let change = match env.change {
            Change::Same => "same",
            Change::GrantsLess => "grants less",
            Change::GrantsMore => "GRANTS MORE",
            Change::Both => "GRANTS MORE and less",
        };
        println!("{:<44} {change}", env.environment.to_string());
        if let Some(example) = &env.counterexample {
            print_example(example);
        }
        if let Some(note) = &env.note {
            println!("    no counterexample printed: {note}");
        }
    }
    println!("{}", diff.summary());
}

fn print_example(example: &Counterexample) {
    println!(
        "    e.g. {} {} {} {}",
        example.principal,
        example
            .role
            .as_deref()
            .map_or_else(|| "(no role)".to_owned(), |r| format!("as {r}")),
        example.action,
        example.resource
    );
    if let Some(tenant) = &example.tenant {
        println!(
            "         in {tenant}{}",
            example
                .resource_tenant
                .as_deref()
                .map_or_else(String::new, |t| format!(" (the resource lives in {t})"))
        );
    }
    if let Some(flow) = &example.flow {
        println!(
            "         flow owner {}, labels [{}], editors [{}], readers [{}]",
            flow.owner,
            flow.labels.join(", "),
            flow.editors.join(", "),
            flow.readers.join(", ")
        );
    }
    println!("         context {}", example.context);
    println!(
        "         NEW allows (by {}), OLD denies{}",
        example.new.reasons.join(", "),
        if example.old.reasons.is_empty() {
            String::new()
        } else {
            format!(" (by {})", example.old.reasons.join(", "))
        }
    );
}

pub async fn analyze(policy: &PolicyArgs, format: OutputFormat) -> CheckResult {
    let bundle = load_policies(policy)?;
    let report = analysis::analyze(&bundle)
        .await
        .map_err(|e| e.to_string())?;
    match format {
        OutputFormat::Json => json(&report)?,
        OutputFormat::Text => print_report(&report),
    }
    Ok(!report.clean())
}

fn print_report(report: &AnalysisReport) {
    let mut found = 0;
    for policy in &report.policies {
        let findings = policy.findings();
        if findings.is_empty() {
            println!("ok    {}", policy.id);
        }
        for finding in findings {
            found += 1;
            println!("FIND  {}: {finding}", policy.id);
        }
    }
    println!(
        "{} policies over {} environments, version {}: {}",
        report.policies.len(),
        report.environments,
        report.version,
        if found == 0 {
            "clean".to_owned()
        } else {
            format!("{found} findings")
        }
    );
}
