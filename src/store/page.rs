//! Keyset pagination: every list is ordered by `(created_at, id)` and a page starts strictly
//! after the last row of the previous one, so rows inserted meanwhile never shift a page (no row
//! is skipped or repeated; a new row shows up at the end, where it belongs).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::IntoCondition;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use uuid::Uuid;

/// The position of a row in a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// Which page to read: up to `limit` rows after `after` (from the start when `None`).
#[derive(Debug, Clone, Copy)]
pub struct Keyset {
    pub after: Option<Position>,
    pub limit: u64,
}

/// The rows of one page and, when more follow, the position to continue after.
#[derive(Debug)]
pub struct Rows<T> {
    pub items: Vec<T>,
    pub next: Option<Position>,
}

impl Keyset {
    /// The condition "after the cursor" on the list's `(created_at, id)` columns.
    pub fn after_condition(&self, created_at: impl ColumnTrait, id: impl ColumnTrait) -> Condition {
        match self.after {
            None => Condition::all(),
            // `created_at >= t AND (created_at > t OR id > i)`: the same rows as
            // `(created_at, id) > (t, i)`, written so that the first term is a range the
            // `(tenant_id, created_at)` index seeks to, on SQLite and PostgreSQL alike (an OR at
            // the top would make a deep page scan every row before it).
            Some(at) => Condition::all().add(created_at.gte(at.created_at)).add(
                Condition::any()
                    .add(created_at.gt(at.created_at))
                    .add(id.gt(at.id)),
            ),
        }
    }

    /// Adds the cursor, the order and the limit (one row more than a page, to know whether
    /// another page follows) to a query.
    pub fn apply<E: EntityTrait>(
        &self,
        select: Select<E>,
        created_at: impl ColumnTrait,
        id: impl ColumnTrait,
    ) -> Select<E> {
        select
            .filter(self.after_condition(created_at, id).into_condition())
            .order_by_asc(created_at)
            .order_by_asc(id)
            .limit(self.limit + 1)
    }

    /// Cuts the rows read by [`Keyset::apply`] into a page.
    pub fn collect<T>(&self, mut rows: Vec<T>, position: impl Fn(&T) -> Position) -> Rows<T> {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&position)
        } else {
            None
        };
        Rows { items: rows, next }
    }
}
