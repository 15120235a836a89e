// End-to-end test of attachments (images, files, voice), upload errors and search in the web
// client against a running server.
//
//   HEARTH_URL=http://127.0.0.1:8080 npm run e2e
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { api, conversation, imMessage, imSend, launch, newUser, png, registerFriends, tid, wav } from "./helpers.mjs";

const SCREENSHOT = "/tmp/hearth-files.png";
const runId = randomBytes(4).toString("hex");
/** Letters only, so that the search tokenizer sees one plain word. */
const WORD = "quokka" + [...runId].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join("");
/** Another such word, for the search hit in a room. */
const ROOM_WORD = "wombat" + [...runId].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join("");
/** The server's room history page (`limits.history_page`): hello holds the newest this many. */
const HISTORY_PAGE = 100;

let browser;
/** @type {{ username: string, email: string, id: number, context: import('playwright-core').BrowserContext, page: import('playwright-core').Page }} */
let A;
/** @type {typeof A} */
let B;
let directId;

/** Record every state and progress value the upload items of `page` go through. */
async function watchUploads(page) {
  await page.evaluate(() => {
    const seen = { progress: [], states: [] };
    window.__uploads = seen;
    const note = (n) => {
      if (!(n instanceof HTMLElement) || n.dataset.testid !== "im-upload") return;
      seen.progress.push(Number(n.dataset.progress));
      seen.states.push(n.dataset.state);
    };
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === "attributes") note(r.target);
        else r.addedNodes.forEach(note);
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-progress", "data-state"] });
  });
}

async function uploadsSeen(page) {
  return page.evaluate(() => window.__uploads);
}

/**
 * Posts `contents` into a room over a second socket of `page`'s user, 10 to a frame, each frame
 * once the one before it is stored (broadcast back), waiting out `rate_limited` refusals.
 */
async function postToRoom(page, roomId, contents) {
  await page.evaluate(
    async ({ roomId, contents }) => {
      const frames = [];
      for (let i = 0; i < contents.length; i += 10) frames.push(contents.slice(i, i + 10));
      const ws = new WebSocket(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/ws`);
      await new Promise((resolve, reject) => {
        let at = 0;
        const timer = setTimeout(() => fail(new Error(`posting to ${roomId} timed out at frame ${at}`)), 90_000);
        const fail = (e) => {
          clearTimeout(timer);
          ws.close();
          reject(e);
        };
        const sendFrame = () => ws.send(JSON.stringify({ type: "clientMessages", payload: { roomId, messages: frames[at].map((content) => ({ content })) } }));
        ws.onmessage = (ev) => {
          const f = JSON.parse(ev.data);
          if (f.type === "hello") sendFrame();
          else if (f.type === "serverMessages" && f.payload.roomId === roomId && f.payload.messages.some((m) => m.content === frames[at]?.at(-1))) {
            at++;
            if (at < frames.length) return sendFrame();
            clearTimeout(timer);
            ws.close();
            resolve();
          } else if (f.type === "error") {
            if (f.payload.code === "rate_limited") setTimeout(sendFrame, (f.payload.retryAfterMs ?? 1000) + 50);
            else fail(new Error(`posting to ${roomId}: ${JSON.stringify(f.payload)}`));
          }
        };
        ws.onclose = (ev) => {
          if (at < frames.length) fail(new Error(`posting to ${roomId}: the socket closed (${ev.code})`));
        };
      });
    },
    { roomId, contents },
  );
}

/** Searches `page` for `q` through the search box and waits for the answer. */
async function searchFor(page, q) {
  await page.locator(tid("search-input")).fill(q);
  await page.locator(tid("search-input")).press("Enter");
  await page.locator(`${tid("search-panel")}[aria-busy="false"]`).waitFor();
}

/**
 * Waits until the server's search index has a room hit for `q` for user `u`: the index may lag
 * a send (about 200 ms, 1.2 s under traffic), so the API is asked again until it answers.
 */
async function indexedInRoom(u, q) {
  for (let i = 0; i < 60; i++) {
    const { hits } = await api(u, "GET", `/api/search/messages?q=${encodeURIComponent(q)}`);
    if (hits.some((h) => h.room !== undefined)) return;
    await delay(250);
  }
  throw new Error(`no room hit for ${q} after 15 s`);
}

function lastOfKind(page, kind) {
  return page.locator(`${tid("im-message")}[data-kind="${kind}"][data-state="sent"]`).last();
}

describe("Hearth attachments and search", { timeout: 180_000 }, () => {
  before(async () => {
    browser = await launch();
    A = await newUser(browser, "fa", runId);
    B = await newUser(browser, "fb", runId);
    await registerFriends(A, B);

    // A opens the direct conversation from the friends list and says hello; B opens it.
    await A.page.locator(tid("open-friends")).click();
    await A.page.locator(`${tid("friend-item")}[data-username="${B.username}"] ${tid("friend-message")}`).click();
    await A.page.locator(tid("conversation-view")).waitFor();
    directId = await A.page.locator(tid("conversation-title")).getAttribute("data-conversation-id");
    await imSend(A.page, `files hello ${runId}`);
    await conversation(B.page, directId).click();
    await imMessage(B.page, `files hello ${runId}`).waitFor();
  });

  after(async () => {
    await browser?.close();
  });

  it("uploads an image with the attach button: progress completes, and B sees it inline", async () => {
    await watchUploads(A.page);
    const [chooser] = await Promise.all([A.page.waitForEvent("filechooser"), A.page.locator(tid("im-attach")).click()]);
    await chooser.setFiles({ name: `photo-${runId}.png`, mimeType: "image/png", buffer: png(400, 300) });

    const mine = lastOfKind(A.page, "image");
    await mine.locator(tid("im-image")).waitFor();
    const seen = await uploadsSeen(A.page);
    assert.ok(seen.states.includes("uploading"), `an upload item was shown: ${JSON.stringify(seen)}`);
    assert.equal(Math.max(...seen.progress), 100, `the progress bar reached 100%: ${JSON.stringify(seen)}`);
    assert.ok(seen.states.includes("done"), "the upload finished");
    assert.equal(await A.page.locator(tid("im-upload")).count(), 0, "the upload item made way for the message");

    // B: inline, from the thumbnail, at the image's proportions.
    const img = lastOfKind(B.page, "image").locator(tid("im-image"));
    await img.waitFor();
    await B.page.waitForFunction((e) => e.complete && e.naturalWidth > 0, await img.elementHandle());
    assert.match(await img.getAttribute("src"), /^\/api\/files\/[0-9a-f]{32}\/thumbnail$/);
    assert.equal(await img.getAttribute("width"), "320");
    assert.equal(await img.getAttribute("height"), "240");

    // A click opens the full image; Escape closes it.
    await img.click();
    const full = B.page.locator(tid("image-viewer-img"));
    await full.waitFor();
    await B.page.waitForFunction((e) => e.complete && e.naturalWidth === 400, await full.elementHandle());
    await B.page.keyboard.press("Escape");
    await B.page.locator(tid("image-viewer")).waitFor({ state: "hidden" });
  });

  it("sends a small file as a download link with its size", async () => {
    const name = `notes-${runId}.txt`;
    const body = `some notes ${runId}\n`;
    await A.page.locator(tid("im-attach-input")).setInputFiles({ name, mimeType: "text/plain", buffer: Buffer.from(body) });
    const link = B.page.locator(tid("im-file-link")).filter({ hasText: name });
    await link.waitFor();
    const item = B.page.locator(`${tid("im-message")}[data-kind="file"]`).filter({ has: link });
    assert.equal(await item.locator(tid("im-file-size")).textContent(), `${body.length} B`);
    const href = await link.getAttribute("href");
    assert.equal(await link.getAttribute("download"), name);
    const res = await B.page.request.get(href);
    assert.equal(res.status(), 200);
    assert.equal(await res.text(), body);
    assert.match(res.headers()["content-disposition"], /^attachment/);
  });

  it("sends an audio file as a voice message with a player", async () => {
    const [chooser] = await Promise.all([A.page.waitForEvent("filechooser"), A.page.locator(tid("im-voice-file")).click()]);
    await chooser.setFiles({ name: `voice-${runId}.wav`, mimeType: "audio/wav", buffer: wav(0.5) });
    const audio = lastOfKind(B.page, "voice").locator(tid("im-voice"));
    await audio.waitFor();
    assert.match(await audio.getAttribute("src"), /^\/api\/files\/[0-9a-f]{32}$/);
    await B.page.waitForFunction((e) => e.readyState >= 1 && Math.abs(e.duration - 0.5) < 0.05, await audio.elementHandle());
    await lastOfKind(A.page, "voice").locator(tid("im-voice")).waitFor();
  });

  it("takes files dropped onto the conversation", async () => {
    const name = `dropped-${runId}.txt`;
    const dt = await A.page.evaluateHandle((n) => {
      const d = new DataTransfer();
      d.items.add(new File(["dropped"], n, { type: "text/plain" }));
      return d;
    }, name);
    const list = A.page.locator(tid("im-message-list"));
    await list.dispatchEvent("dragenter", { dataTransfer: dt });
    await A.page.locator(tid("im-drop-hint")).waitFor();
    await list.dispatchEvent("drop", { dataTransfer: dt });
    await A.page.locator(tid("im-drop-hint")).waitFor({ state: "hidden" });
    await B.page.locator(tid("im-file-link")).filter({ hasText: name }).waitFor();
  });

  it("sends files in the order chosen, even when a later one is stored first", async () => {
    const first = `first-${runId}.txt`;
    const second = `second-${runId}.txt`;
    // The first upload is held back, so the second is stored before it.
    const firstUpload = (url) => url.pathname === "/api/files" && url.searchParams.get("name") === first;
    await A.page.route(firstUpload, async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await route.continue();
    });
    await A.page.locator(tid("im-attach-input")).setInputFiles([
      { name: first, mimeType: "text/plain", buffer: Buffer.from("chosen first") },
      { name: second, mimeType: "text/plain", buffer: Buffer.from("chosen second") },
    ]);
    const waiting = A.page.locator(`${tid("im-upload")}[data-name="${second}"][data-state="done"]`);
    await waiting.locator(tid("im-upload-label")).filter({ hasText: "waiting for the files chosen before it" }).waitFor();
    // Leaving now would lose both files (the finished one waits for the first): the page asks.
    const leaveAsks = () =>
      A.page.evaluate(() => {
        const ev = new Event("beforeunload", { cancelable: true });
        window.dispatchEvent(ev);
        return ev.defaultPrevented;
      });
    assert.equal(await leaveAsks(), true, "leaving with uploads queued asks first");
    const links = B.page.locator(tid("im-file-link"));
    await links.filter({ hasText: second }).waitFor();
    const texts = await links.allTextContents();
    const at = (name) => texts.findIndex((t) => t.includes(name));
    assert.ok(at(first) >= 0 && at(first) < at(second), `order on B: ${texts.join(", ")}`);
    await A.page.unroute(firstUpload);
    assert.equal(await A.page.locator(tid("im-upload")).count(), 0);
    assert.equal(await leaveAsks(), false, "nothing queued: leaving does not ask");
  });

  it("shows refused uploads clearly (413, 429) and retries", async () => {
    const refusals = [
      { status: 413, body: { id: "file_too_large", message: "files are limited to 1048576 bytes" }, text: "is too large (the limit is 1 MB)" },
      { status: 429, body: { id: "rate_limited", message: "too many requests", retryAfterMs: 3500 }, text: "Uploading too fast: retry in 4 s" },
      { status: 403, body: { id: "file_forbidden", message: "no" }, text: "You are not allowed to upload" },
    ];
    const uploads = (url) => url.pathname === "/api/files";
    for (const r of refusals) {
      await A.page.route(uploads, (route) =>
        route.request().method() === "POST"
          ? route.fulfill({ status: r.status, contentType: "application/json", body: JSON.stringify(r.body) })
          : route.continue(),
      );
      await A.page.locator(tid("im-attach-input")).setInputFiles({ name: `refused-${r.status}.txt`, mimeType: "text/plain", buffer: Buffer.from("x") });
      const failed = A.page.locator(`${tid("im-upload")}[data-state="failed"]`);
      await failed.locator(tid("im-upload-label")).filter({ hasText: r.text }).waitFor();
      assert.equal(await failed.locator(`${tid("im-upload-label")}[role="alert"]`).count(), 1);
      // Retry only where it can work: not for a file too large or not allowed.
      assert.equal(await failed.locator(tid("im-upload-retry")).count(), r.status === 429 ? 1 : 0, `Retry after ${r.status}`);
      await A.page.unroute(uploads);
      if (r.status !== 429) {
        await failed.locator(tid("im-upload-dismiss")).click();
        await failed.waitFor({ state: "detached" });
      } else {
        // The wait is over: Retry sends it.
        await failed.locator(tid("im-upload-retry")).click();
        await B.page.locator(tid("im-file-link")).filter({ hasText: "refused-429.txt" }).waitFor();
      }
    }
    assert.equal(await A.page.locator(tid("im-upload")).count(), 0);
  });

  it("an image that is not one is offered to be sent as a file, and failed rows keep the order chosen", async () => {
    // A file too large (refused at upload) chosen before a "PNG" that is not one (refused at send).
    const big = `big-${runId}.bin`;
    const fake = `fake-${runId}.png`;
    const bigUpload = (url) => url.pathname === "/api/files" && url.searchParams.get("name") === big;
    await A.page.route(bigUpload, (route) =>
      route.fulfill({ status: 413, contentType: "application/json", body: JSON.stringify({ id: "file_too_large", message: "files are limited to 1048576 bytes" }) }),
    );
    await A.page.locator(tid("im-attach-input")).setInputFiles([
      { name: big, mimeType: "application/octet-stream", buffer: Buffer.from("pretend this is large") },
      { name: fake, mimeType: "image/png", buffer: Buffer.from("not a picture at all") },
    ]);
    const refused = A.page.locator(`${tid("im-message")}[data-state="failed"]`).filter({ hasText: fake });
    await refused.filter({ hasText: "send it as a file" }).waitFor();
    await A.page.locator(`${tid("im-upload")}[data-state="failed"][data-name="${big}"]`).waitFor();
    await A.page.unroute(bigUpload);
    const rows = await A.page.evaluate(() =>
      [...document.querySelectorAll('[data-testid="im-upload"][data-state="failed"], [data-testid="im-message"][data-state="failed"]')].map((e) => e.dataset.name ?? e.textContent),
    );
    assert.equal(rows.length, 2, JSON.stringify(rows));
    assert.equal(rows[0], big, `the file chosen first is listed first: ${JSON.stringify(rows)}`);
    assert.ok(rows[1].includes(fake));

    // No Retry (it would be refused again); "Send as file" sends the same upload as a file.
    assert.equal(await refused.locator(tid("im-message-retry")).count(), 0);
    await refused.locator(tid("im-message-send-as-file")).click();
    await B.page.locator(tid("im-file-link")).filter({ hasText: fake }).waitFor();
    await lastOfKind(A.page, "file").locator(tid("im-file-link")).filter({ hasText: fake }).waitFor();
    assert.equal(await A.page.locator(`${tid("im-message")}[data-state="failed"]`).count(), 0);
    await A.page.locator(`${tid("im-upload")}[data-name="${big}"] ${tid("im-upload-dismiss")}`).click();
    assert.equal(await A.page.locator(tid("im-upload")).count(), 0);
  });

  it("finds a message through the search box with the word highlighted, and opens it", async () => {
    const text = `the ${WORD} hopped over <b>the</b> fence`;
    await imSend(A.page, text);
    await imMessage(B.page, text).waitFor();

    // The index may lag a send by ~200 ms: search again until the hit is there.
    const hit = B.page.locator(tid("search-result")).filter({ has: B.page.locator(tid("search-highlight")) });
    for (let i = 0; i < 30; i++) {
      await B.page.locator(tid("search-input")).fill(WORD);
      await B.page.locator(tid("search-input")).press("Enter");
      await B.page.locator(`${tid("search-panel")}[aria-busy="false"]`).waitFor();
      if ((await hit.count()) > 0) break;
      await B.page.waitForTimeout(200);
    }
    assert.equal(await hit.count(), 1, "exactly one hit");
    assert.equal((await hit.locator(tid("search-highlight")).allTextContents()).join("|"), WORD);
    assert.ok((await hit.locator(tid("search-snippet")).textContent()).includes(`${WORD} hopped over <b>the</b> fence`), "the snippet is the text, markup and all");
    assert.equal(await B.page.locator(`${tid("search-results")} b`).count(), 0, "server text is never HTML");
    assert.equal(await hit.getAttribute("data-conversation-id"), directId);
    // In a direct chat the place is the sender: A's name once, not twice.
    assert.equal(await hit.locator(tid("search-result-where")).textContent(), A.username);
    assert.equal(await hit.getByText(A.username, { exact: true }).count(), 1);

    // Filtering by sender: from B there is nothing; from A there is the hit.
    await B.page.locator(tid("search-sender")).selectOption(String(B.id));
    await B.page.locator(tid("search-empty")).waitFor();
    await B.page.locator(tid("search-sender")).selectOption(String(A.id));
    await hit.waitFor();
    await B.page.locator(tid("search-conversation")).selectOption(directId);
    await hit.waitFor();

    await hit.click();
    await B.page.locator(`${tid("conversation-title")}[data-conversation-id="${directId}"]`).waitFor();
    await imMessage(B.page, text).waitFor();
  });

  it("a search for punctuation only asks for a word (and asks the server nothing)", async () => {
    const asked = [];
    const listen = (r) => r.url().includes("/api/search/messages") && asked.push(r.url());
    B.page.on("request", listen);
    await B.page.locator(tid("search-input")).fill("?!… —");
    await B.page.locator(tid("search-input")).press("Enter");
    await B.page.locator(tid("search-error")).filter({ hasText: "Type a word to search for." }).waitFor();
    B.page.off("request", listen);
    assert.deepEqual(asked, []);
  });

  it("opens a room hit older than the room's first page at the message, loading history back to it", async () => {
    // The last room: the one other test files post into least.
    const rooms = await B.page.locator(tid("room-item")).evaluateAll((els) => els.map((e) => ({ id: e.dataset.roomId, name: e.dataset.roomName })));
    assert.ok(rooms.length > 0, "the server has rooms");
    const room = rooms[rooms.length - 1];
    const text = `the ${ROOM_WORD} waddled through the room`;
    // Enough before it that it can be scrolled to the middle even in a room with nothing else.
    const before = Array.from({ length: 40 }, (_, i) => `room before ${runId} ${i}`);
    // More than a page after it: the room opens (and hello holds) newer messages only.
    const after = Array.from({ length: HISTORY_PAGE + 10 }, (_, i) => `room after ${runId} ${i}`);
    await postToRoom(A.page, room.id, [...before, text, ...after]);

    // B starts afresh (hello: the newest page only), watching the history requests it sends.
    const historyAsked = [];
    B.page.on("websocket", (ws) =>
      ws.on("framesent", (f) => {
        try {
          const frame = JSON.parse(String(f.payload));
          if (frame.type === "requestRoomHistory") historyAsked.push(frame.payload.roomId);
        } catch {
          /* not JSON */
        }
      }),
    );
    await B.page.reload();
    await B.page.locator(`${tid("room-item")}[data-room-id="${room.id}"]`).waitFor();
    await B.page.locator(`${tid("connection-status")}[data-status="online"]`).waitFor({ state: "attached" });

    await indexedInRoom(B, ROOM_WORD);
    await searchFor(B.page, ROOM_WORD);
    const hit = B.page.locator(`${tid("search-result")}[data-room-id="${room.id}"]`).filter({ has: B.page.locator(tid("search-highlight")) });
    await hit.waitFor();
    assert.equal(await hit.count(), 1, "exactly one hit");
    assert.equal(await hit.locator(tid("search-result-where")).textContent(), `# ${room.name}`);
    const seq = await hit.getAttribute("data-seq");
    const target = B.page.locator(tid("message")).filter({ has: B.page.getByText(text, { exact: true }) });
    assert.equal(await target.count(), 0, "the message is not on screen before the hit is opened");
    const askedBefore = historyAsked.filter((r) => r === room.id).length;

    await hit.click();
    // Found and highlighted for a moment (the class goes after 2 s)...
    const flashed = B.page.locator(`${tid("message")}.flash`).filter({ has: B.page.getByText(text, { exact: true }) });
    await flashed.waitFor();
    await B.page.locator(`${tid("room-item")}[data-room-id="${room.id}"][aria-current="true"]`).waitFor();
    assert.ok(historyAsked.filter((r) => r === room.id).length > askedBefore, "older history of the room was requested");
    assert.match(await target.getAttribute("data-message-id"), new RegExp(`^\\d+-${seq}$`), "the hit's seq is the n of the room message's id");
    // ...and scrolled into the middle of the list, with newer messages below it.
    const where = await target.evaluate((el) => {
      const list = el.closest('[data-testid="message-list"]').getBoundingClientRect();
      const r = el.getBoundingClientRect();
      return { top: r.top - list.top, bottom: list.bottom - r.bottom, mid: (r.top + r.bottom) / 2 - (list.top + list.bottom) / 2, height: list.height };
    });
    assert.ok(where.top >= 0 && where.bottom >= 0, `the message is in view: ${JSON.stringify(where)}`);
    assert.ok(Math.abs(where.mid) <= where.height / 4, `the message is near the middle: ${JSON.stringify(where)}`);
    assert.equal(await B.page.locator(tid("message")).filter({ has: B.page.getByText(after.at(-1), { exact: true }) }).count(), 1, "the newest message is still there");
    await flashed.waitFor({ state: "detached" });
    assert.equal(await B.page.locator(tid("error-toast")).filter({ hasText: "That message" }).isVisible(), false, "no toast about a missing message");
  });

  it("says so when a room hit is no longer in the room", async () => {
    // The server answers with a hit for a message the room does not have (seq 0: before its first).
    const search = (url) => url.pathname === "/api/search/messages";
    await B.page.route(search, async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      for (const h of body.hits) if (h.room !== undefined) h.message.seq = 0;
      await route.fulfill({ response: res, json: body });
    });
    await searchFor(B.page, ROOM_WORD);
    const hit = B.page.locator(tid("search-result")).filter({ has: B.page.locator(tid("search-highlight")) });
    await hit.waitFor();
    const roomId = await hit.getAttribute("data-room-id");
    assert.ok(roomId, "the hit is in a room");
    await hit.click();
    await B.page.locator(`${tid("room-item")}[data-room-id="${roomId}"][aria-current="true"]`).waitFor();
    // Paged back to the beginning of the room (or as far as it goes): not there.
    await B.page.locator(tid("error-toast")).filter({ hasText: /That message is (no longer in|too far back in) #/ }).waitFor();
    await B.page.unroute(search);
  });

  it("finds users by name prefix when adding friends", async () => {
    await A.page.locator(tid("open-friends")).click();
    await A.page.locator(tid("user-search-input")).pressSequentially(B.username.slice(0, -2));
    await A.page.locator(`${tid("user-search-result")}[data-username="${B.username}"]`).waitFor();
    try {
      await B.page.screenshot({ path: SCREENSHOT });
      console.log(`screenshot: ${SCREENSHOT}`);
    } catch (e) {
      console.error("screenshot failed:", e);
    }
  });
});
