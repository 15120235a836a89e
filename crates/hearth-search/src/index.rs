//! The tantivy index: schema, opening (or rebuilding), writing documents, and the ranked
//! candidate search. Everything here is synchronous; callers run it on the blocking pool.

use crate::SearchError;
use crate::query::TextQuery;
use crate::tokenizer;
use hearth_core::model::{ChatMessage, MessageKind};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, ConstScoreQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentReader, Term, doc};

/// Bumped whenever the schema or the analysis changes: an index of another version is rebuilt.
pub const INDEX_VERSION: u32 = 3;

/// Indexing memory before tantivy flushes a segment (its minimum is 15 MB).
const WRITER_MEMORY: usize = 24_000_000;

/// The longest snippet, in bytes of the original text (tantivy's unit).
const SNIPPET_BYTES: usize = 240;

#[derive(Clone, Copy)]
pub(crate) struct Fields {
    /// `conversation_id · 2³² + seq`, the protocol's global message id: deletes go by it.
    pub key: Field,
    pub conversation: Field,
    pub seq: Field,
    pub sender: Field,
    pub ms: Field,
    pub kind: Field,
    pub text: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(tokenizer::NAME)
        // Positions: multi-character CJK queries are phrases of bigrams.
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let fields = Fields {
        key: b.add_i64_field("key", INDEXED | FAST),
        conversation: b.add_i64_field("conversation", INDEXED | FAST),
        // Ranges only, which tantivy answers from the fast (columnar) field: an inverted
        // index of these nearly unique values would add a term per message for nothing.
        seq: b.add_i64_field("seq", FAST),
        sender: b.add_i64_field("sender", INDEXED | FAST),
        ms: b.add_i64_field("ms", FAST),
        kind: b.add_text_field("kind", STRING),
        // Not stored: hits are shown from the database row (current edits, recalls, hides),
        // and their snippets are cut from that same text.
        text: b.add_text_field(
            "text",
            TextOptions::default().set_indexing_options(indexing),
        ),
    };
    (b.build(), fields)
}

pub(crate) fn key(conversation_id: i64, seq: i64) -> i64 {
    (conversation_id << 32) + seq
}

fn unkey(key: i64) -> (i64, i64) {
    (key >> 32, key & 0xFFFF_FFFF)
}

/// The text a message is found by: the one place that decides what is searchable.
///
/// Text messages are found by their content; image, file and voice messages by their
/// caption; images and files also by their file's name (when the store described the file:
/// the feed's reads do; a voice recording's name is the client's, not the sender's words);
/// voice by its transcript once there is one (a `transcribed` system message makes the
/// tailer read the message again). The parts are joined with newlines; indexing and snippets
/// both go through this function. System messages (joins, edits, …) are not searchable.
pub fn indexed_text(message: &ChatMessage) -> Option<String> {
    if message.recalled {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    match message.kind {
        MessageKind::Text => parts.push(&message.content),
        MessageKind::Image | MessageKind::File | MessageKind::Voice => {
            parts.push(&message.content);
            let meta = message.file.as_ref().and_then(|f| f.meta.as_ref());
            if let Some(meta) = meta.filter(|_| message.kind != MessageKind::Voice) {
                parts.push(&meta.name);
            }
            if let Some(transcript) = &message.transcript {
                parts.push(transcript);
            }
        }
        MessageKind::System => return None,
    }
    parts.retain(|part| !part.trim().is_empty());
    (!parts.is_empty()).then(|| parts.join("\n"))
}

/// What the feed says about one message.
pub(crate) enum Change {
    /// A message the index cannot hold yet (first seen since the last committed position):
    /// only added. Deleting first costs a term lookup in every segment at commit — a third
    /// of the indexing work when every message is new.
    Add(Box<ChatMessage>),
    /// A message that may be indexed already (edited, recalled, transcribed, or read again
    /// after a restart): its old document is deleted, then it is added as it is now.
    Replace(Box<ChatMessage>),
    /// A message no longer in the database.
    Remove(i64, i64),
}

pub(crate) struct SearchIndex {
    /// Also holds the index (and its tokenizers) alive.
    reader: IndexReader,
    pub fields: Fields,
}

/// How far into the feed a committed index is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Position {
    /// Every feed id up to this one is applied (or was given up on).
    pub done: i64,
    /// The highest feed id applied: a message first seen above it is not in the index.
    pub seen: i64,
}

/// The committed state of an index, stored as its commit payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Payload {
    version: u32,
    #[serde(flatten)]
    position: Position,
}

impl SearchIndex {
    /// Opens the index in `dir` (created if missing), or an in-memory one. An index that
    /// cannot be opened, or of another version, is deleted and started afresh: the feed
    /// rebuilds it. Returns the index, its writer and the feed position it had reached.
    pub fn open(dir: Option<&Path>) -> Result<(SearchIndex, IndexWriter, Position), SearchError> {
        let (schema, fields) = schema();
        let index = match dir {
            None => Index::create_in_ram(schema.clone()),
            Some(dir) => open_dir(dir, &schema)?,
        };
        index
            .tokenizers()
            .register(tokenizer::NAME, tokenizer::analyzer());
        let mut writer = index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => {
                    SearchError::Locked(dir.map(Path::to_path_buf).unwrap_or_default())
                }
                other => other.into(),
            })?;
        let resumed = match index
            .load_metas()?
            .payload
            .as_deref()
            .map(serde_json::from_str)
        {
            Some(Ok(Payload { version, position })) if version == INDEX_VERSION => Some(position),
            _ => None,
        };
        let reader = index
            .reader_builder()
            // The tailer reloads after each commit: a search sees a commit at once.
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let search = SearchIndex { reader, fields };
        let position = match resumed {
            Some(position) => position,
            None => {
                // Documents of another version, or no telling how far they go: the feed is
                // read from the start, and every message in it must find the index without
                // it (new messages are only added, never replaced).
                if search.num_docs() > 0 {
                    search.clear(&mut writer)?;
                }
                Position::default()
            }
        };
        Ok((search, writer, position))
    }

    /// Adds, replaces or deletes the documents of these messages.
    pub fn apply(&self, writer: &IndexWriter, changes: Vec<Change>) -> Result<(), SearchError> {
        let f = self.fields;
        for change in changes {
            let (conversation_id, seq, message, replaces) = match change {
                Change::Add(m) => (m.conversation_id, m.seq, Some(m), false),
                Change::Replace(m) => (m.conversation_id, m.seq, Some(m), true),
                Change::Remove(c, s) => (c, s, None, true),
            };
            let key = key(conversation_id, seq);
            if replaces {
                writer.delete_term(Term::from_field_i64(f.key, key));
            }
            let Some(message) = message else { continue };
            let Some(text) = indexed_text(&message) else {
                continue;
            };
            writer.add_document(doc!(
                f.key => key,
                f.conversation => conversation_id,
                f.seq => seq,
                f.sender => message.sender.id,
                f.ms => message.ms,
                f.kind => message.kind.as_str(),
                f.text => text,
            ))?;
        }
        Ok(())
    }

    /// Makes everything applied so far durable and visible, with the feed position reached.
    pub fn commit(&self, writer: &mut IndexWriter, position: Position) -> Result<(), SearchError> {
        let payload = serde_json::to_string(&Payload {
            version: INDEX_VERSION,
            position,
        })?;
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&payload);
        commit.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Forgets every document (the index belongs to another database).
    pub fn clear(&self, writer: &mut IndexWriter) -> Result<(), SearchError> {
        writer.delete_all_documents()?;
        self.commit(writer, Position::default())
    }

    /// The top `k` matches as `(conversation_id, seq)`, best first: BM25, then newest, then
    /// highest key (so equal scores page deterministically). Also whether that was all.
    pub fn top(&self, query: &dyn Query, k: usize) -> Result<(Vec<(i64, i64)>, bool), SearchError> {
        let searcher = self.reader.searcher();
        let collector = TopDocs::with_limit(k.max(1)).tweak_score(|segment: &SegmentReader| {
            let ms = segment.fast_fields().i64("ms").ok();
            let key = segment.fast_fields().i64("key").ok();
            move |doc, score: Score| {
                let ms = ms.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
                let key = key.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
                (score, ms, key)
            }
        });
        let top = searcher.search(query, &collector)?;
        let exhausted = top.len() < k;
        Ok((
            top.into_iter().map(|((_, _, key), _)| unkey(key)).collect(),
            exhausted,
        ))
    }

    /// The text query combined with who-may-read-what and the caller's filters.
    pub fn full_query(&self, text: &TextQuery, filters: &Filters) -> Box<dyn Query> {
        let f = self.fields;
        let constant =
            |q: Box<dyn Query>| -> Box<dyn Query> { Box::new(ConstScoreQuery::new(q, 0.0)) };
        let term = |field: Field, value: i64| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_i64(field, value),
                IndexRecordOption::Basic,
            ))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text.build(f.text))];
        // Readable: whole conversations in one set; those joined later only after joined_seq.
        let mut access: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let whole: Vec<Term> = filters
            .readable
            .iter()
            .filter(|(_, joined)| *joined <= 0)
            .map(|(c, _)| Term::from_field_i64(f.conversation, *c))
            .collect();
        if !whole.is_empty() {
            access.push((Occur::Should, Box::new(TermSetQuery::new(whole))));
        }
        for &(conversation, joined) in filters.readable.iter().filter(|(_, j)| *j > 0) {
            let after: Box<dyn Query> = Box::new(RangeQuery::new(
                Bound::Excluded(Term::from_field_i64(f.seq, joined)),
                Bound::Unbounded,
            ));
            access.push((
                Occur::Should,
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, term(f.conversation, conversation)),
                    (Occur::Must, after),
                ])),
            ));
        }
        // No readable conversation at all: an empty disjunction matches nothing, as it should.
        clauses.push((Occur::Must, constant(Box::new(BooleanQuery::new(access)))));
        if let Some(sender) = filters.sender {
            clauses.push((Occur::Must, constant(term(f.sender, sender))));
        }
        if filters.from.is_some() || filters.to.is_some() {
            let bound = |ms: Option<i64>| {
                ms.map_or(Bound::Unbounded, |ms| {
                    Bound::Included(Term::from_field_i64(f.ms, ms))
                })
            };
            clauses.push((
                Occur::Must,
                constant(Box::new(RangeQuery::new(
                    bound(filters.from),
                    bound(filters.to),
                ))),
            ));
        }
        Box::new(BooleanQuery::new(clauses))
    }

    /// Highlights the query's terms in `text` (a message as stored now).
    pub fn snippets(&self, query: &dyn Query) -> Result<SnippetGenerator, SearchError> {
        let searcher = self.reader.searcher();
        let mut generator = SnippetGenerator::create(&searcher, query, self.fields.text)?;
        generator.set_max_num_chars(SNIPPET_BYTES);
        Ok(generator)
    }

    /// How many documents the index holds (for tests and logs).
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }
}

/// Who may read what, and what the caller narrowed the search to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    /// `(conversation_id, joined_seq)`: readable after `joined_seq` (0: all of it).
    pub readable: Vec<(i64, i64)>,
    pub sender: Option<i64>,
    /// Inclusive bounds on the message time (ms).
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// Files tantivy keeps in an index directory. Anything else there means the directory is not
/// (only) ours, and it is never deleted.
fn is_index_file(name: &str) -> bool {
    if matches!(name, "meta.json" | ".managed.json") || name.starts_with(".tantivy-") {
        return true;
    }
    // Segment files: "<32 hex digits>.<component>", and "<32 hex>.<opstamp>.del".
    let stem = name.split('.').next().unwrap_or_default();
    stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit()) && name.len() > 33
}

fn open_dir(dir: &Path, schema: &Schema) -> Result<Index, SearchError> {
    std::fs::create_dir_all(dir)?;
    let foreign: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| !is_index_file(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    if !foreign.is_empty() {
        return Err(SearchError::NotAnIndex(dir.to_path_buf()));
    }
    let has_meta = dir.join("meta.json").exists();
    if has_meta {
        match Index::open_in_dir(dir) {
            Ok(index) if index.schema() == *schema => return Ok(index),
            Ok(_) => {
                tracing::warn!(dir = %dir.display(), "search index has another schema; rebuilding it from the feed")
            }
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "search index cannot be opened; rebuilding it from the feed")
            }
        }
        // Only tantivy's own files are here (checked above): start afresh.
        for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(Index::create_in_dir(dir, schema.clone())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_core::model::UserRef;

    fn message(conversation_id: i64, seq: i64, sender: i64, ms: i64, content: &str) -> ChatMessage {
        ChatMessage {
            conversation_id,
            seq,
            ms,
            sender: UserRef {
                id: sender,
                username: format!("user{sender}"),
            },
            kind: MessageKind::Text,
            content: content.to_owned(),
            reply_to: None,
            client_msg_id: None,
            edited_ms: None,
            recalled: false,
            hidden: false,
            file: None,
            transcript: None,
        }
    }

    #[test]
    fn images_and_files_are_found_by_caption_and_name_voice_by_transcript() {
        let described = |kind: MessageKind, caption: &str, name: &str| ChatMessage {
            kind,
            file: Some(hearth_core::model::Attachment {
                id: "f".into(),
                meta: Some(Box::new(hearth_proto::native::FileRef {
                    id: "f".into(),
                    name: name.into(),
                    size: 1,
                    content_type: "application/pdf".into(),
                    width: None,
                    height: None,
                    has_thumbnail: false,
                })),
            }),
            ..message(1, 1, 1, 1, caption)
        };
        let file = described(MessageKind::File, "the slides", "q3-report.pdf");
        assert_eq!(
            indexed_text(&file).as_deref(),
            Some("the slides\nq3-report.pdf")
        );
        let image = described(MessageKind::Image, "", "harbour.jpg");
        assert_eq!(indexed_text(&image).as_deref(), Some("harbour.jpg"));
        // Undescribed (the store did not look the file up): the caption alone.
        let bare = ChatMessage {
            file: Some(hearth_core::model::Attachment {
                id: "f".into(),
                meta: None,
            }),
            ..described(MessageKind::File, "", "")
        };
        assert_eq!(indexed_text(&bare), None);
        let mut voice = described(MessageKind::Voice, "", "recording.webm");
        assert_eq!(indexed_text(&voice), None);
        voice.transcript = Some("see you tuesday".into());
        assert_eq!(indexed_text(&voice).as_deref(), Some("see you tuesday"));
    }

    fn at(feed_id: i64) -> Position {
        Position {
            done: feed_id,
            seen: feed_id,
        }
    }

    fn indexed(messages: &[ChatMessage]) -> SearchIndex {
        let (index, mut writer, position) = SearchIndex::open(None).unwrap();
        assert_eq!(position, Position::default());
        let changes = messages
            .iter()
            .map(|m| Change::Add(Box::new(m.clone())))
            .collect();
        index.apply(&writer, changes).unwrap();
        index.commit(&mut writer, at(7)).unwrap();
        index
    }

    fn find(index: &SearchIndex, q: &str, filters: &Filters) -> Vec<(i64, i64)> {
        let query = index.full_query(&TextQuery::parse(q), filters);
        index.top(&*query, 100).unwrap().0
    }

    fn everyone() -> Filters {
        Filters {
            readable: vec![(1, 0), (2, 0)],
            ..Filters::default()
        }
    }

    #[test]
    fn stems_substrings_and_filters() {
        let index = indexed(&[
            message(1, 1, 10, 1_000, "He runs every morning"),
            message(1, 2, 11, 2_000, "Running is fun"),
            message(1, 3, 10, 3_000, "我们用数据库存储消息"),
            message(2, 1, 11, 4_000, "大数据库存管理"),
            message(2, 2, 10, 5_000, "你好，世界"),
            message(2, 3, 11, 6_000, "好的"),
        ]);
        let all = everyone();
        // Stemming: "running" finds "runs" and "Running"; newest first among equals.
        assert_eq!(find(&index, "running", &all), [(1, 2), (1, 1)]);
        assert_eq!(find(&index, "run", &all), [(1, 2), (1, 1)]);
        // A CJK substring whichever way jieba cut it.
        let mut hits = find(&index, "数据库", &all);
        hits.sort();
        assert_eq!(hits, [(1, 3), (2, 1)]);
        assert_eq!(find(&index, "你好", &all), [(2, 2)]);
        let mut one = find(&index, "好", &all);
        one.sort();
        assert_eq!(one, [(2, 2), (2, 3)]);
        assert!(find(&index, "数据仓库", &all).is_empty());
        // Every part must match.
        assert_eq!(find(&index, "running fun", &all), [(1, 2)]);
        // Filters: readable conversations, joined_seq, sender, time.
        let only_one = Filters {
            readable: vec![(1, 0)],
            ..Filters::default()
        };
        assert_eq!(find(&index, "数据库", &only_one), [(1, 3)]);
        let joined_late = Filters {
            readable: vec![(1, 1)],
            ..Filters::default()
        };
        assert_eq!(find(&index, "run", &joined_late), [(1, 2)]);
        let by_sender = Filters {
            sender: Some(10),
            ..everyone()
        };
        assert_eq!(find(&index, "run", &by_sender), [(1, 1)]);
        let in_time = Filters {
            from: Some(1_500),
            to: Some(2_000),
            ..everyone()
        };
        assert_eq!(find(&index, "run", &in_time), [(1, 2)]);
        assert!(find(&index, "run", &Filters::default()).is_empty());
    }

    #[test]
    fn updates_replace_and_removals_delete() {
        let (index, mut writer, _) = SearchIndex::open(None).unwrap();
        let mut m = message(1, 1, 10, 1_000, "original words");
        index
            .apply(&writer, vec![Change::Add(Box::new(m.clone()))])
            .unwrap();
        m.content = "edited text".into();
        index
            .apply(&writer, vec![Change::Replace(Box::new(m.clone()))])
            .unwrap();
        index.commit(&mut writer, at(2)).unwrap();
        assert!(find(&index, "original", &everyone()).is_empty());
        assert_eq!(find(&index, "edited", &everyone()), [(1, 1)]);
        assert_eq!(index.num_docs(), 1);
        index.apply(&writer, vec![Change::Remove(1, 1)]).unwrap();
        index.commit(&mut writer, at(3)).unwrap();
        assert_eq!(index.num_docs(), 0);
    }

    #[test]
    fn snippets_mark_the_terms() {
        let index = indexed(&[message(1, 1, 10, 1_000, "我们用数据库存储消息")]);
        let query = index.full_query(&TextQuery::parse("数据库"), &everyone());
        let snippet = index
            .snippets(&*query)
            .unwrap()
            .snippet("我们用数据库存储消息");
        let marked: Vec<&str> = tantivy::snippet::collapse_overlapped_ranges(snippet.highlighted())
            .into_iter()
            .map(|r| &snippet.fragment()[r])
            .collect();
        assert_eq!(marked, ["数据库"]);
    }

    #[test]
    fn a_directory_index_keeps_its_cursor_and_refuses_foreign_files() {
        let dir = std::env::temp_dir().join(format!("hearth-search-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let (index, mut writer, position) = SearchIndex::open(Some(&dir)).unwrap();
            assert_eq!(position, Position::default());
            index
                .apply(
                    &writer,
                    vec![Change::Add(Box::new(message(1, 1, 1, 1, "kept")))],
                )
                .unwrap();
            let position = Position { done: 42, seen: 45 };
            index.commit(&mut writer, position).unwrap();
            // A second writer on the same directory is refused.
            assert!(matches!(
                SearchIndex::open(Some(&dir)),
                Err(SearchError::Locked(_))
            ));
        }
        let (index, mut writer, position) = SearchIndex::open(Some(&dir)).unwrap();
        assert_eq!(
            (position, index.num_docs()),
            (Position { done: 42, seen: 45 }, 1)
        );
        // Documents committed by another index version are dropped, not read again on top.
        let mut commit = writer.prepare_commit().unwrap();
        commit.set_payload(r#"{"version":1,"cursor":42}"#);
        commit.commit().unwrap();
        drop((index, writer));
        let (index, _writer, position) = SearchIndex::open(Some(&dir)).unwrap();
        assert_eq!((position, index.num_docs()), (Position::default(), 0));
        drop((index, _writer));
        // A corrupt index is started afresh.
        std::fs::write(dir.join("meta.json"), "garbage").unwrap();
        let (index, _writer, position) = SearchIndex::open(Some(&dir)).unwrap();
        assert_eq!((position, index.num_docs()), (Position::default(), 0));
        drop((index, _writer));
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        assert!(matches!(
            SearchIndex::open(Some(&dir)),
            Err(SearchError::NotAnIndex(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_round_trip() {
        assert_eq!(unkey(key(7, 42)), (7, 42));
        assert_eq!(key(1, 1), 4_294_967_297);
    }

    #[test]
    fn only_tantivy_files_count_as_the_index() {
        assert!(is_index_file("meta.json"));
        assert!(is_index_file(".tantivy-writer.lock"));
        assert!(is_index_file("0123456789abcdef0123456789abcdef.idx"));
        assert!(is_index_file("0123456789abcdef0123456789abcdef.12.del"));
        assert!(!is_index_file("hearth.db"));
        assert!(!is_index_file("0123456789abcdef0123456789abcdef"));
    }
}
