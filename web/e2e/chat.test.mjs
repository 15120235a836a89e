// End-to-end test of the Hearth web client against a running server.
//
//   HEARTH_URL=http://127.0.0.1:8080 npm run e2e
//
// Uses playwright-core with the system chromium (never `npx playwright install`).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

const BASE = process.env.HEARTH_URL;
if (!BASE) {
  throw new Error("HEARTH_URL is not set: start a Hearth server and run e.g. HEARTH_URL=http://127.0.0.1:8080 npm run e2e");
}
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (set CHROMIUM_PATH)`);
const SCREENSHOT = "/tmp/hearth-e2e.png";
const SEED_COUNT = 130;
const PASSWORD = "correct horse battery";

const tid = (id) => `[data-testid="${id}"]`;
const runId = randomBytes(4).toString("hex");

let browser;
/** @type {{ username: string, email: string, context: import('playwright-core').BrowserContext, page: import('playwright-core').Page }} */
let A;
/** @type {typeof A} */
let B;
let chatRoomId;
let seedRoomId;

async function newUser(tag) {
  const context = await browser.newContext({ baseURL: BASE, viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${tag}] page error:`, e));
  const username = `${tag}${runId}${randomBytes(3).toString("hex")}`;
  return { username, email: `${username}@example.com`, context, page };
}

async function register(u) {
  const { page } = u;
  await page.goto("/");
  await page.locator(tid("login-form")).waitFor();
  await page.locator(tid("show-register")).click();
  await page.locator(tid("register-username")).fill(u.username);
  await page.locator(tid("register-email")).fill(u.email);
  await page.locator(tid("register-password")).fill(PASSWORD);
  await page.locator(tid("register-submit")).click();
  await page.locator(tid("chat")).waitFor();
  await page.locator(`${tid("current-user")}:text-is("${u.username}")`).waitFor();
  await page.locator(tid("room-item")).first().waitFor();
  await page.locator(`${tid("connection-status")}[data-status="online"]`).waitFor({ state: "attached" });
}

async function openRoom(page, roomId) {
  await page.locator(`${tid("room-item")}[data-room-id="${roomId}"]`).click();
  await page.locator(`${tid("room-item")}[data-room-id="${roomId}"][aria-current="true"]`).waitFor();
}

function messageWithText(page, text) {
  // getByText normalizes whitespace on both sides, so multi-line contents match too.
  return page.locator(tid("message")).filter({ has: page.getByText(text, { exact: true }) });
}

async function send(page, text) {
  const input = page.locator(tid("composer-input"));
  await input.fill(text);
  await input.press("Enter");
  await page.waitForFunction((sel) => document.querySelector(sel)?.value === "", tid("composer-input"));
}

async function screenshot(page) {
  try {
    await page.screenshot({ path: SCREENSHOT });
    console.log(`screenshot: ${SCREENSHOT}`);
  } catch (e) {
    console.error("screenshot failed:", e);
  }
}

describe("Hearth web client", { timeout: 180_000 }, () => {
  before(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    });
    A = await newUser("alice");
    B = await newUser("bob");
  });

  after(async () => {
    await browser?.close();
  });

  it("shows the login form when not logged in and reports server errors", async () => {
    const { page } = A;
    await page.goto("/");
    await page.locator(tid("login-form")).waitFor();
    await page.locator(tid("login-email")).fill(`nobody-${runId}@example.com`);
    await page.locator(tid("login-password")).fill("wrong password!");
    await page.locator(tid("login-submit")).click();
    const err = page.locator(tid("login-error"));
    await err.waitFor();
    assert.notEqual((await err.textContent()).trim(), "", "login error message is shown");
  });

  it("registers two users who see the room list", async () => {
    await Promise.all([register(A), register(B)]);
    const roomIds = await A.page.locator(tid("room-item")).evaluateAll((els) => els.map((e) => e.getAttribute("data-room-id")));
    const roomIdsB = await B.page.locator(tid("room-item")).evaluateAll((els) => els.map((e) => e.getAttribute("data-room-id")));
    assert.ok(roomIds.length > 0, "server provides at least one room");
    assert.deepEqual(roomIdsB, roomIds, "both users see the same rooms");
    chatRoomId = roomIds[0];
    seedRoomId = roomIds[1] ?? roomIds[0];
  });

  it("rejects a duplicate username with the server's message", async () => {
    const context = await browser.newContext({ baseURL: BASE });
    try {
      const page = await context.newPage();
      await page.goto("/");
      await page.locator(tid("show-register")).click();
      await page.locator(tid("register-username")).fill(A.username);
      await page.locator(tid("register-email")).fill(`other-${A.email}`);
      await page.locator(tid("register-password")).fill(PASSWORD);
      await page.locator(tid("register-submit")).click();
      const err = page.locator(tid("register-error"));
      await err.waitFor();
      assert.notEqual((await err.textContent()).trim(), "");
      assert.equal(await page.locator(tid("chat")).count(), 0);
    } finally {
      await context.close();
    }
  });

  it("exchanges messages between two users in the same room", async () => {
    await Promise.all([openRoom(A.page, chatRoomId), openRoom(B.page, chatRoomId)]);

    const hello = `hello from ${A.username} <b>not bold</b>`;
    await send(A.page, hello);
    await messageWithText(B.page, hello).waitFor();
    await messageWithText(A.page, hello).waitFor();

    const reply = `reply from ${B.username}\nsecond line`;
    await send(B.page, reply);
    await messageWithText(A.page, reply).waitFor();
    await messageWithText(B.page, reply).waitFor();

    // Shift+Enter inserts a newline instead of sending.
    const input = A.page.locator(tid("composer-input"));
    await input.fill("line one");
    await input.press("Shift+Enter");
    await input.pressSequentially("line two");
    assert.equal(await input.inputValue(), "line one\nline two");
    await A.page.locator(tid("composer-send")).click();
    await messageWithText(B.page, "line one\nline two").waitFor();
    await messageWithText(A.page, "line one\nline two").waitFor();

    // Own messages are shown exactly once; content is text, not HTML.
    assert.equal(await messageWithText(A.page, hello).count(), 1);
    assert.equal(await messageWithText(B.page, reply).count(), 1);
    assert.equal(await A.page.locator(`${tid("message-list")} b`).count(), 0, "content is not interpreted as HTML");
    const user = await messageWithText(B.page, hello).locator(tid("message-user")).textContent();
    assert.equal(user, A.username);
  });

  it("pages back through history to the oldest seeded message", async () => {
    const prefix = `seed-${runId}-`;
    const label = (i) => `${prefix}${String(i).padStart(3, "0")}`;

    // B has looked at the seed room before (so it has a last-seen position there).
    if (seedRoomId !== chatRoomId) {
      await openRoom(B.page, seedRoomId);
      await openRoom(B.page, chatRoomId);
    }

    // Seed through A's page over a raw WebSocket (same cookie).
    const seeded = await A.page.evaluate(
      async ({ roomId, labels }) => {
        const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/ws`;
        const ws = new WebSocket(url);
        const last = labels[labels.length - 1];
        return await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("seeding timed out")), 30_000);
          let received = 0;
          ws.onmessage = (ev) => {
            const frame = JSON.parse(ev.data);
            if (frame.type === "hello") {
              for (let i = 0; i < labels.length; i += 10) {
                const batch = labels.slice(i, i + 10).map((content) => ({ content }));
                ws.send(JSON.stringify({ type: "clientMessages", payload: { roomId, messages: batch } }));
              }
            } else if (frame.type === "serverMessages" && frame.payload.roomId === roomId) {
              for (const m of frame.payload.messages) {
                if (labels.includes(m.content)) received++;
                if (m.content === last) {
                  clearTimeout(timer);
                  ws.close();
                  resolve(received);
                }
              }
            } else if (frame.type === "error") {
              clearTimeout(timer);
              reject(new Error(`server error while seeding: ${JSON.stringify(frame.payload)}`));
            }
          };
          ws.onclose = (ev) => {
            if (ev.code !== 1000 && ev.code !== 1005) reject(new Error(`seeding socket closed: ${ev.code}`));
          };
        });
      },
      { roomId: seedRoomId, labels: Array.from({ length: SEED_COUNT }, (_, i) => label(i)) },
    );
    assert.equal(seeded, SEED_COUNT, "all seeded messages were broadcast back");

    if (seedRoomId !== chatRoomId) {
      // B is looking at another room: the seeded room gets an unread badge.
      await B.page.locator(`${tid("room-item")}[data-room-id="${seedRoomId}"] ${tid("room-unread")}`).waitFor();
    }

    // Reload B so that the seeded room starts from hello (newest 100 only).
    await B.page.reload();
    await B.page.locator(tid("room-item")).first().waitFor();
    const seedBadge = B.page.locator(`${tid("room-item")}[data-room-id="${seedRoomId}"] ${tid("room-unread")}`);
    // What came since B last looked is still unread after the reload.
    if (seedRoomId !== chatRoomId) await seedBadge.waitFor();
    await openRoom(B.page, seedRoomId);
    const page = B.page;
    await messageWithText(page, label(SEED_COUNT - 1)).waitFor();
    assert.equal(await messageWithText(page, label(0)).count(), 0, "oldest seeded message is not in the first page");

    const list = page.locator(tid("message-list"));
    let found = false;
    for (let i = 0; i < 40 && !found; i++) {
      await list.evaluate((el) => {
        el.scrollTop = 0;
        el.dispatchEvent(new Event("scroll"));
      });
      await page.waitForTimeout(250);
      found = (await messageWithText(page, label(0)).count()) > 0;
    }
    assert.ok(found, "oldest seeded message appeared after scrolling up");
    const oldest = messageWithText(page, label(0));
    await oldest.scrollIntoViewIfNeeded();
    assert.ok(await oldest.isVisible());

    // No duplicates, and seeded messages are in chronological order (oldest at top).
    const ids = await page.locator(tid("message")).evaluateAll((els) => els.map((e) => e.getAttribute("data-message-id")));
    assert.equal(new Set(ids).size, ids.length, "no duplicate messages");
    const contents = await page.locator(tid("message-content")).allTextContents();
    const seededOrder = contents.filter((c) => c.startsWith(prefix));
    assert.deepEqual(seededOrder, Array.from({ length: SEED_COUNT }, (_, i) => label(i)));

    // Seen now: another reload shows no badge for it.
    if (seedRoomId !== chatRoomId) {
      await openRoom(B.page, chatRoomId);
      await B.page.reload();
      await B.page.locator(`${tid("connection-status")}[data-status="online"]`).waitFor({ state: "attached" });
      await B.page.locator(`${tid("room-item")}[data-room-id="${seedRoomId}"]`).waitFor();
      assert.equal(await seedBadge.count(), 0);
    }
  });

  it("logs out back to the login form and logs in again", async () => {
    const { page } = A;
    await page.locator(tid("logout-button")).click();
    await page.locator(tid("login-form")).waitFor();
    assert.equal(await page.locator(tid("chat")).count(), 0);

    // The session is gone: a reload still shows the login form.
    await page.reload();
    await page.locator(tid("login-form")).waitFor();

    await page.locator(tid("login-email")).fill(A.email);
    await page.locator(tid("login-password")).fill(PASSWORD);
    await page.locator(tid("login-submit")).click();
    await page.locator(`${tid("current-user")}:text-is("${A.username}")`).waitFor();
    await page.locator(tid("room-item")).first().waitFor();

    await screenshot(B.page);
  });
});
