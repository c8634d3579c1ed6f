// Poll rules mirrored from shared/poll.go (AcceptsAt, ResultsVisible), the
// server clock estimate, and the words both pages use for times.

/** The poll id in /p/{id}[/…], or "" when the path holds no valid id. */
export function pollIdFromPath(pathname) {
  const m = /^\/p\/([A-Za-z0-9_-]{1,64})(?:\/|$)/.exec(pathname);
  return m ? m[1] : "";
}

// serverOffset is added to Date.now() to estimate the edge's clock, from the
// Date header of its answers (whole seconds, so only a skew beyond 1.5 s is
// corrected: a phone set two minutes wrong still opens on time).
let serverOffset = 0;

/** Updates the clock estimate from a response's Date header. */
export function noteServerDate(res) {
  const d = Date.parse(res.headers.get("Date") || "");
  if (!d) return;
  const off = d + 500 - Date.now();
  serverOffset = Math.abs(off) > 1500 ? off : 0;
}

/** The estimated edge time in ms since the epoch. */
export const now = () => Date.now() + serverOffset;

/** opens_at/closes_at in ms (0 when unset). */
export const opensAt = (p) => (p.opens_at ? Date.parse(p.opens_at) : 0);
export const closesAt = (p) => (p.closes_at ? Date.parse(p.closes_at) : 0);

/**
 * What the poll is doing at time t: "open" (takes votes), "soon" (open or
 * draft with opens_at still ahead), "draft" (not published, no time given),
 * or "closed".
 */
export function phase(p, t) {
  if (p.state === "closed") return "closed";
  const c = closesAt(p);
  if (c && t >= c) return "closed";
  const o = opensAt(p);
  if (o && t < o) return "soon";
  return p.state === "open" ? "open" : "draft";
}

/** Whether results may be shown at time t (shared.Poll.ResultsVisible). */
export function resultsVisible(p, t) {
  if (p.visibility !== "after_close") return true;
  const c = closesAt(p);
  return p.state === "closed" || (c > 0 && t >= c);
}

/** How many options a ballot may carry. */
export const limit = (p) => (p.kind === "multi" ? p.max_choices || 1 : 1);

const nf = new Intl.NumberFormat();
/** A count with the reader's digit grouping. */
export const num = (n) => nf.format(n);

/** "20:00", or "Sat 1 Mar, 20:00" when not today. */
export function clock(ms) {
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return d.toLocaleString(undefined, today
    ? { hour: "2-digit", minute: "2-digit" }
    : { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

/** A duration in ms as "4:05", "1:02:03" or "3 days". */
export function span(ms) {
  let s = Math.max(0, Math.ceil(ms / 1000));
  if (s >= 172800) return Math.floor(s / 86400) + " days";
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const two = (n) => (n < 10 ? "0" : "") + n;
  return h ? h + ":" + two(m) + ":" + two(s) : m + ":" + two(s);
}

/** "Red", "Red and Blue", "Red, Blue and Green" in the reader's language. */
export function list(items) {
  try {
    return new Intl.ListFormat(undefined, { type: "conjunction" }).format(items);
  } catch {
    return items.join(", ");
  }
}

/** The sentence that says what phase ph of poll p means, in plain words. */
export function describe(p, ph) {
  const c = closesAt(p);
  switch (ph) {
    case "soon":
      return "Voting opens at " + clock(opensAt(p)) + ".";
    case "draft":
      return "This poll hasn't opened yet. This page will update when it does.";
    case "open":
      return c ? "Voting is open until " + clock(c) + "." : "Voting is open.";
    default:
      return "Voting has closed.";
  }
}
