import { compareIds, parseId } from "./ids";
import type { HelloPayload, Message, RoomHistoryPayload, ServerMessagesPayload, UserRef } from "./protocol";

/**
 * Merge two message lists into one newest-first list without duplicate ids.
 * Inputs may be in any order. When both contain the same id, the entry from `incoming` wins.
 */
export function mergeMessages(existing: readonly Message[], incoming: readonly Message[]): Message[] {
  const byId = new Map<string, Message>();
  for (const m of existing) byId.set(m.id, m);
  for (const m of incoming) byId.set(m.id, m);
  return [...byId.values()].sort((a, b) => compareIds(b.id, a.id));
}

export interface RoomState {
  id: string;
  name: string;
  /** Newest first, unique ids. */
  messages: Message[];
  /** Whether the server has messages older than messages[messages.length - 1]. */
  hasMoreMessages: boolean;
  /** Messages received while the room was not selected. */
  unread: number;
  /** A requestRoomHistory is in flight. */
  loadingHistory: boolean;
}

/** How many pages of room history opening a room at a message (a search hit) loads at most. */
export const SEEK_MAX_PAGES = 50;

/**
 * Where a room's loaded messages stand with one of its messages, named by its `seq`: the `n`
 * of its id `<ms>-<n>` (a search hit carries it as `message.seq`; its `message.id` is a
 * global id, not the room's). `found` gives the id it has in the room; `older` says to load
 * the next older page; `missing` that it is not in the room (loaded back past it, or to the
 * room's beginning: deleted, say); `tooFar` that `pagesLoaded` reached `maxPages` first.
 */
export type RoomSeek = { kind: "found"; id: string } | { kind: "older" } | { kind: "missing" } | { kind: "tooFar" };

export function seekRoomMessage(
  room: Pick<RoomState, "messages" | "hasMoreMessages">,
  seq: number,
  pagesLoaded: number,
  maxPages = SEEK_MAX_PAGES,
): RoomSeek {
  if (!Number.isSafeInteger(seq) || seq < 0) return { kind: "missing" };
  const want = BigInt(seq);
  let oldest: bigint | null = null;
  for (const m of room.messages) {
    const p = parseId(m.id);
    if (!p) continue;
    if (p.n === want) return { kind: "found", id: m.id };
    if (oldest === null || p.n < oldest) oldest = p.n;
  }
  // The loaded messages have no gap (see applyHello): reaching before it without it means it is gone.
  if (oldest === null || oldest < want || !room.hasMoreMessages) return { kind: "missing" };
  return pagesLoaded >= maxPages ? { kind: "tooFar" } : { kind: "older" };
}

export type StoreEvent =
  | { kind: "rooms" }
  | { kind: "messages"; roomId: string; added: number; prepended: boolean };

/** Client-side state of all rooms; pure logic, no DOM. */
export class ChatStore {
  me: UserRef | null = null;
  private rooms = new Map<string, RoomState>();
  private order: string[] = [];
  selectedRoomId: string | null = null;
  /** Whether the selected room is on screen (false while the chats view is shown instead). */
  roomInView = true;
  /**
   * The newest message seen in each room (kept by the caller across reloads, see onSeen): what
   * came after it counts as unread when the page loads again.
   */
  private seen = new Map<string, string>();
  /** Told whenever a room's seen position moves (to persist it). */
  onSeen: ((seen: Record<string, string>) => void) | null = null;

  /** Seen positions from an earlier visit; ignored once the store has its own. */
  restoreSeen(saved: unknown): void {
    if (this.seen.size > 0 || typeof saved !== "object" || saved === null) return;
    for (const [room, id] of Object.entries(saved as Record<string, unknown>)) {
      if (typeof id === "string" && id.length <= 64 && parseId(id)) this.seen.set(room, id);
    }
  }

  /** The selected room, on screen, has been seen up to its newest message. */
  private markSeen(roomId: string): void {
    const room = this.rooms.get(roomId);
    if (!room) return;
    // An empty room was seen too: everything posted later is new ("0-0" is before any id).
    const newest = room.messages[0]?.id ?? "0-0";
    const had = this.seen.get(roomId);
    if (had !== undefined && compareIds(newest, had) <= 0) return;
    this.seen.set(roomId, newest);
    this.onSeen?.(Object.fromEntries(this.seen));
  }

  roomList(): RoomState[] {
    return this.order.map((id) => this.rooms.get(id)!);
  }

  room(id: string): RoomState | undefined {
    return this.rooms.get(id);
  }

  selectedRoom(): RoomState | undefined {
    return this.selectedRoomId ? this.rooms.get(this.selectedRoomId) : undefined;
  }

  /** Oldest message id of a room, used as firstMessageId for requestRoomHistory. */
  oldestId(roomId: string): string | undefined {
    const r = this.rooms.get(roomId);
    return r && r.messages.length > 0 ? r.messages[r.messages.length - 1].id : undefined;
  }

  select(roomId: string): boolean {
    const r = this.rooms.get(roomId);
    if (!r) return false;
    this.selectedRoomId = roomId;
    r.unread = 0;
    this.markSeen(roomId);
    return true;
  }

  /**
   * Apply a hello frame (first connect or reconnect). The room list is replaced by the server's;
   * messages of rooms we already knew are merged without duplicates. If the new page of messages
   * does not overlap what we had (we missed messages while disconnected), the old messages are
   * dropped so that the list has no gap; history paging fetches them again.
   */
  applyHello(hello: HelloPayload): void {
    this.me = hello.me;
    const next = new Map<string, RoomState>();
    const order: string[] = [];
    let baselines = false;
    for (const info of hello.rooms) {
      if (next.has(info.id)) continue;
      const prev = this.rooms.get(info.id);
      const incoming = mergeMessages([], info.messages);
      let messages: Message[];
      let hasMore: boolean;
      let unread = 0;
      if (prev && prev.messages.length > 0) {
        const prevNewest = prev.messages[0].id;
        const incomingOldest = incoming.length > 0 ? incoming[incoming.length - 1].id : undefined;
        const overlaps =
          incomingOldest === undefined ||
          !info.hasMoreMessages ||
          compareIds(incomingOldest, prevNewest) <= 0;
        if (overlaps) {
          messages = mergeMessages(prev.messages, incoming);
          // Our older tail is still valid; its hasMore flag describes what lies beyond it.
          const prevOldest = prev.messages[prev.messages.length - 1].id;
          hasMore =
            incomingOldest !== undefined && compareIds(incomingOldest, prevOldest) < 0
              ? info.hasMoreMessages
              : prev.hasMoreMessages;
        } else {
          messages = incoming;
          hasMore = info.hasMoreMessages;
        }
        const newCount = incoming.filter(
          (m) => compareIds(m.id, prevNewest) > 0 && m.user.id !== hello.me.id,
        ).length;
        unread = info.id === this.selectedRoomId ? 0 : prev.unread + newCount;
      } else {
        messages = incoming;
        hasMore = info.hasMoreMessages;
        // After a reload: what others posted since the last visit (within this page).
        const seen = this.seen.get(info.id);
        const since = seen === undefined ? 0 : incoming.filter((m) => compareIds(m.id, seen) > 0 && m.user.id !== hello.me.id).length;
        if (seen === undefined) {
          // First met: what is there now is not new, and what comes later is, even if the
          // room is never opened before the next reload.
          this.seen.set(info.id, incoming[0]?.id ?? "0-0");
          baselines = true;
        }
        unread = prev ? prev.unread : info.id === this.selectedRoomId ? 0 : since;
      }
      next.set(info.id, {
        id: info.id,
        name: info.name,
        messages,
        hasMoreMessages: hasMore,
        unread,
        loadingHistory: false,
      });
      order.push(info.id);
    }
    this.rooms = next;
    this.order = order;
    if (baselines) this.onSeen?.(Object.fromEntries(this.seen));
    if (this.selectedRoomId && !next.has(this.selectedRoomId)) this.selectedRoomId = null;
    if (this.selectedRoomId && this.roomInView) this.markSeen(this.selectedRoomId);
  }

  /** Apply a serverMessages broadcast. Returns the number of messages that were new. */
  applyServerMessages(p: ServerMessagesPayload): number {
    const r = this.rooms.get(p.roomId);
    if (!r) return 0;
    const known = new Set(r.messages.map((m) => m.id));
    const fresh = p.messages.filter((m) => !known.has(m.id));
    if (fresh.length === 0) return 0;
    r.messages = mergeMessages(r.messages, fresh);
    if (p.roomId !== this.selectedRoomId || !this.roomInView) {
      r.unread += fresh.filter((m) => !this.me || m.user.id !== this.me.id).length;
    } else this.markSeen(p.roomId);
    return fresh.length;
  }

  /** Apply a roomHistory reply. Returns the number of messages that were new. */
  applyHistory(p: RoomHistoryPayload): number {
    const r = this.rooms.get(p.roomId);
    if (!r) return 0;
    r.loadingHistory = false;
    const known = new Set(r.messages.map((m) => m.id));
    const fresh = p.messages.filter((m) => !known.has(m.id));
    const oldestBefore = this.oldestId(p.roomId);
    r.messages = mergeMessages(r.messages, fresh);
    // hasMoreMessages describes what lies beyond the oldest message we now have. Only trust it if
    // the reply actually extended our list backwards (or we had nothing).
    const oldestAfter = this.oldestId(p.roomId);
    if (oldestBefore === undefined || (oldestAfter !== undefined && compareIds(oldestAfter, oldestBefore) < 0)) {
      r.hasMoreMessages = p.hasMoreMessages;
    } else if (p.messages.length === 0) {
      r.hasMoreMessages = p.hasMoreMessages;
    }
    return fresh.length;
  }

  /**
   * Decide whether a history request should be sent for a room; marks it in flight.
   * Returns the firstMessageId to send, or null.
   */
  beginHistoryRequest(roomId: string): string | null {
    const r = this.rooms.get(roomId);
    if (!r || r.loadingHistory || !r.hasMoreMessages) return null;
    const oldest = this.oldestId(roomId);
    if (!oldest) return null;
    r.loadingHistory = true;
    return oldest;
  }

  /** Forget in-flight history requests (e.g. when the socket dropped). */
  cancelHistoryRequests(): void {
    for (const r of this.rooms.values()) r.loadingHistory = false;
  }

  clear(): void {
    this.me = null;
    this.rooms.clear();
    this.order = [];
    this.selectedRoomId = null;
    this.seen.clear();
  }
}

/** A room message to open a room at (a search hit): its `seq`, the `n` of its room id `<ms>-<n>`. */
export interface RoomTarget {
  seq: number;
}
