/**
 * What was typed but not sent, per conversation or room (`c:123`, `r:general`), kept across
 * reloads. Bounded: at most DRAFTS_MAX drafts (the least recently typed one goes first), each
 * cut to DRAFT_CHARS_MAX characters. Pure: the caller stores `toJSON()` (localStorage).
 */

export const DRAFTS_MAX = 30;
export const DRAFT_CHARS_MAX = 8_000;

export const conversationDraftKey = (id: number) => `c:${id}`;
export const roomDraftKey = (id: string) => `r:${id}`;

export class Drafts {
  /** Oldest first (a draft typed in again moves to the end). */
  private items = new Map<string, string>();
  /** Told after every change, with what to store. */
  onChange: ((saved: [string, string][]) => void) | null = null;

  get(key: string): string {
    return this.items.get(key) ?? "";
  }

  /** Keeps `text` as the draft of `key`; blank text removes it. */
  set(key: string, text: string): void {
    const kept = text.trim() === "" ? "" : cut(text);
    if (this.get(key) === kept) return;
    this.items.delete(key);
    if (kept !== "") this.items.set(key, kept);
    while (this.items.size > DRAFTS_MAX) this.items.delete(this.items.keys().next().value as string);
    this.onChange?.(this.toJSON());
  }

  /** Sent: the draft is gone. */
  clear(key: string): void {
    this.set(key, "");
  }

  toJSON(): [string, string][] {
    return [...this.items];
  }

  /** Drafts stored earlier; anything malformed is skipped, and the bounds still hold. */
  static fromJSON(v: unknown): Drafts {
    const d = new Drafts();
    if (!Array.isArray(v)) return d;
    for (const e of v.slice(-DRAFTS_MAX)) {
      if (Array.isArray(e) && typeof e[0] === "string" && e[0].length <= 80 && typeof e[1] === "string" && e[1].trim() !== "") {
        d.items.delete(e[0]);
        d.items.set(e[0], cut(e[1]));
      }
    }
    return d;
  }
}

/** At most DRAFT_CHARS_MAX characters, never splitting a surrogate pair. */
function cut(text: string): string {
  if (text.length <= DRAFT_CHARS_MAX) return text;
  const chars = Array.from(text);
  return chars.length <= DRAFT_CHARS_MAX ? text : chars.slice(0, DRAFT_CHARS_MAX).join("");
}
