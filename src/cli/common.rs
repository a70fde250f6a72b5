//! What the commands share: the result they print, and opening the policies (a folder or a
//! published version) and the database.

use super::options::{DbArgs, PolicyArgs};
use crate::authz::{PolicyBundle, releases};
use crate::store::{self, UserId, policy_versions};

/// A user mistake or an operational failure, printed as one sentence.
pub type CliResult = Result<(), String>;

pub fn load_policies(args: &PolicyArgs) -> Result<PolicyBundle, String> {
    PolicyBundle::load(&args.policies).map_err(|err| {
        format!(
            "the policies in {} do not validate:\n{err}",
            args.policies.display()
        )
    })
}

pub async fn open_db(args: &DbArgs) -> Result<sea_orm::DatabaseConnection, String> {
    store::open(&args.settings())
        .await
        .map_err(|e| e.to_string())
}

/// The database, which must already exist: for commands that check or take what is there (a
/// mistyped `--data-dir` is an error, not a new empty database that looks intact).
pub async fn open_existing_db(args: &DbArgs) -> Result<sea_orm::DatabaseConnection, String> {
    let settings = args.settings();
    if let Some(path) = store::sqlite_file(&settings.url)
        && !path.is_file()
    {
        return Err(format!(
            "there is no database at {} (see --data-dir and --database-url)",
            path.display()
        ));
    }
    open_db(args).await
}

pub async fn user_by_email(
    db: &sea_orm::DatabaseConnection,
    email: &str,
) -> Result<UserId, String> {
    store::users::find_by_email(db, email)
        .await
        .map_err(|e| e.to_string())?
        .map(|u| UserId(u.id))
        .ok_or_else(|| format!("no user with e-mail {email}"))
}

/// The active published version, as a validated set (`None`: nothing published yet).
pub async fn active_set(
    conn: &sea_orm::DatabaseConnection,
) -> Result<Option<(i64, Result<PolicyBundle, String>)>, String> {
    let Some(number) = policy_versions::active(conn)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let version = policy_versions::find(conn, number)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the active version {number} is missing"))?;
    Ok(Some((
        number,
        releases::bundle_of(&version).map_err(|e| e.to_string()),
    )))
}

/// The active published version, which must validate here.
pub async fn active_bundle(
    conn: &sea_orm::DatabaseConnection,
) -> Result<(i64, PolicyBundle), String> {
    match active_set(conn).await? {
        None => Err("no policy version is published yet (zygo policy publish)".into()),
        Some((number, Ok(bundle))) => Ok((number, bundle)),
        Some((number, Err(err))) => Err(format!(
            "the active version {number} does not validate against this binary:\n{err}"
        )),
    }
}

/// A policy set named on the command line: a published version (a number) or a folder; with a
/// version, its label says so.
pub async fn named_set(name: &str, db: &DbArgs) -> Result<(String, PolicyBundle), String> {
    match name.parse::<i64>() {
        Ok(number) => {
            let conn = open_db(db).await?;
            let version = policy_versions::find(&conn, number)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("there is no policy version {number}"))?;
            let bundle = releases::bundle_of(&version).map_err(|err| {
                format!("version {number} does not validate against this binary:\n{err}")
            })?;
            Ok((format!("version {number}"), bundle))
        }
        Err(_) => {
            let policies = std::path::PathBuf::from(name);
            let bundle = load_policies(&PolicyArgs {
                policies: policies.clone(),
            })?;
            Ok((format!("folder {}", policies.display()), bundle))
        }
    }
}

/// The active published version, labelled for the reader.
pub async fn active_labelled(db: &DbArgs) -> Result<(String, PolicyBundle), String> {
    let conn = open_db(db).await?;
    let (number, bundle) = active_bundle(&conn).await?;
    Ok((format!("version {number} (active)"), bundle))
}
