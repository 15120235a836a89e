//! File attachments: streamed uploads, content-addressed storage, per-upload records, and who
//! may read what.
//!
//! An upload streams into a staging file on local disk while it is hashed and counted; the
//! size limit is enforced on every chunk, so an oversized upload is refused as soon as it
//! passes the limit and its staging file is removed. A finished upload is stored in the
//! [`BlobStore`] under its SHA-256 (identical bytes are stored once) and gets its own
//! [`FileRecord`] with a random id. Images (recognized by their bytes) get their dimensions and
//! a thumbnail, computed on the blocking pool, a bounded number at a time.
//!
//! Reading: a file is readable by its uploader and by whoever can read a conversation holding a
//! message that references it and is not recalled ([`FileStore::readable_file`]). Everyone
//! else, and every id that does not exist, gets the same `403 file_forbidden`.

use crate::media::{self, ImageKind};
use crate::{ImError, StoreError, now_ms, random_bytes};
use async_trait::async_trait;
use bytes::Bytes;
use hearth_proto::native::{FileMeta, FileRef};
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// An upload as stored: one per upload, even when the bytes are shared with other uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// 32 lowercase hex digits: 128 random bits, so ids cannot be guessed or enumerated.
    pub id: String,
    pub uploader_id: i64,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    /// The blob key of the bytes.
    pub sha256: String,
    /// Set exactly for images whose header could be read.
    pub width: Option<i64>,
    pub height: Option<i64>,
    /// The blob key of the thumbnail, if one could be made.
    pub thumbnail_sha256: Option<String>,
    pub created_ms: i64,
}

impl FileRecord {
    pub fn is_image(&self) -> bool {
        self.width.is_some() && self.image_kind().is_some()
    }

    pub fn image_kind(&self) -> Option<ImageKind> {
        ImageKind::from_content_type(&self.content_type)
    }

    /// The content type of the thumbnail.
    pub fn thumbnail_type(&self) -> &'static str {
        self.image_kind().map_or("image/png", media::thumbnail_type)
    }

    pub fn to_ref(&self) -> FileRef {
        FileRef {
            id: self.id.clone(),
            name: self.name.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
            width: self.width,
            height: self.height,
            has_thumbnail: self.thumbnail_sha256.is_some(),
        }
    }

    pub fn to_meta(&self) -> FileMeta {
        FileMeta {
            file: self.to_ref(),
            sha256: self.sha256.clone(),
            uploader_id: self.uploader_id,
            created_at: self.created_ms,
        }
    }
}

/// File records in the database.
#[async_trait]
pub trait FileStore: Send + Sync {
    async fn insert_file(&self, file: &FileRecord) -> Result<(), StoreError>;
    /// The file if `user` may read it: they uploaded it, or a message referencing it that is
    /// not recalled is in a room, or in a direct/group conversation they are a member of and
    /// was sent after they joined. `None` otherwise, and for unknown ids.
    async fn readable_file(&self, id: &str, user: i64) -> Result<Option<FileRecord>, StoreError>;
    /// The records with these ids (unknown ones are left out). No access check: for filling in
    /// messages the caller already holds.
    async fn files(&self, ids: &[String]) -> Result<Vec<FileRecord>, StoreError>;
}

/// Fills in the description (name, size, type, …) of the files that `messages` read from
/// storage reference, with one query for all of them. No access check: the caller already
/// holds the messages. Used for pulls and by search, which indexes a file's name.
pub async fn describe_files(
    store: &dyn FileStore,
    messages: &mut [crate::model::ChatMessage],
) -> Result<(), StoreError> {
    let mut wanted: Vec<String> = messages
        .iter()
        .filter_map(|m| m.file.as_ref())
        .filter(|f| f.meta.is_none())
        .map(|f| f.id.clone())
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    wanted.sort();
    wanted.dedup();
    let found: std::collections::HashMap<String, Box<FileRef>> = store
        .files(&wanted)
        .await?
        .into_iter()
        .map(|f| (f.id.clone(), Box::new(f.to_ref())))
        .collect();
    for attachment in messages.iter_mut().filter_map(|m| m.file.as_mut()) {
        if attachment.meta.is_none() {
            attachment.meta = found.get(&attachment.id).cloned();
        }
    }
    Ok(())
}

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no such blob")]
    NotFound,
    #[error("invalid blob key {0:?}")]
    BadKey(String),
    /// The store cannot be reached (S3 down, timeouts): retry later.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    #[error("blob store: {0}")]
    Backend(String),
    #[error("blob store I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// A byte stream from a blob store.
pub type BlobStream = Pin<Box<dyn futures_core::Stream<Item = Result<Bytes, BlobError>> + Send>>;

/// A blob being read: its whole size and the requested bytes.
pub struct Blob {
    pub size: u64,
    pub stream: BlobStream,
}

/// Where file bytes live, keyed by their SHA-256 (lowercase hex). Content-addressed: a key
/// always names the same bytes, so writing an existing key again is a no-op.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores the local file at `path` under `key` unless the key exists. The store may move
    /// the file instead of copying it (same filesystem); the caller removes it if it is still
    /// there afterwards. The file is complete and synced when this is called.
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError>;
    /// Stores small in-memory bytes (thumbnails) under `key` unless the key exists.
    async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<(), BlobError>;
    /// Streams the blob, or `range` of it (end exclusive, within the blob: callers check).
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Blob, BlobError>;
    async fn exists(&self, key: &str) -> Result<bool, BlobError>;
    /// Removes the blob (a missing one is not an error).
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
}

/// Whether `key` is a blob key: 64 lowercase hex digits. Stores check it so that a key can
/// never be a path or an object name other than the one meant.
pub fn valid_blob_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `id` looks like a file id (32 lowercase hex digits).
pub fn valid_file_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Bounds on uploads (set from `[files]` in the configuration).
#[derive(Debug, Clone)]
pub struct FileLimits {
    /// Largest file, in bytes.
    pub max_upload_bytes: u64,
    /// Most files in one multipart upload.
    pub max_files_per_request: usize,
    /// Files being received at once on this node; more get `429 too_many_uploads`. Bounds the
    /// staging disk space in use to this many times `max_upload_bytes`.
    pub max_concurrent_uploads: usize,
    /// An upload that sends nothing for this long is abandoned (`408`).
    pub idle_timeout_secs: u64,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            max_upload_bytes: 100 << 20,
            max_files_per_request: 10,
            max_concurrent_uploads: 64,
            idle_timeout_secs: 30,
        }
    }
}

/// Why an upload or download failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("files are limited to {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("too many uploads in progress; try again shortly")]
    Busy,
    /// Bad input (400) or not allowed (403), with the code clients branch on.
    #[error(transparent)]
    Refused(#[from] ImError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Writing the staging file failed (a full disk, say).
    #[error("staging upload: {0}")]
    Staging(#[from] std::io::Error),
}

impl From<StoreError> for FileError {
    fn from(error: StoreError) -> Self {
        FileError::Refused(ImError::Store(error))
    }
}

/// "No such file, or you may not read it": one answer for both, so ids cannot be probed.
pub fn forbidden() -> ImError {
    ImError::forbidden("file_forbidden", "no such file, or you may not read it")
}

/// The file `id` if `user` may read it, else [`forbidden`] (malformed ids included).
pub async fn readable_by(
    store: &dyn FileStore,
    user: i64,
    id: &str,
) -> Result<FileRecord, ImError> {
    if !valid_file_id(id) {
        return Err(forbidden());
    }
    store.readable_file(id, user).await?.ok_or_else(forbidden)
}

/// Most ids in one metadata request.
pub const MAX_IDS_PER_REQUEST: usize = 100;
/// Staging files older than this are leftovers of a crash and are removed at start-up.
const STALE_STAGING: Duration = Duration::from_secs(3600);
/// Thumbnails computed at once: each may hold [`media::MAX_DECODE_BYTES`] of pixels.
const CONCURRENT_THUMBNAILS: usize = 2;
/// Write buffer of a staging file: fewer, larger writes on the blocking pool.
const STAGING_BUFFER: usize = 256 * 1024;

/// The file service: uploads, reads with their access check.
pub struct Files {
    store: Arc<dyn FileStore>,
    blobs: Arc<dyn BlobStore>,
    staging: PathBuf,
    limits: FileLimits,
    uploads: Arc<Semaphore>,
    thumbnails: Arc<Semaphore>,
}

impl Files {
    /// `staging` is a local directory for uploads in progress (created if missing; stale
    /// leftovers from a crash are removed).
    pub fn new(
        store: Arc<dyn FileStore>,
        blobs: Arc<dyn BlobStore>,
        staging: PathBuf,
        limits: FileLimits,
    ) -> std::io::Result<Files> {
        std::fs::create_dir_all(&staging)?;
        remove_stale(&staging);
        Ok(Files {
            uploads: Arc::new(Semaphore::new(limits.max_concurrent_uploads.max(1))),
            thumbnails: Arc::new(Semaphore::new(CONCURRENT_THUMBNAILS)),
            store,
            blobs,
            staging,
            limits,
        })
    }

    pub fn limits(&self) -> &FileLimits {
        &self.limits
    }

    /// Starts receiving a file named `name`, of the type the client declared.
    pub fn begin(
        &self,
        uploader: i64,
        name: &str,
        declared_type: Option<&str>,
    ) -> Result<Upload, FileError> {
        let name = clean_name(name)?;
        let permit = self
            .uploads
            .clone()
            .try_acquire_owned()
            .map_err(|_| FileError::Busy)?;
        let path = self
            .staging
            .join(format!("{}.part", hex::encode(random_bytes::<16>())));
        // Created synchronously: one small syscall, and the guard exists before any await.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let staged = Staged(path);
        Ok(Upload {
            uploader,
            name,
            declared_type: declared_type.and_then(clean_content_type),
            out: tokio::io::BufWriter::with_capacity(
                STAGING_BUFFER,
                tokio::fs::File::from_std(file),
            ),
            staged,
            hasher: Sha256::new(),
            size: 0,
            limit: self.limits.max_upload_bytes,
            head: Vec::with_capacity(media::SNIFF_BYTES),
            _permit: permit,
        })
    }

    /// Stores a fully received upload: bytes (once per hash), thumbnail, record.
    pub async fn finish(&self, upload: Upload) -> Result<FileRecord, FileError> {
        let Upload {
            uploader,
            name,
            declared_type,
            mut out,
            staged,
            hasher,
            size,
            head,
            ..
        } = upload;
        if size == 0 {
            return Err(ImError::invalid("empty_file", "the file is empty").into());
        }
        out.flush().await?;
        let file = out.into_inner();
        // The record is committed after this; its bytes must survive a crash too.
        file.sync_all().await?;
        drop(file);
        let sha256 = hex::encode(hasher.finalize());
        let (content_type, dimensions, thumbnail) = match media::sniff(&head) {
            Some(kind) => match self.probe(staged.path(), kind).await {
                Some(probed) => (
                    kind.content_type().to_owned(),
                    Some((i64::from(probed.width), i64::from(probed.height))),
                    probed.thumbnail,
                ),
                // Image magic but not even a readable header: not served as an image.
                None => ("application/octet-stream".to_owned(), None, None),
            },
            None => (
                declared_type
                    // An image type the bytes do not back up is not believed.
                    .filter(|t| !t.starts_with("image/"))
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
                None,
                None,
            ),
        };
        // Bytes first, record last: a record never points at missing bytes.
        self.blobs.put_file(&sha256, staged.path()).await?;
        let thumbnail_sha256 = match thumbnail {
            Some(bytes) => {
                let key = hex::encode(Sha256::digest(&bytes));
                self.blobs.put_bytes(&key, Bytes::from(bytes)).await?;
                Some(key)
            }
            None => None,
        };
        let record = FileRecord {
            id: hex::encode(random_bytes::<16>()),
            uploader_id: uploader,
            name,
            size: size as i64,
            content_type,
            sha256,
            width: dimensions.map(|d| d.0),
            height: dimensions.map(|d| d.1),
            thumbnail_sha256,
            created_ms: now_ms(),
        };
        self.store.insert_file(&record).await?;
        Ok(record)
    }

    /// Dimensions and thumbnail, off the async runtime and a bounded number at a time.
    async fn probe(&self, path: &Path, kind: ImageKind) -> Option<media::Probed> {
        let permit = self.thumbnails.clone().acquire_owned().await.ok()?;
        let path = path.to_owned();
        let probed = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            media::probe(&path, kind)
        })
        .await;
        match probed {
            Ok(Ok(probed)) => Some(probed),
            Ok(Err(error)) => {
                tracing::debug!(%error, "upload looks like an image but is not readable");
                None
            }
            Err(error) => {
                tracing::warn!(%error, "image probe panicked");
                None
            }
        }
    }

    /// The record of file `id`, without an access check: for serving what a user chose to
    /// show everyone (an avatar's thumbnail).
    pub async fn record(&self, id: &str) -> Result<Option<FileRecord>, ImError> {
        let ids = [id.to_owned()];
        Ok(self.store.files(&ids).await?.into_iter().next())
    }

    /// The file if `user` may read it.
    pub async fn readable(&self, user: i64, id: &str) -> Result<FileRecord, ImError> {
        readable_by(&*self.store, user, id).await
    }

    /// Several files, all of which `user` must be able to read (else `file_forbidden` for the
    /// whole request: which ids failed is not told). In the order asked, duplicates once.
    pub async fn readable_many(
        &self,
        user: i64,
        ids: &[String],
    ) -> Result<Vec<FileRecord>, ImError> {
        if ids.is_empty() || ids.len() > MAX_IDS_PER_REQUEST {
            return Err(ImError::invalid(
                "bad_request",
                format!("ask for 1 to {MAX_IDS_PER_REQUEST} ids"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            if seen.insert(id.as_str()) {
                records.push(self.readable(user, id).await?);
            }
        }
        Ok(records)
    }

    /// The file's bytes, or `range` of them (end exclusive, already checked against its size).
    pub async fn content(
        &self,
        file: &FileRecord,
        range: Option<Range<u64>>,
    ) -> Result<Blob, FileError> {
        Ok(self.blobs.get(&file.sha256, range).await?)
    }

    /// The thumbnail's bytes, if the file has one.
    pub async fn thumbnail(&self, file: &FileRecord) -> Result<Option<Blob>, FileError> {
        match &file.thumbnail_sha256 {
            Some(key) => Ok(Some(self.blobs.get(key, None).await?)),
            None => Ok(None),
        }
    }
}

/// A file being received into staging. Dropping it removes the staging file.
pub struct Upload {
    uploader: i64,
    name: String,
    declared_type: Option<String>,
    out: tokio::io::BufWriter<tokio::fs::File>,
    staged: Staged,
    hasher: Sha256,
    size: u64,
    limit: u64,
    head: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl Upload {
    /// Appends a chunk. Past the size limit the staging file is removed before the error
    /// returns, so nothing of a refused upload stays on disk.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), FileError> {
        let size = self.size + chunk.len() as u64;
        if size > self.limit {
            let _ = tokio::fs::remove_file(self.staged.path()).await;
            return Err(FileError::TooLarge { limit: self.limit });
        }
        if self.head.len() < media::SNIFF_BYTES {
            let take = (media::SNIFF_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        if let Err(error) = self.out.write_all(chunk).await {
            let _ = tokio::fs::remove_file(self.staged.path()).await;
            return Err(error.into());
        }
        self.size = size;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A staging file, removed when dropped (if the blob store moved it, there is nothing left).
struct Staged(PathBuf);

impl Staged {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Removes staging files a crash left behind. Only old ones: another process sharing the
/// directory may be receiving files right now.
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_STAGING);
        if stale && entry.file_name().to_string_lossy().ends_with(".part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A file name as stored: the last path component a browser may send ("C:\fakepath\a.txt"),
/// trimmed, 1–255 bytes, no control characters. It is only ever shown, never used as a path.
pub fn clean_name(raw: &str) -> Result<String, ImError> {
    let name = raw.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if name.is_empty() || name == "." || name == ".." {
        return Err(ImError::invalid("bad_name", "a file needs a name"));
    }
    if name.len() > 255 {
        return Err(ImError::invalid(
            "bad_name",
            "file names are limited to 255 bytes",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ImError::invalid(
            "bad_name",
            "file names cannot contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A declared content type, if it is a plain `type/subtype` (parameters dropped, lower-cased,
/// at most 127 bytes, RFC 6838 characters only); anything else is ignored.
pub fn clean_content_type(raw: &str) -> Option<String> {
    let essence = raw.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (essence.len() <= 127 && token(kind) && token(subtype)).then_some(essence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_last_components_without_control_characters() {
        assert_eq!(
            clean_name("C:\\fakepath\\report.pdf").unwrap(),
            "report.pdf"
        );
        assert_eq!(clean_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(clean_name(" 照片 1.jpg ").unwrap(), "照片 1.jpg");
        assert!(clean_name("dir/").is_err());
        assert!(clean_name("..").is_err());
        assert!(clean_name("a\nb").is_err());
        assert!(clean_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn content_types_are_plain_tokens() {
        assert_eq!(
            clean_content_type("Text/Plain; charset=utf-8").as_deref(),
            Some("text/plain")
        );
        assert_eq!(
            clean_content_type("application/vnd.api+json").as_deref(),
            Some("application/vnd.api+json")
        );
        assert_eq!(clean_content_type("text"), None);
        assert_eq!(clean_content_type("text/pl ain"), None);
        assert_eq!(clean_content_type("a/b/c"), None);
    }

    #[test]
    fn keys_and_ids_are_lowercase_hex() {
        assert!(valid_file_id(&"a1".repeat(16)));
        assert!(!valid_file_id(&"A1".repeat(16)));
        assert!(!valid_file_id("../x"));
        assert!(valid_blob_key(&"0f".repeat(32)));
        assert!(!valid_blob_key(&"0f".repeat(31)));
    }
}
