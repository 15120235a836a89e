/**
 * The server's limits and policies (`GET /api/policy`), which an operator may change: what the
 * client checks before sending and says in its messages. Until the server has answered (or if
 * it cannot), the server's defaults apply.
 */

export interface ServerPolicy {
  maxContentChars: number;
  recallWindowSecs: number;
  directMessages: "friends" | "anyone";
  groupMemberLimit: number;
  maxNoteChars: number;
  maxGroupNameChars: number;
  maxPage: number;
  /** Groups up to this size keep delivery receipts (direct conversations always do). */
  deliveryReceiptsMaxMembers: number;
}

/** The server's defaults (`Limits::default`, `Policy::default`). */
export const DEFAULT_POLICY: Readonly<ServerPolicy> = Object.freeze({
  maxContentChars: 4000,
  recallWindowSecs: 120,
  directMessages: "friends",
  groupMemberLimit: 2000,
  maxNoteChars: 200,
  maxGroupNameChars: 100,
  maxPage: 200,
  deliveryReceiptsMaxMembers: 32,
});

let current: Readonly<ServerPolicy> = DEFAULT_POLICY;

/** The policy in force. */
export function policy(): Readonly<ServerPolicy> {
  return current;
}

/** A whole number within [min, max], else null. */
function bounded(v: unknown, min: number, max: number): number | null {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? v : null;
}

/**
 * Takes what the server answered: each field that is present and sane replaces the default,
 * anything else keeps it (an older server, or a damaged answer, cannot break the client).
 */
export function applyPolicy(raw: unknown): Readonly<ServerPolicy> {
  const r = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
  const d = DEFAULT_POLICY;
  const big = 1_000_000_000;
  current = Object.freeze({
    maxContentChars: bounded(r.maxContentChars, 1, big) ?? d.maxContentChars,
    recallWindowSecs: bounded(r.recallWindowSecs, 0, big) ?? d.recallWindowSecs,
    directMessages: r.directMessages === "anyone" || r.directMessages === "friends" ? r.directMessages : d.directMessages,
    groupMemberLimit: bounded(r.groupMemberLimit, 1, big) ?? d.groupMemberLimit,
    maxNoteChars: bounded(r.maxNoteChars, 0, big) ?? d.maxNoteChars,
    maxGroupNameChars: bounded(r.maxGroupNameChars, 1, big) ?? d.maxGroupNameChars,
    maxPage: bounded(r.maxPage, 1, big) ?? d.maxPage,
    deliveryReceiptsMaxMembers: bounded(r.deliveryReceiptsMaxMembers, 0, big) ?? d.deliveryReceiptsMaxMembers,
  });
  return current;
}

/** Asks the server; on failure the policy stays as it is. */
export async function loadPolicy(): Promise<void> {
  try {
    const res = await fetch("/api/policy", { credentials: "same-origin" });
    if (res.ok) applyPolicy(await res.json());
  } catch {
    /* offline or an older server: the defaults stand */
  }
}

/** "2 minutes", "45 seconds", "1 hour": a duration for a sentence. */
export function durationText(secs: number): string {
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (secs % 3600 === 0 && secs >= 3600) return unit(secs / 3600, "hour");
  if (secs % 60 === 0 && secs >= 60) return unit(secs / 60, "minute");
  return unit(secs, "second");
}
