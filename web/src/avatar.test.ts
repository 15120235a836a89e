import { describe, expect, it } from "vitest";
import { avatarChanged, avatarUrl } from "./avatar";

describe("avatars", () => {
  it("are served per user, and a change made here skips the cache and replaces what is shown", () => {
    expect(avatarUrl(7)).toBe("/api/users/7/avatar");
    const shown = { src: avatarUrl(7) };
    const asked: string[] = [];
    const root = {
      querySelectorAll: (selector: string) => {
        asked.push(selector);
        return [shown];
      },
    } as unknown as ParentNode;
    avatarChanged(7, "0123abcd", root);
    expect(asked).toEqual(['img.avatar[data-avatar-of="7"]']);
    expect(avatarUrl(7)).toBe("/api/users/7/avatar?v=0123abcd");
    expect(shown.src).toBe("/api/users/7/avatar?v=0123abcd");
    expect(avatarUrl(8)).toBe("/api/users/8/avatar");
    avatarChanged(7, null, root);
    expect(avatarUrl(7)).toMatch(/^\/api\/users\/7\/avatar\?v=none-\d+$/);
    expect(shown.src).toBe(avatarUrl(7));
    // Told again (the server's `profile` frame after our own answer): nothing changes.
    const removed = avatarUrl(7);
    asked.length = 0;
    avatarChanged(7, null, root);
    expect(avatarUrl(7)).toBe(removed);
    avatarChanged(7, "0123abcd", root);
    avatarChanged(7, "0123abcd", root);
    expect(asked.length).toBe(1);
  });
});
