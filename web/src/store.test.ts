import { describe, expect, it } from "vitest";
import type { HelloPayload, Message } from "./protocol";
import { ChatStore, SEEK_MAX_PAGES, mergeMessages, seekRoomMessage } from "./store";

const ME = { id: 1, username: "me" };
const OTHER = { id: 2, username: "other" };

function m(id: string, user = OTHER, content = "c" + id): Message {
  return { id, content, user, timestamp: Number(id.split("-")[0]) };
}
/** Ids ms=from..to-1 with n=0, newest first. */
function range(from: number, to: number, user = OTHER): Message[] {
  const out: Message[] = [];
  for (let i = to - 1; i >= from; i--) out.push(m(`${i}-0`, user));
  return out;
}
function hello(rooms: { id: string; messages: Message[]; hasMore?: boolean; name?: string }[]): HelloPayload {
  return {
    me: ME,
    rooms: rooms.map((r) => ({ id: r.id, name: r.name ?? r.id, messages: r.messages, hasMoreMessages: r.hasMore ?? false })),
  };
}
const ids = (s: ChatStore, room: string) => s.room(room)!.messages.map((x) => x.id);

describe("mergeMessages", () => {
  it("dedupes and sorts newest first numerically", () => {
    const out = mergeMessages([m("9-0"), m("10-1")], [m("10-0"), m("9-0"), m("100-0")]);
    expect(out.map((x) => x.id)).toEqual(["100-0", "10-1", "10-0", "9-0"]);
  });
});

describe("ChatStore", () => {
  it("applies hello keeping newest-first order", () => {
    const s = new ChatStore();
    s.applyHello(hello([{ id: "a", messages: [m("3-0"), m("2-0"), m("1-0")], hasMore: true }, { id: "b", messages: [] }]));
    expect(s.me).toEqual(ME);
    expect(s.roomList().map((r) => r.id)).toEqual(["a", "b"]);
    expect(ids(s, "a")).toEqual(["3-0", "2-0", "1-0"]);
    expect(s.room("a")!.hasMoreMessages).toBe(true);
    expect(s.oldestId("a")).toBe("1-0");
    expect(s.oldestId("b")).toBeUndefined();
  });

  it("does not duplicate own messages echoed by the server", () => {
    const s = new ChatStore();
    s.applyHello(hello([{ id: "a", messages: [m("1-0")] }]));
    s.select("a");
    expect(s.applyServerMessages({ roomId: "a", messages: [m("2-0", ME), m("2-1", ME)] })).toBe(2);
    expect(s.applyServerMessages({ roomId: "a", messages: [m("2-1", ME)] })).toBe(0);
    expect(ids(s, "a")).toEqual(["2-1", "2-0", "1-0"]);
  });

  it("counts unread only for unselected rooms and not for own messages", () => {
    const s = new ChatStore();
    s.applyHello(hello([{ id: "a", messages: [] }, { id: "b", messages: [] }]));
    s.select("a");
    s.applyServerMessages({ roomId: "a", messages: [m("1-0")] });
    s.applyServerMessages({ roomId: "b", messages: [m("1-0"), m("1-1"), m("1-2", ME)] });
    expect(s.room("a")!.unread).toBe(0);
    expect(s.room("b")!.unread).toBe(2);
    s.select("b");
    expect(s.room("b")!.unread).toBe(0);
  });

  it("counts unread for the selected room while the chats view hides it", () => {
    const s = new ChatStore();
    s.applyHello(hello([{ id: "a", messages: [] }]));
    s.select("a");
    s.roomInView = false;
    s.applyServerMessages({ roomId: "a", messages: [m("1-0"), m("1-1", ME)] });
    expect(s.room("a")!.unread).toBe(1);
    s.roomInView = true;
    s.select("a");
    expect(s.room("a")!.unread).toBe(0);
  });

  it("counts what others posted since the last visit after a reload, and remembers what was seen", () => {
    const before = new ChatStore();
    let saved: Record<string, string> = {};
    before.onSeen = (seen) => (saved = seen);
    before.applyHello(hello([{ id: "a", messages: range(1, 4) }, { id: "b", messages: range(1, 3) }]));
    // Both rooms are met: what they hold now is not new.
    expect(saved).toEqual({ a: before.room("a")!.messages[0].id, b: before.room("b")!.messages[0].id });
    before.select("a");
    before.applyServerMessages({ roomId: "a", messages: [m("5-0")] });
    expect(saved.a).toBe("5-0");
    before.select("b");
    expect(saved).toEqual({ a: "5-0", b: "2-0" });

    // A fresh page: "a" got two messages from others and one of mine, "b" none, "c" was never opened.
    const after = new ChatStore();
    after.restoreSeen(JSON.parse(JSON.stringify(saved)));
    after.applyHello(
      hello([
        { id: "a", messages: [m("8-0"), m("7-0", ME), m("6-0"), m("5-0")] },
        { id: "b", messages: range(1, 3) },
        { id: "c", messages: range(1, 9) },
      ]),
    );
    expect(["a", "b", "c"].map((r) => after.room(r)!.unread)).toEqual([2, 0, 0]);
    // A room that was empty when seen counts everything posted since.
    const empty = new ChatStore();
    let kept: Record<string, string> = {};
    empty.onSeen = (seen) => (kept = seen);
    empty.applyHello(hello([{ id: "a", messages: [] }]));
    empty.select("a");
    const later = new ChatStore();
    later.restoreSeen(kept);
    later.applyHello(hello([{ id: "a", messages: range(1, 4) }, { id: "z", messages: [] }]));
    expect(later.room("a")!.unread).toBe(3);
    // A room never opened keeps what arrived in it for the next visit.
    const unopened = new ChatStore();
    let marks: Record<string, string> = {};
    unopened.onSeen = (seen) => (marks = seen);
    unopened.applyHello(hello([{ id: "a", messages: range(1, 3) }, { id: "r", messages: range(1, 3) }]));
    unopened.select("a");
    unopened.applyServerMessages({ roomId: "r", messages: [m("9-0")] });
    expect(unopened.room("r")!.unread).toBe(1);
    const reloaded = new ChatStore();
    reloaded.restoreSeen(JSON.parse(JSON.stringify(marks)));
    reloaded.applyHello(hello([{ id: "a", messages: range(1, 3) }, { id: "r", messages: [m("9-0"), ...range(1, 3)] }]));
    expect(reloaded.room("r")!.unread).toBe(1);
    // Junk in storage is ignored.
    const junk = new ChatStore();
    junk.restoreSeen({ a: "not-an-id", b: 5 });
    junk.applyHello(hello([{ id: "a", messages: range(1, 3) }]));
    expect(junk.room("a")!.unread).toBe(0);
  });

  it("ignores messages for unknown rooms", () => {
    const s = new ChatStore();
    s.applyHello(hello([{ id: "a", messages: [] }]));
    expect(s.applyServerMessages({ roomId: "zzz", messages: [m("1-0")] })).toBe(0);
  });

  it("merges history and tracks hasMoreMessages", () => {
    const s = new ChatStore();
    s.applyHello(hello([{ id: "a", messages: range(100, 200), hasMore: true }]));
    expect(s.beginHistoryRequest("a")).toBe("100-0");
    // A second request while in flight is suppressed.
    expect(s.beginHistoryRequest("a")).toBeNull();
    // Overlapping history (server returns one we already have) is deduplicated.
    expect(s.applyHistory({ roomId: "a", messages: [m("100-0"), ...range(0, 100)], hasMoreMessages: false })).toBe(100);
    expect(ids(s, "a").length).toBe(200);
    expect(s.oldestId("a")).toBe("0-0");
    expect(s.room("a")!.hasMoreMessages).toBe(false);
    expect(s.beginHistoryRequest("a")).toBeNull();
    const all = ids(s, "a");
    expect(all).toEqual([...all].sort((x, y) => Number(y.split("-")[0]) - Number(x.split("-")[0])));
  });

  it("interleaves history, live messages and hello without duplicates", () => {
    const s = new ChatStore();
    s.applyHello(hello([{ id: "a", messages: range(50, 150), hasMore: true }]));
    s.select("a");
    s.applyServerMessages({ roomId: "a", messages: [m("150-0"), m("151-0")] });
    s.beginHistoryRequest("a");
    s.applyHistory({ roomId: "a", messages: range(0, 50), hasMoreMessages: false });
    // Reconnect: the new hello has the newest 100 which overlap what we have.
    s.applyHello(hello([{ id: "a", messages: range(53, 153), hasMore: true }]));
    const list = ids(s, "a");
    expect(new Set(list).size).toBe(list.length);
    expect(list.length).toBe(153);
    expect(list[0]).toBe("152-0");
    expect(list[list.length - 1]).toBe("0-0");
    // Older tail preserved, so "no more" still holds.
    expect(s.room("a")!.hasMoreMessages).toBe(false);
    expect(s.selectedRoomId).toBe("a");
  });

  it("drops stale messages when a reconnect hello leaves a gap", () => {
    const s = new ChatStore();
    s.applyHello(hello([{ id: "a", messages: range(0, 10) }]));
    s.applyHello(hello([{ id: "a", messages: range(500, 600), hasMore: true }]));
    expect(ids(s, "a").length).toBe(100);
    expect(s.oldestId("a")).toBe("500-0");
    expect(s.room("a")!.hasMoreMessages).toBe(true);
    // Unselected room: new messages from others count as unread.
    expect(s.room("a")!.unread).toBe(100);
  });

  it("replaces the room list on hello and resets in-flight history", () => {
    const s = new ChatStore();
    s.applyHello(hello([{ id: "a", messages: range(0, 5), hasMore: true }, { id: "b", messages: [] }]));
    s.select("b");
    s.beginHistoryRequest("a");
    s.applyHello(hello([{ id: "a", messages: range(0, 5), hasMore: true, name: "renamed" }]));
    expect(s.roomList().map((r) => r.name)).toEqual(["renamed"]);
    expect(s.selectedRoomId).toBeNull();
    expect(s.room("a")!.loadingHistory).toBe(false);
    expect(ids(s, "a")).toEqual(["4-0", "3-0", "2-0", "1-0", "0-0"]);
  });
});

describe("seekRoomMessage", () => {
  /** Room ids as the server makes them: `<ms>-<seq>`, seq from..to-1, newest first. */
  const seqs = (from: number, to: number): Message[] => {
    const out: Message[] = [];
    for (let n = to - 1; n >= from; n--) out.push(m(`${1_700_000_000_000 + n * 7}-${n}`));
    return out;
  };
  const room = (messages: Message[], hasMoreMessages: boolean) => ({ messages, hasMoreMessages });

  it("finds a loaded message by its seq and gives its room id", () => {
    const r = room(seqs(101, 201), true);
    expect(seekRoomMessage(r, 150, 0)).toEqual({ kind: "found", id: `${1_700_000_000_000 + 150 * 7}-150` });
    expect(seekRoomMessage(r, 101, 0)).toEqual({ kind: "found", id: `${1_700_000_000_000 + 101 * 7}-101` });
    expect(seekRoomMessage(r, 200, 0)).toEqual({ kind: "found", id: `${1_700_000_000_000 + 200 * 7}-200` });
    // Found even with the page budget spent: what is loaded is shown.
    expect(seekRoomMessage(r, 150, SEEK_MAX_PAGES)).toMatchObject({ kind: "found" });
  });

  it("pages back while the message is older than everything loaded", () => {
    expect(seekRoomMessage(room(seqs(101, 201), true), 7, 0)).toEqual({ kind: "older" });
    expect(seekRoomMessage(room(seqs(101, 201), true), 100, 3)).toEqual({ kind: "older" });
  });

  it("paging a store back reaches the message", () => {
    const s = new ChatStore();
    s.applyHello(hello([{ id: "r", messages: seqs(201, 301), hasMore: true }]));
    s.select("r");
    let pages = 0;
    let at = seekRoomMessage(s.room("r")!, 42, pages);
    while (at.kind === "older") {
      const first = s.beginHistoryRequest("r");
      expect(first).not.toBeNull();
      const before = Number(first!.split("-")[1]);
      const from = Math.max(1, before - 100);
      s.applyHistory({ roomId: "r", messages: seqs(from, before), hasMoreMessages: from > 1 });
      // A live message arriving meanwhile changes nothing.
      s.applyServerMessages({ roomId: "r", messages: seqs(301 + pages, 302 + pages) });
      pages++;
      at = seekRoomMessage(s.room("r")!, 42, pages);
    }
    expect(at).toEqual({ kind: "found", id: `${1_700_000_000_000 + 42 * 7}-42` });
    expect(pages).toBe(2);
  });

  it("stops at the beginning of the room, or once loaded back past a missing message", () => {
    expect(seekRoomMessage(room(seqs(1, 101), false), 0, 0)).toEqual({ kind: "missing" });
    // Deleted: seq 50 is gone, and 49 is loaded.
    const gap = seqs(1, 101).filter((x) => !x.id.endsWith("-50"));
    expect(seekRoomMessage(room(gap, true), 50, 0)).toEqual({ kind: "missing" });
    // Newer than anything the room has.
    expect(seekRoomMessage(room(seqs(1, 101), true), 500, 0)).toEqual({ kind: "missing" });
    expect(seekRoomMessage(room([], false), 1, 0)).toEqual({ kind: "missing" });
    expect(seekRoomMessage(room([], true), 1, 0)).toEqual({ kind: "missing" });
  });

  it("gives up after the page budget", () => {
    const r = room(seqs(5001, 5101), true);
    expect(seekRoomMessage(r, 3, SEEK_MAX_PAGES - 1)).toEqual({ kind: "older" });
    expect(seekRoomMessage(r, 3, SEEK_MAX_PAGES)).toEqual({ kind: "tooFar" });
    expect(seekRoomMessage(r, 3, 2, 2)).toEqual({ kind: "tooFar" });
  });

  it("refuses a seq that is not one", () => {
    const r = room(seqs(1, 10), true);
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) expect(seekRoomMessage(r, bad, 0)).toEqual({ kind: "missing" });
  });

  it("skips malformed ids", () => {
    const r = room([m("bogus"), ...seqs(10, 20)], true);
    expect(seekRoomMessage(r, 12, 0)).toMatchObject({ kind: "found" });
    expect(seekRoomMessage(r, 3, 0)).toEqual({ kind: "older" });
  });
});
