//! Sign-up, login and sessions.
//!
//! A session token is 32 random bytes (base64url) handed to the client once; stores keep only
//! its SHA-256, so a leaked database cannot be replayed as sessions. Passwords are hashed with
//! argon2id on the blocking pool, at most one hash per core at a time, so a burst of logins
//! cannot stall the sockets served by the async runtime; each hash runs in one of (at most)
//! one-per-core reused memory buffers (`PasswordHashing`), not a fresh 19 MiB allocation.

use crate::files::FileRecord;
use crate::model::{NewUser, User};
use crate::passwords::PasswordHashing;
use crate::store::{SessionStore, UserStore};
use crate::validate::{self, Invalid};
use crate::{StoreError, now_ms, random_bytes};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("username already taken")]
    UsernameTaken,
    #[error("email already registered")]
    EmailTaken,
    #[error("wrong email or password")]
    LoginFailed,
    /// A password change whose current password is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// Right password, banned account. Told only to whoever knows the password.
    #[error("this account is banned")]
    Banned,
    /// The account exists but its first session could not be opened: the client should log
    /// in rather than sign up again (which would say the username is taken).
    #[error("account created, but no session could be opened ({0}); log in")]
    CreatedWithoutSession(StoreError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UsernameTaken => AccountError::UsernameTaken,
            StoreError::EmailTaken => AccountError::EmailTaken,
            other => AccountError::Store(other),
        }
    }
}

/// Whether `file` may be `user`'s avatar: a file they uploaded themselves, and an image a
/// thumbnail was made of. Only the thumbnail is ever served as an avatar, so no one is sent
/// the full upload through it.
pub fn check_avatar(user: &User, file: &FileRecord) -> Result<(), Invalid> {
    if file.uploader_id != user.id {
        return Err(Invalid("an avatar must be an image you uploaded".into()));
    }
    if !file.is_image() || file.thumbnail_sha256.is_none() {
        return Err(Invalid(
            "an avatar must be a PNG, JPEG, GIF or WebP image of readable size".into(),
        ));
    }
    Ok(())
}

/// A freshly issued session: the token goes to the client, never to a store.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub expires_at_ms: i64,
    pub user: User,
}

pub struct Accounts {
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    session_ttl: Duration,
    hashing: Semaphore,
    /// Argon2's working memory, one buffer per `hashing` permit at most.
    passwords: Arc<PasswordHashing>,
}

impl Accounts {
    pub fn new(
        users: Arc<dyn UserStore>,
        sessions: Arc<dyn SessionStore>,
        session_ttl: Duration,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Accounts {
            users,
            sessions,
            session_ttl,
            hashing: Semaphore::new(cores),
            passwords: Arc::new(PasswordHashing::new(cores)),
        }
    }

    pub fn session_ttl(&self) -> Duration {
        self.session_ttl
    }

    pub async fn create_account(
        &self,
        username: &str,
        email: &str,
        password: &str,
    ) -> Result<Session, AccountError> {
        validate::username(username)?;
        validate::email(email)?;
        validate::password(password)?;
        let password_hash = self.hash_password(password.to_owned()).await?;
        let user = self
            .users
            .insert_user(NewUser {
                username: username.to_owned(),
                email: validate::normalize_email(email),
                password_hash,
            })
            .await?;
        self.open_session(user)
            .await
            .map_err(AccountError::CreatedWithoutSession)
    }

    /// Checks the credentials and opens a session. An unknown email costs the same hashing
    /// time as a wrong password, so timing does not tell which accounts exist.
    pub async fn login(&self, email: &str, password: &str) -> Result<Session, AccountError> {
        validate::email(email)?;
        validate::password(password)?;
        let found = self
            .users
            .user_credentials(&validate::normalize_email(email))
            .await?;
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, self.dummy_hash().await?),
        };
        let matches = self.verify_password(password.to_owned(), hash).await?;
        match user {
            Some(user) if matches => {
                // Checked after the password, so the ban is no oracle for strangers.
                if self.users.active_user(user.id).await?.is_none() {
                    return Err(AccountError::Banned);
                }
                Ok(self.open_session(user).await?)
            }
            _ => Err(AccountError::LoginFailed),
        }
    }

    /// The user a token belongs to, if it is a live session of a user who is not banned.
    /// Malformed tokens are simply not sessions; only a store failure is an error.
    pub async fn authenticate(&self, token: &str) -> Result<Option<User>, StoreError> {
        if !plausible_token(token) {
            return Ok(None);
        }
        let Some(user_id) = self
            .sessions
            .session_user(&token_hash(token), now_ms())
            .await?
        else {
            return Ok(None);
        };
        self.users.active_user(user_id).await
    }

    /// The account with this id, banned or not (a banned user's messages still show who
    /// sent them, and with what picture).
    pub async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.users.user(id).await
    }

    /// Renames `user`; the name is validated as at sign-up and must be free.
    pub async fn change_username(&self, user: &User, username: &str) -> Result<User, AccountError> {
        validate::username(username)?;
        if !self.users.set_username(user.id, username).await? {
            return Err(AccountError::Store(StoreError::Backend(
                "no such user".into(),
            )));
        }
        Ok(User {
            username: username.to_owned(),
            ..user.clone()
        })
    }

    /// Sets `user`'s avatar to `image`, or with `None` removes it (see [`check_avatar`]).
    pub async fn change_avatar(
        &self,
        user: &User,
        image: Option<&FileRecord>,
    ) -> Result<User, AccountError> {
        if let Some(file) = image {
            check_avatar(user, file)?;
        }
        let avatar = image.map(|f| f.id.clone());
        self.users.set_avatar(user.id, avatar.as_deref()).await?;
        Ok(User {
            avatar,
            ..user.clone()
        })
    }

    /// Changes `user`'s password if `current` is right. Every session of the user ends (a
    /// stolen one too: changing the password is what someone does who fears that) and a
    /// fresh one is opened for the caller.
    pub async fn change_password(
        &self,
        user: &User,
        current: &str,
        new: &str,
    ) -> Result<Session, AccountError> {
        validate::password(new)?;
        let (_, hash) = self
            .users
            .user_credentials(&user.email)
            .await?
            .filter(|(found, _)| found.id == user.id)
            .ok_or(AccountError::WrongPassword)?;
        if validate::password(current).is_err()
            || !self.verify_password(current.to_owned(), hash).await?
        {
            return Err(AccountError::WrongPassword);
        }
        let password_hash = self.hash_password(new.to_owned()).await?;
        self.users
            .set_password_hash(user.id, &password_hash)
            .await?;
        self.sessions.delete_user_sessions(user.id).await?;
        Ok(self.open_session(user.clone()).await?)
    }

    pub async fn logout(&self, token: &str) -> Result<(), StoreError> {
        if !plausible_token(token) {
            return Ok(());
        }
        self.sessions.delete_session(&token_hash(token)).await
    }

    async fn open_session(&self, user: User) -> Result<Session, StoreError> {
        let token = new_token();
        let expires_at_ms = now_ms() + self.session_ttl.as_millis() as i64;
        self.sessions
            .insert_session(&token_hash(&token), user.id, expires_at_ms)
            .await?;
        Ok(Session {
            token,
            expires_at_ms,
            user,
        })
    }

    async fn hash_password(&self, password: String) -> Result<String, AccountError> {
        let passwords = self.passwords.clone();
        self.off_runtime(move || passwords.hash(password.as_bytes()))
            .await
            .map_err(AccountError::Store)
    }

    async fn verify_password(&self, password: String, hash: String) -> Result<bool, AccountError> {
        let passwords = self.passwords.clone();
        self.off_runtime(move || passwords.verify(password.as_bytes(), &hash))
            .await
            .map_err(AccountError::Store)
    }

    async fn dummy_hash(&self) -> Result<String, AccountError> {
        if let Some(hash) = DUMMY_HASH.get() {
            return Ok(hash.clone());
        }
        let passwords = self.passwords.clone();
        self.off_runtime(move || {
            Ok(DUMMY_HASH
                .get_or_init(|| compute_dummy_hash(&passwords))
                .clone())
        })
        .await
        .map_err(AccountError::Store)
    }

    /// Runs CPU-heavy work on the blocking pool, one job per core at most.
    async fn off_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("shutting down".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| StoreError::Backend(format!("hashing task: {e}")))?
    }
}

/// A valid argon2id hash of a password nobody has, verified against when the email is
/// unknown. Computed once, off the runtime like every hash.
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

fn compute_dummy_hash(passwords: &PasswordHashing) -> String {
    passwords
        .hash_with_salt(b"no account has this password", &[7u8; 16])
        .unwrap_or_default()
}

fn new_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// Tokens we issue are 43 base64url characters; anything else is rejected before hashing.
fn plausible_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What stores keep instead of the token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_plausible_and_hashed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(plausible_token(&a));
        assert!(!plausible_token("short"));
        assert!(!plausible_token(&format!("{}!", &a[..42])));
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn dummy_hash_parses() {
        let passwords = PasswordHashing::new(1);
        let dummy = compute_dummy_hash(&passwords);
        assert!(argon2::password_hash::PasswordHash::new(&dummy).is_ok());
        assert!(!passwords.verify(b"some password", &dummy).unwrap());
    }
}
