// End-to-end test of the instant-messaging part of the web client (friends, direct and group
// conversations, receipts, recall) against a running server.
//
//   HEARTH_URL=http://127.0.0.1:8080 npm run e2e
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { PASSWORD, api, conversation, imMessage, imSend, launch, newUser, png, register, registerByApi, tid, watchPanel403 } from "./helpers.mjs";

const SCREENSHOT = "/tmp/hearth-im.png";
const runId = randomBytes(4).toString("hex");

let browser;
/** @type {{ username: string, email: string, context: import('playwright-core').BrowserContext, page: import('playwright-core').Page }} */
let A;
/** @type {typeof A} */
let B;
let directId;

describe("Hearth instant messaging", { timeout: 180_000 }, () => {
  before(async () => {
    browser = await launch();
    A = await newUser(browser, "ima", runId);
    B = await newUser(browser, "imb", runId);
    await Promise.all([register(A), register(B)]);
  });

  after(async () => {
    await browser?.close();
  });

  it("A finds B and sends a friend request with a note; B accepts", async () => {
    await A.page.locator(tid("open-friends")).click();
    await A.page.locator(tid("friends-panel")).waitFor();
    await A.page.locator(tid("user-search-input")).fill(B.username);
    await A.page.locator(tid("friend-request-note")).fill("hi from A");
    await A.page.locator(tid("user-search-submit")).click();
    const result = A.page.locator(`${tid("user-search-result")}[data-username="${B.username}"]`);
    await result.locator(tid("friend-request-send")).click();
    await A.page.locator(`${tid("friend-request-outgoing")}[data-username="${B.username}"]`).waitFor();

    // B is told live: a badge on the Friends button, then the request with its note.
    await B.page.locator(tid("friend-requests-badge")).filter({ hasText: "1" }).waitFor();
    await B.page.locator(tid("open-friends")).click();
    const req = B.page.locator(`${tid("friend-request-incoming")}[data-username="${A.username}"]`);
    await req.waitFor();
    assert.match(await req.locator(tid("friend-request-note-text")).textContent(), /hi from A/);
    await req.locator(tid("friend-accept")).click();
    await B.page.locator(`${tid("friend-item")}[data-username="${A.username}"]`).waitFor();

    // A's list updates from the inbox event; B is online.
    const friendB = A.page.locator(`${tid("friend-item")}[data-username="${B.username}"]`);
    await friendB.waitFor();
    await A.page.locator(`${tid("friend-item")}[data-username="${B.username}"][data-online="true"]`).waitFor();
    assert.equal(await A.page.locator(tid("friend-request-outgoing")).count(), 0);
  });

  it("A opens a direct conversation; B gets it live with an unread badge and a read receipt goes back", async () => {
    // B looks at the friends panel (not the conversation) while A writes.
    await A.page.locator(`${tid("friend-item")}[data-username="${B.username}"] ${tid("friend-message")}`).click();
    await A.page.locator(tid("conversation-view")).waitFor();
    directId = await A.page.locator(tid("conversation-title")).getAttribute("data-conversation-id");
    assert.ok(directId, "the conversation title carries its id");
    const hello = `hello B from A ${runId} <b>not bold</b>`;
    await imSend(A.page, hello);
    await A.page.locator(`${tid("im-message")}[data-state="sent"]`).filter({ has: A.page.getByText(hello, { exact: true }) }).waitFor();

    const item = conversation(B.page, directId);
    await item.locator(tid("conversation-unread")).filter({ hasText: "1" }).waitFor();
    // B's device has it but B has not read it: A sees it delivered, not read.
    await imMessage(A.page, hello).locator(tid("im-message-status")).filter({ hasText: "Delivered" }).waitFor();
    assert.equal(await imMessage(A.page, hello).locator(tid("im-message-status")).textContent(), "Delivered");

    await item.click();
    await imMessage(B.page, hello).waitFor();
    // The unread message is announced by a line just before it.
    const after = await B.page.locator(tid("im-new-divider")).evaluate((d) => d.nextElementSibling?.textContent ?? "");
    assert.ok(after.includes(hello), after);
    await item.locator(tid("conversation-unread")).waitFor({ state: "detached" });
    assert.equal(await B.page.locator(`${tid("im-message-list")} b`).count(), 0, "content is text, not HTML");

    // A sees the receipt.
    await imMessage(A.page, hello).locator(tid("im-message-status")).filter({ hasText: "Read" }).waitFor();

    // Typing indicator, then B replies.
    await B.page.locator(tid("im-composer-input")).pressSequentially("typing…");
    await A.page.locator(tid("typing-indicator")).filter({ hasText: `${B.username} is typing` }).waitFor();
    const reply = `reply from B ${runId}`;
    await imSend(B.page, reply);
    await imMessage(A.page, reply).waitFor();
    assert.equal(await imMessage(A.page, hello).count(), 1, "own message is shown exactly once");
    assert.equal(await imMessage(B.page, reply).count(), 1, "own message is shown exactly once");

    // Web addresses become links (new tab, no opener), Chinese punctuation and a closing
    // parenthesis left out; the text reads as typed. (Not clicked: the addresses are not ours.)
    const url = `https://example.com/hearth-${runId}?q=1`;
    const withLinks = `链接：${url}，看看 (www.example.org/${runId}).`;
    await imSend(A.page, withLinks);
    const content = imMessage(B.page, withLinks).locator(tid("im-message-content"));
    const link = content.locator(`a[href="${url}"]`);
    await link.waitFor();
    assert.equal(await link.textContent(), url);
    assert.equal(await link.getAttribute("target"), "_blank");
    assert.match((await link.getAttribute("rel")) ?? "", /\bnoopener\b/);
    assert.equal(await content.locator(`a[href="https://www.example.org/${runId}"]`).textContent(), `www.example.org/${runId}`);
    assert.equal(await content.textContent(), withLinks);
    assert.equal(await content.locator("a").count(), 2);
  });

  it("A creates a group with B; both exchange a message; A recalls one and B sees it recalled", async () => {
    const groupName = `Group ${runId}`;
    await A.page.locator(tid("open-new-group")).click();
    await A.page.locator(tid("new-group-name")).fill(groupName);
    await A.page.locator(`${tid("new-group-member")}[data-user-id]`).first().check();
    await A.page.locator(tid("new-group-submit")).click();
    await A.page.locator(tid("conversation-title")).filter({ hasText: groupName }).waitFor();
    const groupId = await A.page.locator(tid("conversation-title")).getAttribute("data-conversation-id");
    await A.page.locator(tid("im-system")).filter({ hasText: "created the group" }).waitFor();

    // B gets the group (group_added event) and opens it.
    const item = conversation(B.page, groupId);
    await item.waitFor();
    await item.click();
    await B.page.locator(tid("im-system")).filter({ hasText: `${A.username} created the group` }).waitFor();

    const fromA = `group hello from A ${runId}`;
    await imSend(A.page, fromA);
    await imMessage(B.page, fromA).waitFor();
    const fromB = `group hello from B ${runId}`;
    await imSend(B.page, fromB);
    await imMessage(A.page, fromB).waitFor();
    await imMessage(A.page, fromA).locator(tid("im-message-status")).filter({ hasText: "Read by 1" }).waitFor();

    // Who read it: the status is a button that opens a line naming them (also its hover title).
    const status = imMessage(A.page, fromA).locator(tid("im-message-status"));
    const receipts = imMessage(A.page, fromA).locator(tid("im-message-receipts"));
    assert.equal(await status.evaluate((e) => e.tagName), "BUTTON");
    assert.equal(await status.getAttribute("aria-expanded"), "false");
    assert.equal(await receipts.isVisible(), false);
    await status.click();
    await receipts.filter({ hasText: `Read by ${B.username}` }).waitFor();
    assert.equal(await status.getAttribute("aria-expanded"), "true");
    assert.equal(await status.textContent(), "Read by 1");
    // The group has just A and B: nobody else to name.
    assert.equal(await receipts.textContent(), `Read by ${B.username}`);
    assert.equal(await status.getAttribute("title"), `Read by ${B.username}`);
    // A click on the status is not a tap on the message: it does not select it.
    assert.equal(await imMessage(A.page, fromA).evaluate((e) => e.classList.contains("selected")), false);

    // Members are listed in the group panel.
    await A.page.locator(tid("group-info-button")).click();
    await A.page.locator(tid("group-member")).nth(1).waitFor();
    assert.equal(await A.page.locator(tid("group-member")).count(), 2);

    // Recall.
    const oops = `oops ${runId}`;
    await imSend(A.page, oops);
    await imMessage(B.page, oops).waitFor();
    const mine = A.page.locator(`${tid("im-message")}[data-state="sent"]`).filter({ has: A.page.getByText(oops, { exact: true }) });
    // The list was redrawn for the acked message: the receipt line opened above is still open,
    // and the keyboard closes it (Enter on the focused status).
    await mine.waitFor();
    await receipts.filter({ hasText: `Read by ${B.username}` }).waitFor();
    await status.press("Enter");
    await receipts.waitFor({ state: "hidden" });
    assert.equal(await status.getAttribute("aria-expanded"), "false");
    await status.blur();
    await mine.hover();
    // Recall asks first.
    A.page.once("dialog", (d) => void d.accept());
    await mine.locator(tid("im-message-recall")).click();
    // Shown once, in the message's place (not again as a grey line of its own).
    await A.page.locator(tid("im-message-recalled")).filter({ hasText: "You recalled a message" }).waitFor();
    await B.page.locator(tid("im-message-recalled")).filter({ hasText: `${A.username} recalled a message` }).waitFor();
    assert.equal(await B.page.locator(tid("im-system")).filter({ hasText: "recalled a message" }).count(), 0);
    await B.page.locator(`${tid("im-message")}[data-recalled="true"]`).waitFor();
    assert.equal(await imMessage(B.page, oops).count(), 0, "the recalled content is gone for B");

    // Edit.
    const fixed = `group hello from A, edited ${runId}`;
    const first = imMessage(A.page, fromA);
    await first.hover();
    await first.locator(tid("im-message-edit")).click();
    await A.page.locator(tid("im-editing")).waitFor();
    await imSend(A.page, fixed);
    await imMessage(B.page, fixed).locator(tid("im-message-edited")).waitFor();

    // A renames the group from its panel: B's list and header follow live, with a grey line.
    const renamed = `Renamed ${runId}`;
    await A.page.locator(tid("group-rename-input")).fill(renamed);
    await A.page.locator(tid("group-rename-save")).click();
    await B.page.locator(`${tid("conversation-item")}[data-conversation-id="${groupId}"][data-name="${renamed}"]`).waitFor();
    await B.page.locator(tid("conversation-title")).filter({ hasText: renamed }).waitFor();
    await B.page.locator(tid("im-system")).filter({ hasText: `${A.username} renamed the group to "${renamed}"` }).waitFor();
    await A.page.locator(tid("conversation-title")).filter({ hasText: renamed }).waitFor();

    // B leaves: A's open member list drops B (the notice comes before the server takes B
    // out, so a list fetched on the notice alone still held B).
    const left = await B.page.evaluate(async (id) => (await fetch(`/api/groups/${id}/leave`, { method: "POST" })).status, groupId);
    assert.equal(left, 204);
    await A.page.locator(`${tid("group-member")}[data-user-id]`).nth(1).waitFor({ state: "detached" });
    assert.equal(await A.page.locator(tid("group-member")).count(), 1);
    // The panel closes from inside (on a narrow screen it covers the button that opened it).
    await A.page.locator(tid("group-panel-close")).click();
    await A.page.locator(tid("group-member")).first().waitFor({ state: "hidden" });

    try {
      await A.page.screenshot({ path: SCREENSHOT });
      console.log(`screenshot: ${SCREENSHOT}`);
    } catch (e) {
      console.error("screenshot failed:", e);
    }
  });

  it("syncs on reconnect: B reloads and still sees the direct conversation and messages", async () => {
    await B.page.reload();
    await conversation(B.page, directId).click();
    await imMessage(B.page, `reply from B ${runId}`).waitFor();
    assert.equal(await B.page.locator(`${tid("im-message")}[data-state="pending"]`).count(), 0);
  });

  it("shows older messages of a long conversation on request", async () => {
    // More than the first window (200) of messages, sent over HTTP to be quick.
    const sent = await A.page.evaluate(
      async ({ id, runId }) => {
        for (let i = 0; i < 230; i++) {
          const r = await fetch(`/api/conversations/${id}/messages`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ clientMsgId: `old-${runId}-${i}`, content: `old ${i} ${runId}` }),
          });
          if (!r.ok) return r.status;
        }
        return 200;
      },
      { id: directId, runId },
    );
    assert.equal(sent, 200);
    await B.page.reload();
    await conversation(B.page, directId).click();
    await imMessage(B.page, `old 229 ${runId}`).waitFor();
    assert.equal(await imMessage(B.page, `old 0 ${runId}`).count(), 0, "beyond the first window");
    // The button's own handler, without scrolling to it: scrolling the list to its top asks for
    // the older page by itself and redraws the button mid-click (the test then raced it).
    await B.page.locator(tid("im-load-older")).dispatchEvent("click");
    await imMessage(B.page, `old 0 ${runId}`).waitFor();
    // Back to where the conversation began: nothing older to ask for.
    await imMessage(B.page, `hello B from A ${runId} <b>not bold</b>`).waitFor();
    assert.equal(await B.page.locator(tid("im-load-older")).count(), 0);
  });

  it("B answers an old message; A sees the quote and is taken to the message it answers", async () => {
    const first = `old 0 ${runId}`;
    const answered = imMessage(B.page, first);
    await answered.hover();
    await answered.locator(tid("im-message-reply")).click();
    await B.page.locator(tid("im-replying")).filter({ hasText: first }).waitFor();
    const reply = `answer to the first ${runId}`;
    await imSend(B.page, reply);
    await imMessage(B.page, reply).locator(tid("im-message-quote")).filter({ hasText: first }).waitFor();
    assert.equal(await B.page.locator(tid("im-replying")).isHidden(), true, "the composer is back to plain messages");
    // A loads the conversation afresh: the answered message is older than the first window.
    await A.page.reload();
    await conversation(A.page, directId).click();
    const quote = imMessage(A.page, reply).locator(tid("im-message-quote"));
    await quote.filter({ hasText: "an earlier message" }).waitFor();
    assert.equal(await imMessage(A.page, first).count(), 0);
    await quote.click();
    await A.page.locator(`${tid("im-message")}.flash`).filter({ has: A.page.getByText(first, { exact: true }) }).waitFor();
    // Now loaded, the quote names what it answers.
    await quote.filter({ hasText: first }).waitFor();
  });

  it("A picks a picture; it replaces A's face here at once and is what B is served", async () => {
    const { id: aId } = await api(A, "GET", "/api/me");
    const face = A.page.locator(`${tid("current-avatar")} img`);
    await face.waitFor();
    await A.page.locator(tid("account-button")).click();
    await A.page.locator(tid("account-avatar-input")).setInputFiles({ name: "me.png", mimeType: "image/png", buffer: png(400, 300) });
    await A.page.locator(tid("account-message")).filter({ hasText: "Picture changed." }).waitFor();
    const me = await api(A, "GET", "/api/me");
    assert.match(me.avatar, /^[0-9a-f]{32}$/);
    // Every picture of A on A's page now asks for this version, and shows a thumbnail.
    await A.page.waitForFunction(
      ([id, v]) => {
        const imgs = [...document.querySelectorAll(`img.avatar[data-avatar-of="${id}"]`)];
        // Lazy pictures that are not displayed (collapsed message headers) are never loaded.
        const shown = imgs.filter((i) => i.offsetParent !== null);
        return shown.length >= 2 && imgs.every((i) => i.getAttribute("src").endsWith(`?v=${v}`)) && shown.every((i) => i.complete && i.naturalWidth > 0);
      },
      [aId, me.avatar],
    );
    const served = await B.page.evaluate(async (id) => {
      const r = await fetch(`/api/users/${id}/avatar`, { cache: "no-store" });
      return r.headers.get("content-type");
    }, aId);
    assert.equal(served, "image/png");
    // A non-image is refused with the server's reason, and nothing changes.
    await A.page.locator(tid("account-avatar-input")).setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a picture") });
    await A.page.locator(tid("account-message")).filter({ hasText: "an avatar must be" }).waitFor();
    assert.equal((await api(A, "GET", "/api/me")).avatar, me.avatar);
    await A.page.locator(tid("account-avatar-remove")).click();
    await A.page.locator(tid("account-message")).filter({ hasText: "Picture removed." }).waitFor();
    assert.equal((await api(A, "GET", "/api/me")).avatar, null);
    assert.match(await face.getAttribute("src"), /\?v=none-/);
    await A.page.locator(tid("account-close")).click();
  });

  it("B, removed from a group, is told by whom and from which, as a notice", async () => {
    const { id: bId } = await api(B, "GET", "/api/me");
    const name = `Kick ${runId}`;
    const { conversationId } = await api(A, "POST", "/api/groups", { name, members: [bId] });
    const item = conversation(B.page, conversationId);
    await item.waitFor();
    await item.click();
    await B.page.locator(tid("conversation-title")).filter({ hasText: name }).waitFor();
    await B.page.locator(tid("group-info-button")).click();
    await B.page.locator(tid("group-member")).nth(1).waitFor();
    const refused = watchPanel403(B.page);
    await api(A, "POST", `/api/groups/${conversationId}/kick`, { userId: bId });
    await B.page.locator(tid("error-toast")).filter({ hasText: `${A.username} removed you from "${name}"` }).waitFor();
    await item.waitFor({ state: "detached" });
    // The conversation closing does not replace that with a vaguer message.
    await B.page.waitForTimeout(500);
    const toast = B.page.locator(tid("error-toast"));
    assert.equal(await toast.textContent(), `${A.username} removed you from "${name}"`);
    assert.equal(await toast.evaluate((t) => t.classList.contains("info")), true, "a notice, not an error");
    assert.deepEqual(refused, [], "nothing of the group is fetched once B is out");
  });

  it("B leaves a group from its panel: a plain confirmation, and nothing of the group fetched after", async () => {
    const { id: bId } = await api(B, "GET", "/api/me");
    const name = `Leave ${runId}`;
    const { conversationId } = await api(A, "POST", "/api/groups", { name, members: [bId] });
    // An admin's panel also lists the join requests.
    await api(A, "POST", `/api/groups/${conversationId}/role`, { userId: bId, role: "admin" });
    const item = conversation(B.page, conversationId);
    await item.waitFor();
    await item.click();
    await B.page.locator(tid("conversation-title")).filter({ hasText: name }).waitFor();
    await B.page.locator(tid("group-info-button")).click();
    await B.page.locator(tid("group-id")).filter({ hasText: "you are admin" }).waitFor();
    const refused = watchPanel403(B.page);
    B.page.once("dialog", (d) => void d.accept());
    await B.page.locator(tid("group-leave")).click();
    const toast = B.page.locator(tid("error-toast"));
    await toast.filter({ hasText: `You left “${name}”.` }).waitFor();
    assert.equal(await toast.evaluate((t) => t.classList.contains("info")), true, "a confirmation, not an error");
    await item.waitFor({ state: "detached" });
    await B.page.waitForTimeout(800);
    assert.equal(await toast.textContent(), `You left “${name}”.`);
    assert.deepEqual(refused, [], "no members or join requests fetched after leaving");
    await A.page.locator(`${tid("conversation-item")}[data-conversation-id="${conversationId}"]`).waitFor();
  });

  it("B renames themself and changes the password without being logged out", async () => {
    const renamed = `${B.username}x`;
    await B.page.locator(tid("account-button")).click();
    // A name that is taken is refused: the field shows B's name again, and the error goes with
    // the next attempt (at once, not when its answer comes).
    await B.page.locator(tid("account-username")).fill(A.username);
    await B.page.locator(tid("account-username-save")).click();
    const message = B.page.locator(tid("account-message"));
    await B.page.locator(`${tid("account-message")}[data-error="true"]`).waitFor();
    assert.notEqual((await message.textContent()).trim(), "");
    assert.equal(await B.page.locator(tid("account-username")).inputValue(), B.username);
    const slow = (url) => url.pathname === "/api/me";
    await B.page.route(slow, async (route) => {
      if (route.request().method() === "PATCH") await new Promise((resolve) => setTimeout(resolve, 700));
      await route.continue();
    });
    await B.page.locator(tid("account-username")).fill(renamed);
    await B.page.locator(tid("account-username-save")).click();
    assert.equal(await message.getAttribute("data-error"), "false", "the last error is not left standing");
    await B.page.locator(`${tid("current-user")}:text-is("${renamed}")`).waitFor();
    await message.filter({ hasText: "Username changed." }).waitFor();
    // A, B's friend, sees the new name at once (a `profile` frame), without a reload.
    await A.page.locator(`${tid("conversation-item")}[data-conversation-id="${directId}"][data-name="${renamed}"]`).waitFor();
    await B.page.unroute(slow);
    await B.page.locator(tid("account-current-password")).fill("not the password");
    await B.page.locator(tid("account-new-password")).fill("a brand new secret");
    await B.page.locator(tid("account-password-save")).click();
    await B.page.locator(tid("account-message")).filter({ hasText: "current password is wrong" }).waitFor();
    await B.page.locator(tid("account-current-password")).fill(PASSWORD);
    await B.page.locator(tid("account-new-password")).fill("a brand new secret");
    await B.page.locator(tid("account-password-save")).click();
    await B.page.locator(tid("account-message")).filter({ hasText: "Password changed" }).waitFor();
    // Still in, on a fresh session: the socket comes back online and messages flow.
    await B.page.locator(`${tid("connection-status")}[data-status="online"]`).waitFor({ state: "attached" });
    assert.equal(await B.page.locator(tid("login-form")).count(), 0);
    await B.page.locator(tid("account-close")).click();
    const after = `after the change ${runId}`;
    await conversation(A.page, directId).click();
    await imSend(A.page, after);
    await conversation(B.page, directId).click();
    await imMessage(B.page, after).waitFor();
    // The new password logs in; the old one does not.
    await B.page.locator(tid("logout-button")).click();
    await B.page.locator(tid("login-email")).fill(B.email);
    await B.page.locator(tid("login-password")).fill(PASSWORD);
    await B.page.locator(tid("login-submit")).click();
    await B.page.locator(tid("login-error")).waitFor();
    await B.page.locator(tid("login-password")).fill("a brand new secret");
    await B.page.locator(tid("login-submit")).click();
    await B.page.locator(`${tid("current-user")}:text-is("${renamed}")`).waitFor();
  });

  it("someone who asked A to be friends is offered as Accept in Find people, someone A asked as request sent", async () => {
    const C = await newUser(browser, "imc", runId);
    const D = await newUser(browser, "imd", runId);
    await Promise.all([registerByApi(C), registerByApi(D)]);
    const { id: aId } = await api(A, "GET", "/api/me");
    await api(C, "POST", "/api/friends/requests", { userId: aId });
    await api(A, "POST", "/api/friends/requests", { userId: D.id });
    await A.page.locator(tid("open-friends")).click();
    await A.page.locator(`${tid("friend-request-incoming")}[data-username="${C.username}"]`).waitFor();
    const search = async (who) => {
      await A.page.locator(tid("user-search-input")).fill(who.username);
      await A.page.locator(tid("user-search-submit")).click();
      const r = A.page.locator(`${tid("user-search-result")}[data-username="${who.username}"]`);
      await r.waitFor();
      return r;
    };
    const d = await search(D);
    await d.locator(tid("user-search-status")).filter({ hasText: "request sent" }).waitFor();
    assert.equal(await d.locator(tid("friend-request-send")).count(), 0);

    const c = await search(C);
    assert.equal(await c.locator(tid("friend-request-send")).count(), 0, "no Add friend (the server would say the request is pending)");
    await c.locator(tid("user-search-accept")).click();
    await A.page.locator(`${tid("friend-item")}[data-username="${C.username}"]`).waitFor();
    await c.locator(tid("user-search-status")).filter({ hasText: "friend" }).waitFor();
    assert.equal(await A.page.locator(`${tid("friend-request-incoming")}[data-username="${C.username}"]`).count(), 0);
    await Promise.all([C.context.close(), D.context.close()]);
  });
});
