/** Message ids look like "<ms>-<n>"; they are ordered numerically by the pair (ms, n). */
export interface ParsedId {
  ms: bigint;
  n: bigint;
}

const ID_RE = /^(\d+)-(\d+)$/;

export function parseId(id: string): ParsedId | null {
  const m = ID_RE.exec(id);
  if (!m) return null;
  return { ms: BigInt(m[1]), n: BigInt(m[2]) };
}

/**
 * Compare two message ids. Returns <0 if a is older than b, >0 if newer, 0 if equal.
 * Malformed ids sort before well-formed ones and fall back to string comparison among themselves.
 */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const pa = parseId(a);
  const pb = parseId(b);
  if (pa && pb) {
    if (pa.ms !== pb.ms) return pa.ms < pb.ms ? -1 : 1;
    if (pa.n !== pb.n) return pa.n < pb.n ? -1 : 1;
    return 0;
  }
  if (!pa && pb) return -1;
  if (pa && !pb) return 1;
  return a < b ? -1 : 1;
}
