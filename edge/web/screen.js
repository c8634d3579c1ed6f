// The big-screen view, /p/{id}/screen: the results wall behind a presenter.
//
// Why vanilla JS: as on the voting page, nothing but the DOM is needed; the
// only dependency is the QR encoder (qrcode-generator), bundled in by
// esbuild so no third-party CDN is contacted at run time.
//
// Why Server-Sent Events here and polling on the voting page: a big screen
// is a handful of clients (the studio wall, a stream overlay, the
// producer's laptop) that want every snapshot the moment it exists, so one
// EventSource on /v1/polls/{id}/stream each is cheap and fresh. Each message
// has `id:` = snapshot version and `data:` = the JSON of GET …/results.
// EventSource reconnects by itself (the server ends streams every few
// minutes, and Last-Event-ID resumes). If it fails three times without a
// message between, or the browser has no EventSource, the page falls back
// to the voting page's conditional polling (If-None-Match, ~1 s) and tries
// the stream again a minute later. The millions of voters' pages poll
// instead: a conditional GET per second from the edge cache costs little and
// holds no connection open per voter.
//
// The QR code is drawn as an SVG path into an <img> data: URL (allowed by
// img-src 'self' data:), never as markup inserted into the page; titles and
// labels are set with textContent only. Bars animate with CSS transitions,
// which prefers-reduced-motion turns off (base.css).
//
// Each kind draws its own chart (lib/results.js renderPoll): bars for
// single and multi, a histogram with the mean for scale, bars by Borda
// points with first preferences for ranked, and a word cloud (the 60 most
// given words, each as text, sized by the square root of its count) for
// words.

/*! qrcode-generator: Copyright (c) 2009 Kazuhiko Arase, MIT license. "QR Code" is a registered trademark of DENSO WAVE INCORPORATED. */
import qrcode from "qrcode-generator";
import { callRetrying, pollPath } from "./lib/api.js";
import {
  closesAt, describe, noteServerDate, now, num, opensAt, phase, pollIdFromPath,
  resultsVisible, span,
} from "./lib/poll.js";
import { pollResults, renderPoll } from "./lib/results.js";
import { loadToken, saveToken } from "./lib/store.js";

const $ = (id) => document.getElementById(id);
const id = pollIdFromPath(location.pathname);

let poll = null;
let live = null; // {stop()} of the stream or the poller
let refreshAt = Infinity;
let shown = "";

function say(text) {
  $("status").textContent = text;
}

// --- the QR code and the short URL ---------------------------------------

function drawQR(url) {
  const qr = qrcode(0, "M");
  qr.addData(url);
  qr.make();
  const n = qr.getModuleCount();
  const m = 4; // quiet zone, in modules
  let d = "";
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += "M" + (c + m) + " " + (r + m) + "h1v1h-1z";
  }
  const size = n + 2 * m;
  const svg =
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ' + size + " " + size +
    '" shape-rendering="crispEdges"><rect width="100%" height="100%" fill="#fff"/><path fill="#000" d="' + d + '"/></svg>';
  const img = $("qr");
  img.src = "data:image/svg+xml," + encodeURIComponent(svg);
  img.alt = "QR code for " + url;
  img.hidden = false;
}

// --- the poll config ---------------------------------------------------------

async function loadPoll(quiet) {
  const r = await callRetrying(pollPath(id), { token: loadToken(id) }, (kind, s) => {
    if (!quiet) say(kind === "offline" && !navigator.onLine ? "Offline: waiting for the network…" : "Reconnecting" + (s > 1 ? " in " + s + " s" : "") + "…");
  });
  noteServerDate(r.res);
  if (r.status === 200 && r.body && r.body.poll) {
    if (r.body.token) saveToken(id, r.body.token);
    say("");
    setPoll(r.body.poll);
  } else if (r.status === 404) {
    fatal("Poll not found");
  } else {
    say("The poll couldn't be loaded (error " + r.status + "). Retrying…");
    refreshAt = now() + 10000;
  }
}

function setPoll(p) {
  poll = p;
  $("title").textContent = p.title;
  document.title = p.title + " – Live results";
  // Few clients: re-read the config every ~10 s to see closes and changes,
  // and right after opening and closing times.
  const t = now();
  const next = [t + 9000 + Math.random() * 2000];
  if (opensAt(p) > t) next.push(opensAt(p) + 500);
  if (closesAt(p) > t) next.push(closesAt(p) + 500);
  refreshAt = p.state === "closed" ? t + 60000 : Math.min(...next);
  update();
}

function fatal(title) {
  $("title").textContent = title;
  document.title = title;
  $("phase").textContent = "Check the address of this screen.";
  stopLive();
  refreshAt = Infinity;
}

// --- results: SSE, or polling as the fallback --------------------------------

function draw(snap) {
  if (!poll || !renderPoll($("results"), poll, snap, { words: 60 })) return;
  const n = Number(snap.voters) || 0;
  $("total").textContent = num(n);
  $("total-label").textContent = n === 1 ? "voter" : "voters";
  hiddenResults(false);
}

/** Results hidden until close: say so, and show no total either. */
function hiddenResults(on) {
  $("hidden-note").hidden = !on;
  $("total-box").hidden = on;
}

function onState(s) {
  hiddenResults(s === "hidden");
  say(s === "retrying" ? "Reconnecting to live results…" : s === "gone" ? "Results are not available." : "");
}

/** One EventSource; after 3 errors without a message, poll for a minute. */
function stream() {
  const es = new EventSource(pollPath(id) + "/stream");
  let errors = 0;
  let fallback = null;
  let retry = 0;
  es.onmessage = (e) => {
    errors = 0;
    try {
      draw(JSON.parse(e.data));
      onState("live");
    } catch {
      // A message that is not a snapshot is ignored.
    }
  };
  es.onerror = () => {
    errors++;
    if (es.readyState !== EventSource.CLOSED && errors < 3) {
      if (errors > 1) say("Reconnecting to live results…");
      return;
    }
    es.close();
    fallback = pollResults(id, { snapshot: draw, state: onState });
    retry = setTimeout(() => {
      fallback.stop();
      if (live === handle) live = stream();
    }, 60000);
  };
  const handle = {
    stop() {
      es.close();
      clearTimeout(retry);
      if (fallback) fallback.stop();
    },
  };
  return handle;
}

function startLive() {
  if (live) return;
  live = typeof EventSource === "function" ? stream() : pollResults(id, { snapshot: draw, state: onState });
}

function stopLive() {
  if (live) live.stop();
  live = null;
}

// --- the page's state, redrawn every second --------------------------------

function update() {
  const t = now();
  if (t >= refreshAt) {
    refreshAt = Infinity;
    loadPoll(true);
  }
  if (!poll) return;
  const ph = phase(poll, t);
  $("phase").textContent = describe(poll, ph);
  $("countdown").hidden = ph !== "soon";
  if (ph === "soon") $("countdown").textContent = "Opens in " + span(opensAt(poll) - t);
  document.documentElement.dataset.phase = ph;
  if (shown !== ph) {
    shown = ph;
    $("results").classList.toggle("final", ph === "closed");
  }
  if (resultsVisible(poll, t)) startLive();
  else {
    stopLive();
    hiddenResults(true);
  }
}

function start() {
  if (!id) {
    fatal("Poll not found");
    return;
  }
  const url = location.origin + "/p/" + id;
  const a = $("vote-url");
  a.href = url;
  a.textContent = url;
  drawQR(url);
  setInterval(update, 1000);
  loadPoll(false);
}

start();
