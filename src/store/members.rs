//! Memberships: the role of a user in a tenant.
//!
//! Changes run in a transaction that re-reads the tenant's roles, so the rule "a tenant keeps at least
//! one member who can manage members" holds under concurrent changes (row locks on PostgreSQL, the
//! single writer connection on SQLite).

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Set,
    TransactionTrait,
};

use super::audit::{self, Actor, Event, action};
use super::entities::{flow, flow_share, invitation, membership, user};
use super::page::{Keyset, Position, Rows};
use super::{TenantId, UserId, supports_row_locks};

/// A member as listed in a tenant.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub role: String,
}

/// What a role change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Updated,
}

/// Why a membership change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no such user")]
    NoSuchUser,
    #[error("not a member")]
    NotAMember,
    #[error("the tenant would be left without a member who can manage members")]
    LastManager,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The user's role in the tenant, or `None` for a non-member (or a tenant that does not exist).
pub async fn role_of(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    user: UserId,
) -> Result<Option<String>, DbErr> {
    Ok(membership::Entity::find_by_id((tenant.0, user.0))
        .one(db)
        .await?
        .map(|m| m.role))
}

/// A page of the members of a tenant, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    page: Keyset,
) -> Result<Rows<Member>, DbErr> {
    let select = membership::Entity::find().filter(membership::Column::TenantId.eq(tenant.0));
    let rows = page
        .apply(
            select,
            membership::Column::CreatedAt,
            membership::Column::UserId,
        )
        .find_also_related(user::Entity)
        .all(db)
        .await?;
    let rows = page.collect(rows, |(m, _)| Position {
        created_at: m.created_at,
        id: m.user_id,
    });
    Ok(Rows {
        items: rows
            .items
            .into_iter()
            .filter_map(|(m, u)| {
                u.map(|u| Member {
                    user_id: UserId(u.id),
                    email: u.email,
                    role: m.role,
                })
            })
            .collect(),
        next: rows.next,
    })
}

/// One member of a tenant.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    user_id: UserId,
) -> Result<Option<Member>, DbErr> {
    Ok(membership::Entity::find_by_id((tenant.0, user_id.0))
        .find_also_related(user::Entity)
        .one(db)
        .await?
        .and_then(|(m, u)| {
            u.map(|u| Member {
                user_id: UserId(u.id),
                email: u.email,
                role: m.role,
            })
        }))
}

/// The tenant's memberships, locked for the rest of the transaction where the backend can.
pub(super) async fn lock_roles(
    txn: &DatabaseTransaction,
    tenant: TenantId,
) -> Result<Vec<membership::Model>, DbErr> {
    let mut query = membership::Entity::find().filter(membership::Column::TenantId.eq(tenant.0));
    if supports_row_locks(txn.get_database_backend()) {
        query = query.lock_exclusive();
    }
    query.all(txn).await
}

/// Adds `user` to the tenant with `role`, or changes its role, directly (the operators' CLI; the
/// API invites instead, see [`super::invitations`]); a pending invitation is dropped.
/// `keeps_manager` is asked whether the roles the tenant would have afterwards still include one
/// that can manage members.
pub async fn set_role(
    db: &DatabaseConnection,
    tenant: TenantId,
    user_id: UserId,
    role: &str,
    actor: &Actor,
    keeps_manager: impl Fn(&[&str]) -> bool,
) -> Result<Change, ChangeError> {
    let txn = db.begin().await?;
    if user::Entity::find_by_id(user_id.0)
        .one(&txn)
        .await?
        .is_none()
    {
        return Err(ChangeError::NoSuchUser);
    }
    let current = lock_roles(&txn, tenant).await?;
    let existing = current.iter().find(|m| m.user_id == user_id.0).cloned();
    let after: Vec<&str> = current
        .iter()
        .map(|m| {
            if m.user_id == user_id.0 {
                role
            } else {
                m.role.as_str()
            }
        })
        .chain(existing.is_none().then_some(role))
        .collect();
    if !keeps_manager(&after) {
        return Err(ChangeError::LastManager);
    }
    let target = format!("user:{}", user_id.0);
    let (change, event) = match existing {
        Some(model) => {
            let event = Event::new(Some(tenant), actor, action::MEMBER_ROLE_CHANGED, target)
                .before(serde_json::json!({ "role": model.role }))
                .after(serde_json::json!({ "role": role }));
            let mut active: membership::ActiveModel = model.into();
            active.role = Set(role.to_owned());
            active.update(&txn).await?;
            (Change::Updated, event)
        }
        None => {
            membership::ActiveModel {
                tenant_id: Set(tenant.0),
                user_id: Set(user_id.0),
                role: Set(role.to_owned()),
                created_at: Set(Utc::now()),
            }
            .insert(&txn)
            .await?;
            let event = Event::new(Some(tenant), actor, action::MEMBER_ADDED, target)
                .after(serde_json::json!({ "role": role }));
            (Change::Added, event)
        }
    };
    // A direct change (an operator's) settles the question an invitation asked; the event goes
    // with that statement.
    let settled =
        invitation::Entity::delete_by_id((tenant.0, user_id.0)).build(txn.get_database_backend());
    audit::record_with(&txn, event, settled).await?;
    txn.commit().await?;
    Ok(change)
}

/// Removes `user` from the tenant, under the same rule as [`set_role`], and in the same
/// transaction ends what the membership gave: the user's shares of the tenant's flows are
/// deleted, and the flows it owns stay in the tenant without an owner (Admins keep them; the
/// policies see the nil user, whom no caller is). Someone added again later therefore starts
/// with its role alone: no share and no flow of its own. The invitations the user issued in the
/// tenant are deleted too: a removed member leaves no way back in behind them.
pub async fn remove(
    db: &DatabaseConnection,
    tenant: TenantId,
    user_id: UserId,
    actor: &Actor,
    keeps_manager: impl Fn(&[&str]) -> bool,
) -> Result<(), ChangeError> {
    let txn = db.begin().await?;
    let current = lock_roles(&txn, tenant).await?;
    let Some(removed) = current.iter().find(|m| m.user_id == user_id.0) else {
        return Err(ChangeError::NotAMember);
    };
    let event = Event::new(
        Some(tenant),
        actor,
        action::MEMBER_REMOVED,
        format!("user:{}", user_id.0),
    )
    .before(serde_json::json!({ "role": removed.role }));
    let after: Vec<&str> = current
        .iter()
        .filter(|m| m.user_id != user_id.0)
        .map(|m| m.role.as_str())
        .collect();
    if !keeps_manager(&after) {
        return Err(ChangeError::LastManager);
    }
    membership::Entity::delete_by_id((tenant.0, user_id.0))
        .exec(&txn)
        .await?;
    end_flow_rights(&txn, tenant, user_id).await?;
    let issued = invitation::Entity::delete_many()
        .filter(invitation::Column::TenantId.eq(tenant.0))
        .filter(invitation::Column::InvitedBy.eq(user_id.0))
        .build(txn.get_database_backend());
    audit::record_with(&txn, event, issued).await?;
    txn.commit().await?;
    Ok(())
}

/// Deletes `user`'s shares of the tenant's flows and takes it off as owner of the tenant's
/// flows. On PostgreSQL the flows concerned are locked first (memberships were locked before,
/// the order every flow change keeps), so a change being decided on one of them finishes before,
/// or decides after, on the flow without the user (see `flows::begin_change`).
async fn end_flow_rights(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    user: UserId,
) -> Result<(), DbErr> {
    let held = Query::select()
        .column(flow_share::Column::FlowId)
        .from(flow_share::Entity)
        .and_where(Expr::col(flow_share::Column::UserId).eq(user.0))
        .to_owned();
    if supports_row_locks(txn.get_database_backend()) {
        flow::Entity::find()
            .select_only()
            .column(flow::Column::Id)
            .filter(flow::Column::TenantId.eq(tenant.0))
            .filter(
                Condition::any()
                    .add(flow::Column::OwnerId.eq(user.0))
                    .add(flow::Column::Id.in_subquery(held.clone())),
            )
            .lock_exclusive()
            .into_tuple::<uuid::Uuid>()
            .all(txn)
            .await?;
    }
    let in_tenant = Query::select()
        .column(flow::Column::Id)
        .from(flow::Entity)
        .and_where(Expr::col(flow::Column::TenantId).eq(tenant.0))
        .to_owned();
    flow_share::Entity::delete_many()
        .filter(flow_share::Column::UserId.eq(user.0))
        .filter(flow_share::Column::FlowId.in_subquery(in_tenant))
        .exec(txn)
        .await?;
    flow::Entity::update_many()
        .col_expr(
            flow::Column::OwnerId,
            Expr::value(Option::<uuid::Uuid>::None),
        )
        .filter(flow::Column::TenantId.eq(tenant.0))
        .filter(flow::Column::OwnerId.eq(user.0))
        .exec(txn)
        .await?;
    Ok(())
}
