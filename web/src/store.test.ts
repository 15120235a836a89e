import { describe, expect, it } from "vitest";
import type { HelloPayload, Message } from "./protocol";
import { ChatStore, mergeMessages } from "./store";

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
