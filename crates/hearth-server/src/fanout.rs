//! Fan-out: encode once, share the bytes with every socket, on every node.
//!
//! [`Gateway`] is both the core's [`Deliver`] (what a writer stored goes out through it) and
//! the node's [`BusHandler`] (what any node published comes in through it):
//!
//! ```text
//! writer ─► Gateway::room_messages ─► bus "room.<id>" ─► every node: Gateway::deliver
//!                                                         ─► RoomSequencer ─► Fanout ─► every socket
//! writer ─► Gateway::to_users ─► bus "user.<id>" (per recipient) ─► nodes holding that user
//!                                                         ─► Registry ─► that user's sockets
//! ```
//!
//! In embedded mode the bus is an in-process loopback, so the same path costs a function call.

use crate::outlet::{Outlet, RoomFrame, RoomFrames, put_text_frame, text_frame};
use crate::registry::Registry;
use bytes::{BufMut, Bytes, BytesMut};
use hearth_core::bus::{
    Bus, BusHandler, CONTROL_TOPIC, revoke_user_message, room_topic, user_topic,
};
use hearth_core::delivery::Deliver;
use hearth_core::messaging::MemberCache;
use hearth_core::model::{ChatMessage, Room};
use hearth_core::store::MessageStore;
use hearth_proto::native::ImServerFrame;
use hearth_proto::room::{ServerFrame, ServerMessages};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Every socket on this node, and the task that writes room batches to all of them.
///
/// Stored batches queue here; the task takes everything queued at once, joins it into one
/// buffer and writes that to each socket with one non-blocking system call. A burst therefore
/// costs one write per socket per pass, not one per message, and no socket task wakes up.
pub struct Fanout {
    outlets: RwLock<HashMap<u64, Arc<Outlet>>>,
    queue: mpsc::UnboundedSender<RoomFrame>,
    /// Batches in `queue` (the channel does not say): a gauge at scrape time.
    queued: AtomicUsize,
}

/// Room batches written to every socket in one pass, at most.
const MAX_PASS: usize = 1024;

impl Fanout {
    pub fn new() -> Arc<Self> {
        let (queue, mut batches) = mpsc::unbounded_channel();
        let fanout = Arc::new(Fanout {
            outlets: RwLock::default(),
            queue,
            queued: AtomicUsize::new(0),
        });
        let weak = Arc::downgrade(&fanout);
        tokio::spawn(async move {
            let mut pass = Vec::with_capacity(MAX_PASS);
            loop {
                let taken = batches.recv_many(&mut pass, MAX_PASS).await;
                if taken == 0 {
                    return;
                }
                let Some(fanout) = weak.upgrade() else { return };
                fanout.queued.fetch_sub(taken, Ordering::Relaxed);
                let oldest = pass.iter().map(|f| f.since).min();
                let frames = RoomFrames::new(std::mem::take(&mut pass));
                let mut written = 0;
                for outlet in fanout.read().values() {
                    written += outlet.send_rooms(&frames);
                }
                // Recorded once per pass: the per-socket loop above only adds integers.
                crate::telemetry::room_frames_out(written);
                if let Some(oldest) = oldest {
                    crate::telemetry::fanout_pass(oldest.elapsed());
                }
            }
        });
        fanout
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u64, Arc<Outlet>>> {
        self.outlets.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Arc<Outlet>>> {
        self.outlets.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn attach(&self, socket_id: u64, outlet: Arc<Outlet>) {
        self.write().insert(socket_id, outlet);
    }

    pub fn detach(&self, socket_id: u64) {
        self.write().remove(&socket_id);
    }

    fn send(&self, frame: RoomFrame) {
        // Fails only when the task is gone, that is when the node is shutting down.
        if self.queue.send(frame).is_ok() {
            self.queued.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Batches waiting for the fan-out task, and the bytes waiting in sockets' outlets (total,
    /// largest). Walks every socket: for `/metrics`, not for hot paths.
    pub fn depths(&self) -> (usize, usize, usize) {
        let (total, max) = self
            .read()
            .values()
            .map(|outlet| outlet.queued_bytes())
            .fold((0, 0), |(total, max), n| (total + n, max.max(n)));
        (self.queued.load(Ordering::Relaxed), total, max)
    }
}

/// How long an out-of-order room batch waits for the ones before it before they are read
/// from storage instead.
const GAP_WAIT: Duration = Duration::from_millis(100);

/// Puts each room's batches back in `seq` order before they reach sockets.
///
/// One writer per room per node keeps a node's own batches in order, but batches written by
/// different nodes travel different connections and may cross. A batch that arrives early
/// waits; if the missing ones do not follow within [`GAP_WAIT`] (a lost bus message), they are
/// read from storage. Sockets therefore see every room message once, in order.
pub struct RoomSequencer {
    store: Arc<dyn MessageStore>,
    rooms: HashMap<i64, Room>,
    state: Mutex<HashMap<i64, RoomOrder>>,
    fanout: Arc<Fanout>,
}

#[derive(Default)]
struct RoomOrder {
    /// The next `seq` to release.
    next: i64,
    /// Early batches by first `seq`: (last `seq`, framed batch, when it arrived).
    early: BTreeMap<i64, (i64, Bytes, Instant)>,
    repairing: bool,
}

impl RoomSequencer {
    /// Starts each room after what storage already holds: sockets get that in `hello`.
    pub async fn new(
        store: Arc<dyn MessageStore>,
        rooms: &[Room],
        fanout: Arc<Fanout>,
    ) -> Result<RoomSequencer, hearth_core::StoreError> {
        let mut state = HashMap::new();
        for room in rooms {
            let next = store.last_seq(room.conversation_id).await? + 1;
            state.insert(
                room.conversation_id,
                RoomOrder {
                    next,
                    ..RoomOrder::default()
                },
            );
        }
        Ok(RoomSequencer {
            store,
            rooms: rooms
                .iter()
                .map(|r| (r.conversation_id, r.clone()))
                .collect(),
            state: Mutex::new(state),
            fanout,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, RoomOrder>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a batch `first..=last` of a room; releases whatever is now in order. Returns true
    /// when a gap is open and a repair should be scheduled.
    fn accept(&self, conversation: i64, first: i64, last: i64, frame: Bytes) -> bool {
        let mut state = self.lock();
        let Some(order) = state.get_mut(&conversation) else {
            return false;
        };
        if last < order.next {
            return false; // already released (or repaired from storage)
        }
        order.early.insert(first, (last, frame, Instant::now()));
        self.release(conversation, order);
        let gap = !order.early.is_empty() && !order.repairing;
        if gap {
            order.repairing = true;
        }
        gap
    }

    fn release(&self, conversation: i64, order: &mut RoomOrder) {
        while let Some((&first, _)) = order.early.first_key_value() {
            if first > order.next {
                break;
            }
            let Some((first, (last, frame, since))) = order.early.pop_first() else {
                break;
            };
            if last >= order.next && first <= order.next {
                self.fanout.send(RoomFrame {
                    conversation_id: conversation,
                    last_seq: last,
                    wire: frame,
                    since,
                });
                order.next = last + 1;
            }
        }
    }

    /// Waits for a gap to close on its own, else reads the missing messages from storage.
    async fn repair(self: Arc<Self>, conversation: i64) {
        tokio::time::sleep(GAP_WAIT).await;
        let (from, to) = {
            let mut state = self.lock();
            let Some(order) = state.get_mut(&conversation) else {
                return;
            };
            order.repairing = false;
            match order.early.first_key_value() {
                Some((&first, _)) if first > order.next => (order.next, first - 1),
                _ => return,
            }
        };
        self.fill(conversation, from, to).await;
    }

    /// Releases `from..=to` read from storage (all of what exists if `to` is `None`-like).
    async fn fill(&self, conversation: i64, from: i64, to: i64) {
        let Some(room) = self.rooms.get(&conversation) else {
            return;
        };
        let wanted = usize::try_from(to - from + 1).unwrap_or(0).min(10_000);
        let messages = match self
            .store
            .messages_after(conversation, 0, from - 1, wanted)
            .await
        {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "repairing a room gap failed; the next batch retries");
                return;
            }
        };
        let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
            return;
        };
        let (first, last) = (first.seq, last.seq);
        let frame = text_frame(room_batch_json(room, &messages).as_bytes());
        let mut state = self.lock();
        if let Some(order) = state.get_mut(&conversation) {
            order
                .early
                .entry(first)
                .or_insert((last, frame, Instant::now()));
            self.release(conversation, order);
        }
    }

    /// After a bus outage: release whatever storage holds beyond what was released.
    async fn catch_up(self: Arc<Self>) {
        for &conversation in self.rooms.keys() {
            let next = self.lock().get(&conversation).map_or(0, |o| o.next);
            match self.store.last_seq(conversation).await {
                Ok(last) if last >= next => self.fill(conversation, next, last).await,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "room catch-up failed"),
            }
        }
    }
}

/// The `serverMessages` JSON of a batch (what the bus carries).
fn room_batch_json(room: &Room, messages: &[ChatMessage]) -> String {
    let frame = ServerFrame::ServerMessages(ServerMessages {
        room_id: room.slug.clone(),
        messages: messages.iter().map(ChatMessage::to_wire).collect(),
    });
    frame.to_json()
}

/// The node's delivery hub: publisher for the core, handler for the bus.
pub struct Gateway {
    pub rooms: Arc<Fanout>,
    pub registry: Arc<Registry>,
    bus: Arc<dyn Bus>,
    members: Arc<MemberCache>,
    sequencer: std::sync::OnceLock<Arc<RoomSequencer>>,
}

impl Gateway {
    pub fn new(
        rooms: Arc<Fanout>,
        registry: Arc<Registry>,
        bus: Arc<dyn Bus>,
        members: Arc<MemberCache>,
    ) -> Arc<Gateway> {
        Arc::new(Gateway {
            rooms,
            registry,
            bus,
            members,
            sequencer: std::sync::OnceLock::new(),
        })
    }

    pub fn set_sequencer(&self, sequencer: Arc<RoomSequencer>) {
        let _ = self.sequencer.set(sequencer);
    }

    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// Tells the other nodes (there are none on the local bus).
    fn control(&self, message: String) {
        if !self.bus.is_local() {
            self.bus
                .publish(CONTROL_TOPIC.to_owned(), Bytes::from(message));
        }
    }

    /// The user's name or picture changed: their sockets on every node reload the user before
    /// they next post, so room and direct messages carry the new name at once.
    pub fn profile_changed(&self, user: i64) {
        self.registry.profile_changed(user);
        self.control(format!("profile {user}"));
    }

    /// Closes every socket of the user on every node (a password change ends every session).
    pub fn revoke_user(&self, user: i64) {
        self.registry.revoke_user(user);
        self.control(revoke_user_message(user));
    }

    fn on_room(&self, conversation: i64, payload: Bytes) {
        let Some(sequencer) = self.sequencer.get() else {
            return;
        };
        if payload.len() < 16 {
            return;
        }
        let first = i64::from_be_bytes(payload[..8].try_into().unwrap_or([0; 8]));
        let last = i64::from_be_bytes(payload[8..16].try_into().unwrap_or([0; 8]));
        if std::str::from_utf8(&payload[16..]).is_err() {
            return;
        }
        if sequencer.accept(conversation, first, last, text_frame(&payload[16..])) {
            tokio::spawn(sequencer.clone().repair(conversation));
        }
    }
}

impl Deliver for Gateway {
    fn room_messages(&self, room: &Room, messages: &[ChatMessage]) {
        let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
            return;
        };
        let frame = room_batch_json(room, messages);
        let mut payload = BytesMut::with_capacity(16 + frame.len());
        payload.put_i64(first.seq);
        payload.put_i64(last.seq);
        payload.put_slice(frame.as_bytes());
        self.bus
            .publish(room_topic(room.conversation_id), payload.freeze());
    }

    fn all_to_users(&self, users: &[i64], frames: &[ImServerFrame]) {
        if users.is_empty() {
            return;
        }
        if self.bus.is_local() {
            // Joined: each socket gets all of them in one write.
            let mut wire = BytesMut::new();
            for frame in frames {
                put_text_frame(&mut wire, frame.to_json().as_bytes());
            }
            self.registry
                .send(users, &wire.freeze(), frames.len() as u64);
            return;
        }
        // One bus message is one frame.
        for frame in frames {
            let bytes = Bytes::from(frame.to_json());
            for &user in users {
                self.bus.publish(user_topic(user), bytes.clone());
            }
        }
    }

    fn members_changed(&self, conversation: i64) {
        self.members.invalidate(conversation);
        self.control(format!("members {conversation}"));
    }

    fn relation_changed(&self, a: i64, b: i64) {
        self.members.invalidate_pair(a, b);
        self.control(format!("relation {a} {b}"));
    }
}

impl BusHandler for Gateway {
    fn deliver(&self, topic: &str, payload: Bytes) {
        if let Some(user) = topic.strip_prefix("user.").and_then(|u| u.parse().ok()) {
            if std::str::from_utf8(&payload).is_ok() {
                self.registry.send(&[user], &text_frame(&payload), 1);
            }
        } else if let Some(room) = topic.strip_prefix("room.").and_then(|r| r.parse().ok()) {
            self.on_room(room, payload);
        } else if topic == CONTROL_TOPIC {
            let text = String::from_utf8_lossy(&payload);
            if let Some(id) = text.strip_prefix("members ").and_then(|c| c.parse().ok()) {
                self.members.invalidate(id);
            } else if let Some((a, b)) = text
                .strip_prefix("relation ")
                .and_then(|pair| pair.split_once(' '))
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            {
                self.members.invalidate_pair(a, b);
            } else if let Some(user) = text.strip_prefix("profile ").and_then(|u| u.parse().ok()) {
                self.registry.profile_changed(user);
            } else if let Some(user) = text
                .strip_prefix("revoke-user ")
                .and_then(|u| u.parse().ok())
            {
                // A ban or an admin's revocation: every node closes the user's sockets (1008).
                self.registry.revoke_user(user);
            }
        }
    }

    fn reconnected(&self) {
        tracing::info!("bus reconnected: catching up rooms, asking native clients to resync");
        // Invalidations published while this node was away never arrive.
        self.members.clear();
        if let Some(sequencer) = self.sequencer.get() {
            tokio::spawn(sequencer.clone().catch_up());
        }
        self.registry
            .to_native_sockets(&text_frame(br#"{"type":"resync","payload":{}}"#));
    }
}
