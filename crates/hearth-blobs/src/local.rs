//! Blobs as files on local disk: `<root>/<k[0..2]>/<k[2..4]>/<key>`.
//!
//! Two levels of 256 directories keep every directory small. A blob is written completely and
//! synced before it is renamed into place, and the directory is synced after, so a key that
//! exists is always whole, even after a crash.

use crate::check_key;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use hearth_core::files::{Blob, BlobError, BlobStore};
use std::io::{ErrorKind, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes read from disk per chunk of a download.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// Blobs under `root` (created if missing).
    pub fn open(root: &Path) -> std::io::Result<LocalBlobs> {
        std::fs::create_dir_all(root)?;
        Ok(LocalBlobs {
            root: root.to_owned(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        check_key(key)?;
        Ok(self.root.join(&key[..2]).join(&key[2..4]).join(key))
    }

    /// Moves (or, across filesystems, copies) `from` to `to` so that `to` appears whole.
    fn install(from: &Path, to: &Path) -> std::io::Result<()> {
        let dir = to.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        if let Err(error) = std::fs::rename(from, to) {
            if error.kind() != ErrorKind::CrossesDevices {
                return Err(error);
            }
            // Staging on another filesystem: copy beside the target, sync, then rename.
            let temp = dir.join(format!(".{}.tmp", random_hex()));
            let copied = std::fs::copy(from, &temp)
                .and_then(|_| std::fs::File::open(&temp)?.sync_all())
                .and_then(|()| std::fs::rename(&temp, to));
            if copied.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
            copied?;
        }
        // The rename is durable only once the directory entry is on disk.
        std::fs::File::open(dir)?.sync_all()
    }
}

fn random_hex() -> String {
    hex::encode(hearth_core::random_bytes::<8>())
}

fn io_error(error: std::io::Error) -> BlobError {
    if error.kind() == ErrorKind::NotFound {
        BlobError::NotFound
    } else {
        BlobError::Io(error)
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BlobError::Backend(format!("blob task failed: {e}")))?
        .map_err(BlobError::Io)
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        let target = self.path(key)?;
        if tokio::fs::try_exists(&target).await? {
            return Ok(());
        }
        let source = path.to_owned();
        blocking(move || LocalBlobs::install(&source, &target)).await
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        let target = self.path(key)?;
        if tokio::fs::try_exists(&target).await? {
            return Ok(());
        }
        blocking(move || {
            let dir = target.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let temp = dir.join(format!(".{}.tmp", random_hex()));
            let written = std::fs::write(&temp, &bytes)
                .and_then(|()| std::fs::File::open(&temp)?.sync_all())
                .and_then(|()| LocalBlobs::install(&temp, &target));
            if written.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
            written
        })
        .await
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Blob, BlobError> {
        let path = self.path(key)?;
        let mut file = tokio::fs::File::open(&path).await.map_err(io_error)?;
        let size = file.metadata().await?.len();
        let range = range.unwrap_or(0..size);
        if range.start > range.end || range.end > size {
            return Err(BlobError::Backend(format!(
                "range {range:?} outside a blob of {size} bytes"
            )));
        }
        file.seek(SeekFrom::Start(range.start)).await?;
        let reader = file.take(range.end - range.start);
        let stream = tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK)
            .map(|chunk| chunk.map_err(BlobError::Io));
        Ok(Blob {
            size,
            stream: Box::pin(stream),
        })
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        Ok(tokio::fs::try_exists(self.path(key)?).await?)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(error) if error.kind() != ErrorKind::NotFound => Err(BlobError::Io(error)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(blob: Blob) -> Vec<u8> {
        let mut out = Vec::new();
        let mut stream = blob.stream;
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn stores_once_reads_ranges_and_refuses_bad_keys() {
        let dir = std::env::temp_dir().join(format!("hearth-blobs-{}", random_hex()));
        let blobs = LocalBlobs::open(&dir.join("blobs")).unwrap();
        let key = "ab".repeat(32);
        let staged = dir.join("upload.part");
        std::fs::write(&staged, b"hello world").unwrap();
        blobs.put_file(&key, &staged).await.unwrap();
        assert!(!staged.exists(), "moved, not copied");
        assert!(blobs.exists(&key).await.unwrap());
        // Again: a no-op that leaves the new file where it is.
        std::fs::write(&staged, b"hello world").unwrap();
        blobs.put_file(&key, &staged).await.unwrap();
        assert!(staged.exists());

        let whole = blobs.get(&key, None).await.unwrap();
        assert_eq!(whole.size, 11);
        assert_eq!(read_all(whole).await, b"hello world");
        let part = blobs.get(&key, Some(6..11)).await.unwrap();
        assert_eq!(read_all(part).await, b"world");

        for bad in ["../../etc/passwd", "AB", &"g".repeat(64)] {
            assert!(matches!(
                blobs.get(bad, None).await,
                Err(BlobError::BadKey(_))
            ));
        }
        let missing = "cd".repeat(32);
        assert!(matches!(
            blobs.get(&missing, None).await,
            Err(BlobError::NotFound)
        ));
        blobs.delete(&key).await.unwrap();
        blobs.delete(&key).await.unwrap();
        assert!(!blobs.exists(&key).await.unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
