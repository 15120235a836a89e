import { Backoff } from "./backoff";
import {
  CLOSE_POLICY_VIOLATION,
  encodeClientFrame,
  parseServerFrame,
  type ClientFrame,
  type ServerFrame,
} from "./protocol";

/** The subset of the browser WebSocket we use; lets tests inject a fake. */
export interface SocketLike {
  readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type ConnectionStatus = "connecting" | "online" | "reconnecting" | "stopped";

export interface ConnectionHooks {
  onFrame(frame: ServerFrame): void;
  onStatus(status: ConnectionStatus, retryInMs?: number): void;
  /** Server closed with 1008 (or the session turned out to be gone): show the login form. */
  onUnauthorized(): void;
  /**
   * Called when a connection attempt failed before any hello (e.g. the upgrade was refused with
   * an HTTP status, which browsers report as close code 1006). Resolve false if the session is
   * gone, so we stop reconnecting and show the login form.
   */
  checkSession?(): Promise<boolean>;
}

export interface ConnectionOptions {
  url: string;
  createSocket?: (url: string) => SocketLike;
  backoff?: Backoff;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

const OPEN = 1;

/** A WebSocket that reconnects with exponential backoff until stopped. */
export class Connection {
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private stopped = true;
  private gotHello = false;
  private readonly backoff: Backoff;
  private readonly createSocket: (url: string) => SocketLike;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(
    private readonly opts: ConnectionOptions,
    private readonly hooks: ConnectionHooks,
  ) {
    this.backoff = opts.backoff ?? new Backoff();
    this.createSocket = opts.createSocket ?? ((url) => new WebSocket(url) as unknown as SocketLike);
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  get isOpen(): boolean {
    return !!this.socket && this.socket.readyState === OPEN && this.gotHello;
  }

  start(): void {
    this.stopped = false;
    this.backoff.reset();
    this.open("connecting");
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = s.onmessage = s.onerror = s.onopen = null;
      try {
        s.close(1000, "bye");
      } catch {
        /* ignore */
      }
    }
    this.hooks.onStatus("stopped");
  }

  /** Send a frame; returns false if the socket is not ready. */
  send(frame: ClientFrame): boolean {
    if (!this.isOpen) return false;
    this.socket!.send(encodeClientFrame(frame));
    return true;
  }

  private open(status: ConnectionStatus): void {
    this.timer = null;
    if (this.stopped) return;
    this.gotHello = false;
    this.hooks.onStatus(status);
    let s: SocketLike;
    try {
      s = this.createSocket(this.opts.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = s;
    s.onmessage = (ev) => {
      if (this.socket !== s || typeof ev.data !== "string") return;
      const frame = parseServerFrame(ev.data);
      if (!frame) return;
      if (frame.type === "hello") {
        this.gotHello = true;
        this.backoff.reset();
        this.hooks.onStatus("online");
      }
      this.hooks.onFrame(frame);
    };
    s.onclose = (ev) => {
      if (this.socket !== s) return;
      this.socket = null;
      if (this.stopped) return;
      if (ev.code === CLOSE_POLICY_VIOLATION) {
        this.stopped = true;
        this.hooks.onUnauthorized();
        return;
      }
      const hadHello = this.gotHello;
      this.gotHello = false;
      if (!hadHello && this.hooks.checkSession) {
        const check = this.hooks.checkSession;
        this.hooks.onStatus("reconnecting");
        check().then(
          (ok) => {
            if (this.stopped) return;
            if (ok) this.scheduleReconnect();
            else {
              this.stopped = true;
              this.hooks.onUnauthorized();
            }
          },
          () => {
            if (!this.stopped) this.scheduleReconnect();
          },
        );
        return;
      }
      this.scheduleReconnect();
    };
    s.onerror = () => {
      /* onclose follows */
    };
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer !== null) return;
    const delay = this.backoff.next();
    this.hooks.onStatus("reconnecting", delay);
    this.timer = this.setTimer(() => this.open("reconnecting"), delay);
  }
}
