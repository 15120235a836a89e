//! Login protection that every node of a cluster shares.
//!
//! Each node limits login attempts itself (the server's rate gate). Behind a balancer with N
//! nodes, someone guessing one account's password would get that budget N times over, so the
//! per-account part — the attempt rate and the lock-out after failed logins — is also kept
//! where every node sees it: a [`LoginThrottle`] (Redis in cluster mode). The per-node limits
//! stay, so a throttle that cannot be reached leaves each node's own limits in force.

use crate::StoreError;
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Consecutive failed logins of one account before each further attempt must wait.
pub const FREE_LOGIN_FAILURES: u32 = 5;
/// The longest lock-out after failed logins.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Failures are forgotten after this long without another one.
pub const FAILURES_REMEMBERED: Duration = Duration::from_secs(30 * 60);

/// How long an account is locked after its `failures`-th consecutive failed login: not at
/// all for the first few, then 1 s, 2 s, 4 s … up to [`MAX_LOCKOUT`].
pub fn lockout_after(failures: u32) -> Option<Duration> {
    let doublings = failures.checked_sub(FREE_LOGIN_FAILURES)?.min(10);
    Some(Duration::from_secs(1u64 << doublings).min(MAX_LOCKOUT))
}

/// The account a login names, as limits key it: `Ann@Example.com ` and `ann@example.com`
/// are one account.
pub fn normalized_account(account: &str) -> String {
    account.trim().to_lowercase()
}

/// A fixed-size, opaque key for an account (a login body's email is client input of any
/// length): hex SHA-256 of the normalized account.
pub fn account_key(account: &str) -> String {
    hex::encode(Sha256::digest(normalized_account(account).as_bytes()))
}

/// Why a login attempt must wait, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Locked out after failed logins.
    LockedOut(Duration),
    /// Over the account's attempt rate.
    TooFrequent(Duration),
}

/// The per-account login limits, shared by every node.
#[async_trait]
pub trait LoginThrottle: Send + Sync {
    /// Before a password is checked: `None` if `account` may try now (the attempt is
    /// counted against a rate of `burst` at once and `per_minute` sustained), otherwise why
    /// not.
    async fn admit(
        &self,
        account: &str,
        burst: u32,
        per_minute: u32,
    ) -> Result<Option<LoginRefusal>, StoreError>;

    /// After the password was checked: a success forgets the account's failures; a failure
    /// counts, and locks the account for [`lockout_after`] the failures so far.
    async fn record(&self, account: &str, succeeded: bool) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_start_after_the_free_failures_and_double_up_to_the_cap() {
        assert_eq!(lockout_after(0), None);
        assert_eq!(lockout_after(FREE_LOGIN_FAILURES - 1), None);
        assert_eq!(
            lockout_after(FREE_LOGIN_FAILURES),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            lockout_after(FREE_LOGIN_FAILURES + 3),
            Some(Duration::from_secs(8))
        );
        assert_eq!(lockout_after(FREE_LOGIN_FAILURES + 10), Some(MAX_LOCKOUT));
        assert_eq!(lockout_after(u32::MAX), Some(MAX_LOCKOUT));
    }

    #[test]
    fn accounts_are_keyed_case_and_space_insensitively() {
        assert_eq!(
            account_key(" Ann@Example.com"),
            account_key("ann@example.com")
        );
        assert_ne!(
            account_key("ann@example.com"),
            account_key("ben@example.com")
        );
        assert_eq!(account_key(&"x".repeat(10_000)).len(), 64);
    }
}
