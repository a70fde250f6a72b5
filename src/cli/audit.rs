//! `zygo audit verify`, `zygo audit export` and `zygo audit archive`: the audit trail checked,
//! handed to a SIEM as OCSF JSON lines (the mapping, field by field, is in `docs/audit.md`), and
//! its oldest events deleted without breaking a chain.

use std::io::Write;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::args::AuditCommand;
use super::common::{CliResult, open_existing_db};
use crate::store::TenantId;
use crate::store::audit::{self, Actor, AuditEvent, action};

/// `--tenant` must name a tenant or a chain the trail holds: a typo is an error, not an empty
/// (and so "intact") chain.
async fn known(conn: &sea_orm::DatabaseConnection, tenant: Option<uuid::Uuid>) -> CliResult {
    let Some(id) = tenant else {
        return Ok(());
    };
    match audit::chain_known(conn, TenantId(id)).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "--tenant: no tenant and no audit chain has the id {id}"
        )),
        Err(err) => Err(message(err)),
    }
}

/// A store error as the operator reads it, without the database layer's prefix.
fn message(err: sea_orm::DbErr) -> String {
    match err {
        sea_orm::DbErr::Custom(text) => text,
        other => other.to_string(),
    }
}

pub(super) async fn audit(command: AuditCommand) -> CliResult {
    match command {
        AuditCommand::Verify { tenant, db } => {
            let conn = open_existing_db(&db).await?;
            known(&conn, tenant).await?;
            let reports = audit::verify_snapshot(&conn, tenant.map(TenantId))
                .await
                .map_err(|e| e.to_string())?;
            let mut first_broken = None;
            let mut lines = Vec::with_capacity(reports.len());
            for report in &reports {
                let archived = match (report.archived, report.recorded_by) {
                    (0, _) => String::new(),
                    (seq, Some(by)) => {
                        format!(
                            " after the checkpoint at event {seq} (recorded by account event {by})"
                        )
                    }
                    (seq, None) => format!(" after the checkpoint at event {seq}"),
                };
                lines.push(match &report.broken {
                    None => format!(
                        "{}: {}{archived}, intact; head {}",
                        report.chain,
                        events(report.events),
                        report.head.as_deref().unwrap_or("(empty)")
                    ),
                    Some(broken) => {
                        first_broken.get_or_insert(broken.clone());
                        format!(
                            "{}: {}{archived}; event {} (id {}) {}",
                            report.chain,
                            events(report.events),
                            broken.seq,
                            broken.id,
                            broken.flaw
                        )
                    }
                });
            }
            print_lines(&lines).map_err(|e| format!("cannot write the report: {e}"))?;
            match first_broken {
                None => Ok(()),
                Some(broken) => Err(format!(
                    "the audit trail was tampered with: chain {}, event {} (id {}) {}",
                    broken.chain, broken.seq, broken.id, broken.flaw
                )),
            }
        }
        AuditCommand::Archive { before, tenant, db } => {
            let before = parse_instant("--before", &before)?;
            if before > Utc::now() {
                return Err(format!(
                    "--before: {before} is in the future; an archive takes only events already \
                     written (and exported)"
                ));
            }
            let conn = open_existing_db(&db).await?;
            known(&conn, tenant).await?;
            let archived = audit::archive(&conn, before, tenant.map(TenantId), &Actor::cli())
                .await
                .map_err(message)?;
            let mut lines = Vec::with_capacity(archived.len().max(1));
            if archived.is_empty() {
                lines.push(format!(
                    "nothing to archive: no chain has events older than {before} but its last"
                ));
            }
            // Keep this output with the export: `verify` names these checkpoints and events.
            for done in archived {
                lines.push(if done.restated {
                    format!(
                        "{}: checkpoint at event {} (hash {}) restated by account event {}",
                        done.chain, done.seq, done.hash, done.recorded_by
                    )
                } else {
                    format!(
                        "{}: {} archived; the chain starts after event {} (hash {}), \
                         recorded by account event {}",
                        done.chain,
                        events(done.events),
                        done.seq,
                        done.hash,
                        done.recorded_by
                    )
                });
            }
            print_lines(&lines).map_err(|e| {
                format!(
                    "the archive is done, but its report could not be written ({e}); \
                     `zygo audit verify` lists each checkpoint and the account event that \
                     records it"
                )
            })
        }
        AuditCommand::Export { since, tenant, db } => {
            let since = parse_instant("--since", &since)?;
            let conn = open_existing_db(&db).await?;
            known(&conn, tenant).await?;
            // Chain by chain (the account chain, then each tenant's), each in its order.
            let chains = match tenant {
                Some(tenant) => vec![audit::chain_of(Some(TenantId(tenant)))],
                None => audit::stored_chains(&conn)
                    .await
                    .map_err(|e| e.to_string())?,
            };
            let mut out = std::io::stdout().lock();
            for chain in chains {
                let mut after = 0;
                loop {
                    let rows = audit::since(&conn, &chain, since, after, 1000)
                        .await
                        .map_err(|e| e.to_string())?;
                    for event in &rows.items {
                        writeln!(out, "{}", ocsf(event)).map_err(unwritten)?;
                    }
                    match rows.next {
                        Some(next) => after = next,
                        None => break,
                    }
                }
            }
            out.flush().map_err(unwritten)
        }
    }
}

/// The export could not be written (a closed pipe, a full disk): said as such.
fn unwritten(err: std::io::Error) -> String {
    format!("cannot write the export: {err}")
}

/// "1 event", "2 events".
fn events(count: impl Into<u64>) -> String {
    match count.into() {
        1 => "1 event".to_owned(),
        n => format!("{n} events"),
    }
}

/// Writes `lines` to standard output: a closed pipe or a full disk is an error to report, not
/// a panic.
fn print_lines(lines: &[String]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()
}

/// `--since` or `--before`: an RFC 3339 instant, or a date (midnight UTC).
fn parse_instant(flag: &str, text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .ok_or_else(|| {
            format!("{flag}: `{text}` is neither an RFC 3339 instant nor a date (YYYY-MM-DD)")
        })
}

/// OCSF class, activity and status of an action.
fn classify(name: &str) -> (u32, u32, &'static str, u32) {
    // (class_uid, activity_id, activity_name, status_id: 1 success, 2 failure)
    match name {
        action::LOGIN_SUCCEEDED => (3002, 1, "Logon", 1),
        action::LOGIN_FAILED => (3002, 1, "Logon", 2),
        action::LOGGED_OUT_EVERYWHERE => (3002, 2, "Logoff", 1),
        action::PASSWORD_CHANGED => (3001, 3, "Password Change", 1),
        action::USER_ENABLED => (3001, 2, "Enable", 1),
        action::USER_DISABLED => (3001, 5, "Disable", 1),
        action::TOKEN_MINTED => (3001, 1, "Create", 1),
        action::TOKEN_REVOKED => (3001, 6, "Delete", 1),
        action::MEMBER_ROLE_CHANGED => (3001, 7, "Attach Policy", 1),
        action::MEMBER_REMOVED => (3001, 8, "Detach Policy", 1),
        action::TENANT_CREATED | action::FLOW_CREATED | action::MEMBER_INVITED => {
            (3004, 1, "Create", 1)
        }
        action::MEMBER_ADDED => (3001, 7, "Attach Policy", 1),
        action::FLOW_CHANGED | action::FLOW_SHARED | action::FLOW_UNSHARED => {
            (3004, 3, "Update", 1)
        }
        action::FLOW_DELETED
        | action::INVITATION_WITHDRAWN
        | action::INVITATION_DECLINED
        | action::AUDIT_ARCHIVED => (3004, 4, "Delete", 1),
        _ => (3004, 99, "Other", 1),
    }
}

fn parse_json(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// One event as an OCSF 1.1 record (see `docs/audit.md`).
pub fn ocsf(event: &AuditEvent) -> Value {
    let (class_uid, activity_id, activity_name, status_id) = classify(&event.action);
    let class_name = match class_uid {
        3001 => "Account Change",
        3002 => "Authentication",
        _ => "Entity Management",
    };
    let target_user = event
        .target
        .as_deref()
        .and_then(|t| t.strip_prefix("user:"))
        .map(|uid| json!({ "uid": uid }));
    let mut record = json!({
        "category_uid": 3,
        "category_name": "Identity & Access Management",
        "class_uid": class_uid,
        "class_name": class_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "time": event.at.timestamp_millis(),
        "severity_id": 1,
        "status_id": status_id,
        "status": if status_id == 1 { "Success" } else { "Failure" },
        "message": event.action,
        "metadata": {
            "version": "1.1.0",
            "uid": event.id.to_string(),
            "correlation_uid": event.request_id,
            "log_name": "audit",
            "product": { "name": "Zygo", "vendor_name": "Zygo", "version": env!("CARGO_PKG_VERSION") },
        },
        "actor": {
            "user": event.actor_id.map(|u| json!({ "uid": u.to_string() })),
            "session": event.credential.as_deref().map(|c| json!({ "uid": c })),
        },
        "src_endpoint": event.client.as_deref().map(|ip| json!({ "ip": ip })),
        "unmapped": {
            "tenant_uid": event.tenant_id.map(|t| t.to_string()),
            "action": event.action,
            "target": event.target,
            "before": parse_json(event.before.as_deref()),
            "after": parse_json(event.after.as_deref()),
            "policy_version": event.policy_version,
            "chain": event.chain,
            "seq": event.seq,
            // The time as hashed (`time` above is in milliseconds): with it, each line can be
            // hashed again from the file alone (docs/audit.md, "Export").
            "at": event.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        },
    });
    if let Some(object) = record.as_object_mut() {
        match class_uid {
            3001 | 3002 => {
                object.insert("user".into(), target_user.unwrap_or(Value::Null));
            }
            _ => {
                let (kind, uid) = event
                    .target
                    .as_deref()
                    .and_then(|t| t.split_once(':'))
                    .unwrap_or(("", ""));
                object.insert(
                    "entity".into(),
                    json!({ "type": kind, "uid": uid, "data": parse_json(event.after.as_deref()) }),
                );
                object.insert(
                    "entity_result".into(),
                    json!({ "type": kind, "uid": uid, "data": parse_json(event.before.as_deref()) }),
                );
            }
        }
    }
    record
}
