import { describe, expect, it } from "vitest";
import {
  ConversationLog,
  PendingSends,
  RECALL_MARGIN_MS,
  recallWindowMs,
  ServerClock,
  ackedMessage,
  canRecall,
  nextRecallExpiry,
  recallDeadline,
  sendRetryable,
  countUnread,
  eventAffects,
  isSilentSystem,
  newClientMsgId,
  parseImFrame,
  goneText,
  friendNotice,
  presenceShown,
  presenceText,
  quoteText,
  readByCount,
  receiptText,
  lastJoins,
  receiptDetail,
  receiptDetailText,
  receiptSummary,
  sendFrame,
  systemText,
  type ImMessage,
} from "./im";
import type { FileRef } from "./files";
import { parseServerFrame } from "./protocol";

const alice = { id: 1, username: "alice" };
const bob = { id: 2, username: "bob" };
const names = (id: number) => ({ 1: "alice", 2: "bob", 3: "carol" })[id as 1 | 2 | 3];

function msg(seq: number, extra: Partial<ImMessage> = {}): ImMessage {
  return { id: String(7 * 2 ** 32 + seq), conversationId: 7, seq, sender: alice, kind: "text", content: `m${seq}`, timestamp: 1000 + seq, ...extra };
}

function sys(seq: number, body: object, sender = alice): ImMessage {
  return msg(seq, { kind: "system", content: JSON.stringify(body), sender });
}

describe("ConversationLog", () => {
  it("tracks the highest contiguous seq and detects gaps", () => {
    const log = new ConversationLog(0);
    expect(log.add(msg(1))).toEqual({ added: true, gap: false });
    expect(log.add(msg(2))).toEqual({ added: true, gap: false });
    expect(log.known).toBe(2);
    expect(log.add(msg(5))).toEqual({ added: true, gap: true });
    expect(log.known).toBe(2);
    expect(log.highest).toBe(5);
    expect(log.missing(5)).toBe(true);
    log.addAll([msg(4), msg(3)]);
    expect(log.known).toBe(5);
    expect(log.missing(5)).toBe(false);
    expect(log.messages().map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it("drops duplicates by seq", () => {
    const log = new ConversationLog(0);
    log.add(msg(1));
    expect(log.add(msg(1))).toEqual({ added: false, gap: false });
    expect(log.addAll([msg(1), msg(2), msg(2)])).toBe(1);
    expect(log.size).toBe(2);
  });

  it("ignores messages at or before its base (joinedSeq / first pull)", () => {
    const log = new ConversationLog(10);
    expect(log.add(msg(10)).added).toBe(false);
    expect(log.add(msg(11))).toEqual({ added: true, gap: false });
    expect(log.known).toBe(11);
  });

  it("applies recalled and edited system messages to the referenced message", () => {
    const log = new ConversationLog(0);
    log.add(msg(1));
    log.add(msg(2));
    log.add(sys(3, { event: "edited", seq: 2, content: "fixed" }));
    expect(log.get(2)?.content).toBe("fixed");
    expect(log.get(2)?.editedAt).toBe(1003);
    log.add(sys(4, { event: "recalled", seq: 1 }));
    expect(log.get(1)?.recalled).toBe(true);
    expect(log.get(1)?.content).toBe("");
  });

  it("takes a newer version of a message from a pull, and hides", () => {
    const log = new ConversationLog(0);
    log.add(msg(1));
    log.addAll([msg(1, { recalled: true, content: "" })]);
    expect(log.get(1)?.recalled).toBe(true);
    log.add(msg(2));
    log.hide(2);
    expect(log.get(2)?.hidden).toBe(true);
    // A later edit of a message deleted for me does not bring its words back.
    log.add(sys(3, { event: "edited", seq: 2, content: "look again" }));
    expect(log.get(2)?.hidden).toBe(true);
    expect(log.get(2)?.content).toBe("");
  });
});

const FILE_ID = "0123456789abcdef0123456789abcdef";
const voiceFile: FileRef = { id: FILE_ID, name: "voice.webm", size: 2048, contentType: "audio/webm", hasThumbnail: false };

describe("countUnread", () => {
  it("counts other members' messages, not system, recalled or own ones", () => {
    const log = new ConversationLog(0);
    log.addAll([msg(1), msg(2), msg(3, { sender: bob }), msg(4), sys(5, { event: "edited", seq: 1, content: "x" }), sys(6, { event: "recalled", seq: 2 }), sys(7, { event: "transcribed", seq: 4, text: "hi" })]);
    // Bob's view: 1 (edited, still unread) and 4; 2 was recalled, 3 is his own, 5-7 are system.
    expect(countUnread(log, 0, 7, bob.id)).toBe(2);
    expect(countUnread(log, 1, 7, bob.id)).toBe(1);
    expect(countUnread(log, 7, 7, bob.id)).toBe(0);
    // A message Bob deleted for himself is not waiting for him either.
    log.hide(4);
    expect(countUnread(log, 0, 7, bob.id)).toBe(1);
  });

  it("is unknown when the log lacks part of the range", () => {
    const log = new ConversationLog(3);
    log.addAll([msg(4), msg(5)]);
    expect(countUnread(log, 0, 5, bob.id)).toBeNull();
    expect(countUnread(log, 3, 6, bob.id)).toBeNull();
    expect(countUnread(log, 3, 5, bob.id)).toBe(2);
  });

  it("counts one by one among the newest 100, every older message as one", () => {
    const log = new ConversationLog(0);
    log.addAll(Array.from({ length: 150 }, (_, i) => (i % 2 === 0 ? sys(i + 1, { event: "joined" }) : msg(i + 1))));
    // 50 older seqs count as they are; among the newest 100 (51..150), the 50 even seqs are text.
    expect(countUnread(log, 0, 150, bob.id)).toBe(100);
  });
});

describe("attachments and transcripts", () => {
  it("applies a transcribed system message to the voice message and hides the event", () => {
    const log = new ConversationLog(0);
    log.add(msg(1, { kind: "voice", content: "", file: voiceFile }));
    const ev = sys(2, { event: "transcribed", seq: 1, text: "hello there" });
    expect(isSilentSystem(ev)).toBe(true);
    expect(isSilentSystem(sys(3, { event: "edited", seq: 1, content: "x" }))).toBe(true);
    expect(isSilentSystem(sys(3, { event: "recalled", seq: 1 }))).toBe(true);
    expect(isSilentSystem(sys(3, { event: "left", userId: 2 }))).toBe(false);
    expect(isSilentSystem(msg(3))).toBe(false);
    log.add(ev);
    expect(log.get(1)?.transcript).toBe("hello there");
    expect(log.get(1)?.file).toEqual(voiceFile);
  });

  it("applies a transcript that arrives before its message once the message is pulled", () => {
    const log = new ConversationLog(0);
    log.add(sys(2, { event: "transcribed", seq: 1, text: "late" }));
    log.add(msg(1, { kind: "voice", content: "", file: voiceFile }));
    expect(log.get(1)?.transcript).toBeUndefined();
    log.reapplySystem();
    expect(log.get(1)?.transcript).toBe("late");
  });

  it("keeps a transcript and file when the same message arrives again without them", () => {
    const log = new ConversationLog(0);
    // The ack's version (with the file we uploaded), then the transcript event.
    log.add(msg(1, { kind: "voice", content: "", file: voiceFile }));
    log.add(sys(2, { event: "transcribed", seq: 1, text: "kept" }));
    log.addAll([msg(1, { kind: "voice", content: "", file: voiceFile, editedAt: 5 })]);
    expect(log.get(1)).toMatchObject({ transcript: "kept", file: voiceFile, editedAt: 5 });
    // A message carrying its transcript takes it.
    log.addAll([msg(1, { kind: "voice", content: "", file: voiceFile, editedAt: 5, transcript: "newer" })]);
    expect(log.get(1)?.transcript).toBe("newer");
  });

  it("fills in the file of an acked message from the message frame", () => {
    const log = new ConversationLog(0);
    log.add(msg(1, { kind: "image", content: "" }));
    const img = { ...voiceFile, contentType: "image/png", width: 4, height: 4, hasThumbnail: true };
    log.add(msg(1, { kind: "image", content: "", file: img }));
    expect(log.get(1)?.file).toEqual(img);
  });

  it("drops the file and transcript of recalled and hidden messages", () => {
    const log = new ConversationLog(0);
    log.add(msg(1, { kind: "voice", content: "", file: voiceFile, transcript: "t" }));
    log.add(msg(2, { kind: "voice", content: "", file: voiceFile, transcript: "t" }));
    log.add(sys(3, { event: "recalled", seq: 1 }));
    expect(log.get(1)?.file).toBeUndefined();
    expect(log.get(1)?.transcript).toBeUndefined();
    log.add(sys(4, { event: "transcribed", seq: 1, text: "too late" }));
    expect(log.get(1)?.transcript).toBeUndefined();
    log.hide(2);
    expect(log.get(2)?.file).toBeUndefined();
  });

  it("sends kind and fileId, and the ack stands for the file message", () => {
    const p = new PendingSends();
    const text = p.add(7, "hi", "c1", 1);
    expect(sendFrame(text)).toEqual({ type: "send", payload: { conversationId: 7, clientMsgId: "c1", content: "hi" } });
    const v = p.add(7, "", "c2", 2, { kind: "voice", file: voiceFile });
    expect(sendFrame(v)).toEqual({ type: "send", payload: { conversationId: 7, clientMsgId: "c2", content: "", kind: "voice", fileId: FILE_ID } });
    const m = ackedMessage(v, { clientMsgId: "c2", conversationId: 7, id: "99", seq: 4, timestamp: 50 }, alice);
    expect(m).toEqual({ id: "99", conversationId: 7, seq: 4, sender: alice, kind: "voice", content: "", clientMsgId: "c2", timestamp: 50, file: voiceFile });
    // Attachments survive a reload (localStorage), junk ones are dropped.
    const q = PendingSends.fromJSON(JSON.parse(JSON.stringify(p.toJSON())));
    expect(q.get("c2")?.attachment).toEqual({ kind: "voice", file: voiceFile });
    const bad = PendingSends.fromJSON([{ clientMsgId: "c3", conversationId: 7, content: "", attachment: { kind: "voice", file: { id: "x" } } }]);
    expect(bad.get("c3")?.attachment).toBeUndefined();
  });

  it("sends a reply's target, keeps it across a reload and in the acked message, and quotes it", () => {
    const p = new PendingSends();
    const r = p.add(7, "yes", "c9", 1, undefined, 3);
    expect(sendFrame(r)).toEqual({ type: "send", payload: { conversationId: 7, clientMsgId: "c9", content: "yes", replyTo: 3 } });
    expect(PendingSends.fromJSON(JSON.parse(JSON.stringify(p.toJSON()))).get("c9")?.replyTo).toBe(3);
    expect(PendingSends.fromJSON([{ clientMsgId: "c8", conversationId: 7, content: "x", replyTo: "3" }]).get("c8")?.replyTo).toBeUndefined();
    expect(ackedMessage(r, { clientMsgId: "c9", conversationId: 7, id: "98", seq: 5, timestamp: 60 }, alice).replyTo).toBe(3);
    expect(parseImFrame("message", { ...msg(2, { replyTo: 1 }) })?.payload).toMatchObject({ replyTo: 1 });
    expect(parseImFrame("message", { ...msg(2), replyTo: "1" })?.payload).not.toHaveProperty("replyTo");
    expect(quoteText(msg(1, { content: "  hello\n  there " }))).toBe("hello there");
    expect(quoteText(msg(1, { content: "x".repeat(200) }))).toBe("x".repeat(79) + "…");
    expect(quoteText(msg(1, { kind: "image", content: "sunset", file: voiceFile }))).toBe("Photo · sunset");
    expect(quoteText(msg(1, { recalled: true }))).toBe("a recalled message");
    expect(quoteText(undefined)).toBe("an earlier message");
  });

  it("validates the file of a message frame", () => {
    const good = parseImFrame("message", { ...msg(1, { kind: "voice", content: "" }), file: voiceFile, transcript: "hi" });
    expect(good?.payload).toMatchObject({ file: voiceFile, transcript: "hi" });
    const bad = parseImFrame("message", { ...msg(1, { kind: "voice", content: "" }), file: { id: "../x" }, transcript: 5 });
    expect(bad?.type).toBe("message");
    expect(bad?.payload).not.toHaveProperty("file");
    expect(bad?.payload).not.toHaveProperty("transcript");
  });
});

describe("PendingSends", () => {
  it("keeps sends until acked, keyed by clientMsgId", () => {
    const p = new PendingSends();
    const a = p.add(7, "hello", "c1", 100);
    p.add(7, "world", "c2", 200);
    p.add(8, "other", "c3", 300);
    expect(p.forConversation(7).map((x) => x.clientMsgId)).toEqual(["c1", "c2"]);
    expect(p.due(100, 5000).map((x) => x.clientMsgId)).toEqual(["c1", "c2", "c3"]);
    p.markSent("c1", 1000);
    expect(p.due(2000, 5000).map((x) => x.clientMsgId)).toEqual(["c2", "c3"]);
    expect(p.due(7000, 5000).map((x) => x.clientMsgId)).toContain("c1");
    expect(p.ack("c1")).toBe(a);
    expect(p.get("c1")).toBeUndefined();
    expect(p.ack("c1")).toBeUndefined();
  });

  it("retries with the same clientMsgId after reconnect and after failure", () => {
    const p = new PendingSends();
    p.add(7, "x", "c1", 0);
    p.markSent("c1", 10);
    expect(p.due(20, 5000)).toEqual([]);
    p.resetSent();
    expect(p.due(20, 5000).map((x) => x.clientMsgId)).toEqual(["c1"]);
    p.fail("c1", "direct messages are between friends");
    expect(p.due(20, 5000)).toEqual([]);
    expect(p.get("c1")?.state).toBe("failed");
    p.retry("c1");
    expect(p.due(20, 5000).map((x) => x.clientMsgId)).toEqual(["c1"]);
  });

  it("round-trips through JSON", () => {
    const p = new PendingSends();
    p.add(7, "x", "c1", 5);
    p.fail("c1", "nope");
    const q = PendingSends.fromJSON(JSON.parse(JSON.stringify(p.toJSON())));
    expect(q.get("c1")).toMatchObject({ conversationId: 7, content: "x", state: "failed", error: "nope", sentAt: 0 });
    expect(PendingSends.fromJSON("junk").all()).toEqual([]);
  });

  it("keeps the code of a refusal, through JSON too; Retry clears it", () => {
    const p = new PendingSends();
    p.add(7, "x", "c1", 5);
    p.fail("c1", "image messages need a PNG, JPEG, GIF or WebP upload; send it as a file", "not_an_image");
    expect(p.get("c1")?.code).toBe("not_an_image");
    expect(PendingSends.fromJSON(JSON.parse(JSON.stringify(p.toJSON()))).get("c1")?.code).toBe("not_an_image");
    p.retry("c1");
    expect(p.get("c1")?.code).toBeUndefined();
  });

  it("sends a refused image as a file: same upload and place, a new clientMsgId", () => {
    const p = new PendingSends();
    const file: FileRef = { id: "a".repeat(32), name: "fake.png", size: 4, contentType: "image/png", hasThumbnail: false };
    p.add(7, "", "c1", 5, { kind: "image", file });
    p.add(7, "after", "c2", 6);
    p.fail("c1", "not an image", "not_an_image");
    const q = p.asFile("c1", "c3")!;
    expect(q).toMatchObject({ clientMsgId: "c3", conversationId: 7, createdAt: 5, state: "sending", sentAt: 0, attachment: { kind: "file", file } });
    expect(q.error).toBeUndefined();
    expect(q.code).toBeUndefined();
    expect(p.get("c1")).toBeUndefined();
    expect(p.forConversation(7).map((x) => x.clientMsgId)).toEqual(["c3", "c2"]);
    expect(sendFrame(q).payload).toMatchObject({ kind: "file", fileId: file.id, clientMsgId: "c3" });
    // A text message has nothing to send as a file.
    expect(p.asFile("c2")).toBeUndefined();
  });

  it("offers Retry only where the same send can succeed", () => {
    for (const code of ["not_an_image", "content_too_long", "file_required", "unexpected_file", "file_forbidden", "client_msg_id_reused", "bad_reply_to", "bad_payload"]) {
      expect(sendRetryable(code), code).toBe(false);
    }
    for (const code of [undefined, "rate_limited", "unavailable", "internal", "not_friends", "blocked", "not_member"]) {
      expect(sendRetryable(code), String(code)).toBe(true);
    }
  });

  it("makes valid, unique clientMsgIds", () => {
    const ids = new Set(Array.from({ length: 100 }, () => newClientMsgId()));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^[!-~]{1,64}$/);
  });
});

describe("ConversationLog.extendBack", () => {
  it("prepends older messages, applies their recalls and stays contiguous", () => {
    const log = new ConversationLog(4);
    log.addAll([msg(5), msg(6)]);
    log.extendBack(1, [msg(2), sys(3, { event: "recalled", seq: 2 }), msg(4)]);
    expect(log.base).toBe(1);
    expect(log.messages().map((m) => m.seq)).toEqual([2, 3, 4, 5, 6]);
    expect(log.get(2)?.recalled).toBe(true);
    expect(log.known).toBe(6);
  });
  it("starts after a missing message rather than leave a hole", () => {
    const log = new ConversationLog(10);
    log.extendBack(5, [msg(6), msg(8), msg(9), msg(10)]);
    expect(log.base).toBe(7);
    expect(log.messages().map((m) => m.seq)).toEqual([8, 9, 10]);
  });
});

describe("systemText", () => {
  const t = (body: object, sender = alice, me?: number) => systemText(JSON.stringify(body), sender, names, me);
  it("renders every event, names as registered", () => {
    expect(t({ event: "created", name: "Team", members: [2, 3] })).toBe('alice created the group "Team" with bob, carol');
    expect(t({ event: "joined", userIds: [3], by: 1 })).toBe("alice added carol");
    expect(t({ event: "joined", userIds: [3], by: 3 }, { id: 3, username: "carol" })).toBe("carol joined");
    expect(t({ event: "left", userId: 2 }, bob)).toBe("bob left the group");
    expect(t({ event: "kicked", userId: 2, by: 1 })).toBe("alice removed bob");
    expect(t({ event: "role_changed", userId: 2, role: "admin", by: 1 })).toBe("alice made bob an admin");
    expect(t({ event: "role_changed", userId: 2, role: "member", by: 1 })).toBe("alice made bob a member");
    expect(t({ event: "renamed", name: "新名字", by: 1 })).toBe('alice renamed the group to "新名字"');
    expect(t({ event: "owner_changed", userId: 2, by: 1 })).toBe("alice transferred ownership to bob");
    expect(t({ event: "dissolved", by: 1 })).toBe("alice dissolved the group");
    expect(t({ event: "recalled", seq: 4 }, bob)).toBe("bob recalled a message");
    expect(t({ event: "edited", seq: 4, content: "x" }, bob)).toBe("bob edited a message");
  });
  it("says you, and copes with unknown ids and junk", () => {
    expect(t({ event: "kicked", userId: 2, by: 1 }, alice, 2)).toBe("alice removed you");
    expect(t({ event: "kicked", userId: 99, by: 1 }, alice, 1)).toBe("You removed user #99");
    expect(systemText("not json", alice, names)).toBe("System message");
  });
});

describe("native frames", () => {
  it("parses native server frames through parseServerFrame", () => {
    const m = msg(1);
    expect(parseServerFrame(JSON.stringify({ type: "message", payload: m }))).toEqual({ type: "message", payload: m });
    const ack = { clientMsgId: "c", conversationId: 7, id: "1", seq: 1, timestamp: 5 };
    expect(parseServerFrame(JSON.stringify({ type: "ack", payload: ack }))).toEqual({ type: "ack", payload: ack });
    const err = parseServerFrame(JSON.stringify({ type: "error", payload: { code: "not_friends", message: "no", clientMsgId: "c" } }));
    expect(err).toEqual({ type: "error", payload: { code: "not_friends", message: "no", clientMsgId: "c" } });
    expect(parseServerFrame(JSON.stringify({ type: "message", payload: { seq: 1 } }))).toBeNull();
    const s = parseImFrame("syncState", { conversations: [{ id: 1, kind: "direct", name: "b", lastSeq: 3, readSeq: 1, unread: 2 }], inbox: [], inboxSeq: 0 });
    expect(s?.type).toBe("syncState");
    expect(parseImFrame("presence", { userId: 2, online: false, lastSeen: 10 })).toEqual({
      type: "presence",
      payload: { userId: 2, online: false, lastSeen: 10, platforms: [] },
    });
  });
});

describe("recall window", () => {
  const mine = (timestamp: number, extra: Partial<ImMessage> = {}) => msg(1, { timestamp, ...extra });

  it("offers Recall until a little before the server's window ends", () => {
    const sent = 1_000_000;
    const end = sent + recallWindowMs() - RECALL_MARGIN_MS;
    expect(recallDeadline(sent, 0)).toBe(end);
    expect(canRecall(sent, sent, 0)).toBe(true);
    expect(canRecall(sent, end - 1, 0)).toBe(true);
    expect(canRecall(sent, end, 0)).toBe(false);
    expect(canRecall(sent, sent + recallWindowMs() + 30_000, 0)).toBe(false);
  });

  it("keeps the closest estimate of the server's clock: an old ack given again does not set it back", () => {
    const clock = new ServerClock();
    clock.observe(1_000_000, 1_000_050); // arrived 50 ms after its stamp
    expect(clock.offset).toBe(-50);
    // A retried send gets its first ack again, stamped ten minutes ago.
    clock.observe(400_000, 1_000_100);
    expect(clock.offset).toBe(-50);
    clock.observe(1_000_090, 1_000_100); // a fresher, closer sample
    expect(clock.offset).toBe(-10);
  });

  it("goes by the server's clock: ours running late or early moves the deadline", () => {
    const clock = new ServerClock();
    expect(clock.offset).toBe(0);
    // An ack stamped 10 s ahead of our clock: the server's clock is ahead.
    clock.observe(1_010_000, 1_000_000);
    expect(clock.offset).toBe(10_000);
    expect(clock.now(2_000)).toBe(12_000);
    const sent = 1_010_000; // by the server's clock
    expect(recallDeadline(sent, clock.offset)).toBe(1_000_000 + recallWindowMs() - RECALL_MARGIN_MS);
    expect(canRecall(sent, 1_000_000 + recallWindowMs() - RECALL_MARGIN_MS, clock.offset)).toBe(false);
    clock.observe(Number.NaN, 5);
    expect(clock.offset).toBe(10_000);
  });

  it("says when the next Recall button has to go", () => {
    const now = 1_000_000;
    const ms = [
      mine(now - 100_000),
      mine(now - 30_000),
      mine(now - 200_000), // already past
      mine(now - 10_000, { recalled: true }),
      msg(2, { timestamp: now - 10_000, sender: bob }), // not ours
      msg(3, { timestamp: now - 5_000, kind: "system", content: "{}" }),
    ];
    expect(nextRecallExpiry(ms, alice.id, now, 0)).toBe(recallDeadline(now - 100_000, 0));
    expect(nextRecallExpiry(ms.slice(2), alice.id, now, 0)).toBeNull();
    expect(nextRecallExpiry(ms, undefined, now, 0)).toBeNull();
  });
});

describe("friendNotice", () => {
  it("tells the steps of a friend request, and nothing else", () => {
    const ann = { id: 2, username: "ann" };
    expect(friendNotice("friend_request", { from: ann, note: "hi" })).toBe("ann sent you a friend request");
    expect(friendNotice("friend_accepted", { by: ann })).toBe("ann accepted your friend request");
    expect(friendNotice("friend_rejected", { by: ann })).toBe("ann declined your friend request");
    expect(friendNotice("friend_rejected", { by: "ann" })).toBeNull();
    expect(friendNotice("friend_removed", { by: ann })).toBeNull();
  });
});

describe("helpers", () => {
  it("counts readers other than the sender", () => {
    const r = new Map([
      [1, 10],
      [2, 5],
      [3, 12],
    ]);
    expect(readByCount(r, 10, 1)).toBe(1);
    expect(readByCount(r, 5, 9)).toBe(3);
  });

  it("shows the furthest any other member got: Read, then Delivered, then Sent", () => {
    const me = 1;
    const none = new Map<number, number>();
    const bobRead3 = new Map([[2, 3]]);
    const bobGot5 = new Map([[2, 5]]);
    expect(receiptText("direct", 4, me, none, none)).toBe("Sent");
    expect(receiptText("direct", 4, me, none, bobGot5)).toBe("Delivered");
    expect(receiptText("direct", 3, me, bobRead3, bobGot5)).toBe("Read");
    expect(receiptText("direct", 6, me, bobRead3, bobGot5)).toBe("Sent");
    const group = new Map([[2, 5], [3, 9], [me, 9]]);
    expect(receiptText("group", 4, me, new Map([[2, 4]]), group)).toBe("Read by 1");
    expect(receiptText("group", 6, me, none, group)).toBe("Delivered to 1");
    // Reading counts as receiving, even before a delivery report arrives.
    expect(receiptText("group", 6, me, new Map([[4, 6]]), group)).toBe("Read by 1");
  });

  describe("receipt detail (who read a group message)", () => {
    const me = 1;
    // Named out of order on purpose; 7 has no known name.
    const who = new Map([
      [1, "me"],
      [2, "bob"],
      [3, "Carol"],
      [4, "alice"],
      [5, "dave"],
      [6, "Eve"],
    ]);
    const nameOf = (id: number) => who.get(id);
    const members = [1, 2, 3, 4, 5, 6, 7];
    // Everyone's position is known (the member list gives one for each other member).
    const read = new Map([
      [2, 10],
      [3, 4],
      [4, 12],
      [5, 3],
      [6, 3],
      [7, 11],
    ]);
    const delivered = new Map([
      [2, 10],
      [3, 10],
      [4, 12],
      [5, 3],
      [6, 9],
      [7, 11],
    ]);

    it("names who read, who only received and who has neither, sorted, never the sender", () => {
      const d = receiptDetail(9, me, new Map([...read, [me, 12]]), new Map([...delivered, [me, 12]]), { nameOf, members });
      expect(d).toEqual({ read: ["alice", "bob", "user #7"], delivered: ["Carol", "Eve"], notYet: ["dave"] });
      expect(receiptDetailText(d)).toBe("Read by alice, bob, user #7 · Delivered to Carol, Eve · Not yet: dave");
      expect(receiptSummary(d)).toBe("Read by 3");
      // Later: fewer got there.
      const later = receiptDetail(11, me, read, delivered, { nameOf, members });
      expect(later).toEqual({ read: ["alice", "user #7"], delivered: [], notYet: ["bob", "Carol", "dave", "Eve"] });
      expect(receiptDetailText(receiptDetail(13, me, read, delivered, { nameOf, members }))).toBe("Not yet: alice, bob, Carol, dave, Eve, user #7");
      expect(receiptSummary(receiptDetail(13, me, read, delivered, { nameOf, members }))).toBe("Sent");
    });

    it("agrees with the count shown in a group", () => {
      for (const seq of [1, 3, 4, 9, 10, 11, 12, 13]) {
        const d = receiptDetail(seq, me, read, delivered, { nameOf, members });
        expect(receiptSummary(d)).toBe(receiptText("group", seq, me, read, delivered));
      }
      // Reading counts as receiving even before the delivery report.
      const d = receiptDetail(5, me, new Map([[2, 5]]), new Map(), { nameOf });
      expect(d.read).toEqual(["bob"]);
      expect(d.delivered).toEqual([]);
    });

    it("is stable: same names keep one order (by id), whatever the order of the maps", () => {
      const twins = (id: number) => (id === 2 || id === 3 ? "sam" : id === 4 ? "Sam" : undefined);
      const a = receiptDetail(1, me, new Map([[3, 5], [4, 5], [2, 5], [9, 5]]), new Map(), { nameOf: twins });
      const b = receiptDetail(1, me, new Map([[9, 5], [2, 5], [4, 5], [3, 5]]), new Map(), { nameOf: twins });
      expect(a).toEqual(b);
      expect(a.read).toEqual(["Sam", "sam", "sam", "user #9"]);
      // Numbers in names sort as numbers.
      const n = receiptDetail(1, me, new Map([[10, 1], [2, 1]]), new Map(), { nameOf: () => undefined });
      expect(n.read).toEqual(["user #2", "user #10"]);
    });

    it("says nothing it does not know", () => {
      // No member list: nobody is said to be waiting.
      const noMembers = receiptDetail(9, me, read, delivered, { nameOf });
      expect(noMembers.notYet).toBeNull();
      expect(receiptDetailText(noMembers)).toBe("Read by alice, bob, user #7 · Delivered to Carol, Eve");
      // A member whose position is not known (hidden, or not fetched yet) is not "not yet".
      const hidden = receiptDetail(9, me, new Map([[2, 10]]), new Map([[2, 10]]), { nameOf, members });
      expect(hidden).toEqual({ read: ["bob"], delivered: [], notYet: [] });
      // A group too big for delivery reports: only who read.
      const big = receiptDetail(9, me, read, delivered, { nameOf, members, deliveryKept: false });
      expect(big).toEqual({ read: ["alice", "bob", "user #7"], delivered: [], notYet: null });
      expect(receiptDetailText(big)).toBe("Read by alice, bob, user #7");
      expect(receiptSummary(receiptDetail(11, me, new Map(), delivered, { nameOf, members, deliveryKept: false }))).toBe("Sent");
      // Nothing at all.
      expect(receiptDetailText(receiptDetail(9, me, new Map(), new Map(), { nameOf }))).toBe("Not read by anyone yet");
    });

    it("leaves out who joined after the message (their position starts past it)", () => {
      const log = new ConversationLog(0);
      log.addAll([
        sys(1, { event: "created", members: [1, 2] }),
        msg(2, { sender: { id: 1, username: "me" } }),
        sys(3, { event: "joined", userIds: [3, 4], by: 1 }),
        msg(4, { sender: { id: 1, username: "me" } }),
        sys(5, { event: "left", userId: 4 }),
        sys(6, { event: "joined", userIds: [4] }),
        sys(7, { event: "joined", userIds: "nonsense" }),
      ]);
      const joins = lastJoins(log.messages());
      expect(joins).toEqual(new Map([[3, 3], [4, 6]]));
      // Remembered for the same array; a changed log is looked at afresh.
      expect(lastJoins(log.messages())).toBe(joins);
      log.add(sys(8, { event: "joined", userIds: [5] }));
      expect(lastJoins(log.messages()).get(5)).toBe(8);

      const positions = new Map([[2, 6], [3, 6], [4, 6]]);
      const opts = { nameOf, members: [1, 2, 3, 4], joinedAt: joins };
      expect(receiptDetail(2, me, positions, positions, opts)).toEqual({ read: ["bob"], delivered: [], notYet: [] });
      // Carol joined at 3, before message 4; alice left and joined again at 6.
      expect(receiptDetail(4, me, positions, positions, opts)).toEqual({ read: ["bob", "Carol"], delivered: [], notYet: [] });
      expect(receiptDetail(4, me, new Map([[3, 3]]), new Map([[3, 3]]), opts)).toEqual({ read: [], delivered: [], notYet: ["Carol"] });
    });
  });

  it("parses delivery and profile frames, and refuses malformed ones", () => {
    expect(parseImFrame("delivery", { conversationId: 4, userId: 2, seq: 7, extra: 1 })).toEqual({ type: "delivery", payload: { conversationId: 4, userId: 2, seq: 7 } });
    expect(parseImFrame("delivery", { conversationId: 4, userId: 2 })).toBeNull();
    expect(parseImFrame("profile", { userId: 2, username: "bea", avatar: "ab12" })).toEqual({ type: "profile", payload: { userId: 2, username: "bea", avatar: "ab12" } });
    expect(parseImFrame("profile", { userId: 2, username: "bea", avatar: null })?.payload).toMatchObject({ avatar: null });
    expect(parseImFrame("profile", { userId: "2", username: "bea" })).toBeNull();
  });
  it("formats presence", () => {
    expect(presenceText({ userId: 1, online: true, platforms: ["web"] })).toBe("online");
    expect(presenceText({ userId: 1, online: false, lastSeen: 0, platforms: [] })).toBe("offline");
    expect(presenceText({ userId: 1, online: false, lastSeen: 1000, platforms: [] }, 1000 + 5 * 60_000)).toBe("last seen 5 min ago");
    // Losing a group says who and which.
    expect(goneText("group_removed", { conversationId: 9, name: "Team", by: bob }, 1)).toBe('bob removed you from "Team"');
    expect(goneText("group_dissolved", { conversationId: 9, name: "Team", by: bob }, 1)).toBe('bob dissolved "Team"');
    expect(goneText("group_dissolved", { conversationId: 9, name: "Team", by: alice }, 1)).toBeNull();
    expect(goneText("group_removed", { conversationId: 9 }, 1)).toBe("You were removed from a group");
    expect(goneText("friend_added", {}, 1)).toBeNull();
    // While we are offline ourselves, the last state heard is not shown as current.
    expect(presenceShown({ userId: 1, online: true, platforms: ["web"] }, true)).toEqual({ online: true, text: "online" });
    expect(presenceShown({ userId: 1, online: true, platforms: ["web"] }, false)).toEqual({ online: false, text: "status unknown while offline" });
  });
  it("knows which lists an inbox event affects", () => {
    expect(eventAffects("friend_request")).toEqual({ friends: true, conversations: false });
    expect(eventAffects("group_added")).toEqual({ friends: false, conversations: true });
  });
});
