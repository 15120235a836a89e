//! Abuse limits: how often a client may sign up, log in, post, ask, upload and connect.
//!
//! Each limit is a GCRA bucket (`governor`) per key — an IP address, an account or a user —
//! with a burst and a sustained rate per minute. A refusal carries how long to wait; the
//! gateway turns it into `429` + `Retry-After` or an `error` frame `rate_limited` with
//! `retryAfterMs`. Repeated failed logins of one account add an exponential lock-out on top.
//! Limits are per node: behind a balancer with N nodes a client gets at most N times the rate
//! (documented in operations.md) — except the per-account login limits (the attempt rate and
//! the lock-out after failed logins), which in cluster mode are also kept in a
//! [`LoginThrottle`] every node shares, so guessing a password gains nothing from more nodes.
//!
//! Memory is bounded: idle keys are purged every minute, and a table that still holds more
//! than [`MAX_KEYS`] keys refuses new keys until the purge (so a flood of spoofed keys cannot
//! grow it without bound).

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hearth_core::login_throttle::{
    FAILURES_REMEMBERED, LoginRefusal, LoginThrottle, lockout_after, normalized_account,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keys one limit table may hold between purges.
const MAX_KEYS: usize = 200_000;

/// A burst and a sustained rate.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub burst: u32,
    pub per_minute: u32,
}

impl Rate {
    const fn new(burst: u32, per_minute: u32) -> Rate {
        Rate { burst, per_minute }
    }

    fn quota(self) -> Quota {
        let per_minute = NonZeroU32::new(self.per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Quota::per_minute(per_minute).allow_burst(burst)
    }
}

/// `[rate_limits]`: every limit can be tuned; the defaults suit a public server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Off only for load tests and test suites that open thousands of sessions from one IP.
    pub enabled: bool,
    /// Accounts created per client IP.
    pub signups_per_ip: Rate,
    /// Login attempts per client IP.
    pub logins_per_ip: Rate,
    /// Login attempts per account (email), whoever makes them.
    pub logins_per_account: Rate,
    /// Messages posted per user (room messages and native sends; a frame of n room messages
    /// counts n).
    pub messages_per_user: Rate,
    /// Friend requests per user.
    pub friend_requests_per_user: Rate,
    /// Group join requests per user.
    pub join_requests_per_user: Rate,
    /// File uploads per user.
    pub uploads_per_user: Rate,
    /// WebSocket connections opened per client IP.
    pub connections_per_ip: Rate,
    /// Sockets one user may hold open at once (on one node).
    pub max_sockets_per_user: usize,
    /// Sockets one IP may hold open at once (on one node).
    pub max_sockets_per_ip: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            enabled: true,
            signups_per_ip: Rate::new(5, 10),
            logins_per_ip: Rate::new(20, 30),
            logins_per_account: Rate::new(10, 10),
            // A burst of a whole `clientMessages` frame (`limits.max_messages_per_frame`).
            messages_per_user: Rate::new(100, 600),
            friend_requests_per_user: Rate::new(10, 20),
            join_requests_per_user: Rate::new(10, 20),
            uploads_per_user: Rate::new(20, 60),
            connections_per_ip: Rate::new(30, 120),
            max_sockets_per_user: 20,
            max_sockets_per_ip: 1_000,
        }
    }
}

/// Which limit refused: its name goes into logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Signup,
    LoginIp,
    LoginAccount,
    LoginLockout,
    Messages,
    FriendRequests,
    JoinRequests,
    Uploads,
    Connections,
    SocketsPerUser,
    SocketsPerIp,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Signup => "signups_per_ip",
            Limit::LoginIp => "logins_per_ip",
            Limit::LoginAccount => "logins_per_account",
            Limit::LoginLockout => "login_lockout",
            Limit::Messages => "messages_per_user",
            Limit::FriendRequests => "friend_requests_per_user",
            Limit::JoinRequests => "join_requests_per_user",
            Limit::Uploads => "uploads_per_user",
            Limit::Connections => "connections_per_ip",
            Limit::SocketsPerUser => "max_sockets_per_user",
            Limit::SocketsPerIp => "max_sockets_per_ip",
        }
    }
}

/// A refusal: which limit, and how long until a retry can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub limit: Limit,
    pub retry_after: Duration,
}

impl Limited {
    /// Logs and counts the refusal (`hearth_rate_limited_total{limit}`).
    pub fn report(&self) {
        tracing::info!(limit = self.limit.as_str(), "rate limited");
        crate::telemetry::rate_limited(self.limit.as_str());
    }

    pub fn message(&self) -> String {
        format!(
            "too many requests ({}); retry in {} ms",
            self.limit.as_str(),
            self.retry_after.as_millis()
        )
    }

    /// Whole seconds for `Retry-After`, rounded up so a client that obeys succeeds.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_millis().div_ceil(1000).max(1) as u64
    }
}

struct Table<K: Hash + Eq + Clone> {
    enabled: bool,
    limit: Limit,
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(enabled: bool, limit: Limit, rate: Rate) -> Self {
        Table {
            enabled,
            limit,
            limiter: RateLimiter::keyed(rate.quota()),
        }
    }

    fn check(&self, key: &K, cost: u32) -> Result<(), Limited> {
        if !self.enabled {
            return Ok(());
        }
        let refused = |retry_after| Limited {
            limit: self.limit,
            retry_after,
        };
        if self.limiter.len() >= MAX_KEYS {
            return Err(refused(Duration::from_secs(60)));
        }
        let cost = NonZeroU32::new(cost.max(1)).unwrap_or(NonZeroU32::MIN);
        match self.limiter.check_key_n(key, cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(refused(
                not_until.wait_time_from(DefaultClock::default().now()),
            )),
            // More than the burst at once can never pass: wait a full minute.
            Err(_) => Err(refused(Duration::from_secs(60))),
        }
    }

    fn purge(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[derive(Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
    last: Option<Instant>,
}

/// Every limit of a node.
pub struct RateGate {
    config: RateLimits,
    signups: Table<IpAddr>,
    logins_by_ip: Table<IpAddr>,
    logins_by_account: Table<String>,
    messages: Table<i64>,
    friend_requests: Table<i64>,
    join_requests: Table<i64>,
    uploads: Table<i64>,
    connections: Table<IpAddr>,
    failures: Mutex<HashMap<String, Failures>>,
    sockets: Mutex<SocketCounts>,
    /// Cluster mode: the per-account login limits every node sees.
    shared_logins: Option<Arc<dyn LoginThrottle>>,
}

#[derive(Default)]
struct SocketCounts {
    by_user: HashMap<i64, usize>,
    by_ip: HashMap<IpAddr, usize>,
}

/// Holds a socket's place in the per-user and per-IP counts; gives it back on drop.
pub struct SocketSlot {
    gate: Arc<RateGate>,
    user: i64,
    ip: IpAddr,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self.gate.lock_sockets();
        decrement(&mut counts.by_user, &self.user);
        decrement(&mut counts.by_ip, &self.ip);
    }
}

fn decrement<K: Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl RateGate {
    /// `shared_logins`: where the per-account login limits are shared between nodes, if
    /// anywhere.
    pub fn new(config: RateLimits, shared_logins: Option<Arc<dyn LoginThrottle>>) -> RateGate {
        RateGate {
            shared_logins,
            signups: Table::new(config.enabled, Limit::Signup, config.signups_per_ip),
            logins_by_ip: Table::new(config.enabled, Limit::LoginIp, config.logins_per_ip),
            logins_by_account: Table::new(
                config.enabled,
                Limit::LoginAccount,
                config.logins_per_account,
            ),
            messages: Table::new(config.enabled, Limit::Messages, config.messages_per_user),
            friend_requests: Table::new(
                config.enabled,
                Limit::FriendRequests,
                config.friend_requests_per_user,
            ),
            join_requests: Table::new(
                config.enabled,
                Limit::JoinRequests,
                config.join_requests_per_user,
            ),
            uploads: Table::new(config.enabled, Limit::Uploads, config.uploads_per_user),
            connections: Table::new(
                config.enabled,
                Limit::Connections,
                config.connections_per_ip,
            ),
            failures: Mutex::default(),
            sockets: Mutex::default(),
            config,
        }
    }

    pub fn signup(&self, ip: IpAddr) -> Result<(), Limited> {
        self.signups.check(&ip, 1)
    }

    /// Before a login attempt: the IP's and the account's rates, and any lock-out earned by
    /// earlier failures — this node's, then the cluster's.
    pub async fn login(&self, ip: IpAddr, account: &str) -> Result<(), Limited> {
        if !self.config.enabled {
            return Ok(());
        }
        self.login_here(ip, account)?;
        let Some(shared) = &self.shared_logins else {
            return Ok(());
        };
        let rate = self.config.logins_per_account;
        match shared.admit(account, rate.burst, rate.per_minute).await {
            Ok(None) => Ok(()),
            Ok(Some(LoginRefusal::LockedOut(retry_after))) => Err(Limited {
                limit: Limit::LoginLockout,
                retry_after,
            }),
            Ok(Some(LoginRefusal::TooFrequent(retry_after))) => Err(Limited {
                limit: Limit::LoginAccount,
                retry_after,
            }),
            Err(error) => {
                // This node's own limits above still hold.
                tracing::warn!(%error, "shared login limits unavailable");
                Ok(())
            }
        }
    }

    fn login_here(&self, ip: IpAddr, account: &str) -> Result<(), Limited> {
        let account = normalized_account(account);
        if let Some(Failures {
            locked_until: Some(until),
            ..
        }) = self.lock_failures().get(&account)
        {
            let now = Instant::now();
            if *until > now {
                return Err(Limited {
                    limit: Limit::LoginLockout,
                    retry_after: *until - now,
                });
            }
        }
        self.logins_by_ip.check(&ip, 1)?;
        self.logins_by_account.check(&account, 1)
    }

    /// After a login attempt: a success clears the account's failures; each failure past
    /// the first few doubles the wait before the next attempt (1 s, 2 s, 4 s … 15 min), on
    /// this node and in the cluster.
    pub async fn login_result(&self, account: &str, succeeded: bool) {
        if !self.config.enabled {
            return;
        }
        self.login_result_here(account, succeeded);
        if let Some(shared) = &self.shared_logins
            && let Err(error) = shared.record(account, succeeded).await
        {
            tracing::warn!(%error, "shared login limits unavailable");
        }
    }

    fn login_result_here(&self, account: &str, succeeded: bool) {
        let account = normalized_account(account);
        let mut failures = self.lock_failures();
        if succeeded {
            failures.remove(&account);
            return;
        }
        if failures.len() >= MAX_KEYS && !failures.contains_key(&account) {
            return;
        }
        let entry = failures.entry(account).or_default();
        entry.count = entry.count.saturating_add(1);
        entry.last = Some(Instant::now());
        if let Some(wait) = lockout_after(entry.count) {
            entry.locked_until = Some(Instant::now() + wait);
        }
    }

    /// `count` messages at once; more than the burst take the whole burst (so a frame the
    /// other limits allow can always be sent once the bucket is full).
    pub fn messages(&self, user: i64, count: u32) -> Result<(), Limited> {
        let burst = self.config.messages_per_user.burst.max(1);
        self.messages.check(&user, count.min(burst))
    }

    pub fn friend_request(&self, user: i64) -> Result<(), Limited> {
        self.friend_requests.check(&user, 1)
    }

    pub fn join_request(&self, user: i64) -> Result<(), Limited> {
        self.join_requests.check(&user, 1)
    }

    pub fn upload(&self, user: i64) -> Result<(), Limited> {
        self.uploads.check(&user, 1)
    }

    /// A new WebSocket from `ip` for `user`: the connection rate, then the open-socket caps.
    /// The returned slot must live as long as the socket.
    pub fn open_socket(self: &Arc<Self>, user: i64, ip: IpAddr) -> Result<SocketSlot, Limited> {
        self.connections.check(&ip, 1)?;
        let mut counts = self.lock_sockets();
        let enabled = self.config.enabled;
        let full = |limit| Limited {
            limit,
            retry_after: Duration::from_secs(5),
        };
        if enabled
            && counts.by_user.get(&user).copied().unwrap_or(0) >= self.config.max_sockets_per_user
        {
            return Err(full(Limit::SocketsPerUser));
        }
        if enabled && counts.by_ip.get(&ip).copied().unwrap_or(0) >= self.config.max_sockets_per_ip
        {
            return Err(full(Limit::SocketsPerIp));
        }
        *counts.by_user.entry(user).or_default() += 1;
        *counts.by_ip.entry(ip).or_default() += 1;
        Ok(SocketSlot {
            gate: self.clone(),
            user,
            ip,
        })
    }

    /// Forgets idle keys; run every minute.
    pub fn purge(&self) {
        for table in [&self.signups, &self.logins_by_ip, &self.connections] {
            table.purge();
        }
        self.logins_by_account.purge();
        for table in [
            &self.messages,
            &self.friend_requests,
            &self.join_requests,
            &self.uploads,
        ] {
            table.purge();
        }
        let forget_before = Instant::now().checked_sub(FAILURES_REMEMBERED);
        self.lock_failures()
            .retain(|_, f| match (f.last, forget_before) {
                (Some(last), Some(before)) => last > before,
                _ => true,
            });
    }

    fn lock_failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_sockets(&self) -> std::sync::MutexGuard<'_, SocketCounts> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_core::login_throttle::FREE_LOGIN_FAILURES;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_burst_passes_then_the_rate_applies_per_key() {
        let gate = RateGate::new(
            RateLimits {
                messages_per_user: Rate::new(3, 60),
                ..RateLimits::default()
            },
            None,
        );
        for _ in 0..3 {
            assert!(gate.messages(1, 1).is_ok());
        }
        let refused = gate.messages(1, 1).unwrap_err();
        assert_eq!(refused.limit, Limit::Messages);
        assert!(refused.retry_after <= Duration::from_secs(1));
        assert!(
            gate.messages(2, 1).is_ok(),
            "another user has their own bucket"
        );
        assert!(
            gate.messages(3, 5).is_ok(),
            "more than the burst at once takes the whole burst"
        );
        assert!(gate.messages(3, 1).is_err());
    }

    #[test]
    fn failed_logins_lock_the_account_out_with_growing_waits() {
        let gate = RateGate::new(RateLimits::default(), None);
        for _ in 0..FREE_LOGIN_FAILURES - 1 {
            assert!(gate.login_here(ip(1), "Ann@example.com").is_ok());
            gate.login_result_here("ann@example.com", false);
        }
        assert!(gate.login_here(ip(1), "ann@example.com").is_ok());
        gate.login_result_here("ann@example.com", false);
        let locked = gate.login_here(ip(2), "ANN@example.com").unwrap_err();
        assert_eq!(locked.limit, Limit::LoginLockout);
        assert!(locked.retry_after <= Duration::from_secs(1));
        gate.login_result_here("ann@example.com", true);
        assert!(
            gate.login_here(ip(2), "ann@example.com").is_ok(),
            "success clears it"
        );
    }

    #[test]
    fn socket_slots_are_counted_and_given_back() {
        let gate = Arc::new(RateGate::new(
            RateLimits {
                max_sockets_per_user: 2,
                ..RateLimits::default()
            },
            None,
        ));
        let a = gate.open_socket(7, ip(1)).unwrap();
        let _b = gate.open_socket(7, ip(1)).unwrap();
        assert_eq!(
            gate.open_socket(7, ip(1)).err().map(|l| l.limit),
            Some(Limit::SocketsPerUser)
        );
        drop(a);
        assert!(gate.open_socket(7, ip(1)).is_ok());
    }
}
