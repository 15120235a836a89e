//! One writer task per active conversation: the single place messages are stored.
//!
//! Posts queue on the conversation's channel; the writer drains whatever has queued (up to a
//! bound), drops retries of sends it already stored (same sender and `clientMsgId`), stores
//! the rest in one transaction (group commit: one fsync for many posts), and only then calls
//! [`Committed`] and answers each poster.
//!
//! Retries are rare, so they are found the cheap way: the batch is first stored as if it held
//! none, and the unique key on `(sender, clientMsgId)` refuses it if it did. Only then are the
//! earlier sends looked up and the batch stored again without them.
//!
//! One writer per conversation means `seq` order, storage order and delivery order are the
//! same order.
//!
//! Writers start on first use. Those of direct and group conversations stop after a minute
//! without posts, so idle conversations cost nothing; room writers live as long as the node
//! (connected sockets rely on room deliveries arriving in `seq` order, which a stopping and a
//! starting writer could briefly interleave).

use crate::StoreError;
use crate::model::{ChatMessage, ConversationKind, ConversationRef, NewMessage};
use crate::store::MessageStore;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Called by the writer after each commit, in `seq` order, with the newly stored messages.
#[async_trait]
pub trait Committed: Send + Sync + 'static {
    async fn committed(&self, conversation: &ConversationRef, messages: &[ChatMessage]);
}

/// Posts a writer stores in one transaction at most.
const MAX_POSTS_PER_COMMIT: usize = 64;
/// Posts that may queue for one conversation before posters wait.
const QUEUE: usize = 1_024;
const IDLE: Duration = Duration::from_secs(60);

struct Post {
    messages: Vec<NewMessage>,
    reply: oneshot::Sender<Result<Vec<ChatMessage>, StoreError>>,
}

type Queues = Arc<Mutex<HashMap<i64, mpsc::Sender<Post>>>>;

/// A post queued on its conversation's writer; [`Submitted::stored`] waits for the commit.
pub struct Submitted(oneshot::Receiver<Result<Vec<ChatMessage>, StoreError>>);

impl Submitted {
    /// The messages as stored (after the commit), or why they were not.
    pub async fn stored(self) -> Result<Vec<ChatMessage>, StoreError> {
        self.0
            .await
            .map_err(|_| StoreError::Unavailable("writer stopped".into()))?
    }
}

pub struct Writers {
    store: Arc<dyn MessageStore>,
    committed: Arc<dyn Committed>,
    queues: Queues,
}

impl Writers {
    pub fn new(store: Arc<dyn MessageStore>, committed: Arc<dyn Committed>) -> Writers {
        Writers {
            store,
            committed,
            queues: Arc::default(),
        }
    }

    /// Stores `messages` in `conversation` and returns them as stored — or, for a send whose
    /// `clientMsgId` the sender used before, the message stored then.
    pub async fn append(
        &self,
        conversation: &ConversationRef,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.submit(conversation, messages).await?.stored().await
    }

    /// Queues `messages` on the conversation's writer and returns at once with what will
    /// answer when they are stored. Posts submitted one after another are stored in that
    /// order, so a socket can keep several sends in flight without reordering them.
    pub async fn submit(
        &self,
        conversation: &ConversationRef,
        messages: Vec<NewMessage>,
    ) -> Result<Submitted, StoreError> {
        let (reply, answer) = oneshot::channel();
        let mut post = Post { messages, reply };
        // A writer that just stopped for idleness leaves a closed channel: start another.
        for _ in 0..3 {
            let queue = self.queue(conversation);
            match queue.send(post).await {
                Ok(()) => return Ok(Submitted(answer)),
                Err(mpsc::error::SendError(returned)) => {
                    post = returned;
                    self.forget(conversation.id, &queue);
                }
            }
        }
        Err(StoreError::Unavailable("writer keeps stopping".into()))
    }

    fn queue(&self, conversation: &ConversationRef) -> mpsc::Sender<Post> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(queue) = queues.get(&conversation.id)
            && !queue.is_closed()
        {
            return queue.clone();
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        queues.insert(conversation.id, tx.clone());
        tokio::spawn(run(
            conversation.clone(),
            self.store.clone(),
            self.committed.clone(),
            self.queues.clone(),
            rx,
        ));
        tx
    }

    /// Posts waiting for their writer: the total over every conversation and the longest
    /// queue (sampled by the metrics endpoint).
    pub fn queued(&self) -> (usize, usize) {
        let queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        queues
            .values()
            .map(|q| q.max_capacity() - q.capacity())
            .fold((0, 0), |(total, max), n| (total + n, max.max(n)))
    }

    fn forget(&self, id: i64, queue: &mpsc::Sender<Post>) {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if queues.get(&id).is_some_and(|q| q.same_channel(queue)) {
            queues.remove(&id);
        }
    }
}

async fn run(
    conversation: ConversationRef,
    store: Arc<dyn MessageStore>,
    committed: Arc<dyn Committed>,
    queues: Queues,
    mut queue: mpsc::Receiver<Post>,
) {
    let mut posts = Vec::with_capacity(MAX_POSTS_PER_COMMIT);
    let idle = match conversation.kind {
        ConversationKind::Room => Duration::MAX,
        ConversationKind::Direct | ConversationKind::Group => IDLE,
    };
    loop {
        let received =
            tokio::time::timeout(idle, queue.recv_many(&mut posts, MAX_POSTS_PER_COMMIT)).await;
        match received {
            Ok(0) => return,
            Ok(_) => write_batch(&conversation, &*store, &*committed, &mut posts).await,
            Err(_idle) => {
                // Stop accepting, then store whatever raced in before the close.
                {
                    let mut map = queues.lock().unwrap_or_else(|p| p.into_inner());
                    map.remove(&conversation.id);
                }
                queue.close();
                while queue.recv_many(&mut posts, MAX_POSTS_PER_COMMIT).await > 0 {
                    write_batch(&conversation, &*store, &*committed, &mut posts).await;
                }
                return;
            }
        }
    }
}

/// Where each posted message ends up: stored now at `new[i]`, or stored before.
enum Outcome {
    New(usize),
    Existing(ChatMessage),
}

async fn write_batch(
    conversation: &ConversationRef,
    store: &dyn MessageStore,
    committed: &dyn Committed,
    posts: &mut Vec<Post>,
) {
    let mut result = store_batch(conversation, store, posts, false).await;
    if let Err(StoreError::Backend(_)) = &result {
        // A retry (or a bad post): look the retries up, then store what is new.
        result = store_batch(conversation, store, posts, true).await;
    }
    // One bad post (a row the database refuses) must not sink the others that shared its
    // transaction: retry them one by one. An outage fails them all, as it should.
    if let Err(StoreError::Backend(_)) = &result
        && posts.len() > 1
    {
        for post in std::mem::take(posts) {
            let mut single = vec![post];
            Box::pin(write_batch(conversation, store, committed, &mut single)).await;
        }
        return;
    }
    match result {
        Ok((stored, outcomes, fresh_ranges)) => {
            // Direct and group messages are one frame each: the whole batch is handed over at
            // once (one write per socket). A room frame holds what one post held (a client
            // may wait for the echo of its own frame), so rooms get one delivery per post.
            let per_post = conversation.kind == ConversationKind::Room;
            if !per_post && !stored.is_empty() {
                committed.committed(conversation, &stored).await;
            }
            for ((post, outcome), fresh) in posts.drain(..).zip(outcomes).zip(fresh_ranges) {
                if per_post && !fresh.is_empty() {
                    committed.committed(conversation, &stored[fresh]).await;
                }
                let result = outcome
                    .into_iter()
                    .map(|o| match o {
                        Outcome::New(i) => stored[i].clone(),
                        Outcome::Existing(m) => m,
                    })
                    .collect();
                // The poster may be gone; its messages are stored and delivered anyway.
                let _ = post.reply.send(Ok(result));
            }
        }
        Err(error) => {
            tracing::warn!(conversation = conversation.id, %error, "storing messages failed");
            for post in posts.drain(..) {
                let _ = post.reply.send(Err(error.clone()));
            }
        }
    }
}

/// What a batch stored: the new messages, each post's outcome per message, and the range of
/// the new messages each post added (contiguous: fresh messages are stored in post order).
type Stored = (
    Vec<ChatMessage>,
    Vec<Vec<Outcome>>,
    Vec<std::ops::Range<usize>>,
);

/// Stores a batch; with `look_up_retries`, sends stored before are answered from storage
/// instead (without, the store refuses a batch that holds one).
async fn store_batch(
    conversation: &ConversationRef,
    store: &dyn MessageStore,
    posts: &[Post],
    look_up_retries: bool,
) -> Result<Stored, StoreError> {
    // Retries: earlier sends with the same (sender, clientMsgId), anywhere.
    let mut wanted: HashMap<i64, Vec<String>> = HashMap::new();
    if look_up_retries {
        for m in posts.iter().flat_map(|p| &p.messages) {
            if let Some(id) = &m.client_msg_id {
                wanted.entry(m.sender.id).or_default().push(id.clone());
            }
        }
    }
    let mut earlier: HashMap<(i64, String), ChatMessage> = HashMap::new();
    for (sender, ids) in wanted {
        for m in store.sent_messages(sender, &ids).await? {
            if let Some(id) = m.client_msg_id.clone() {
                earlier.insert((sender, id), m);
            }
        }
    }
    let mut fresh = Vec::new();
    let mut in_batch: HashMap<(i64, String), usize> = HashMap::new();
    let mut outcomes = Vec::with_capacity(posts.len());
    let mut fresh_ranges = Vec::with_capacity(posts.len());
    for post in posts {
        let first_fresh = fresh.len();
        let mut mine = Vec::with_capacity(post.messages.len());
        // Cloned, not taken: a failed batch is retried post by post.
        for m in post.messages.iter().cloned() {
            let key = m.client_msg_id.clone().map(|id| (m.sender.id, id));
            if let Some(key) = &key {
                if let Some(existing) = earlier.get(key) {
                    mine.push(Outcome::Existing(existing.clone()));
                    continue;
                }
                if let Some(&index) = in_batch.get(key) {
                    mine.push(Outcome::New(index));
                    continue;
                }
                in_batch.insert(key.clone(), fresh.len());
            }
            mine.push(Outcome::New(fresh.len()));
            fresh.push(m);
        }
        outcomes.push(mine);
        fresh_ranges.push(first_fresh..fresh.len());
    }
    let stored = if fresh.is_empty() {
        Vec::new()
    } else {
        store
            .append_messages(conversation, fresh, crate::now_ms())
            .await?
    };
    Ok((stored, outcomes, fresh_ranges))
}
