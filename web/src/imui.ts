/**
 * The instant-messaging part of the UI: conversation list, conversation view, new-group panel
 * and group panel. It shares the socket with the chat rooms; the App forwards native frames
 * here and asks for the sidebar section and the main section to mount. The friends panel
 * (`FriendsPanel`), message search (`SearchPanel`), uploads in progress (`Uploads`) and voice
 * recording (`VoiceRecorder`) live in their own modules and reach back through small host
 * interfaces.
 */
import { ApiError, errorText } from "./api";
import { button, el } from "./dom";
import { avatarChanged, avatarImg } from "./avatar";
import {
  asFileRef,
  fileUrl,
  fitWithin,
  formatBytes,
  kindForFile,
  thumbnailUrl,
  type AttachmentKind,
  type FileRef,
} from "./files";
import { formatTime } from "./format";
import { icon, iconButton, kindIcon } from "./icons";
import { FriendsPanel } from "./friendspanel";
import { VoiceRecorder } from "./recorder";
import { Uploads } from "./uploads";
import {
  ConversationLog,
  PendingSends,
  ServerClock,
  TYPING_SEND_INTERVAL_MS,
  TYPING_SHOW_MS,
  ackedMessage,
  canRecall,
  goneText,
  friendNotice,
  nextRecallExpiry,
  quoteText,
  countUnread,
  deliveryReceiptsMaxMembers,
  lastJoins,
  receiptDetail,
  receiptDetailText,
  receiptSummary,
  eventAffects,
  isNum,
  isStr,
  isSilentSystem,
  parseSystem,
  presenceShown,
  receiptText,
  sendFrame,
  sendRetryable,
  systemText,
  type ConversationState,
  type ImMessage,
  type ImServerFrame,
  type InboxEvent,
  type Member,
  type PendingSend,
  type Presence,
  type Profile,
  type SyncState,
} from "./im";
import * as imapi from "./imapi";
import type { FriendRequest, JoinRequest } from "./imapi";
import { conversationDraftKey, type Drafts } from "./drafts";
import { richText } from "./links";
import { durationText, policy } from "./policy";
import type { RoomTarget } from "./store";
import { MessageNav } from "./messagenav";
import { errorFrameText, validateContent, type ClientFrame, type ErrorPayload, type UserRef } from "./protocol";
import type { SearchHit } from "./search";
import { SearchPanel } from "./searchpanel";

export interface ImHost {
  send(frame: ClientFrame): boolean;
  isOnline(): boolean;
  toast(text: string, info?: boolean): void;
  /** Show the IM main section (hides the room view). */
  showIm(): void;
  /** Open a chat room, at `message` if given (a search hit): older history is loaded back to it, which is centred and flashed. */
  openRoom(roomId: string, message?: RoomTarget): void;
  /** A room's display name, if the client knows the room. */
  roomName(roomId: string): string | undefined;
  onUnreadChange(): void;
  /** A conversation was opened by the user (for the URL and the next visit). */
  opened(conversationId: number): void;
  /** The conversation asked for by `showRoute` is not one of ours. */
  routeMissing(conversationId: number): void;
  /** What was typed but not sent, per conversation. */
  drafts(): Drafts;
  /** This user's name changed (on another device, or in the account dialog). */
  renamed(username: string): void;
}

/** Longest side of an inline image, in CSS pixels (the server's thumbnails are 320 px). */
const INLINE_IMAGE_MAX = 320;

interface Conv {
  state: ConversationState;
  log: ConversationLog | null;
  /** Read positions of the other members (userId -> seq). */
  readers: Map<number, number>;
  /** How far the other members' devices have received (userId -> seq; reading counts). */
  receivers: Map<number, number>;
  members: Member[] | null;
  /**
   * Who left or was removed, as told live. The server announces a departure before it takes
   * the member out, so a member list fetched right after the notice may still hold them.
   */
  departed: Set<number>;
  joinRequests: JoinRequest[];
  pulling: boolean;
  pullAgain: boolean;
  typing: Map<number, ReturnType<typeof setTimeout>>;
  /** The newest seq we told the server we read. */
  sentRead: number;
  /** The newest seq we told the server this device received, and the pending report. */
  sentDelivered: number;
  deliveredTimer: ReturnType<typeof setTimeout> | null;
  /** Older messages are being fetched (`loadOlder`). */
  loadingOlder: boolean;
  /**
   * Where the unread messages began when the conversation was opened (its read position
   * then): a "New messages" line goes before the first later message from someone else.
   */
  newAfter: number | null;
  /** Scroll to that line once it is first drawn. */
  scrollToNew: boolean;
}

type Panel = "conversation" | "friends" | "newGroup" | "search" | "none";

/** Messages to load when first opening a conversation with a long history. */
const INITIAL_WINDOW = 200;
/** The most messages fetched back at once (to reach an old search hit). */
const OLDER_MAX = 5_000;
/** Resend an unacknowledged message after this long (same clientMsgId). */
const ACK_TIMEOUT_MS = 8_000;
/** Messages arriving within this long are reported delivered together (one frame). */
const DELIVERED_DELAY_MS = 500;


export class ImController {
  me: UserRef | null = null;
  private convs = new Map<number, Conv>();
  private names = new Map<number, string>();
  private friends: UserRef[] = [];
  private presence = new Map<number, Presence>();
  /** Whether the socket is up: presence heard before a disconnect is not shown as current. */
  private connected = false;
  private incoming: FriendRequest[] = [];
  private outgoing: FriendRequest[] = [];
  private blockedUsers: UserRef[] = [];
  private inboxSeq = 0;
  private pending = new PendingSends();
  openId: number | null = null;
  private panel: Panel = "none";
  private groupPanelOpen = false;
  private editingSeq: number | null = null;
  /** The message the composer's next text answers. */
  private replyingTo: ImMessage | null = null;
  /** A group name being typed in the group panel, kept across its re-renders. */
  private groupNameDraft: { id: number; text: string } | null = null;
  /** Conversations whose loss an inbox event has already explained to the user. */
  private toldGone = new Set<number>();
  private lastTypingSent = 0;
  private retryTimer: ReturnType<typeof setInterval> | null = null;
  private refreshFriendsTimer: ReturnType<typeof setTimeout> | null = null;
  private resyncTimer: ReturnType<typeof setTimeout> | null = null;
  private clockTimer: ReturnType<typeof setInterval> | null = null;
  private uploads: Uploads;
  /** Rendered attachments by message id, reused across renders (a playing voice message keeps playing). */
  private attachmentEls = new Map<string, { fileId: string; el: HTMLElement }>();
  /** A message highlighted for a moment (a search hit that was opened), until when. */
  private flash: { seq: number; until: number } | null = null;
  /** A message to scroll to once it is rendered (a search hit that was clicked). */
  private focusSeq: number | null = null;
  /** The "New messages" line of the open conversation, if drawn. */
  private newDivider: HTMLElement | null = null;
  private recorder: VoiceRecorder;
  /** Keyboard focus and touch selection among the messages. */
  private nav: MessageNav;
  /** Ends the document and window listeners of this controller (a later login makes another). */
  private readonly listening = new AbortController();
  /** The server's clock (message timestamps), for the recall window. */
  private clock = new ServerClock();
  /** Redraws the messages when the next Recall button has to go. */
  private recallTimer: ReturnType<typeof setTimeout> | null = null;
  /** A conversation asked for (the URL) before the first sync said which are ours. */
  private wantOpen: number | null = null;
  /** Whether a sync has been applied since this user's hello. */
  private synced = false;
  /**
   * Conversations we left or were taken out of (by id, with the joinedSeq we had): nothing is
   * fetched for them any more, and a late sync that still lists them does not bring them back.
   */
  private gone = new Map<number, number>();

  // DOM
  readonly sidebar: HTMLElement;
  readonly main: HTMLElement;
  private convList: HTMLElement;
  private requestsBadge: HTMLElement;
  private convView: HTMLElement;
  private convTitle: HTMLElement;
  private convSub: HTMLElement;
  private groupButton: HTMLButtonElement;
  private list: HTMLElement;
  private messagesEl: HTMLElement;
  private typingEl: HTMLElement;
  private editBanner: HTMLElement;
  private replyBanner: HTMLElement;
  private input: HTMLTextAreaElement;
  private sendBtn: HTMLButtonElement;
  private attachBtn: HTMLButtonElement;
  private fileInput: HTMLInputElement;
  private voiceInput: HTMLInputElement;
  private dropHint: HTMLElement;
  private viewer: HTMLElement;
  /** The message search box (the App puts it in the top bar). */
  readonly searchForm: HTMLFormElement;
  private search: SearchPanel;
  private groupPanel: HTMLElement;
  private friendsPanel: FriendsPanel;
  private newGroupPanel: HTMLElement;
  private emptyPanel: HTMLElement;

  constructor(private readonly host: ImHost) {
    this.requestsBadge = el("span", { class: "badge", "data-testid": "friend-requests-badge", hidden: "" });
    const friendsBtn = el("button", { type: "button", class: "side-action", "data-testid": "open-friends" }, "Friends", this.requestsBadge);
    friendsBtn.addEventListener("click", () => this.showPanel("friends"));
    const groupBtn = button("New group", { class: "side-action", "data-testid": "open-new-group" }, () => this.showPanel("newGroup"));
    this.convList = el("nav", { class: "rooms conversations", "data-testid": "conversation-list", "aria-label": "Conversations" });
    this.sidebar = el("div", { class: "im-sidebar" }, el("h3", {}, "Chats"), el("div", { class: "side-actions" }, friendsBtn, groupBtn), this.convList);

    // Conversation view.
    this.convTitle = el("h2", { class: "room-title-text", "data-testid": "conversation-title" });
    this.convSub = el("span", { class: "muted small", "data-testid": "conversation-subtitle" });
    this.groupButton = button("Group info", { class: "ghost small", "data-testid": "group-info-button" }, () => {
      this.groupPanelOpen = !this.groupPanelOpen;
      if (this.groupPanelOpen) void this.loadGroupDetails();
      this.renderGroupPanel();
    });
    this.messagesEl = el("ol", { class: "messages", "data-testid": "im-messages" });
    this.list = el("div", { class: "message-list", "data-testid": "im-message-list", tabindex: "0", "aria-label": "Messages (arrow keys move between them)" }, this.messagesEl);
    this.nav = new MessageNav(this.list, this.messagesEl, { leaveDown: () => this.input.focus() });
    this.list.addEventListener("scroll", () => {
      if (this.list.scrollTop < 40 && this.openId !== null) void this.loadOlder(this.openId);
    });
    this.typingEl = el("div", { class: "typing muted", "data-testid": "typing-indicator", "aria-live": "polite" });
    this.editBanner = el("div", { class: "edit-banner", "data-testid": "im-editing", hidden: "" });
    this.replyBanner = el("div", { class: "edit-banner reply-banner", "data-testid": "im-replying", hidden: "" });
    this.input = el("textarea", {
      rows: "1",
      placeholder: "Write a message…",
      "aria-label": "Message",
      "data-testid": "im-composer-input",
    });
    this.sendBtn = el("button", { type: "submit", class: "primary", "data-testid": "im-composer-send" }, "Send");
    this.fileInput = el("input", { type: "file", multiple: "", hidden: "", "data-testid": "im-attach-input" });
    this.fileInput.addEventListener("change", () => {
      this.attachFiles([...(this.fileInput.files ?? [])]);
      this.fileInput.value = "";
    });
    this.voiceInput = el("input", { type: "file", accept: "audio/*", hidden: "", "data-testid": "im-voice-input" });
    this.voiceInput.addEventListener("change", () => {
      this.attachFiles([...(this.voiceInput.files ?? [])], "voice");
      this.voiceInput.value = "";
    });
    this.attachBtn = iconButton("clip", { class: "ghost icon-button", title: "Attach files (or drop them here)", "aria-label": "Attach files", "data-testid": "im-attach" }, () => this.fileInput.click());
    this.uploads = new Uploads({
      send: (conversationId, files) => {
        if (!this.convs.has(conversationId)) return;
        // Each takes its place among the unsent messages by when it was chosen.
        for (const f of files) this.pending.add(conversationId, "", undefined, f.chosenAt, { kind: f.kind, file: asFileRef(f.meta) ?? f.meta });
        this.savePending();
        this.flushPending();
      },
      changed: (conversationId, toBottom) => {
        if (conversationId === this.openId) this.renderMessages(toBottom);
      },
      isVisible: (conversationId) => this.isVisible(conversationId),
      toast: (text) => this.host.toast(text),
    }, this.listening.signal);
    this.recorder = new VoiceRecorder({
      conversation: () => this.openId,
      recorded: (id, audio, name) => {
        if (this.convs.has(id)) this.uploads.start(id, audio, name, "voice");
      },
      cannotRecord: (why) => {
        this.host.toast(why);
        this.voiceInput.click();
      },
    });
    const voiceFileBtn = iconButton("music", { class: "ghost icon-button", title: "Send an audio file as a voice message", "aria-label": "Send an audio file as a voice message", "data-testid": "im-voice-file" }, () => this.voiceInput.click());
    const composer = el(
      "form",
      { class: "composer", "data-testid": "im-composer" },
      el("div", { class: "composer-tools" }, this.attachBtn, this.recorder.button, this.recorder.discardButton, voiceFileBtn),
      this.input,
      this.sendBtn,
      this.fileInput,
      this.voiceInput,
    );
    this.input.addEventListener("paste", (ev) => {
      const files = [...(ev.clipboardData?.files ?? [])];
      if (files.length > 0 && this.openId !== null) {
        ev.preventDefault();
        this.attachFiles(files);
      }
    });
    composer.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submitComposer();
    });
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.submitComposer();
      } else if (ev.key === "Escape" && this.editingSeq !== null) {
        this.cancelEdit();
      } else if (ev.key === "Escape" && this.replyingTo !== null) {
        this.cancelReply();
      } else if (ev.key === "ArrowUp" && this.input.value === "" && !ev.isComposing && !ev.shiftKey && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
        // From an empty composer, up goes to the newest message (and on with the arrows).
        if (this.nav.focusNewest()) ev.preventDefault();
      }
    });
    this.input.addEventListener("input", () => {
      this.keepDraft();
      this.onInput();
    });
    this.groupPanel = el("aside", { class: "group-panel", "data-testid": "group-panel", hidden: "" });
    this.dropHint = el("div", { class: "drop-hint", "data-testid": "im-drop-hint", hidden: "" }, "Drop files to send them");
    this.convView = el(
      "div",
      { class: "conv-view", "data-testid": "conversation-view", hidden: "" },
      el(
        "div",
        { class: "conv-main" },
        el("header", { class: "room-title conv-header" }, el("div", { class: "conv-heading" }, this.convTitle, this.convSub), this.groupButton),
        this.list,
        this.dropHint,
        this.typingEl,
        this.editBanner,
        this.replyBanner,
        composer,
      ),
      this.groupPanel,
    );
    this.friendsPanel = new FriendsPanel({
      me: () => this.me,
      lists: () => ({ friends: this.friends, incoming: this.incoming, outgoing: this.outgoing, blocked: this.blockedUsers }),
      presenceOf: (userId) => this.presenceOf(userId),
      act: (call, after) => this.act(call, after),
      openDirect: (user) => void this.openDirect(user),
      toast: (text, info) => this.host.toast(text, info),
      isShown: () => this.panel === "friends",
    });
    this.newGroupPanel = el("div", { class: "panel", "data-testid": "new-group-panel", hidden: "" });
    this.emptyPanel = el("div", { class: "panel muted" }, "Select a conversation.");
    this.search = new SearchPanel({
      me: () => this.me,
      conversations: () =>
        [...this.convs.values()]
          .sort((a, b) => b.state.lastActivity - a.state.lastActivity)
          .map((c) => ({ id: c.state.id, label: c.state.kind === "group" ? `Group: ${this.convName(c)}` : this.convName(c) })),
      people: (conversation) => {
        const people = new Map<number, string>();
        for (const f of this.friends) people.set(f.id, f.username);
        const scoped = conversation !== undefined ? this.convs.get(conversation) : undefined;
        for (const m of scoped?.members ?? []) people.set(m.user.id, m.user.username);
        return people;
      },
      nameOf: (userId) => this.names.get(userId),
      whereOf: (h) => this.searchHitWhere(h),
      senderOf: (h) => this.searchHitSender(h),
      openHit: (h) => this.openSearchHit(h),
      show: () => this.showPanel("search"),
      isShown: () => this.panel === "search",
    });
    this.searchForm = this.search.form;
    this.viewer = el("div", { class: "viewer", "data-testid": "image-viewer", role: "dialog", "aria-modal": "true", "aria-label": "Image", hidden: "" });
    this.viewer.addEventListener("click", (ev) => {
      if (ev.target === this.viewer) this.closeViewer();
    });
    document.addEventListener(
      "keydown",
      (ev) => {
        if (ev.key !== "Escape") return;
        if (!this.viewer.hidden) this.closeViewer();
        else if (this.groupPanelOpen) this.closeGroupPanel();
      },
      { signal: this.listening.signal },
    );
    this.main = el(
      "section",
      { class: "room im", "data-testid": "im-view" },
      this.convView,
      this.friendsPanel.panel,
      this.newGroupPanel,
      this.search.panel,
      this.emptyPanel,
      this.viewer,
    );
    this.setupDrop();

    document.addEventListener("visibilitychange", () => this.maybeRead(), { signal: this.listening.signal });
    window.addEventListener("focus", () => this.maybeRead(), { signal: this.listening.signal });
  }

  // ---------------------------------------------------------------- lifecycle

  /** The socket said hello (first connect or reconnect). */
  onHello(me: UserRef): void {
    if (this.me?.id !== me.id) {
      this.reset();
      this.me = me;
      this.inboxSeq = Number(localStorage.getItem(this.key("inbox")) ?? 0) || 0;
      try {
        this.pending = PendingSends.fromJSON(JSON.parse(localStorage.getItem(this.key("pending")) ?? "[]"));
      } catch {
        this.pending = new PendingSends();
      }
    }
    this.names.set(me.id, me.username);
    this.connected = true;
    this.pending.resetSent();
    this.host.send({ type: "sync", payload: { inboxAfter: this.inboxSeq } });
    void this.refreshFriends();
    if (!this.retryTimer) this.retryTimer = setInterval(() => this.flushPending(), 2_000);
    if (!this.clockTimer) this.clockTimer = setInterval(() => this.renderMessages(false), 30_000);
  }

  /** Logged out / stopped. */
  stop(): void {
    this.recorder.close();
    this.listening.abort();
    this.uploads.abortAll();
    if (this.retryTimer) clearInterval(this.retryTimer);
    if (this.clockTimer) clearInterval(this.clockTimer);
    if (this.recallTimer) clearTimeout(this.recallTimer);
    this.retryTimer = this.clockTimer = this.recallTimer = null;
  }

  private reset(): void {
    this.convs.clear();
    this.friends = [];
    this.incoming = [];
    this.outgoing = [];
    this.blockedUsers = [];
    this.presence.clear();
    this.openId = null;
    this.panel = "none";
    this.wantOpen = null;
    this.synced = false;
    this.gone.clear();
    this.toldGone.clear();
    this.nav.reset();
    this.pending = new PendingSends();
    this.uploads.abortAll();
    this.attachmentEls.clear();
    this.search.reset();
    this.friendsPanel.reset();
  }

  /** The socket went down: who is online is unknown until it is back (onHello refreshes it). */
  onDisconnected(): void {
    if (!this.connected) return;
    this.connected = false;
    this.friendsPanel.render();
    this.renderHeader();
  }

  /** What to say of a peer's presence: nothing certain while we are offline ourselves. */
  private presenceOf(userId: number): { online: boolean; text: string } {
    return presenceShown(this.presence.get(userId), this.connected);
  }

  private key(what: string): string {
    return `hearth.im.${what}.${this.me?.id ?? 0}`;
  }

  private savePending(): void {
    try {
      localStorage.setItem(this.key("pending"), JSON.stringify(this.pending.toJSON()));
    } catch {
      /* storage full or unavailable */
    }
  }

  private setInboxSeq(seq: number): void {
    if (seq <= this.inboxSeq) return;
    this.inboxSeq = seq;
    try {
      localStorage.setItem(this.key("inbox"), String(seq));
    } catch {
      /* ignore */
    }
  }

  get totalUnread(): number {
    let n = 0;
    for (const c of this.convs.values()) n += c.state.unread;
    return n;
  }

  // ---------------------------------------------------------------- frames

  /** A native server frame (everything but hello/serverMessages/roomHistory/error). */
  onFrame(f: ImServerFrame): void {
    switch (f.type) {
      case "syncState":
        this.applySync(f.payload, true);
        break;
      case "message":
        this.onMessage(f.payload);
        break;
      case "ack":
        this.onAck(f.payload.clientMsgId, f.payload.conversationId, f.payload.seq, f.payload.id, f.payload.timestamp);
        break;
      case "event":
        this.onEvent(f.payload);
        break;
      case "receipt": {
        const r = f.payload;
        const c = this.convs.get(r.conversationId);
        if (!c) break;
        if (r.userId === this.me?.id) {
          if (r.seq > c.state.readSeq) {
            c.state.readSeq = r.seq;
            c.sentRead = Math.max(c.sentRead, r.seq);
            this.recountUnread(c);
            this.renderConversations();
          }
        } else {
          // Read is delivered too.
          c.readers.set(r.userId, Math.max(c.readers.get(r.userId) ?? 0, r.seq));
          c.receivers.set(r.userId, Math.max(c.receivers.get(r.userId) ?? 0, r.seq));
          if (r.conversationId === this.openId) this.renderMessages(false);
        }
        break;
      }
      case "delivery": {
        const r = f.payload;
        const c = this.convs.get(r.conversationId);
        if (!c || r.userId === this.me?.id) break;
        c.receivers.set(r.userId, Math.max(c.receivers.get(r.userId) ?? 0, r.seq));
        if (r.conversationId === this.openId) this.renderMessages(false);
        break;
      }
      case "profile":
        this.onProfile(f.payload);
        break;
      case "typing": {
        const t = f.payload;
        const c = this.convs.get(t.conversationId);
        if (!c || t.userId === this.me?.id) break;
        const old = c.typing.get(t.userId);
        if (old) clearTimeout(old);
        c.typing.set(
          t.userId,
          setTimeout(() => {
            c.typing.delete(t.userId);
            this.renderTyping();
          }, TYPING_SHOW_MS),
        );
        this.renderTyping();
        break;
      }
      case "presence":
        this.presence.set(f.payload.userId, f.payload);
        this.friendsPanel.render();
        this.renderHeader();
        break;
    }
  }

  /**
   * An error frame; returns true if it belonged to a pending send. The send stays listed as
   * failed, with a Retry button that resends it with the same clientMsgId (a `rate_limited`
   * refusal says how long to wait).
   */
  onError(e: ErrorPayload): boolean {
    if (!e.clientMsgId && e.code === "not_member") {
      // A read receipt or typing notice for a conversation we were just taken out of: the
      // resync drops it (and the event that took it away says why).
      this.scheduleResync();
      return true;
    }
    if (!e.clientMsgId) return false;
    const text = errorFrameText(e);
    const p = this.pending.fail(e.clientMsgId, text, e.code);
    if (!p) return false;
    this.savePending();
    this.host.toast(text);
    if (p.conversationId === this.openId) this.renderMessages(false);
    return true;
  }

  private applySync(s: SyncState, fromSocket: boolean): void {
    const seen = new Set<number>();
    for (const st of s.conversations) {
      const left = this.gone.get(st.id);
      // Listed by a sync that started before we left: still gone (joined again: a later joinedSeq).
      if (left !== undefined && st.joinedSeq <= left) continue;
      this.gone.delete(st.id);
      seen.add(st.id);
      const c = this.convs.get(st.id);
      if (st.peer) this.names.set(st.peer.id, st.peer.username);
      if (!c) {
        // Ours (again): losing it later is news again.
        this.toldGone.delete(st.id);
        this.convs.set(st.id, {
          state: st,
          log: null,
          readers: new Map(),
          receivers: new Map(),
          members: null,
          departed: new Set(),
          joinRequests: [],
          pulling: false,
          pullAgain: false,
          typing: new Map(),
          sentRead: st.readSeq,
          sentDelivered: st.readSeq,
          deliveredTimer: null,
          loadingOlder: false,
          newAfter: null,
          scrollToNew: false,
        });
      } else {
        const prevLast = c.state.lastSeq;
        c.state = { ...st, lastSeq: Math.max(prevLast, st.lastSeq), readSeq: Math.max(c.state.readSeq, st.readSeq) };
        c.sentRead = Math.max(c.sentRead, st.readSeq);
      }
    }
    for (const [id, c] of [...this.convs]) {
      if (!seen.has(id)) this.forget(c, `You are no longer in “${this.convName(c)}”.`);
    }
    let friendsChanged = false;
    for (const ev of s.inbox) {
      if (ev.seq <= this.inboxSeq) continue;
      // Caught up on, not live: the conversations listed above are what is ours now.
      const effect = this.handleEvent(ev, false);
      friendsChanged ||= effect.friends;
    }
    const lastEvent = s.inbox.length > 0 ? s.inbox[s.inbox.length - 1].seq : this.inboxSeq;
    if (s.inbox.length > 0) this.setInboxSeq(lastEvent);
    if (s.inboxSeq > this.inboxSeq && s.inbox.length > 0) {
      // More than one page of inbox: ask for the next.
      if (fromSocket) this.host.send({ type: "sync", payload: { inboxAfter: this.inboxSeq } });
      else void this.httpSync();
    } else if (s.inboxSeq > this.inboxSeq && s.inbox.length === 0) {
      // Events we cannot see any more (or a server reset): skip ahead.
      this.setInboxSeq(s.inboxSeq);
    }
    if (friendsChanged) this.scheduleFriendsRefresh();
    for (const c of this.convs.values()) {
      if (!c.log || c.log.missing(c.state.lastSeq)) void this.pull(c.state.id);
    }
    this.flushPending();
    this.renderConversations();
    if (this.openId !== null) {
      this.renderHeader();
      this.renderMessages(false);
      this.maybeRead();
    }
    this.synced = true;
    if (this.wantOpen !== null) {
      const id = this.wantOpen;
      this.wantOpen = null;
      if (this.convs.has(id)) this.openConversation(id, false);
      else this.host.routeMissing(id);
    }
  }

  /**
   * A conversation we are no longer in (left, removed, dissolved): dropped from the list, closed
   * if open, and nothing more is fetched for it. `notice` is told (neutrally) unless the event
   * that took it away already said who and why.
   */
  private forget(c: Conv, notice: string): void {
    const id = c.state.id;
    this.convs.delete(id);
    if (this.openId === id) {
      this.openId = null;
      this.groupPanelOpen = false;
      this.renderGroupPanel();
      this.showPanel("none");
      if (!this.toldGone.has(id)) this.host.toast(notice, true);
    }
    this.toldGone.add(id);
    this.renderConversations();
  }

  private async httpSync(): Promise<void> {
    try {
      const s = await imapi.sync(this.inboxSeq);
      this.applySync(s, false);
    } catch (e) {
      this.host.toast(errorText(e));
    }
  }

  private scheduleResync(): void {
    if (this.resyncTimer) return;
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null;
      if (!this.host.send({ type: "sync", payload: { inboxAfter: this.inboxSeq } })) void this.httpSync();
    }, 100);
  }

  private scheduleFriendsRefresh(): void {
    if (this.refreshFriendsTimer) return;
    this.refreshFriendsTimer = setTimeout(() => {
      this.refreshFriendsTimer = null;
      void this.refreshFriends();
    }, 100);
  }

  private onEvent(ev: InboxEvent): void {
    if (ev.seq <= this.inboxSeq) return;
    if (ev.seq > this.inboxSeq + 1) {
      // We missed some: sync returns them all in order.
      this.scheduleResync();
      return;
    }
    this.setInboxSeq(ev.seq);
    const effect = this.handleEvent(ev, true);
    if (effect.friends) this.scheduleFriendsRefresh();
    if (effect.conversations) this.scheduleResync();
  }

  /** Apply one inbox event (`live`: as it happens, not caught up on by a sync); says what needs refreshing. */
  private handleEvent(ev: InboxEvent, live: boolean): { friends: boolean; conversations: boolean } {
    const p = ev.payload;
    if (ev.kind === "message_hidden" && typeof p.conversationId === "number" && typeof p.seq === "number") {
      this.convs.get(p.conversationId)?.log?.hide(p.seq);
      if (p.conversationId === this.openId) this.renderMessages(false);
      this.renderConversations();
    }
    if (ev.kind === "join_request" && typeof p.conversationId === "number") {
      const c = this.convs.get(p.conversationId);
      if (c && p.conversationId === this.openId && this.groupPanelOpen) void this.loadGroupDetails();
      const u = p.user as UserRef | undefined;
      if (u?.username) this.host.toast(`${u.username} asks to join ${String(p.name ?? "your group")}`, true);
    }
    if (ev.kind === "join_rejected") this.host.toast(`Your request to join ${String(p.name ?? "a group")} was rejected`);
    const notice = friendNotice(ev.kind, p);
    if (notice) this.host.toast(notice, true);
    const gone = goneText(ev.kind, p, this.me?.id);
    if (gone) {
      // Not an error: a notice of what happened.
      this.host.toast(gone, true);
      if (typeof p.conversationId === "number") {
        this.toldGone.add(p.conversationId);
        if (live) this.markGone(p.conversationId);
      }
    }
    return eventAffects(ev.kind);
  }

  private onMessage(m: ImMessage): void {
    this.names.set(m.sender.id, m.sender.username);
    const c = this.convs.get(m.conversationId);
    if (!c) {
      // A conversation we do not know yet (new direct chat, just added to a group).
      this.scheduleResync();
      return;
    }
    if (m.clientMsgId && this.pending.get(m.clientMsgId) && m.sender.id === this.me?.id) {
      this.pending.ack(m.clientMsgId);
      this.savePending();
    }
    // The newest rename names the group, whether or not its log is loaded here.
    const rename = m.kind === "system" && m.seq >= c.state.lastSeq ? parseSystem(m.content) : null;
    if (rename?.event === "renamed" && isStr(rename.name)) {
      c.state.name = rename.name;
      if (c.state.id === this.openId) {
        this.renderHeader();
        this.renderGroupPanel();
      }
    }
    c.state.lastSeq = Math.max(c.state.lastSeq, m.seq);
    c.state.lastActivity = Math.max(c.state.lastActivity, m.timestamp);
    const typingTimer = c.typing.get(m.sender.id);
    if (typingTimer) {
      clearTimeout(typingTimer);
      c.typing.delete(m.sender.id);
    }
    if (!c.log) {
      // Counted now, made exact by the pull that loads the log.
      if (m.sender.id !== this.me?.id && m.kind !== "system" && !this.isVisible(c.state.id)) c.state.unread += 1;
      void this.pull(c.state.id);
      this.renderConversations();
      return;
    }
    const change = c.log.add(m);
    if (change.gap) void this.pull(c.state.id);
    if (change.added) {
      if (m.sender.id === this.me?.id) {
        c.state.readSeq = Math.max(c.state.readSeq, m.seq);
        c.sentRead = Math.max(c.sentRead, m.seq);
      } else if (!this.isVisible(c.state.id)) {
        const counted = countUnread(c.log, this.seen(c), c.state.lastSeq, this.me?.id);
        c.state.unread = counted ?? (m.kind === "system" ? c.state.unread : c.state.unread + 1);
      }
      if (m.kind === "system") this.onSystem(c, m);
      else if (m.sender.id !== this.me?.id) this.noteDelivered(c);
    }
    this.renderConversations();
    if (m.conversationId === this.openId) {
      this.renderMessages(m.sender.id === this.me?.id || this.isAtBottom());
      this.renderTyping();
      this.maybeRead();
    }
  }

  /**
   * Tells the server this device holds `c` up to its newest contiguous message, for the
   * senders' "Delivered" tick: once per burst of arrivals, and never for what was already
   * reported or read.
   */
  private noteDelivered(c: Conv): void {
    const due = () => {
      const seq = c.log?.known ?? 0;
      return seq > Math.max(c.sentDelivered, c.sentRead) ? seq : null;
    };
    if (c.deliveredTimer || due() === null) return;
    c.deliveredTimer = setTimeout(() => {
      c.deliveredTimer = null;
      const seq = due();
      if (seq === null || this.convs.get(c.state.id) !== c || !this.isIn(c)) return;
      if (this.host.send({ type: "delivered", payload: { conversationId: c.state.id, seq } })) c.sentDelivered = seq;
    }, DELIVERED_DELAY_MS);
  }

  /** A friend, or this user on another device, changed their name or picture. */
  private onProfile(p: Profile): void {
    this.names.set(p.userId, p.username);
    avatarChanged(p.userId, p.avatar);
    this.friends = this.friends.map((f) => (f.id === p.userId ? { ...f, username: p.username } : f));
    for (const c of this.convs.values()) {
      if (c.state.peer?.id === p.userId) c.state = { ...c.state, name: p.username, peer: { ...c.state.peer, username: p.username } };
      if (c.members) c.members = c.members.map((m) => (m.user.id === p.userId ? { ...m, user: { ...m.user, username: p.username } } : m));
    }
    if (this.me?.id === p.userId) {
      this.me = { ...this.me, username: p.username };
      this.host.renamed(p.username);
    }
    this.renderConversations();
    this.renderHeader();
    this.friendsPanel.render();
    if (this.groupPanelOpen) this.renderGroupPanel();
  }

  /** Fetches message `seq` of `c` again (it changed on the server), if this log holds it. */
  private async refetch(c: Conv, seq: number): Promise<void> {
    if (!this.isIn(c) || !c.log || seq <= c.log.base) return;
    try {
      const page = await imapi.pull(c.state.id, seq - 1, 1);
      if (this.convs.get(c.state.id) !== c || !c.log) return;
      c.log.addAll(page.messages.filter((m) => m.seq === seq));
      if (c.state.id === this.openId) this.renderMessages(false);
    } catch {
      /* the next pull of the conversation brings it */
    }
  }

  /** We are out of conversation `id` (its list entry goes with the next sync): fetch nothing more for it. */
  private markGone(id: number): void {
    const c = this.convs.get(id);
    if (c) this.gone.set(id, c.state.joinedSeq);
  }

  /** Whether we are (as far as we know) still in `c`: only then is anything fetched for it. */
  private isIn(c: Conv): boolean {
    return this.gone.get(c.state.id) === undefined;
  }

  private onSystem(c: Conv, m: ImMessage): void {
    const b = parseSystem(m.content);
    if (!b) return;
    // Announced without its words (someone joined after the voice message): the voice
    // message itself carries them.
    if (b.event === "transcribed" && isNum(b.seq) && !isStr(b.text)) void this.refetch(c, b.seq);
    const meOut = b.event === "dissolved" || ((b.event === "kicked" || b.event === "left") && b.userId === this.me?.id);
    if (meOut) {
      // The sync drops it; its members and join requests are not ours to fetch any more.
      this.markGone(c.state.id);
      this.scheduleResync();
      return;
    }
    if ((b.event === "left" || b.event === "kicked") && isNum(b.userId)) {
      c.departed.add(b.userId);
      if (c.members) c.members = c.members.filter((x) => x.user.id !== b.userId);
    }
    if (b.event === "joined" && Array.isArray(b.userIds)) {
      for (const id of b.userIds) if (isNum(id)) c.departed.delete(id);
    }
    if (["joined", "left", "kicked", "role_changed", "owner_changed", "created"].includes(b.event)) {
      if (c.state.id === this.openId) void this.loadGroupDetails();
      else c.members = null;
      // Our own role may have changed.
      if (b.userId === this.me?.id || b.event === "owner_changed") this.scheduleResync();
    }
  }

  private onAck(clientMsgId: string, conversationId: number, seq: number, id: string, timestamp: number): void {
    this.clock.observe(timestamp);
    const p = this.pending.ack(clientMsgId);
    this.savePending();
    const c = this.convs.get(conversationId);
    if (c && p && this.me) {
      // The ack carries everything the message frame would: show it as sent right away.
      c.state.lastSeq = Math.max(c.state.lastSeq, seq);
      c.state.readSeq = Math.max(c.state.readSeq, seq);
      c.sentRead = Math.max(c.sentRead, seq);
      if (c.log) {
        const change = c.log.add(ackedMessage(p, { clientMsgId, conversationId, id, seq, timestamp }, this.me));
        if (change.gap) void this.pull(conversationId);
      }
    }
    if (conversationId === this.openId) this.renderMessages(true);
    this.renderConversations();
  }

  // ---------------------------------------------------------------- pulling

  private async pull(id: number): Promise<void> {
    const c = this.convs.get(id);
    if (!c || !this.isIn(c)) return;
    if (c.pulling) {
      c.pullAgain = true;
      return;
    }
    c.pulling = true;
    let fromOthers = false;
    try {
      do {
        c.pullAgain = false;
        if (!c.log) c.log = new ConversationLog(Math.max(c.state.joinedSeq, c.state.lastSeq - INITIAL_WINDOW));
        for (let i = 0; i < 100; i++) {
          const page = await imapi.pull(id, c.log.known, 200);
          if (this.convs.get(id) !== c) return;
          for (const m of page.messages) {
            this.names.set(m.sender.id, m.sender.username);
            if (m.sender.id !== this.me?.id && m.kind !== "system") fromOthers = true;
            if (m.clientMsgId && m.sender.id === this.me?.id && this.pending.get(m.clientMsgId)) {
              this.pending.ack(m.clientMsgId);
              this.savePending();
            }
          }
          c.log.addAll(page.messages);
          c.state.lastSeq = Math.max(c.state.lastSeq, page.lastSeq);
          if (page.messages.length === 0 || c.log.known >= page.lastSeq) break;
        }
        c.log.reapplySystem();
      } while (c.pullAgain);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 403)) this.host.toast(errorText(e));
    } finally {
      c.pulling = false;
    }
    if (fromOthers) this.noteDelivered(c);
    if (!this.isVisible(id)) this.recountUnread(c);
    this.renderConversations();
    if (id === this.openId) {
      this.renderMessages(true);
      this.maybeRead();
    }
  }

  // ---------------------------------------------------------------- sending

  private flushPending(): void {
    if (!this.host.isOnline()) return;
    const now = Date.now();
    for (const p of this.pending.due(now, ACK_TIMEOUT_MS)) {
      if (!this.convs.has(p.conversationId)) continue;
      const ok = this.host.send(sendFrame(p));
      if (!ok) return;
      this.pending.markSent(p.clientMsgId, now);
    }
  }

  private submitComposer(): void {
    const id = this.openId;
    if (id === null) return;
    const v = validateContent(this.input.value);
    if (!v.ok) {
      if (this.input.value.length > 0) this.host.toast(v.error);
      return;
    }
    if (this.editingSeq !== null) {
      const seq = this.editingSeq;
      // Back to what was being typed before the edit.
      this.cancelEdit();
      imapi.edit(id, seq, v.content).catch((e) => this.host.toast(errorText(e)));
      return;
    }
    const replyTo = this.replyingTo?.conversationId === id ? this.replyingTo.seq : undefined;
    this.cancelReply();
    this.pending.add(id, v.content, undefined, undefined, undefined, replyTo);
    this.savePending();
    this.input.value = "";
    this.host.drafts().clear(conversationDraftKey(id));
    this.lastTypingSent = 0;
    this.flushPending();
    this.renderMessages(true);
  }

  /** What is typed is the open conversation's draft (not the text of a message being edited). */
  private keepDraft(): void {
    if (this.openId === null || this.editingSeq !== null) return;
    this.host.drafts().set(conversationDraftKey(this.openId), this.input.value);
  }

  private draftOf(id: number | null): string {
    return id === null ? "" : this.host.drafts().get(conversationDraftKey(id));
  }

  private onInput(): void {
    const id = this.openId;
    if (id === null || this.input.value.trim() === "" || this.editingSeq !== null) return;
    const now = Date.now();
    if (now - this.lastTypingSent < TYPING_SEND_INTERVAL_MS) return;
    if (this.host.send({ type: "typing", payload: { conversationId: id } })) this.lastTypingSent = now;
  }

  private startReply(m: ImMessage): void {
    this.cancelEdit();
    this.replyingTo = m;
    this.replyBanner.replaceChildren(
      el("span", {}, `Replying to ${m.sender.username}: `, el("span", { class: "muted" }, quoteText(m))),
      button("Cancel", { class: "link", "data-testid": "im-reply-cancel" }, () => this.cancelReply()),
    );
    this.replyBanner.hidden = false;
    this.input.focus();
  }

  private cancelReply(): void {
    this.replyingTo = null;
    this.replyBanner.hidden = true;
  }

  /** The quote above a reply: who and what it answers; clicking it shows that message. */
  private quote(c: Conv, replyTo: number): HTMLElement {
    const target = c.log?.get(replyTo);
    const q = button("", { class: "reply-quote", "data-testid": "im-message-quote", "data-reply-to": String(replyTo) }, () => {
      this.focusSeq = replyTo;
      this.renderMessages(false);
      const log = c.log;
      if (log && replyTo <= log.base) void this.loadOlder(c.state.id, replyTo);
    });
    q.replaceChildren(target && !target.recalled ? el("span", { class: "user" }, target.sender.username) : "", " ", quoteText(target));
    return q;
  }

  private startEdit(m: ImMessage): void {
    this.cancelReply();
    this.editingSeq = m.seq;
    this.input.value = m.content;
    this.editBanner.replaceChildren(
      el("span", {}, "Editing message"),
      button("Cancel", { class: "link", "data-testid": "im-edit-cancel" }, () => this.cancelEdit()),
    );
    this.editBanner.hidden = false;
    this.input.focus();
  }

  private cancelEdit(): void {
    if (this.editingSeq === null) return;
    this.editingSeq = null;
    this.input.value = this.draftOf(this.openId);
    this.editBanner.hidden = true;
  }

  // ---------------------------------------------------------------- attachments

  /** Upload each file into the open conversation, then send it as an image, file or voice message. */
  private attachFiles(files: File[], kind?: AttachmentKind): void {
    const id = this.openId;
    if (id === null || files.length === 0) return;
    for (const f of files) this.uploads.start(id, f, f.name || "file", kind ?? kindForFile(f.type));
  }

  /** Dropping files anywhere on the conversation view sends them. */
  private setupDrop(): void {
    const hasFiles = (ev: DragEvent) => !!ev.dataTransfer && [...ev.dataTransfer.types].includes("Files");
    let depth = 0;
    const show = (on: boolean) => {
      this.dropHint.hidden = !on;
      this.convView.classList.toggle("dropping", on);
    };
    this.convView.addEventListener("dragenter", (ev) => {
      if (!hasFiles(ev) || this.openId === null) return;
      ev.preventDefault();
      depth++;
      show(true);
    });
    this.convView.addEventListener("dragover", (ev) => {
      if (!hasFiles(ev) || this.openId === null) return;
      ev.preventDefault();
      if (ev.dataTransfer) ev.dataTransfer.dropEffect = "copy";
    });
    this.convView.addEventListener("dragleave", (ev) => {
      if (!hasFiles(ev)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) show(false);
    });
    this.convView.addEventListener("drop", (ev) => {
      if (!hasFiles(ev)) return;
      ev.preventDefault();
      depth = 0;
      show(false);
      this.attachFiles([...(ev.dataTransfer?.files ?? [])]);
    });
  }

  // ---------------------------------------------------------------- search

  private searchHitWhere(h: SearchHit): string {
    if (h.room !== undefined) return `# ${this.host.roomName(h.room) ?? h.room}`;
    const c = this.convs.get(h.message.conversationId);
    return c ? this.convName(c) : "A conversation you left";
  }

  /** Who sent a hit, unless the place already says it (the peer of a direct chat). */
  private searchHitSender(h: SearchHit): string | null {
    const m = h.message;
    const c = h.room === undefined ? this.convs.get(m.conversationId) : undefined;
    if (c?.state.kind === "direct" && c.state.peer?.id === m.sender.id) return null;
    return m.sender.username;
  }

  /** A search hit was clicked: its room or its conversation, scrolled to it (loaded back to it). */
  private openSearchHit(h: SearchHit): void {
    const m = h.message;
    // In a room the hit's `seq` is the `n` of the message's room id `<ms>-<n>` (`m.id` is global).
    if (h.room !== undefined) this.host.openRoom(h.room, { seq: m.seq });
    else if (this.convs.has(m.conversationId)) {
      this.openConversation(m.conversationId);
      this.focusSeq = m.seq;
      this.renderMessages(false);
      const log = this.convs.get(m.conversationId)?.log;
      if (log && m.seq <= log.base) void this.loadOlder(m.conversationId, m.seq);
    } else this.host.toast("You are no longer in that conversation.");
  }

  // ---------------------------------------------------------------- reading

  private isVisible(id: number): boolean {
    return this.openId === id && this.panel === "conversation" && document.visibilityState === "visible" && !this.convView.hidden && this.convView.isConnected;
  }

  private maybeRead(): void {
    const id = this.openId;
    if (id === null) return;
    const c = this.convs.get(id);
    if (!c || !c.log || !this.isVisible(id) || !this.isIn(c)) return;
    const newest = c.log.known;
    if (newest > c.sentRead) {
      if (this.host.send({ type: "read", payload: { conversationId: id, seq: newest } })) {
        c.sentRead = newest;
        c.state.readSeq = Math.max(c.state.readSeq, newest);
      }
    }
    const before = c.state.unread;
    this.recountUnread(c);
    if (c.state.unread !== before) this.renderConversations();
  }

  private seen(c: Conv): number {
    return Math.max(c.state.readSeq, c.state.joinedSeq);
  }

  /** After the read position moved: counted from the log, or at most what is left after it. */
  private recountUnread(c: Conv): void {
    const seen = this.seen(c);
    const counted = c.log ? countUnread(c.log, seen, c.state.lastSeq, this.me?.id) : null;
    c.state.unread = counted ?? Math.min(c.state.unread, Math.max(0, c.state.lastSeq - seen));
  }

  /** The IM view became visible/invisible (the App switched between rooms and chats). */
  visibilityChanged(): void {
    this.maybeRead();
  }

  // ---------------------------------------------------------------- navigation

  private showPanel(p: Panel): void {
    // The user went elsewhere before the conversation in the URL could open: it no longer does.
    if (p !== "none") this.wantOpen = null;
    this.panel = p;
    this.host.showIm();
    this.convView.hidden = p !== "conversation";
    this.friendsPanel.panel.hidden = p !== "friends";
    this.newGroupPanel.hidden = p !== "newGroup";
    this.search.panel.hidden = p !== "search";
    this.emptyPanel.hidden = p !== "none";
    if (p !== "conversation") this.closeViewer();
    if (p !== "conversation") {
      this.openId = null;
      this.renderConversations();
    }
    if (p === "friends") {
      this.friendsPanel.render();
      void this.refreshFriends();
    }
    if (p === "newGroup") this.renderNewGroup();
    if (p === "search") this.search.render();
  }

  /**
   * Opens a conversation; `byUser` (not Back/Forward or the URL at load) makes it a new place
   * in the browser's history.
   */
  openConversation(id: number, byUser = true): void {
    this.wantOpen = null;
    this.cancelEdit();
    this.cancelReply();
    this.focusSeq = null;
    this.openId = id;
    this.groupPanelOpen = false;
    this.showPanel("conversation");
    this.openId = id;
    this.nav.reset();
    this.input.value = this.draftOf(id);
    if (byUser) this.host.opened(id);
    const c = this.convs.get(id);
    if (c) {
      c.newAfter = c.state.unread > 0 ? this.seen(c) : null;
      c.scrollToNew = c.newAfter !== null;
      void this.loadGroupDetails();
      if (!c.log || c.log.missing(c.state.lastSeq)) void this.pull(id);
    }
    this.renderConversations();
    this.renderHeader();
    this.renderMessages(true);
    this.renderTyping();
    this.renderGroupPanel();
    this.maybeRead();
    this.input.focus();
  }

  /**
   * The URL (at load, or Back/Forward) names conversation `id`: opened once a sync has said it
   * is ours (one is asked for if it is not known here yet, a new one, say); `routeMissing` if
   * it is not.
   */
  showRoute(id: number): void {
    if (this.openId === id && this.panel === "conversation") {
      this.host.showIm();
      return;
    }
    if (this.convs.has(id)) {
      this.openConversation(id, false);
      return;
    }
    this.wantOpen = id;
    this.showPanel("none");
    if (this.synced) void this.httpSync();
  }

  /** The room view was selected: the IM view is hidden. */
  deactivate(): void {
    this.wantOpen = null;
    this.openId = null;
    this.panel = "none";
    this.renderConversations();
  }

  private async openDirect(user: UserRef): Promise<void> {
    try {
      const { conversationId } = await imapi.openDirect(user.id);
      if (!this.convs.has(conversationId)) await this.httpSync();
      this.openConversation(conversationId);
    } catch (e) {
      this.host.toast(errorText(e));
    }
  }

  private async loadGroupDetails(): Promise<void> {
    const id = this.openId;
    if (id === null) return;
    const c = this.convs.get(id);
    if (!c || !this.isIn(c)) return;
    try {
      const members = (await imapi.members(id)).filter((x) => !c.departed.has(x.user.id));
      // Left while this was on its way: the rest is not ours to fetch.
      if (this.convs.get(id) !== c || !this.isIn(c)) return;
      c.members = members;
      for (const m of members) {
        this.names.set(m.user.id, m.user.username);
        if (m.user.id !== this.me?.id) {
          c.readers.set(m.user.id, Math.max(c.readers.get(m.user.id) ?? 0, m.readSeq));
          const received = Math.max(m.readSeq, m.deliveredSeq ?? 0);
          c.receivers.set(m.user.id, Math.max(c.receivers.get(m.user.id) ?? 0, received));
        }
      }
      if (c.state.kind === "group" && (c.state.role === "admin" || c.state.role === "owner") && this.groupPanelOpen) {
        c.joinRequests = await imapi.joinRequests(id);
      }
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 403)) this.host.toast(errorText(e));
    }
    if (id === this.openId) {
      this.renderHeader();
      this.renderMessages(false);
      this.renderGroupPanel();
    }
  }

  // ---------------------------------------------------------------- friends

  private async refreshFriends(): Promise<void> {
    try {
      const [friends, requests, blocked] = await Promise.all([imapi.friends(), imapi.friendRequests(), imapi.blocked()]);
      this.friends = friends;
      this.incoming = requests.incoming;
      this.outgoing = requests.outgoing;
      this.blockedUsers = blocked;
      for (const u of [...friends, ...blocked]) this.names.set(u.id, u.username);
      for (const r of [...requests.incoming, ...requests.outgoing]) {
        this.names.set(r.from.id, r.from.username);
        this.names.set(r.to.id, r.to.username);
      }
      if (friends.length > 0) {
        const ps = await imapi.presence(friends.map((f) => f.id).slice(0, 200));
        for (const p of ps) this.presence.set(p.userId, p);
      }
    } catch (e) {
      this.host.toast(errorText(e));
    }
    this.renderBadge();
    this.friendsPanel.render();
    this.renderHeader();
    if (this.panel === "newGroup") this.renderNewGroup();
    if (this.groupPanelOpen) this.renderGroupPanel();
  }

  /**
   * Leaving a group (or, for its owner, dissolving it): said plainly as done, not as an error,
   * and nothing more is fetched for it (its members and join requests are no longer ours to see).
   */
  private async quitGroup(c: Conv, how: "leave" | "dissolve"): Promise<void> {
    const id = c.state.id;
    const name = c.state.name;
    try {
      await (how === "leave" ? imapi.leave(id) : imapi.dissolve(id));
    } catch (e) {
      this.host.toast(errorText(e));
      return;
    }
    this.markGone(id);
    this.toldGone.add(id);
    this.host.toast(how === "leave" ? `You left “${name}”.` : `You dissolved “${name}”.`, true);
    const still = this.convs.get(id);
    if (still) this.forget(still, "");
    await this.httpSync();
  }

  private async act(call: () => Promise<unknown>, after: "friends" | "group" | "sync" | "none" = "friends"): Promise<boolean> {
    try {
      await call();
    } catch (e) {
      this.host.toast(errorText(e));
      return false;
    }
    if (after === "friends") await this.refreshFriends();
    if (after === "group") await this.loadGroupDetails();
    if (after === "sync") await this.httpSync();
    return true;
  }

  // ---------------------------------------------------------------- rendering

  private convName(c: Conv): string {
    return c.state.kind === "direct" ? (c.state.peer?.username ?? c.state.name) : c.state.name;
  }

  private icon(c: Conv): HTMLElement {
    // A direct chat is its peer: it shows their face.
    if (c.state.kind === "direct" && c.state.peer) return avatarImg(c.state.peer.id);
    return el("span", { class: "conv-icon " + c.state.kind, "aria-hidden": "true" }, c.state.kind === "group" ? "G" : "@");
  }

  private preview(c: Conv): string {
    const ms = c.log?.messages() ?? [];
    for (let i = ms.length - 1; i >= 0; i--) {
      const m = ms[i];
      if (m.hidden) continue;
      if (m.kind === "system" && parseSystem(m.content)?.event === "edited") continue;
      if (isSilentSystem(m)) continue;
      if (m.kind === "system") return systemText(m.content, m.sender, (id) => this.names.get(id), this.me?.id);
      if (m.recalled) return "Message recalled";
      const who = m.sender.id === this.me?.id ? "You: " : c.state.kind === "group" ? `${m.sender.username}: ` : "";
      const what =
        m.kind === "image" ? "Photo" : m.kind === "voice" ? "Voice message" : m.kind === "file" ? `File: ${m.file?.name ?? "attachment"}` : "";
      return who + (what && m.content ? `${what} · ${m.content}` : what || m.content);
    }
    return "";
  }

  renderConversations(): void {
    const convs = [...this.convs.values()].sort((a, b) => b.state.lastActivity - a.state.lastActivity || b.state.id - a.state.id);
    const items = convs.map((c) => {
      const selected = c.state.id === this.openId;
      const unread = c.state.unread;
      const btn = el(
        "button",
        {
          type: "button",
          class: "room-item conv-item" + (selected ? " selected" : "") + (unread > 0 ? " has-unread" : ""),
          "data-testid": "conversation-item",
          "data-conversation-id": String(c.state.id),
          "data-kind": c.state.kind,
          "data-name": this.convName(c),
          "aria-current": selected ? "true" : undefined,
        },
        el(
          "span",
          { class: "conv-text" },
          el("span", { class: "room-name", "data-testid": "conversation-name" }, this.icon(c), this.convName(c)),
          el("span", { class: "conv-preview", "data-testid": "conversation-preview" }, this.preview(c)),
        ),
        unread > 0 ? el("span", { class: "badge", "data-testid": "conversation-unread" }, unread > 99 ? "99+" : String(unread)) : null,
      );
      btn.addEventListener("click", () => this.openConversation(c.state.id));
      return btn;
    });
    this.convList.replaceChildren(...items);
    if (items.length === 0) this.convList.append(el("p", { class: "muted small" }, "No conversations yet."));
    this.renderBadge();
    this.host.onUnreadChange();
  }

  private renderBadge(): void {
    this.requestsBadge.textContent = String(this.incoming.length);
    this.requestsBadge.hidden = this.incoming.length === 0;
  }

  private renderHeader(): void {
    const c = this.openId !== null ? this.convs.get(this.openId) : undefined;
    if (!c) {
      this.convTitle.textContent = this.openId !== null ? "Loading…" : "";
      this.convSub.textContent = "";
      this.groupButton.hidden = true;
      return;
    }
    this.convTitle.replaceChildren(this.icon(c), this.convName(c));
    this.convTitle.dataset.conversationId = String(c.state.id);
    if (c.state.kind === "direct") {
      this.convSub.textContent = c.state.peer ? this.presenceOf(c.state.peer.id).text : "";
      this.groupButton.hidden = true;
    } else {
      const n = c.members?.length;
      this.convSub.textContent = `Group #${c.state.id}` + (n !== undefined ? ` · ${n} member${n === 1 ? "" : "s"}` : "");
      this.groupButton.hidden = false;
    }
    this.input.placeholder = `Message ${this.convName(c)}`;
  }

  private isAtBottom(): boolean {
    const l = this.list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 40;
  }

  private renderTyping(): void {
    const c = this.openId !== null ? this.convs.get(this.openId) : undefined;
    const who = c ? [...c.typing.keys()].map((id) => this.names.get(id) ?? `user #${id}`) : [];
    this.typingEl.textContent = who.length === 0 ? "" : `${who.join(", ")} ${who.length === 1 ? "is" : "are"} typing…`;
  }

  /** Own messages (by id) whose "who read it" detail is open: kept across re-renders. */
  private receiptsOpen = new Set<string>();

  /**
   * The status under one of our own messages. In a direct conversation plain text ("Read"); in
   * a group a button ("Read by 2") that opens a line below naming who read it, who only
   * received it and who has neither (as far as is known), also its hover title.
   */
  private readStatus(c: Conv, m: ImMessage): HTMLElement {
    if (c.state.kind === "direct") {
      return el("div", { class: "msg-status muted small", "data-testid": "im-message-status" }, receiptText("direct", m.seq, m.sender.id, c.readers, c.receivers));
    }
    const members = c.members?.map((x) => x.user.id) ?? null;
    const detail = receiptDetail(m.seq, m.sender.id, c.readers, c.receivers, {
      nameOf: (id) => this.names.get(id),
      members,
      deliveryKept: members === null || members.length <= deliveryReceiptsMaxMembers(),
      joinedAt: lastJoins(c.log?.messages() ?? []),
    });
    const text = receiptDetailText(detail);
    const open = this.receiptsOpen.has(m.id);
    const id = `receipts-${m.id}`;
    const line = el("div", { class: "msg-receipts small", id, "data-testid": "im-message-receipts" }, text);
    line.hidden = !open;
    // A control of its own in the message: a tap on it does not select the message (MessageNav).
    const toggle = button(receiptSummary(detail), { class: "msg-status msg-status-toggle muted small", "data-testid": "im-message-status", title: text, "aria-expanded": String(open), "aria-controls": id }, () =>
      this.toggleReceipts(m.id, toggle, line),
    );
    return el("div", { class: "msg-status-row" }, toggle, line);
  }

  /** Opens or closes a message's receipt detail in place (the next render keeps it so). */
  private toggleReceipts(id: string, toggle: HTMLElement, line: HTMLElement): void {
    const open = !this.receiptsOpen.has(id);
    if (open) this.receiptsOpen.add(id);
    else this.receiptsOpen.delete(id);
    toggle.setAttribute("aria-expanded", String(open));
    line.hidden = !open;
    if (open) line.scrollIntoView({ block: "nearest" });
  }

  /** The attachment of a message, reusing the element of the previous render. */
  private attachment(m: ImMessage, used: Map<string, { fileId: string; el: HTMLElement }>): HTMLElement | null {
    if (m.kind === "text" || m.kind === "system") return null;
    const f = m.file ? asFileRef(m.file) : null;
    if (!f) return el("div", { class: "muted small", "data-testid": "im-attachment-missing" }, "Attachment unavailable");
    const cached = this.attachmentEls.get(m.id);
    const node = cached && cached.fileId === f.id ? cached.el : this.buildAttachment(m.kind, f);
    used.set(m.id, { fileId: f.id, el: node });
    return node;
  }

  private buildAttachment(kind: ImMessage["kind"], f: FileRef): HTMLElement {
    const size = formatBytes(f.size);
    if (kind === "image") {
      const dims = f.width && f.height ? fitWithin(f.width, f.height, INLINE_IMAGE_MAX) : null;
      const img = el("img", {
        src: f.hasThumbnail ? thumbnailUrl(f.id) : fileUrl(f.id),
        alt: f.name,
        decoding: "async",
        width: dims ? String(dims.width) : undefined,
        height: dims ? String(dims.height) : undefined,
        "data-testid": "im-image",
      });
      const a = el("a", { href: fileUrl(f.id), target: "_blank", rel: "noopener", class: "im-image", title: `${f.name} (${size})`, "data-testid": "im-image-link", "data-file-id": f.id }, img);
      a.addEventListener("click", (ev) => {
        if (ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey) return;
        ev.preventDefault();
        this.openViewer(f);
      });
      return a;
    }
    if (kind === "voice") {
      return el(
        "div",
        { class: "im-voice", "data-file-id": f.id },
        el("audio", { controls: "", preload: "metadata", src: fileUrl(f.id), "data-testid": "im-voice" }),
        el("a", { href: fileUrl(f.id), download: f.name, class: "muted small", title: `Download ${f.name}` }, size),
      );
    }
    return el(
      "div",
      { class: "im-file", "data-file-id": f.id },
      el("span", { class: "im-file-icon" }, icon("file")),
      el("a", { href: fileUrl(f.id), download: f.name, class: "im-file-name", "data-testid": "im-file-link" }, f.name),
      el("span", { class: "muted small", "data-testid": "im-file-size" }, size),
    );
  }

  private openViewer(f: FileRef): void {
    const close = iconButton("close", { class: "viewer-close", "aria-label": "Close", "data-testid": "image-viewer-close" }, () => this.closeViewer());
    this.viewer.replaceChildren(
      el(
        "figure",
        { class: "viewer-figure" },
        el("img", { src: fileUrl(f.id), alt: f.name, "data-testid": "image-viewer-img" }),
        el(
          "figcaption",
          {},
          el("span", {}, f.name),
          " · ",
          el("span", {}, formatBytes(f.size)),
          " · ",
          el("a", { href: fileUrl(f.id), download: f.name, "data-testid": "image-viewer-download" }, "Download"),
        ),
      ),
      close,
    );
    this.viewer.hidden = false;
    close.focus();
  }

  private closeViewer(): void {
    this.viewer.hidden = true;
    this.viewer.replaceChildren();
  }

  private messageItem(c: Conv, m: ImMessage, prev: ImMessage | undefined, used: Map<string, { fileId: string; el: HTMLElement }>): HTMLElement {
    const me = this.me?.id;
    if (m.kind === "system") {
      return el(
        "li",
        { class: "system-line", "data-testid": "im-system", "data-seq": String(m.seq), "data-event": parseSystem(m.content)?.event ?? "" },
        systemText(m.content, m.sender, (id) => this.names.get(id), me),
      );
    }
    const mine = m.sender.id === me;
    const continued = !!prev && prev.kind !== "system" && prev.sender.id === m.sender.id && m.timestamp - prev.timestamp < 5 * 60_000;
    const time = el("time", { class: "time", datetime: new Date(m.timestamp).toISOString(), title: new Date(m.timestamp).toLocaleString() }, formatTime(m.timestamp));
    return el(
      "li",
      {
        class: "message" + (mine ? " mine" : "") + (continued ? " continued" : "") + (m.recalled ? " recalled" : ""),
        "data-testid": "im-message",
        // Reached with the arrow keys (MessageNav); a focused message shows its actions.
        "data-row": `s:${m.seq}`,
        // As on its pending row: the keyboard focus follows a message from one to the other.
        "data-client-msg-id": m.clientMsgId,
        "data-seq": String(m.seq),
        "data-message-id": m.id,
        "data-state": "sent",
        "data-recalled": m.recalled ? "true" : undefined,
        "data-kind": m.kind,
      },
      // First, so that Tab from the focused message reaches them.
      m.recalled ? null : this.messageActions(c, m, mine),
      el("div", { class: "meta" }, avatarImg(m.sender.id), el("span", { class: "user", "data-testid": "im-message-user" }, m.sender.username), time),
      m.recalled
        ? el("div", { class: "content muted recalled-text", "data-testid": "im-message-recalled" }, mine ? "You recalled a message" : `${m.sender.username} recalled a message`)
        : null,
      !m.recalled && m.replyTo !== undefined ? this.quote(c, m.replyTo) : null,
      m.recalled ? null : this.attachment(m, used),
      !m.recalled && (m.content !== "" || m.kind === "text") ? el("div", { class: "content", "data-testid": "im-message-content" }, ...richText(m.content)) : null,
      !m.recalled && m.kind === "voice" && m.transcript ? el("div", { class: "transcript", "data-testid": "im-transcript" }, m.transcript) : null,
      m.editedAt && !m.recalled ? el("span", { class: "muted small", "data-testid": "im-message-edited" }, "(edited)") : null,
      mine && !m.recalled ? this.readStatus(c, m) : null,
    );
  }

  /**
   * A message's actions, shown on hover (where there is a mouse), when it has the keyboard
   * focus, or when it was tapped (selected). Recall (offered within the recall window, by the
   * server's clock) and Delete for me ask first.
   */
  private messageActions(c: Conv, m: ImMessage, mine: boolean): HTMLElement {
    const id = c.state.id;
    const actions = el("span", { class: "msg-actions", role: "group", "aria-label": "Message actions" });
    actions.append(button("Reply", { class: "link small", "data-testid": "im-message-reply" }, () => this.startReply(m)));
    if (mine) actions.append(button("Edit", { class: "link small", "data-testid": "im-message-edit" }, () => this.startEdit(m)));
    if (mine && canRecall(m.timestamp, Date.now(), this.clock.offset)) {
      actions.append(
        button("Recall", { class: "link small", "data-testid": "im-message-recall" }, () => {
          if (!confirm("Recall this message for everyone?")) return;
          imapi.recall(id, m.seq).catch((e) => {
            this.host.toast(e instanceof ApiError && e.id === "recall_window_passed" ? `Too late to recall: messages can be recalled for ${durationText(policy().recallWindowSecs)}.` : errorText(e));
            if (id === this.openId) this.renderMessages(false);
          });
        }),
      );
    }
    actions.append(
      button("Delete for me", { class: "link small", "data-testid": "im-message-hide" }, () => {
        if (!confirm("Delete this message for you? Others still see it.")) return;
        imapi
          .hide(id, m.seq)
          .then(() => {
            c.log?.hide(m.seq);
            this.renderMessages(false);
            this.renderConversations();
          })
          .catch((e) => this.host.toast(errorText(e)));
      }),
    );
    return actions;
  }

  private pendingQuote(p: PendingSend): HTMLElement | null {
    const c = this.convs.get(p.conversationId);
    return c && p.replyTo !== undefined ? this.quote(c, p.replyTo) : null;
  }

  private pendingItem(p: PendingSend): HTMLElement {
    const failed = p.state === "failed";
    // An upload that is not an image cannot be sent as one: it can go as a file.
    const asFile = failed && p.code === "not_an_image" && p.attachment?.kind === "image";
    /** Changes the failed send (`change`), then sends it again. */
    const resend = (change: () => unknown) => {
      change();
      this.savePending();
      this.flushPending();
      this.renderMessages(false);
    };
    return el(
      "li",
      {
        class: "message mine pending" + (failed ? " failed" : ""),
        "data-testid": "im-message",
        "data-row": `p:${p.clientMsgId}`,
        "data-state": failed ? "failed" : "pending",
        "data-client-msg-id": p.clientMsgId,
        "data-kind": p.attachment?.kind ?? "text",
      },
      el("div", { class: "meta" }, el("span", { class: "user", "data-testid": "im-message-user" }, this.me?.username ?? "")),
      this.pendingQuote(p),
      p.attachment
        ? el(
            "div",
            { class: "im-file pending-file", "data-testid": "im-message-attachment" },
            el("span", { class: "im-file-icon" }, icon(kindIcon(p.attachment.kind))),
            el("span", { class: "im-file-name" }, p.attachment.file.name),
            el("span", { class: "muted small" }, formatBytes(p.attachment.file.size)),
          )
        : null,
      !p.attachment || p.content ? el("div", { class: "content", "data-testid": "im-message-content" }, ...richText(p.content)) : null,
      el(
        "div",
        { class: "msg-status muted small", "data-testid": "im-message-status" },
        failed ? `Not sent: ${p.error ?? "error"} ` : "Sending…",
        // No Retry where the same send is refused again (its kind, file or content is the problem).
        failed && sendRetryable(p.code)
          ? button("Retry", { class: "link small", "data-testid": "im-message-retry" }, () => resend(() => this.pending.retry(p.clientMsgId)))
          : null,
        asFile
          ? button("Send as file", { class: "link small", "data-testid": "im-message-send-as-file" }, () => resend(() => this.pending.asFile(p.clientMsgId)))
          : null,
        failed
          ? button("Discard", { class: "link small", "data-testid": "im-message-discard" }, () => {
              this.pending.remove(p.clientMsgId);
              this.savePending();
              this.renderMessages(false);
            })
          : null,
      ),
    );
  }

  renderMessages(toBottom: boolean): void {
    const id = this.openId;
    const c = id !== null ? this.convs.get(id) : undefined;
    this.input.disabled = !c;
    this.sendBtn.disabled = !c;
    this.attachBtn.disabled = !c;
    this.recorder.button.disabled = !c && !this.recorder.recording;
    const atBottom = this.isAtBottom();
    const focusMark = this.nav.mark();
    const frag = document.createDocumentFragment();
    const used = new Map<string, { fileId: string; el: HTMLElement }>();
    if (c) {
      const ms = c.log?.messages() ?? [];
      let prev: ImMessage | undefined;
      if (c.log && c.log.base > c.state.joinedSeq) {
        const older = button(c.loadingOlder ? "Loading…" : "Show older messages", { class: "link small", "data-testid": "im-load-older" }, () => void this.loadOlder(c.state.id));
        frag.append(el("li", { class: "system-line" }, older));
      }
      let divider: HTMLElement | null = null;
      for (const m of ms) {
        if (m.hidden || isSilentSystem(m)) continue;
        if (!divider && c.newAfter !== null && m.seq > c.newAfter && m.sender.id !== this.me?.id && m.kind !== "system") {
          divider = el("li", { class: "new-divider", "data-testid": "im-new-divider", role: "separator" }, el("span", {}, "New messages"));
          frag.append(divider);
          prev = undefined;
        }
        frag.append(this.messageItem(c, m, prev, used));
        prev = m;
      }
      this.newDivider = divider;
      // Loaded and nothing new from others after all: no late jump when something arrives.
      if (c.log && !divider) c.scrollToNew = false;
      // Unsent messages and uploads in the order they were written or chosen (a failed upload
      // chosen first stays above a refused send of the file chosen after it).
      const pending = this.pending.forConversation(c.state.id);
      const uploads = this.uploads.itemsOf(c.state.id);
      const unsent = [...pending.map((p) => ({ at: p.createdAt, el: () => this.pendingItem(p) })), ...uploads.map((u) => ({ at: u.at, el: () => u.el }))];
      for (const u of unsent.sort((a, b) => a.at - b.at)) frag.append(u.el());
      if (ms.length === 0 && pending.length === 0 && uploads.length === 0) {
        frag.append(el("li", { class: "empty muted" }, c.log ? "No messages yet. Say hello!" : "Loading…"));
      }
    }
    if (c) this.attachmentEls = used;
    const top = this.list.scrollTop;
    this.messagesEl.replaceChildren(frag);
    this.nav.restore(focusMark);
    this.scheduleRecallExpiry(c);
    if (toBottom || atBottom) this.list.scrollTop = this.list.scrollHeight;
    else this.list.scrollTop = top;
    if (c?.scrollToNew && this.newDivider && this.focusSeq === null) {
      // Opened with unread messages: start where they begin, not at the bottom.
      c.scrollToNew = false;
      this.newDivider.scrollIntoView({ block: "start" });
    }
    if (this.focusSeq !== null && c) {
      const target = this.messagesEl.querySelector<HTMLElement>(`[data-seq="${this.focusSeq}"]`);
      if (target) {
        this.focusSeq = null;
        target.scrollIntoView({ block: "center" });
        this.flash = { seq: Number(target.dataset.seq), until: Date.now() + 2000 };
      }
    }
    // Re-rendered while it flashes (the member list arriving, say): it keeps flashing.
    const flash = this.flash;
    if (flash && c && Date.now() < flash.until) {
      const target = this.messagesEl.querySelector<HTMLElement>(`[data-seq="${flash.seq}"]`);
      if (target) {
        target.classList.add("flash");
        setTimeout(() => target.classList.remove("flash"), flash.until - Date.now());
      }
    }
  }

  /** Redraw when the next Recall button has to go (the window closes between the 30 s clock ticks). */
  private scheduleRecallExpiry(c: Conv | undefined): void {
    if (this.recallTimer) clearTimeout(this.recallTimer);
    this.recallTimer = null;
    const now = Date.now();
    const at = c?.log ? nextRecallExpiry(c.log.messages(), this.me?.id, now, this.clock.offset) : null;
    if (at === null) return;
    const id = c!.state.id;
    this.recallTimer = setTimeout(() => {
      this.recallTimer = null;
      if (this.openId === id) this.renderMessages(false);
    }, at - now + 20);
  }

  /**
   * Fetches the page of messages before the oldest shown (down to where the user joined) and
   * keeps what was on screen where it was. Also run when the list is scrolled to the top.
   */
  private async loadOlder(id: number, downTo?: number): Promise<void> {
    const c = this.convs.get(id);
    if (!c?.log || c.loadingOlder || c.log.base <= c.state.joinedSeq) return;
    const until = c.log.base;
    // A page, or back to a search hit (a few before it, for context), at most OLDER_MAX.
    const wanted = Math.min(until - INITIAL_WINDOW, (downTo ?? until) - 20);
    const from = Math.max(c.state.joinedSeq, wanted, until - OLDER_MAX);
    c.loadingOlder = true;
    if (id === this.openId) this.renderMessages(false);
    try {
      const older: ImMessage[] = [];
      let after = from;
      while (after < until) {
        const page = await imapi.pull(id, after, Math.min(200, until - after));
        const inRange = page.messages.filter((m) => m.seq > after && m.seq <= until);
        if (inRange.length === 0) break;
        older.push(...inRange);
        after = Math.max(...inRange.map((m) => m.seq));
      }
      for (const m of older) this.names.set(m.sender.id, m.sender.username);
      if (this.convs.get(id) !== c || !c.log) return;
      const fromBottom = this.list.scrollHeight - this.list.scrollTop;
      c.log.extendBack(from, older);
      c.loadingOlder = false;
      if (id === this.openId) {
        // A search hit being opened scrolls itself into view; otherwise what was on screen stays.
        const focusing = this.focusSeq !== null;
        this.renderMessages(false);
        if (!focusing) this.list.scrollTop = this.list.scrollHeight - fromBottom;
      }
    } catch (e) {
      this.host.toast(errorText(e));
    } finally {
      if (c.loadingOlder) {
        c.loadingOlder = false;
        if (id === this.openId) this.renderMessages(false);
      }
    }
  }

  private closeGroupPanel(): void {
    this.groupPanelOpen = false;
    this.renderGroupPanel();
  }

  /** Renaming the group (owners and admins). What is typed survives the panel's re-renders. */
  private groupNameForm(c: Conv): HTMLElement {
    const id = c.state.id;
    const draft = this.groupNameDraft?.id === id ? this.groupNameDraft.text : c.state.name;
    const hadFocus = document.activeElement?.getAttribute("data-testid") === "group-rename-input";
    const input = el("input", { type: "text", maxlength: "100", "aria-label": "Group name", "data-testid": "group-rename-input" });
    input.value = draft;
    input.addEventListener("input", () => (this.groupNameDraft = { id, text: input.value }));
    const form = el("form", { class: "row", "data-testid": "group-rename" }, input, el("button", { type: "submit", class: "ghost small", "data-testid": "group-rename-save" }, "Rename"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const name = input.value.trim();
      void this.act(() => imapi.renameGroup(id, name), "none").then((ok) => {
        if (ok) this.groupNameDraft = null;
      });
    });
    if (hadFocus) queueMicrotask(() => input.focus());
    return form;
  }

  private renderGroupPanel(): void {
    const c = this.openId !== null ? this.convs.get(this.openId) : undefined;
    const p = this.groupPanel;
    if (!c || c.state.kind !== "group" || !this.groupPanelOpen) {
      p.hidden = true;
      return;
    }
    p.hidden = false;
    const id = c.state.id;
    const myRole = c.state.role ?? "member";
    const isOwner = myRole === "owner";
    const isAdmin = myRole === "admin" || isOwner;
    const members = c.members ?? [];
    const memberIds = new Set(members.map((m) => m.user.id));
    const children: Node[] = [
      // On a narrow screen the panel covers the button that opened it.
      button("×", { class: "ghost small panel-close", "aria-label": "Close group info", "data-testid": "group-panel-close" }, () => this.closeGroupPanel()),
      el("h3", {}, c.state.name),
      el("p", { class: "muted small", "data-testid": "group-id" }, `Group id: ${id} · you are ${myRole}`),
      el("h4", {}, `Members (${members.length})`),
    ];
    const ul = el("ul", { class: "plain" });
    for (const m of members) {
      const li = el(
        "li",
        { "data-testid": "group-member", "data-user-id": String(m.user.id) },
        avatarImg(m.user.id),
        el("span", { class: "member-name" }, m.user.username, m.user.id === this.me?.id ? " (you)" : ""),
        " ",
        el("span", { class: "muted small", "data-testid": "group-member-role" }, m.role),
      );
      const isMe = m.user.id === this.me?.id;
      if (!isMe && m.role !== "owner" && (isOwner || (isAdmin && m.role === "member"))) {
        li.append(button("Kick", { class: "link small", "data-testid": "member-kick" }, () => void this.act(() => imapi.kick(id, m.user.id), "group")));
      }
      if (!isMe && isOwner) {
        if (m.role === "member")
          li.append(button("Make admin", { class: "link small", "data-testid": "member-make-admin" }, () => void this.act(() => imapi.setRole(id, m.user.id, "admin"), "group")));
        if (m.role === "admin")
          li.append(button("Make member", { class: "link small", "data-testid": "member-make-member" }, () => void this.act(() => imapi.setRole(id, m.user.id, "member"), "group")));
        li.append(
          button("Transfer ownership", { class: "link small", "data-testid": "member-transfer" }, () => {
            if (confirm(`Make ${m.user.username} the owner of ${c.state.name}?`)) void this.act(() => imapi.transfer(id, m.user.id), "sync");
          }),
        );
      }
      ul.append(li);
    }
    children.push(ul);

    // Invite friends who are not members yet.
    const candidates = this.friends.filter((f) => !memberIds.has(f.id));
    if (candidates.length > 0) {
      const boxes = candidates.map((f) =>
        el("label", { class: "check" }, el("input", { type: "checkbox", value: String(f.id), "data-testid": "group-invite-option", "data-user-id": String(f.id) }), f.username),
      );
      const inviteBtn = button("Invite", { class: "ghost small", "data-testid": "group-invite-submit" }, () => {
        const ids = boxes.map((b) => b.querySelector("input")!).filter((i) => i.checked).map((i) => Number(i.value));
        if (ids.length > 0) void this.act(() => imapi.invite(id, ids), "group");
      });
      children.push(el("h4", {}, "Invite friends"), el("div", { class: "checks" }, ...boxes), inviteBtn);
    }

    if (isAdmin) children.push(this.groupNameForm(c));

    if (isAdmin) {
      children.push(el("h4", {}, "Join requests"));
      if (c.joinRequests.length === 0) children.push(el("p", { class: "muted small" }, "None."));
      for (const r of c.joinRequests) {
        children.push(
          el(
            "div",
            { class: "req", "data-testid": "join-request", "data-user-id": String(r.user.id) },
            el("span", {}, r.user.username),
            r.note ? el("span", { class: "muted small" }, ` “${r.note}”`) : null,
            button("Approve", { class: "link small", "data-testid": "join-approve" }, () => void this.act(() => imapi.decideJoin(id, r.user.id, "approve"), "group")),
            button("Reject", { class: "link small", "data-testid": "join-reject" }, () => void this.act(() => imapi.decideJoin(id, r.user.id, "reject"), "group")),
          ),
        );
      }
    }
    const actions = el("div", { class: "group-actions" });
    if (!isOwner)
      actions.append(
        button("Leave group", { class: "ghost small danger", "data-testid": "group-leave" }, () => {
          if (confirm(`Leave ${c.state.name}?`)) void this.quitGroup(c, "leave");
        }),
      );
    if (isOwner)
      actions.append(
        button("Dissolve group", { class: "ghost small danger", "data-testid": "group-dissolve" }, () => {
          if (confirm(`Dissolve ${c.state.name} for everyone?`)) void this.quitGroup(c, "dissolve");
        }),
      );
    children.push(actions);
    p.replaceChildren(...children);
  }

  private renderNewGroup(): void {
    const name = el("input", { type: "text", placeholder: "Group name", maxlength: "100", "data-testid": "new-group-name" });
    const boxes = this.friends.map((f) =>
      el("label", { class: "check" }, el("input", { type: "checkbox", value: String(f.id), "data-testid": "new-group-member", "data-user-id": String(f.id) }), f.username),
    );
    const submit = el("button", { type: "submit", class: "primary", "data-testid": "new-group-submit" }, "Create group");
    const form = el(
      "form",
      { class: "panel-form", "data-testid": "new-group-form" },
      el("h2", { class: "panel-title" }, "New group"),
      name,
      el("h3", {}, "Members"),
      boxes.length > 0 ? el("div", { class: "checks" }, ...boxes) : el("p", { class: "muted small" }, "Add friends first to invite them."),
      submit,
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const ids = boxes.map((b) => b.querySelector("input")!).filter((i) => i.checked).map((i) => Number(i.value));
      const n = name.value.trim();
      if (!n) {
        this.host.toast("Give the group a name");
        return;
      }
      submit.disabled = true;
      imapi
        .createGroup(n, ids)
        .then(async ({ conversationId }) => {
          await this.httpSync();
          this.openConversation(conversationId);
        })
        .catch((e) => {
          submit.disabled = false;
          this.host.toast(errorText(e));
        });
    });
    this.newGroupPanel.replaceChildren(form);
  }
}
