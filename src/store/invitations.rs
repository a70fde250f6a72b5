//! Invitations: a role in a tenant offered to a user, who becomes a member only by accepting it.
//!
//! Adding a user through the API never makes them a member: it leaves an invitation that only the
//! invitee sees. For an id that names no user nothing is written, and the caller is answered the
//! same as for a real user, so the API never tells which ids exist. Operators (`zygo member set`)
//! still add members directly.
//!
//! An invitation is only as good as the reasons for it: it expires (a lifetime counted from when
//! it was made or last renewed), it goes with its inviter when they leave the tenant (see
//! [`super::members::remove`]), and accepting decides again whether the inviter may still give
//! the role (see [`accept`]).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryTrait,
    Set, TransactionTrait,
};

use super::audit::{self, Actor, Event, action};
use super::entities::{invitation, membership, tenant, user};
use super::members::{ChangeError, lock_roles};
use super::page::{Keyset, Position, Rows};
use super::{TenantId, UserId};

/// An invitation as its invitee sees it.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub role: String,
    /// Who invited; `None` once that user is gone.
    pub invited_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
}

/// What `PUT …/members/{user_id}` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The user is a member: their role was changed.
    Updated,
    /// The user is not a member: invited with the role (or, for an id that names no user,
    /// nothing at all; the two are not told apart).
    Invited,
}

/// The instant before which an invitation has expired, judged at `now` for invitations that live
/// `lifetime` (capped at a century, so the subtraction cannot overflow).
pub fn issued_after(now: DateTime<Utc>, lifetime: std::time::Duration) -> DateTime<Utc> {
    let century = chrono::Duration::days(36_500);
    let lifetime = chrono::Duration::from_std(lifetime).map_or(century, |d| d.min(century));
    now - lifetime
}

/// Changes the role of a member (under the "keeps a manager" rule, as
/// [`super::members::set_role`]), or invites a user who is not a member: a pending invitation's
/// role and inviter are replaced. An id that names no user is answered [`Outcome::Invited`] and
/// nothing is written.
pub async fn set_role_or_invite(
    db: &DatabaseConnection,
    tenant: TenantId,
    user_id: UserId,
    role: &str,
    inviter: UserId,
    actor: &Actor,
    keeps_manager: impl Fn(&[&str]) -> bool,
) -> Result<Outcome, ChangeError> {
    let target = format!("user:{}", user_id.0);
    let txn = db.begin().await?;
    let current = lock_roles(&txn, tenant).await?;
    if let Some(model) = current.iter().find(|m| m.user_id == user_id.0).cloned() {
        let after: Vec<&str> = current
            .iter()
            .map(|m| {
                if m.user_id == user_id.0 {
                    role
                } else {
                    m.role.as_str()
                }
            })
            .collect();
        if !keeps_manager(&after) {
            return Err(ChangeError::LastManager);
        }
        let event = Event::new(Some(tenant), actor, action::MEMBER_ROLE_CHANGED, target)
            .before(serde_json::json!({ "role": model.role }))
            .after(serde_json::json!({ "role": role }));
        let change = membership::Entity::update_many()
            .col_expr(membership::Column::Role, Expr::value(role))
            .filter(membership::Column::TenantId.eq(tenant.0))
            .filter(membership::Column::UserId.eq(user_id.0))
            .build(txn.get_database_backend());
        audit::record_with(&txn, event, change).await?;
        txn.commit().await?;
        return Ok(Outcome::Updated);
    }
    // Whether the id names a user shows neither in the answer nor in its shape; only a real user
    // gets a row (one upsert: inviting again replaces the role and the inviter and renews the
    // lifetime, and two concurrent invitations cannot collide on the key).
    // Recorded whether or not the id names a user: the trail is read by the tenant's Admins, and
    // must not tell them more than the answer did.
    let event = Event::new(Some(tenant), actor, action::MEMBER_INVITED, target)
        .after(serde_json::json!({ "role": role }));
    if user::Entity::find_by_id(user_id.0)
        .one(&txn)
        .await?
        .is_some()
    {
        let upsert = invitation::Entity::insert(invitation::ActiveModel {
            tenant_id: Set(tenant.0),
            user_id: Set(user_id.0),
            role: Set(role.to_owned()),
            invited_by: Set(Some(inviter.0)),
            created_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::columns([invitation::Column::TenantId, invitation::Column::UserId])
                .update_columns([
                    invitation::Column::Role,
                    invitation::Column::InvitedBy,
                    invitation::Column::CreatedAt,
                ])
                .to_owned(),
        )
        .build(txn.get_database_backend());
        audit::record_with(&txn, event, upsert).await?;
    } else {
        audit::record(&txn, event).await?;
    }
    txn.commit().await?;
    Ok(Outcome::Invited)
}

/// Withdraws the invitation of `user` to the tenant, if there is one. The withdrawal is
/// recorded either way (the answer, and so the trail, does not tell whether there was one).
pub async fn withdraw(
    db: &DatabaseConnection,
    tenant: TenantId,
    user_id: UserId,
    actor: &Actor,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let event = Event::new(
        Some(tenant),
        actor,
        action::INVITATION_WITHDRAWN,
        format!("user:{}", user_id.0),
    );
    let withdrawn =
        invitation::Entity::delete_by_id((tenant.0, user_id.0)).build(txn.get_database_backend());
    let deleted = audit::record_with(&txn, event, withdrawn).await?;
    txn.commit().await?;
    Ok(deleted > 0)
}

/// The invitee declines the invitation to the tenant: it is gone. `false` when there is no
/// such invitation, or only one made before `issued_after` (expired: left to the purge).
pub async fn decline(
    db: &DatabaseConnection,
    tenant: TenantId,
    user_id: UserId,
    issued_after: DateTime<Utc>,
    actor: &Actor,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let deleted = invitation::Entity::delete_many()
        .filter(invitation::Column::TenantId.eq(tenant.0))
        .filter(invitation::Column::UserId.eq(user_id.0))
        .filter(invitation::Column::CreatedAt.gt(issued_after))
        .exec(&txn)
        .await?;
    if deleted.rows_affected > 0 {
        let event = Event::new(
            Some(tenant),
            actor,
            action::INVITATION_DECLINED,
            format!("user:{}", user_id.0),
        );
        audit::record(&txn, event).await?;
    }
    txn.commit().await?;
    Ok(deleted.rows_affected > 0)
}

/// A page of the invitations addressed to `user` made after `issued_after` (the others have
/// expired), oldest first.
pub async fn list_for_user(
    db: &impl ConnectionTrait,
    user_id: UserId,
    issued_after: DateTime<Utc>,
    page: Keyset,
) -> Result<Rows<Invitation>, DbErr> {
    let select = invitation::Entity::find()
        .filter(invitation::Column::UserId.eq(user_id.0))
        .filter(invitation::Column::CreatedAt.gt(issued_after));
    let rows = page
        .apply(
            select,
            invitation::Column::CreatedAt,
            invitation::Column::TenantId,
        )
        .find_also_related(tenant::Entity)
        .all(db)
        .await?;
    let rows = page.collect(rows, |(i, _)| Position {
        created_at: i.created_at,
        id: i.tenant_id,
    });
    Ok(Rows {
        // An invitation whose tenant vanished between the two reads is left out.
        items: rows
            .items
            .into_iter()
            .filter_map(|(i, t)| {
                t.map(|t| Invitation {
                    tenant_id: TenantId(t.id),
                    tenant_name: t.name,
                    role: i.role,
                    invited_by: i.invited_by.map(UserId),
                    created_at: i.created_at,
                })
            })
            .collect(),
        next: rows.next,
    })
}

/// Accepts the invitation of `user` to the tenant: they become a member with the invited role,
/// and the invitation is gone. Answers the tenant and the user's role there, or `None` when there
/// is no such invitation. A user who meanwhile became a member (an operator added them) keeps
/// their role: an invitation never changes an existing membership.
///
/// Accepting decides again whether the invitation still stands; when it does not, it is deleted
/// and the answer is `None`, as for no invitation. It stands only when it was made after
/// `issued_after` (not expired), its inviter still exists, is not disabled and is still a member
/// of the tenant, and `may_invite(inviter, inviter's role now, invited role)` (the policies,
/// asked by the caller) says the inviter could give that role now. The tenant's memberships are
/// locked first (the order every membership change keeps), so the inviter's role cannot change
/// and the inviter cannot leave between that decision and the new membership.
pub async fn accept(
    db: &DatabaseConnection,
    tenant: TenantId,
    user_id: UserId,
    issued_after: DateTime<Utc>,
    actor: &Actor,
    may_invite: impl Fn(UserId, &str, &str) -> bool,
) -> Result<Option<(tenant::Model, String)>, DbErr> {
    let txn = db.begin().await?;
    let roles = lock_roles(&txn, tenant).await?;
    let Some(pending) = invitation::Entity::find_by_id((tenant.0, user_id.0))
        .one(&txn)
        .await?
    else {
        return Ok(None);
    };
    // The delete claims the invitation: of two concurrent accepts (or an accept and a decline)
    // one deletes the row, the other waits for it and then finds nothing to accept.
    let claimed = invitation::Entity::delete_by_id((tenant.0, user_id.0))
        .exec(&txn)
        .await?;
    if claimed.rows_affected == 0 {
        return Ok(None);
    }
    let inviter = match pending.invited_by {
        Some(inviter) => user::Entity::find_by_id(inviter).one(&txn).await?,
        None => None,
    };
    let stands = pending.created_at > issued_after
        && inviter.is_some_and(|inviter| {
            !inviter.disabled
                && roles
                    .iter()
                    .find(|m| m.user_id == inviter.id)
                    .is_some_and(|m| may_invite(UserId(inviter.id), &m.role, &pending.role))
        });
    if !stands {
        // The invitation no longer stands: it is gone for good, and nothing else changes.
        txn.commit().await?;
        return Ok(None);
    }
    let Some(found) = tenant::Entity::find_by_id(tenant.0).one(&txn).await? else {
        return Ok(None);
    };
    let role = match roles.iter().find(|m| m.user_id == user_id.0) {
        Some(member) => member.role.clone(),
        None => {
            let joined = membership::Entity::insert(membership::ActiveModel {
                tenant_id: Set(tenant.0),
                user_id: Set(user_id.0),
                role: Set(pending.role.clone()),
                created_at: Set(Utc::now()),
            })
            .build(txn.get_database_backend());
            let event = Event::new(
                Some(tenant),
                actor,
                action::MEMBER_ADDED,
                format!("user:{}", user_id.0),
            )
            .after(serde_json::json!({
                "role": pending.role,
                "invited_by": pending.invited_by,
            }));
            audit::record_with(&txn, event, joined).await?;
            pending.role
        }
    };
    txn.commit().await?;
    Ok(Some((found, role)))
}
