// Shared by the end-to-end tests: the browser, users, and small builders. Not a test file
// itself (node --test runs only *.test.mjs).
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { deflateSync } from "node:zlib";
import { chromium } from "playwright-core";

export const BASE = process.env.HEARTH_URL;
if (!BASE) {
  throw new Error("HEARTH_URL is not set: start a Hearth server and run e.g. HEARTH_URL=http://127.0.0.1:8080 npm run e2e");
}
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (set CHROMIUM_PATH)`);
export const PASSWORD = "correct horse battery";

export const tid = (id) => `[data-testid="${id}"]`;

/** Headless Debian Chromium (never a downloaded one), with `extraArgs` (a fake microphone, say). */
export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", ...extraArgs],
  });
}

/** A phone: 390 × 844 CSS pixels, a touchscreen and no mouse (`hover: none`). */
export const PHONE = { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 3 };

/** A fresh browser context and page for a new, not yet registered user (`options`: context options, e.g. PHONE). */
export async function newUser(browser, tag, runId, options = {}) {
  const context = await browser.newContext({ baseURL: BASE, viewport: { width: 1280, height: 800 }, ...options });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${tag}] page error:`, e));
  const username = `${tag}${runId}${randomBytes(2).toString("hex")}`;
  return { username, email: `${username}@example.com`, context, page };
}

/** Sign up through the form and wait until the socket is online. */
export async function register(u) {
  const { page } = u;
  await page.goto("/");
  await page.locator(tid("login-form")).waitFor();
  await page.locator(tid("show-register")).click();
  await page.locator(tid("register-username")).fill(u.username);
  await page.locator(tid("register-email")).fill(u.email);
  await page.locator(tid("register-password")).fill(PASSWORD);
  await page.locator(tid("register-submit")).click();
  await page.locator(`${tid("current-user")}:text-is("${u.username}")`).waitFor();
  await page.locator(`${tid("connection-status")}[data-status="online"]`).waitFor({ state: "attached" });
}

/** Sign up over HTTP only (a user who never opens the client): the session is the context's. */
export async function registerByApi(u) {
  const res = await u.page.request.post("/api/create-account", { data: { username: u.username, email: u.email, password: PASSWORD }, failOnStatusCode: false });
  if (!res.ok()) throw new Error(`create-account: ${res.status()} ${await res.text()}`);
  u.id = (await api(u, "GET", "/api/me")).id;
}

/**
 * Records the 403 answers `page` gets for what a member's panel fetches (a conversation's members,
 * a group's join requests): there should be none once the user is out of the group.
 */
export function watchPanel403(page) {
  const seen = [];
  page.on("response", (r) => {
    if (r.status() === 403 && /\/api\/(conversations\/\d+\/members|groups\/\d+\/join-requests)/.test(r.url())) seen.push(r.url());
  });
  return seen;
}

/** A JSON API call with the user's session cookie (no Origin header: not a cross-site request). */
export async function api(u, method, path, data) {
  const res = await u.page.request.fetch(path, { method, data, failOnStatusCode: false });
  if (!res.ok()) throw new Error(`${method} ${path}: ${res.status()} ${await res.text()}`);
  return res.status() === 204 ? undefined : res.json();
}

/** Signs both up (setting their `id`) and makes them friends, through the API. */
export async function registerFriends(a, b) {
  await Promise.all([register(a), register(b)]);
  a.id = (await api(a, "GET", "/api/me")).id;
  b.id = (await api(b, "GET", "/api/me")).id;
  await api(a, "POST", "/api/friends/requests", { userId: b.id });
  await api(b, "POST", `/api/friends/requests/${a.id}/accept`);
}

export function imMessage(page, text) {
  return page.locator(tid("im-message")).filter({ has: page.getByText(text, { exact: true }) });
}

export async function imSend(page, text) {
  const input = page.locator(tid("im-composer-input"));
  await input.fill(text);
  await input.press("Enter");
  await page.waitForFunction((sel) => document.querySelector(sel)?.value === "", tid("im-composer-input"));
}

export function conversation(page, id) {
  return page.locator(`${tid("conversation-item")}[data-conversation-id="${id}"]`);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** An RGB PNG of width × height: a gradient with noise (so it does not compress to nothing). */
export function png(width, height) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const noise = randomBytes(width * height);
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    raw[row] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const i = row + 1 + x * 3;
      const n = noise[y * width + x] & 0x3f;
      raw[i] = Math.floor((x / width) * 190) + n;
      raw[i + 1] = Math.floor((y / height) * 190) + n;
      raw[i + 2] = 120 + (n >> 1);
    }
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk("IHDR", ihdr), pngChunk("IDAT", deflateSync(raw)), pngChunk("IEND", Buffer.alloc(0))]);
}

/** A mono 16-bit PCM WAV: `seconds` of a 440 Hz tone. */
export function wav(seconds = 0.5, rate = 8000) {
  const samples = Math.round(seconds * rate);
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) data.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * 12000), i * 2);
  const h = Buffer.alloc(44);
  h.write("RIFF", 0, "ascii");
  h.writeUInt32LE(36 + data.length, 4);
  h.write("WAVE", 8, "ascii");
  h.write("fmt ", 12, "ascii");
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36, "ascii");
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}
