//! `/api/files`: streamed uploads (multipart or raw body) and downloads with ranges and
//! caching. The core's [`hearth_core::files::Files`] does the storing and the access checks;
//! this module speaks HTTP.
//!
//! Request bodies are read as they arrive, never buffered whole: each chunk goes to the staging
//! file, and an upload is refused (`413`) at the first chunk past the limit. A refused body is
//! then drained for a bounded while before the connection is dropped, so the client reads the
//! `413` instead of a connection reset (the "lingering close" HTTP servers do).

use crate::App;
use crate::api::{ApiError, ApiPath, ApiQuery, CurrentUser};
use axum::Json;
use axum::Router;
use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{Stream, StreamExt};
use hearth_core::ImError;
use hearth_core::files::{Blob, BlobError, FileError, FileRecord, Upload};
use hearth_proto::http::error_id;
use hearth_proto::native::FileMeta;
use serde::Deserialize;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

type State = axum::extract::State<Arc<App>>;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/api/files",
            // Uploads are bounded by the files limits while they stream, not by the JSON body
            // limit.
            get(metas).post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/files/{id}", get(download))
        .route("/api/files/{id}/meta", get(meta))
        .route("/api/files/{id}/thumbnail", get(thumbnail))
}

/// Files are immutable under their id, so caches may keep them; `private`: each is readable
/// only by some users, so shared caches must not serve them.
const CACHE_CONTROL: &str = "private, max-age=31536000, immutable";
/// A multipart body may run this far past the end of the previous part before the next part's
/// headers are complete: bounds what the parser buffers while it looks for them.
const HEADER_ALLOWANCE: u64 = 1 << 20;
/// What is read and discarded of a refused upload before its connection is dropped.
const DRAIN_BYTES: u64 = 16 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

impl From<FileError> for ApiError {
    fn from(error: FileError) -> Self {
        match error {
            FileError::TooLarge { limit } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                format!("files are limited to {limit} bytes"),
            ),
            FileError::Busy => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_uploads",
                error.to_string(),
            ),
            FileError::Refused(error) => error.into(),
            FileError::Blob(BlobError::Unavailable(reason)) => {
                tracing::warn!(%reason, "blob store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    error_id::SERVICE_UNAVAILABLE,
                    "file storage is unavailable; try again shortly",
                )
            }
            FileError::Staging(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                tracing::error!(error = %e, "no space left for uploads");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "insufficient_storage",
                    "the server has no room for this file",
                )
            }
            other => {
                tracing::error!(error = %other, "file storage error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    error_id::INTERNAL,
                    "internal error",
                )
            }
        }
    }
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ImError::invalid(code, message).into()
}

/// How far the body has been read, and how far it may be read for now.
#[derive(Default)]
struct Progress {
    read: AtomicU64,
    fence: AtomicU64,
}

impl Progress {
    fn allow(&self, more: u64) {
        let read = self.read.load(Ordering::Relaxed);
        self.fence
            .store(read.saturating_add(more), Ordering::Relaxed);
    }

    fn passed_fence(&self) -> bool {
        self.read.load(Ordering::Relaxed) > self.fence.load(Ordering::Relaxed)
    }
}

/// The request body as a stream of chunks that fails once read past the [`Progress`] fence,
/// and that drains (reads and discards, within bounds) what is left when dropped.
struct BodyReader {
    inner: Option<BodyDataStream>,
    progress: Arc<Progress>,
}

impl BodyReader {
    fn new(body: Body, progress: Arc<Progress>) -> BodyReader {
        BodyReader {
            inner: Some(body.into_data_stream()),
            progress,
        }
    }
}

impl Stream for BodyReader {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.progress
                    .read
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if self.progress.passed_fence() {
                    return Poll::Ready(Some(Err(std::io::Error::other("body past its limit"))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(std::io::Error::other(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        if let (Some(mut rest), Ok(runtime)) =
            (self.inner.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move {
                let mut drained = 0u64;
                let _ = tokio::time::timeout(DRAIN_TIME, async {
                    while let Some(Ok(chunk)) = rest.next().await {
                        drained += chunk.len() as u64;
                        if drained > DRAIN_BYTES {
                            break;
                        }
                    }
                })
                .await;
            });
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// The file name of a raw-body upload.
    name: Option<String>,
}

/// `POST /api/files`: `multipart/form-data` with one or more file parts, or any other body as
/// one file named by `?name=` and typed by `Content-Type`. Answers `201` with the files'
/// descriptions, in order.
async fn upload(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiQuery(query): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    app.rate.upload(me.id)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let progress = Arc::new(Progress::default());
    let reader = BodyReader::new(body, progress.clone());
    let multipart = content_type
        .get(..19)
        .is_some_and(|t| t.eq_ignore_ascii_case("multipart/form-data"));
    let staged = if multipart {
        if query.name.is_some() {
            return Err(bad(
                "bad_request",
                "multipart parts carry their own file names; drop ?name=",
            ));
        }
        receive_multipart(&app, me.id, content_type, reader, &progress).await?
    } else {
        let name = query
            .name
            .ok_or_else(|| bad("bad_name", "name the file: POST /api/files?name=…"))?;
        let limit = app.files.limits().max_upload_bytes;
        let declared_length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared_length.is_some_and(|n| n > limit) {
            // Known to be too large before a byte is read.
            return Err(FileError::TooLarge { limit }.into());
        }
        let declared_type = (!content_type.is_empty()).then_some(content_type);
        let mut upload = app.files.begin(me.id, &name, declared_type)?;
        progress.allow(limit.saturating_add(HEADER_ALLOWANCE));
        receive(&app, &mut upload, reader).await?;
        vec![upload]
    };
    // Every input check before the first file is stored: a refused request stores nothing.
    if staged.iter().any(|u| u.size() == 0) {
        return Err(bad("empty_file", "the file is empty"));
    }
    let mut described: Vec<FileMeta> = Vec::with_capacity(staged.len());
    for upload in staged {
        described.push(app.files.finish(upload).await?.to_meta());
    }
    Ok((StatusCode::CREATED, Json(described)).into_response())
}

/// Streams a raw body into `upload`.
async fn receive(app: &App, upload: &mut Upload, mut reader: BodyReader) -> Result<(), ApiError> {
    let idle = Duration::from_secs(app.files.limits().idle_timeout_secs);
    loop {
        let chunk = tokio::time::timeout(idle, reader.next())
            .await
            .map_err(|_| timed_out())?;
        match chunk {
            None => return Ok(()),
            Some(Ok(chunk)) => upload.write(&chunk).await?,
            Some(Err(_)) => return Err(body_failed(&reader.progress)),
        }
    }
}

/// Stages every file part; all of them or none (a refusal of any part refuses the request, and
/// the staged parts are removed as they drop).
async fn receive_multipart(
    app: &App,
    user: i64,
    content_type: &str,
    reader: BodyReader,
    progress: &Progress,
) -> Result<Vec<Upload>, ApiError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| bad("bad_multipart", format!("bad multipart content type: {e}")))?;
    let limits = app.files.limits().clone();
    let idle = Duration::from_secs(limits.idle_timeout_secs);
    let mut parts = multer::Multipart::new(reader, boundary);
    let multipart_error = |e: multer::Error| {
        if progress.passed_fence() {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                "multipart part headers are too long",
            )
        } else {
            bad("bad_multipart", format!("malformed multipart body: {e}"))
        }
    };
    let mut staged = Vec::new();
    loop {
        progress.allow(HEADER_ALLOWANCE);
        let field = tokio::time::timeout(idle, parts.next_field())
            .await
            .map_err(|_| timed_out())?
            .map_err(multipart_error)?;
        let Some(mut field) = field else { break };
        if staged.len() == limits.max_files_per_request {
            return Err(bad(
                "too_many_files",
                format!("at most {} files per upload", limits.max_files_per_request),
            ));
        }
        let name = field.file_name().map(str::to_owned).ok_or_else(|| {
            bad(
                "bad_multipart",
                "every part must be a file (Content-Disposition with a filename)",
            )
        })?;
        let declared_type = field.content_type().map(|m| m.essence_str().to_owned());
        let mut upload = app.files.begin(user, &name, declared_type.as_deref())?;
        progress.allow(limits.max_upload_bytes.saturating_add(HEADER_ALLOWANCE));
        loop {
            let chunk = tokio::time::timeout(idle, field.chunk())
                .await
                .map_err(|_| timed_out())?
                .map_err(multipart_error)?;
            match chunk {
                Some(chunk) => upload.write(&chunk).await?,
                None => break,
            }
        }
        staged.push(upload);
    }
    if staged.is_empty() {
        return Err(bad("no_files", "the multipart body has no file parts"));
    }
    Ok(staged)
}

fn timed_out() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "upload_timeout",
        "the upload stalled",
    )
}

fn body_failed(progress: &Progress) -> ApiError {
    if progress.passed_fence() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "file_too_large",
            "request body too large",
        )
    } else {
        bad("bad_request", "the request body could not be read")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdsQuery {
    /// Comma-separated file ids.
    ids: String,
}

/// `GET /api/files?ids=a,b`: the descriptions of several files, all readable by the caller.
async fn metas(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiQuery(query): ApiQuery<IdsQuery>,
) -> Result<Json<Vec<FileMeta>>, ApiError> {
    let ids: Vec<String> = query
        .ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(hearth_core::files::MAX_IDS_PER_REQUEST + 1)
        .map(str::to_owned)
        .collect();
    let files = app.files.readable_many(me.id, &ids).await?;
    Ok(Json(files.iter().map(FileRecord::to_meta).collect()))
}

async fn meta(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<FileMeta>, ApiError> {
    Ok(Json(app.files.readable(me.id, &id).await?.to_meta()))
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Ranged {
    /// No range, or one to ignore (malformed, another unit, several ranges): the whole file.
    Whole,
    Part(Range<u64>),
    /// `416`.
    Unsatisfiable,
}

/// One `bytes=` range (RFC 9110 §14.1.2): `a-b`, `a-` or `-n`. Several ranges are answered
/// with the whole file, which the RFC allows and which keeps responses single-part.
fn parse_range(header: &str, size: u64) -> Ranged {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            None => Ranged::Whole,
            Some(0) => Ranged::Unsatisfiable,
            Some(n) => Ranged::Part(size.saturating_sub(n)..size),
        },
        (start, end) => {
            let Some(start) = number(start) else {
                return Ranged::Whole;
            };
            let end = if end.is_empty() {
                size
            } else {
                match number(end) {
                    Some(end) if end >= start => end.saturating_add(1).min(size),
                    _ => return Ranged::Whole,
                }
            };
            if start >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(start..end)
            }
        }
    }
}

/// Whether `If-None-Match` names this entity tag (weak comparison, as RFC 9110 says for it).
pub(crate) fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Whether a `Range` may be honoured: no `If-Range`, or one naming this entity tag (strong
/// comparison; a date never matches: files have no `Last-Modified`).
fn if_range_holds(headers: &HeaderMap, etag: &str) -> bool {
    match headers.get(header::IF_RANGE) {
        None => true,
        Some(value) => value.to_str().is_ok_and(|v| v.trim() == etag),
    }
}

/// `Content-Disposition` with an ASCII fallback name and the exact UTF-8 name (RFC 6266).
fn content_disposition(disposition: &str, name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' ' => ' ',
            '"' | '\\' => '_',
            c if c.is_ascii_graphic() => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Headers every file answer carries, 304s included.
fn cache_headers(headers: &mut HeaderMap, etag: &str) {
    cache_headers_for(headers, etag, CACHE_CONTROL);
}

/// `ETag` and `Cache-Control`, for answers that may be cached as `cache_control` says.
pub(crate) fn cache_headers_for(headers: &mut HeaderMap, etag: &str, cache_control: &'static str) {
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
}

/// Headers that keep an uploaded file from acting as a page of this site: browsers must not
/// guess another type, and a document opened directly runs no scripts.
pub(crate) fn safety_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
}

fn not_modified(etag: &str) -> Response {
    not_modified_for(etag, CACHE_CONTROL)
}

/// `304 Not Modified` with the validators the full answer would carry.
pub(crate) fn not_modified_for(etag: &str, cache_control: &'static str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    cache_headers_for(response.headers_mut(), etag, cache_control);
    response
}

/// `GET /api/files/{id}`: the bytes, whole or one range.
async fn download(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = app.files.readable(me.id, &id).await?;
    let etag = format!("\"{}\"", file.sha256);
    if none_match(&headers, &etag) {
        return Ok(not_modified(&etag));
    }
    let size = file.size as u64;
    let ranged = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(range) if if_range_holds(&headers, &etag) => parse_range(range, size),
        _ => Ranged::Whole,
    };
    let range = match ranged {
        Ranged::Whole => None,
        Ranged::Part(range) => Some(range),
        Ranged::Unsatisfiable => {
            let mut response = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {size} bytes"),
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let blob = app.files.content(&file, range.clone()).await?;
    let length = range.as_ref().map_or(size, |r| r.end - r.start);
    let mut response = Body::from_stream(blob.stream).into_response();
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    let h = response.headers_mut();
    if let Some(range) = &range
        && let Ok(value) =
            HeaderValue::from_str(&format!("bytes {}-{}/{size}", range.start, range.end - 1))
    {
        h.insert(header::CONTENT_RANGE, value);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(&file.content_type) {
        h.insert(header::CONTENT_TYPE, value);
    }
    // Only verified images are shown in place; everything else is a download.
    let disposition = if file.is_image() {
        "inline"
    } else {
        "attachment"
    };
    h.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(disposition, &file.name),
    );
    cache_headers(h, &etag);
    safety_headers(h);
    Ok(response)
}

/// `GET /api/files/{id}/thumbnail`: a small rendition of an image (`404 no_thumbnail` for
/// files without one).
async fn thumbnail(
    app: State,
    CurrentUser(me): CurrentUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = app.files.readable(me.id, &id).await?;
    let Some(key) = file.thumbnail_sha256.as_deref() else {
        return Err(ImError::not_found("no_thumbnail", "this file has no thumbnail").into());
    };
    let etag = format!("\"{key}\"");
    if none_match(&headers, &etag) {
        return Ok(not_modified(&etag));
    }
    let Some(blob) = app.files.thumbnail(&file).await? else {
        return Err(ImError::not_found("no_thumbnail", "this file has no thumbnail").into());
    };
    let mut response = thumbnail_response(blob, &file, &etag, CACHE_CONTROL);
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        content_disposition("inline", &format!("thumbnail-{}", file.name)),
    );
    Ok(response)
}

/// `file`'s thumbnail bytes as a whole answer, with its validators and the safety headers.
pub(crate) fn thumbnail_response(
    blob: Blob,
    file: &FileRecord,
    etag: &str,
    cache_control: &'static str,
) -> Response {
    let mut response = Body::from_stream(blob.stream).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.thumbnail_type()),
    );
    cache_headers_for(h, etag, cache_control);
    safety_headers(h);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use Ranged::*;
        assert_eq!(parse_range("bytes=0-0", 10), Part(0..1));
        assert_eq!(parse_range("bytes=2-5", 10), Part(2..6));
        assert_eq!(parse_range("bytes=2-", 10), Part(2..10));
        assert_eq!(parse_range("bytes=5-100", 10), Part(5..10));
        assert_eq!(parse_range("bytes=-3", 10), Part(7..10));
        assert_eq!(parse_range("bytes=-30", 10), Part(0..10));
        assert_eq!(parse_range("bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=10-20", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 10), Whole);
        assert_eq!(parse_range("bytes=0-1,3-4", 10), Whole);
        assert_eq!(parse_range("items=0-1", 10), Whole);
        assert_eq!(parse_range("bytes=+1-2", 10), Whole);
        assert_eq!(parse_range("bytes=x", 10), Whole);
        assert_eq!(parse_range("bytes=99999999999999999999-", 10), Whole);
    }

    #[test]
    fn dispositions_keep_the_name_and_stay_ascii() {
        let value = content_disposition("attachment", "报告 \"final\".pdf");
        let text = value.to_str().unwrap();
        assert!(text.starts_with("attachment; filename=\"__ _final_.pdf\""));
        assert!(text.ends_with("filename*=UTF-8''%E6%8A%A5%E5%91%8A%20%22final%22.pdf"));
    }

    #[test]
    fn etags_match_weakly_for_if_none_match() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(none_match(&headers, "\"b\""));
        assert!(!none_match(&headers, "\"c\""));
    }
}
