//! Flows: tenant-owned documents with a JSON `definition`, an owner, labels and per-flow shares.
//! Every function takes the tenant.
//!
//! Labels and shares live in `flow_labels` and `flow_shares` (see the migration for why); a flow
//! is always read together with them, because the policies decide on them.
//!
//! A definition travels as JSON text ([`Definition`]): written once as compact JSON (the size the
//! limit is checked on), stored as that text, and read back into the response without becoming a
//! tree. A page of flows stops at a byte budget of definitions as well as at its row limit.

use chrono::{DateTime, SubsecRound, Utc};
use futures_util::TryStreamExt;
use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, FromQueryResult, QueryFilter, QuerySelect, QueryTrait, Select, Set,
    StreamTrait, TransactionTrait,
};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::audit::{self, Actor, Event, action};
use super::entities::{flow, flow_label, flow_share, membership};
use super::page::{Keyset, Position, Rows};
use super::{TenantId, UserId, supports_row_locks};

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

/// A flow's definition: a JSON object kept as its text, never parsed into a tree on a read.
#[derive(Clone)]
pub struct Definition(Box<RawValue>);

impl Definition {
    /// The compact JSON of `value` (what is stored, and what the size limit is checked on).
    pub fn of(value: &impl serde::Serialize) -> Result<Definition, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Definition)
    }

    /// A definition as the database holds it. The text is checked to be JSON (a scan, no tree),
    /// so a response never carries anything else; a value that is not an object reads as `{}`.
    pub fn stored(text: String) -> Result<Definition, DbErr> {
        let raw = RawValue::from_string(text)
            .map_err(|err| DbErr::Type(format!("a stored flow definition is not JSON: {err}")))?;
        if raw.get().starts_with('{') {
            Ok(Definition(raw))
        } else {
            Ok(Definition::empty())
        }
    }

    /// `{}`.
    pub fn empty() -> Definition {
        Definition(serde_json::value::to_raw_value(&serde_json::Map::new()).unwrap_or_default())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The JSON text, to embed in a response as it is.
    pub fn raw(&self) -> &RawValue {
        &self.0
    }

    /// Bytes of JSON text.
    pub fn len(&self) -> usize {
        self.0.get().len()
    }

    /// Whether the text is empty (never, for a definition: it is at least `{}`).
    pub fn is_empty(&self) -> bool {
        self.0.get().is_empty()
    }
}

impl serde::Serialize for Definition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl PartialEq for Definition {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for Definition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Definition({} bytes)", self.len())
    }
}

/// A flow with its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub definition: Definition,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attrs: Attributes,
}

impl Flow {
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
    pub definition: Option<Definition>,
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
    definition: String,
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

impl TryFrom<Row> for Flow {
    type Error = DbErr;

    fn try_from(row: Row) -> Result<Flow, DbErr> {
        Ok(Flow {
            id: row.id,
            tenant_id: row.tenant_id,
            name: row.name,
            definition: Definition::stored(row.definition)?,
            created_at: row.created_at,
            updated_at: row.updated_at,
            attrs: Attributes {
                owner: row.owner_id.map(UserId),
                ..unfold(row.labels.as_deref(), row.shares.as_deref())
            },
        })
    }
}

/// A flow's attributes without the rest of the row (what a decision needs).
#[derive(Debug, FromQueryResult)]
struct AttributesRow {
    owner_id: Option<Uuid>,
    labels: Option<String>,
    shares: Option<String>,
}

/// A flow's labels folded into one string on PostgreSQL (see [`Row`]), for a row named `flows`.
pub(super) const PG_LABELS: &str =
    "(SELECT string_agg(label, ' ') FROM flow_labels WHERE flow_id = flows.id)";
/// A flow's shares folded into one string on PostgreSQL (see [`Row`]).
pub(super) const PG_SHARES: &str = "(SELECT string_agg(substr(access, 1, 1) || \
     replace(user_id::text, '-', ''), ' ') FROM flow_shares WHERE flow_id = flows.id)";

/// The labels and shares of a row named `flows`, folded (see [`Row`]), on this backend.
fn folded(backend: DbBackend) -> (&'static str, &'static str) {
    match backend {
        DbBackend::Postgres => (PG_LABELS, PG_SHARES),
        _ => (
            "(SELECT group_concat(label, ' ') FROM flow_labels WHERE flow_id = flows.id)",
            "(SELECT group_concat(substr(access, 1, 1) || hex(user_id), ' ') \
             FROM flow_shares WHERE flow_id = flows.id)",
        ),
    }
}

/// `SELECT flows.*, <labels>, <shares> FROM flows` on this backend.
fn select(backend: DbBackend) -> Select<flow::Entity> {
    let (labels, shares) = folded(backend);
    flow::Entity::find()
        .column_as(Expr::cust(labels), "labels")
        .column_as(Expr::cust(shares), "shares")
}

/// Where a page stops besides its row limit: the bytes of definitions it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteBudget(pub usize);

/// A page being filled under a row limit and a [`ByteBudget`].
pub struct Filling {
    limit: usize,
    budget: usize,
    bytes: usize,
    pub items: Vec<Flow>,
    /// The page is full: the next flow did not fit.
    pub full: bool,
}

impl Filling {
    pub fn new(limit: u64, budget: ByteBudget) -> Filling {
        Filling {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            budget: budget.0,
            bytes: 0,
            items: Vec::new(),
            full: false,
        }
    }

    /// Takes the flow, or marks the page full when it does not fit: the row limit is reached, or
    /// its definition would pass the budget. The first flow always fits, so every page moves the
    /// cursor on, whatever the sizes.
    pub fn offer(&mut self, flow: Flow) -> bool {
        let size = flow.definition.len();
        if self.full
            || self.items.len() >= self.limit
            || (!self.items.is_empty() && self.bytes.saturating_add(size) > self.budget)
        {
            self.full = true;
            return false;
        }
        self.bytes = self.bytes.saturating_add(size);
        self.items.push(flow);
        true
    }

    /// The page: its flows and, when it is full, the position to go on after.
    pub fn rows(self) -> Rows<Flow> {
        let next = if self.full {
            self.items.last().map(Flow::position)
        } else {
            None
        };
        Rows {
            items: self.items,
            next,
        }
    }
}

/// A page of the tenant's flows that satisfy `filter` (a condition over `flows` and the label
/// and share tables, see [`Filter`]), oldest first, of at most `page.limit` flows and `budget`
/// bytes of definitions (at least one flow). The rows are streamed: the page stops reading at
/// the first row that does not fit, so a page never holds more than the budget and one row.
pub async fn list(
    db: &(impl ConnectionTrait + StreamTrait),
    tenant: TenantId,
    page: Keyset,
    filter: Condition,
    budget: ByteBudget,
) -> Result<Rows<Flow>, DbErr> {
    let select = select(ConnectionTrait::get_database_backend(db))
        .filter(flow::Column::TenantId.eq(tenant.0))
        .filter(filter);
    let mut rows = page
        .apply(select, flow::Column::CreatedAt, flow::Column::Id)
        .into_model::<Row>()
        .stream(db)
        .await?;
    let mut filling = Filling::new(page.limit, budget);
    while let Some(row) = rows.try_next().await? {
        if !filling.offer(Flow::try_from(row)?) {
            break;
        }
    }
    Ok(filling.rows())
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
    select(db.get_database_backend())
        .filter(flow::Column::Id.eq(id))
        .filter(flow::Column::TenantId.eq(tenant.0))
        .into_model::<Row>()
        .one(db)
        .await?
        .map(Flow::try_from)
        .transpose()
}

/// The attributes of one flow of the tenant (owner, labels, shares), without its name or
/// definition: what a decision needs.
pub async fn find_attributes(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<Attributes>, DbErr> {
    let (labels, shares) = folded(db.get_database_backend());
    Ok(flow::Entity::find()
        .select_only()
        .column(flow::Column::OwnerId)
        .column_as(Expr::cust(labels), "labels")
        .column_as(Expr::cust(shares), "shares")
        .filter(flow::Column::Id.eq(id))
        .filter(flow::Column::TenantId.eq(tenant.0))
        .into_model::<AttributesRow>()
        .one(db)
        .await?
        .map(|row| Attributes {
            owner: row.owner_id.map(UserId),
            ..unfold(row.labels.as_deref(), row.shares.as_deref())
        }))
}

/// The labels as a flow keeps them: sorted, each once.
fn normalized(labels: &[String]) -> Vec<String> {
    let mut labels = labels.to_vec();
    labels.sort();
    labels.dedup();
    labels
}

/// Replaces the flow's labels with `labels` (see [`normalized`]).
async fn set_labels(db: &impl ConnectionTrait, flow: Uuid, labels: &[String]) -> Result<(), DbErr> {
    flow_label::Entity::delete_many()
        .filter(flow_label::Column::FlowId.eq(flow))
        .exec(db)
        .await?;
    add_labels(db, flow, labels).await
}

/// Gives the flow `labels` (see [`normalized`]) besides those it has.
async fn add_labels(db: &impl ConnectionTrait, flow: Uuid, labels: &[String]) -> Result<(), DbErr> {
    if !labels.is_empty() {
        flow_label::Entity::insert_many(labels.iter().map(|label| flow_label::ActiveModel {
            flow_id: Set(flow),
            label: Set(label.clone()),
        }))
        .exec(db)
        .await?;
    }
    Ok(())
}

/// A new flow owned by `owner`. The definition is anything that serialises to a JSON object
/// (a [`Definition`] already checked by the caller, or a `serde_json::Value`).
pub async fn create(
    db: &DatabaseConnection,
    tenant: TenantId,
    owner: UserId,
    name: &str,
    definition: impl serde::Serialize,
    labels: &[String],
    actor: &Actor,
) -> Result<Flow, DbErr> {
    let definition = Definition::of(&definition)
        .map_err(|err| DbErr::Custom(format!("a flow definition is not JSON: {err}")))?;
    // In microseconds, as both databases keep it: the flow answered is the flow stored.
    let now = Utc::now().trunc_subsecs(6);
    let id = Uuid::new_v4();
    let labels = normalized(labels);
    let txn = db.begin().await?;
    // The name and labels, never the definition (it may be large, and is the tenant's data).
    let event = Event::new(
        Some(tenant),
        actor,
        action::FLOW_CREATED,
        format!("flow:{id}"),
    )
    .after(serde_json::json!({ "name": name, "labels": labels }));
    let insert = flow::Entity::insert(flow::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        name: Set(name.to_owned()),
        definition: Set(definition.as_str().to_owned()),
        owner_id: Set(Some(owner.0)),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .build(ConnectionTrait::get_database_backend(&txn));
    audit::record_with(&txn, event, insert).await?;
    add_labels(&txn, id, &labels).await?;
    txn.commit().await?;
    Ok(Flow {
        id,
        tenant_id: tenant.0,
        name: name.to_owned(),
        definition,
        created_at: now,
        updated_at: now,
        attrs: Attributes {
            owner: Some(owner),
            labels,
            ..Attributes::default()
        },
    })
}

/// Begins the transaction of a change to flow `id` and reads the flow's attributes in it (`None`:
/// no such flow in the tenant), so that the caller decides on the flow as it stands and the change
/// lands on that same flow.
///
/// Why one locking transaction rather than a write conditioned on the attributes read before:
/// the attributes the policies see live in three tables (`flows.owner_id`, `flow_labels`,
/// `flow_shares`), so a conditional `UPDATE`/`DELETE` would have to compare two folded
/// aggregates and still could not cover the share tables' own writes; a lock taken before the
/// read covers all of them, because every change of a flow's labels or shares (here and when a
/// member leaves, see `members::remove`) takes the same lock first.
///
/// - PostgreSQL: the row is locked with `SELECT … FOR UPDATE`, then read with its labels and
///   shares; concurrent changes of the same flow wait until this transaction ends, and then
///   decide on what it left.
/// - SQLite: writers are serialised (one writer connection in the server; another process, such
///   as the CLI, waits on the database lock). The first statement is a write that changes
///   no row, so the transaction holds the write lock from its start (as `BEGIN IMMEDIATE`
///   would) instead of reading a snapshot another process could change before the write.
async fn begin_change(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<(DatabaseTransaction, Option<Attributes>), DbErr> {
    let txn = db.begin().await?;
    let attrs = lock_in(&txn, tenant, id).await?;
    Ok((txn, attrs))
}

/// The flow a change was allowed on, read whole in the change's transaction once decided (the
/// flow is locked: it is the one decided).
async fn decided_flow(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
) -> Result<Flow, DbErr> {
    find(txn, tenant, id)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("the locked flow {id} is gone")))
}

/// Reads the attributes of flow `id` in `txn`, holding the flow until the end (see
/// [`begin_change`]). The decision is made on them alone, and the name and definition are read
/// only once it allowed the change ([`decided_flow`]): a flow the caller may not see costs
/// what a missing one does, whatever its size.
async fn lock_in(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<Attributes>, DbErr> {
    let backend = ConnectionTrait::get_database_backend(txn);
    if supports_row_locks(backend) {
        // The lock first, then the read in a statement of its own: a statement that waited on
        // the lock would re-read the flow row as committed meanwhile, but its label and share
        // subqueries would still see the snapshot taken before the wait.
        flow::Entity::find()
            .select_only()
            .column(flow::Column::Id)
            .filter(flow::Column::Id.eq(id))
            .filter(flow::Column::TenantId.eq(tenant.0))
            .lock_exclusive()
            .into_tuple::<Uuid>()
            .one(txn)
            .await?;
    } else {
        // SQLite locks the database, not a row: a write statement takes the write lock for the
        // whole transaction, whether or not it changes a row. This one changes none (no flow
        // is without a tenant), so a flow that is there costs what one that is not does.
        flow::Entity::update_many()
            .col_expr(flow::Column::UpdatedAt, Expr::col(flow::Column::UpdatedAt))
            .filter(flow::Column::TenantId.is_null())
            .exec(txn)
            .await?;
    }
    find_attributes(txn, tenant, id).await
}

/// Applies the changes; `None` when the flow does not exist in this tenant.
pub async fn update(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    changes: FlowChanges,
) -> Result<Option<Flow>, DbErr> {
    update_decided(db, tenant, id, &Actor::default(), |_| {
        Ok::<_, DbErr>(changes)
    })
    .await
}

/// Reads the flow's attributes in a change transaction (see [`begin_change`]), asks `decide` for
/// the changes to make to the flow as read (an error changes nothing), applies them and returns
/// the flow as changed; `None` when the flow does not exist in this tenant (after `decide`
/// agreed).
pub async fn update_decided<E: From<DbErr>>(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    actor: &Actor,
    decide: impl FnOnce(Option<&Attributes>) -> Result<FlowChanges, E>,
) -> Result<Option<Flow>, E> {
    let (txn, attrs) = begin_change(db, tenant, id).await?;
    let changes = decide(attrs.as_ref())?;
    if attrs.is_none() {
        return Ok(None);
    }
    let existing = decided_flow(&txn, tenant, id).await?;
    // Nothing to change: the flow stays as it is, `updated_at` included.
    if changes.name.is_none() && changes.definition.is_none() && changes.labels.is_none() {
        txn.rollback().await?;
        return Ok(Some(existing));
    }
    // Which fields changed, with the old and new name and labels; a definition is named, never
    // copied.
    let mut fields = Vec::new();
    let (mut before, mut after) = (serde_json::Map::new(), serde_json::Map::new());
    if let Some(name) = &changes.name {
        fields.push("name");
        before.insert("name".into(), existing.name.clone().into());
        after.insert("name".into(), name.clone().into());
    }
    if changes.definition.is_some() {
        fields.push("definition");
    }
    if let Some(labels) = &changes.labels {
        fields.push("labels");
        before.insert("labels".into(), existing.attrs.labels.clone().into());
        after.insert("labels".into(), labels.clone().into());
    }
    after.insert("fields".into(), fields.into());
    let event = Event::new(
        Some(tenant),
        actor,
        action::FLOW_CHANGED,
        format!("flow:{id}"),
    )
    .before(before.into())
    .after(after.into());
    if let Some(labels) = &changes.labels {
        set_labels(&txn, id, &normalized(labels)).await?;
    }
    let mut update = flow::Entity::update_many()
        .col_expr(flow::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(flow::Column::Id.eq(id))
        .filter(flow::Column::TenantId.eq(tenant.0));
    if let Some(name) = changes.name {
        update = update.col_expr(flow::Column::Name, Expr::value(name));
    }
    if let Some(definition) = changes.definition {
        update = update.col_expr(
            flow::Column::Definition,
            Expr::value(definition.as_str().to_owned()),
        );
    }
    audit::record_with(
        &txn,
        event,
        update.build(ConnectionTrait::get_database_backend(&txn)),
    )
    .await?;
    let flow = find(&txn, tenant, id).await?;
    txn.commit().await?;
    Ok(flow)
}

/// Deletes the flow (its labels and shares go with it); false when it does not exist in this
/// tenant.
pub async fn delete(db: &DatabaseConnection, tenant: TenantId, id: Uuid) -> Result<bool, DbErr> {
    delete_decided(db, tenant, id, &Actor::default(), |_| Ok::<_, DbErr>(())).await
}

/// [`delete`] once `decide` agreed on the flow's attributes as read in the same transaction (see
/// [`begin_change`]).
pub async fn delete_decided<E: From<DbErr>>(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    actor: &Actor,
    decide: impl FnOnce(Option<&Attributes>) -> Result<(), E>,
) -> Result<bool, E> {
    let (txn, attrs) = begin_change(db, tenant, id).await?;
    decide(attrs.as_ref())?;
    if attrs.is_none() {
        return Ok(false);
    }
    let existing = decided_flow(&txn, tenant, id).await?;
    let event = Event::new(
        Some(tenant),
        actor,
        action::FLOW_DELETED,
        format!("flow:{id}"),
    )
    .before(serde_json::json!({ "name": existing.name, "labels": existing.attrs.labels }));
    let delete = flow::Entity::delete_many()
        .filter(flow::Column::Id.eq(id))
        .filter(flow::Column::TenantId.eq(tenant.0))
        .build(ConnectionTrait::get_database_backend(&txn));
    let deleted = audit::record_with(&txn, event, delete).await?;
    txn.commit().await?;
    Ok(deleted > 0)
}

/// Gives `user` the access to the flow (replacing a share it had); `false` when the flow does not
/// exist in this tenant. Decides nothing (tests and seeding); requests use [`set_share_decided`].
pub async fn share(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    user: UserId,
    access: Access,
) -> Result<bool, DbErr> {
    set_share_decided(
        db,
        tenant,
        id,
        user,
        Some(access),
        &Actor::default(),
        |_, _| Ok::<_, DbErr>(()),
    )
    .await
}

/// Takes `user`'s share away (nothing happens when it had none); `false` when the flow does not
/// exist in this tenant. Decides nothing, as [`share`].
pub async fn unshare(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    user: UserId,
) -> Result<bool, DbErr> {
    set_share_decided(db, tenant, id, user, None, &Actor::default(), |_, _| {
        Ok::<_, DbErr>(())
    })
    .await
}

/// Replaces `user`'s share of the flow with `access` (none: no share) once `decide` agreed, in
/// one transaction: `decide` is given the flow's attributes as read there (see
/// [`begin_change`]) and whether `user` is a member of the tenant. That membership is read first, and on PostgreSQL held
/// (`FOR SHARE`) until the end, so a member being removed at the same time either waits and then
/// deletes the new share with the others, or is gone before `decide` sees it. (Memberships are
/// locked before flows, as `members::remove` does, so the two never wait on each other.)
/// Returns `false` when the flow does not exist in this tenant.
pub async fn set_share_decided<E: From<DbErr>>(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    user: UserId,
    access: Option<Access>,
    actor: &Actor,
    decide: impl FnOnce(Option<&Attributes>, bool) -> Result<(), E>,
) -> Result<bool, E> {
    let txn = db.begin().await?;
    let membership = membership::Entity::find_by_id((tenant.0, user.0));
    // SQLite: the no-op write of `lock_in` comes first, so the whole transaction holds the write
    // lock.
    let (member, existing) = if supports_row_locks(ConnectionTrait::get_database_backend(&txn)) {
        let member = membership.lock_shared().one(&txn).await?.is_some();
        (member, lock_in(&txn, tenant, id).await?)
    } else {
        let existing = lock_in(&txn, tenant, id).await?;
        (membership.one(&txn).await?.is_some(), existing)
    };
    decide(existing.as_ref(), member)?;
    if existing.is_none() {
        return Ok(false);
    }
    let removed = flow_share::Entity::delete_many()
        .filter(flow_share::Column::FlowId.eq(id))
        .filter(flow_share::Column::UserId.eq(user.0))
        .exec(&txn)
        .await?;
    // A share given (or changed), with the new share's insert; or one taken away; taking away
    // nothing changes nothing.
    let event = |name| {
        Event::new(Some(tenant), actor, name, format!("flow:{id}"))
            .after(serde_json::json!({ "user": user.0, "access": access.map(|a| a.name()) }))
    };
    if let Some(access) = access {
        let insert = flow_share::Entity::insert(flow_share::ActiveModel {
            flow_id: Set(id),
            user_id: Set(user.0),
            access: Set(access.name().to_owned()),
        })
        .build(ConnectionTrait::get_database_backend(&txn));
        audit::record_with(&txn, event(action::FLOW_SHARED), insert).await?;
    } else if removed.rows_affected > 0 {
        audit::record(&txn, event(action::FLOW_UNSHARED)).await?;
    }
    txn.commit().await?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn flow(n: u32, bytes: usize) -> Flow {
        let definition = serde_json::json!({"d": "x".repeat(bytes - 8)});
        Flow {
            id: Uuid::from_u128(u128::from(n)),
            tenant_id: Uuid::nil(),
            name: format!("flow {n}"),
            definition: Definition::of(&definition).unwrap(),
            created_at: DateTime::from_timestamp(i64::from(n), 0).unwrap(),
            updated_at: DateTime::from_timestamp(i64::from(n), 0).unwrap(),
            attrs: Attributes::default(),
        }
    }

    /// Fills pages from `sizes` as a list does (offering flows until one does not fit) and
    /// returns the number of flows on each page.
    fn pages(sizes: &[usize], limit: u64, budget: usize) -> Vec<usize> {
        let flows: Vec<Flow> = (0u32..).zip(sizes).map(|(n, s)| flow(n, *s)).collect();
        let mut start = 0;
        let mut pages = Vec::new();
        while start < flows.len() {
            let mut filling = Filling::new(limit, ByteBudget(budget));
            for flow in &flows[start..] {
                if !filling.offer(flow.clone()) {
                    break;
                }
            }
            let rows = filling.rows();
            let taken = rows.items.len();
            assert!(taken > 0, "a page always holds a flow");
            assert_eq!(
                rows.next.is_some(),
                start + taken < flows.len(),
                "a cursor exactly when flows remain"
            );
            if let Some(next) = rows.next {
                assert_eq!(next, flows[start + taken - 1].position());
            }
            pages.push(taken);
            start += taken;
        }
        pages
    }

    #[test]
    fn a_page_ends_at_its_row_limit_or_before_the_flow_that_passes_its_byte_budget() {
        // The budget alone.
        assert_eq!(pages(&[100, 100, 100, 100], 500, 200), vec![2, 2]);
        // Exactly at the budget fits; one byte more does not.
        assert_eq!(pages(&[100, 100, 101], 500, 200), vec![2, 1]);
        // A flow larger than the budget still comes, alone.
        assert_eq!(pages(&[50, 500, 50], 500, 200), vec![1, 1, 1]);
        // The row limit alone.
        assert_eq!(pages(&[10; 5], 2, 1 << 20), vec![2, 2, 1]);
        // Whichever comes first.
        assert_eq!(pages(&[10, 10, 10, 150, 10], 3, 200), vec![3, 2]);
    }
}
