/**
 * Message search: the box in the top bar, the panel with its filters (conversation, sender)
 * and the ranked hits, a page at a time. The panel owns the query; the IM controller tells it
 * about conversations and people, shows it, and opens a hit when one is clicked.
 */
import { errorText } from "./api";
import { button, el } from "./dom";
import { asFileRef } from "./files";
import { formatTime } from "./format";
import * as imapi from "./imapi";
import type { UserRef } from "./protocol";
import { NO_WORDS, hasWords, snippetSegments, type SearchHit } from "./search";

const SEARCH_PAGE = 20;

const senderOf = (name: string | null) => (name === null ? null : el("span", { class: "user", "data-testid": "search-result-sender" }, name));

export interface SearchQuery {
  q: string;
  conversation?: number;
  sender?: number;
}

export interface SearchHost {
  me(): UserRef | null;
  /** Conversations to filter by, the most recently active first. */
  conversations(): { id: number; label: string }[];
  /** People worth offering as a sender (friends, and the members of `conversation`). */
  people(conversation: number | undefined): Map<number, string>;
  /** A name for a user known only by id, if the client has seen it. */
  nameOf(userId: number): string | undefined;
  /** Where a hit was posted: a room, a conversation, or one the user has left. */
  whereOf(hit: SearchHit): string;
  /** Who posted it, or null when `whereOf` already says so (a direct chat with them). */
  senderOf(hit: SearchHit): string | null;
  openHit(hit: SearchHit): void;
  /** Make the search panel the one on screen (which renders it). */
  show(): void;
  isShown(): boolean;
}

interface SearchState extends SearchQuery {
  hits: SearchHit[];
  hasMore: boolean;
  loading: boolean;
  error: string | null;
  /** Bumped per query, so that a late answer to an older one is dropped. */
  token: number;
}

export class SearchPanel {
  /** The panel, mounted by the IM view. */
  readonly panel: HTMLElement;
  /** The search box's form, mounted in the top bar. */
  readonly form: HTMLFormElement;
  private s: SearchState = { q: "", hits: [], hasMore: false, loading: false, error: null, token: 0 };

  constructor(private readonly host: SearchHost) {
    this.panel = el("div", { class: "panel search-panel", "data-testid": "search-panel", hidden: "" });
    const input = el("input", { type: "search", placeholder: "Search messages", "aria-label": "Search messages", maxlength: "200", "data-testid": "search-input" });
    this.form = el("form", { class: "search-form", role: "search", "data-testid": "search-form" }, input);
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const q = input.value.trim();
      if (q) void this.run({ q, conversation: this.s.conversation, sender: this.s.sender });
    });
  }

  /** Another account: forget the query and drop any answer still on its way. */
  reset(): void {
    this.s = { q: "", hits: [], hasMore: false, loading: false, error: null, token: this.s.token + 1 };
  }

  private async run(q: SearchQuery, more = false): Promise<void> {
    const s = this.s;
    if (!more) {
      s.q = q.q;
      s.conversation = q.conversation;
      s.sender = q.sender;
      s.hits = [];
      s.hasMore = false;
    }
    s.error = null;
    const token = ++s.token;
    if (!hasWords(s.q)) {
      // Only punctuation or emoji: nothing the server can search for.
      s.loading = false;
      s.error = NO_WORDS;
      if (!this.host.isShown()) this.host.show();
      else this.render();
      return;
    }
    s.loading = true;
    if (!this.host.isShown()) this.host.show();
    else this.render();
    try {
      const page = await imapi.searchMessages({ q: s.q, conversation: s.conversation, sender: s.sender, limit: SEARCH_PAGE, offset: s.hits.length });
      if (token !== s.token) return;
      s.hits = [...s.hits, ...page.hits.filter((h) => h && h.message && h.snippet && typeof h.snippet.text === "string")];
      s.hasMore = page.hasMore;
    } catch (e) {
      if (token !== s.token) return;
      s.error = errorText(e);
    }
    s.loading = false;
    this.render();
  }

  render(): void {
    const s = this.s;
    if (!this.host.isShown()) return;
    const conv = el("select", { "aria-label": "Conversation", "data-testid": "search-conversation" });
    conv.append(el("option", { value: "" }, "All conversations"));
    for (const c of this.host.conversations()) conv.append(el("option", { value: String(c.id) }, c.label));
    conv.value = s.conversation !== undefined ? String(s.conversation) : "";
    const sender = el("select", { "aria-label": "Sender", "data-testid": "search-sender" });
    sender.append(el("option", { value: "" }, "From anyone"));
    const me = this.host.me();
    if (me) sender.append(el("option", { value: String(me.id) }, "From me"));
    const people = this.host.people(s.conversation);
    if (s.sender !== undefined && !people.has(s.sender) && s.sender !== me?.id) people.set(s.sender, this.host.nameOf(s.sender) ?? `user #${s.sender}`);
    people.delete(me?.id ?? -1);
    for (const [id, name] of [...people].sort((a, b) => a[1].localeCompare(b[1]))) sender.append(el("option", { value: String(id) }, `From ${name}`));
    sender.value = s.sender !== undefined ? String(s.sender) : "";
    const rerun = () => {
      const c = conv.value ? Number(conv.value) : undefined;
      const u = sender.value ? Number(sender.value) : undefined;
      if (s.q) void this.run({ q: s.q, conversation: c, sender: u });
      else {
        s.conversation = c;
        s.sender = u;
      }
    };
    conv.addEventListener("change", rerun);
    sender.addEventListener("change", rerun);

    const results = el("ol", { class: "search-results", "data-testid": "search-results" });
    for (const h of s.hits) results.append(this.hit(h));
    let status: Node | null = null;
    if (s.loading) status = el("p", { class: "muted small", "data-testid": "search-loading" }, "Searching…");
    else if (s.error === NO_WORDS) status = el("p", { class: "muted", role: "status", "data-testid": "search-error" }, s.error);
    else if (s.error) status = el("p", { class: "form-error", role: "alert", "data-testid": "search-error" }, s.error);
    else if (s.q && s.hits.length === 0) status = el("p", { class: "muted", "data-testid": "search-empty" }, `No messages match “${s.q}”.`);
    const more = s.hasMore && !s.loading ? button("More results", { class: "ghost small", "data-testid": "search-more" }, () => void this.run({ q: s.q }, true)) : null;
    this.panel.replaceChildren(
      el("h2", { class: "panel-title" }, s.q ? `Search: ${s.q}` : "Search"),
      el("div", { class: "row search-filters" }, conv, sender),
      results,
      status ?? "",
      more ?? "",
    );
    this.panel.setAttribute("aria-busy", s.loading ? "true" : "false");
  }

  private hit(h: SearchHit): HTMLElement {
    const m = h.message;
    const snippet = el("div", { class: "snippet", "data-testid": "search-snippet" });
    for (const seg of snippetSegments(h.snippet.text, Array.isArray(h.snippet.highlights) ? h.snippet.highlights : [])) {
      snippet.append(seg.mark ? el("mark", { "data-testid": "search-highlight" }, seg.text) : document.createTextNode(seg.text));
    }
    if (!h.snippet.text && m.file) snippet.append(asFileRef(m.file)?.name ?? "");
    const item = el(
      "button",
      { type: "button", class: "search-hit", "data-testid": "search-result", "data-conversation-id": String(m.conversationId), "data-seq": String(m.seq), "data-room-id": h.room },
      el(
        "div",
        { class: "meta" },
        el("span", { class: "search-where", "data-testid": "search-result-where" }, this.host.whereOf(h)),
        senderOf(this.host.senderOf(h)),
        el("time", { class: "time", datetime: new Date(m.timestamp).toISOString() }, formatTime(m.timestamp)),
      ),
      snippet,
    );
    item.addEventListener("click", () => this.host.openHit(h));
    return el("li", {}, item);
  }
}
