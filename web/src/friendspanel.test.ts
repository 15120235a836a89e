import { describe, expect, it } from "vitest";
import { relationTo, type FriendLists } from "./friendspanel";

const u = (id: number) => ({ id, username: `user${id}` });
const request = (from: number, to: number) => ({ from: u(from), to: u(to), note: "", createdAt: 0 });

describe("relationTo (what a user found by name is offered)", () => {
  const lists: FriendLists = {
    friends: [u(2)],
    incoming: [request(3, 1)],
    outgoing: [request(1, 4)],
    blocked: [u(5)],
  };

  it("tells us, friends, both directions of a pending request, the blocked and strangers apart", () => {
    expect(relationTo(1, 1, lists)).toBe("self");
    expect(relationTo(2, 1, lists)).toBe("friend");
    // They asked us: Accept (another request would be refused as pending).
    expect(relationTo(3, 1, lists)).toBe("incoming");
    expect(relationTo(4, 1, lists)).toBe("outgoing");
    expect(relationTo(5, 1, lists)).toBe("blocked");
    expect(relationTo(6, 1, lists)).toBe("none");
  });
});
