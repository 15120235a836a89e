import { describe, expect, it } from "vitest";
import { parseRoute, routeHash, sameRoute } from "./route";

describe("routes (URL hash)", () => {
  it("reads a conversation or a room", () => {
    expect(parseRoute("#/c/123")).toEqual({ kind: "conversation", id: 123 });
    expect(parseRoute("#/r/general")).toEqual({ kind: "room", id: "general" });
    expect(parseRoute("#/r/help.and-feedback_2")).toEqual({ kind: "room", id: "help.and-feedback_2" });
  });

  it("ignores anything else", () => {
    for (const h of ["", "#", "#/", "#/c/", "#/c/0", "#/c/012", "#/c/-1", "#/c/1.5", "#/c/12x", "#/c/99999999999999999", "#/r/", "#/r/a b", "#/r/%ZZ", "#/r/x/y", "#/x/1", "#c/1"]) {
      expect(parseRoute(h), h).toBeNull();
    }
    expect(parseRoute(`#/r/${"a".repeat(65)}`)).toBeNull();
  });

  it("writes what it reads", () => {
    for (const r of [{ kind: "conversation", id: 7 } as const, { kind: "room", id: "random" } as const]) {
      expect(parseRoute(routeHash(r))).toEqual(r);
    }
    expect(routeHash({ kind: "conversation", id: 42 })).toBe("#/c/42");
    expect(routeHash({ kind: "room", id: "general" })).toBe("#/r/general");
  });

  it("compares places", () => {
    expect(sameRoute({ kind: "conversation", id: 1 }, { kind: "conversation", id: 1 })).toBe(true);
    expect(sameRoute({ kind: "conversation", id: 1 }, { kind: "conversation", id: 2 })).toBe(false);
    expect(sameRoute({ kind: "room", id: "1" }, { kind: "conversation", id: 1 })).toBe(false);
    expect(sameRoute(null, null)).toBe(false);
  });
});
