/**
 * Where the user is, as the URL hash: `#/c/123` is conversation 123, `#/r/general` the room
 * `general`. Opening a conversation or a room adds a history entry, so that Back and Forward
 * move between them and a reload reopens the one on screen. Pure: no DOM.
 */

export type Route = { kind: "room"; id: string } | { kind: "conversation"; id: number };

/** Room ids are 1–64 of `A-Z a-z 0-9 _ . -` (see the admin API). */
const ROOM_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** The route a hash names, or null for anything else (no hash, a malformed one). */
export function parseRoute(hash: string): Route | null {
  const m = /^#\/([cr])\/([^/?#]+)$/.exec(hash);
  if (!m) return null;
  if (m[1] === "c") {
    if (!/^[1-9][0-9]{0,15}$/.test(m[2])) return null;
    const id = Number(m[2]);
    return Number.isSafeInteger(id) ? { kind: "conversation", id } : null;
  }
  let id: string;
  try {
    id = decodeURIComponent(m[2]);
  } catch {
    return null;
  }
  return ROOM_ID.test(id) ? { kind: "room", id } : null;
}

export function routeHash(r: Route): string {
  return r.kind === "conversation" ? `#/c/${r.id}` : `#/r/${encodeURIComponent(r.id)}`;
}

export function sameRoute(a: Route | null, b: Route | null): boolean {
  return !!a && !!b && a.kind === b.kind && a.id === b.id;
}
