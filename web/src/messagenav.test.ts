import { describe, expect, it } from "vitest";
import { stepIndex, tapOutcome } from "./messagenav";

describe("tapOutcome", () => {
  const tap = { seq: 5, selected: null, onAction: false, onControl: false, touch: true };

  it("a tap on a message selects it; another tap unselects it; a tap elsewhere moves the selection", () => {
    expect(tapOutcome(tap)).toEqual({ selected: 5, block: false });
    expect(tapOutcome({ ...tap, selected: 5 })).toEqual({ selected: null, block: false });
    expect(tapOutcome({ ...tap, selected: 3 })).toEqual({ selected: 5, block: false });
  });

  it("a tap on an action of a message that was not selected only selects it", () => {
    expect(tapOutcome({ ...tap, onAction: true })).toEqual({ selected: 5, block: true });
    expect(tapOutcome({ ...tap, onAction: true, selected: 3 })).toEqual({ selected: 5, block: true });
  });

  it("a tap on an action of the selected message acts (and the selection goes)", () => {
    expect(tapOutcome({ ...tap, onAction: true, selected: 5 })).toEqual({ selected: null, block: false });
  });

  it("a mouse click or the keyboard acts at once (the actions were shown by hover or focus)", () => {
    expect(tapOutcome({ ...tap, touch: false, onAction: true })).toEqual({ selected: null, block: false });
  });

  it("a tap on a link, a quote or a player inside leaves the selection alone", () => {
    expect(tapOutcome({ ...tap, onControl: true })).toEqual({ selected: null, block: false });
    expect(tapOutcome({ ...tap, onControl: true, selected: 5 })).toEqual({ selected: 5, block: false });
  });
});

describe("stepIndex", () => {
  it("moves up and down among the messages, and down past the newest back out", () => {
    expect(stepIndex(-1, 3, "ArrowUp")).toBe(2);
    expect(stepIndex(-1, 3, "ArrowDown")).toBe(2);
    expect(stepIndex(2, 3, "ArrowUp")).toBe(1);
    expect(stepIndex(0, 3, "ArrowUp")).toBe(0);
    expect(stepIndex(1, 3, "ArrowDown")).toBe(2);
    expect(stepIndex(2, 3, "ArrowDown")).toBe("after");
    expect(stepIndex(1, 3, "Home")).toBe(0);
    expect(stepIndex(1, 3, "End")).toBe(2);
  });

  it("does nothing with other keys or no messages", () => {
    expect(stepIndex(1, 3, "Tab")).toBeNull();
    expect(stepIndex(1, 3, "Enter")).toBeNull();
    expect(stepIndex(-1, 0, "ArrowUp")).toBeNull();
  });
});
