/**
 * Attachments: file types and formatting (pure), and the upload itself (XMLHttpRequest, so that
 * `upload.onprogress` can drive a progress bar and the upload can be cancelled).
 */

/** An upload as a message shows it (`ImMessage.file`). */
export interface FileRef {
  id: string;
  name: string;
  size: number;
  contentType: string;
  width?: number;
  height?: number;
  hasThumbnail: boolean;
}

/** What `POST /api/files` answers, per file. */
export interface FileMeta extends FileRef {
  sha256: string;
  uploaderId: number;
  createdAt: number;
}

export type AttachmentKind = "image" | "file" | "voice";

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A well-formed FileRef (the fields the client uses), or null. */
export function asFileRef(v: unknown): FileRef | null {
  if (!isObj(v) || typeof v.id !== "string" || !/^[0-9a-f]{32}$/i.test(v.id) || typeof v.name !== "string" || typeof v.size !== "number") return null;
  const dim = (x: unknown) => (typeof x === "number" && Number.isFinite(x) && x > 0 ? x : undefined);
  return {
    id: v.id,
    name: v.name,
    size: v.size,
    contentType: typeof v.contentType === "string" ? v.contentType : "application/octet-stream",
    width: dim(v.width),
    height: dim(v.height),
    hasThumbnail: v.hasThumbnail === true,
  };
}

export const fileUrl = (id: string) => `/api/files/${encodeURIComponent(id)}`;
export const thumbnailUrl = (id: string) => `/api/files/${encodeURIComponent(id)}/thumbnail`;

/** The image types the server recognizes (and sends as `image` messages). */
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

/** The message kind for a chosen file: images inline, audio as a voice message, else a file. */
export function kindForFile(type: string): AttachmentKind {
  const t = type.toLowerCase().split(";")[0].trim();
  if (IMAGE_TYPES.has(t)) return "image";
  if (t.startsWith("audio/")) return "voice";
  return "file";
}

/** A plain `type/subtype` for the upload's Content-Type (parameters dropped), or octet-stream. */
export function declaredType(type: string): string {
  const t = type.split(";")[0].trim().toLowerCase();
  return /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/.test(t) ? t : "application/octet-stream";
}

/** "0 B", "999 B", "1.5 KB", "12 KB", "3.4 MB" (powers of 1024). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "?";
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  // One decimal below 10 (but not "1.0"), none above; rounding up to 1024 moves to the next unit.
  let text = v < 9.95 ? v.toFixed(1).replace(/\.0$/, "") : String(Math.round(v));
  if (text === "1024" && u < units.length - 1) {
    text = "1";
    u++;
  }
  return `${text} ${units[u]}`;
}

/** Whole percent done, 0–100 (100 only when everything is sent). */
export function progressPercent(loaded: number, total: number): number {
  if (!(total > 0)) return 0;
  if (loaded >= total) return 100;
  return Math.max(0, Math.min(99, Math.floor((loaded / total) * 100)));
}

/** "42% · 1.2 MB of 2.9 MB". */
export function formatProgress(loaded: number, total: number): string {
  const done = Math.min(Math.max(0, loaded), total);
  return `${progressPercent(done, total)}% · ${formatBytes(done)} of ${formatBytes(total)}`;
}

/** Fit (w, h) into a max×max box, keeping the aspect ratio; never enlarges. */
export function fitWithin(w: number, h: number, max: number): { width: number; height: number } {
  if (!(w > 0) || !(h > 0)) return { width: max, height: max };
  const scale = Math.min(1, max / Math.max(w, h));
  return { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)) };
}

/** "retry in 3 s" (at least 1 s). */
export function retryIn(ms: number | undefined): string {
  const s = Math.max(1, Math.ceil((ms ?? 1000) / 1000));
  return `retry in ${s} s`;
}

export interface UploadFailure {
  status: number;
  id?: string;
  message?: string;
  retryAfterMs?: number;
}

/** An upload's place in its conversation's line. */
export interface QueuedUpload {
  conversationId: number;
  state: "uploading" | "done" | "failed";
}

/**
 * The finished uploads of `conversationId` that may be sent now, in the order they were chosen:
 * those before the first one still uploading, so a small file picked second never overtakes a
 * large one picked first. A failed upload waits for Retry or Dismiss without holding back the
 * ones after it.
 */
export function releasableUploads<T extends QueuedUpload>(queue: Iterable<T>, conversationId: number): T[] {
  const ready: T[] = [];
  for (const upload of queue) {
    if (upload.conversationId !== conversationId || upload.state === "failed") continue;
    if (upload.state === "uploading") break;
    ready.push(upload);
  }
  return ready;
}

/**
 * Whether uploading the same file again can succeed: after a lost connection, a timeout, a
 * rate limit or a server error, yes; not for a file that is too large, empty, badly named or
 * not allowed (the same bytes are refused again).
 */
export function uploadRetryable(f: UploadFailure): boolean {
  return f.status === 0 || f.status === 408 || f.status === 429 || f.status >= 500;
}

/** What to tell the user about a refused or failed upload of `name`. */
export function uploadErrorText(f: UploadFailure, name: string): string {
  const q = `“${name}”`;
  switch (f.status) {
    case 0:
      return `Upload of ${q} failed: the connection was lost.`;
    case 413: {
      const limit = /(\d+)\s*bytes/.exec(f.message ?? "");
      return `${q} is too large` + (limit ? ` (the limit is ${formatBytes(Number(limit[1]))}).` : ".");
    }
    case 429:
      if (f.id === "rate_limited") return `Uploading too fast: ${retryIn(f.retryAfterMs)}.`;
      return `The server is busy receiving other files: try again shortly.`;
    case 403:
      return `You are not allowed to upload ${q}.`;
    case 401:
      return "Your session has ended: log in again to upload.";
    case 507:
      return `The server has no room for ${q}.`;
  }
  if (f.id === "empty_file") return `${q} is empty.`;
  if (f.id === "bad_name") return `${q} has a name the server does not accept.`;
  return `Upload of ${q} failed: ${f.message || `error ${f.status}`}.`;
}

export interface UploadHandle {
  /** Resolves with the stored file, rejects with an UploadFailure (status 0 on network errors, -1 when cancelled). */
  done: Promise<FileMeta>;
  abort(): void;
}

/** Upload one file as a raw body (`POST /api/files?name=`), reporting progress. */
export function uploadFile(file: Blob, name: string, onProgress: (loaded: number, total: number) => void): UploadHandle {
  const xhr = new XMLHttpRequest();
  const done = new Promise<FileMeta>((resolve, reject) => {
    xhr.open("POST", `/api/files?name=${encodeURIComponent(name)}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader("Content-Type", declaredType(file.type));
    xhr.responseType = "text";
    xhr.upload.onprogress = (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : file.size);
    xhr.onload = () => {
      let body: unknown;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = undefined;
      }
      if (xhr.status === 201 && Array.isArray(body) && body.length > 0) {
        const ref = asFileRef(body[0]);
        if (ref) {
          onProgress(file.size, file.size);
          resolve({ ...(body[0] as FileMeta), ...ref });
          return;
        }
      }
      const b = isObj(body) ? body : {};
      reject({
        status: xhr.status,
        id: typeof b.id === "string" ? b.id : undefined,
        message: typeof b.message === "string" ? b.message : undefined,
        retryAfterMs: typeof b.retryAfterMs === "number" ? b.retryAfterMs : undefined,
      } satisfies UploadFailure);
    };
    xhr.onerror = () => reject({ status: 0 } satisfies UploadFailure);
    xhr.onabort = () => reject({ status: -1 } satisfies UploadFailure);
    xhr.ontimeout = () => reject({ status: 0 } satisfies UploadFailure);
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}
