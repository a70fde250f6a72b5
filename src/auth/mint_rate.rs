//! How fast one user may mint tokens on this instance: a bucket per user that holds up to one
//! minute's allowance and refills evenly, so a stolen credential cannot mint thousands of tokens a
//! second. The bound on live tokens (`ZYGO_MAX_LIVE_TOKENS`) holds across instances; this rate is
//! per instance.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{ApiError, ApiResult};
use crate::store::UserId;

/// Users whose buckets are remembered at once; a forgotten bucket starts full again, which is
/// what an idle user's bucket would be after a minute anyway.
const USERS: u64 = 100_000;

struct Bucket {
    /// Mints available now (fractions accumulate as it refills).
    available: f64,
    at: Instant,
}

pub struct MintRate {
    per_minute: u32,
    buckets: moka::sync::Cache<UserId, Arc<Mutex<Bucket>>>,
}

impl MintRate {
    /// `per_minute` mints a minute per user; zero never refuses.
    pub fn new(per_minute: u32) -> Self {
        MintRate {
            per_minute,
            buckets: moka::sync::Cache::builder()
                .max_capacity(USERS)
                // An idle bucket is full again after a minute: forgetting it then changes nothing.
                .time_to_idle(Duration::from_secs(60))
                .build(),
        }
    }

    /// Takes one mint from the user's bucket, or refuses with the seconds until one is back.
    pub fn take(&self, user: UserId) -> ApiResult<()> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let bucket = self.buckets.get_with(user, || {
            Arc::new(Mutex::new(Bucket {
                available: capacity,
                at: now,
            }))
        });
        let mut bucket = bucket
            .lock()
            .map_err(|_| ApiError::Internal("mint rate bucket poisoned".into()))?;
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.available = (bucket.available + elapsed * per_second).min(capacity);
        bucket.at = now;
        if bucket.available >= 1.0 {
            bucket.available -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - bucket.available) / per_second).ceil().max(1.0);
        Err(ApiError::TooManyMints {
            per_minute: self.per_minute,
            // At most 60 s with a rate of at least one a minute.
            retry_after: wait as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_mints_a_minutes_allowance_at_once_then_is_told_when_to_retry() {
        let rate = MintRate::new(3);
        let (alice, bob) = (UserId(uuid::Uuid::new_v4()), UserId(uuid::Uuid::new_v4()));
        for _ in 0..3 {
            assert!(rate.take(alice).is_ok());
        }
        match rate.take(alice) {
            Err(ApiError::TooManyMints {
                per_minute: 3,
                retry_after,
            }) => assert!((1..=20).contains(&retry_after), "{retry_after}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Another user's bucket is untouched.
        assert!(rate.take(bob).is_ok());
    }

    #[test]
    fn a_rate_of_zero_never_refuses() {
        let rate = MintRate::new(0);
        let user = UserId(uuid::Uuid::new_v4());
        for _ in 0..10_000 {
            assert!(rate.take(user).is_ok());
        }
    }
}
