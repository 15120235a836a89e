/** Wire types of the Hearth protocol. Every WebSocket frame is {type, payload}. */
import { parseImFrame, type ImClientFrame, type ImServerFrame } from "./im";
import { policy } from "./policy";

export interface UserRef {
  id: number;
  username: string;
}

export interface Me extends UserRef {
  email: string;
  /** The file id of the avatar the user chose (null: the server draws one). */
  avatar?: string | null;
}

export interface Message {
  id: string;
  content: string;
  user: UserRef;
  timestamp: number;
}

export interface RoomInfo {
  id: string;
  name: string;
  /** Newest first. */
  messages: Message[];
  hasMoreMessages: boolean;
}

export interface HelloPayload {
  me: UserRef;
  rooms: RoomInfo[];
}

export interface ServerMessagesPayload {
  roomId: string;
  /** Oldest first (send order). */
  messages: Message[];
}

export interface RoomHistoryPayload {
  roomId: string;
  /** Strictly older than the requested id, newest first. */
  messages: Message[];
  hasMoreMessages: boolean;
}

export interface ErrorPayload {
  code: string;
  message: string;
  /** Set when the error answers a native `send`. */
  clientMsgId?: string;
  /** With `rate_limited`: how long to wait before retrying. */
  retryAfterMs?: number;
}

export type ServerFrame =
  | { type: "hello"; payload: HelloPayload }
  | { type: "serverMessages"; payload: ServerMessagesPayload }
  | { type: "roomHistory"; payload: RoomHistoryPayload }
  | { type: "error"; payload: ErrorPayload }
  | ImServerFrame;

export type ClientFrame =
  | ImClientFrame
  | { type: "clientMessages"; payload: { roomId: string; messages: { content: string }[] } }
  | { type: "requestRoomHistory"; payload: { roomId: string; firstMessageId: string } };

/** The longest message the server takes, in characters (its `limits.max_content_chars`). */
export function maxContentChars(): number {
  return policy().maxContentChars;
}

/** WebSocket close codes with special meaning. */
export const CLOSE_POLICY_VIOLATION = 1008; // not authenticated -> login form
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_SERVICE_RESTART = 1012;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isUserRef(v: unknown): v is UserRef {
  return isObj(v) && typeof v.id === "number" && typeof v.username === "string";
}

export function isMessage(v: unknown): v is Message {
  return (
    isObj(v) &&
    typeof v.id === "string" &&
    typeof v.content === "string" &&
    typeof v.timestamp === "number" &&
    isUserRef(v.user)
  );
}

function messages(v: unknown): Message[] | null {
  if (!Array.isArray(v)) return null;
  return v.every(isMessage) ? (v as Message[]) : null;
}

/** Parse and validate a server frame. Returns null for anything malformed or unknown. */
export function parseServerFrame(data: string): ServerFrame | null {
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isObj(raw) || typeof raw.type !== "string" || !isObj(raw.payload)) return null;
  const p = raw.payload;
  switch (raw.type) {
    case "hello": {
      if (!isUserRef(p.me) || !Array.isArray(p.rooms)) return null;
      const rooms: RoomInfo[] = [];
      for (const r of p.rooms) {
        if (!isObj(r) || typeof r.id !== "string" || typeof r.name !== "string") return null;
        const ms = messages(r.messages ?? []);
        if (!ms) return null;
        rooms.push({ id: r.id, name: r.name, messages: ms, hasMoreMessages: r.hasMoreMessages === true });
      }
      return { type: "hello", payload: { me: { id: p.me.id, username: p.me.username }, rooms } };
    }
    case "serverMessages": {
      const ms = messages(p.messages);
      if (typeof p.roomId !== "string" || !ms) return null;
      return { type: "serverMessages", payload: { roomId: p.roomId, messages: ms } };
    }
    case "roomHistory": {
      const ms = messages(p.messages);
      if (typeof p.roomId !== "string" || !ms) return null;
      return {
        type: "roomHistory",
        payload: { roomId: p.roomId, messages: ms, hasMoreMessages: p.hasMoreMessages === true },
      };
    }
    case "error":
      return {
        type: "error",
        payload: {
          code: typeof p.code === "string" ? p.code : "UNKNOWN",
          message: typeof p.message === "string" ? p.message : "Unknown error",
          ...(typeof p.clientMsgId === "string" ? { clientMsgId: p.clientMsgId } : {}),
          ...(typeof p.retryAfterMs === "number" && Number.isFinite(p.retryAfterMs) && p.retryAfterMs >= 0 ? { retryAfterMs: p.retryAfterMs } : {}),
        },
      };
    default:
      return parseImFrame(raw.type, p);
  }
}

/** What to tell the user about an `error` frame. */
export function errorFrameText(e: ErrorPayload): string {
  if (e.code === "rate_limited") return `Sending too fast, retry in ${Math.max(1, Math.ceil((e.retryAfterMs ?? 1000) / 1000))} s`;
  return e.message || e.code;
}

export function encodeClientFrame(frame: ClientFrame): string {
  return JSON.stringify(frame);
}

/** Validate a composer text; returns the content to send or an error string. */
export function validateContent(text: string): { ok: true; content: string } | { ok: false; error: string } {
  if (text.trim().length === 0) return { ok: false, error: "Message is empty" };
  // The server counts characters (Unicode scalar values).
  const chars = Array.from(text).length;
  const max = maxContentChars();
  if (chars > max) {
    return { ok: false, error: `Message is too long (${chars}/${max} characters)` };
  }
  return { ok: true, content: text };
}
