/** Message search: wire types and snippet highlighting (pure, no DOM). */
import type { ImMessage } from "./im";

export interface Snippet {
  /** Plain text: render it as text, never as HTML. */
  text: string;
  /** `[start, end)` ranges in UTF-16 code units (JavaScript string indices). */
  highlights: [number, number][];
}

export interface SearchHit {
  message: ImMessage;
  /** The room's id, for hits in rooms. */
  room?: string;
  snippet: Snippet;
}

export interface SearchPage {
  hits: SearchHit[];
  hasMore: boolean;
}

export interface MessageSearch {
  q: string;
  conversation?: number;
  sender?: number;
  from?: number;
  to?: number;
  limit?: number;
  offset?: number;
}

export interface Segment {
  text: string;
  mark: boolean;
}

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/**
 * Split `text` into plain and marked segments by the highlight ranges. Ranges are clamped to the
 * text, widened so that they never split a surrogate pair, and those that are empty, reversed,
 * malformed or overlap an earlier one are skipped; adjacent segments never share a kind.
 */
export function snippetSegments(text: string, highlights: readonly (readonly number[])[]): Segment[] {
  const ranges: [number, number][] = [];
  for (const r of highlights) {
    if (!Array.isArray(r) || r.length !== 2 || !Number.isInteger(r[0]) || !Number.isInteger(r[1])) continue;
    let start = Math.max(0, Math.min(text.length, r[0]));
    let end = Math.max(0, Math.min(text.length, r[1]));
    if (start > 0 && isLow(text.charCodeAt(start)) && isHigh(text.charCodeAt(start - 1))) start--;
    if (end < text.length && end > 0 && isLow(text.charCodeAt(end)) && isHigh(text.charCodeAt(end - 1))) end++;
    if (end > start) ranges.push([start, end]);
  }
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: Segment[] = [];
  const push = (s: string, mark: boolean) => {
    if (!s) return;
    const last = out[out.length - 1];
    if (last && last.mark === mark) last.text += s;
    else out.push({ text: s, mark });
  };
  let at = 0;
  for (const [start, end] of ranges) {
    if (start < at) continue; // overlaps the previous range
    push(text.slice(at, start), false);
    push(text.slice(start, end), true);
    at = end;
  }
  push(text.slice(at), false);
  return out;
}

/** What to say instead of searching for a query with no word in it (only punctuation or emoji), which the server refuses. */
export const NO_WORDS = "Type a word to search for.";

/** Whether `q` has something to search for: a letter or a digit (of any script). */
export function hasWords(q: string): boolean {
  return /[\p{L}\p{N}]/u.test(q);
}

/** The query string of `GET /api/search/messages` (only the parameters that are set). */
export function searchQueryString(s: MessageSearch): string {
  const p = new URLSearchParams({ q: s.q });
  for (const k of ["conversation", "sender", "from", "to", "limit", "offset"] as const) {
    const v = s[k];
    if (v !== undefined && Number.isFinite(v)) p.set(k, String(v));
  }
  return p.toString();
}
