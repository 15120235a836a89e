import { describe, expect, it } from "vitest";
import { recordButtonLabel } from "./recorder";

describe("the record button", () => {
  it("says what a press does now", () => {
    expect(recordButtonLabel(false)).toBe("Record a voice message");
    expect(recordButtonLabel(true)).toBe("Stop and send the voice message");
  });
});
