// Results: the bar chart both pages draw, and the conditional poller.
//
// The chart is text first: every row says its label, percentage and count
// in words, so it reads the same without colour, without CSS and in a screen
// reader; the bar is decoration (aria-hidden) whose length is a CSS custom
// property (--share, 0..1) set through the CSSOM, which a strict CSP allows.
// Rows are reused between renders so the bars' CSS transitions animate.
//
// Polling: GET /v1/polls/{id}/results with If-None-Match every 800-1200 ms
// (jittered so a million pages opened by one TV cue spread out), only while
// the page is visible. A 304 costs a round trip to the nearest edge cache
// and no body; the origin computes each snapshot once.

import { create } from "./dom.js";
import { backoff, call, pollPath, retryAfter, sleep } from "./api.js";
import { num } from "./poll.js";
import { drawRanked } from "./ranked.js";
import { drawHistogram } from "./scale.js";
import { drawCloud } from "./words.js";

/**
 * Draws snapshot snap of poll p into el by the poll's kind: bars (single,
 * multi), a histogram (scale), bars by Borda points (ranked) or a word
 * cloud of at most opts.words words (words). Older snapshots than the one
 * drawn are ignored; returns whether it drew. el.dataset.total is the
 * voters shown.
 */
export function renderPoll(el, p, snap, opts = {}) {
  const version = Number(snap.version) || 0;
  if (el.dataset.version && version < Number(el.dataset.version)) return false;
  const labels = (p.options || []).map((o) => o.label);
  const kind = p.kind || "single";
  if (el.dataset.kind !== kind) {
    el.replaceChildren();
    el.dataset.kind = kind;
  }
  if (kind === "scale") drawHistogram(el, p, snap);
  else if (kind === "ranked") drawRanked(el, labels, snap, row);
  else if (kind === "words") drawCloud(el, snap, opts.words || 30);
  else return renderResults(el, labels, snap);
  el.dataset.total = String(Number(snap.voters) || 0);
  el.dataset.version = String(version);
  return true;
}

/**
 * Draws snapshot snap into the element el (the #results container) with the
 * option labels. Snapshots older than the one drawn are ignored (another
 * edge cache can lag by a second). Returns whether it drew.
 */
export function renderResults(el, labels, snap) {
  const version = Number(snap.version) || 0;
  if (el.dataset.version && version < Number(el.dataset.version)) return false;
  const counts = Array.isArray(snap.counts) ? snap.counts : [];
  const voters = Number(snap.voters) || 0;
  let ol = el.querySelector("ol");
  if (!ol || ol.children.length !== counts.length || ol.classList.contains("ranked-bars")) {
    ol = document.createElement("ol");
    ol.className = "bars";
    for (let i = 0; i < counts.length; i++) ol.append(row(i));
    el.replaceChildren(ol);
  }
  let max = 0;
  for (const c of counts) max = Math.max(max, c);
  counts.forEach((c, i) => {
    const li = ol.children[i];
    const share = voters ? c / voters : 0;
    const pct = Math.round(share * 100);
    const pctText = c > 0 && pct === 0 ? "<1%" : pct + "%";
    li.querySelector(".label").textContent = labels[i] || "Option " + (i + 1);
    li.querySelector(".pct").textContent = pctText;
    li.querySelector(".count").textContent = num(c) + (c === 1 ? " vote" : " votes");
    li.querySelector(".fill").style.setProperty("--share", String(Math.min(1, share)));
    li.classList.toggle("lead", c > 0 && c === max);
  });
  el.dataset.total = String(voters);
  el.dataset.version = String(version);
  return true;
}

function row(i) {
  const li = create("li", "bar");
  li.dataset.option = String(i);
  const head = create("span", "head");
  const label = create("span", "label");
  const value = create("span", "value");
  const pct = create("span", "pct");
  const count = create("span", "count");
  value.append(pct, " ", count);
  head.append(label, " ", value);
  const track = create("span", "track");
  track.setAttribute("aria-hidden", "true");
  const fill = create("span", "fill");
  track.append(fill);
  li.append(head, track);
  return li;
}

/** Resolves when the page is (or becomes) visible. */
export function whenVisible() {
  return new Promise((ok) => {
    if (document.visibilityState === "visible") return ok();
    const on = () => {
      if (document.visibilityState !== "visible") return;
      document.removeEventListener("visibilitychange", on);
      ok();
    };
    document.addEventListener("visibilitychange", on);
  });
}

/**
 * Polls a poll's results until stop() is called. on.snapshot(body) gets each
 * new snapshot (200); on.state(s) hears "live", "hidden" (403: results
 * hidden until the poll closes), "gone" (404, polling stops) or "retrying"
 * (429, 503 or the network). slow() may return a factor (≥ 1) that stretches
 * the interval, e.g. once a closed poll's numbers have settled.
 */
export function pollResults(id, on, slow = () => 1) {
  let stopped = false;
  let etag = "";
  let failures = 0;
  let last = "";
  const state = (s) => {
    if (s !== last) on.state((last = s));
  };
  (async () => {
    while (!stopped) {
      await whenVisible();
      if (stopped) return;
      let wait = (800 + Math.random() * 400) * slow();
      let r = null;
      try {
        r = await call(pollPath(id) + "/results", { etag });
      } catch {
        r = null;
      }
      if (stopped) return;
      if (r && (r.status === 200 || r.status === 304)) {
        failures = 0;
        if (r.status === 200 && r.body) {
          etag = r.res.headers.get("ETag") || "";
          on.snapshot(r.body);
        }
        state("live");
      } else if (r && r.status === 403) {
        etag = "";
        state("hidden");
        wait = 5000 + Math.random() * 2000;
      } else if (r && r.status === 404) {
        state("gone");
        return;
      } else if (r && r.status === 429) {
        state("retrying");
        wait = retryAfter(r.res) * 1000;
      } else {
        state("retrying");
        wait = Math.max(wait, backoff(failures++));
      }
      await sleep(wait);
    }
  })();
  return { stop: () => (stopped = true) };
}
