import { describe, expect, it } from "vitest";
import {
  asFileRef,
  declaredType,
  fitWithin,
  formatBytes,
  formatProgress,
  kindForFile,
  uploadRetryable,
  progressPercent,
  retryIn,
  releasableUploads,
  uploadErrorText,
} from "./files";

describe("formatBytes", () => {
  it("uses B, KB, MB, GB with one decimal below 10", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1024)).toBe("1 KB");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(48213)).toBe("47 KB");
    expect(formatBytes(3.4 * 1024 * 1024)).toBe("3.4 MB");
    expect(formatBytes(100 * 1024 * 1024)).toBe("100 MB");
    expect(formatBytes(1024 * 1024 - 1)).toBe("1 MB");
    expect(formatBytes(5 * 1024 ** 3)).toBe("5 GB");
    expect(formatBytes(-1)).toBe("?");
    expect(formatBytes(NaN)).toBe("?");
  });
});

describe("progress", () => {
  it("is whole percent, 100 only when everything is sent", () => {
    expect(progressPercent(0, 1000)).toBe(0);
    expect(progressPercent(425, 1000)).toBe(42);
    expect(progressPercent(999, 1000)).toBe(99);
    expect(progressPercent(1000, 1000)).toBe(100);
    expect(progressPercent(2000, 1000)).toBe(100);
    expect(progressPercent(5, 0)).toBe(0);
  });

  it("formats percent and amounts", () => {
    expect(formatProgress(0, 2048)).toBe("0% · 0 B of 2 KB");
    expect(formatProgress(512 * 1024, 2 * 1024 * 1024)).toBe("25% · 512 KB of 2 MB");
    expect(formatProgress(3000, 2048)).toBe("100% · 2 KB of 2 KB");
  });
});

describe("kinds and types", () => {
  it("sends recognized images inline, audio as voice, the rest as files", () => {
    expect(kindForFile("image/png")).toBe("image");
    expect(kindForFile("IMAGE/JPEG")).toBe("image");
    expect(kindForFile("image/webp")).toBe("image");
    expect(kindForFile("image/svg+xml")).toBe("file");
    expect(kindForFile("audio/webm;codecs=opus")).toBe("voice");
    expect(kindForFile("audio/mpeg")).toBe("voice");
    expect(kindForFile("application/pdf")).toBe("file");
    expect(kindForFile("")).toBe("file");
  });

  it("declares a plain type/subtype", () => {
    expect(declaredType("audio/webm;codecs=opus")).toBe("audio/webm");
    expect(declaredType("Text/Plain")).toBe("text/plain");
    expect(declaredType("")).toBe("application/octet-stream");
    expect(declaredType("nonsense")).toBe("application/octet-stream");
  });

  it("validates file refs", () => {
    const id = "0123456789abcdef0123456789abcdef";
    expect(asFileRef({ id, name: "a.png", size: 3, contentType: "image/png", width: 4, height: 2, hasThumbnail: true })).toEqual({
      id,
      name: "a.png",
      size: 3,
      contentType: "image/png",
      width: 4,
      height: 2,
      hasThumbnail: true,
    });
    expect(asFileRef({ id: "../etc", name: "a", size: 1 })).toBeNull();
    expect(asFileRef({ id, name: "a" })).toBeNull();
    expect(asFileRef(null)).toBeNull();
    expect(asFileRef({ id, name: "a", size: 1 })?.hasThumbnail).toBe(false);
  });

  it("fits images into a box without enlarging", () => {
    expect(fitWithin(640, 480, 320)).toEqual({ width: 320, height: 240 });
    expect(fitWithin(100, 1000, 320)).toEqual({ width: 32, height: 320 });
    expect(fitWithin(64, 48, 320)).toEqual({ width: 64, height: 48 });
  });
});

describe("upload errors", () => {
  it("says what went wrong", () => {
    expect(uploadErrorText({ status: 413, id: "file_too_large", message: "files are limited to 104857600 bytes" }, "big.iso")).toBe(
      "“big.iso” is too large (the limit is 100 MB).",
    );
    expect(uploadErrorText({ status: 413 }, "x")).toBe("“x” is too large.");
    expect(uploadErrorText({ status: 429, id: "rate_limited", retryAfterMs: 2500 }, "x")).toBe("Uploading too fast: retry in 3 s.");
    expect(uploadErrorText({ status: 429, id: "too_many_uploads" }, "x")).toMatch(/busy/);
    expect(uploadErrorText({ status: 403, id: "file_forbidden" }, "x")).toBe("You are not allowed to upload “x”.");
    expect(uploadErrorText({ status: 0 }, "x")).toMatch(/connection was lost/);
    expect(uploadErrorText({ status: 400, id: "empty_file" }, "x")).toBe("“x” is empty.");
    expect(uploadErrorText({ status: 500, message: "internal error" }, "x")).toBe("Upload of “x” failed: internal error.");
    expect(retryIn(0)).toBe("retry in 1 s");
    expect(retryIn(1001)).toBe("retry in 2 s");
  });
});

describe("upload retries", () => {
  it("offers Retry where the same file can get through later, not where it is refused for what it is", () => {
    for (const f of [{ status: 0 }, { status: 408, id: "upload_timeout" }, { status: 429, id: "rate_limited" }, { status: 429, id: "too_many_uploads" }, { status: 500 }, { status: 503 }, { status: 507 }]) {
      expect(uploadRetryable(f), JSON.stringify(f)).toBe(true);
    }
    for (const f of [{ status: 413, id: "file_too_large" }, { status: 400, id: "empty_file" }, { status: 400, id: "bad_name" }, { status: 403, id: "file_forbidden" }, { status: 401 }]) {
      expect(uploadRetryable(f), JSON.stringify(f)).toBe(false);
    }
  });
});

describe("upload order", () => {
  const u = (conversationId: number, state: "uploading" | "done" | "failed", name: string) => ({ conversationId, state, name });
  const names = (list: { name: string }[]) => list.map((x) => x.name);

  it("sends finished uploads in the order chosen, never past one still uploading", () => {
    expect(names(releasableUploads([u(1, "uploading", "big"), u(1, "done", "small")], 1))).toEqual([]);
    expect(names(releasableUploads([u(1, "done", "big"), u(1, "done", "small"), u(1, "uploading", "c"), u(1, "done", "d")], 1))).toEqual(["big", "small"]);
  });

  it("does not let a failed upload or another conversation hold the line", () => {
    expect(names(releasableUploads([u(1, "failed", "refused"), u(1, "done", "next")], 1))).toEqual(["next"]);
    expect(names(releasableUploads([u(2, "uploading", "elsewhere"), u(1, "done", "here")], 1))).toEqual(["here"]);
    expect(names(releasableUploads([], 1))).toEqual([]);
  });
});
