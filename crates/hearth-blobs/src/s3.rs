//! Blobs in S3 or an S3-compatible store (MinIO, Ceph, moto, …) through `object_store`.
//!
//! Object names are `<prefix><key>`. Files larger than one part are uploaded as multipart
//! uploads read from the staging file a part at a time, so memory stays bounded whatever the
//! file's size. Requests time out and are retried only briefly: an unreachable store must
//! produce a clear error quickly, not a hung upload.

use crate::{ConfigError, S3Credentials, check_key};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use hearth_core::files::{Blob, BlobError, BlobStore};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, RetryConfig, WriteMultipart,
};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Files up to this size go up in one request; larger ones as multipart uploads with parts of
/// this size (S3's minimum part is 5 MiB).
const PART: usize = 8 << 20;
/// Parts in flight at once per upload: memory per upload is about `PART * (this + 1)`.
const PARTS_IN_FLIGHT: usize = 2;
/// Bytes read from the staging file at a time.
const READ_CHUNK: usize = 1 << 20;

/// Where the blobs are, parsed from `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&allow_http=true]`.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Prepended to every key; empty or ending in `/`.
    pub prefix: String,
    /// For S3-compatible stores; AWS otherwise.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub allow_http: bool,
    pub credentials: S3Credentials,
}

impl S3Config {
    pub fn from_url(raw: &str, credentials: &S3Credentials) -> Result<S3Config, ConfigError> {
        let bad = |reason: &str| ConfigError::BadS3Url {
            url: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "s3" {
            return Err(bad("the scheme must be s3"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // URLs end up in logs; secrets belong in the environment or the config file.
            return Err(bad(
                "put credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the [files] table, not the URL",
            ));
        }
        let bucket = url
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| bad("no bucket"))?
            .to_owned();
        let mut prefix = url.path().trim_matches('/').to_owned();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        let mut config = S3Config {
            bucket,
            prefix,
            endpoint: None,
            region: credentials.region.clone(),
            allow_http: false,
            credentials: credentials.clone(),
        };
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "endpoint" => config.endpoint = Some(value.into_owned()),
                "region" => config.region = Some(value.into_owned()),
                "allow_http" => {
                    config.allow_http = match value.as_ref() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad("allow_http is true or false")),
                    }
                }
                other => return Err(bad(&format!("unknown parameter {other:?}"))),
            }
        }
        Ok(config)
    }
}

pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

fn s3_error(error: object_store::Error) -> BlobError {
    match error {
        object_store::Error::NotFound { .. } => BlobError::NotFound,
        // Misconfiguration: retrying will not help.
        e @ (object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. }
        | object_store::Error::InvalidPath { .. }) => BlobError::Backend(e.to_string()),
        other => BlobError::Unavailable(other.to_string()),
    }
}

impl S3Blobs {
    pub fn connect(config: &S3Config) -> Result<S3Blobs, ConfigError> {
        // Anything not set here comes from the AWS_* environment variables.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            // Before allow_http, which lives in the client options this replaces.
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(3))
                    .with_timeout(Duration::from_secs(60)),
            )
            .with_allow_http(config.allow_http)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(id) = &config.credentials.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.credentials.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store: AmazonS3 = builder
            .build()
            .map_err(|e| BlobError::Backend(format!("S3 configuration: {e}")))?;
        Ok(S3Blobs {
            store: Arc::new(store),
            prefix: config.prefix.clone(),
        })
    }

    fn path(&self, key: &str) -> Result<ObjectPath, BlobError> {
        check_key(key)?;
        Ok(ObjectPath::from(format!("{}{key}", self.prefix)))
    }

    async fn upload_parts(
        &self,
        path: &ObjectPath,
        mut file: tokio::fs::File,
    ) -> Result<(), BlobError> {
        let upload = self.store.put_multipart(path).await.map_err(s3_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buffer = vec![0u8; READ_CHUNK];
        let result: Result<(), BlobError> = async {
            loop {
                let n = file.read(&mut buffer).await?;
                if n == 0 {
                    return Ok(());
                }
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(s3_error)?;
                writer.write(&buffer[..n]);
            }
        }
        .await;
        match result {
            Ok(()) => {
                writer.finish().await.map_err(s3_error)?;
                Ok(())
            }
            Err(error) => {
                // Leave no half-uploaded parts billed in the bucket.
                let _ = writer.abort().await;
                Err(error)
            }
        }
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        let object = self.path(key)?;
        if self.exists(key).await? {
            return Ok(());
        }
        let file = tokio::fs::File::open(path).await?;
        let size = file.metadata().await?.len();
        if size as usize <= PART {
            let bytes = tokio::fs::read(path).await?;
            self.store
                .put(&object, Bytes::from(bytes).into())
                .await
                .map_err(s3_error)?;
            Ok(())
        } else {
            self.upload_parts(&object, file).await
        }
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        let object = self.path(key)?;
        if self.exists(key).await? {
            return Ok(());
        }
        self.store
            .put(&object, bytes.into())
            .await
            .map_err(s3_error)?;
        Ok(())
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Blob, BlobError> {
        let object = self.path(key)?;
        let options = GetOptions {
            // object_store refuses empty ranges; an empty read needs no request body anyway.
            range: range.filter(|r| r.start < r.end).map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&object, options)
            .await
            .map_err(s3_error)?;
        let size = result.meta.size;
        let stream = result.into_stream().map(|chunk| chunk.map_err(s3_error));
        Ok(Blob {
            size,
            stream: Box::pin(stream),
        })
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        match self.store.head(&self.path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(s3_error(error)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(s3_error(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let none = S3Credentials::default();
        let c = S3Config::from_url(
            "s3://media/hearth/blobs?endpoint=http://127.0.0.1:9000&region=eu-west-1&allow_http=true",
            &none,
        )
        .unwrap();
        assert_eq!(c.bucket, "media");
        assert_eq!(c.prefix, "hearth/blobs/");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert!(c.allow_http);
        assert_eq!(S3Config::from_url("s3://b", &none).unwrap().prefix, "");
        assert!(S3Config::from_url("s3://", &none).is_err());
        assert!(S3Config::from_url("s3://b?endpont=x", &none).is_err());
        assert!(S3Config::from_url("s3://key:secret@b", &none).is_err());
    }
}
