/**
 * Avatars. Every user has a picture at `/api/users/{id}/avatar`: the image they chose, or one
 * the server draws from their name. The server lets browsers keep it for a minute; after a
 * change made here, the new version goes into the URL so this tab shows it at once.
 */
import { el } from "./dom";

const versions = new Map<number, string>();

export function avatarUrl(userId: number): string {
  const v = versions.get(userId);
  return `/api/users/${userId}/avatar` + (v ? `?v=${encodeURIComponent(v)}` : "");
}

/** A user's picture, next to their name (so it says nothing to screen readers itself). */
export function avatarImg(userId: number, size: "small" | "large" = "small"): HTMLImageElement {
  return el("img", {
    class: `avatar ${size}`,
    src: avatarUrl(userId),
    alt: "",
    "data-avatar-of": String(userId),
    "data-testid": "avatar",
    loading: "lazy",
    decoding: "async",
    draggable: "false",
  });
}

/**
 * `userId`'s avatar changed to `version` (a file id, or null for the generated picture):
 * later pictures skip the browser's cache, and the ones on screen now are replaced.
 */
export function avatarChanged(userId: number, version: string | null, root: ParentNode = document): void {
  // Told twice (by the answer to our own change and by the server's `profile` frame): once.
  const now = versions.get(userId);
  if (version === null ? now?.startsWith("none-") : now === version) return;
  versions.set(userId, version ?? `none-${Date.now()}`);
  for (const img of root.querySelectorAll<HTMLImageElement>(`img.avatar[data-avatar-of="${userId}"]`)) img.src = avatarUrl(userId);
}
