/** DOM layer: login/create-account forms and the chat view. All text goes in via textContent. */
import * as api from "./api";
import { Connection, type ConnectionStatus } from "./connection";
import { formatTime } from "./format";
import { errorFrameText, validateContent, type Message, type ServerFrame } from "./protocol";
import { ChatStore, seekRoomMessage, type RoomTarget } from "./store";
import { button, el } from "./dom";
import { avatarChanged, avatarImg } from "./avatar";
import { uploadErrorText, uploadFile, type UploadFailure } from "./files";
import { ImController } from "./imui";
import { richText } from "./links";
import { Drafts, roomDraftKey } from "./drafts";
import { parseRoute, routeHash, sameRoute, type Route } from "./route";

/** The flame logo, built with DOM APIs (no innerHTML). */
function logo(): SVGSVGElement {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "logo");
  svg.setAttribute("aria-hidden", "true");
  const outer = document.createElementNS(NS, "path");
  outer.setAttribute("d", "M12 2c1 4 5 6 5 11a5 5 0 0 1-10 0c0-2 1-3.5 2-4.5 0 2 1 3 2 3-1-3 0-6.5 1-9.5z");
  outer.setAttribute("fill", "#e0622b");
  const inner = document.createElementNS(NS, "path");
  inner.setAttribute("d", "M12 12c.5 2 2.5 2.8 2.5 4.8a2.5 2.5 0 0 1-5 0c0-1.3.8-2.3 1.6-3 .2 1 .6 1.4 1.1 1.5-.4-1.2-.4-2.2-.2-3.3z");
  inner.setAttribute("fill", "#ffc14d");
  svg.append(outer, inner);
  return svg;
}

/** How long a message opened from a search hit stays highlighted (the `flash` animation in style.css). */
const FLASH_MS = 2000;

/** Distance (px) from the top of the message list at which older messages are requested. */
const TOP_THRESHOLD = 80;
/** Distance (px) from the bottom that still counts as "at the bottom". */
const BOTTOM_THRESHOLD = 40;

export class App {
  private store = new ChatStore();
  private conn: Connection | null = null;
  private toastTimer: ReturnType<typeof setTimeout> | null = null;
  private im: ImController | null = null;
  private mainView: "room" | "im" = "room";
  /** A password change is under way: the socket's close (1008) is expected. */
  private changingPassword = false;
  /** What was typed but not sent, per room and conversation, for the user logged in. */
  private drafts = new Drafts();
  /** Writes the drafts' latest state now, when a write is waiting (the page is going away). */
  private saveDraftsNow: (() => void) | null = null;
  /** Whose drafts and last place are loaded (a user id), if anyone's. */
  private userId: number | null = null;
  /** The place in the URL was applied (after the first hello of this page or login). */
  private routed = false;
  /**
   * A room is being opened at one of its messages (a search hit): history is loaded, a page at a
   * time, until it is there. `pages`: how many pages of the room came in meanwhile. Going
   * anywhere else ends it.
   */
  private seek: { roomId: string; seq: number; pages: number } | null = null;
  /** The room message that was sought and found, highlighted until `until` (kept across re-renders). */
  private flash: { roomId: string; id: string; until: number } | null = null;

  // Chat view elements (set by showChat).
  private chat: {
    root: HTMLElement;
    user: HTMLElement;
    face: HTMLElement;
    status: HTMLElement;
    rooms: HTMLElement;
    title: HTMLElement;
    list: HTMLElement;
    top: HTMLElement;
    messages: HTMLElement;
    input: HTMLTextAreaElement;
    send: HTMLButtonElement;
    toast: HTMLElement;
    roomSection: HTMLElement;
  } | null = null;

  constructor(private readonly root: HTMLElement) {
    // Back and Forward (and a hash typed in) move between rooms and conversations.
    window.addEventListener("hashchange", () => {
      if (this.chat && this.routed) this.applyRoute(parseRoute(location.hash));
    });
    // A reload or a closed tab must not lose the last half second of typing.
    window.addEventListener("pagehide", () => this.saveDraftsNow?.());
  }

  async start(): Promise<void> {
    this.root.replaceChildren(el("div", { class: "splash", "data-testid": "splash" }, "Loading…"));
    try {
      const me = await api.me();
      if (me) this.showChat(me.username);
      else this.showAuth("login");
    } catch {
      // Server unreachable: try the chat anyway; the connection retries and falls back to login.
      this.showChat("");
    }
  }

  // ---------------------------------------------------------------- auth

  private showAuth(mode: "login" | "register", notice?: string): void {
    this.chat = null;
    document.title = "Hearth";
    const card = el("div", { class: "auth-card" });
    const render = (m: "login" | "register", info?: string) => {
      card.replaceChildren(el("h1", { class: "brand" }, logo(), "Hearth"));
      card.append(m === "login" ? this.loginForm(render, info) : this.registerForm(render));
      const first = card.querySelector<HTMLInputElement>("input");
      first?.focus();
    };
    render(mode, notice);
    this.root.replaceChildren(el("main", { class: "auth" }, card));
  }

  private field(label: string, input: HTMLInputElement): HTMLElement {
    return el("label", { class: "field" }, el("span", {}, label), input);
  }

  private loginForm(render: (m: "login" | "register", info?: string) => void, info?: string): HTMLElement {
    const email = el("input", { type: "email", name: "email", autocomplete: "email", required: "", "data-testid": "login-email" });
    const password = el("input", {
      type: "password",
      name: "password",
      autocomplete: "current-password",
      required: "",
      "data-testid": "login-password",
    });
    const error = el("p", { class: "form-error", role: "alert", "data-testid": "login-error", hidden: "" });
    const submit = el("button", { type: "submit", class: "primary", "data-testid": "login-submit" }, "Log in");
    const toggle = el("button", { type: "button", class: "link", "data-testid": "show-register" }, "Create an account");
    toggle.addEventListener("click", () => render("register"));
    const form = el(
      "form",
      { class: "auth-form", "data-testid": "login-form", novalidate: "" },
      el("h2", {}, "Log in"),
      info ? el("p", { class: "form-info", "data-testid": "login-info" }, info) : null,
      this.field("Email", email),
      this.field("Password", password),
      error,
      submit,
      el("p", { class: "switch" }, "New here? ", toggle),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.submitAuth(form, submit, error, () => api.login(email.value.trim(), password.value));
    });
    return form;
  }

  private registerForm(render: (m: "login" | "register", info?: string) => void): HTMLElement {
    const username = el("input", {
      type: "text",
      name: "username",
      autocomplete: "username",
      required: "",
      minlength: "4",
      maxlength: "100",
      "data-testid": "register-username",
    });
    const email = el("input", { type: "email", name: "email", autocomplete: "email", required: "", "data-testid": "register-email" });
    const password = el("input", {
      type: "password",
      name: "password",
      autocomplete: "new-password",
      required: "",
      minlength: "10",
      maxlength: "100",
      "data-testid": "register-password",
    });
    const error = el("p", { class: "form-error", role: "alert", "data-testid": "register-error", hidden: "" });
    const submit = el("button", { type: "submit", class: "primary", "data-testid": "register-submit" }, "Create account");
    const toggle = el("button", { type: "button", class: "link", "data-testid": "show-login" }, "Log in");
    toggle.addEventListener("click", () => render("login"));
    const form = el(
      "form",
      { class: "auth-form", "data-testid": "register-form", novalidate: "" },
      el("h2", {}, "Create account"),
      this.field("Username", username),
      this.field("Email", email),
      this.field("Password (at least 10 characters)", password),
      error,
      submit,
      el("p", { class: "switch" }, "Already have an account? ", toggle),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.submitAuth(form, submit, error, () => api.createAccount(username.value.trim(), email.value.trim(), password.value));
    });
    return form;
  }

  private async submitAuth(form: HTMLFormElement, submit: HTMLButtonElement, error: HTMLElement, call: () => Promise<void>): Promise<void> {
    error.hidden = true;
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      await call();
      let username = "";
      try {
        username = (await api.me())?.username ?? "";
      } catch {
        /* the hello frame will tell us */
      }
      this.showChat(username);
    } catch (e) {
      error.textContent = api.errorText(e);
      error.hidden = false;
      submit.disabled = false;
      form.removeAttribute("aria-busy");
    }
  }

  // ---------------------------------------------------------------- chat

  private showChat(username: string): void {
    this.store.clear();
    this.routed = false;
    this.seek = null;
    this.flash = null;
    const user = el("span", { class: "current-user", "data-testid": "current-user" }, username);
    // Filled in when the socket says who we are.
    const face = el("span", { class: "current-avatar", "data-testid": "current-avatar" });
    const logoutBtn = el("button", { type: "button", class: "ghost", "data-testid": "logout-button" }, "Log out");
    logoutBtn.addEventListener("click", () => void this.logout());
    const accountBtn = el("button", { type: "button", class: "ghost", "data-testid": "account-button" }, "Account");
    accountBtn.addEventListener("click", () => this.toggleAccount());
    const status = el("span", { class: "status", "data-testid": "connection-status", "data-status": "connecting", role: "status" }, "Connecting…");
    const rooms = el("nav", { class: "rooms", "data-testid": "room-list", "aria-label": "Rooms" });
    const title = el("h2", { class: "room-title", "data-testid": "room-title" }, "Select a room");
    const top = el("div", { class: "history-top" });
    const messages = el("ol", { class: "messages", "data-testid": "messages" });
    const list = el("div", { class: "message-list", "data-testid": "message-list", tabindex: "0" }, top, messages);
    const input = el("textarea", {
      rows: "1",
      placeholder: "Write a message…",
      title: "Enter to send, Shift+Enter for a new line",
      "aria-label": "Message",
      "data-testid": "composer-input",
    });
    const send = el("button", { type: "submit", class: "primary", "data-testid": "composer-send" }, "Send");
    const composer = el("form", { class: "composer", "data-testid": "composer" }, input, send);
    const toast = el("div", { class: "toast", role: "alert", "data-testid": "error-toast", hidden: "" });
    this.im?.stop();
    const im = new ImController({
      send: (f) => this.conn?.send(f) ?? false,
      isOnline: () => this.conn?.isOpen ?? false,
      toast: (t, info) => this.showToast(t, info),
      showIm: () => this.setMainView("im"),
      openRoom: (id: string, message?: RoomTarget) => (message ? this.openRoomAt(id, message) : this.selectRoom(id)),
      roomName: (id) => this.store.room(id)?.name,
      onUnreadChange: () => this.updateTitle(),
      opened: (id) => this.navigated({ kind: "conversation", id }),
      routeMissing: () => this.routeMissing(),
      drafts: () => this.drafts,
      renamed: (username) => {
        if (this.chat) this.chat.user.textContent = username;
        if (this.store.me) this.store.me = { ...this.store.me, username };
      },
    });
    this.im = im;
    this.mainView = "room";
    im.main.hidden = true;
    const roomSection = el("section", { class: "room", "data-testid": "room-view" }, title, list, composer);

    const root = el(
      "div",
      { class: "chat", "data-testid": "chat" },
      el(
        "header",
        { class: "topbar" },
        el("h1", { class: "brand" }, logo(), el("span", { class: "brand-name" }, "Hearth")),
        status,
        el("div", { class: "spacer" }),
        im.searchForm,
        face,
        user,
        accountBtn,
        logoutBtn,
      ),
      el(
        "div",
        { class: "body" },
        el("aside", { class: "sidebar" }, el("h3", {}, "Rooms"), rooms, im.sidebar),
        roomSection,
        im.main,
      ),
      toast,
    );
    this.root.replaceChildren(root);
    this.chat = { root, user, face, status, rooms, title, list, top, messages, input, send, toast, roomSection };

    list.addEventListener("scroll", () => {
      if (list.scrollTop < TOP_THRESHOLD) this.requestHistory();
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.sendMessage();
      }
    });
    input.addEventListener("input", () => {
      this.autosize();
      const roomId = this.store.selectedRoomId;
      if (roomId) this.drafts.set(roomDraftKey(roomId), input.value);
    });
    composer.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.sendMessage();
    });

    this.renderRooms();
    this.renderMessages("reset");

    this.connect();
  }

  /** (Re)opens the socket: at start, and after the account changed under it. */
  private connect(): void {
    this.conn?.stop();
    this.conn = new Connection(
      { url: api.wsUrl() },
      {
        onFrame: (f) => this.onFrame(f),
        onStatus: (s, ms) => this.onStatus(s, ms),
        onUnauthorized: () => this.onUnauthorized(),
        checkSession: async () => (await api.me()) !== null,
      },
    );
    this.conn.start();
  }

  /** The account dialog: change the username or the password. */
  private toggleAccount(): void {
    const c = this.chat;
    if (!c) return;
    const open = c.root.querySelector<HTMLElement>("[data-testid=account-panel]");
    if (open) {
      open.remove();
      return;
    }
    const message = el("p", { class: "muted small", "data-testid": "account-message", role: "status" });
    // One line for every form here: each attempt replaces what the last one said.
    const say = (text: string, error = false) => {
      message.textContent = text;
      message.classList.toggle("form-error", error);
      message.dataset.error = error ? "true" : "false";
    };
    const name = el("input", { type: "text", maxlength: "100", "aria-label": "Username", "data-testid": "account-username" });
    name.value = c.user.textContent ?? "";
    const nameForm = el("form", { class: "row" }, name, el("button", { type: "submit", class: "ghost small", "data-testid": "account-username-save" }, "Rename"));
    nameForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      say("Saving…");
      void api.updateProfile({ username: name.value }).then(
        (me) => {
          c.user.textContent = me.username;
          name.value = me.username;
          if (this.store.me) this.store.me = { ...this.store.me, username: me.username };
          say("Username changed.");
        },
        (e) => {
          // Refused: the field shows the name the account still has.
          name.value = c.user.textContent ?? "";
          say(api.errorText(e), true);
        },
      );
    });
    const current = el("input", { type: "password", autocomplete: "current-password", placeholder: "Current password", "data-testid": "account-current-password" });
    const fresh = el("input", { type: "password", autocomplete: "new-password", minlength: "10", maxlength: "100", placeholder: "New password (10+ characters)", "data-testid": "account-new-password" });
    const passwordForm = el("form", { class: "row" }, current, fresh, el("button", { type: "submit", class: "ghost small", "data-testid": "account-password-save" }, "Change password"));
    passwordForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      // The server closes every socket of the account (1008): not a logout, this time.
      this.changingPassword = true;
      say("Saving…");
      void api.changePassword(current.value, fresh.value).then(
        () => {
          current.value = fresh.value = "";
          say("Password changed. Other devices were logged out.");
          this.changingPassword = false;
          this.connect();
        },
        (e) => {
          this.changingPassword = false;
          say(api.errorText(e), true);
          if (!this.conn) this.connect();
        },
      );
    });
    const avatarForm = this.avatarForm(say);
    const close = el("button", { type: "button", class: "ghost small", "data-testid": "account-close" }, "Close");
    close.addEventListener("click", () => panel.remove());
    const panel = el(
      "div",
      { class: "account-panel", role: "dialog", "aria-label": "Account", "data-testid": "account-panel" },
      el("h3", {}, "Account"),
      avatarForm,
      nameForm,
      passwordForm,
      message,
      close,
    );
    c.root.append(panel);
  }

  /** The account dialog's picture: upload an image and make it the avatar, or remove it. */
  private avatarForm(say: (text: string, error?: boolean) => void): HTMLElement {
    const me = this.store.me;
    const preview = me ? avatarImg(me.id, "large") : el("span", {});
    const pick = el("input", { type: "file", accept: "image/png,image/jpeg,image/gif,image/webp", "aria-label": "Choose a picture", "data-testid": "account-avatar-input" });
    const remove = button("Remove picture", { class: "link small", "data-testid": "account-avatar-remove" }, () => void set(null));
    const set = async (avatar: string | null) => {
      if (!avatar) say("Saving…");
      try {
        const updated = await api.updateProfile({ avatar });
        avatarChanged(updated.id, updated.avatar ?? null);
        say(avatar ? "Picture changed." : "Picture removed.");
      } catch (e) {
        say(api.errorText(e), true);
      }
    };
    pick.addEventListener("change", () => {
      const file = pick.files?.[0];
      if (!file) return;
      say("Uploading…");
      uploadFile(file, file.name, () => {}).done.then(
        (meta) => {
          pick.value = "";
          return set(meta.id);
        },
        (f: UploadFailure) => say(uploadErrorText(f, file.name), true),
      );
    });
    return el("div", { class: "row avatar-row" }, preview, el("label", { class: "ghost small file-pick" }, "Choose picture…", pick), remove);
  }

  /** Room unread counts survive a reload: the newest message seen per room, per user. */
  private rememberSeenRooms(userId: number): void {
    const key = `hearth.rooms.seen.${userId}`;
    try {
      this.store.restoreSeen(JSON.parse(localStorage.getItem(key) ?? "null"));
    } catch {
      /* unreadable: start afresh */
    }
    this.store.onSeen = (seen) => {
      try {
        localStorage.setItem(key, JSON.stringify(seen));
      } catch {
        /* storage full or unavailable */
      }
    };
  }

  private setMainView(v: "room" | "im"): void {
    const c = this.chat;
    if (!c || !this.im) return;
    this.mainView = v;
    if (v !== "room") this.seek = null;
    this.store.roomInView = v === "room";
    c.roomSection.hidden = v !== "room";
    this.im.main.hidden = v !== "im";
    if (v === "im") {
      this.renderRooms();
    }
  }

  private updateTitle(): void {
    let total = this.im?.totalUnread ?? 0;
    for (const r of this.store.roomList()) total += r.unread;
    document.title = total > 0 ? `(${total}) Hearth` : "Hearth";
  }

  private async logout(): Promise<void> {
    this.im?.stop();
    this.conn?.stop();
    this.conn = null;
    try {
      await api.logout();
    } catch {
      /* the session is gone from our side either way */
    }
    this.store.clear();
    this.forgetUser(true);
    this.showAuth("login");
  }

  /**
   * Logged out: the next user starts from no place (the URL says nothing about this one's).
   * An explicit logout also deletes the drafts and the last place kept on this device.
   */
  private forgetUser(erase = false): void {
    if (!erase) this.saveDraftsNow?.();
    if (erase && this.userId !== null) {
      for (const key of [`hearth.drafts.${this.userId}`, `hearth.place.${this.userId}`]) {
        try {
          localStorage.removeItem(key);
        } catch {
          /* storage unavailable */
        }
      }
    }
    this.drafts.onChange = null;
    this.saveDraftsNow = null;
    this.userId = null;
    this.drafts = new Drafts();
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  }

  private onUnauthorized(): void {
    if (this.changingPassword) {
      // The password change ended this socket's session; the new one reconnects it.
      this.conn = null;
      return;
    }
    this.im?.stop();
    this.conn?.stop();
    this.conn = null;
    this.store.clear();
    // Whoever logs in next starts from no place and no drafts of this user's.
    this.forgetUser();
    this.showAuth("login", "Please log in to continue.");
  }

  private onStatus(s: ConnectionStatus, retryInMs?: number): void {
    const c = this.chat;
    if (!c) return;
    c.status.dataset.status = s;
    if (s === "online") c.status.textContent = "";
    else if (s === "connecting") c.status.textContent = "Connecting…";
    else if (s === "reconnecting")
      c.status.replaceChildren(
        "Reconnecting…",
        ...(retryInMs !== undefined ? [el("span", { class: "retry" }, ` (retry in ${Math.ceil(retryInMs / 1000)}s)`)] : []),
      );
    else c.status.textContent = "";
    c.root.classList.toggle("offline", s !== "online");
    if (s !== "online") {
      this.store.cancelHistoryRequests();
      this.im?.onDisconnected();
    }
  }

  private onFrame(f: ServerFrame): void {
    const c = this.chat;
    if (!c) return;
    switch (f.type) {
      case "hello": {
        const atBottom = this.isAtBottom();
        const wasFirst = this.store.roomList().length === 0;
        this.rememberSeenRooms(f.payload.me.id);
        this.rememberUser(f.payload.me.id);
        this.store.applyHello(f.payload);
        c.user.textContent = f.payload.me.username;
        if (c.face.dataset.userId !== String(f.payload.me.id)) {
          c.face.dataset.userId = String(f.payload.me.id);
          c.face.replaceChildren(avatarImg(f.payload.me.id));
        }
        this.im?.onHello(f.payload.me);
        if (!this.store.selectedRoomId) {
          const first = this.store.roomList()[0];
          if (first) this.store.select(first.id);
          this.renderRooms();
          this.renderMessages("reset");
        } else {
          this.renderRooms();
          this.renderMessages(wasFirst || atBottom ? "reset" : "keep");
        }
        if (!this.routed) {
          // Back where the user was: the place in the URL, else the one of their last visit.
          this.routed = true;
          const route = parseRoute(location.hash) ?? this.lastPlace();
          this.applyRoute(route);
          // A conversation opens once synced; a room that is gone gave way to the first one.
          const target = route?.kind === "conversation" ? route : this.shownRoute();
          if (target && !sameRoute(parseRoute(location.hash), target)) history.replaceState(null, "", routeHash(target));
          const room = this.store.selectedRoomId;
          if (this.mainView === "room" && room && c.input.value === "") {
            c.input.value = this.drafts.get(roomDraftKey(room));
            this.autosize();
          }
        }
        // Reconnected while paging back to a message: history requests start again.
        this.continueSeek();
        break;
      }
      case "serverMessages": {
        const atBottom = this.isAtBottom();
        const added = this.store.applyServerMessages(f.payload);
        if (added === 0) break;
        if (f.payload.roomId === this.store.selectedRoomId && this.mainView === "room") {
          const mine = f.payload.messages.some((m) => m.user.id === this.store.me?.id);
          this.renderMessages(atBottom || mine ? "bottom" : "keep");
        } else {
          this.renderRooms();
        }
        break;
      }
      case "roomHistory": {
        this.store.applyHistory(f.payload);
        if (this.seek?.roomId === f.payload.roomId) this.seek.pages++;
        if (f.payload.roomId === this.store.selectedRoomId) this.renderMessages("prepend");
        this.continueSeek();
        break;
      }
      case "error":
        if (!this.im?.onError(f.payload)) this.showToast(errorFrameText(f.payload));
        break;
      default:
        this.im?.onFrame(f);
    }
  }

  /** Shows a room; `byUser` (not Back/Forward or the URL at load) makes it a new place in the history. */
  private selectRoom(id: string, byUser = true): void {
    if (!this.store.select(id)) return;
    this.seek = null;
    this.setMainView("room");
    this.im?.deactivate();
    this.renderRooms();
    this.renderMessages("reset");
    const input = this.chat?.input;
    if (input) {
      input.value = this.drafts.get(roomDraftKey(id));
      this.autosize();
      input.focus();
    }
    if (byUser) this.navigated({ kind: "room", id });
  }

  /** Opens a room at one of its messages (a search hit): loads older history back to it, then shows it. */
  private openRoomAt(roomId: string, message: RoomTarget): void {
    const room = this.store.room(roomId);
    if (!room) {
      this.showToast("That room is not available.");
      return;
    }
    this.selectRoom(roomId);
    this.seek = { roomId, seq: message.seq, pages: 0 };
    this.continueSeek();
  }

  /** One step towards the message sought: show it, ask for the next older page, or give up. */
  private continueSeek(): void {
    const s = this.seek;
    if (!s) return;
    const room = this.store.room(s.roomId);
    // Gone elsewhere (or the room went away): stop.
    if (!room || this.store.selectedRoomId !== s.roomId || this.mainView !== "room") {
      this.seek = null;
      return;
    }
    const at = seekRoomMessage(room, s.seq, s.pages);
    switch (at.kind) {
      case "found":
        this.seek = null;
        this.showRoomMessage(room.id, at.id);
        return;
      case "older":
        // A page already on its way (asked by scrolling, say) continues the search when it comes;
        // offline, the next hello does.
        if (!room.loadingHistory) this.requestHistory();
        return;
      case "missing":
        this.seek = null;
        this.showToast(`That message is no longer in #${room.name}: it may have been deleted.`);
        return;
      case "tooFar":
        this.seek = null;
        this.showToast(`That message is too far back in #${room.name} to find.`);
        return;
    }
  }

  /** The selected room's message `id` is on screen: scroll it to the middle and highlight it. */
  private showRoomMessage(roomId: string, id: string): void {
    this.flash = { roomId, id, until: Date.now() + FLASH_MS };
    const target = this.applyFlash();
    target?.scrollIntoView({ block: "center" });
  }

  /** Marks the message being highlighted, if it is on screen (after every render). */
  private applyFlash(): HTMLElement | null {
    const f = this.flash;
    const c = this.chat;
    if (!f || !c) return null;
    const left = f.until - Date.now();
    if (left <= 0) {
      this.flash = null;
      return null;
    }
    if (this.store.selectedRoomId !== f.roomId) return null;
    const target = c.messages.querySelector<HTMLElement>(`[data-message-id="${CSS.escape(f.id)}"]`);
    if (!target) return null;
    target.classList.add("flash");
    // Redrawn while it flashes: the animation carries on where it was rather than starting over.
    target.style.animationDelay = `${left - FLASH_MS}ms`;
    setTimeout(() => target.classList.remove("flash"), left);
    return target;
  }

  // ---------------------------------------------------------------- places (URL) and drafts

  /** Shows the room or conversation `route` names (null: the first room). */
  private applyRoute(route: Route | null): void {
    if (sameRoute(route, this.shownRoute())) return;
    if (route?.kind === "conversation") {
      this.im?.showRoute(route.id);
    } else if (route && this.store.room(route.id)) {
      this.selectRoom(route.id, false);
    } else {
      const first = this.store.roomList()[0];
      if (first) this.selectRoom(first.id, false);
    }
    if (route) this.rememberPlace(route);
  }

  /** The room or conversation on screen. */
  private shownRoute(): Route | null {
    if (this.mainView === "im") return this.im?.openId != null ? { kind: "conversation", id: this.im.openId } : null;
    const room = this.store.selectedRoomId;
    return room ? { kind: "room", id: room } : null;
  }

  /** The user went to `route`: a new entry in the browser's history, and the place to come back to. */
  private navigated(route: Route): void {
    if (!sameRoute(parseRoute(location.hash), route)) history.pushState(null, "", routeHash(route));
    this.rememberPlace(route);
  }

  /** The conversation in the URL is not (or no longer) ours: the first room instead. */
  private routeMissing(): void {
    const first = this.store.roomList()[0];
    if (!first) return;
    this.selectRoom(first.id, false);
    history.replaceState(null, "", routeHash({ kind: "room", id: first.id }));
    this.rememberPlace({ kind: "room", id: first.id });
  }

  private placeKey(): string | null {
    return this.userId === null ? null : `hearth.place.${this.userId}`;
  }

  private rememberPlace(route: Route): void {
    const key = this.placeKey();
    try {
      if (key) localStorage.setItem(key, routeHash(route));
    } catch {
      /* storage full or unavailable */
    }
  }

  private lastPlace(): Route | null {
    const key = this.placeKey();
    try {
      return key ? parseRoute(localStorage.getItem(key) ?? "") : null;
    } catch {
      return null;
    }
  }

  /** The drafts of `userId` (kept in localStorage), when they are not loaded yet. */
  private rememberUser(userId: number): void {
    if (this.userId === userId) return;
    this.userId = userId;
    const key = `hearth.drafts.${userId}`;
    let saved: unknown = null;
    try {
      saved = JSON.parse(localStorage.getItem(key) ?? "null");
    } catch {
      /* unreadable: start afresh */
    }
    this.drafts = Drafts.fromJSON(saved);
    // Written at most every half second while typing (the store holds up to 240 KB), and at
    // once when the page goes away.
    let saving: ReturnType<typeof setTimeout> | null = null;
    let latest: [string, string][] = [];
    const owner = this.drafts;
    const save = () => {
      if (saving) clearTimeout(saving);
      saving = null;
      // Logged out meanwhile: what the logout kept or erased stands.
      if (this.drafts !== owner) return;
      this.saveDraftsNow = null;
      try {
        localStorage.setItem(key, JSON.stringify(latest));
      } catch {
        /* storage full or unavailable */
      }
    };
    this.drafts.onChange = (drafts) => {
      latest = drafts;
      this.saveDraftsNow = save;
      if (!saving) saving = setTimeout(save, 500);
    };
  }

  private requestHistory(): void {
    const roomId = this.store.selectedRoomId;
    if (!roomId || !this.conn?.isOpen) return;
    const first = this.store.beginHistoryRequest(roomId);
    if (!first) return;
    if (!this.conn.send({ type: "requestRoomHistory", payload: { roomId, firstMessageId: first } })) {
      this.store.cancelHistoryRequests();
      return;
    }
    this.renderTop();
  }

  private sendMessage(): void {
    const c = this.chat;
    const roomId = this.store.selectedRoomId;
    if (!c || !roomId) return;
    const v = validateContent(c.input.value);
    if (!v.ok) {
      if (c.input.value.length > 0) this.showToast(v.error);
      return;
    }
    if (!this.conn?.send({ type: "clientMessages", payload: { roomId, messages: [{ content: v.content }] } })) {
      this.showToast("Not connected — your message was not sent.");
      return;
    }
    c.input.value = "";
    this.drafts.clear(roomDraftKey(roomId));
    this.autosize();
  }

  private autosize(): void {
    const input = this.chat?.input;
    if (!input) return;
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 200) + "px";
  }

  private showToast(text: string, info = false): void {
    const c = this.chat;
    if (!c) return;
    c.toast.textContent = text;
    c.toast.classList.toggle("info", info);
    c.toast.hidden = false;
    if (this.toastTimer) clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => {
      c.toast.hidden = true;
    }, 4000);
  }

  private isAtBottom(): boolean {
    const l = this.chat?.list;
    if (!l) return true;
    return l.scrollHeight - l.scrollTop - l.clientHeight < BOTTOM_THRESHOLD;
  }

  // ---------------------------------------------------------------- rendering

  private renderRooms(): void {
    const c = this.chat;
    if (!c) return;
    let totalUnread = 0;
    const items = this.store.roomList().map((r) => {
      totalUnread += r.unread;
      const selected = r.id === this.store.selectedRoomId && this.mainView === "room";
      const btn = el(
        "button",
        {
          type: "button",
          class: "room-item" + (selected ? " selected" : "") + (r.unread > 0 ? " has-unread" : ""),
          "data-testid": "room-item",
          "data-room-id": r.id,
          "data-room-name": r.name,
          "aria-current": selected ? "true" : undefined,
        },
        el("span", { class: "room-name" }, "# ", r.name),
        r.unread > 0 ? el("span", { class: "badge", "data-testid": "room-unread" }, r.unread > 99 ? "99+" : String(r.unread)) : null,
      );
      btn.addEventListener("click", () => this.selectRoom(r.id));
      return btn;
    });
    c.rooms.replaceChildren(...items);
    if (items.length === 0) c.rooms.append(el("p", { class: "muted" }, "No rooms yet."));
    totalUnread += this.im?.totalUnread ?? 0;
    document.title = totalUnread > 0 ? `(${totalUnread}) Hearth` : "Hearth";
  }

  private renderTop(): void {
    const c = this.chat;
    if (!c) return;
    const room = this.store.selectedRoom();
    if (!room) {
      c.top.replaceChildren();
      return;
    }
    if (room.loadingHistory) {
      c.top.replaceChildren(el("div", { class: "muted", "data-testid": "history-loading" }, "Loading older messages…"));
    } else if (room.hasMoreMessages) {
      const btn = el("button", { type: "button", class: "ghost small", "data-testid": "load-older" }, "Load older messages");
      btn.addEventListener("click", () => this.requestHistory());
      c.top.replaceChildren(btn);
    } else {
      c.top.replaceChildren(el("div", { class: "muted", "data-testid": "history-start" }, `This is the beginning of #${room.name}.`));
    }
  }

  private messageItem(m: Message, prev: Message | undefined): HTMLElement {
    const mine = m.user.id === this.store.me?.id;
    // Collapse the header of consecutive messages by the same user within 5 minutes.
    const continued = !!prev && prev.user.id === m.user.id && m.timestamp - prev.timestamp < 5 * 60_000;
    const time = el("time", { class: "time", "data-testid": "message-time", datetime: new Date(m.timestamp).toISOString(), title: new Date(m.timestamp).toLocaleString() }, formatTime(m.timestamp));
    return el(
      "li",
      {
        class: "message" + (mine ? " mine" : "") + (continued ? " continued" : ""),
        "data-testid": "message",
        "data-message-id": m.id,
      },
      el("div", { class: "meta" }, avatarImg(m.user.id), el("span", { class: "user", "data-testid": "message-user" }, m.user.username), time),
      el("div", { class: "content", "data-testid": "message-content" }, ...richText(m.content)),
    );
  }

  /**
   * Re-render the selected room's messages (oldest at top).
   *  reset:   scroll to the bottom (room switch, first load)
   *  bottom:  scroll to the bottom (new message while at bottom)
   *  prepend: keep the view anchored while older messages appear above
   *  keep:    leave scrollTop alone
   */
  private renderMessages(mode: "reset" | "bottom" | "prepend" | "keep"): void {
    const c = this.chat;
    if (!c) return;
    const room = this.store.selectedRoom();
    c.title.textContent = room ? `# ${room.name}` : "Select a room";
    c.input.placeholder = room ? `Message #${room.name}` : "Write a message…";
    c.input.disabled = !room;
    c.send.disabled = !room;
    const prevHeight = c.list.scrollHeight;
    const prevTop = c.list.scrollTop;
    this.renderTop();
    const frag = document.createDocumentFragment();
    if (room) {
      const msgs = room.messages;
      let prev: Message | undefined;
      for (let i = msgs.length - 1; i >= 0; i--) {
        frag.append(this.messageItem(msgs[i], prev));
        prev = msgs[i];
      }
      if (msgs.length === 0) frag.append(el("li", { class: "empty muted" }, "No messages yet. Say hello!"));
    }
    c.messages.replaceChildren(frag);
    if (mode === "reset" || mode === "bottom") {
      c.list.scrollTop = c.list.scrollHeight;
    } else if (mode === "prepend") {
      c.list.scrollTop = prevTop + (c.list.scrollHeight - prevHeight);
    }
    // If the list does not fill the view yet, there is nothing to scroll: fetch more right away.
    if (room && room.hasMoreMessages && !room.loadingHistory && c.list.scrollHeight <= c.list.clientHeight + TOP_THRESHOLD) {
      queueMicrotask(() => this.requestHistory());
    }
    this.applyFlash();
  }
}
