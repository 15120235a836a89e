// End-to-end test of smaller points of the web client: Recall offered only within the recall
// window, a direct chat's header, and the record button saying what it does while recording.
//
//   HEARTH_URL=http://127.0.0.1:8080 npm run e2e
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { api, conversation, imMessage, imSend, launch, newUser, registerFriends, tid } from "./helpers.mjs";

const runId = randomBytes(4).toString("hex");

let browser;
/** @type {{ username: string, email: string, id: number, context: import('playwright-core').BrowserContext, page: import('playwright-core').Page }} */
let A;
/** @type {typeof A} */
let B;
let directId;

describe("Hearth details", { timeout: 120_000 }, () => {
  before(async () => {
    // A microphone that plays a tone, allowed without asking.
    browser = await launch(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]);
    A = await newUser(browser, "dta", runId);
    B = await newUser(browser, "dtb", runId);
    // A's clock can be moved on (time runs as usual until then).
    await A.page.clock.install();
    await A.context.grantPermissions(["microphone"]);
    await registerFriends(A, B);
    ({ conversationId: directId } = await api(A, "POST", "/api/direct", { userId: B.id }));
    await conversation(A.page, directId).click();
    await A.page.locator(`${tid("conversation-title")}[data-conversation-id="${directId}"]`).waitFor();
  });

  after(async () => {
    await browser?.close();
  });

  it("a direct chat's header shows the peer's face apart from their name", async () => {
    const gap = await A.page.locator(tid("conversation-title")).evaluate((h) => {
      const img = h.querySelector("img.avatar");
      const text = [...h.childNodes].find((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim() !== "");
      const range = document.createRange();
      range.selectNodeContents(text);
      return range.getBoundingClientRect().left - img.getBoundingClientRect().right;
    });
    assert.ok(gap >= 4, `the avatar touches the name (gap ${gap} px)`);
  });

  it("Recall is offered until the recall window (2 minutes) closes, not after", async () => {
    const text = `recall window ${runId}`;
    await imSend(A.page, text);
    const mine = A.page.locator(`${tid("im-message")}[data-state="sent"]`).filter({ has: A.page.getByText(text, { exact: true }) });
    await mine.waitFor();
    await mine.hover();
    await mine.locator(tid("im-message-recall")).waitFor();
    // Just inside the window (less a few seconds for the request to get there): still offered.
    await A.page.clock.fastForward(110_000);
    await mine.hover();
    await A.page.waitForTimeout(300);
    assert.equal(await mine.locator(tid("im-message-recall")).count(), 1);
    // Past it (the server would refuse with 409): gone at once, not at the next redraw.
    await A.page.clock.fastForward(8_000);
    await mine.locator(tid("im-message-recall")).waitFor({ state: "detached", timeout: 2_000 });
    assert.equal(await mine.locator(tid("im-message-reply")).count(), 1, "the other actions stay");
  });

  it("the record button says what it does while recording, then sends the recording", async () => {
    const record = A.page.locator(tid("im-record"));
    assert.equal(await record.getAttribute("aria-label"), "Record a voice message");
    await record.click();
    await A.page.locator(`${tid("im-record")}[aria-label="Stop and send the voice message"]`).waitFor();
    assert.equal(await record.getAttribute("title"), "Stop and send the voice message");
    await A.page.waitForTimeout(700);
    await record.click();
    await A.page.locator(`${tid("im-record")}[aria-label="Record a voice message"]`).waitFor();
    await conversation(B.page, directId).click();
    await B.page.locator(`${tid("im-message")}[data-kind="voice"] ${tid("im-voice")}`).waitFor();
    assert.equal(await imMessage(B.page, `recall window ${runId}`).count(), 1);
  });
});
