//! Actions on the caller's own account — minting and revoking tokens, logging out everywhere,
//! changing the password — decided by the policies like everything else. The resource is the
//! caller's own `Zygo::User`; there is no tenant, so the context has none (`context.auth`, and
//! what the action needs to be judged: the token asked for, whether a revocation reaches another
//! family). The shipped rules are in `policies/account.cedar` and `policies/credentials.cedar`.
//!
//! These decisions are few and never on a hot path: each is evaluated against the whole policy
//! set, with the schema validating the request, and never remembered.

use std::collections::HashSet;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityUid, Request,
    RestrictedExpression,
};

use super::policies::PolicyBundle;
use super::types::{AuthContext, Decision};
use crate::store::UserId;

/// An action on the caller's own account, with what the policies need to judge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountAction {
    /// `GET /api/token`; `read_only` is the token asked for (`context.token.read_only`).
    MintToken { read_only: bool },
    /// `POST /api/token/revoke`; `own_family` when the token revoked is in the caller's own
    /// family (`context.own_family`; always false for a session, which has no family).
    RevokeToken { own_family: bool },
    /// `POST /api/logout-everywhere`.
    LogoutEverywhere,
    /// `PUT /api/me/password`.
    ChangePassword,
    /// `POST /api/invitations/{tenant_id}/accept` or `…/decline`.
    AnswerInvitation,
}

impl AccountAction {
    /// The names the schema declares, in order.
    pub const NAMES: [&'static str; 5] = [
        "MintToken",
        "RevokeToken",
        "LogoutEverywhere",
        "ChangePassword",
        "AnswerInvitation",
    ];

    pub fn name(self) -> &'static str {
        match self {
            AccountAction::MintToken { .. } => Self::NAMES[0],
            AccountAction::RevokeToken { .. } => Self::NAMES[1],
            AccountAction::LogoutEverywhere => Self::NAMES[2],
            AccountAction::ChangePassword => Self::NAMES[3],
            AccountAction::AnswerInvitation => Self::NAMES[4],
        }
    }

    fn context(self, auth: AuthContext) -> Result<Context, String> {
        let auth = RestrictedExpression::new_record([
            (
                "method".to_owned(),
                RestrictedExpression::new_string(auth.method.name().to_owned()),
            ),
            (
                "read_only".to_owned(),
                RestrictedExpression::new_bool(auth.read_only),
            ),
        ])
        .map_err(|e| e.to_string())?;
        let mut pairs = vec![("auth".to_owned(), auth)];
        match self {
            AccountAction::MintToken { read_only } => pairs.push((
                "token".to_owned(),
                RestrictedExpression::new_record([(
                    "read_only".to_owned(),
                    RestrictedExpression::new_bool(read_only),
                )])
                .map_err(|e| e.to_string())?,
            )),
            AccountAction::RevokeToken { own_family } => pairs.push((
                "own_family".to_owned(),
                RestrictedExpression::new_bool(own_family),
            )),
            AccountAction::LogoutEverywhere
            | AccountAction::ChangePassword
            | AccountAction::AnswerInvitation => {}
        }
        Context::from_pairs(pairs).map_err(|e| e.to_string())
    }
}

impl PolicyBundle {
    /// May `user`, authenticated as `auth`, do `action` to their own account? Any error (a
    /// schema that does not declare the action, an evaluation error) is a Deny that says why.
    pub fn decide_account(
        &self,
        user: UserId,
        auth: AuthContext,
        action: AccountAction,
    ) -> Decision {
        self.try_decide_account(user, auth, action)
            .unwrap_or_else(Decision::deny)
    }

    fn try_decide_account(
        &self,
        user: UserId,
        auth: AuthContext,
        action: AccountAction,
    ) -> Result<Decision, String> {
        let principal = self.names.user(user);
        let action_uid = EntityUid::from_str(&format!("Zygo::Action::\"{}\"", action.name()))
            .map_err(|e| e.to_string())?;
        let request = Request::new(
            principal.clone(),
            action_uid,
            principal.clone(),
            action.context(auth)?,
            Some(&self.schema),
        )
        .map_err(|e| format!("{}: {e}", action.name()))?;
        // The caller has no role here: account actions belong to no tenant.
        let entities: Entities = self
            .base_entities
            .clone()
            .add_entities([Entity::new_no_attrs(principal, HashSet::new())], None)
            .map_err(|e| e.to_string())?;
        let response = Authorizer::new().is_authorized(&request, &self.policies, &entities);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        let mut reasons: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        reasons.sort_unstable();
        Ok(Decision {
            allowed: response.decision() == CedarDecision::Allow && errors.is_empty(),
            reasons,
            errors,
        })
    }
}
