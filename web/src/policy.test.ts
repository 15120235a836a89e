import { afterEach, describe, expect, it } from "vitest";
import { applyPolicy, DEFAULT_POLICY, durationText, policy } from "./policy";
import { validateContent } from "./protocol";
import { canRecall, deliveryReceiptsMaxMembers, RECALL_MARGIN_MS, recallWindowMs } from "./im";

describe("server policy", () => {
  afterEach(() => {
    applyPolicy({});
  });

  it("starts at the server's defaults", () => {
    expect(policy()).toEqual(DEFAULT_POLICY);
    expect(recallWindowMs()).toBe(120_000);
  });

  it("takes what the server says, and what the client checks follows", () => {
    applyPolicy({ maxContentChars: 10, recallWindowSecs: 45, deliveryReceiptsMaxMembers: 5, directMessages: "anyone" });
    expect(policy().directMessages).toBe("anyone");
    expect(validateContent("0123456789")).toEqual({ ok: true, content: "0123456789" });
    expect(validateContent("0123456789a")).toEqual({ ok: false, error: "Message is too long (11/10 characters)" });
    expect(recallWindowMs()).toBe(45_000);
    expect(canRecall(0, 45_000 - RECALL_MARGIN_MS - 1, 0)).toBe(true);
    expect(canRecall(0, 45_000 - RECALL_MARGIN_MS, 0)).toBe(false);
    expect(deliveryReceiptsMaxMembers()).toBe(5);
  });

  it("keeps the default for what is missing, mistyped or absurd", () => {
    applyPolicy({ maxContentChars: "9", recallWindowSecs: -1, maxPage: 1.5, groupMemberLimit: 1e12, directMessages: "everyone", maxNoteChars: 0 });
    expect(policy()).toEqual({ ...DEFAULT_POLICY, maxNoteChars: 0 });
    applyPolicy(null);
    expect(policy()).toEqual(DEFAULT_POLICY);
    applyPolicy("nonsense");
    expect(policy()).toEqual(DEFAULT_POLICY);
  });

  it("says durations in words", () => {
    expect(durationText(120)).toBe("2 minutes");
    expect(durationText(60)).toBe("1 minute");
    expect(durationText(45)).toBe("45 seconds");
    expect(durationText(90)).toBe("90 seconds");
    expect(durationText(7200)).toBe("2 hours");
    expect(durationText(1)).toBe("1 second");
  });
});
