//! Blob stores for Hearth's file attachments: the core's [`BlobStore`] on local disk
//! ([`LocalBlobs`], the embedded default) and on S3-compatible object storage ([`S3Blobs`],
//! feature `aws`).
//!
//! Keys are SHA-256 hashes of the bytes (64 lowercase hex digits, checked by every method), so
//! a key always names the same bytes and storing an existing key again does nothing.

mod local;
#[cfg(feature = "aws")]
mod s3;

pub use local::LocalBlobs;
#[cfg(feature = "aws")]
pub use s3::{S3Blobs, S3Config};

use hearth_core::files::{BlobError, BlobStore};
use std::sync::Arc;

/// A bad `--files` setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "unsupported files store {0:?} (use \"local\" or s3://BUCKET[/PREFIX][?endpoint=URL&region=R&allow_http=true])"
    )]
    Unsupported(String),
    #[error("this build has no S3 support (build hearth with the `aws` feature)")]
    NoS3,
    #[error("invalid S3 URL {url:?}: {reason}")]
    BadS3Url { url: String, reason: String },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("files directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Credentials and endpoint details that may also come from the configuration file rather
/// than the URL or the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `AWS_ENDPOINT`, … are read when these are not set).
#[derive(Debug, Clone, Default)]
pub struct S3Credentials {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub region: Option<String>,
}

/// Opens the store a `--files` setting names: `local` (blobs under `local_dir`) or an `s3://`
/// URL.
pub fn open(
    setting: &str,
    local_dir: &std::path::Path,
    credentials: &S3Credentials,
) -> Result<Arc<dyn BlobStore>, ConfigError> {
    if setting == "local" {
        return Ok(Arc::new(LocalBlobs::open(local_dir)?));
    }
    if setting.starts_with("s3://") {
        #[cfg(feature = "aws")]
        {
            let config = S3Config::from_url(setting, credentials)?;
            return Ok(Arc::new(S3Blobs::connect(&config)?));
        }
        #[cfg(not(feature = "aws"))]
        {
            let _ = credentials;
            return Err(ConfigError::NoS3);
        }
    }
    Err(ConfigError::Unsupported(setting.to_owned()))
}

fn check_key(key: &str) -> Result<(), BlobError> {
    if hearth_core::files::valid_blob_key(key) {
        Ok(())
    } else {
        Err(BlobError::BadKey(key.chars().take(80).collect()))
    }
}
