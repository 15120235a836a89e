export interface BackoffOptions {
  /** Delay for attempt 0, in ms. */
  baseMs: number;
  /** Upper bound for the un-jittered delay, in ms. */
  maxMs: number;
  /** Fraction (0..1) of the delay that is randomized. 0.5 = "equal jitter". */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000, jitter: 0.5 };

/**
 * Delay before reconnect attempt number `attempt` (0-based): base * 2^attempt capped at max,
 * then the `jitter` fraction of it is replaced by a uniform random amount.
 * The result lies in [d * (1 - jitter), d].
 */
export function backoffDelay(
  attempt: number,
  opts: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const a = Math.max(0, Math.floor(attempt));
  // Avoid overflow for huge attempt numbers.
  const exp = a >= 31 ? opts.maxMs : Math.min(opts.maxMs, opts.baseMs * 2 ** a);
  const j = Math.min(1, Math.max(0, opts.jitter));
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(exp * (1 - j) + exp * j * r);
}

/** Tracks the attempt counter; reset after a successful hello. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly opts: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const d = backoffDelay(this.attempt, this.opts, this.random);
    this.attempt++;
    return d;
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
