/**
 * Web addresses in message text, as links: `linkSegments` (pure) splits a text into plain and
 * linked segments, `richText` builds them as text nodes and `<a>` elements (never as HTML).
 *
 * What counts as an address:
 *  - it starts with `http://` or `https://` (any case) not directly after an ASCII letter or
 *    digit, or with `www.` (linked as `https://`) not directly after a letter, a digit or a
 *    character that belongs in an address (`foo@www.x.com`, `x.www.y` are not links);
 *  - it ends at whitespace, at `<`, `>`, `"`, `` ` `` or `\`, and at any character of the CJK
 *    scripts, full-width forms, CJK and general punctuation (`，。！？、）】」“”…`), symbols and
 *    emoji: only ASCII and the letters of the alphabetic scripts (U+00C0 to U+1FFF) go on an
 *    address, so Chinese text may touch it on either side;
 *  - then, from its end, `.,;:!?'"*` and a `)` or `]` with no `(` or `[` to close in the address
 *    are left out, one at a time, so `(see https://x.com/a).` links `https://x.com/a` while
 *    `https://en.wikipedia.org/wiki/Rust_(programming_language)` keeps its parenthesis;
 *  - it must be at most `MAX_URL_LENGTH` characters, have a host, no user name or password, and
 *    pass `new URL()`; the href is that URL's `href`, so always `http:` or `https:`. Anything
 *    else stays plain text.
 *
 * The scan looks at each character a bounded number of times (no regular expression), so an
 * 8,000-character message of `(` or `http://` costs next to nothing.
 */
import { el } from "./dom";

export interface LinkSegment {
  /** The text exactly as typed: the segments' texts put together are the input. */
  text: string;
  /** Where the text links to (`http:` or `https:` only); absent for plain text. */
  href?: string;
}

/** Longer addresses stay plain text. */
export const MAX_URL_LENGTH = 2048;

/** What goes after a link's address. */
export const LINK_REL = "noopener noreferrer nofollow";

/** Left out at the end of an address: sentence punctuation and quotes. */
const TRAILING = new Set([".", ",", ";", ":", "!", "?", "'", '"', "*"]);

const isAsciiAlnum = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/** Can `c` (a UTF-16 code unit) be part of an address? */
function isUrlChar(c: number): boolean {
  if (c <= 0x20 || c === 0x7f) return false; // controls, space
  if (c < 0x7f) return c !== 0x3c && c !== 0x3e && c !== 0x22 && c !== 0x60 && c !== 0x5c; // < > " ` \
  // Letters of the alphabetic scripts (Latin, Greek, Cyrillic, ...), not ×, ÷ or their spaces;
  // everything from General Punctuation (U+2000) on, CJK and emoji included, ends an address.
  return c >= 0xc0 && c <= 0x1fff && c !== 0xd7 && c !== 0xf7 && c !== 0x1680 && c !== 0x180e;
}

/** Does `text` have `prefix` (lowercase ASCII) at `i`, in any case? */
function startsWithCi(text: string, i: number, prefix: string): boolean {
  if (i + prefix.length > text.length) return false;
  for (let k = 0; k < prefix.length; k++) {
    let c = text.charCodeAt(i + k);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== prefix.charCodeAt(k)) return false;
  }
  return true;
}

/** Before `www.`: these mean it is inside something else (an address, an e-mail address). */
const NOT_BEFORE_WWW = new Set([".", "-", "_", "@", "/", "%", "+", "~", "=", "&", "#", "?", ":"]);

/** The length of the scheme (or `www.`) of an address starting at `i`, or 0 when none does. */
function startAt(text: string, i: number): number {
  const c = text.charCodeAt(i) | 0x20;
  const before = i > 0 ? text.charCodeAt(i - 1) : -1;
  if (before >= 0 && isAsciiAlnum(before)) return 0;
  let len = 0;
  if (c === 0x68 /* h */) {
    if (startsWithCi(text, i, "https://")) len = 8;
    else if (startsWithCi(text, i, "http://")) len = 7;
  } else if (c === 0x77 /* w */ && startsWithCi(text, i, "www.") && !(i > 0 && NOT_BEFORE_WWW.has(text[i - 1]))) {
    len = 4;
  }
  if (len === 0 || i + len >= text.length) return 0;
  // A host must follow: a letter or digit, or `[` (IPv6).
  const h = text.charCodeAt(i + len);
  return isAsciiAlnum(h) || (h === 0x5b && len !== 4) || (h >= 0xc0 && isUrlChar(h)) ? len : 0;
}

/** The end of the address whose characters run over `[start, end)`, trailing punctuation left out. */
function trimEnd(text: string, start: number, end: number): number {
  let openParen = 0;
  let closeParen = 0;
  let openBracket = 0;
  let closeBracket = 0;
  for (let k = start; k < end; k++) {
    switch (text.charCodeAt(k)) {
      case 0x28:
        openParen++;
        break;
      case 0x29:
        closeParen++;
        break;
      case 0x5b:
        openBracket++;
        break;
      case 0x5d:
        closeBracket++;
        break;
    }
  }
  while (end > start) {
    const last = text[end - 1];
    if (TRAILING.has(last)) end--;
    else if (last === ")" && closeParen > openParen) {
      closeParen--;
      end--;
    } else if (last === "]" && closeBracket > openBracket) {
      closeBracket--;
      end--;
    } else break;
  }
  return end;
}

/** The href for `raw` (an address as typed, `www.` ones without a scheme), or null when it is not one. */
function hrefFor(raw: string, www: boolean): string | null {
  if (raw.length > MAX_URL_LENGTH) return null;
  let url: URL;
  try {
    url = new URL(www ? `https://${raw}` : raw);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if (!url.hostname || url.username || url.password) return null;
  // `www.` alone, or `www.example`, is not an address: it needs a dot after the `www.`.
  if (www && !/^www\.[^.]+\.[^.]/i.test(url.hostname)) return null;
  return url.href;
}

/**
 * `text` as plain and linked segments, in order; adjacent plain segments are merged, so a text
 * with no address is one plain segment (and "" none).
 */
export function linkSegments(text: string): LinkSegment[] {
  const out: LinkSegment[] = [];
  let plainFrom = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const len = startAt(text, i);
    if (len === 0) {
      i++;
      continue;
    }
    let runEnd = i + len;
    while (runEnd < n && isUrlChar(text.charCodeAt(runEnd))) runEnd++;
    const end = trimEnd(text, i, runEnd);
    const href = end > i + len ? hrefFor(text.slice(i, end), len === 4) : null;
    if (href === null) {
      // Not an address: none starts inside it either (each character is looked at once).
      i = runEnd;
      continue;
    }
    if (i > plainFrom) out.push({ text: text.slice(plainFrom, i) });
    out.push({ text: text.slice(i, end), href });
    // What was trimmed is punctuation: scanning on from there starts no address inside it.
    i = plainFrom = end;
  }
  if (plainFrom < n) out.push({ text: text.slice(plainFrom) });
  return out;
}

/**
 * `text` as nodes: text nodes, and links that open in a new tab. A link clicked or tapped loses
 * the focus afterwards, as the message actions do, so that it does not keep its message's
 * actions shown (`.message:focus-within`); one reached with Tab keeps it.
 */
export function richText(text: string): Node[] {
  return linkSegments(text).map((s) => {
    if (s.href === undefined) return document.createTextNode(s.text);
    const a = el("a", { href: s.href, target: "_blank", rel: LINK_REL, class: "msg-link" }, s.text);
    a.addEventListener("click", (ev) => {
      // "" for a click made with the keyboard (Enter).
      if (!(ev as PointerEvent).pointerType) return;
      setTimeout(() => {
        if (document.activeElement === a) a.blur();
      });
    });
    return a;
  });
}
