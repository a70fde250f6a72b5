//! The admin commands: users, tenants and memberships, straight against the database (they may
//! run next to a live server, which they signal).

use std::io::BufRead;

use uuid::Uuid;

use super::args::{MemberCommand, TenantCommand, UserCommand};
use super::common::{CliResult, load_policies, open_db, user_by_email};
use super::options::{DbArgs, PolicyArgs};
use crate::auth::password;
use crate::authz::PolicyBundle;
use crate::config::Settings;
use crate::invalidation::{self, Key};
use crate::store::audit::{self, Actor, Origin};
use crate::store::{self, TenantId, members::ChangeError};

/// Where the operator's changes come from, for their audit events: the command line (no request,
/// no client address), with the version of the policy folder it checked the change against.
fn origin(bundle: Option<&PolicyBundle>) -> Origin {
    Origin {
        request_id: None,
        client: None,
        policy_version: bundle.map(|b| b.version().into()),
    }
}

pub(super) async fn tenant(command: TenantCommand) -> CliResult {
    match command {
        TenantCommand::Add {
            name,
            admin,
            db,
            policy,
        } => tenant_add(&name, &admin, &db, &policy).await,
    }
}

async fn tenant_add(name: &str, admin: &str, db: &DbArgs, policy: &PolicyArgs) -> CliResult {
    let bundle = load_policies(policy)?;
    let role = Settings::new(db.settings()).creator_role;
    if !bundle.roles().contains(&role) {
        return Err(format!(
            "the creator role `{role}` is not defined by the policies"
        ));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err("the tenant name must be 1 to 200 characters".into());
    }
    let conn = open_db(db).await?;
    let user = user_by_email(&conn, admin).await?;
    let id = TenantId(Uuid::new_v4());
    let actor = Actor::cli();
    let create = store::tenants::create(&conn, id, name, user, &role, &actor);
    audit::ORIGIN
        .scope(origin(Some(&bundle)), create)
        .await
        .map_err(|e| e.to_string())?;
    println!("{id}");
    Ok(())
}

pub(super) async fn user(command: UserCommand) -> CliResult {
    match command {
        UserCommand::Add {
            email,
            password,
            db,
        } => {
            let email = store::users::normalize_email(&email);
            if !email.contains('@') || email.len() > 320 {
                return Err(format!("`{email}` is not an e-mail address"));
            }
            let password = match password {
                Some(p) if !p.is_empty() => p,
                Some(_) => return Err("the password is empty".into()),
                None => read_password()?,
            };
            if password.chars().count() < password::MIN_PASSWORD_CHARS {
                return Err(format!(
                    "the password must be at least {} characters",
                    password::MIN_PASSWORD_CHARS
                ));
            }
            let hash = password::hash(&password)?;
            let conn = open_db(&db).await?;
            let user = store::users::create(&conn, &email, hash)
                .await
                .map_err(|e| {
                    if store::is_unique_violation(&e) {
                        format!("a user with e-mail {email} already exists")
                    } else {
                        e.to_string()
                    }
                })?;
            println!("{}", user.id);
            Ok(())
        }
        UserCommand::Disable { email, db } => set_disabled(&email, &db, true).await,
        UserCommand::Enable { email, db } => set_disabled(&email, &db, false).await,
    }
}

async fn set_disabled(email: &str, db: &DbArgs, disable: bool) -> CliResult {
    let conn = open_db(db).await?;
    let user = user_by_email(&conn, email).await?;
    // Disabling is a kill switch: every session and token issued so far stays dead even if the
    // account is enabled again later (enabling never moves `credentials_valid_after` back).
    let actor = Actor::cli();
    let change = store::users::set_disabled_ending_credentials(&conn, user, disable, &actor);
    audit::ORIGIN
        .scope(origin(None), change)
        .await
        .map_err(|e| e.to_string())?;
    signal(&conn, Key::User(user)).await;
    Ok(())
}

/// Tells running servers (PostgreSQL) to drop what they cached about `key`. The change has
/// committed either way; a lost signal only means the servers' cache TTL bounds it instead.
async fn signal(conn: &sea_orm::DatabaseConnection, key: Key) {
    if let Err(err) = invalidation::publish(conn, &[key]).await {
        eprintln!(
            "warning: done, but running servers were not signalled ({err}); they see the change within their cache TTL"
        );
    }
}

pub(super) async fn member(command: MemberCommand) -> CliResult {
    match command {
        MemberCommand::Set {
            tenant_id,
            email,
            role,
            db,
            policy,
        } => {
            let bundle = load_policies(&policy)?;
            if !bundle.roles().contains(&role) {
                let defined: Vec<_> = bundle.roles().iter().cloned().collect();
                return Err(format!(
                    "`{role}` is not a role defined by the policies (defined: {})",
                    defined.join(", ")
                ));
            }
            let conn = open_db(&db).await?;
            let tenant = TenantId(tenant_id);
            if store::tenants::find(&conn, tenant)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                return Err(format!("no tenant with id {tenant_id}"));
            }
            let user = user_by_email(&conn, &email).await?;
            let actor = Actor::cli();
            let change = store::members::set_role(&conn, tenant, user, &role, &actor, |roles| {
                bundle.keeps_manager(tenant, roles)
            });
            audit::ORIGIN
                .scope(origin(Some(&bundle)), change)
                .await
                .map_err(change_error)?;
            signal(&conn, Key::Role(user, tenant)).await;
            Ok(())
        }
        MemberCommand::Remove {
            tenant_id,
            email,
            db,
            policy,
        } => {
            let bundle = load_policies(&policy)?;
            let conn = open_db(&db).await?;
            let tenant = TenantId(tenant_id);
            let user = user_by_email(&conn, &email).await?;
            let actor = Actor::cli();
            let change = store::members::remove(&conn, tenant, user, &actor, |roles| {
                bundle.keeps_manager(tenant, roles)
            });
            audit::ORIGIN
                .scope(origin(Some(&bundle)), change)
                .await
                .map_err(change_error)?;
            signal(&conn, Key::Role(user, tenant)).await;
            Ok(())
        }
    }
}

fn change_error(err: ChangeError) -> String {
    match err {
        ChangeError::NoSuchUser => "no such user".into(),
        ChangeError::NotAMember => "that user is not a member of this tenant".into(),
        ChangeError::LastManager => {
            "refused: the tenant would be left without a member who can manage members".into()
        }
        ChangeError::Db(err) => err.to_string(),
    }
}

fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err("the password is empty: give it on standard input or with --password".into());
    }
    Ok(password)
}
