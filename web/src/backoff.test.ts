import { describe, expect, it } from "vitest";
import { Backoff, DEFAULT_BACKOFF, backoffDelay } from "./backoff";

describe("backoffDelay", () => {
  it("doubles from 500ms and caps at 30s without jitter", () => {
    const o = { ...DEFAULT_BACKOFF, jitter: 0 };
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8].map((a) => backoffDelay(a, o))).toEqual([
      500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
    expect(backoffDelay(1000, o)).toBe(30000);
  });
  it("keeps jittered delays within [d*(1-j), d]", () => {
    for (let a = 0; a < 10; a++) {
      const d = Math.min(30000, 500 * 2 ** a);
      expect(backoffDelay(a, DEFAULT_BACKOFF, () => 0)).toBe(d / 2);
      expect(backoffDelay(a, DEFAULT_BACKOFF, () => 1)).toBe(d);
      const mid = backoffDelay(a, DEFAULT_BACKOFF, Math.random);
      expect(mid).toBeGreaterThanOrEqual(d / 2);
      expect(mid).toBeLessThanOrEqual(d);
    }
  });
  it("treats negative attempts as 0", () => {
    expect(backoffDelay(-3, { ...DEFAULT_BACKOFF, jitter: 0 })).toBe(500);
  });
});

describe("Backoff", () => {
  it("grows and resets", () => {
    const b = new Backoff({ ...DEFAULT_BACKOFF, jitter: 0 });
    expect([b.next(), b.next(), b.next()]).toEqual([500, 1000, 2000]);
    b.reset();
    expect(b.next()).toBe(500);
  });
});
