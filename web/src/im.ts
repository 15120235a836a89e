/**
 * Native instant-messaging: wire types and pure client-side logic (no DOM, no I/O).
 *
 *  - ConversationLog: one conversation's messages by seq; tracks the highest contiguous seq,
 *    detects gaps, drops duplicates, applies recalled/edited/transcribed system messages.
 *  - PendingSends: outgoing messages keyed by clientMsgId until acknowledged.
 *  - systemText: human text of a system message.
 */
import { asFileRef, type AttachmentKind, type FileRef } from "./files";
import type { UserRef } from "./protocol";
import { policy } from "./policy";

export type MessageKind = "text" | "image" | "file" | "voice" | "system";
export type ConversationKind = "room" | "direct" | "group";
export type Role = "member" | "admin" | "owner";

export interface ImMessage {
  id: string;
  conversationId: number;
  seq: number;
  sender: UserRef;
  kind: MessageKind;
  content: string;
  replyTo?: number;
  clientMsgId?: string;
  timestamp: number;
  editedAt?: number;
  recalled?: boolean;
  hidden?: boolean;
  /** The upload of an image, file or voice message (`content` is then its caption). */
  file?: FileRef;
  /** A voice message's transcript, once the server has made one. */
  transcript?: string;
}

export interface Ack {
  clientMsgId: string;
  conversationId: number;
  id: string;
  seq: number;
  timestamp: number;
}

export interface ConversationState {
  id: number;
  kind: ConversationKind;
  name: string;
  peer?: UserRef;
  role?: Role;
  lastSeq: number;
  joinedSeq: number;
  readSeq: number;
  unread: number;
  lastActivity: number;
}

export interface InboxEvent {
  seq: number;
  kind: string;
  payload: Record<string, unknown>;
  timestamp: number;
}

export interface SyncState {
  conversations: ConversationState[];
  inbox: InboxEvent[];
  inboxSeq: number;
}

export interface Receipt {
  conversationId: number;
  userId: number;
  seq: number;
}

export interface Typing {
  conversationId: number;
  userId: number;
}

export interface Presence {
  userId: number;
  online: boolean;
  lastSeen?: number;
  platforms: string[];
}

export interface Member {
  user: UserRef;
  role: Role;
  readSeq: number;
  /** Up to where one of the member's devices has received (≥ readSeq; older servers omit it). */
  deliveredSeq?: number;
}

/** A friend (or this user, elsewhere) changed their name or picture. */
export interface Profile {
  userId: number;
  username: string;
  /** The picture's version (its file id), or null for the generated one. */
  avatar: string | null;
}

export type ImServerFrame =
  | { type: "message"; payload: ImMessage }
  | { type: "ack"; payload: Ack }
  | { type: "syncState"; payload: SyncState }
  | { type: "event"; payload: InboxEvent }
  | { type: "receipt"; payload: Receipt }
  | { type: "delivery"; payload: Receipt }
  | { type: "typing"; payload: Typing }
  | { type: "presence"; payload: Presence }
  | { type: "profile"; payload: Profile };

export type ImClientFrame =
  | {
      type: "send";
      payload: { conversationId: number; clientMsgId: string; content: string; kind?: "text" | AttachmentKind; replyTo?: number; fileId?: string };
    }
  | { type: "read"; payload: { conversationId: number; seq: number } }
  | { type: "delivered"; payload: { conversationId: number; seq: number } }
  | { type: "typing"; payload: { conversationId: number } }
  | { type: "sync"; payload: { inboxAfter: number } };

// ------------------------------------------------------------------ validation

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
export const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
export const isStr = (v: unknown): v is string => typeof v === "string";
function isUserRef(v: unknown): v is UserRef {
  return isObj(v) && isNum(v.id) && isStr(v.username);
}

export function isImMessage(v: unknown): v is ImMessage {
  return (
    isObj(v) &&
    isStr(v.id) &&
    isNum(v.conversationId) &&
    isNum(v.seq) &&
    isUserRef(v.sender) &&
    isStr(v.kind) &&
    isStr(v.content) &&
    isNum(v.timestamp)
  );
}

/** Drops a malformed `file`, `transcript` or `replyTo` (the rest was validated by isImMessage). */
export function normalizeMessage(m: ImMessage): ImMessage {
  const raw = m as unknown as Record<string, unknown>;
  const hasFile = raw.file !== undefined;
  const hasTranscript = raw.transcript !== undefined;
  const hasReply = raw.replyTo !== undefined;
  if (!hasFile && !hasTranscript && !hasReply) return m;
  const out: ImMessage = { ...m };
  const file = hasFile ? asFileRef(raw.file) : null;
  if (file) out.file = file;
  else delete out.file;
  if (!isStr(raw.transcript)) delete out.transcript;
  if (!isNum(raw.replyTo)) delete out.replyTo;
  return out;
}

function isConversationState(v: unknown): v is ConversationState {
  return isObj(v) && isNum(v.id) && isStr(v.kind) && isStr(v.name) && isNum(v.lastSeq) && isNum(v.readSeq) && isNum(v.unread);
}

function isInboxEvent(v: unknown): v is InboxEvent {
  return isObj(v) && isNum(v.seq) && isStr(v.kind) && isNum(v.timestamp);
}

/** Validate the payload of a native server frame; null if malformed or not a native type. */
export function parseImFrame(type: string, p: Record<string, unknown>): ImServerFrame | null {
  switch (type) {
    case "message":
      return isImMessage(p) ? { type, payload: normalizeMessage(p) } : null;
    case "ack":
      return isStr(p.clientMsgId) && isNum(p.conversationId) && isStr(p.id) && isNum(p.seq) && isNum(p.timestamp)
        ? { type, payload: p as unknown as Ack }
        : null;
    case "syncState": {
      if (!Array.isArray(p.conversations) || !Array.isArray(p.inbox) || !isNum(p.inboxSeq)) return null;
      if (!p.conversations.every(isConversationState) || !p.inbox.every(isInboxEvent)) return null;
      const conversations = (p.conversations as ConversationState[]).map((c) => ({
        ...c,
        joinedSeq: isNum(c.joinedSeq) ? c.joinedSeq : 0,
        lastActivity: isNum(c.lastActivity) ? c.lastActivity : 0,
      }));
      const inbox = (p.inbox as InboxEvent[]).map((e) => ({ ...e, payload: isObj(e.payload) ? e.payload : {} }));
      return { type, payload: { conversations, inbox, inboxSeq: p.inboxSeq } };
    }
    case "event":
      return isInboxEvent(p) ? { type, payload: { ...p, payload: isObj(p.payload) ? p.payload : {} } as InboxEvent } : null;
    case "receipt":
    case "delivery":
      return isNum(p.conversationId) && isNum(p.userId) && isNum(p.seq) ? { type, payload: { conversationId: p.conversationId, userId: p.userId, seq: p.seq } } : null;
    case "profile":
      return isNum(p.userId) && isStr(p.username) ? { type, payload: { userId: p.userId, username: p.username, avatar: isStr(p.avatar) ? p.avatar : null } } : null;
    case "typing":
      return isNum(p.conversationId) && isNum(p.userId) ? { type, payload: p as unknown as Typing } : null;
    case "presence":
      return isNum(p.userId) && typeof p.online === "boolean"
        ? {
            type,
            payload: {
              userId: p.userId,
              online: p.online,
              lastSeen: isNum(p.lastSeen) ? p.lastSeen : undefined,
              platforms: Array.isArray(p.platforms) ? p.platforms.filter(isStr) : [],
            },
          }
        : null;
    default:
      return null;
  }
}

// ------------------------------------------------------------------ system messages

export interface SystemBody {
  event: string;
  [k: string]: unknown;
}

export function parseSystem(content: string): SystemBody | null {
  try {
    const v: unknown = JSON.parse(content);
    return isObj(v) && isStr(v.event) ? (v as SystemBody) : null;
  } catch {
    return null;
  }
}

/** Events that change another message, which shows the change in place. */
const IN_PLACE_EVENTS = ["transcribed", "recalled", "edited"];

/**
 * System messages that only update another message and are not shown as a line of their own
 * (a voice message's transcript arriving; a recall or an edit, which the message itself shows
 * as "… recalled a message" or "(edited)").
 */
export function isSilentSystem(m: Pick<ImMessage, "kind" | "content">): boolean {
  if (m.kind !== "system") return false;
  const event = parseSystem(m.content)?.event;
  return event !== undefined && IN_PLACE_EVENTS.includes(event);
}

/** Names of users by id, for system messages; unknown ids show as "user #id". */
export type NameLookup = (id: number) => string | undefined;

function nameOf(id: unknown, names: NameLookup, me?: number): string {
  if (isUserRef(id)) return id.id === me ? "you" : id.username;
  if (!isNum(id)) return "someone";
  if (id === me) return "you";
  return names(id) ?? `user #${id}`;
}

function list(ids: unknown, names: NameLookup, me?: number): string {
  if (!Array.isArray(ids) || ids.length === 0) return "nobody";
  return ids.map((i) => nameOf(i, names, me)).join(", ");
}

/**
 * The grey line shown for a system message. `sender` is the message's sender (the actor);
 * `me` is the current user's id (shown as "you").
 */
export function systemText(content: string, sender: UserRef, names: NameLookup, me?: number): string {
  const b = parseSystem(content);
  if (!b) return "System message";
  const actor = isNum(b.by) || isUserRef(b.by) ? nameOf(b.by, names, me) : nameOf(sender, names, me);
  // Only "you" starts a sentence with a capital: usernames are shown as they were registered.
  const cap = (s: string) => (s.startsWith("you ") ? `You${s.slice(3)}` : s);
  switch (b.event) {
    case "created": {
      const name = isStr(b.name) ? ` "${b.name}"` : "";
      const members = Array.isArray(b.members) && b.members.length > 0 ? ` with ${list(b.members, names, me)}` : "";
      return cap(`${actor} created the group${name}${members}`);
    }
    case "joined": {
      const who = list(b.userIds, names, me);
      const byOther = isNum(b.by) && Array.isArray(b.userIds) && !(b.userIds.length === 1 && b.userIds[0] === b.by);
      return cap(byOther ? `${actor} added ${who}` : `${who} joined`);
    }
    case "left":
      return cap(`${nameOf(b.userId ?? sender, names, me)} left the group`);
    case "kicked":
      return cap(`${actor} removed ${nameOf(b.userId, names, me)}`);
    case "role_changed": {
      const role = isStr(b.role) ? b.role : "member";
      return cap(`${actor} made ${nameOf(b.userId, names, me)} ${role === "admin" ? "an admin" : `a ${role}`}`);
    }
    case "owner_changed":
      return cap(`${actor} transferred ownership to ${nameOf(b.userId, names, me)}`);
    case "dissolved":
      return cap(`${actor} dissolved the group`);
    case "renamed":
      return cap(`${actor} renamed the group${isStr(b.name) ? ` to "${b.name}"` : ""}`);
    case "recalled":
      return cap(`${actor} recalled a message`);
    case "edited":
      return cap(`${actor} edited a message`);
    case "transcribed":
      return "A voice message was transcribed";
    default:
      return cap(`${actor}: ${b.event}`);
  }
}

// ------------------------------------------------------------------ unread

/** Unread messages are counted one by one among this many newest after the read position. */
export const UNREAD_COUNTED = 100;

/**
 * Unread messages after `seen` counted as the server counts them: other members' messages,
 * not recalled ones, not system messages (edits, recalls, transcripts, joins), one by one among
 * the newest UNREAD_COUNTED, every older one as one. `null` when the log lacks some of them.
 */
export function countUnread(log: ConversationLog, seen: number, lastSeq: number, me: number | undefined): number | null {
  if (log.base > seen || log.known < lastSeq) return null;
  const from = Math.max(seen, lastSeq - UNREAD_COUNTED);
  let n = Math.max(0, lastSeq - seen - UNREAD_COUNTED);
  for (const m of log.messages()) {
    if (m.seq > from && m.seq <= lastSeq && m.kind !== "system" && !m.recalled && !m.hidden && m.sender.id !== me) n++;
  }
  return n;
}

// ------------------------------------------------------------------ conversation log

export interface MessageChange {
  /** A message was stored that was not there before. */
  added: boolean;
  /** The seq was beyond known+1: the caller should pull from `known`. */
  gap: boolean;
}

/**
 * The messages of one conversation, keyed by seq. `base` is the seq the log starts after (the
 * user's joinedSeq, or where the first pull started); `known` is the highest seq such that every
 * message in (base, known] is present.
 */
export class ConversationLog {
  private bySeq = new Map<number, ImMessage>();
  private sorted: ImMessage[] | null = [];
  known: number;

  /** The seq the log starts after; lowered by [`extendBack`]. */
  base: number;

  constructor(base: number = 0) {
    this.base = base;
    this.known = base;
  }

  /**
   * Extends the log back to start after `base`, with `older`: the messages in (base, this.base]
   * (a pull from `base`). If some are missing the log starts after the newest missing one, so
   * every message after `base` stays present.
   */
  extendBack(base: number, older: readonly ImMessage[]): void {
    const from = this.base;
    if (base >= from) return;
    const bySeq = new Map(older.filter((m) => m.seq > base && m.seq <= from).map((m) => [m.seq, m]));
    let start = from;
    while (start > base && bySeq.has(start)) start--;
    for (const [seq, m] of bySeq) if (seq > start && !this.bySeq.has(seq)) this.bySeq.set(seq, m);
    this.base = start;
    this.sorted = null;
    this.reapplySystem();
  }

  get size(): number {
    return this.bySeq.size;
  }

  get(seq: number): ImMessage | undefined {
    return this.bySeq.get(seq);
  }

  /** Oldest first. */
  messages(): ImMessage[] {
    if (!this.sorted) this.sorted = [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
    return this.sorted;
  }

  /** Highest seq present (not necessarily contiguous). */
  get highest(): number {
    const ms = this.messages();
    return ms.length > 0 ? Math.max(ms[ms.length - 1].seq, this.known) : this.known;
  }

  last(): ImMessage | undefined {
    const ms = this.messages();
    return ms[ms.length - 1];
  }

  /**
   * Add one message. Duplicates (same seq) are dropped, except that a newer version of the same
   * message (recalled/edited/hidden flags from a pull) replaces the old one.
   */
  add(m: ImMessage): MessageChange {
    if (m.seq <= this.base) return { added: false, gap: false };
    const had = this.bySeq.get(m.seq);
    if (had) {
      if (
        had.content !== m.content ||
        !!had.recalled !== !!m.recalled ||
        !!had.hidden !== !!m.hidden ||
        had.editedAt !== m.editedAt ||
        (!had.file && !!m.file) ||
        (m.transcript !== undefined && had.transcript !== m.transcript)
      ) {
        const recalled = had.recalled || m.recalled;
        const merged: ImMessage = { ...m, recalled };
        // What we learned from elsewhere (the upload, a `transcribed` event) stays unless the
        // message is gone.
        if (!merged.file && had.file && !recalled && !merged.hidden) merged.file = had.file;
        if (merged.transcript === undefined && had.transcript !== undefined && !recalled) merged.transcript = had.transcript;
        if (recalled) {
          delete merged.file;
          delete merged.transcript;
        }
        this.bySeq.set(m.seq, merged);
        this.sorted = null;
      }
      return { added: false, gap: false };
    }
    const gap = m.seq > this.known + 1;
    this.bySeq.set(m.seq, m);
    this.sorted = null;
    this.advance();
    if (m.kind === "system") this.applySystem(m);
    return { added: true, gap };
  }

  /** Add many (e.g. a pull page); returns how many were new. */
  addAll(ms: readonly ImMessage[]): number {
    let n = 0;
    for (const m of [...ms].sort((a, b) => a.seq - b.seq)) if (this.add(m).added) n++;
    return n;
  }

  /** Whether the server has messages we lack, given its lastSeq. */
  missing(lastSeq: number): boolean {
    return lastSeq > this.known;
  }

  private advance(): void {
    while (this.bySeq.has(this.known + 1)) this.known++;
  }

  /** Apply a recalled/edited/transcribed system message to the message it refers to. */
  private applySystem(m: ImMessage): void {
    const b = parseSystem(m.content);
    if (!b || !isNum(b.seq)) return;
    const target = this.bySeq.get(b.seq);
    if (!target) return;
    if (b.event === "recalled") {
      if (target.recalled && target.content === "" && !target.file && target.transcript === undefined) return;
      const t: ImMessage = { ...target, recalled: true, content: "" };
      delete t.file;
      delete t.transcript;
      this.bySeq.set(b.seq, t);
      this.sorted = null;
    } else if (b.event === "edited" && isStr(b.content) && !target.recalled && !target.hidden) {
      this.bySeq.set(b.seq, { ...target, content: b.content, editedAt: m.timestamp });
      this.sorted = null;
    } else if (b.event === "transcribed" && isStr(b.text) && !target.recalled && !target.hidden && target.transcript !== b.text) {
      this.bySeq.set(b.seq, { ...target, transcript: b.text });
      this.sorted = null;
    }
  }

  /** After a late-arriving target: re-apply every recall/edit (cheap for our sizes). */
  reapplySystem(): void {
    for (const m of this.messages()) if (m.kind === "system") this.applySystem(m);
  }

  hide(seq: number): void {
    const t = this.bySeq.get(seq);
    if (t && !t.hidden) {
      const h: ImMessage = { ...t, hidden: true, content: "" };
      delete h.file;
      delete h.transcript;
      this.bySeq.set(seq, h);
      this.sorted = null;
    }
  }
}

// ------------------------------------------------------------------ pending sends

export type PendingState = "sending" | "failed";

/** What a message with a file sends besides its caption. */
export interface PendingAttachment {
  kind: AttachmentKind;
  file: FileRef;
}

export interface PendingSend {
  clientMsgId: string;
  conversationId: number;
  content: string;
  /** Set for image, file and voice messages (the upload is done; only the send is pending). */
  attachment?: PendingAttachment;
  createdAt: number;
  /** Last time it was written to the socket (0 = never). */
  sentAt: number;
  state: PendingState;
  error?: string;
  /** The refusal's code (`error` frame), when it failed. */
  code?: string;
  /** Set once acked: the seq the server gave it. */
  seq?: number;
  /** The seq of the message this one answers. */
  replyTo?: number;
}

let counter = 0;
/** A clientMsgId: 1–64 printable ASCII characters, unique per device. */
export function newClientMsgId(now: number = Date.now(), rand: () => number = Math.random): string {
  counter = (counter + 1) % 1_000_000;
  return `web-${now.toString(36)}-${counter.toString(36)}-${Math.floor(rand() * 2 ** 32).toString(36)}`;
}

/** Outgoing messages until the server acks them, keyed by clientMsgId. */
export class PendingSends {
  private items = new Map<string, PendingSend>();

  add(
    conversationId: number,
    content: string,
    clientMsgId: string = newClientMsgId(),
    now = Date.now(),
    attachment?: PendingAttachment,
    replyTo?: number,
  ): PendingSend {
    const p: PendingSend = { clientMsgId, conversationId, content, createdAt: now, sentAt: 0, state: "sending" };
    if (attachment) p.attachment = attachment;
    if (replyTo !== undefined) p.replyTo = replyTo;
    this.items.set(clientMsgId, p);
    return p;
  }

  get(clientMsgId: string): PendingSend | undefined {
    return this.items.get(clientMsgId);
  }

  /** Pending (not yet acked) sends of a conversation, oldest first. */
  forConversation(conversationId: number): PendingSend[] {
    return [...this.items.values()].filter((p) => p.conversationId === conversationId).sort((a, b) => a.createdAt - b.createdAt);
  }

  all(): PendingSend[] {
    return [...this.items.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  /** The sends to (re)write to the socket: every "sending" one not written within `timeoutMs`. */
  due(now: number, timeoutMs: number): PendingSend[] {
    return this.all().filter((p) => p.state === "sending" && (p.sentAt === 0 || now - p.sentAt >= timeoutMs));
  }

  markSent(clientMsgId: string, now: number): void {
    const p = this.items.get(clientMsgId);
    if (p) p.sentAt = now;
  }

  /** On reconnect every unacked send is due again (with the same clientMsgId). */
  resetSent(): void {
    for (const p of this.items.values()) if (p.state === "sending") p.sentAt = 0;
  }

  /** The server acked it: it is stored. Returns the pending entry, removed. */
  ack(clientMsgId: string): PendingSend | undefined {
    const p = this.items.get(clientMsgId);
    this.items.delete(clientMsgId);
    return p;
  }

  fail(clientMsgId: string, error: string, code?: string): PendingSend | undefined {
    const p = this.items.get(clientMsgId);
    if (p) {
      p.state = "failed";
      p.error = error;
      p.code = code;
    }
    return p;
  }

  /**
   * An image message refused because its upload is not an image (`not_an_image`): send the
   * same upload as a file instead, in the same place, under a new clientMsgId (it is another
   * message). Returns the new send.
   */
  asFile(clientMsgId: string, newId: string = newClientMsgId()): PendingSend | undefined {
    const p = this.items.get(clientMsgId);
    if (!p?.attachment) return undefined;
    this.items.delete(clientMsgId);
    const q: PendingSend = { ...p, clientMsgId: newId, attachment: { ...p.attachment, kind: "file" }, state: "sending", sentAt: 0 };
    delete q.error;
    delete q.code;
    this.items.set(newId, q);
    return q;
  }

  /** User pressed retry: send again with the same clientMsgId. */
  retry(clientMsgId: string): PendingSend | undefined {
    const p = this.items.get(clientMsgId);
    if (p) {
      p.state = "sending";
      p.error = undefined;
      p.code = undefined;
      p.sentAt = 0;
    }
    return p;
  }

  remove(clientMsgId: string): void {
    this.items.delete(clientMsgId);
  }

  /** For persistence (localStorage). */
  toJSON(): PendingSend[] {
    return this.all();
  }

  static fromJSON(v: unknown): PendingSends {
    const s = new PendingSends();
    if (Array.isArray(v)) {
      for (const p of v) {
        if (isObj(p) && isStr(p.clientMsgId) && isNum(p.conversationId) && isStr(p.content)) {
          const a = isObj(p.attachment) ? p.attachment : null;
          const file = a ? asFileRef(a.file) : null;
          const kind = a && (a.kind === "image" || a.kind === "file" || a.kind === "voice") ? a.kind : null;
          s.items.set(p.clientMsgId, {
            ...(file && kind ? { attachment: { kind, file } } : {}),
            ...(isNum(p.replyTo) ? { replyTo: p.replyTo } : {}),
            clientMsgId: p.clientMsgId,
            conversationId: p.conversationId,
            content: p.content,
            createdAt: isNum(p.createdAt) ? p.createdAt : Date.now(),
            sentAt: 0,
            state: p.state === "failed" ? "failed" : "sending",
            error: isStr(p.error) ? p.error : undefined,
            ...(isStr(p.code) ? { code: p.code } : {}),
          });
        }
      }
    }
    return s;
  }
}

/**
 * Refusals of a send that the same send can never overcome (its content, kind, file or id is
 * what is wrong): no Retry for those. Everything else (rate limits, a backend down, not being
 * friends or a member any more, which may change) can be retried.
 */
const FINAL_SEND_ERRORS = new Set([
  "not_an_image",
  "file_required",
  "unexpected_file",
  "file_forbidden",
  "content_too_long",
  "empty_content",
  "bad_content",
  "bad_kind",
  "bad_reply_to",
  "bad_client_msg_id",
  "client_msg_id_reused",
  "bad_request",
  "bad_payload",
]);

/** Whether resending a refused message (same clientMsgId) can succeed. */
export function sendRetryable(code: string | undefined): boolean {
  return code === undefined || !FINAL_SEND_ERRORS.has(code);
}

/** The `send` frame of a pending message (same clientMsgId on every retry). */
export function sendFrame(p: PendingSend): Extract<ImClientFrame, { type: "send" }> {
  const payload: Extract<ImClientFrame, { type: "send" }>["payload"] = { conversationId: p.conversationId, clientMsgId: p.clientMsgId, content: p.content };
  if (p.attachment) {
    payload.kind = p.attachment.kind;
    payload.fileId = p.attachment.file.id;
  }
  if (p.replyTo !== undefined) payload.replyTo = p.replyTo;
  return { type: "send", payload };
}

/** The message an ack stands for: what we sent, with the seq and time the server gave it. */
export function ackedMessage(p: PendingSend, ack: Ack, me: UserRef): ImMessage {
  const m: ImMessage = {
    id: ack.id,
    conversationId: ack.conversationId,
    seq: ack.seq,
    sender: me,
    kind: p.attachment?.kind ?? "text",
    content: p.content,
    clientMsgId: p.clientMsgId,
    timestamp: ack.timestamp,
  };
  if (p.attachment) m.file = p.attachment.file;
  if (p.replyTo !== undefined) m.replyTo = p.replyTo;
  return m;
}

/** Longest quote of a replied-to message, in characters. */
export const QUOTE_MAX = 80;

/** What a reply shows of the message it answers (undefined: not loaded here). */
export function quoteText(m: ImMessage | undefined): string {
  if (!m) return "an earlier message";
  if (m.recalled) return "a recalled message";
  const what = m.kind === "image" ? "Photo" : m.kind === "voice" ? "Voice message" : m.kind === "file" ? `File: ${m.file?.name ?? "attachment"}` : "";
  const text = m.content.replace(/\s+/g, " ").trim();
  const full = what && text ? `${what} · ${text}` : what || text;
  const chars = [...full];
  return chars.length > QUOTE_MAX ? chars.slice(0, QUOTE_MAX - 1).join("") + "…" : full;
}

// ------------------------------------------------------------------ misc helpers

/** How long after sending a message its sender may recall it (the server's `im.recall_window_secs`). */
export function recallWindowMs(): number {
  return policy().recallWindowSecs * 1000;
}
/** Recall is no longer offered this long before the server's window ends (the click has to get there). */
export const RECALL_MARGIN_MS = 3_000;

/**
 * How far the server's clock is ahead of ours (ms), learnt from the times it stamps on our
 * messages as their acks arrive. Message timestamps are the server's: compare them with
 * `now()`, not `Date.now()`.
 */
export class ServerClock {
  offset = 0;
  private observed = false;

  /**
   * An ack stamped `serverTime` arrived at `localTime`. An ack arrives after its stamp, so
   * each sample is at most the true offset: the largest is the closest. (An old ack, given
   * again for a retried send, would otherwise set the clock minutes back.)
   */
  observe(serverTime: number, localTime: number = Date.now()): void {
    if (!Number.isFinite(serverTime) || !Number.isFinite(localTime)) return;
    const sample = serverTime - localTime;
    this.offset = this.observed ? Math.max(this.offset, sample) : sample;
    this.observed = true;
  }

  now(local: number = Date.now()): number {
    return local + this.offset;
  }
}

/** Whether Recall is still offered (by our own clock `now`) for a message stamped `timestamp` by the server. */
export function canRecall(timestamp: number, now: number, offset: number): boolean {
  return now < recallDeadline(timestamp, offset);
}

/** When (our clock) Recall stops being offered for a message stamped `timestamp` (the server's clock). */
export function recallDeadline(timestamp: number, offset: number): number {
  return timestamp + recallWindowMs() - RECALL_MARGIN_MS - offset;
}

/**
 * The next moment (our clock) after `now` at which one of `me`'s messages stops offering Recall,
 * or null: the view is redrawn then, so that the button goes when the window does.
 */
export function nextRecallExpiry(messages: Iterable<Pick<ImMessage, "sender" | "timestamp" | "recalled" | "kind">>, me: number | undefined, now: number, offset: number): number | null {
  let next: number | null = null;
  for (const m of messages) {
    if (m.sender.id !== me || m.recalled || m.kind === "system") continue;
    const at = recallDeadline(m.timestamp, offset);
    if (at > now && (next === null || at < next)) next = at;
  }
  return next;
}
export const TYPING_SEND_INTERVAL_MS = 3_000;
export const TYPING_SHOW_MS = 5_000;

/**
 * What to tell the user when an inbox event takes a group away from them (null for other
 * events, and for a group they dissolved themselves).
 */
export function goneText(kind: string, payload: Record<string, unknown>, me?: number): string | null {
  const name = isStr(payload.name) ? `"${payload.name}"` : "a group";
  const by = isUserRef(payload.by) ? payload.by : null;
  if (kind === "group_removed") return by ? `${by.username} removed you from ${name}` : `You were removed from ${name}`;
  if (kind === "group_dissolved" && by?.id !== me) return by ? `${by.username} dissolved ${name}` : `${name} was dissolved`;
  return null;
}

/** What to tell the user of a friend request's progress (null for other events). */
export function friendNotice(kind: string, payload: Record<string, unknown>): string | null {
  const from = isUserRef(payload.from) ? payload.from.username : null;
  const by = isUserRef(payload.by) ? payload.by.username : null;
  if (kind === "friend_request" && from) return `${from} sent you a friend request`;
  if (kind === "friend_accepted" && by) return `${by} accepted your friend request`;
  if (kind === "friend_rejected" && by) return `${by} declined your friend request`;
  return null;
}

/** Inbox event kinds after which friend lists / conversation lists should be re-fetched. */
export function eventAffects(kind: string): { friends: boolean; conversations: boolean } {
  const friends = kind.startsWith("friend_") || kind === "user_blocked";
  const conversations =
    kind.startsWith("group_") || kind.startsWith("join_") || kind === "friend_removed" || kind === "user_blocked" || kind === "friend_accepted" || kind === "friend_added";
  return { friends, conversations };
}

/** How many members other than the sender have reached `seq` (read it, or received it). */
export function readByCount(positions: ReadonlyMap<number, number>, seq: number, sender: number): number {
  let n = 0;
  for (const [user, at] of positions) if (user !== sender && at >= seq) n++;
  return n;
}

/** What the sender is shown under their message `seq`: the furthest any other member got. */
export function receiptText(kind: "direct" | "group", seq: number, sender: number, read: ReadonlyMap<number, number>, delivered: ReadonlyMap<number, number>): string {
  if (kind === "group") return receiptSummary(receiptDetail(seq, sender, read, delivered, { nameOf: () => undefined }));
  const readers = readByCount(read, seq, sender);
  const receivers = Math.max(readers, readByCount(delivered, seq, sender));
  return readers > 0 ? "Read" : receivers > 0 ? "Delivered" : "Sent";
}

/**
 * The largest group whose members' "delivered" reports the server keeps (its
 * `im.delivery_receipts_max_members`; direct conversations always). In a bigger group only
 * reads are known.
 */
export function deliveryReceiptsMaxMembers(): number {
  return policy().deliveryReceiptsMaxMembers;
}

/** Who got how far with one of the sender's group messages (names, sorted). */
export interface ReceiptDetail {
  /** Read it. */
  read: string[];
  /** Received it but have not read it (empty where delivery reports are not kept). */
  delivered: string[];
  /**
   * Current members known to have neither read nor received it; null when that is not known
   * (no member list, or a group too big for delivery reports).
   */
  notYet: string[] | null;
}

export interface ReceiptDetailOptions {
  /** A user's name (undefined: unknown, shown as "user #id"). */
  nameOf: NameLookup;
  /** The group's current members (ids), if known. */
  members?: readonly number[] | null;
  /** Whether the server keeps delivery reports in this group (see deliveryReceiptsMaxMembers). */
  deliveryKept?: boolean;
  /**
   * Each user's latest join of the group (userId -> seq of the "joined" system message, see
   * [`lastJoins`]). Someone who joined after the message never saw it, though their position
   * (which starts where they joined) is past it: they are left out of every list.
   */
  joinedAt?: ReadonlyMap<number, number>;
}

const nameCollator = new Intl.Collator(undefined, { sensitivity: "base", numeric: true });

function sortedNames(ids: Iterable<number>, nameOf: NameLookup): string[] {
  return [...ids]
    .map((id) => ({ id, name: nameOf(id) ?? `user #${id}` }))
    // Alphabetical regardless of case; then exactly, then by id, so that the order is stable.
    .sort((a, b) => nameCollator.compare(a.name, b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) || a.id - b.id)
    .map((x) => x.name);
}

/**
 * Who read, who only received, and (where it can be told) who has neither of the message `seq`
 * sent by `sender`, from the members' read and delivered positions (userId -> seq). The sender
 * is never listed. It says nothing it does not know: a member whose position is not known (no
 * entry in either map) is not listed as "not yet"; where delivery reports are not kept only
 * the readers are named; and someone who joined after the message is left out.
 * (Positions the server hides, across a block in a direct conversation, read as the member's
 * joinedSeq; the server hides none in groups, the only place this detail is shown.)
 */
export function receiptDetail(
  seq: number,
  sender: number,
  read: ReadonlyMap<number, number>,
  delivered: ReadonlyMap<number, number>,
  opts: ReceiptDetailOptions,
): ReceiptDetail {
  const kept = opts.deliveryKept ?? true;
  const counts = (user: number) => user !== sender && !((opts.joinedAt?.get(user) ?? -Infinity) > seq);
  const readers = new Set<number>();
  for (const [user, at] of read) if (at >= seq && counts(user)) readers.add(user);
  const receivers = new Set<number>();
  if (kept) for (const [user, at] of delivered) if (at >= seq && counts(user) && !readers.has(user)) receivers.add(user);
  let notYet: number[] | null = null;
  if (kept && opts.members) {
    notYet = opts.members.filter((user) => counts(user) && !readers.has(user) && !receivers.has(user) && (read.has(user) || delivered.has(user)));
  }
  return {
    read: sortedNames(readers, opts.nameOf),
    delivered: sortedNames(receivers, opts.nameOf),
    notYet: notYet && sortedNames(new Set(notYet), opts.nameOf),
  };
}

/** The group status under the sender's message, from its detail: "Read by 2", "Delivered to 1", "Sent". */
export function receiptSummary(d: ReceiptDetail): string {
  if (d.read.length > 0) return `Read by ${d.read.length}`;
  return d.delivered.length > 0 ? `Delivered to ${d.delivered.length}` : "Sent";
}

/** The detail in words: "Read by alice, bob · Delivered to carol · Not yet: dave". */
export function receiptDetailText(d: ReceiptDetail): string {
  const parts: string[] = [];
  if (d.read.length > 0) parts.push(`Read by ${d.read.join(", ")}`);
  if (d.delivered.length > 0) parts.push(`Delivered to ${d.delivered.join(", ")}`);
  if (d.notYet && d.notYet.length > 0) parts.push(`Not yet: ${d.notYet.join(", ")}`);
  return parts.length > 0 ? parts.join(" · ") : "Not read by anyone yet";
}

const joinsMemo = new WeakMap<readonly ImMessage[], Map<number, number>>();

/**
 * Each user's latest "joined" system message in `messages` (userId -> its seq). Remembered per
 * array: `ConversationLog.messages()` hands out the same array until the log changes, so a
 * render asks once per conversation, not once per message.
 */
export function lastJoins(messages: readonly ImMessage[]): ReadonlyMap<number, number> {
  const memo = joinsMemo.get(messages);
  if (memo) return memo;
  const joins = new Map<number, number>();
  for (const m of messages) {
    if (m.kind !== "system") continue;
    const b = parseSystem(m.content);
    if (b?.event !== "joined" || !Array.isArray(b.userIds)) continue;
    for (const id of b.userIds) if (isNum(id)) joins.set(id, Math.max(joins.get(id) ?? 0, m.seq));
  }
  joinsMemo.set(messages, joins);
  return joins;
}

/** "online", "last seen 5 min ago", "offline". */
/** What to show of a peer's presence: nothing certain while our own socket is down. */
export function presenceShown(p: Presence | undefined, connected: boolean, now: number = Date.now()): { online: boolean; text: string } {
  if (!connected) return { online: false, text: "status unknown while offline" };
  return { online: !!p?.online, text: presenceText(p, now) };
}

export function presenceText(p: Presence | undefined, now: number = Date.now()): string {
  if (!p) return "offline";
  if (p.online) return "online";
  if (!p.lastSeen) return "offline";
  const s = Math.max(0, Math.round((now - p.lastSeen) / 1000));
  if (s < 60) return "last seen just now";
  const m = Math.round(s / 60);
  if (m < 60) return `last seen ${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `last seen ${h} h ago`;
  return `last seen ${new Date(p.lastSeen).toLocaleDateString()}`;
}
