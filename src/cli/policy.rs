//! The policy commands: validate, test, explain and format the policy folder, and print the
//! OpenAPI document it gives.

use std::path::PathBuf;

use uuid::Uuid;

use super::analysis;
use super::args::{ExplainVia, PolicyCommand};
use super::common::{CliResult, active_bundle, load_policies, open_db, user_by_email};
use super::options::{DbArgs, PolicyArgs};
use crate::authz::{
    Action, AuthContext, AuthMethod, FlowAsk, FlowJudgement, Query, Resource, Subject, fixtures,
    judge_flow, outcome,
};
use crate::config::{DEFAULT_MAX_TOKEN_SECONDS, PolicySource};
use crate::store::{self, TenantId, UserId};

pub(super) async fn policy(command: PolicyCommand) -> CliResult {
    match command {
        PolicyCommand::Validate { policy } => validate(&policy),
        PolicyCommand::Test { policy } => test(&policy),
        PolicyCommand::Explain {
            user,
            tenant,
            action,
            resource,
            via,
            read_only,
            policy_source,
            db,
            policy,
        } => {
            let auth = explain_auth(via, read_only)?;
            explain(
                &user,
                TenantId(tenant),
                &action,
                &resource,
                auth,
                &db,
                (policy_source, &policy),
            )
            .await
        }
        PolicyCommand::Publish {
            message,
            allow_new_access,
            by,
            db,
            policy,
        } => super::releases::publish(&policy, &message, allow_new_access, by, &db).await,
        PolicyCommand::Versions { db } => super::releases::versions(&db).await,
        PolicyCommand::Show { number, db } => super::releases::show(number, &db).await,
        PolicyCommand::Pull { number, dir, db } => super::releases::pull(number, &dir, &db).await,
        PolicyCommand::Rollback { number, by, db } => {
            super::releases::rollback(number, by, &db).await
        }
        PolicyCommand::Fmt { check, policy } => fmt(check, &policy),
        PolicyCommand::Diff { sets, format, db } => found(analysis::diff(&sets, format, &db).await),
        PolicyCommand::Analyze { policy, format } => {
            found(analysis::analyze(&policy, format).await)
        }
    }
}

/// A check's findings as a command's failure (exit 1); see [`super::exit_code`] for its own codes.
fn found(result: analysis::CheckResult) -> CliResult {
    match result? {
        false => Ok(()),
        true => Err(String::new()),
    }
}

/// `zygo openapi`.
pub(super) fn openapi(policy: &PolicyArgs) -> CliResult {
    let bundle = load_policies(policy)?;
    print!(
        "{}",
        crate::api::spec_json(bundle.roles(), DEFAULT_MAX_TOKEN_SECONDS)
    );
    Ok(())
}

fn validate(policy: &PolicyArgs) -> CliResult {
    let bundle = load_policies(policy)?;
    for warning in bundle.warnings() {
        eprintln!("{warning}");
    }
    println!(
        "{}: {} policies, roles {}, version {}",
        policy.policies.display(),
        bundle.policy_ids().len(),
        bundle
            .roles()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        bundle.version()
    );
    Ok(())
}

fn test(policy: &PolicyArgs) -> CliResult {
    let bundle = load_policies(policy)?;
    let outcomes = fixtures::run(&bundle, &policy.policies.join("tests"))?;
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed()).collect();
    for outcome in &outcomes {
        let case = &outcome.case;
        println!(
            "{:4}  {:<8} {:<18} {:<7} {:<6} expect {:<6} {}",
            if outcome.passed() { "ok" } else { "FAIL" },
            case.role.as_deref().unwrap_or("(none)"),
            case.action,
            case.resource,
            format!("{:?}", case.place).to_lowercase(),
            format!("{:?}", case.expect),
            case.who.as_deref().unwrap_or("")
        );
        if !outcome.passed() {
            println!(
                "      got {:?}; determining policies: [{}]; errors: [{}]",
                outcome.actual,
                outcome.reasons.join(", "),
                outcome.errors.join("; ")
            );
        }
    }
    println!(
        "{} passed, {} failed",
        outcomes.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} decision fixtures failed", failed.len()))
    }
}

/// How `policy explain` asks: `--via` and `--read-only` as the policies' `context.auth`.
fn explain_auth(via: ExplainVia, read_only: bool) -> Result<AuthContext, String> {
    if read_only && via == ExplainVia::Session {
        return Err("--read-only applies to tokens: add --via token".into());
    }
    Ok(AuthContext {
        method: match via {
            ExplainVia::Session => AuthMethod::Session,
            ExplainVia::Token => AuthMethod::Token,
        },
        read_only,
    })
}

async fn explain(
    email: &str,
    tenant: TenantId,
    action: &str,
    resource: &str,
    auth: AuthContext,
    db: &DbArgs,
    (source, policy): (PolicySource, &PolicyArgs),
) -> CliResult {
    let conn = open_db(db).await?;
    let bundle = match source {
        PolicySource::Folder => load_policies(policy)?,
        PolicySource::Database => active_bundle(&conn).await?.1,
    };
    let action = Action::parse(action).ok_or_else(|| {
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        format!(
            "`{action}` is not an action (actions: {})",
            names.join(", ")
        )
    })?;
    let (kind, id) = resource
        .split_once(':')
        .ok_or("--resource must be TYPE:ID, for example Flow:9f0c…")?;
    let id = Uuid::parse_str(id).map_err(|_| format!("`{id}` is not a UUID"))?;
    let user = user_by_email(&conn, email).await?;
    let role = store::members::role_of(&conn, tenant, user)
        .await
        .map_err(|e| e.to_string())?;
    let mut flow = None;
    let (resource, resource_tenant, missing_flow) = match kind {
        "Tenant" => (Resource::Tenant, TenantId(id), false),
        "Flow" => {
            flow = store::flows::find(&conn, tenant, id)
                .await
                .map_err(|e| e.to_string())?;
            (Resource::Flow(id), tenant, flow.is_none())
        }
        "Member" => (Resource::Member(UserId(id)), tenant, false),
        other => {
            return Err(format!(
                "`{other}` is not a resource type (Tenant, Flow, Member)"
            ));
        }
    };
    // The policies' own decision, shown for a flow that exists or not (a missing flow has no
    // owner, labels or shares); what the service answers follows `authz::judge_flow` below.
    let decision = bundle.decide(&Query {
        user,
        role: role.as_deref(),
        action,
        tenant,
        resource,
        resource_tenant,
        auth,
        flow: flow.as_ref().map(|f| &f.attrs),
    });
    let none = || "(none)".to_owned();
    if let Some(flow) = &flow {
        let users = |users: &[UserId]| -> String {
            let ids: Vec<String> = users.iter().map(|u| u.to_string()).collect();
            format!("[{}]", ids.join(", "))
        };
        println!(
            "flow: owner {}, labels [{}], editors {}, readers {}",
            flow.attrs
                .owner
                .map_or_else(|| "(none)".to_owned(), |u| u.to_string()),
            flow.attrs.labels.join(", "),
            users(&flow.attrs.editors),
            users(&flow.attrs.readers),
        );
    }
    println!(
        "decision: {}",
        if decision.allowed { "Allow" } else { "Deny" }
    );
    println!(
        "role: {}",
        role.clone().unwrap_or_else(|| "(not a member)".into())
    );
    println!(
        "determining policies: {}",
        Some(decision.reasons.join(", "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(none)
    );
    println!(
        "errors: {}",
        Some(decision.errors.join("; "))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(none)
    );
    let status = |err: crate::error::ApiError| format!("{} {}", err.status().as_u16(), err.code());
    let answer = match resource {
        // The same rule as the flow operations (`authz::judge_flow`): not a member, no such flow,
        // or a flow the user may not read are one 404.
        Resource::Flow(id) => {
            let subject = Subject {
                user,
                role: role.as_deref(),
                tenant,
                auth,
            };
            let ask = FlowAsk {
                action,
                id,
                flow: flow.as_ref().map(|f| &f.attrs),
            };
            match judge_flow(&bundle, &subject, false, ask) {
                (_, Ok(())) => "allowed".to_owned(),
                (Some(FlowJudgement::Hidden), Err(err)) => format!(
                    "{} ({})",
                    status(err),
                    if missing_flow {
                        "there is no such flow in this tenant"
                    } else {
                        "a flow you may not read is answered like a missing one"
                    }
                ),
                (_, Err(err)) => status(err),
            }
        }
        _ => match outcome(&decision, role.as_deref(), action, resource, false) {
            Ok(()) => "allowed".to_owned(),
            Err(err) => status(err),
        },
    };
    println!("the service would answer (token request): {answer}");
    match bundle.release() {
        Some(number) => println!(
            "policy version: {} (published version {number})",
            bundle.version()
        ),
        None => println!(
            "policy version: {} (folder {})",
            bundle.version(),
            policy.policies.display()
        ),
    }
    Ok(())
}

fn fmt(check: bool, policy: &PolicyArgs) -> CliResult {
    let config = cedar_policy_formatter::Config {
        line_width: 80,
        indent_width: 2,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&policy.policies)
        .map_err(|e| format!("{}: {e}", policy.policies.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "cedar"))
        .collect();
    files.sort();
    let mut unformatted = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let pretty = cedar_policy_formatter::policies_str_to_pretty(&text, &config)
            .map_err(|e| format!("{}: cannot format: {e}", file.display()))?;
        if pretty != text {
            if check {
                println!("{}: not formatted", file.display());
            } else {
                std::fs::write(&file, pretty).map_err(|e| format!("{}: {e}", file.display()))?;
                println!("{}: formatted", file.display());
            }
            unformatted.push(file);
        }
    }
    if check && !unformatted.is_empty() {
        return Err(format!(
            "{} policy files are not formatted; run `zygo policy fmt`",
            unformatted.len()
        ));
    }
    Ok(())
}
