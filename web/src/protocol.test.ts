import { describe, expect, it } from "vitest";
import { encodeClientFrame, errorFrameText, parseServerFrame, validateContent } from "./protocol";

const msg = { id: "1-0", content: "hi", user: { id: 1, username: "alice" }, timestamp: 1 };

describe("parseServerFrame", () => {
  it("parses hello", () => {
    const f = parseServerFrame(
      JSON.stringify({
        type: "hello",
        payload: { me: { id: 1, username: "alice" }, rooms: [{ id: "r", name: "General", messages: [msg], hasMoreMessages: true }] },
      }),
    );
    expect(f?.type).toBe("hello");
    if (f?.type === "hello") {
      expect(f.payload.rooms[0].messages[0].content).toBe("hi");
      expect(f.payload.rooms[0].hasMoreMessages).toBe(true);
    }
  });
  it("parses serverMessages, roomHistory and error", () => {
    expect(parseServerFrame(JSON.stringify({ type: "serverMessages", payload: { roomId: "r", messages: [msg] } }))?.type).toBe(
      "serverMessages",
    );
    const h = parseServerFrame(JSON.stringify({ type: "roomHistory", payload: { roomId: "r", messages: [], hasMoreMessages: false } }));
    expect(h).toEqual({ type: "roomHistory", payload: { roomId: "r", messages: [], hasMoreMessages: false } });
    expect(parseServerFrame(JSON.stringify({ type: "error", payload: { code: "X", message: "bad" } }))).toEqual({
      type: "error",
      payload: { code: "X", message: "bad" },
    });
  });
  it("rejects malformed frames", () => {
    expect(parseServerFrame("not json")).toBeNull();
    expect(parseServerFrame("[]")).toBeNull();
    expect(parseServerFrame(JSON.stringify({ type: "unknown", payload: {} }))).toBeNull();
    expect(parseServerFrame(JSON.stringify({ type: "serverMessages", payload: { roomId: "r", messages: [{ id: 1 }] } }))).toBeNull();
    expect(parseServerFrame(JSON.stringify({ type: "hello", payload: { rooms: [] } }))).toBeNull();
  });
});

describe("encodeClientFrame", () => {
  it("encodes {type,payload}", () => {
    expect(JSON.parse(encodeClientFrame({ type: "requestRoomHistory", payload: { roomId: "r", firstMessageId: "5-1" } }))).toEqual({
      type: "requestRoomHistory",
      payload: { roomId: "r", firstMessageId: "5-1" },
    });
  });
});

describe("validateContent", () => {
  it("rejects empty and whitespace", () => {
    expect(validateContent("").ok).toBe(false);
    expect(validateContent("  \n ").ok).toBe(false);
  });
  it("counts characters, not UTF-16 units", () => {
    expect(validateContent("😀".repeat(4000)).ok).toBe(true);
    expect(validateContent("a".repeat(4001)).ok).toBe(false);
  });
});

describe("rate limits", () => {
  it("keeps retryAfterMs and says how long to wait", () => {
    const f = parseServerFrame(
      JSON.stringify({ type: "error", payload: { code: "rate_limited", message: "too many messages", clientMsgId: "c1", retryAfterMs: 2300 } }),
    );
    expect(f).toEqual({ type: "error", payload: { code: "rate_limited", message: "too many messages", clientMsgId: "c1", retryAfterMs: 2300 } });
    if (f?.type !== "error") throw new Error("not an error frame");
    expect(errorFrameText(f.payload)).toBe("Sending too fast, retry in 3 s");
    expect(errorFrameText({ code: "rate_limited", message: "", retryAfterMs: 10 })).toBe("Sending too fast, retry in 1 s");
    expect(errorFrameText({ code: "not_friends", message: "you are not friends" })).toBe("you are not friends");
    expect(errorFrameText({ code: "internal", message: "" })).toBe("internal");
    const junk = parseServerFrame(JSON.stringify({ type: "error", payload: { code: "rate_limited", message: "x", retryAfterMs: "soon" } }));
    expect(junk).toEqual({ type: "error", payload: { code: "rate_limited", message: "x" } });
  });
});
