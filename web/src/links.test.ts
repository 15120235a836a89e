import { afterEach, describe, expect, it, vi } from "vitest";
import { LINK_REL, linkSegments, MAX_URL_LENGTH, richText, type LinkSegment } from "./links";

/** The linked texts and hrefs only. */
const links = (text: string) => linkSegments(text).filter((s) => s.href !== undefined);
const joined = (segs: LinkSegment[]) => segs.map((s) => s.text).join("");

describe("linkSegments (web addresses in message text)", () => {
  it("leaves plain text alone, as one segment", () => {
    expect(linkSegments("")).toEqual([]);
    expect(linkSegments("hello there")).toEqual([{ text: "hello there" }]);
    expect(linkSegments("你好，世界")).toEqual([{ text: "你好，世界" }]);
    // Words that merely contain the letters.
    expect(linkSegments("http https www. http:// https://  www.x httpfoo")).toEqual([{ text: "http https www. http:// https://  www.x httpfoo" }]);
  });

  it("links one address, keeping the text around it", () => {
    expect(linkSegments("see https://example.com/a?b=1#c for more")).toEqual([
      { text: "see " },
      { text: "https://example.com/a?b=1#c", href: "https://example.com/a?b=1#c" },
      { text: " for more" },
    ]);
    expect(linkSegments("http://example.com")).toEqual([{ text: "http://example.com", href: "http://example.com/" }]);
    expect(linkSegments("http://127.0.0.1:8080/x")).toEqual([{ text: "http://127.0.0.1:8080/x", href: "http://127.0.0.1:8080/x" }]);
    expect(links("[http://[::1]:8080/]")).toEqual([{ text: "http://[::1]:8080/", href: "http://[::1]:8080/" }]);
  });

  it("links several addresses", () => {
    expect(linkSegments("https://a.example/1 and http://b.example/2\nhttps://c.example")).toEqual([
      { text: "https://a.example/1", href: "https://a.example/1" },
      { text: " and " },
      { text: "http://b.example/2", href: "http://b.example/2" },
      { text: "\n" },
      { text: "https://c.example", href: "https://c.example/" },
    ]);
  });

  it("leaves trailing punctuation and quotes out", () => {
    for (const p of [".", ",", ";", ":", "!", "?", "'", '"', "...", "?!", "*"]) {
      expect(links(`go to https://example.com/x${p}`)).toEqual([{ text: "https://example.com/x", href: "https://example.com/x" }]);
    }
    expect(links(`"https://example.com/q?a=1", she said`)).toEqual([{ text: "https://example.com/q?a=1", href: "https://example.com/q?a=1" }]);
    expect(links("'https://example.com/it's'")).toEqual([{ text: "https://example.com/it's", href: "https://example.com/it's" }]);
    // Punctuation inside stays.
    expect(links("https://example.com/a.b,c;d:e!f?g=h.")).toEqual([{ text: "https://example.com/a.b,c;d:e!f?g=h", href: "https://example.com/a.b,c;d:e!f?g=h" }]);
    expect(links("<https://example.com/x>")).toEqual([{ text: "https://example.com/x", href: "https://example.com/x" }]);
  });

  it("keeps balanced parentheses and brackets, leaves unbalanced closing ones out", () => {
    const wiki = "https://en.wikipedia.org/wiki/Rust_(programming_language)";
    const wikiHref = "https://en.wikipedia.org/wiki/Rust_(programming_language)";
    expect(links(wiki)).toEqual([{ text: wiki, href: wikiHref }]);
    expect(linkSegments(`(see ${wiki}).`)).toEqual([{ text: "(see " }, { text: wiki, href: wikiHref }, { text: ")." }]);
    expect(linkSegments("(https://example.com/a)")).toEqual([{ text: "(" }, { text: "https://example.com/a", href: "https://example.com/a" }, { text: ")" }]);
    expect(links("[https://example.com/a]")).toEqual([{ text: "https://example.com/a", href: "https://example.com/a" }]);
    expect(links("https://example.com/a[1]")).toEqual([{ text: "https://example.com/a[1]", href: new URL("https://example.com/a[1]").href }]);
    expect(links("https://example.com/f(x)(y)),")).toEqual([{ text: "https://example.com/f(x)(y)", href: "https://example.com/f(x)(y)" }]);
    // An opening one at the end stays (it is not trailing punctuation).
    expect(links("https://example.com/a(")[0].text).toBe("https://example.com/a(");
  });

  it("ends an address at Chinese text and full-width punctuation", () => {
    expect(linkSegments("看这个https://example.com/a，很好")).toEqual([
      { text: "看这个" },
      { text: "https://example.com/a", href: "https://example.com/a" },
      { text: "，很好" },
    ]);
    for (const p of ["，", "。", "！", "？", "、", "）", "】", "」", "；", "：", "…", "”", "　", "很"]) {
      expect(links(`（链接：https://example.com/a${p}x）`)).toEqual([{ text: "https://example.com/a", href: "https://example.com/a" }]);
      expect(links(`「https://example.com/a${p}」`)).toEqual([{ text: "https://example.com/a", href: "https://example.com/a" }]);
    }
    expect(linkSegments("【https://example.com/x】")).toEqual([{ text: "【" }, { text: "https://example.com/x", href: "https://example.com/x" }, { text: "】" }]);
    // Korean, Japanese and emoji too.
    expect(links("https://example.com/a에서")[0].text).toBe("https://example.com/a");
    expect(links("https://example.com/aです")[0].text).toBe("https://example.com/a");
    expect(links("https://example.com/a🎉")[0].text).toBe("https://example.com/a");
    // Accented letters belong to the address.
    expect(links("https://de.wikipedia.org/wiki/Straße ok")).toEqual([{ text: "https://de.wikipedia.org/wiki/Straße", href: "https://de.wikipedia.org/wiki/Stra%C3%9Fe" }]);
  });

  it("links www. hosts as https", () => {
    expect(linkSegments("try www.example.com/x, it works")).toEqual([
      { text: "try " },
      { text: "www.example.com/x", href: "https://www.example.com/x" },
      { text: ", it works" },
    ]);
    expect(links("WWW.Example.COM")).toEqual([{ text: "WWW.Example.COM", href: "https://www.example.com/" }]);
    expect(links("网址www.example.cn。")).toEqual([{ text: "www.example.cn", href: "https://www.example.cn/" }]);
    // Not inside another word, address or e-mail address, and not without a domain.
    for (const t of ["awww.example.com", "me@www.example.com", "x.www.example.com", "www.example", "www.", "www..com"]) {
      expect(links(t)).toEqual([]);
    }
  });

  it("links only http and https, never another scheme", () => {
    for (const t of [
      "javascript:alert(1)",
      "JavaScript://example.com/%0aalert(1)",
      "data:text/html,<script>alert(1)</script>",
      "vbscript:msgbox(1)",
      "file:///etc/passwd",
      "ftp://example.com/x",
      "mailto:a@example.com",
      "xhttps://example.com",
      "1http://example.com",
      "hxxp://example.com",
      "http:/example.com",
      "http:example.com",
    ]) {
      expect(links(t)).toEqual([]);
    }
    // What follows a scheme that is not linked may be, on its own terms.
    expect(links("javascript:https://example.com")).toEqual([{ text: "https://example.com", href: "https://example.com/" }]);
    expect(links("javascript:alert('https://evil.example')").map((s) => s.href)).toEqual(["https://evil.example/"]);
  });

  it("accepts the scheme in any case", () => {
    expect(links("HTTPS://EXAMPLE.COM/Path")).toEqual([{ text: "HTTPS://EXAMPLE.COM/Path", href: "https://example.com/Path" }]);
    expect(links("Http://example.com")).toEqual([{ text: "Http://example.com", href: "http://example.com/" }]);
  });

  it("does not link addresses with a user name or password", () => {
    expect(links("https://bank.example@evil.example/")).toEqual([]);
    expect(links("https://user:pw@example.com/")).toEqual([]);
  });

  it("leaves an over-long address as plain text", () => {
    const atCap = "https://example.com/" + "a".repeat(MAX_URL_LENGTH - 20);
    expect(atCap.length).toBe(MAX_URL_LENGTH);
    expect(links(atCap)).toHaveLength(1);
    const over = atCap + "a";
    expect(linkSegments(`x ${over} y`)).toEqual([{ text: `x ${over} y` }]);
    // An address after the long one still is one.
    expect(links(`${over} https://example.com/`)).toEqual([{ text: "https://example.com/", href: "https://example.com/" }]);
  });

  it("finishes quickly on pathological 8,000-character input", () => {
    const inputs = [
      "http://".repeat(1143),
      "http:// ".repeat(1000),
      "https://a".repeat(889),
      "https://a.b ".repeat(667),
      "https://x.example/" + "(".repeat(8000),
      "https://x.example/" + ")".repeat(8000),
      "https://x.example/" + "(]".repeat(4000),
      "https://x.example/" + ".".repeat(8000),
      "(".repeat(8000),
      "www.".repeat(2000),
      "www.a.b ".repeat(1000),
      "h".repeat(8000),
      "看https://a.cn，".repeat(600),
    ];
    const t0 = performance.now();
    for (const input of inputs) {
      for (let k = 0; k < 5; k++) expect(joined(linkSegments(input))).toBe(input);
    }
    // Generous for a slow CI machine: the real cost is a few milliseconds.
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(links("https://a.b ".repeat(667))).toHaveLength(667);
    expect(links("看https://a.cn，".repeat(600))).toHaveLength(600);
  });

  it("gives back the text exactly: the segments put together are the input", () => {
    // A small alphabet that makes addresses, near-addresses and every ending rule likely.
    const alphabet = ["http", "https", "://", "www.", "a", ".", "b", "/", "(", ")", "[", "]", " ", "，", "看", ",", "?", "'", '"', "H", "W", ":", "@", "🎉", "\n", "é"];
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let round = 0; round < 3000; round++) {
      let s = "";
      const len = rand(30);
      for (let k = 0; k < len; k++) s += alphabet[rand(alphabet.length)];
      const segs = linkSegments(s);
      expect(joined(segs)).toBe(s);
      for (const [k, seg] of segs.entries()) {
        expect(seg.text).not.toBe("");
        if (seg.href === undefined) {
          // Plain segments are merged: a plain one is followed by a link or nothing.
          if (k + 1 < segs.length) expect(segs[k + 1].href).toBeDefined();
          continue;
        }
        expect(new URL(seg.href).protocol).toMatch(/^https?:$/);
        expect(seg.text).not.toMatch(/[\s.,;:!?'"]$/);
      }
    }
  });
});

/** Just enough of a DOM for `el()` (the tests run in Node): what was built, and nothing parsed. */
class FakeNode {
  attrs = new Map<string, string>();
  children: FakeNode[] = [];
  listeners: string[] = [];
  constructor(
    readonly tag: string,
    readonly data = "",
  ) {}
  setAttribute(k: string, v: string) {
    this.attrs.set(k, v);
  }
  append(...c: FakeNode[]) {
    this.children.push(...c);
  }
  addEventListener(type: string) {
    this.listeners.push(type);
  }
  get textContent(): string {
    return this.tag === "#text" ? this.data : this.children.map((c) => c.textContent).join("");
  }
  set innerHTML(_: string) {
    throw new Error("innerHTML used");
  }
}

describe("richText (links as elements)", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("builds text nodes and links that open in a new tab, with the text unchanged", () => {
    vi.stubGlobal("document", {
      createElement: (tag: string) => new FakeNode(tag),
      createTextNode: (data: string) => new FakeNode("#text", data),
    });
    const text = "看 <b>https://example.com/a?x=1&y=<i></b>，和 www.example.org/(b)). javascript:alert(1)";
    const nodes = richText(text) as unknown as FakeNode[];
    expect(nodes.map((n) => n.textContent).join("")).toBe(text);
    const anchors = nodes.filter((n) => n.tag === "a");
    expect(anchors.map((a) => [a.textContent, a.attrs.get("href")])).toEqual([
      ["https://example.com/a?x=1&y=", "https://example.com/a?x=1&y="],
      ["www.example.org/(b)", "https://www.example.org/(b)"],
    ]);
    for (const a of anchors) {
      expect(a.attrs.get("target")).toBe("_blank");
      expect(a.attrs.get("rel")).toBe(LINK_REL);
      expect(a.attrs.get("rel")).toContain("noopener");
      expect(a.listeners).toEqual(["click"]);
    }
    expect(nodes.filter((n) => n.tag === "#text").map((n) => n.data)).toEqual(["看 <b>", "<i></b>，和 ", "). javascript:alert(1)"]);
  });
});
