import { describe, expect, it } from "vitest";
import { hasWords, searchQueryString, snippetSegments } from "./search";

const marked = (text: string, hl: number[][]) =>
  snippetSegments(text, hl)
    .map((s) => (s.mark ? `[${s.text}]` : s.text))
    .join("");

describe("snippetSegments", () => {
  it("marks the ranges and keeps every character", () => {
    expect(snippetSegments("say hello world", [[4, 9]])).toEqual([
      { text: "say ", mark: false },
      { text: "hello", mark: true },
      { text: " world", mark: false },
    ]);
    expect(marked("run runs running", [[0, 3], [4, 8], [9, 16]])).toBe("[run] [runs] [running]");
    expect(marked("no marks", [])).toBe("no marks");
    expect(snippetSegments("", [[0, 1]])).toEqual([]);
  });

  it("uses UTF-16 code units (JavaScript indices)", () => {
    // "😀" is two UTF-16 code units; the CJK characters one each.
    const text = "😀 你好吗 数据库";
    expect(marked(text, [[3, 5], [7, 10]])).toBe("😀 [你好]吗 [数据库]");
    expect(text.slice(3, 5)).toBe("你好");
  });

  it("never splits a surrogate pair", () => {
    const text = "a😀b";
    expect(marked(text, [[2, 3]])).toBe("a[😀]b");
    expect(marked(text, [[0, 2]])).toBe("[a😀]b");
  });

  it("clamps, sorts, merges adjacent and skips bad or overlapping ranges", () => {
    expect(marked("abcdef", [[4, 99]])).toBe("abcd[ef]");
    expect(marked("abcdef", [[-5, 1]])).toBe("[a]bcdef");
    expect(marked("abcdef", [[4, 5], [0, 1]])).toBe("[a]bcd[e]f");
    expect(marked("abcdef", [[0, 2], [1, 3]])).toBe("[ab]cdef");
    expect(marked("abcdef", [[0, 2], [2, 4]])).toBe("[abcd]ef");
    expect(marked("abcdef", [[3, 3], [4, 2], [1.5, 2], [1]])).toBe("abcdef");
  });

  it("keeps markup-looking text as text", () => {
    const segs = snippetSegments("<img src=x onerror=alert(1)> hi", [[29, 31]]);
    expect(segs[0]).toEqual({ text: "<img src=x onerror=alert(1)> ", mark: false });
    expect(segs[1]).toEqual({ text: "hi", mark: true });
  });
});

describe("searchQueryString", () => {
  it("encodes only what is set", () => {
    expect(searchQueryString({ q: "数据 & more" })).toBe("q=%E6%95%B0%E6%8D%AE+%26+more");
    expect(searchQueryString({ q: "x", conversation: 7, sender: 2, limit: 20, offset: 40 })).toBe("q=x&conversation=7&sender=2&limit=20&offset=40");
    expect(searchQueryString({ q: "x", from: NaN })).toBe("q=x");
  });
});

describe("hasWords", () => {
  it("finds something to search for in letters or digits of any script", () => {
    for (const q of ["quokka", "a", "42", "数据库", "café", "?why", "Ωmega"]) expect(hasWords(q), q).toBe(true);
  });
  it("finds nothing in punctuation, symbols, emoji or spaces (which the server refuses)", () => {
    for (const q of ["", "   ", "?!", "…—", "😀🎉", "#$%&*", "\u0301"]) expect(hasWords(q), q).toBe(false);
  });
});
