/**
 * Files on their way into conversations. Each upload shows in its conversation as an item with
 * a progress bar, Cancel, and after a failure Retry and Dismiss. A finished upload is handed
 * back to be sent only when every upload chosen before it in that conversation has been sent
 * or has failed, so several files picked at once arrive in the order they were picked.
 */
import { button, el } from "./dom";
import {
  formatBytes,
  formatProgress,
  progressPercent,
  releasableUploads,
  uploadErrorText,
  uploadFile,
  uploadRetryable,
  type AttachmentKind,
  type FileMeta,
  type UploadFailure,
  type UploadHandle,
} from "./files";
import { icon, kindIcon } from "./icons";

export interface UploadsHost {
  /** Stored files, in the order chosen (`chosenAt`): send them into `conversationId`. */
  send(conversationId: number, files: { kind: AttachmentKind; meta: FileMeta; chosenAt: number }[]): void;
  /** The uploads of `conversationId` changed: redraw it if it is on screen. */
  changed(conversationId: number, toBottom: boolean): void;
  /** Whether `conversationId` is on screen (a failure elsewhere is also told in a toast). */
  isVisible(conversationId: number): boolean;
  toast(text: string): void;
}

interface Upload {
  key: string;
  conversationId: number;
  file: Blob;
  name: string;
  kind: AttachmentKind;
  /** When it was chosen: its place among the conversation's unsent messages. */
  chosenAt: number;
  state: "uploading" | "done" | "failed";
  /** The stored file, once uploaded (it is sent when the uploads chosen before it are). */
  meta: FileMeta | null;
  handle: UploadHandle | null;
  el: HTMLElement;
  bar: HTMLProgressElement;
  label: HTMLElement;
  actions: HTMLElement;
}

export class Uploads {
  private queue = new Map<string, Upload>();
  private counter = 0;
  private lastChosenAt = 0;

  /** `signal` ends the page listener (its user logged out). */
  constructor(
    private readonly host: UploadsHost,
    signal?: AbortSignal,
  ) {
    // Leaving the page would lose every upload still queued here, finished ones included
    // (they are sent only after those chosen before them): let the browser ask first.
    window.addEventListener(
      "beforeunload",
      (ev) => {
        if (this.queue.size === 0) return;
        ev.preventDefault();
        ev.returnValue = "";
      },
      { signal },
    );
  }

  /** The items to show at the end of `conversationId`, in the order chosen, with when each was chosen. */
  itemsOf(conversationId: number): { at: number; el: HTMLElement }[] {
    return [...this.queue.values()].filter((u) => u.conversationId === conversationId).map((u) => ({ at: u.chosenAt, el: u.el }));
  }

  /** Logged out or another account: stop every upload. */
  abortAll(): void {
    for (const u of this.queue.values()) u.handle?.abort();
    this.queue.clear();
  }

  start(conversationId: number, file: Blob, name: string, kind: AttachmentKind): void {
    const key = `u${++this.counter}`;
    const bar = el("progress", { max: "100", value: "0", "data-testid": "im-upload-progress" });
    const label = el("span", { class: "muted small", "data-testid": "im-upload-label" });
    const actions = el("span", { class: "upload-actions" });
    const item = el(
      "li",
      {
        class: "message mine upload",
        "data-testid": "im-upload",
        "data-row": `u:${key}`,
        "data-state": "uploading",
        "data-progress": "0",
        "data-kind": kind,
        "data-name": name,
      },
      el(
        "div",
        { class: "im-file" },
        el("span", { class: "im-file-icon" }, icon(kindIcon(kind))),
        el("span", { class: "im-file-name" }, name),
        el("span", { class: "muted small" }, formatBytes(file.size)),
      ),
      el("div", { class: "upload-row" }, bar, label, actions),
    );
    // Files chosen together keep their order even within one millisecond.
    const chosenAt = Math.max(Date.now(), this.lastChosenAt + 0.001);
    this.lastChosenAt = chosenAt;
    const upload: Upload = { key, conversationId, file, name, kind, chosenAt, state: "uploading", meta: null, handle: null, el: item, bar, label, actions };
    this.queue.set(key, upload);
    this.run(upload);
    this.host.changed(conversationId, true);
  }

  private run(upload: Upload): void {
    upload.state = "uploading";
    this.showProgress(upload, 0, upload.file.size);
    upload.el.dataset.state = "uploading";
    upload.actions.replaceChildren(
      button("Cancel", { class: "link small", "data-testid": "im-upload-cancel" }, () => {
        upload.handle?.abort();
        this.drop(upload);
      }),
    );
    const handle = uploadFile(upload.file, upload.name, (loaded, total) => {
      if (upload.handle === handle) this.showProgress(upload, loaded, total);
    });
    upload.handle = handle;
    handle.done.then(
      (meta) => {
        if (upload.handle !== handle || !this.queue.has(upload.key)) return;
        upload.state = "done";
        upload.meta = meta;
        upload.handle = null;
        this.showProgress(upload, upload.file.size, upload.file.size);
        upload.el.dataset.state = "done";
        upload.label.textContent = "Uploaded; waiting for the files chosen before it";
        this.release(upload.conversationId);
      },
      (f: UploadFailure) => {
        if (upload.handle !== handle) return;
        upload.handle = null;
        if (f.status === -1) return; // cancelled
        upload.state = "failed";
        const text = uploadErrorText(f, upload.name);
        upload.el.dataset.state = "failed";
        upload.el.classList.add("failed");
        upload.label.textContent = text;
        upload.label.setAttribute("role", "alert");
        // Retry only where it can work: the same bytes are refused again for being too large,
        // empty or not allowed.
        upload.actions.replaceChildren(
          uploadRetryable(f) ? button("Retry", { class: "link small", "data-testid": "im-upload-retry" }, () => this.run(upload)) : "",
          button("Dismiss", { class: "link small", "data-testid": "im-upload-dismiss" }, () => this.drop(upload)),
        );
        // Shown in place (role=alert); a toast only when that conversation is not on screen.
        if (!this.host.isVisible(upload.conversationId)) this.host.toast(text);
        // It no longer holds back the uploads chosen after it.
        this.release(upload.conversationId);
      },
    );
  }

  /**
   * Hands over the conversation's finished uploads that no earlier upload is still ahead of, in
   * the order they were chosen. From there on each is an ordinary pending send.
   */
  private release(conversationId: number): void {
    const ready = releasableUploads(this.queue.values(), conversationId);
    for (const upload of ready) this.queue.delete(upload.key);
    const files = ready.flatMap((u) => (u.meta ? [{ kind: u.kind, meta: u.meta, chosenAt: u.chosenAt }] : []));
    if (files.length > 0) this.host.send(conversationId, files);
    this.host.changed(conversationId, true);
  }

  private showProgress(upload: Upload, loaded: number, total: number): void {
    const pct = progressPercent(loaded, total);
    upload.bar.value = pct;
    upload.el.dataset.progress = String(pct);
    upload.label.removeAttribute("role");
    upload.label.textContent = formatProgress(loaded, total);
  }

  private drop(upload: Upload): void {
    upload.handle = null;
    this.queue.delete(upload.key);
    upload.el.remove();
    if (releasableUploads(this.queue.values(), upload.conversationId).length > 0) this.release(upload.conversationId);
    else this.host.changed(upload.conversationId, false);
  }
}
