//! Paginated lists: `?limit=&cursor=` in, `{"items": [...], "next_cursor": …}` out.
//!
//! A cursor is opaque to clients: base64url of the last row's position (`created_at`, `id`).
//! It is not a secret and grants nothing (every page is authorized on its own), but a cursor
//! this service did not issue is a 400 naming `cursor`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
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
#[derive(Debug, Object)]
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
    let text = format!(
        "{}|{}",
        at.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        at.id
    );
    URL_SAFE_NO_PAD.encode(text)
}

fn decode(cursor: &str) -> ApiResult<Position> {
    let invalid = || ApiError::BadRequest("cursor: is not a cursor this list returned".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
    let (time, id) = text.split_once('|').ok_or_else(invalid)?;
    let created_at = DateTime::parse_from_rfc3339(time)
        .map_err(|_| invalid())?
        .with_timezone(&Utc);
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
                .with_timezone(&Utc),
            id: Uuid::new_v4(),
        };
        assert_eq!(decode(&encode(at)).unwrap(), at);
    }

    #[test]
    fn a_foreign_cursor_is_a_400_naming_the_field() {
        for bad in ["", "!!", "bm9wZQ", "MjAyNnw", "eHx5"] {
            let err = decode(bad).unwrap_err();
            assert!(
                matches!(&err, ApiError::BadRequest(m) if m.starts_with("cursor:")),
                "{bad}"
            );
        }
        assert!(keyset(Some(0), None).is_err());
        assert!(keyset(Some(501), None).is_err());
        assert_eq!(keyset(None, None).unwrap().limit, 100);
    }
}
