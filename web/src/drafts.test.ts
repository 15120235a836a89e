import { describe, expect, it } from "vitest";
import { DRAFTS_MAX, DRAFT_CHARS_MAX, Drafts, conversationDraftKey, roomDraftKey } from "./drafts";

describe("Drafts", () => {
  it("keeps a draft per conversation and room, and forgets it once sent or emptied", () => {
    const d = new Drafts();
    const saved: unknown[] = [];
    d.onChange = (s) => saved.push(s);
    d.set(conversationDraftKey(1), "half written");
    d.set(roomDraftKey("general"), "hello room");
    expect(d.get("c:1")).toBe("half written");
    expect(d.get("r:general")).toBe("hello room");
    expect(d.get("c:2")).toBe("");
    d.clear("c:1");
    expect(d.get("c:1")).toBe("");
    d.set("r:general", "   \n");
    expect(d.get("r:general")).toBe("");
    expect(saved.at(-1)).toEqual([]);
  });

  it("tells of a change only when there is one", () => {
    const d = new Drafts();
    let n = 0;
    d.onChange = () => n++;
    d.set("c:1", "a");
    d.set("c:1", "a");
    d.clear("c:2");
    expect(n).toBe(1);
  });

  it("is bounded: the least recently typed draft goes first, and long text is cut", () => {
    const d = new Drafts();
    for (let i = 0; i < DRAFTS_MAX; i++) d.set(`c:${i}`, `draft ${i}`);
    d.set("c:0", "typed again");
    d.set("c:new", "one more");
    expect(d.toJSON()).toHaveLength(DRAFTS_MAX);
    expect(d.get("c:1")).toBe("");
    expect(d.get("c:0")).toBe("typed again");
    d.set("c:long", "x".repeat(DRAFT_CHARS_MAX + 10));
    expect(d.get("c:long")).toHaveLength(DRAFT_CHARS_MAX);
    // Never half a surrogate pair.
    d.set("c:emoji", "😀".repeat(DRAFT_CHARS_MAX));
    expect([...d.get("c:emoji")]).toHaveLength(DRAFT_CHARS_MAX);
  });

  it("survives a reload (JSON), skipping what is malformed and holding the bounds", () => {
    const d = new Drafts();
    d.set("c:1", "one");
    d.set("r:general", "two");
    expect(Drafts.fromJSON(JSON.parse(JSON.stringify(d.toJSON()))).toJSON()).toEqual([
      ["c:1", "one"],
      ["r:general", "two"],
    ]);
    expect(Drafts.fromJSON(null).toJSON()).toEqual([]);
    expect(Drafts.fromJSON({ "c:1": "x" }).toJSON()).toEqual([]);
    expect(Drafts.fromJSON([["c:1", 5], [7, "x"], ["c:2", " "], "c:3", ["c:4", "ok"]]).toJSON()).toEqual([["c:4", "ok"]]);
    const many = Array.from({ length: DRAFTS_MAX + 5 }, (_, i) => [`c:${i}`, "x".repeat(DRAFT_CHARS_MAX + 1)]);
    const back = Drafts.fromJSON(many);
    expect(back.toJSON()).toHaveLength(DRAFTS_MAX);
    expect(back.get(`c:${DRAFTS_MAX + 4}`)).toHaveLength(DRAFT_CHARS_MAX);
  });
});
