//! Full-text search over the messages a user can read, and user lookup.
//!
//! Each node keeps its own [tantivy] index (on disk under `search.dir`, or in memory) and a
//! [tailer](tailer) that copies the database's message feed into it, so every node indexes
//! every message whichever node stored it, and answers the same. The index knows *what* was
//! said; *who may read it* is decided at query time from the database (rooms, current
//! memberships after `joined_seq`, delete-for-me marks), so leaving a group or hiding a
//! message takes effect at once, while new messages, edits and recalls reach the index within
//! about [`POLL`] when quiet (the tailer is also woken by this node's own commits) and within
//! [`COMMIT_EVERY`] under steady traffic (commits are coalesced).
//!
//! * [`tokenizer`] — mixed Chinese/English analysis (CJK unigrams + bigrams + jieba words;
//!   English lower-cased, folded, stemmed);
//! * `query` — a user's text to an AND of stems and CJK substring phrases;
//! * `index` — schema, opening/rebuilding, ranking (BM25, then newest), snippets;
//! * `tailer` — the feed reader, tolerant of MySQL ids that commit out of order.

mod index;
mod query;
mod tailer;
pub mod tokenizer;

pub use index::{INDEX_VERSION, indexed_text};
pub use query::TextQuery;
pub use tailer::{COMMIT_EVERY, GRACE, POLL};

use hearth_core::model::{ChatMessage, MessageKind, UserRef};
use hearth_core::search::FeedStore;
use hearth_core::{ImError, StoreError};
use hearth_proto::native::ImMessage;
use index::{Filters, SearchIndex};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tailer::{Cursor, Tailer, blocking};
use tantivy::query::Query;
use tantivy::snippet::{SnippetGenerator, collapse_overlapped_ranges};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The longest message query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// The longest user query, in bytes (as long as a username or an email can be).
pub const MAX_USER_QUERY_BYTES: usize = 100;
/// Hits per page at most, and by default.
pub const MAX_LIMIT: usize = 50;
pub const DEFAULT_LIMIT: usize = 20;
/// How deep paging may go: deeper pages cost more candidates for little use.
pub const MAX_OFFSET: usize = 1_000;
/// Candidates ranked per search at most, hidden and stale ones included.
const MAX_CANDIDATES: usize = 5_000;
/// Characters shown when no query term can be highlighted (a stale index entry).
const LEAD_CHARS: usize = 80;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Refused(#[from] ImError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("search index payload: {0}")]
    Payload(#[from] serde_json::Error),
    #[error(
        "search index directory {0} is in use by another process; give each node its own search.dir"
    )]
    Locked(PathBuf),
    #[error("{0} holds files that are not a search index; point search.dir at an empty directory")]
    NotAnIndex(PathBuf),
    #[error("search task failed: {0}")]
    Task(String),
}

impl From<SearchError> for ImError {
    fn from(error: SearchError) -> ImError {
        match error {
            SearchError::Refused(e) => e,
            SearchError::Store(e) => ImError::Store(e),
            other => ImError::Store(StoreError::Backend(other.to_string())),
        }
    }
}

/// A message search as clients send it (`GET /api/search/messages?…`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageQuery {
    pub q: String,
    /// Only this conversation.
    pub conversation: Option<i64>,
    /// Only messages of this user.
    pub sender: Option<i64>,
    /// Only messages stored at or after this time (ms).
    pub from: Option<i64>,
    /// Only messages stored at or before this time (ms).
    pub to: Option<i64>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// Part of a message with the query's terms marked: `highlights` are `[start, end)` offsets
/// into `text` in UTF-16 code units (JavaScript string indices), sorted, not overlapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snippet {
    pub text: String,
    pub highlights: Vec<[usize; 2]>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    /// The message as the searcher would pull it now.
    pub message: ImMessage,
    /// The room's id, for hits in rooms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    pub snippet: Snippet,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    /// Whether a page at `offset + limit` would have hits.
    pub has_more: bool,
}

/// A node's search: its index, the tailer feeding it, and the queries.
pub struct Search {
    index: Arc<SearchIndex>,
    store: Arc<dyn FeedStore>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    tailer: Mutex<Option<JoinHandle<()>>>,
}

impl Search {
    /// Opens (or creates, or rebuilds) the index in `dir` — in memory if `None` — and starts
    /// feeding it. Fails if another process holds the directory.
    pub async fn start(
        store: Arc<dyn FeedStore>,
        dir: Option<PathBuf>,
    ) -> Result<Search, SearchError> {
        let (index, writer, position) = blocking(move || SearchIndex::open(dir.as_deref())).await?;
        let index = Arc::new(index);
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let tailer = Tailer {
            store: store.clone(),
            index: index.clone(),
            writer: Arc::new(Mutex::new(writer)),
            // Rows after `done` are read again: some were waited-for holes.
            cursor: Cursor::at(position.done),
            replay_until: position.seen,
            wake: wake.clone(),
            stop: stopped,
        };
        let task = tokio::spawn(tailer.run());
        Ok(Search {
            index,
            store,
            wake,
            stop,
            tailer: Mutex::new(Some(task)),
        })
    }

    /// Something was stored on this node: read the feed now rather than at the next poll.
    pub fn changed(&self) {
        self.wake.notify_one();
    }

    /// Stops the tailer and waits until it let go of the index directory.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.tailer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Documents in the index now.
    pub fn indexed(&self) -> u64 {
        self.index.num_docs()
    }

    /// Messages `user` can read that match `query`, best first.
    pub async fn messages(&self, user: i64, query: &MessageQuery) -> Result<SearchPage, ImError> {
        let bad = |message: &str| ImError::invalid("bad_query", message.to_owned());
        let q = query.q.trim();
        if q.is_empty() || q.chars().count() > MAX_QUERY_CHARS {
            return Err(bad("q must be 1 to 200 characters"));
        }
        let text = TextQuery::parse(q);
        if text.is_empty() {
            return Err(bad("q has no words to search for"));
        }
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(bad("limit must be 1 to 50"));
        }
        let offset = query.offset.unwrap_or(0);
        if offset > MAX_OFFSET {
            return Err(bad("offset must be at most 1000"));
        }
        if let (Some(from), Some(to)) = (query.from, query.to)
            && from > to
        {
            return Err(bad("from is after to"));
        }

        let readable = self.store.readable(user).await?;
        let rooms: HashMap<i64, String> = readable
            .iter()
            .filter_map(|r| Some((r.conversation_id, r.room.clone()?)))
            .collect();
        let mut allowed: Vec<(i64, i64)> = readable
            .iter()
            .map(|r| (r.conversation_id, r.joined_seq))
            .collect();
        if let Some(only) = query.conversation {
            // The same answer for "not yours" and "does not exist", as everywhere else.
            allowed.retain(|(c, _)| *c == only);
            if allowed.is_empty() {
                return Err(ImError::not_member());
            }
        }
        let filters = Filters {
            readable: allowed,
            sender: query.sender,
            from: query.from,
            to: query.to,
        };
        let full: Arc<dyn Query> = Arc::from(self.index.full_query(&text, &filters));

        // Rank candidates, then keep those the searcher sees as live (not deleted for them,
        // not recalled or edited away since indexing) until one past the page is found.
        let wanted = offset + limit + 1;
        let mut k = (wanted * 2).clamp(32, MAX_CANDIDATES);
        let mut checked: HashSet<(i64, i64)> = HashSet::new();
        let mut visible: Vec<ChatMessage> = Vec::new();
        loop {
            let (index, q) = (self.index.clone(), full.clone());
            let (ranked, exhausted) = blocking(move || index.top(&*q, k)).await?;
            let unchecked: Vec<(i64, i64)> = ranked
                .iter()
                .copied()
                .filter(|key| !checked.contains(key))
                .collect();
            for chunk in unchecked.chunks(200) {
                if visible.len() >= wanted {
                    break;
                }
                let found: HashMap<(i64, i64), ChatMessage> = self
                    .store
                    .messages_by_key(user, chunk)
                    .await?
                    .into_iter()
                    .map(|m| ((m.conversation_id, m.seq), m))
                    .collect();
                for key in chunk {
                    checked.insert(*key);
                    if let Some(m) = found.get(key)
                        && is_live(m)
                    {
                        visible.push(m.clone());
                    }
                }
            }
            // Keep rank order across rounds: re-rank the kept ones by their place in `ranked`.
            let order: HashMap<(i64, i64), usize> =
                ranked.iter().enumerate().map(|(i, k)| (*k, i)).collect();
            visible.sort_by_key(|m| order.get(&(m.conversation_id, m.seq)).copied());
            if visible.len() >= wanted || exhausted || k >= MAX_CANDIDATES {
                break;
            }
            k = (k * 4).min(MAX_CANDIDATES);
        }

        let has_more = visible.len() > offset + limit;
        let page: Vec<ChatMessage> = visible.into_iter().skip(offset).take(limit).collect();
        let generator = {
            let (index, q) = (self.index.clone(), full.clone());
            blocking(move || index.snippets(&*q)).await?
        };
        let hits = blocking(move || {
            Ok(page
                .into_iter()
                .map(|m| {
                    let text = indexed_text(&m).unwrap_or_default();
                    Hit {
                        snippet: snippet(&generator, &text),
                        room: rooms.get(&m.conversation_id).cloned(),
                        message: m.to_native(),
                    }
                })
                .collect())
        })
        .await?;
        Ok(SearchPage { hits, has_more })
    }

    /// Users by username prefix; by email only when the query holds a whole local part and
    /// an `@` (`ann@`, `ann@exa`): a prefix like `a` never matches addresses, so they cannot
    /// be harvested letter by letter. Emails are never returned.
    pub async fn users(&self, q: &str, limit: Option<usize>) -> Result<Vec<UserRef>, ImError> {
        let q = q.trim();
        if q.is_empty() || q.len() > MAX_USER_QUERY_BYTES {
            return Err(ImError::invalid("bad_query", "q must be 1 to 100 bytes"));
        }
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ImError::invalid("bad_query", "limit must be 1 to 50"));
        }
        let email = match q.split_once('@') {
            Some((local, _)) if !local.is_empty() => Some(q),
            _ => None,
        };
        Ok(self.store.find_users(q, email, limit).await?)
    }
}

/// Whether a candidate is still a searchable message for its viewer.
fn is_live(m: &ChatMessage) -> bool {
    !m.hidden && !m.recalled && m.kind != MessageKind::System && indexed_text(m).is_some()
}

/// The best fragment of `text` with the query's terms marked; its start if none is there.
fn snippet(generator: &SnippetGenerator, text: &str) -> Snippet {
    let found = generator.snippet(text);
    if found.highlighted().is_empty() {
        let end = text
            .char_indices()
            .nth(LEAD_CHARS)
            .map_or(text.len(), |(i, _)| i);
        return Snippet {
            text: text[..end].to_owned(),
            highlights: Vec::new(),
        };
    }
    let fragment = found.fragment();
    let utf16 = |byte: usize| fragment.get(..byte).map_or(0, |s| s.encode_utf16().count());
    Snippet {
        text: fragment.to_owned(),
        highlights: collapse_overlapped_ranges(found.highlighted())
            .into_iter()
            .map(|r| [utf16(r.start), utf16(r.end)])
            .collect(),
    }
}
