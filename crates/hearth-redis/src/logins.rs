//! The per-account login limits in Redis, shared by every node (see
//! `hearth_core::login_throttle`). Per account (keyed by a hash of the normalized email):
//!
//! * `login-rate:<key>` — the attempt rate as a GCRA bucket: the time at which the bucket is
//!   empty again (Redis's clock, in ms, so nodes' clocks need not agree), expiring then;
//! * `login-failures:<key>` — consecutive failures, forgotten after a quiet half hour;
//! * `login-lock:<key>` — present while the account is locked out, expiring when it ends.

use crate::{Redis, store_error};
use async_trait::async_trait;
use hearth_core::StoreError;
use hearth_core::login_throttle::{
    FAILURES_REMEMBERED, LoginRefusal, LoginThrottle, account_key, lockout_after,
};
use std::time::Duration;

/// Checks the lock, then takes one attempt from the bucket, atomically. KEYS: lock, rate.
/// ARGV: burst, per minute. Returns `{0, 0}` admitted, `{1, ms}` locked out, `{2, ms}` over
/// the rate.
const ADMIT: &str = r"
local locked = redis.call('PTTL', KEYS[1])
if locked > 0 then return {1, locked} end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local interval = 60000 / tonumber(ARGV[2])
local tolerance = interval * (tonumber(ARGV[1]) - 1)
local tat = tonumber(redis.call('GET', KEYS[2]) or now)
if tat < now then tat = now end
if tat - now > tolerance then return {2, math.ceil(tat - now - tolerance)} end
tat = tat + interval
redis.call('SET', KEYS[2], string.format('%.3f', tat), 'PX', math.ceil(tat - now))
return {0, 0}
";

pub struct RedisLoginThrottle {
    redis: Redis,
}

impl RedisLoginThrottle {
    pub fn new(redis: Redis) -> Self {
        RedisLoginThrottle { redis }
    }
}

#[async_trait]
impl LoginThrottle for RedisLoginThrottle {
    async fn admit(
        &self,
        account: &str,
        burst: u32,
        per_minute: u32,
    ) -> Result<Option<LoginRefusal>, StoreError> {
        let key = account_key(account);
        let (verdict, wait_ms): (i64, i64) = redis::cmd("EVAL")
            .arg(ADMIT)
            .arg(2)
            .arg(self.redis.key("login-lock", &key))
            .arg(self.redis.key("login-rate", &key))
            .arg(burst.max(1))
            .arg(per_minute.max(1))
            .query_async(&mut self.redis.conn.clone())
            .await
            .map_err(store_error)?;
        let wait = Duration::from_millis(wait_ms.max(1) as u64);
        Ok(match verdict {
            0 => None,
            1 => Some(LoginRefusal::LockedOut(wait)),
            _ => Some(LoginRefusal::TooFrequent(wait)),
        })
    }

    async fn record(&self, account: &str, succeeded: bool) -> Result<(), StoreError> {
        let key = account_key(account);
        let failures = self.redis.key("login-failures", &key);
        let lock = self.redis.key("login-lock", &key);
        let mut conn = self.redis.conn.clone();
        if succeeded {
            return redis::cmd("DEL")
                .arg(&failures)
                .arg(&lock)
                .query_async::<()>(&mut conn)
                .await
                .map_err(store_error);
        }
        let (count,): (u32,) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&failures)
            .cmd("PEXPIRE")
            .arg(&failures)
            .arg(FAILURES_REMEMBERED.as_millis() as u64)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(store_error)?;
        let Some(wait) = lockout_after(count) else {
            return Ok(());
        };
        redis::cmd("SET")
            .arg(&lock)
            .arg(count)
            .arg("PX")
            .arg(wait.as_millis() as u64)
            .query_async::<()>(&mut conn)
            .await
            .map_err(store_error)
    }
}
