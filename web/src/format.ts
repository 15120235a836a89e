/** Short, human time for a message timestamp (ms): "14:05" today, "Mar 3, 14:05" otherwise. */
export function formatTime(ts: number, now: number = Date.now()): string {
  const d = new Date(ts);
  const n = new Date(now);
  const time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  const sameDay = d.getFullYear() === n.getFullYear() && d.getMonth() === n.getMonth() && d.getDate() === n.getDate();
  if (sameDay) return time;
  const opts: Intl.DateTimeFormatOptions =
    d.getFullYear() === n.getFullYear() ? { month: "short", day: "numeric" } : { year: "numeric", month: "short", day: "numeric" };
  return `${d.toLocaleDateString(undefined, opts)}, ${time}`;
}
