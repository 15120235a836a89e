// End-to-end test of getting around the web client: the messages and their actions by keyboard
// alone, and the place on screen (room or conversation) and what was typed there surviving a
// reload, with Back and Forward between places.
//
//   HEARTH_URL=http://127.0.0.1:8080 npm run e2e
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { api, conversation, imMessage, launch, newUser, registerFriends, tid } from "./helpers.mjs";

const runId = randomBytes(4).toString("hex");

let browser;
/** @type {{ username: string, email: string, id: number, context: import('playwright-core').BrowserContext, page: import('playwright-core').Page }} */
let A;
/** @type {typeof A} */
let B;
let directId;
const texts = [`first from A ${runId}`, `second from A ${runId}`, `third from A ${runId}`];
/** While set, what the server sends B's socket waits here (a sent message stays pending). */
let holding = false;
const held = [];
let release = () => {};

/** The focused element: its test id, the row it is in (`data-row`) and that row's text. */
function focused(page) {
  return page.evaluate(() => {
    const a = document.activeElement;
    const row = a?.closest("[data-row]");
    return { testid: a?.getAttribute("data-testid") ?? null, row: row?.getAttribute("data-row") ?? null, text: row?.textContent ?? "" };
  });
}

describe("Hearth keyboard and places", { timeout: 120_000 }, () => {
  before(async () => {
    browser = await launch();
    A = await newUser(browser, "pla", runId);
    B = await newUser(browser, "plb", runId);
    await B.context.routeWebSocket(/\/api\/ws/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => server.send(m));
      server.onMessage((m) => (holding ? held.push(m) : ws.send(m)));
      release = () => {
        holding = false;
        for (const m of held.splice(0)) ws.send(m);
      };
    });
    await registerFriends(A, B);
    ({ conversationId: directId } = await api(A, "POST", "/api/direct", { userId: B.id }));
    for (const [i, content] of texts.entries()) {
      await api(A, "POST", `/api/conversations/${directId}/messages`, { clientMsgId: `kb-${runId}-${i}`, content });
    }
  });

  after(async () => {
    await browser?.close();
  });

  it("keyboard only: the arrow keys move among the messages, Tab reaches a message's actions, and B replies", async () => {
    const { page } = B;
    await conversation(page, directId).click();
    await page.locator(`${tid("conversation-title")}[data-conversation-id="${directId}"]`).waitFor();
    await imMessage(page, texts[2]).waitFor();
    await page.locator(tid("im-composer-input")).focus();
    assert.equal((await focused(page)).testid, "im-composer-input");

    // Up from the empty composer: the newest message, then the one before.
    await page.keyboard.press("ArrowUp");
    let f = await focused(page);
    assert.match(f.row ?? "", /^s:\d+$/);
    assert.ok(f.text.includes(texts[2]), f.text);
    await page.keyboard.press("ArrowUp");
    f = await focused(page);
    assert.ok(f.text.includes(texts[1]), f.text);
    const row = imMessage(page, texts[1]);
    // The focused message shows its actions; Tab goes to the first, Reply.
    await row.locator(tid("im-message-reply")).waitFor();
    await page.keyboard.press("Tab");
    f = await focused(page);
    assert.equal(f.testid, "im-message-reply");
    assert.ok(f.text.includes(texts[1]));
    assert.equal(await row.locator(tid("im-message-reply")).isVisible(), true);
    await page.keyboard.press("Enter");
    await page.locator(tid("im-replying")).filter({ hasText: texts[1] }).waitFor();
    assert.equal((await focused(page)).testid, "im-composer-input");
    const reply = `keyboard reply ${runId}`;
    await page.keyboard.type(reply);
    // Its ack is held back: the reply stays pending while it has the focus.
    holding = true;
    await page.keyboard.press("Enter");
    await page.locator(`${tid("im-message")}[data-state="pending"]`).filter({ hasText: reply }).locator(tid("im-message-quote")).filter({ hasText: texts[1] }).waitFor();
    await page.keyboard.press("ArrowUp");
    f = await focused(page);
    assert.match(f.row ?? "", /^p:/);
    assert.ok(f.text.includes(reply));
    // Acked, it is drawn again as sent: the focus stays on it.
    release();
    await page.locator(`${tid("im-message")}[data-state="sent"]`).filter({ hasText: reply }).locator(tid("im-message-quote")).filter({ hasText: texts[1] }).waitFor();
    f = await focused(page);
    assert.match(f.row ?? "", /^s:\d+$/);
    assert.ok(f.text.includes(reply));

    // Down past the newest message goes back to the composer.
    await page.keyboard.press("ArrowDown");
    assert.equal((await focused(page)).testid, "im-composer-input");
  });

  it("a reload reopens the conversation with its draft; Back and Forward move between places", async () => {
    const { page } = B;
    const input = page.locator(tid("im-composer-input"));
    const roomInput = page.locator(tid("composer-input"));
    const draft = `half written ${runId}`;
    await conversation(page, directId).click();
    await input.fill(draft);

    // A room, with a draft of its own.
    const room = page.locator(tid("room-item")).first();
    const roomId = await room.getAttribute("data-room-id");
    await room.click();
    await page.locator(tid("room-view")).waitFor();
    const roomDraft = `room draft ${runId}`;
    await roomInput.fill(roomDraft);
    await conversation(page, directId).click();
    assert.equal(await input.inputValue(), draft, "the conversation's draft is back");
    assert.equal(new URL(page.url()).hash, `#/c/${directId}`);

    await page.reload();
    await page.locator(`${tid("conversation-title")}[data-conversation-id="${directId}"]`).waitFor();
    await page.locator(tid("conversation-view")).waitFor();
    assert.equal(await input.inputValue(), draft, "the draft survived the reload");

    await page.goBack();
    await page.locator(tid("room-view")).waitFor();
    await page.locator(`${tid("room-item")}[data-room-id="${roomId}"][aria-current="true"]`).waitFor();
    assert.equal(await roomInput.inputValue(), roomDraft);
    await page.goForward();
    await page.locator(tid("conversation-view")).waitFor();
    await page.locator(`${tid("conversation-title")}[data-conversation-id="${directId}"]`).waitFor();
    assert.equal(await input.inputValue(), draft);

    // Sent: the draft is gone, after a reload too. Coming back without the URL's place (a new
    // visit to /) reopens the last one.
    await input.press("Enter");
    await imMessage(page, draft).waitFor();
    assert.equal(await input.inputValue(), "");
    await page.goto("/");
    await page.locator(`${tid("conversation-title")}[data-conversation-id="${directId}"]`).waitFor();
    await page.locator(tid("conversation-view")).waitFor();
    assert.equal(await input.inputValue(), "");
    assert.equal(new URL(page.url()).hash, `#/c/${directId}`);

    // A link to a conversation this page has not heard of yet (just created) opens it.
    const name = `Linked ${runId}`;
    const { conversationId: groupId } = await api(A, "POST", "/api/groups", { name, members: [B.id] });
    await page.goto(`/#/c/${groupId}`);
    await page.locator(`${tid("conversation-title")}[data-conversation-id="${groupId}"]`).filter({ hasText: name }).waitFor();
    // One that is not ours falls back to a room, and says nothing alarming.
    await page.goto(`/#/c/999999`);
    await page.locator(tid("room-view")).waitFor();
    assert.match(new URL(page.url()).hash, /^#\/r\//);
  });
});
