import { describe, expect, it } from "vitest";
import { Backoff, DEFAULT_BACKOFF } from "./backoff";
import { Connection, type ConnectionStatus, type SocketLike } from "./connection";
import type { ServerFrame } from "./protocol";

class FakeSocket implements SocketLike {
  readyState = 0;
  onopen: SocketLike["onopen"] = null;
  onmessage: SocketLike["onmessage"] = null;
  onclose: SocketLike["onclose"] = null;
  onerror: SocketLike["onerror"] = null;
  sent: string[] = [];
  send(d: string) {
    this.sent.push(d);
  }
  close() {
    this.readyState = 3;
  }
  serverOpen() {
    this.readyState = 1;
    this.onopen?.({});
  }
  serverSend(frame: unknown) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  serverClose(code: number) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

function setup(checkSession?: () => Promise<boolean>) {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const frames: ServerFrame[] = [];
  const statuses: ConnectionStatus[] = [];
  let unauthorized = 0;
  const conn = new Connection(
    {
      url: "ws://x/api/ws",
      createSocket: () => {
        const s = new FakeSocket();
        sockets.push(s);
        return s;
      },
      backoff: new Backoff({ ...DEFAULT_BACKOFF, jitter: 0 }),
      setTimer: (fn, ms) => {
        timers.push({ fn, ms });
        return timers.length;
      },
      clearTimer: () => {},
    },
    {
      onFrame: (f) => frames.push(f),
      onStatus: (s) => statuses.push(s),
      onUnauthorized: () => unauthorized++,
      checkSession,
    },
  );
  return { conn, sockets, timers, frames, statuses, unauthorized: () => unauthorized };
}

const HELLO = { type: "hello", payload: { me: { id: 1, username: "a" }, rooms: [] } };

describe("Connection", () => {
  it("delivers frames and sends only when open", () => {
    const t = setup();
    t.conn.start();
    const s = t.sockets[0];
    expect(t.conn.send({ type: "clientMessages", payload: { roomId: "r", messages: [{ content: "x" }] } })).toBe(false);
    s.serverOpen();
    s.serverSend(HELLO);
    expect(t.frames.map((f) => f.type)).toEqual(["hello"]);
    expect(t.statuses.at(-1)).toBe("online");
    expect(t.conn.send({ type: "clientMessages", payload: { roomId: "r", messages: [{ content: "x" }] } })).toBe(true);
    expect(JSON.parse(s.sent[0]).type).toBe("clientMessages");
  });

  it("reconnects with growing backoff and resets after hello", () => {
    const t = setup();
    t.conn.start();
    t.sockets[0].serverOpen();
    t.sockets[0].serverSend(HELLO);
    t.sockets[0].serverClose(1012);
    expect(t.statuses.at(-1)).toBe("reconnecting");
    expect(t.timers.map((x) => x.ms)).toEqual([500]);
    t.timers[0].fn();
    t.sockets[1].serverClose(1006);
    expect(t.timers.map((x) => x.ms)).toEqual([500, 1000]);
    t.timers[1].fn();
    t.sockets[2].serverOpen();
    t.sockets[2].serverSend(HELLO);
    t.sockets[2].serverClose(1001);
    expect(t.timers.map((x) => x.ms)).toEqual([500, 1000, 500]);
  });

  it("stops and reports unauthorized on 1008", () => {
    const t = setup();
    t.conn.start();
    t.sockets[0].serverClose(1008);
    expect(t.unauthorized()).toBe(1);
    expect(t.timers.length).toBe(0);
  });

  it("checks the session when a connect fails before hello", async () => {
    const t = setup(async () => false);
    t.conn.start();
    t.sockets[0].serverClose(1006);
    await Promise.resolve();
    await Promise.resolve();
    expect(t.unauthorized()).toBe(1);
    expect(t.timers.length).toBe(0);
  });

  it("does not reconnect after stop", () => {
    const t = setup();
    t.conn.start();
    t.conn.stop();
    expect(t.sockets.length).toBe(1);
    expect(t.timers.length).toBe(0);
    expect(t.statuses.at(-1)).toBe("stopped");
  });
});
