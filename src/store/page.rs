//! Keyset pagination: every list is ordered by `(created_at, id)` (oldest first, or newest first) and a page starts strictly
//! after the last row of the previous one, so rows inserted meanwhile never shift a page (no row
//! is skipped or repeated; a new row shows up at the end, where it belongs). An audit trail is
//! one chain, ordered by its places: its pages ([`ChainPage`]) go by `seq` instead.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::IntoCondition;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Select, Value,
};
use uuid::Uuid;

/// Rows per page when a list's `limit` is omitted.
pub const DEFAULT_LIMIT: u32 = 100;
/// Most rows one page holds (a list reads at most one more).
pub const MAX_LIMIT: u32 = 500;

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

/// How a list's id column stores the UUID.
#[derive(Debug, Clone, Copy)]
enum IdAs {
    Uuid,
    Text,
}

/// The rows of one page and, when more follow, the position to continue after (a
/// [`Position`], or an event's place in its chain for a [`ChainPage`]).
#[derive(Debug)]
pub struct Rows<T, P = Position> {
    pub items: Vec<T>,
    pub next: Option<P>,
}

/// Places of an audit chain one page reads at most: a filter few events pass stops there, and
/// the page says where to go on (see [`ChainPage`]).
pub const CHAIN_WINDOW: i64 = 10_000;

/// Which page of an audit chain to read: up to `limit` events, newest first, before the place
/// `before` (from the chain's head when `None`), among the `window` places below it at most. A
/// chain is ordered by its places, so a page needs no time in its cursor.
#[derive(Debug, Clone, Copy)]
pub struct ChainPage {
    pub before: Option<i64>,
    pub limit: u64,
    pub window: i64,
}

impl ChainPage {
    /// A page of `limit` events before `before`, read within [`CHAIN_WINDOW`] places.
    pub fn new(before: Option<i64>, limit: u64) -> Self {
        ChainPage {
            before,
            limit,
            window: CHAIN_WINDOW,
        }
    }

    /// Cuts the rows read (one more than a page) from the places `floor..` into a page: it goes
    /// on before its last row's place when it is full, else before `floor` when the chain has
    /// events below it (`lowest`), so that no request reads more than the window.
    pub fn collect<T>(
        &self,
        rows: Vec<T>,
        seq: impl Fn(&T) -> i64,
        floor: i64,
        lowest: i64,
    ) -> Rows<T, i64> {
        let mut page = cut(self.limit, rows, seq);
        if page.next.is_none() && floor > lowest {
            page.next = Some(floor);
        }
        page
    }
}

/// The first `limit` of `rows` and, when there were more, the place of the last one kept.
pub(super) fn cut<T, P>(limit: u64, mut rows: Vec<T>, place: impl Fn(&T) -> P) -> Rows<T, P> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(&place)
    } else {
        None
    };
    Rows { items: rows, next }
}

impl Keyset {
    /// Rows past the cursor in the list's order: later rows oldest first, earlier ones newest
    /// first.
    fn past_cursor(
        &self,
        created_at: impl ColumnTrait,
        id: impl ColumnTrait,
        order: Order,
        id_as: IdAs,
    ) -> Condition {
        let Some(at) = self.after else {
            return Condition::all();
        };
        let at_id: Value = match id_as {
            IdAs::Uuid => at.id.into(),
            IdAs::Text => at.id.to_string().into(),
        };
        // `created_at >= t AND (created_at > t OR id > i)` (mirrored newest first): the same
        // rows as `(created_at, id) > (t, i)`, written so that the first term is a range the
        // `(…, created_at)` index seeks to, on SQLite and PostgreSQL alike (an OR at the top
        // would make a deep page scan every row before it).
        let newest_first = matches!(order, Order::Desc);
        let (time_from, time_past, id_past) = if newest_first {
            (
                created_at.lte(at.created_at),
                created_at.lt(at.created_at),
                id.lt(at_id),
            )
        } else {
            (
                created_at.gte(at.created_at),
                created_at.gt(at.created_at),
                id.gt(at_id),
            )
        };
        Condition::all()
            .add(time_from)
            .add(Condition::any().add(time_past).add(id_past))
    }

    /// Adds the cursor, the order (oldest first) and the limit (one row more than a page, to
    /// know whether another page follows) to a query.
    pub fn apply<E: EntityTrait>(
        &self,
        select: Select<E>,
        created_at: impl ColumnTrait,
        id: impl ColumnTrait,
    ) -> Select<E> {
        self.apply_in(select, created_at, id, Order::Asc, IdAs::Uuid)
    }

    /// [`Keyset::apply`] for a list shown newest first whose id column holds the UUID as text
    /// (a token's `jti`).
    pub fn apply_newest_first_text_id<E: EntityTrait>(
        &self,
        select: Select<E>,
        created_at: impl ColumnTrait,
        id: impl ColumnTrait,
    ) -> Select<E> {
        self.apply_in(select, created_at, id, Order::Desc, IdAs::Text)
    }

    fn apply_in<E: EntityTrait>(
        &self,
        select: Select<E>,
        created_at: impl ColumnTrait,
        id: impl ColumnTrait,
        order: Order,
        id_as: IdAs,
    ) -> Select<E> {
        select
            .filter(
                self.past_cursor(created_at, id, order.clone(), id_as)
                    .into_condition(),
            )
            .order_by(created_at, order.clone())
            .order_by(id, order)
            .limit(self.limit + 1)
    }

    /// Cuts the rows read by [`Keyset::apply`] into a page.
    pub fn collect<T>(&self, rows: Vec<T>, position: impl Fn(&T) -> Position) -> Rows<T> {
        cut(self.limit, rows, position)
    }
}
