//! Paginated lists: `?limit=&cursor=` in, `{"items": [...], "next_cursor": …}` out.
//!
//! A cursor is opaque to clients: the last row's position, `created_at` (seconds and nanoseconds
//! since the epoch) and `id` (hex), as `SECONDS.NANOS-ID`. It is not a secret and grants nothing
//! (every page is authorized on its own); seconds have at most 11 digits (up to the year 5138,
//! so stored times compare in order on every database). The document states its exact pattern, so every
//! string of that pattern is a cursor: it reads the rows after that position. Anything else is a
//! 400 naming `cursor`.

use chrono::DateTime;
use poem_openapi::Object;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::store::page::{Keyset, Position, Rows};

/// Rows per page when `limit` is omitted.
pub const DEFAULT_LIMIT: u32 = 100;
/// Most rows one page holds.
pub const MAX_LIMIT: u32 = 500;

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
    pub fn of<R>(rows: Rows<R>, item: impl FnMut(R) -> T) -> Page<T> {
        Page {
            items: rows.items.into_iter().map(item).collect(),
            next_cursor: rows.next.map(encode),
        }
    }
}

/// The page a request asks for (`limit` and `cursor` are validated by the document already:
/// 1 to 500, and the cursor's alphabet and length).
pub fn keyset(limit: Option<u32>, cursor: Option<&str>) -> ApiResult<Keyset> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok(Keyset {
        after: cursor.map(decode).transpose()?,
        limit: u64::from(limit),
    })
}

fn encode(at: Position) -> String {
    format!(
        "{}.{:09}-{}",
        at.created_at.timestamp(),
        at.created_at.timestamp_subsec_nanos(),
        at.id.simple()
    )
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
        assert_eq!(decode(&encode(at)).unwrap(), at);
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
}
