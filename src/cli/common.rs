//! What the commands share: the result they print, and opening the policies and the database.

use super::options::{DbArgs, PolicyArgs};
use crate::authz::PolicyBundle;
use crate::store::{self, UserId};

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
