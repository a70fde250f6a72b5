//! Paginated lists: `?limit=&cursor=` in, `{"items": [...], "next_cursor": …}` out.
//!
//! A cursor is opaque to clients: the last row's position, `created_at` (seconds and nanoseconds
//! since the epoch) and `id` (hex), as `SECONDS.NANOS-ID`. It is not a secret and grants nothing
//! (every page is authorized on its own); seconds have at most 11 digits (up to the year 5138,
//! so stored times compare in order on every database). The document states its exact pattern, so every
//! string of that pattern is a cursor: it reads the rows after that position. Anything else is a
//! 400 naming `cursor`.
//!
//! An audit trail is a chain whose events are numbered in order, so its cursor is the last
//! event's place in the chain, in decimal (`^[0-9]{1,18}$`): the next page holds the events
//! before it.

use chrono::DateTime;
use poem_openapi::Object;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::store::page::{ChainPage, Keyset, Position, Rows};

pub use crate::store::page::{DEFAULT_LIMIT, MAX_LIMIT};

/// One page of a list, in the order the operation states.
// Also written with serde (see `api::serialized`) where its items are large (flows).
#[derive(Debug, Object, serde::Serialize)]
pub struct Page<T: ParseFromJSON + ToJSON + Send + Sync> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl<T: ParseFromJSON + ToJSON + Send + Sync> Page<T> {
    /// The page of `rows`, each item made by `item`.
    pub fn of<R, P: Cursor>(rows: Rows<R, P>, item: impl FnMut(R) -> T) -> Page<T> {
        Page {
            items: rows.items.into_iter().map(item).collect(),
            next_cursor: rows.next.as_ref().map(Cursor::encode),
        }
    }
}

/// What a page's `next_cursor` says.
pub trait Cursor {
    fn encode(&self) -> String;
}

impl Cursor for Position {
    fn encode(&self) -> String {
        format!(
            "{}.{:09}-{}",
            self.created_at.timestamp(),
            self.created_at.timestamp_subsec_nanos(),
            self.id.simple()
        )
    }
}

/// An event's place in its audit chain.
impl Cursor for i64 {
    fn encode(&self) -> String {
        self.to_string()
    }
}

/// The page a request asks for (`limit` and `cursor` are validated by the document already:
/// 1 to 500, and the cursor's alphabet and length).
pub fn keyset(limit: Option<u32>, cursor: Option<&str>) -> ApiResult<Keyset> {
    Ok(Keyset {
        limit: rows_per_page(limit)?,
        after: cursor.map(decode).transpose()?,
    })
}

/// The page of an audit trail a request asks for: the events before the place `cursor`.
pub fn chain_page(limit: Option<u32>, cursor: Option<&str>) -> ApiResult<ChainPage> {
    let place = |cursor: &str| {
        (!cursor.is_empty() && cursor.len() <= 18 && cursor.bytes().all(|b| b.is_ascii_digit()))
            .then(|| cursor.parse::<i64>().ok())
            .flatten()
            .ok_or_else(|| {
                ApiError::BadRequest("cursor: is not a cursor this list returned".into())
            })
    };
    Ok(ChainPage::new(
        cursor.map(place).transpose()?,
        rows_per_page(limit)?,
    ))
}

fn rows_per_page(limit: Option<u32>) -> ApiResult<u64> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_limit());
    }
    Ok(u64::from(limit))
}

fn decode(cursor: &str) -> ApiResult<Position> {
    let invalid = || ApiError::BadRequest("cursor: is not a cursor this list returned".into());
    let (time, id) = cursor.split_once('-').ok_or_else(invalid)?;
    let (seconds, nanos) = time.split_once('.').ok_or_else(invalid)?;
    let digits = |s: &str, most: usize| {
        (!s.is_empty() && s.len() <= most && s.bytes().all(|b| b.is_ascii_digit()))
            .then_some(())
            .ok_or_else(invalid)
    };
    digits(seconds, 11)?;
    digits(nanos, 9)?;
    if nanos.len() != 9
        || id.len() != 32
        || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(invalid());
    }
    let created_at = DateTime::from_timestamp(
        seconds.parse().map_err(|_| invalid())?,
        nanos.parse().map_err(|_| invalid())?,
    )
    .ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok(Position { created_at, id })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_the_position_it_encodes() {
        let at = Position {
            created_at: DateTime::parse_from_rfc3339("2026-12-02T10:11:12.123456789Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
            id: Uuid::new_v4(),
        };
        assert_eq!(decode(&at.encode()).unwrap(), at);
    }

    #[test]
    fn a_foreign_cursor_is_a_400_naming_the_field() {
        for bad in [
            "",
            "!!",
            "bm9wZQ",
            "00",
            "1.5-0b6f3c2e3f1d4c559a612d2f4f7f6e10",
            "1.000000000-0B6F3C2E3F1D4C559A612D2F4F7F6E10",
            "1.000000000-0b6f3c2e-3f1d-4c55-9a61-2d2f4f7f6e10",
            "123456789012.000000000-0b6f3c2e3f1d4c559a612d2f4f7f6e10",
        ] {
            let err = decode(bad).unwrap_err();
            assert!(
                matches!(&err, ApiError::BadRequest(m) if m.starts_with("cursor:")),
                "{bad}"
            );
        }
        // Every string of the documented pattern is a cursor.
        let any = decode("99999999999.999999999-ffffffffffffffffffffffffffffffff").unwrap();
        assert_eq!(any.created_at.timestamp(), 99_999_999_999);
        assert!(decode("0.000000000-00000000000000000000000000000000").is_ok());
        assert!(keyset(Some(0), None).is_err());
        assert!(keyset(Some(501), None).is_err());
        assert_eq!(keyset(None, None).unwrap().limit, 100);
    }

    #[test]
    fn an_audit_cursor_is_a_place_in_the_chain() {
        let page = chain_page(Some(5), Some(&42_i64.encode())).unwrap();
        assert_eq!((page.before, page.limit), (Some(42), 5));
        assert_eq!(
            chain_page(None, Some("999999999999999999")).unwrap().before,
            Some(999_999_999_999_999_999)
        );
        assert_eq!(chain_page(None, None).unwrap().before, None);
        for bad in ["", "-1", "1.5", "1e3", "9999999999999999999", "0x10", " 1"] {
            let err = chain_page(None, Some(bad)).unwrap_err();
            assert!(
                matches!(&err, ApiError::BadRequest(m) if m.starts_with("cursor:")),
                "{bad}"
            );
        }
        assert!(chain_page(Some(0), None).is_err());
    }
}
