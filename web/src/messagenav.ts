/**
 * Reaching a conversation's messages and their actions (Reply, Edit, Recall, Delete for me)
 * without hovering:
 *
 *  - Keyboard: ArrowUp/ArrowDown (Home/End) in the list move the focus from message to message
 *    (a row gets tabindex=-1 as the focus comes to it, so that a tap or a click never focuses
 *    one), a focused message shows its actions (`.message:focus-within`) and Tab reaches them. ArrowDown past the newest goes back to
 *    the composer (the host's `leaveDown`).
 *  - Touch: a tap on a message selects it (`.selected` shows its actions); only a tap on an
 *    action of the selected message acts. The tap that reveals the actions never also presses
 *    one, whatever the browser does with hover on a tap.
 *
 * Rows are found by `data-row` (a key that survives re-rendering), so the focus and the
 * selection are put back after the list is rebuilt.
 */

export interface Tap {
  /** The message tapped (its seq). */
  seq: number;
  /** The selected message before this tap. */
  selected: number | null;
  /** The tap landed on one of the message's actions. */
  onAction: boolean;
  /** The tap landed on something else that acts on its own (a link, a quote, a player). */
  onControl: boolean;
  /** A touchscreen tap (not a mouse click, a pen or the keyboard). */
  touch: boolean;
}

/** What a click or tap in a message does: which message is selected after it, and whether it is stopped. */
export function tapOutcome(t: Tap): { selected: number | null; block: boolean } {
  if (t.onAction) {
    // A tap on an action of a message that was not selected: its actions were not shown
    // before the finger came down, so it only selects the message.
    if (t.touch && t.selected !== t.seq) return { selected: t.seq, block: true };
    return { selected: null, block: false };
  }
  if (t.onControl) return { selected: t.selected, block: false };
  return { selected: t.selected === t.seq ? null : t.seq, block: false };
}

/**
 * The row to focus after `key`, from row `current` (-1: none, the list itself) of `count`;
 * "after" past the newest (ArrowDown), null when the key does not move the focus.
 */
export function stepIndex(current: number, count: number, key: string): number | "after" | null {
  if (count === 0) return null;
  switch (key) {
    case "ArrowUp":
      return current < 0 ? count - 1 : Math.max(0, current - 1);
    case "ArrowDown":
      if (current < 0) return count - 1;
      return current >= count - 1 ? "after" : current + 1;
    case "Home":
      return 0;
    case "End":
      return count - 1;
    default:
      return null;
  }
}

export interface MessageNavHost {
  /** The focus moved down past the newest message. */
  leaveDown(): void;
}

/** Which row had the focus, and which of its controls, before a re-render. */
export interface FocusMark {
  row: string;
  /** The row's message by clientMsgId: a pending row becomes a sent one (another key) when acked. */
  clientMsgId: string | null;
  control: string | null;
}

const CONTROLS = "a, button, audio, video, input, select, textarea, label, summary";

export class MessageNav {
  /** The selected message (touch): its actions are shown. */
  private selected: number | null = null;

  constructor(
    private readonly list: HTMLElement,
    private readonly messages: HTMLElement,
    private readonly host: MessageNavHost,
  ) {
    list.addEventListener("keydown", (ev) => this.onKey(ev));
    // Capture: decided before the action's own click handler runs (and, when blocked, instead of it).
    messages.addEventListener("click", (ev) => this.onClick(ev), true);
  }

  /** Another conversation: nothing selected. */
  reset(): void {
    this.selected = null;
  }

  /** Focus the newest message (ArrowUp in an empty composer). */
  focusNewest(): boolean {
    const rows = this.rows();
    const last = rows[rows.length - 1];
    if (!last) return false;
    this.focusRow(last);
    return true;
  }

  /** Before the list is rebuilt: where the focus is, if in it. */
  mark(): FocusMark | null {
    const a = document.activeElement;
    if (!(a instanceof HTMLElement) || !this.messages.contains(a)) return null;
    const row = a.closest<HTMLElement>("[data-row]");
    if (!row?.dataset.row) return null;
    return { row: row.dataset.row, clientMsgId: row.dataset.clientMsgId ?? null, control: a === row ? null : (a.dataset.testid ?? null) };
  }

  /** After the list was rebuilt: the selection shown again, and the focus put back. */
  restore(mark: FocusMark | null): void {
    this.showSelection();
    if (!mark) return;
    const row =
      this.messages.querySelector<HTMLElement>(`[data-row="${CSS.escape(mark.row)}"]`) ??
      (mark.clientMsgId ? this.messages.querySelector<HTMLElement>(`[data-row][data-client-msg-id="${CSS.escape(mark.clientMsgId)}"]`) : null);
    if (!row) return;
    const control = mark.control ? row.querySelector<HTMLElement>(`[data-testid="${CSS.escape(mark.control)}"]`) : null;
    if (control) control.focus({ preventScroll: true });
    else {
      row.tabIndex = -1;
      row.focus({ preventScroll: true });
    }
  }

  private rows(): HTMLElement[] {
    return [...this.messages.querySelectorAll<HTMLElement>("[data-row]")];
  }

  private focusRow(row: HTMLElement): void {
    // Focusable from now on (by script only): rows are not focusable otherwise.
    row.tabIndex = -1;
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  private onKey(ev: KeyboardEvent): void {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    const t = ev.target as HTMLElement;
    const row = t.closest<HTMLElement>("[data-row]");
    // From the list, a message, or one of its actions (not from a player, whose arrows seek).
    if (t !== this.list && !(row && (t === row || t.closest(".msg-actions")))) return;
    const rows = this.rows();
    const next = stepIndex(row ? rows.indexOf(row) : -1, rows.length, ev.key);
    if (next === null) return;
    ev.preventDefault();
    if (next === "after") this.host.leaveDown();
    else this.focusRow(rows[next]);
  }

  private onClick(ev: MouseEvent): void {
    const t = ev.target as Element;
    const row = t.closest<HTMLElement>("[data-row]");
    const seq = Number(row?.dataset.seq);
    // Only sent messages with actions can be selected.
    if (!row || !Number.isFinite(seq) || !row.querySelector(".msg-actions")) return;
    const onAction = !!t.closest(".msg-actions");
    const control = t.closest(CONTROLS);
    // Selecting text in a message is not a tap on it.
    const sel = window.getSelection();
    if (!onAction && !control && sel && !sel.isCollapsed && row.contains(sel.anchorNode)) return;
    // "" for a click made with the keyboard (Enter or Space on an action).
    const pointer = (ev as PointerEvent).pointerType ?? "";
    const out = tapOutcome({ seq, selected: this.selected, onAction, onControl: !!control && row.contains(control), touch: pointer === "touch" });
    if (out.block) {
      ev.preventDefault();
      ev.stopPropagation();
    }
    // A tap or click on an action also focuses it, which would keep the actions shown
    // (`:focus-within`) whatever the selection says: that is the keyboard's way. Taken back once
    // the action has run (Reply and Edit move the focus to the composer themselves).
    if (pointer && onAction) {
      setTimeout(() => {
        const a = document.activeElement;
        if (a instanceof HTMLElement && row.contains(a) && a.closest(".msg-actions")) a.blur();
      });
    }
    if (out.selected !== this.selected) {
      this.selected = out.selected;
      this.showSelection();
      if (out.selected !== null) row.querySelector(".msg-actions")?.scrollIntoView({ block: "nearest" });
    }
  }

  private showSelection(): void {
    for (const row of this.rows()) {
      const on = this.selected !== null && row.dataset.seq === String(this.selected);
      row.classList.toggle("selected", on);
    }
  }
}
