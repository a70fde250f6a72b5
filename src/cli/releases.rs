//! Policy versions in the database: `zygo policy publish` (validate, run the fixtures, prove the
//! change against the active version, store and activate), `versions`, `show`, `pull` and
//! `rollback`. Instances serving `--policy-source database` follow within a second.

use super::analysis::print_diff;
use super::common::{CliResult, active_set, open_db};
use super::options::{DbArgs, PolicyArgs};
use crate::authz::releases::{self, GateRefusal};
use crate::authz::{PolicyBundle, PolicyFiles};
use crate::invalidation;
use crate::store::policy_versions;

/// Who runs an operator command: `--by`/`ZYGO_OPERATOR`, else the OS user.
fn operator(by: Option<String>) -> String {
    by.filter(|name| !name.trim().is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .or_else(|| std::env::var("LOGNAME").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Tells instances on PostgreSQL to look the active version up now (the poll is the fallback).
async fn signal_policies(conn: &sea_orm::DatabaseConnection) {
    if let Err(err) = invalidation::publish(conn, &[invalidation::Key::Policies]).await {
        eprintln!("warning: cannot signal the instances ({err}); they follow within their poll");
    }
}

pub(super) async fn publish(
    policy: &PolicyArgs,
    message: &str,
    allow_new_access: bool,
    by: Option<String>,
    db: &DbArgs,
) -> CliResult {
    if message.trim().is_empty() {
        return Err("--message must say what the change is".into());
    }
    let files = PolicyFiles::read(&policy.policies).map_err(|err| {
        format!(
            "the policies in {} do not validate:\n{err}",
            policy.policies.display()
        )
    })?;
    let bundle = PolicyBundle::from_files(&files).map_err(|err| {
        format!(
            "the policies in {} do not validate:\n{err}",
            policy.policies.display()
        )
    })?;
    for warning in bundle.warnings() {
        eprintln!("{warning}");
    }
    let cases = releases::check_fixtures(&bundle, &files)?;
    let conn = open_db(db).await?;
    let active = active_set(&conn).await?;
    let (expected, active_bundle) = match &active {
        None => (None, None),
        Some((number, Ok(bundle))) => (Some(*number), Some((*number, bundle))),
        // The active version no longer loads here: there is nothing this binary can compare
        // with, so the change is treated as a first version would be.
        Some((number, Err(_))) => (Some(*number), None),
    };
    let gate = match releases::gate_new_access(active_bundle, &bundle, allow_new_access).await {
        Ok(gate) => gate,
        Err(GateRefusal::NewAccess(diff)) => {
            print_diff(&diff);
            return Err(
                "not published: the change lets someone do something the active version does not \
                 (above, each with a request the new set allows and the active one denies); if \
                 that is intended, publish again with --allow-new-access"
                    .into(),
            );
        }
        Err(GateRefusal::Failed(err)) => {
            return Err(format!(
                "not published: the change could not be compared with the active version: {err}"
            ));
        }
    };
    let by = operator(by);
    let new = releases::new_version(&files, &bundle, &by, message.trim(), &gate.summary)?;
    let number = policy_versions::publish(&conn, expected, new)
        .await
        .map_err(|e| e.to_string())?;
    signal_policies(&conn).await;
    println!(
        "published version {number} ({}, {} policies, {cases} fixtures passed) by {by}; it is the active version\ndiff: {}",
        bundle.version(),
        bundle.policy_ids().len(),
        gate.summary
    );
    Ok(())
}

pub(super) async fn versions(db: &DbArgs) -> CliResult {
    let conn = open_db(db).await?;
    let active = policy_versions::active(&conn)
        .await
        .map_err(|e| e.to_string())?;
    let versions = policy_versions::list(&conn)
        .await
        .map_err(|e| e.to_string())?;
    if versions.is_empty() {
        println!("no policy version is published yet");
        return Ok(());
    }
    for v in &versions {
        println!(
            "{} {:>4}  {}  {}  {:<16}  {}",
            if active == Some(v.number) { "*" } else { " " },
            v.number,
            v.content_hash,
            v.published_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            v.published_by,
            v.message
        );
    }
    println!("\nactivations (newest first):");
    for a in policy_versions::activations(&conn)
        .await
        .map_err(|e| e.to_string())?
    {
        println!(
            "  {}  version {:>4}  {:<8}  by {}",
            a.activated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            a.version,
            a.kind,
            a.activated_by
        );
    }
    Ok(())
}

async fn find_version(
    conn: &sea_orm::DatabaseConnection,
    number: i64,
) -> Result<policy_versions::Version, String> {
    policy_versions::find(conn, number)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("there is no policy version {number}"))
}

pub(super) async fn show(number: i64, db: &DbArgs) -> CliResult {
    let conn = open_db(db).await?;
    let version = find_version(&conn, number).await?;
    let active = policy_versions::active(&conn)
        .await
        .map_err(|e| e.to_string())?;
    let files = releases::files_of(&version)?;
    println!("version: {}", version.number);
    println!("content hash: {}", version.content_hash);
    println!(
        "active: {}",
        if active == Some(number) { "yes" } else { "no" }
    );
    println!("published by: {}", version.published_by);
    println!(
        "published at: {}",
        version
            .published_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    println!("message: {}", version.message);
    println!("diff: {}", version.diff_summary);
    let names: Vec<&str> = files.policies.keys().map(String::as_str).collect();
    println!("policy files: {}", names.join(", "));
    let names: Vec<&str> = files.fixtures.keys().map(String::as_str).collect();
    println!("fixtures: {}", names.join(", "));
    Ok(())
}

pub(super) async fn pull(number: i64, dir: &std::path::Path, db: &DbArgs) -> CliResult {
    let conn = open_db(db).await?;
    let version = find_version(&conn, number).await?;
    let files = releases::files_of(&version)?;
    files
        .write(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    println!(
        "version {number} ({}) written to {}",
        version.content_hash,
        dir.display()
    );
    Ok(())
}

pub(super) async fn rollback(number: i64, by: Option<String>, db: &DbArgs) -> CliResult {
    let conn = open_db(db).await?;
    let version = find_version(&conn, number).await?;
    // Only a version this binary serves may become active again.
    releases::bundle_of(&version)
        .map_err(|err| format!("version {number} does not validate against this binary:\n{err}"))?;
    let expected = policy_versions::active(&conn)
        .await
        .map_err(|e| e.to_string())?;
    let by = operator(by);
    policy_versions::rollback(&conn, expected, number, &by)
        .await
        .map_err(|e| e.to_string())?;
    signal_policies(&conn).await;
    println!(
        "version {number} ({}) is the active version again (rolled back from {} by {by})",
        version.content_hash,
        expected.map_or_else(|| "none".to_owned(), |n| n.to_string())
    );
    Ok(())
}
