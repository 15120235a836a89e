/**
 * The friends panel: find people by name and send a friend request with a note, answer and
 * cancel requests, the friends with their presence (message, remove, block), the blocked, and a
 * request to join a group by id. The IM controller owns the lists (they are refreshed from the
 * server after every step) and acts on them; the panel owns what is being typed, which
 * survives the panel being rebuilt on every change of presence or requests.
 */
import { ApiError, errorText } from "./api";
import { avatarImg } from "./avatar";
import { button, el } from "./dom";
import * as imapi from "./imapi";
import type { FriendRequest } from "./imapi";
import type { UserRef } from "./protocol";

export interface FriendLists {
  friends: UserRef[];
  incoming: FriendRequest[];
  outgoing: FriendRequest[];
  blocked: UserRef[];
}

/** Where a user found by name stands with us, which says what the result offers. */
export type Relation = "self" | "friend" | "incoming" | "outgoing" | "blocked" | "none";

/**
 * `userId` is us, a friend, someone whose request waits for our answer (Accept, not another
 * request: the server allows one pending request per pair), someone we asked, someone we
 * blocked, or none of these (Add friend).
 */
export function relationTo(userId: number, me: number | undefined, lists: FriendLists): Relation {
  if (userId === me) return "self";
  if (lists.friends.some((f) => f.id === userId)) return "friend";
  if (lists.incoming.some((r) => r.from.id === userId)) return "incoming";
  if (lists.outgoing.some((r) => r.to.id === userId)) return "outgoing";
  if (lists.blocked.some((u) => u.id === userId)) return "blocked";
  return "none";
}

export interface FriendsHost {
  me(): UserRef | null;
  lists(): FriendLists;
  presenceOf(userId: number): { online: boolean; text: string };
  /** Runs a request, tells a failure in a toast, then refreshes the lists unless `after` is "none". */
  act(call: () => Promise<unknown>, after?: "friends" | "none"): Promise<boolean>;
  openDirect(user: UserRef): void;
  toast(text: string, info?: boolean): void;
  isShown(): boolean;
}

export class FriendsPanel {
  readonly panel: HTMLElement;
  private query = "";
  /** The note for the next friend request. */
  private note = "";
  /** What is typed in the "Join a group" form. */
  private joinId = "";
  private joinNote = "";
  private results: UserRef[] = [];
  private searchTimer: ReturnType<typeof setTimeout> | null = null;
  /** Renders `results` into the panel as currently built (it is rebuilt often). */
  private showResults: () => void = () => {};

  constructor(private readonly host: FriendsHost) {
    this.panel = el("div", { class: "panel", "data-testid": "friends-panel", hidden: "" });
  }

  /** Another account: forget what was typed and found. */
  reset(): void {
    this.results = [];
    this.query = this.note = this.joinId = this.joinNote = "";
  }

  render(): void {
    const p = this.panel;
    if (p.hidden && !this.host.isShown()) return;
    const lists = this.host.lists();
    const { friends: friendList, incoming: incomingList, outgoing: outgoingList, blocked: blockedList } = lists;
    // The panel is rebuilt on every change (presence, requests): keep what was typed, and focus.
    const hadFocus = document.activeElement?.getAttribute("data-testid");
    const note = el("input", { type: "text", placeholder: "Note (optional)", maxlength: "200", "data-testid": "friend-request-note" });
    const q = el("input", { type: "search", placeholder: "Search users by name", maxlength: "100", autocomplete: "off", "data-testid": "user-search-input" });
    note.value = this.note;
    q.value = this.query;
    note.addEventListener("input", () => (this.note = note.value));
    const results = el("ul", { class: "plain", "data-testid": "user-search-results" });
    const offer = (u: UserRef): Node | null => {
      const rel = relationTo(u.id, this.host.me()?.id, lists);
      const status = (text: string) => el("span", { class: "muted small", "data-testid": "user-search-status", "data-relation": rel }, text);
      switch (rel) {
        case "self":
          return null;
        case "friend":
          return status(" friend");
        case "outgoing":
          return status(" request sent");
        case "blocked":
          return status(" blocked");
        case "incoming":
          return el(
            "span",
            { class: "small" },
            status(" asked to be your friend "),
            button("Accept", { class: "link small", "data-testid": "user-search-accept" }, () => {
              void this.host.act(() => imapi.decideFriend(u.id, "accept")).then((ok) => {
                if (ok) this.host.toast(`You and ${u.username} are now friends`, true);
              });
            }),
          );
        case "none":
          return button("Add friend", { class: "link small", "data-testid": "friend-request-send" }, () => {
            void this.host.act(() => imapi.requestFriend(u.id, note.value.trim())).then((ok) => {
              if (ok) {
                this.host.toast(`Friend request sent to ${u.username}`, true);
                // The note was for this person.
                this.note = note.value = "";
              }
            });
          });
      }
    };
    const renderResults = () => {
      results.replaceChildren(
        ...this.results
          .filter((u) => u.id !== this.host.me()?.id)
          .map((u) =>
            el("li", { "data-testid": "user-search-result", "data-user-id": String(u.id), "data-username": u.username }, avatarImg(u.id), el("span", {}, u.username), offer(u)),
          ),
      );
    };
    // A search answered after a rebuild (presence, requests) must land in the new list.
    this.showResults = renderResults;
    const search = el("form", { class: "row", "data-testid": "user-search" }, q, note, el("button", { type: "submit", class: "ghost small", "data-testid": "user-search-submit" }, "Search"));
    const find = (text: string) => {
      if (this.searchTimer) clearTimeout(this.searchTimer);
      this.searchTimer = null;
      if (!text) {
        this.results = [];
        this.showResults();
        return;
      }
      imapi
        .searchUsers(text)
        .then((us) => {
          if (text !== this.query.trim()) return; // typed on since
          this.results = us;
          this.showResults();
        })
        .catch((e) => {
          if (!(e instanceof ApiError && e.id === "bad_query")) this.host.toast(errorText(e));
        });
    };
    // Results as you type (by username prefix), and on Enter.
    q.addEventListener("input", () => {
      this.query = q.value;
      if (this.searchTimer) clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => find(this.query.trim()), 250);
    });
    search.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.query = q.value;
      find(q.value.trim());
    });
    renderResults();

    const incoming = incomingList.map((r) =>
      el(
        "li",
        { "data-testid": "friend-request-incoming", "data-user-id": String(r.from.id), "data-username": r.from.username },
        avatarImg(r.from.id),
        el("span", {}, r.from.username),
        r.note ? el("span", { class: "muted small", "data-testid": "friend-request-note-text" }, ` “${r.note}”`) : null,
        button("Accept", { class: "link small", "data-testid": "friend-accept" }, () => void this.host.act(() => imapi.decideFriend(r.from.id, "accept"))),
        button("Reject", { class: "link small", "data-testid": "friend-reject" }, () => void this.host.act(() => imapi.decideFriend(r.from.id, "reject"))),
      ),
    );
    const outgoing = outgoingList.map((r) =>
      el(
        "li",
        { "data-testid": "friend-request-outgoing", "data-user-id": String(r.to.id), "data-username": r.to.username },
        el("span", {}, r.to.username),
        r.note ? el("span", { class: "muted small" }, ` “${r.note}”`) : null,
        button("Cancel", { class: "link small", "data-testid": "friend-cancel" }, () => void this.host.act(() => imapi.decideFriend(r.to.id, "cancel"))),
      ),
    );
    const friends = friendList.map((f) => {
      const pr = this.host.presenceOf(f.id);
      return el(
        "li",
        { "data-testid": "friend-item", "data-user-id": String(f.id), "data-username": f.username, "data-online": pr.online ? "true" : "false" },
        avatarImg(f.id),
        el("span", { class: "dot" + (pr.online ? " online" : "") }),
        el("span", {}, f.username),
        el("span", { class: "muted small", "data-testid": "friend-presence" }, ` ${pr.text}`),
        button("Message", { class: "link small", "data-testid": "friend-message" }, () => this.host.openDirect(f)),
        button("Remove", { class: "link small", "data-testid": "friend-remove" }, () => {
          if (confirm(`Remove ${f.username} from your friends?`)) void this.host.act(() => imapi.removeFriend(f.id));
        }),
        button("Block", { class: "link small danger", "data-testid": "friend-block" }, () => {
          if (confirm(`Block ${f.username}?`)) void this.host.act(() => imapi.block(f.id));
        }),
      );
    });
    const blocked = blockedList.map((u) =>
      el(
        "li",
        { "data-testid": "blocked-item", "data-user-id": String(u.id) },
        el("span", {}, u.username),
        button("Unblock", { class: "link small", "data-testid": "unblock" }, () => void this.host.act(() => imapi.unblock(u.id))),
      ),
    );
    const joinId = el("input", { type: "number", min: "1", placeholder: "Group id", "data-testid": "join-group-id" });
    const joinNote = el("input", { type: "text", placeholder: "Note (optional)", "data-testid": "join-group-note" });
    joinId.value = this.joinId;
    joinNote.value = this.joinNote;
    joinId.addEventListener("input", () => (this.joinId = joinId.value));
    joinNote.addEventListener("input", () => (this.joinNote = joinNote.value));
    const join = el("form", { class: "row", "data-testid": "join-group" }, joinId, joinNote, el("button", { type: "submit", class: "ghost small", "data-testid": "join-group-submit" }, "Request to join"));
    join.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const gid = Number(joinId.value);
      if (!Number.isInteger(gid) || gid <= 0) return;
      void this.host.act(() => imapi.requestJoin(gid, joinNote.value.trim()), "none").then((ok) => {
        if (ok) {
          this.host.toast("Join request sent", true);
          joinId.value = joinNote.value = this.joinId = this.joinNote = "";
        }
      });
    });
    const section = (title: string, items: Node[], testid: string, empty: string) =>
      el("section", { class: "panel-section" }, el("h3", {}, title), items.length > 0 ? el("ul", { class: "plain", "data-testid": testid }, ...items) : el("p", { class: "muted small" }, empty));
    p.replaceChildren(
      el("h2", { class: "panel-title" }, "Friends"),
      el("section", { class: "panel-section" }, el("h3", {}, "Find people"), search, results),
      section("Friend requests", incoming, "friend-requests-incoming", "No incoming requests."),
      section("Sent requests", outgoing, "friend-requests-outgoing", "No sent requests."),
      section(`Friends (${friendList.length})`, friends, "friend-list", "No friends yet."),
      section("Blocked", blocked, "blocked-list", "Nobody blocked."),
      el("section", { class: "panel-section" }, el("h3", {}, "Join a group"), join),
    );
    const typedIn: Record<string, HTMLInputElement> = {
      "user-search-input": q,
      "friend-request-note": note,
      "join-group-id": joinId,
      "join-group-note": joinNote,
    };
    const target = hadFocus ? typedIn[hadFocus] : undefined;
    if (target) {
      queueMicrotask(() => {
        target.focus();
        // Number inputs have no selection.
        if (target.type !== "number") target.setSelectionRange(target.value.length, target.value.length);
      });
    }
  }
}
