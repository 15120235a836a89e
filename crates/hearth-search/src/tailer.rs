//! Keeps a node's index in step with the database's message feed.
//!
//! The feed is read by id. On SQLite ids commit in order; on MySQL an AUTO_INCREMENT id is
//! taken at insert time and becomes visible at commit, so id 11 can be seen before id 10
//! commits. Reading "id > highest seen" would then skip 10 for ever. So ids missing below the
//! highest one seen are *holes*, re-read on every pass for [`GRACE`]; a hole still empty
//! after that is a rolled-back insert (MySQL burns its id) and is given up on. The cursor
//! saved with each commit is the low-water mark — every id at or below it applied or given
//! up — so a restart re-reads from there; applying is idempotent (delete by key, then add).
//!
//! What is applied is always the message *as stored when read*: a text message is indexed
//! with its current content (or dropped if recalled), and an `edited`/`recalled` system
//! message re-reads the message it names. So the order in which feed rows are seen does not
//! matter: the last read wins, and it is the newest.

use crate::SearchError;
use crate::index::{Change, Position, SearchIndex};
use hearth_core::model::{ChatMessage, MessageKind};
use hearth_core::search::FeedStore;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tantivy::IndexWriter;
use tokio::sync::{Notify, watch};

/// Feed rows read per pass.
const BATCH: usize = 1_000;
/// How often the feed is polled when nothing wakes the tailer earlier.
pub const POLL: Duration = Duration::from_millis(200);
/// Commits at most this often under steady traffic: each commit writes a segment, fsyncs
/// and starts a fresh indexing arena, which at one commit per stored batch cost a third of
/// the server's CPU in the `dm` benchmark. What arrives meanwhile goes into the next commit.
pub const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// How long a hole in the feed ids is waited for (a transaction still committing).
pub const GRACE: Duration = Duration::from_secs(10);
/// Holes tracked at most; beyond that (a huge burned range) ids are given up at once.
const MAX_HOLES: usize = 10_000;
/// Wait after a failed pass (database down, disk full) before trying again.
const RETRY: Duration = Duration::from_secs(1);

/// Where the tailer is in the feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Every id up to this one is applied or given up on (saved in the index).
    pub done: i64,
    /// The highest id applied.
    pub seen: i64,
    /// Ids below `seen` not seen yet, and since when.
    pub holes: BTreeMap<i64, Instant>,
}

impl Cursor {
    pub fn at(done: i64) -> Cursor {
        Cursor {
            done,
            seen: done,
            holes: BTreeMap::new(),
        }
    }

    /// The cursor after a pass that read `fresh` ids (ascending, all above `seen`) and found
    /// `late` among the holes, at `now`.
    pub fn advance(&self, fresh: &[i64], late: &[i64], now: Instant) -> Cursor {
        let mut next = self.clone();
        for id in late {
            next.holes.remove(id);
        }
        let waiting = next.holes.len();
        next.holes
            .retain(|_, since| now.duration_since(*since) < GRACE);
        if next.holes.len() < waiting {
            // Rolled-back inserts (MySQL does not reuse their ids).
            tracing::debug!(count = waiting - next.holes.len(), "feed ids given up on");
        }
        let mut previous = self.seen;
        for &id in fresh {
            let mut missing = previous + 1;
            while missing < id && next.holes.len() < MAX_HOLES {
                next.holes.insert(missing, now);
                missing += 1;
            }
            if missing < id {
                tracing::warn!(
                    from = missing,
                    to = id - 1,
                    "too many feed holes; not waiting for these ids"
                );
            }
            previous = id;
        }
        next.seen = previous;
        next.done = next
            .holes
            .first_key_value()
            .map_or(next.seen, |(id, _)| id - 1);
        next
    }
}

/// The message an `edited` or `recalled` system message is about.
fn changed_seq(content: &str) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Event {
        event: String,
        seq: Option<i64>,
    }
    let event: Event = serde_json::from_str(content).ok()?;
    matches!(event.event.as_str(), "edited" | "recalled" | "transcribed")
        .then_some(event.seq)
        .flatten()
}

pub(crate) struct Tailer {
    pub store: Arc<dyn FeedStore>,
    pub index: Arc<SearchIndex>,
    pub writer: Arc<Mutex<IndexWriter>>,
    pub cursor: Cursor,
    /// Feed ids at or below this may be in the index already (applied before a restart):
    /// their messages are replaced rather than added.
    pub replay_until: i64,
    pub wake: Arc<Notify>,
    pub stop: watch::Receiver<bool>,
}

impl Tailer {
    pub async fn run(mut self) {
        let mut checked_head = false;
        loop {
            if *self.stop.borrow() {
                break;
            }
            let pass = async {
                if !checked_head {
                    self.check_head().await?;
                    checked_head = true;
                }
                self.pass().await
            };
            let wait = match pass.await {
                Ok(Pass::Full) => continue,
                Ok(Pass::Committed) => {
                    // Coalesce: wake-ups in the meantime leave a permit, so the next pass
                    // starts as soon as this wait ends.
                    tokio::select! {
                        () = tokio::time::sleep(COMMIT_EVERY) => {}
                        changed = self.stop.changed() => if changed.is_err() { break },
                    }
                    POLL
                }
                Ok(Pass::Idle) => POLL,
                Err(error) => {
                    tracing::warn!(%error, "search indexing failed; retrying");
                    RETRY
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
                changed = self.stop.changed() => if changed.is_err() { break },
            }
        }
        // Dropping the writer waits for its threads and releases the directory lock.
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || drop(writer)).await;
    }

    /// An index that has read further than the feed goes belongs to another database (or
    /// one restored from an older backup): start it afresh.
    async fn check_head(&mut self) -> Result<(), SearchError> {
        let head = self.store.feed_head().await?;
        if self.cursor.done > head {
            tracing::warn!(
                cursor = self.cursor.done,
                head,
                "search index is ahead of the database's feed; rebuilding it"
            );
            let (index, writer) = (self.index.clone(), self.writer.clone());
            blocking(move || {
                let mut writer = writer.lock().unwrap_or_else(|p| p.into_inner());
                index.clear(&mut writer)
            })
            .await?;
            self.cursor = Cursor::at(0);
            self.replay_until = 0;
        }
        Ok(())
    }

    /// One read of the feed (and of its holes), applied and committed.
    async fn pass(&mut self) -> Result<Pass, SearchError> {
        let fresh = self.store.feed_after(self.cursor.seen, BATCH).await?;
        let holes: Vec<i64> = self.cursor.holes.keys().copied().collect();
        let late = if holes.is_empty() {
            Vec::new()
        } else {
            self.store.feed_entries(&holes).await?
        };
        let next = self.cursor.advance(
            &fresh.iter().map(|e| e.id).collect::<Vec<_>>(),
            &late.iter().map(|e| e.id).collect::<Vec<_>>(),
            Instant::now(),
        );
        let full = fresh.len() == BATCH;
        let mut changes = Vec::new();
        let mut targets = Vec::new();
        for entry in fresh.into_iter().chain(late) {
            let message: ChatMessage = entry.message;
            if message.kind == MessageKind::System {
                if let Some(seq) = changed_seq(&message.content) {
                    targets.push((message.conversation_id, seq));
                }
            } else if entry.id > self.replay_until {
                // A message's own feed row is read once, before any row that changes it: an
                // edit can only commit after the message did, so a read that sees the edit's
                // row sees this one too, and applies it first.
                changes.push(Change::Add(Box::new(message)));
            } else {
                changes.push(Change::Replace(Box::new(message)));
            }
        }
        if !targets.is_empty() {
            targets.sort_unstable();
            targets.dedup();
            // Read after the feed rows above: the newest state, applied last.
            let mut now: HashMap<(i64, i64), ChatMessage> = self
                .store
                .messages_by_key(0, &targets)
                .await?
                .into_iter()
                .map(|m| ((m.conversation_id, m.seq), m))
                .collect();
            for (conversation, seq) in targets {
                changes.push(match now.remove(&(conversation, seq)) {
                    Some(m) => Change::Replace(Box::new(m)),
                    None => Change::Remove(conversation, seq),
                });
            }
        }
        if changes.is_empty() && next.done == self.cursor.done {
            self.cursor = next;
            return Ok(if full { Pass::Full } else { Pass::Idle });
        }
        let position = Position {
            done: next.done,
            seen: next.seen.max(self.replay_until),
        };
        let (index, writer) = (self.index.clone(), self.writer.clone());
        let applied = blocking(move || {
            let mut writer = writer.lock().unwrap_or_else(|p| p.into_inner());
            let applied = index
                .apply(&writer, changes)
                .and_then(|()| index.commit(&mut writer, position));
            if applied.is_err() {
                // Forget the half-applied pass; it is read again from the same cursor.
                let _ = writer.rollback();
            }
            applied
        })
        .await;
        if applied.is_err() {
            // The commit may have landed before the failure (a reader reload that failed):
            // when these rows are read again, they replace rather than add.
            self.replay_until = position.seen;
        }
        applied?;
        self.cursor = next;
        Ok(if full { Pass::Full } else { Pass::Committed })
    }
}

/// What a pass did.
enum Pass {
    /// Read a full batch: more is probably waiting.
    Full,
    /// Committed what it read.
    Committed,
    /// Found nothing to apply.
    Idle,
}

/// Runs index work on the blocking pool (it fsyncs and tokenizes).
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SearchError> + Send + 'static,
) -> Result<T, SearchError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SearchError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_ids_move_the_cursor_along() {
        let now = Instant::now();
        let c = Cursor::at(0).advance(&[1, 2, 3], &[], now);
        assert_eq!((c.done, c.seen, c.holes.len()), (3, 3, 0));
    }

    #[test]
    fn a_late_commit_is_waited_for_then_applied() {
        let t0 = Instant::now();
        // 11 and 12 committed before 10.
        let c = Cursor::at(9).advance(&[11, 12], &[], t0);
        assert_eq!((c.done, c.seen), (9, 12));
        assert_eq!(c.holes.keys().copied().collect::<Vec<_>>(), [10]);
        // 10 shows up a pass later.
        let c = c.advance(&[13], &[10], t0 + Duration::from_millis(200));
        assert_eq!((c.done, c.seen, c.holes.len()), (13, 13, 0));
    }

    #[test]
    fn a_hole_that_never_fills_is_given_up_after_the_grace_period() {
        let t0 = Instant::now();
        let c = Cursor::at(0).advance(&[1, 3], &[], t0);
        assert_eq!(c.done, 1);
        let c = c.advance(&[], &[], t0 + GRACE / 2);
        assert_eq!(c.done, 1);
        let c = c.advance(&[], &[], t0 + GRACE);
        assert_eq!((c.done, c.holes.len()), (3, 0));
    }

    #[test]
    fn huge_gaps_are_capped() {
        let c = Cursor::at(0).advance(&[1_000_000], &[], Instant::now());
        assert_eq!(c.holes.len(), MAX_HOLES);
        assert_eq!(c.seen, 1_000_000);
    }

    #[test]
    fn edit_and_recall_events_name_their_message() {
        assert_eq!(
            changed_seq(r#"{"event":"edited","seq":4,"content":"x"}"#),
            Some(4)
        );
        assert_eq!(changed_seq(r#"{"event":"recalled","seq":9}"#), Some(9));
        assert_eq!(changed_seq(r#"{"event":"left","userId":3}"#), None);
        assert_eq!(changed_seq("not json"), None);
    }
}
