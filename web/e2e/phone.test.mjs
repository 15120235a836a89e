// The web client on a phone (390 × 844, a touchscreen, no mouse) against a running server:
// a tap on a message selects it and never acts on it (a recall only from a tap on Recall of the
// selected message, after a confirmation), and the page fits the screen.
//
//   HEARTH_URL=http://127.0.0.1:8080 npm run e2e
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { PHONE, api, conversation, imMessage, imSend, launch, newUser, register, tid } from "./helpers.mjs";

const runId = randomBytes(4).toString("hex");

let browser;
/** @type {{ username: string, email: string, context: import('playwright-core').BrowserContext, page: import('playwright-core').Page }} */
let A;
let groupId;

/** The middle of `locator`'s box. */
async function middle(locator) {
  const b = await locator.boundingBox();
  return { x: b.x + b.width / 2, y: b.y + b.height / 2 };
}

/** What would make the page scroll sideways, and where Log out ends. */
function fits(page) {
  return page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    logoutRight: document.querySelector('[data-testid="logout-button"]').getBoundingClientRect().right,
  }));
}

/** The visible composer's placeholder, and how many lines it takes (it wrapped and was cut before). */
function composer(page) {
  return page.evaluate(() => {
    const t = [...document.querySelectorAll("textarea")].find((e) => e.offsetParent !== null);
    const cs = getComputedStyle(t);
    const lines = (t.scrollHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom)) / parseFloat(cs.lineHeight);
    return { placeholder: t.placeholder, value: t.value, lines };
  });
}

describe("Hearth on a phone", { timeout: 120_000 }, () => {
  before(async () => {
    browser = await launch();
    A = await newUser(browser, "ph", runId, PHONE);
    await register(A);
    ({ conversationId: groupId } = await api(A, "POST", "/api/groups", { name: `Phone group with a long name ${runId}`, members: [] }));
  });

  after(async () => {
    await browser?.close();
  });

  it("fits a 390 px screen: no sideways scrolling, Log out fully in view, the placeholder on one line", async () => {
    const { page } = A;
    assert.equal(await page.evaluate(() => matchMedia("(hover: none)").matches), true, "a touchscreen without hover");
    // A phone zooms out to show a page wider than its screen: the layout is held to the screen's 390 px.
    const screen = PHONE.viewport.width;
    const check = async (where) => {
      const f = await fits(page);
      assert.equal(f.innerWidth, screen, `${where}: zoomed out to show a page ${f.innerWidth} px wide`);
      assert.ok(f.scrollWidth <= screen, `${where}: the page scrolls sideways (${f.scrollWidth} > ${screen})`);
      assert.ok(f.logoutRight <= screen, `${where}: Log out ends at ${f.logoutRight} of ${screen}`);
    };
    await check("room");
    const c = await composer(page);
    assert.ok(c.lines < 1.5, `the room's placeholder wraps: ${JSON.stringify(c)}`);

    await conversation(page, groupId).tap();
    await page.locator(tid("conversation-view")).waitFor();
    await check("conversation");
    const ci = await composer(page);
    assert.match(ci.placeholder, /^Message Phone group with a long name/);
    assert.equal(ci.value, "");
    assert.ok(ci.lines < 1.5, `the placeholder wraps and is cut: ${JSON.stringify(ci)}`);

    await page.locator(tid("open-friends")).tap();
    await page.locator(tid("friends-panel")).waitFor();
    await check("friends");
  });

  it("a tap on one's own message selects it and shows its actions, and does not recall it", async () => {
    const { page } = A;
    await conversation(page, groupId).tap();
    const texts = [`one ${runId}`, `two, long enough to cover most of a phone's width ${runId}`, `three ${runId}`];
    for (const t of texts) await imSend(page, t);
    const dialogs = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void (d.message().startsWith("Recall") ? d.accept() : d.dismiss());
    });
    const target = imMessage(page, texts[1]);
    await target.locator(tid("im-message-recall")).waitFor({ state: "attached" });
    assert.equal(await target.locator(tid("im-message-recall")).isVisible(), false, "actions hidden before any tap");

    // A tap in the middle selects the message: its actions show, nothing else happens.
    const at = await middle(target.locator(tid("im-message-content")));
    await page.touchscreen.tap(at.x, at.y);
    await page.locator(`${tid("im-message")}.selected`).filter({ hasText: texts[1] }).waitFor();
    await target.locator(tid("im-message-recall")).waitFor();
    assert.deepEqual(dialogs, []);
    assert.equal(await page.locator(tid("im-message-recalled")).count(), 0);

    // A second tap on the message unselects it. A tap where Recall showed then lands on what is
    // there (the actions show under the selected message, over the next one): it selects that
    // message. One tap never both reveals and presses an action.
    const recallAt = await middle(target.locator(tid("im-message-recall")));
    await page.touchscreen.tap(at.x, at.y);
    await page.locator(`${tid("im-message")}.selected`).waitFor({ state: "detached" });
    await page.touchscreen.tap(recallAt.x, recallAt.y);
    const other = imMessage(page, texts[2]);
    await page.locator(`${tid("im-message")}.selected`).filter({ hasText: texts[2] }).waitFor();
    await page.waitForTimeout(300);
    assert.deepEqual(dialogs, [], "no recall was asked for");
    assert.equal(await page.locator(tid("im-message-recalled")).count(), 0);

    // "Delete for me" (of that selected message) asks first; dismissed, the message stays.
    await other.locator(tid("im-message-hide")).tap();
    await page.waitForTimeout(300);
    assert.equal(dialogs.length, 1);
    assert.match(dialogs[0], /^Delete this message for you/);
    assert.equal(await imMessage(page, texts[2]).count(), 1);

    // The second tap, on Recall of the selected message, recalls it after a confirmation.
    await page.touchscreen.tap(at.x, at.y);
    await page.locator(`${tid("im-message")}.selected`).filter({ hasText: texts[1] }).waitFor();
    await target.locator(tid("im-message-recall")).tap();
    await page.locator(tid("im-message-recalled")).filter({ hasText: "You recalled a message" }).waitFor();
    assert.equal(dialogs.length, 2);
    assert.match(dialogs[1], /^Recall this message/);
    assert.equal(await imMessage(page, texts[0]).count(), 1, "the others stay");
  });
});
