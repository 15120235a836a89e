import { describe, expect, it } from "vitest";
import { compareIds, parseId } from "./ids";

describe("parseId", () => {
  it("parses ms-n", () => {
    expect(parseId("1700000000000-3")).toEqual({ ms: 1700000000000n, n: 3n });
  });
  it("rejects malformed ids", () => {
    expect(parseId("abc")).toBeNull();
    expect(parseId("1-")).toBeNull();
    expect(parseId("-1-2")).toBeNull();
  });
});

describe("compareIds", () => {
  it("compares numerically, not as strings", () => {
    expect(compareIds("9-0", "10-0")).toBeLessThan(0);
    expect(compareIds("10-0", "9-0")).toBeGreaterThan(0);
    expect(compareIds("5-9", "5-10")).toBeLessThan(0);
    expect(compareIds("999999999999-99", "1000000000000-0")).toBeLessThan(0);
  });
  it("orders by ms first, then n", () => {
    expect(compareIds("2-0", "1-100")).toBeGreaterThan(0);
    expect(compareIds("1-1", "1-1")).toBe(0);
  });
  it("handles values beyond 2^53", () => {
    expect(compareIds("9007199254740993-0", "9007199254740992-0")).toBeGreaterThan(0);
  });
  it("is a valid sort comparator", () => {
    const ids = ["10-1", "9-5", "10-0", "100-0", "9-10"];
    expect([...ids].sort(compareIds)).toEqual(["9-5", "9-10", "10-0", "10-1", "100-0"]);
  });
});
