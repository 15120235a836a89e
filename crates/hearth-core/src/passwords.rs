//! Password hashing (argon2id) in memory that is reused rather than allocated per hash.
//!
//! Argon2's default parameters fill 19 MiB of 1 KiB blocks per hash. Allocating that afresh for
//! every sign-up and login left the allocator's arenas fragmented and the server's RSS hundreds
//! of MB high for good; mapping and unmapping it each time instead costs page faults and zeroing
//! on every login. [`PasswordHashing`] keeps up to one block buffer per concurrent hash (the
//! caller bounds concurrency: [`crate::accounts::Accounts`] runs at most one hash per core) and
//! lends one out for the duration of each hash, so the same few buffers serve every login.
//!
//! The hashes are exactly those of `Argon2::default()` (argon2id, v=19, m=19456, t=2, p=1,
//! 16-byte salt, 32-byte output, PHC string), and verification accepts whatever
//! `Argon2::default().verify_password` accepts (argon2id, argon2i, argon2d, v=16 or v=19, the
//! parameters written in the stored string), so hashes already stored stay valid either way.

use crate::StoreError;
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::{Mutex, PoisonError};

/// Blocks in a pooled buffer: what the default parameters need (19,456 blocks of 1 KiB).
const POOLED_BLOCKS: usize = Params::DEFAULT.block_count();

/// The most memory (in 1 KiB blocks) a stored hash may ask for: 256 MiB. Verifying a hash
/// whose parameters need more than a pooled buffer holds borrows a temporary buffer; beyond
/// this a stored hash is refused rather than allowed to make the server allocate gigabytes.
const MAX_BLOCKS: usize = 256 * 1024;

/// Hashes and verifies passwords, reusing argon2's working memory across calls.
///
/// Buffers are allocated on first use and kept, up to `keep` of them; each hash takes one out
/// of the pool for its whole run, so no buffer is ever used by two hashes at once. With at most
/// `keep` hashes running at a time (the caller's semaphore), at most `keep` buffers exist.
pub struct PasswordHashing {
    spare: Mutex<Vec<Vec<Block>>>,
    keep: usize,
}

/// Why a hash could not be computed.
enum Failure {
    /// The parameters need more memory than [`MAX_BLOCKS`].
    TooMuchMemory { blocks: usize },
    /// Anything argon2 or the PHC format refused (bad salt, bad lengths, ...).
    Argon2(argon2::password_hash::Error),
}

impl From<argon2::password_hash::Error> for Failure {
    fn from(e: argon2::password_hash::Error) -> Self {
        Failure::Argon2(e)
    }
}

fn too_much_memory(blocks: usize) -> StoreError {
    StoreError::Backend(format!(
        "stored password hash needs {} MiB of memory to verify, more than the {} MiB allowed",
        blocks / 1024,
        MAX_BLOCKS / 1024
    ))
}

impl PasswordHashing {
    /// A pool that keeps at most `keep` buffers: the number of hashes that may run at once.
    pub fn new(keep: usize) -> Self {
        PasswordHashing {
            spare: Mutex::new(Vec::with_capacity(keep)),
            keep,
        }
    }

    /// Hashes `password` with a fresh random salt, as `Argon2::default().hash_password` would.
    pub fn hash(&self, password: &[u8]) -> Result<String, StoreError> {
        self.hash_with_salt(password, &crate::random_bytes::<16>())
    }

    /// Hashes `password` with the given raw salt bytes (16 of them for Hearth's hashes).
    pub fn hash_with_salt(&self, password: &[u8], salt: &[u8]) -> Result<String, StoreError> {
        let salt =
            SaltString::encode_b64(salt).map_err(|e| StoreError::Backend(format!("salt: {e}")))?;
        // What `Argon2::default()` is, spelled out: the PHC string names all three.
        let algorithm = Algorithm::Argon2id;
        let version = Version::V0x13;
        let argon2 = Argon2::new(algorithm, version, Params::DEFAULT);
        let output = match self.compute(&argon2, password, salt.as_salt()) {
            Ok(output) => output,
            Err(Failure::TooMuchMemory { blocks }) => return Err(too_much_memory(blocks)),
            Err(Failure::Argon2(e)) => return Err(StoreError::Backend(format!("hashing: {e}"))),
        };
        let params = ParamsString::try_from(argon2.params())
            .map_err(|e| StoreError::Backend(format!("hashing: {e}")))?;
        let phc = PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches the stored PHC string `stored`.
    ///
    /// Like `Argon2::default().verify_password`, anything that is not a well-formed argon2
    /// hash simply does not match (`Ok(false)`). The one error is a stored hash whose
    /// parameters would need more than 256 MiB: refused before anything is allocated.
    pub fn verify(&self, password: &[u8], stored: &str) -> Result<bool, StoreError> {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return Ok(false);
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Ok(false);
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
            return Ok(false);
        };
        let version = match parsed.version.map(Version::try_from).transpose() {
            Ok(version) => version.unwrap_or_default(),
            Err(_) => return Ok(false),
        };
        // Reads m, t, p, keyid and data from the string, and the output length from the hash.
        let Ok(params) = Params::try_from(&parsed) else {
            return Ok(false);
        };
        let argon2 = Argon2::new(algorithm, version, params);
        match self.compute(&argon2, password, salt) {
            // `Output`'s `PartialEq` is a constant-time comparison (`subtle::ConstantTimeEq`).
            Ok(computed) => Ok(computed == expected),
            Err(Failure::TooMuchMemory { blocks }) => Err(too_much_memory(blocks)),
            Err(Failure::Argon2(_)) => Ok(false),
        }
    }

    /// Runs argon2 over `password` and the b64-decoded `salt`, in pooled memory when the
    /// parameters fit a pooled buffer and in a temporary one (bounded) when they need more.
    fn compute(
        &self,
        argon2: &Argon2<'_>,
        password: &[u8],
        salt: Salt<'_>,
    ) -> Result<Output, Failure> {
        let mut salt_buf = [0u8; Salt::MAX_LENGTH];
        let salt_bytes = salt.decode_b64(&mut salt_buf)?;
        let params = argon2.params();
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let blocks = params.block_count();
        let run = |memory: &mut [Block]| {
            Output::init_with(output_len, |out| {
                Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, memory)?)
            })
        };
        if blocks <= POOLED_BLOCKS {
            let mut lease = self.lease();
            Ok(run(&mut lease.blocks[..blocks])?)
        } else if blocks <= MAX_BLOCKS {
            // Kept for this call only: parameters other than ours are rare (older hashes).
            let mut temporary = vec![Block::default(); blocks];
            Ok(run(&mut temporary)?)
        } else {
            Err(Failure::TooMuchMemory { blocks })
        }
    }

    /// Takes a buffer out of the pool (allocating one if none is spare) until the lease drops.
    fn lease(&self) -> Lease<'_> {
        let spare = self.lock().pop();
        let blocks = spare.unwrap_or_else(|| vec![Block::default(); POOLED_BLOCKS]);
        Lease { pool: self, blocks }
    }

    /// The pool's buffers; a panic while it was held cannot leave the list inconsistent.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        self.spare.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many buffers are waiting in the pool.
    #[cfg(test)]
    fn spare_buffers(&self) -> usize {
        self.lock().len()
    }
}

/// A pooled buffer in use by one hash; goes back to the pool when dropped (unless the pool
/// already keeps as many as it may, in which case it is freed).
struct Lease<'a> {
    pool: &'a PasswordHashing,
    blocks: Vec<Block>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let blocks = std::mem::take(&mut self.blocks);
        let mut spare = self.pool.lock();
        if spare.len() < self.pool.keep {
            spare.push(blocks);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    const PASSWORD: &[u8] = b"correct horse battery staple";

    fn custom(algorithm: Algorithm, version: Version, m: u32, t: u32, p: u32) -> String {
        let params = Params::new(m, t, p, None).unwrap();
        let salt = SaltString::encode_b64(&[3u8; 16]).unwrap();
        Argon2::new(algorithm, version, params)
            .hash_password(PASSWORD, &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn pooled_output_is_what_argon2_default_makes() {
        let pool = PasswordHashing::new(2);
        let salt = [9u8; 16];
        let ours = pool.hash_with_salt(PASSWORD, &salt).unwrap();
        let theirs = Argon2::default()
            .hash_password(PASSWORD, &SaltString::encode_b64(&salt).unwrap())
            .unwrap()
            .to_string();
        assert_eq!(ours, theirs);
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[test]
    fn pool_hashes_verify_with_argon2_and_back() {
        let pool = PasswordHashing::new(2);
        let ours = pool.hash(PASSWORD).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(PASSWORD, &parsed).is_ok());
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );

        // What users' databases already hold.
        let salt = SaltString::encode_b64(&crate::random_bytes::<16>()).unwrap();
        let stored = Argon2::default()
            .hash_password(PASSWORD, &salt)
            .unwrap()
            .to_string();
        assert!(pool.verify(PASSWORD, &stored).unwrap());
        assert!(
            !pool
                .verify(b"correct horse battery stapler", &stored)
                .unwrap()
        );
        assert!(!pool.verify(b"", &stored).unwrap());
        // Two salts, two strings.
        assert_ne!(pool.hash(PASSWORD).unwrap(), ours);
    }

    #[test]
    fn smaller_and_other_params_verify_in_pooled_memory() {
        let pool = PasswordHashing::new(1);
        for stored in [
            custom(Algorithm::Argon2id, Version::V0x13, 64, 1, 1),
            custom(Algorithm::Argon2id, Version::V0x13, 64, 1, 2),
            custom(Algorithm::Argon2i, Version::V0x13, 256, 3, 1),
            custom(Algorithm::Argon2d, Version::V0x10, 128, 2, 1),
        ] {
            assert!(pool.verify(PASSWORD, &stored).unwrap(), "{stored}");
            assert!(
                !pool.verify(b"not the password", &stored).unwrap(),
                "{stored}"
            );
        }
        // A 64-byte output (the length comes from the stored hash).
        let params = Params::new(64, 1, 1, Some(64)).unwrap();
        let salt = SaltString::encode_b64(&[5u8; 16]).unwrap();
        let long = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(PASSWORD, &salt)
            .unwrap()
            .to_string();
        assert!(pool.verify(PASSWORD, &long).unwrap());
        assert!(!pool.verify(b"nope", &long).unwrap());
        // All of that ran in the one pooled buffer, which the smaller runs left full-sized.
        assert_eq!(pool.spare_buffers(), 1);
        assert_eq!(pool.lease().blocks.len(), POOLED_BLOCKS);
    }

    #[test]
    fn larger_params_verify_in_temporary_memory() {
        let pool = PasswordHashing::new(1);
        // 32 MiB: more than a pooled buffer holds.
        let stored = custom(Algorithm::Argon2id, Version::V0x13, 32 * 1024, 1, 1);
        assert!(pool.verify(PASSWORD, &stored).unwrap());
        assert!(!pool.verify(b"not the password", &stored).unwrap());
        // The temporary buffer was not kept.
        assert_eq!(pool.spare_buffers(), 0);
    }

    #[test]
    fn absurd_memory_is_refused_without_allocating() {
        let pool = PasswordHashing::new(1);
        let valid = pool.hash(PASSWORD).unwrap();
        let tail = valid.rsplitn(3, '$').take(2).collect::<Vec<_>>();
        let (hash, salt) = (tail[0], tail[1]);
        // 262,148 KiB is the smallest m over the limit: block counts round down to 4·p.
        for m in ["4294967295", "262148", "1048576"] {
            let stored = format!("$argon2id$v=19$m={m},t=1,p=1${salt}${hash}");
            let started = std::time::Instant::now();
            let err = pool.verify(PASSWORD, &stored).unwrap_err();
            assert!(
                err.to_string().contains("more than the 256 MiB allowed"),
                "{err}"
            );
            // Refused up front: no 4 TiB allocation (which would abort), no hashing.
            assert!(started.elapsed() < std::time::Duration::from_millis(500));
        }
        assert_eq!(pool.spare_buffers(), 1);
    }

    #[test]
    fn garbage_does_not_match_or_panic() {
        let pool = PasswordHashing::new(1);
        let valid = pool.hash(PASSWORD).unwrap();
        let tail = valid.rsplitn(3, '$').take(2).collect::<Vec<_>>();
        let (hash, salt) = (tail[0], tail[1]);
        let cases = [
            String::new(),
            "garbage".into(),
            "$".into(),
            "$$$$$".into(),
            "$argon2id".into(),
            "$argon2id$v=19$m=19456,t=2,p=1".into(),
            format!("$argon2id$v=19$m=19456,t=2,p=1${salt}"),
            format!("$argon2id$v=19$m=19456,t=2,p=1${salt}$"),
            format!("$argon2id$v=19$m=19456,t=2,p=1${salt}$AAAA"),
            format!("$argon2id$v=19$m=19456,t=2,p=1$AAAA${hash}"),
            format!("$argon2id$v=19$m=19456,t=2,p=1$!!!!!!!!!!!!!!!!!!!!!!${hash}"),
            format!("$argon2id$v=99$m=19456,t=2,p=1${salt}${hash}"),
            format!("$argon2x$v=19$m=19456,t=2,p=1${salt}${hash}"),
            format!("$scrypt$ln=16,r=8,p=1${salt}${hash}"),
            format!("$argon2id$v=19$m=0,t=2,p=1${salt}${hash}"),
            format!("$argon2id$v=19$m=19456,t=0,p=1${salt}${hash}"),
            format!("$argon2id$v=19$m=19456,t=2,p=0${salt}${hash}"),
            format!("$argon2id$v=19$m=64,t=1,p=16777215${salt}${hash}"),
            format!("$argon2id$v=19$m=-1,t=2,p=1${salt}${hash}"),
            format!("$argon2id$v=19$m=19456,t=2,p=1,x=1${salt}${hash}"),
            format!("$argon2id$v=19$m=19456,t=2,p=1,data=!!${salt}${hash}"),
            format!(
                "$argon2id$v=19$m=19456,t=2,p=1${salt}${hash}{}",
                "A".repeat(200)
            ),
            valid.replace("$argon2id$", "$argon2i$"),
            valid[..valid.len() - 1].to_owned(),
            "\u{0}\u{ffff}$argon2id$".into(),
        ];
        for stored in &cases {
            assert!(!pool.verify(PASSWORD, stored).unwrap_or(false), "{stored}");
        }
        assert!(pool.verify(PASSWORD, &valid).unwrap());
    }

    #[test]
    fn buffers_are_reused_and_bounded() {
        let pool = PasswordHashing::new(2);
        assert_eq!(pool.spare_buffers(), 0, "allocated lazily");
        let first = pool.hash(PASSWORD).unwrap();
        let second = pool.hash(PASSWORD).unwrap();
        assert_eq!(
            pool.spare_buffers(),
            1,
            "sequential hashes share one buffer"
        );
        assert!(pool.verify(PASSWORD, &first).unwrap());
        assert!(pool.verify(PASSWORD, &second).unwrap());
        assert_eq!(pool.spare_buffers(), 1);

        // Two leases at once get two different buffers; a third beyond `keep` is freed.
        let a = pool.lease();
        let b = pool.lease();
        let c = pool.lease();
        assert_ne!(a.blocks.as_ptr(), b.blocks.as_ptr());
        assert_ne!(b.blocks.as_ptr(), c.blocks.as_ptr());
        assert_ne!(a.blocks.as_ptr(), c.blocks.as_ptr());
        assert_eq!(pool.spare_buffers(), 0);
        drop((a, b, c));
        assert_eq!(pool.spare_buffers(), 2);
    }

    #[test]
    fn concurrent_hashes_all_verify() {
        let pool = PasswordHashing::new(2);
        std::thread::scope(|s| {
            let handles = (0..4)
                .map(|i| {
                    let pool = &pool;
                    s.spawn(move || {
                        let password = format!("password number {i}");
                        let stored = pool.hash(password.as_bytes()).unwrap();
                        let parsed = PasswordHash::new(&stored).unwrap();
                        assert!(
                            Argon2::default()
                                .verify_password(password.as_bytes(), &parsed)
                                .is_ok()
                        );
                        assert!(pool.verify(password.as_bytes(), &stored).unwrap());
                        assert!(!pool.verify(b"someone else's", &stored).unwrap());
                    })
                })
                .collect::<Vec<_>>();
            for handle in handles {
                handle.join().unwrap();
            }
        });
        assert!(pool.spare_buffers() <= 2);
    }
}
