//! Flows: tenant-owned documents with a JSON `definition`, an owner, labels and per-flow shares.
//! Every function takes the tenant.
//!
//! Labels and shares live in `flow_labels` and `flow_shares` (see the migration for why); a flow
//! is always read together with them, because the policies decide on them.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    DbErr, EntityTrait, FromQueryResult, QueryFilter, QuerySelect, Select, Set, TransactionTrait,
};
use serde_json::Value;
use uuid::Uuid;

use super::entities::{flow, flow_label, flow_share};
use super::page::{Keyset, Position, Rows};
use super::{TenantId, UserId};

/// What a share grants: reading the flow, or editing it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Edit,
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Edit => "edit",
        }
    }

    pub fn parse(name: &str) -> Option<Access> {
        match name {
            "read" => Some(Access::Read),
            "edit" => Some(Access::Edit),
            _ => None,
        }
    }
}

/// What the policies see of a flow besides its id and tenant (`Zygo::Flow`'s attributes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// The creator; `None` only for a flow that predates owners (see the migration).
    pub owner: Option<UserId>,
    /// Sorted, without duplicates.
    pub labels: Vec<String>,
    /// Users given `edit`, sorted.
    pub editors: Vec<UserId>,
    /// Users given `read`, sorted.
    pub readers: Vec<UserId>,
}

/// A flow with its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub definition: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attrs: Attributes,
}

impl Flow {
    fn of(row: flow::Model, attrs: Attributes) -> Flow {
        Flow {
            id: row.id,
            tenant_id: row.tenant_id,
            name: row.name,
            definition: row.definition,
            created_at: row.created_at,
            updated_at: row.updated_at,
            attrs: Attributes {
                owner: row.owner_id.map(UserId),
                ..attrs
            },
        }
    }

    pub fn position(&self) -> Position {
        Position {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// Fields to change; `None` keeps the stored value.
#[derive(Debug, Default)]
pub struct FlowChanges {
    pub name: Option<String>,
    pub definition: Option<Value>,
    /// Replaces every label when present.
    pub labels: Option<Vec<String>>,
}

/// A flow row with its labels and shares folded into two strings, so that a flow is always read
/// in one statement (one round trip, the same work whether or not it has labels or shares).
#[derive(Debug, FromQueryResult)]
struct Row {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    definition: Value,
    owner_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Labels separated by spaces (a label never holds one).
    labels: Option<String>,
    /// Shares separated by spaces, each the access's first letter and the user id in hex.
    shares: Option<String>,
}

/// The folded labels and shares of [`Row`] (also read by the direct SQLite path).
pub(super) fn unfold(labels: Option<&str>, shares: Option<&str>) -> Attributes {
    let mut attrs = Attributes::default();
    if let Some(labels) = labels.filter(|l| !l.is_empty()) {
        attrs.labels = labels.split(' ').map(str::to_owned).collect();
        attrs.labels.sort();
    }
    for share in shares.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        let (access, user) = share.split_at_checked(1).unwrap_or(("", ""));
        let Ok(user) = Uuid::try_parse(user) else {
            continue;
        };
        match access {
            "e" => attrs.editors.push(UserId(user)),
            "r" => attrs.readers.push(UserId(user)),
            _ => {}
        }
    }
    attrs.editors.sort();
    attrs.readers.sort();
    attrs
}

impl From<Row> for Flow {
    fn from(row: Row) -> Flow {
        Flow {
            id: row.id,
            tenant_id: row.tenant_id,
            name: row.name,
            definition: row.definition,
            created_at: row.created_at,
            updated_at: row.updated_at,
            attrs: Attributes {
                owner: row.owner_id.map(UserId),
                ..unfold(row.labels.as_deref(), row.shares.as_deref())
            },
        }
    }
}

/// A flow's labels folded into one string on PostgreSQL (see [`Row`]), for a row named `flows`.
pub(super) const PG_LABELS: &str =
    "(SELECT string_agg(label, ' ') FROM flow_labels WHERE flow_id = flows.id)";
/// A flow's shares folded into one string on PostgreSQL (see [`Row`]).
pub(super) const PG_SHARES: &str = "(SELECT string_agg(substr(access, 1, 1) || \
     replace(user_id::text, '-', ''), ' ') FROM flow_shares WHERE flow_id = flows.id)";

/// `SELECT flows.*, <labels>, <shares> FROM flows` on this backend.
fn select(backend: DbBackend) -> Select<flow::Entity> {
    let (labels, shares) = match backend {
        DbBackend::Postgres => (PG_LABELS, PG_SHARES),
        _ => (
            "(SELECT group_concat(label, ' ') FROM flow_labels WHERE flow_id = flows.id)",
            "(SELECT group_concat(substr(access, 1, 1) || hex(user_id), ' ') \
             FROM flow_shares WHERE flow_id = flows.id)",
        ),
    };
    flow::Entity::find()
        .column_as(Expr::cust(labels), "labels")
        .column_as(Expr::cust(shares), "shares")
}

/// A page of the tenant's flows that satisfy `filter` (a condition over `flows` and the label
/// and share tables, see [`Filter`]), oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    page: Keyset,
    filter: Condition,
) -> Result<Rows<Flow>, DbErr> {
    let select = select(db.get_database_backend())
        .filter(flow::Column::TenantId.eq(tenant.0))
        .filter(filter);
    let rows: Vec<Flow> = page
        .apply(select, flow::Column::CreatedAt, flow::Column::Id)
        .into_model::<Row>()
        .all(db)
        .await?
        .into_iter()
        .map(Flow::from)
        .collect();
    Ok(page.collect(rows, Flow::position))
}

/// Conditions on a flow row, for [`list`]: the SQL forms of what the policies ask of a flow.
pub enum Filter {}

impl Filter {
    /// The flow's id is `id`.
    pub fn id(id: Uuid) -> Condition {
        flow::Column::Id.eq(id).into_condition()
    }

    /// The flow's owner is `user` (never NULL, so the condition negates as Cedar's `!=` does).
    pub fn owner(user: Uuid) -> Condition {
        if user.is_nil() {
            // A flow without an owner is given the nil user (see `authz`).
            Condition::any()
                .add(flow::Column::OwnerId.is_null())
                .add(flow::Column::OwnerId.eq(user))
        } else {
            Condition::all()
                .add(flow::Column::OwnerId.is_not_null())
                .add(flow::Column::OwnerId.eq(user))
        }
    }

    /// The flow carries `label`.
    pub fn label(label: &str) -> Condition {
        Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(flow_label::Entity)
                .and_where(
                    Expr::col((flow_label::Entity, flow_label::Column::FlowId))
                        .equals((flow::Entity, flow::Column::Id)),
                )
                .and_where(Expr::col((flow_label::Entity, flow_label::Column::Label)).eq(label))
                .to_owned(),
        )
        .into_condition()
    }

    /// The flow carries at least one label.
    pub fn any_label() -> Condition {
        Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(flow_label::Entity)
                .and_where(
                    Expr::col((flow_label::Entity, flow_label::Column::FlowId))
                        .equals((flow::Entity, flow::Column::Id)),
                )
                .to_owned(),
        )
        .into_condition()
    }

    /// The flow is shared with `user` (with that access), or with anyone when `user` is `None`.
    pub fn shared(user: Option<Uuid>, access: Access) -> Condition {
        let mut select = Query::select();
        select
            .expr(Expr::val(1))
            .from(flow_share::Entity)
            .and_where(
                Expr::col((flow_share::Entity, flow_share::Column::FlowId))
                    .equals((flow::Entity, flow::Column::Id)),
            )
            .and_where(
                Expr::col((flow_share::Entity, flow_share::Column::Access)).eq(access.name()),
            );
        if let Some(user) = user {
            select.and_where(Expr::col((flow_share::Entity, flow_share::Column::UserId)).eq(user));
        }
        Expr::exists(select.to_owned()).into_condition()
    }
}

/// One flow of the tenant, with its attributes.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<Flow>, DbErr> {
    Ok(select(db.get_database_backend())
        .filter(flow::Column::Id.eq(id))
        .filter(flow::Column::TenantId.eq(tenant.0))
        .into_model::<Row>()
        .one(db)
        .await?
        .map(Flow::from))
}

async fn set_labels(
    db: &impl ConnectionTrait,
    flow: Uuid,
    labels: &[String],
) -> Result<Vec<String>, DbErr> {
    flow_label::Entity::delete_many()
        .filter(flow_label::Column::FlowId.eq(flow))
        .exec(db)
        .await?;
    let mut labels = labels.to_vec();
    labels.sort();
    labels.dedup();
    if !labels.is_empty() {
        flow_label::Entity::insert_many(labels.iter().map(|label| flow_label::ActiveModel {
            flow_id: Set(flow),
            label: Set(label.clone()),
        }))
        .exec(db)
        .await?;
    }
    Ok(labels)
}

/// A new flow owned by `owner`.
pub async fn create(
    db: &DatabaseConnection,
    tenant: TenantId,
    owner: UserId,
    name: &str,
    definition: Value,
    labels: &[String],
) -> Result<Flow, DbErr> {
    let now = Utc::now();
    let row = flow::ActiveModel {
        id: Set(Uuid::new_v4()),
        tenant_id: Set(tenant.0),
        name: Set(name.to_owned()),
        definition: Set(definition),
        owner_id: Set(Some(owner.0)),
        created_at: Set(now),
        updated_at: Set(now),
    };
    // One statement when there are no labels (the common case: writes queue on SQLite).
    if labels.is_empty() {
        return Ok(Flow::of(row.insert(db).await?, Attributes::default()));
    }
    let txn = db.begin().await?;
    let row = row.insert(&txn).await?;
    let labels = set_labels(&txn, row.id, labels).await?;
    txn.commit().await?;
    Ok(Flow::of(
        row,
        Attributes {
            labels,
            ..Attributes::default()
        },
    ))
}

/// Applies the changes; `None` when the flow does not exist in this tenant.
pub async fn update(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    changes: FlowChanges,
) -> Result<Option<Flow>, DbErr> {
    let Some(existing) = flow::Entity::find_by_id(id)
        .filter(flow::Column::TenantId.eq(tenant.0))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    // Nothing to change: the flow stays as it is, `updated_at` included.
    if changes.name.is_none() && changes.definition.is_none() && changes.labels.is_none() {
        return find(db, tenant, id).await;
    }
    let mut active: flow::ActiveModel = existing.into();
    if let Some(name) = changes.name {
        active.name = Set(name);
    }
    if let Some(definition) = changes.definition {
        active.definition = Set(definition);
    }
    active.updated_at = Set(Utc::now());
    match &changes.labels {
        None => {
            active.update(db).await?;
        }
        // The row and its labels change together.
        Some(labels) => {
            let txn = db.begin().await?;
            active.update(&txn).await?;
            set_labels(&txn, id, labels).await?;
            txn.commit().await?;
        }
    }
    find(db, tenant, id).await
}

/// Deletes the flow (its labels and shares go with it); false when it does not exist in this
/// tenant.
pub async fn delete(db: &DatabaseConnection, tenant: TenantId, id: Uuid) -> Result<bool, DbErr> {
    let result = flow::Entity::delete_many()
        .filter(flow::Column::Id.eq(id))
        .filter(flow::Column::TenantId.eq(tenant.0))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Gives `user` the access to the flow (replacing a share it had); `false` when the flow does not
/// exist in this tenant.
pub async fn share(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    user: UserId,
    access: Access,
) -> Result<bool, DbErr> {
    set_share(db, tenant, id, user, Some(access)).await
}

/// Takes `user`'s share away (nothing happens when it had none); `false` when the flow does not
/// exist in this tenant.
pub async fn unshare(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    user: UserId,
) -> Result<bool, DbErr> {
    set_share(db, tenant, id, user, None).await
}

/// Replaces `user`'s share of the flow with `access` (none: no share), in one transaction.
async fn set_share(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    user: UserId,
    access: Option<Access>,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    if flow::Entity::find_by_id(id)
        .filter(flow::Column::TenantId.eq(tenant.0))
        .one(&txn)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    flow_share::Entity::delete_many()
        .filter(flow_share::Column::FlowId.eq(id))
        .filter(flow_share::Column::UserId.eq(user.0))
        .exec(&txn)
        .await?;
    if let Some(access) = access {
        flow_share::ActiveModel {
            flow_id: Set(id),
            user_id: Set(user.0),
            access: Set(access.name().to_owned()),
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(true)
}
