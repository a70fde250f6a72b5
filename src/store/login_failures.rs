//! Login throttling counters (table `login_failures`), shared by every instance on the database.
//! Each call is one statement, atomic on its own: [`reserve`] counts one more on several keys and
//! returns what it counted, so concurrent attempts each see their own count and cannot all slip
//! under a limit. On PostgreSQL the window is timed by the database's clock (instances whose
//! clocks differ still share one window); on SQLite (one instance) by this process's clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

/// A counter as just counted: attempts in the window, the time left in it, and when the window
/// started (what names the window a reservation was made in, see [`refund`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counted {
    pub failures: u32,
    pub left: Duration,
    pub window_started_at: DateTime<Utc>,
}

fn seconds(window: Duration) -> f64 {
    window.as_secs_f64()
}

/// `count` placeholders of `backend`, numbered from `first` on PostgreSQL.
fn placeholders(backend: DbBackend, first: usize, count: usize) -> Vec<String> {
    (first..first + count)
        .map(|n| match backend {
            DbBackend::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        })
        .collect()
}

/// Counts one more on each of `keys` (distinct), starting a new window for a key whose last one
/// has passed, and returns each key with its count, in one statement. Keys are written in sorted
/// order, so concurrent reservations lock shared keys in one order (no deadlock on PostgreSQL).
pub async fn reserve(
    db: &impl ConnectionTrait,
    keys: &[&str],
    window: Duration,
) -> Result<Vec<(String, Counted)>, DbErr> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    let backend = db.get_database_backend();
    let rows = match backend {
        DbBackend::Postgres => {
            let values: Vec<String> = placeholders(backend, 1, keys.len())
                .into_iter()
                .map(|key| format!("({key}, now(), 1)"))
                .collect();
            let secs = format!("${}", keys.len() + 1);
            let sql = format!(
                "INSERT INTO login_failures AS f (key, window_started_at, failures) \
                 VALUES {values} \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN f.window_started_at > now() - make_interval(secs => {secs}) \
                              THEN f.failures + 1 ELSE 1 END, \
                   window_started_at = CASE WHEN f.window_started_at > now() - make_interval(secs => {secs}) \
                              THEN f.window_started_at ELSE now() END \
                 RETURNING key, failures, window_started_at, \
                   EXTRACT(EPOCH FROM window_started_at + make_interval(secs => {secs}) - now())::float8 \
                     AS left_seconds",
                values = values.join(", "),
            );
            let mut params: Vec<Value> = keys.iter().map(|k| (*k).into()).collect();
            params.push(seconds(window).into());
            db.query_all_raw(Statement::from_sql_and_values(backend, sql, params))
                .await?
                .into_iter()
                .map(|row| {
                    let key: String = row.try_get("", "key")?;
                    let failures: i32 = row.try_get("", "failures")?;
                    // A window another transaction opened after this one began (`now()` is the
                    // transaction's start) ends a little more than a window from that `now()`:
                    // never tell a client to wait longer than a window.
                    let left: f64 = row.try_get("", "left_seconds")?;
                    let left = left.clamp(0.0, window.as_secs_f64());
                    let started: DateTime<Utc> = row.try_get("", "window_started_at")?;
                    Ok((
                        key,
                        Counted {
                            failures: u32::try_from(failures).unwrap_or(0),
                            left: Duration::try_from_secs_f64(left).unwrap_or_default(),
                            window_started_at: started,
                        },
                    ))
                })
                .collect::<Result<Vec<_>, DbErr>>()?
        }
        _ => {
            // One instance: this process's clock is the only one.
            let now = Utc::now();
            let span = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
            let cutoff = now
                .checked_sub_signed(span)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            let values = vec!["(?, ?, 1)"; keys.len()].join(", ");
            let sql = format!(
                "INSERT INTO login_failures (key, window_started_at, failures) \
                 VALUES {values} \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN login_failures.window_started_at > ? \
                              THEN login_failures.failures + 1 ELSE 1 END, \
                   window_started_at = CASE WHEN login_failures.window_started_at > ? \
                              THEN login_failures.window_started_at \
                              ELSE excluded.window_started_at END \
                 RETURNING key, failures, window_started_at"
            );
            let mut params: Vec<Value> = Vec::with_capacity(keys.len() * 2 + 2);
            for key in &keys {
                params.push((*key).into());
                params.push(now.into());
            }
            params.push(cutoff.into());
            params.push(cutoff.into());
            db.query_all_raw(Statement::from_sql_and_values(backend, sql, params))
                .await?
                .into_iter()
                .map(|row| {
                    let key: String = row.try_get("", "key")?;
                    let failures: i32 = row.try_get("", "failures")?;
                    let started: DateTime<Utc> = row.try_get("", "window_started_at")?;
                    let ends = started
                        .checked_add_signed(span)
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    Ok((
                        key,
                        Counted {
                            failures: u32::try_from(failures).unwrap_or(0),
                            left: (ends - now).to_std().unwrap_or_default(),
                            window_started_at: started,
                        },
                    ))
                })
                .collect::<Result<Vec<_>, DbErr>>()?
        }
    };
    if rows.len() != keys.len() {
        return Err(DbErr::RecordNotFound(format!(
            "login_failures: {} keys counted, {} rows returned",
            keys.len(),
            rows.len()
        )));
    }
    Ok(rows)
}

/// Gives back one reservation on `key` made in the window that started at `window_started_at`
/// (an attempt that turned out not to be a failure), never below zero; a counter back at zero is
/// forgotten (nothing left for the purge). A refund that arrives after that window closed (and
/// perhaps a new one started) changes nothing: it never takes a count off a later window.
pub async fn refund(
    db: &impl ConnectionTrait,
    key: &str,
    window_started_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let p = placeholders(backend, 1, 2);
    let (k, w) = (&p[0], &p[1]);
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "UPDATE login_failures SET failures = failures - 1 \
             WHERE key = {k} AND window_started_at = {w} AND failures > 0"
        ),
        [key.into(), window_started_at.into()],
    ))
    .await?;
    // A reservation made meanwhile has raised it again and keeps it.
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "DELETE FROM login_failures \
             WHERE key = {k} AND window_started_at = {w} AND failures <= 0"
        ),
        [key.into(), window_started_at.into()],
    ))
    .await?;
    Ok(())
}

/// Forgets the counters of `keys`.
pub async fn clear(db: &impl ConnectionTrait, keys: &[&str]) -> Result<(), DbErr> {
    if keys.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let sql = format!(
        "DELETE FROM login_failures WHERE key IN ({})",
        placeholders(backend, 1, keys.len()).join(", ")
    );
    let params: Vec<Value> = keys.iter().map(|k| (*k).into()).collect();
    db.execute_raw(Statement::from_sql_and_values(backend, sql, params))
        .await?;
    Ok(())
}
