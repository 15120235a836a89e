/**
 * Recording a voice message in the browser (MediaRecorder): the composer's record button, its
 * running clock and a discard button. A finished recording is handed to the host to upload;
 * where the browser or the microphone cannot record, the host offers an audio file instead.
 */
import { icon, iconButton } from "./icons";

export interface RecorderHost {
  /** The conversation a recording started now would be sent to, if one is open. */
  conversation(): number | null;
  /** A finished recording, to be sent to `conversationId` (the one open when it started). */
  recorded(conversationId: number, audio: Blob, name: string): void;
  /** Recording is impossible (`why` says so): offer to choose an audio file instead. */
  cannotRecord(why: string): void;
}

/** What the record button does: start a recording, or (while one runs) stop and send it. */
export function recordButtonLabel(recording: boolean): string {
  return recording ? "Stop and send the voice message" : "Record a voice message";
}

export class VoiceRecorder {
  /** Starts a recording, or stops and sends the one running (it shows the time recorded). */
  readonly button: HTMLButtonElement;
  /** Shown while recording: stops and throws the recording away. */
  readonly discardButton: HTMLButtonElement;
  private recorder: MediaRecorder | null = null;
  private discarded = false;
  private clock: ReturnType<typeof setInterval> | null = null;
  /** The microphone has been asked for and has not answered yet. */
  private starting = false;
  /** Its user logged out. */
  private closed = false;

  constructor(private readonly host: RecorderHost) {
    this.button = iconButton("mic", { class: "ghost icon-button", title: recordButtonLabel(false), "aria-label": recordButtonLabel(false), "data-testid": "im-record" }, () => this.toggle());
    this.discardButton = iconButton("close", { class: "ghost icon-button", title: "Discard the recording", "aria-label": "Discard the recording", "data-testid": "im-record-cancel", hidden: "" }, () =>
      this.stop(true),
    );
  }

  get recording(): boolean {
    return this.recorder !== null;
  }

  private toggle(): void {
    if (this.recorder) {
      this.stop(false);
      return;
    }
    // The microphone is being asked for: a second click must not start a second recording.
    if (this.starting || this.closed) return;
    const id = this.host.conversation();
    if (id === null) return;
    if (typeof MediaRecorder === "undefined" || !navigator.mediaDevices?.getUserMedia) {
      this.host.cannotRecord("This browser cannot record: choose an audio file instead.");
      return;
    }
    this.starting = true;
    navigator.mediaDevices.getUserMedia({ audio: true }).then(
      (stream) => {
        this.starting = false;
        if (this.closed) {
          for (const t of stream.getTracks()) t.stop();
          return;
        }
        let rec: MediaRecorder;
        try {
          rec = new MediaRecorder(stream);
        } catch {
          for (const t of stream.getTracks()) t.stop();
          this.host.cannotRecord("This browser cannot record: choose an audio file instead.");
          return;
        }
        const chunks: Blob[] = [];
        const started = Date.now();
        this.recorder = rec;
        this.discarded = false;
        rec.ondataavailable = (ev) => {
          if (ev.data.size > 0) chunks.push(ev.data);
        };
        rec.onstop = () => {
          for (const t of stream.getTracks()) t.stop();
          this.recorder = null;
          if (this.clock) clearInterval(this.clock);
          this.clock = null;
          this.render(0);
          if (this.discarded || chunks.length === 0) return;
          const type = (rec.mimeType || chunks[0].type || "audio/webm").split(";")[0];
          const ext = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
          const stamp = new Date(started).toISOString().slice(0, 19).replace(/[T:]/g, "-");
          this.host.recorded(id, new Blob(chunks, { type }), `voice-${stamp}.${ext}`);
        };
        rec.start();
        this.render(started);
        this.clock = setInterval(() => this.render(started), 500);
      },
      () => {
        this.starting = false;
        if (!this.closed) this.host.cannotRecord("The microphone is not available: choose an audio file instead.");
      },
    );
  }

  /** Logged out: throw away any recording, and start none (not even one asked for already). */
  close(): void {
    this.closed = true;
    this.stop(true);
  }

  /** Stops a running recording: sends it, or throws it away when `discard`. */
  stop(discard: boolean): void {
    if (!this.recorder) return;
    this.discarded = discard;
    try {
      this.recorder.stop();
    } catch {
      /* already stopped */
    }
  }

  private render(started: number): void {
    const on = this.recorder !== null;
    this.button.classList.toggle("recording", on);
    this.discardButton.hidden = !on;
    const label = recordButtonLabel(on);
    // What it does now, for screen readers as for the tooltip.
    this.button.title = label;
    this.button.setAttribute("aria-label", label);
    if (on) {
      const s = Math.floor((Date.now() - started) / 1000);
      this.button.replaceChildren(icon("stop"), ` ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`);
    } else {
      this.button.replaceChildren(icon("mic"));
    }
  }
}
