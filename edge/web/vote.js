// The voting page, /p/{id} (and /p/{id}?embed=1 inside another site's iframe).
//
// Why vanilla JS: the page is one question and a button, opened by millions
// of phones within seconds of a cue on air. No framework means nothing to
// download, parse or hydrate before the form works; esbuild bundles and
// minifies these modules into one small file with a content-hashed name
// that every edge caches for a year.
//
// Why polling for live results here (and Server-Sent Events only on the big
// screen): every voter's page asks GET /v1/polls/{id}/results with
// If-None-Match about once a second (800-1200 ms, jittered). That request is
// answered by the edge cache (a 304 with no body while nothing changed) and
// costs the origin nothing between snapshot versions, it needs no
// long-lived connection per voter at the edge, and it stops by itself when
// the tab is hidden (Page Visibility API). A stream per voter would hold
// millions of connections open for the same numbers. The big screen is a
// handful of clients that want every version at once: SSE fits there.
//
// What the page keeps (lib/store.js): the voter token per poll, sent only as
// `Authorization: Bearer` (never the cookie: third-party cookies are blocked
// in iframes), and the voter's own vote and receipt, so a reload says "You
// voted for X" and can ask GET /v1/polls/{id}/vote whether it is counted.
//
// Polls that need a code or a sign-in (identity "invite" or "signed"): the
// config comes without a token, and the page trades an invite code (typed,
// or from the fragment #code=…) or the broadcaster app's JWT (from the
// fragment #jwt=…, or posted by the embedding page: see reportReady) for one
// with POST /v1/polls/{id}/token, then votes exactly as in an open poll.
//
// Poll kinds: single and multi are radios and checkboxes drawn here; scale,
// ranked and words polls get their controls from lib/scale.js,
// lib/ranked.js and lib/words.js, each a "ballot" whose read() gives the
// vote's JSON and the words for "You voted …", or the error to show.
//
// Everything from the server (titles, labels, messages, words) is inserted
// with textContent, never as HTML.

import { call, callRetrying, errMessage, pollPath } from "./lib/api.js";
import { formatCode, jwtReason, normalizeCode, parentOrigin, takeFragment } from "./lib/identity.js";
import {
  closesAt, describe, limit, list, noteServerDate, now, num, opensAt, phase,
  pollIdFromPath, resultsVisible, span,
} from "./lib/poll.js";
import { rankedForm, rankedLegend } from "./lib/ranked.js";
import { pollResults, renderPoll } from "./lib/results.js";
import { scaleForm, scaleLegend } from "./lib/scale.js";
import { loadToken, loadVote, saveToken, saveVote } from "./lib/store.js";
import { maxWords, wordsForm } from "./lib/words.js";

const $ = (id) => document.getElementById(id);
const id = pollIdFromPath(location.pathname);
const embed = new URLSearchParams(location.search).get("embed") === "1";

let poll = null; // the poll config from GET /v1/polls/{id}
let token = "";
let vote = null; // {choices, labels, receipt, at, kind} once this voter voted
let ballot = null; // the controls of a scale, ranked or words poll
let errorFocus = null; // what the error summary's link focuses
let shown = ""; // the phase last drawn
let sending = false;
let results = null; // the results poller while one runs
let refreshAt = 0; // when to re-read the config (ms, edge clock)
let refreshing = false;
let closedSince = 0; // when this page first saw the poll closed
let pending = { code: "", jwt: "" }; // from the fragment, until used
let trading = false; // a POST /token is under way
let embedder = ""; // the embedding page's origin, once known
let asked = false; // "edgepoll:ready" posted to the embedding page
let signinTimer = 0;
let dead = false; // fatal() ended the page

/**
 * Puts a message in the #status live region. kind is "", "ok", "warn" or
 * "error"; a transient message (loading, sending, retrying) is cleared by
 * clearTransient() once the thing it waits for is done.
 */
function say(text, kind = "", transient = false) {
  const s = $("status");
  s.textContent = text;
  s.dataset.kind = kind;
  s.dataset.transient = transient ? "1" : "";
}

function clearTransient() {
  if ($("status").dataset.transient) say("");
}

/** An onWait callback for callRetrying that explains the wait. */
function waiting(prefix) {
  return (kind, seconds) => {
    const when = seconds > 1 ? "in " + seconds + " seconds" : "in a moment";
    const text =
      kind === "offline"
        ? navigator.onLine
          ? "We can't reach the poll. Trying again " + when + "…"
          : "You're offline. We'll carry on as soon as you're back online."
        : kind === "busy"
          ? "Lots of people are voting right now. Trying again " + when + "…"
          : "The poll is very busy. Trying again " + when + "…";
    say((prefix ? prefix + " " : "") + text, "warn", true);
  };
}

/** Ends the page with a message (unknown poll, bad address). */
function fatal(title, text) {
  $("title").textContent = title;
  document.title = title;
  dead = true;
  for (const el of ["vote-form", "code-form", "signin", "voted", "results-section", "countdown"]) $(el).hidden = true;
  $("phase").textContent = "";
  say(text, "error");
  stopResults();
  refreshAt = Infinity;
}

// --- the poll config and the voter token ---------------------------------

/** GET /v1/polls/{id}: config plus token (the stored token is reused). */
async function loadPoll(quiet) {
  const sent = token;
  const r = quiet
    ? await call(pollPath(id), { token }).catch(() => null)
    : await callRetrying(pollPath(id), { token }, waiting(""));
  if (!r) return false;
  noteServerDate(r.res);
  // A token traded for a code or JWT meanwhile wins over this answer.
  if (token !== sent && r.status === 200 && r.body && r.body.poll) return true;
  // An invite or signed poll answers without a token until one is traded.
  const needs = r.body && r.body.poll && r.body.poll.identity && r.body.poll.identity !== "open";
  if (r.status === 200 && r.body && r.body.poll && (r.body.token || needs)) {
    if ((r.body.token || "") !== token) {
      // A new voter id: the stored token is no longer valid (or there was
      // none), so a stored vote belongs to a voter this page cannot speak for.
      if (token && vote) {
        vote = null;
        saveVote(id, null);
      }
      token = r.body.token || "";
      saveToken(id, token);
    }
    setPoll(r.body.poll);
    if (!token) access();
    return true;
  }
  if (quiet) return false;
  if (r.status === 404) {
    fatal("Poll not found", "We couldn't find this poll. Check the address you were given; the poll may have been removed.");
  } else if ((r.status === 401 || r.status === 400) && token) {
    token = "";
    saveToken(id, "");
    return loadPoll(false);
  } else {
    fatal("Something went wrong", "The poll couldn't be loaded (error " + r.status + "). Please reload the page in a moment.");
  }
  return false;
}

/** Re-reads the config in the background; errors just try again later. */
async function refreshPoll() {
  if (refreshing) return;
  refreshing = true;
  refreshAt = now() + 10000;
  try {
    await loadPoll(true);
  } finally {
    refreshing = false;
  }
}

/** When to re-read the config next: at opening, at closing, and every ~30 s. */
function scheduleRefresh() {
  const t = now();
  const jitter = () => Math.random() * 2000;
  const ph = phase(poll, t);
  if (poll.state === "closed") refreshAt = Infinity;
  else if (ph === "soon") refreshAt = opensAt(poll) + jitter();
  else if (ph === "draft") refreshAt = t + 8000 + jitter();
  else if (ph === "closed") refreshAt = t + 60000 + jitter();
  else refreshAt = Math.min(t + 25000 + 5 * jitter(), closesAt(poll) ? closesAt(poll) + jitter() : Infinity);
}

function setPoll(p) {
  // Options are redrawn only when they change (keeping focus and ticks).
  const redraw = !poll || optionsKey(poll) !== optionsKey(p);
  poll = p;
  $("title").textContent = p.title;
  document.title = p.title + " – Vote";
  // The edge states the poll's one-vote guarantee in plain words.
  const note = p.identity_note ? p.identity_note[0].toUpperCase() + p.identity_note.slice(1) + "." : "";
  $("identity-note").textContent = note;
  $("identity-note").hidden = !note;
  if (redraw) drawOptions();
  scheduleRefresh();
  update();
}

const optionsKey = (p) =>
  [p.kind, p.max_choices || 0, JSON.stringify(p.scale || null), p.max_words || 0, ...(p.options || []).map((o) => o.label)].join("\u0000");

// --- invite codes and sign-ins: trading them for a voter token -----------

/**
 * Called whenever the poll is known and this page holds no token: uses a
 * code or JWT from the fragment, or asks the embedding page for a JWT.
 */
function access() {
  if (!poll || token || trading) return;
  if (poll.identity === "invite") {
    if (pending.code) {
      const c = pending.code;
      pending.code = "";
      $("code").value = c;
      tradeCode(c);
    }
  } else if (poll.identity === "signed") {
    if (pending.jwt) {
      const j = pending.jwt;
      pending.jwt = "";
      tradeJWT(j);
    } else if (asked) {
      // Asked already: the answer, or the words about its absence, stand.
    } else if (embed && window.parent !== window) {
      signinText("Waiting for your sign-in from the site around this poll…");
      reportReady();
      clearTimeout(signinTimer);
      signinTimer = setTimeout(() => {
        if (!token && !trading) signinText("To vote, sign in on the site or in the app that showed you this poll, then reload it.");
      }, 8000);
    } else {
      asked = true;
      signinText("To vote, open this poll from the app you use, signed in to your account.");
    }
  }
}

function signinText(text) {
  $("signin-text").textContent = text;
}

/** Shows (or with "" clears) the code field's error, and focuses the field. */
function codeError(text) {
  const err = $("code-error");
  err.textContent = text ? "Error: " + text : "";
  err.hidden = !text;
  $("code-group").classList.toggle("invalid", !!text);
  const input = $("code");
  if (text) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", "code-error code-hint");
    input.focus();
  } else {
    input.removeAttribute("aria-invalid");
    input.setAttribute("aria-describedby", "code-hint");
  }
}

const CODE_FORMAT = "An invite code is 20 letters and digits, like 7K3Q-M9XD-W2TB-HZ4R-N8CE. Check your code and type it again.";

function onCode(e) {
  e.preventDefault();
  if (trading || !poll) return;
  tradeCode($("code").value);
}

/** Trades an invite code (as typed) for a voter token. */
async function tradeCode(typed) {
  const code = normalizeCode(typed);
  if (!code) {
    codeError(typed.trim() ? CODE_FORMAT : "Enter your invite code.");
    return;
  }
  $("code").value = formatCode(code);
  const r = await trade({ code: formatCode(code) }, "Checking your code…");
  if (!r) return;
  switch (r.status) {
    case 200:
      return;
    case 400:
      codeError("This code isn't right: a letter or digit may be mistyped. " + CODE_FORMAT);
      break;
    case 403:
      codeError("We don't know this code. Check it and type it again, or ask whoever gave it to you.");
      break;
    case 409:
      codeError(
        r.retried
          ? "This code has already been used. If the poll was busy just now, your first try may have used it: ask whoever gave it to you for a new one."
          : "This code has already been used. Each code gives one vote: ask whoever gave it to you for a new one.",
      );
      break;
    default:
      codeError("We couldn't check your code (error " + r.status + "). Please try again in a moment.");
  }
  clearTransient();
}

/** Trades the app's JWT for a voter token. */
async function tradeJWT(jwt) {
  clearTimeout(signinTimer);
  signinText("Checking your sign-in…");
  const r = await trade({ jwt }, "");
  if (!r || r.status === 200) return;
  let text;
  if (r.status === 401 && jwtReason(errMessage(r)) === "expired") {
    text = "Your sign-in has expired, please sign in again in the app.";
  } else if (r.status === 401 || r.status === 400) {
    text = "We couldn't confirm your sign-in, so you can't vote here yet. Please sign in again in the app.";
  } else {
    text = "We couldn't check your sign-in (error " + r.status + "). Please try again in a moment.";
  }
  signinText(text);
}

/**
 * POST /v1/polls/{id}/token. On 200 keeps the token and shows the form;
 * otherwise returns the answer (with retried: whether a 503 or a network
 * failure was retried first) for the caller's words. null when there is no answer
 * to explain (the poll is gone, or is open to everyone after all).
 */
async function trade(json, busy) {
  if (trading) return null;
  trading = true;
  const button = $("code-submit");
  button.disabled = true;
  if (busy) say(busy, "", true);
  let retried = false;
  const wait = waiting("");
  try {
    const r = await callRetrying(pollPath(id) + "/token", { method: "POST", json }, (kind, ...a) => {
      // A 429 changed nothing; a 503 or a lost answer may have used the code.
      if (kind !== "busy") retried = true;
      wait(kind, ...a);
    });
    noteServerDate(r.res);
    r.retried = retried;
    if (r.status === 200 && r.body && r.body.token && r.body.poll) {
      token = r.body.token;
      saveToken(id, token);
      if (vote) remember(null);
      codeError("");
      setPoll(r.body.poll);
      say(json.code ? "Your code is accepted. You can vote now." : "You're signed in. You can vote now.", "ok");
      const first = firstControl();
      if (first && !$("vote-form").hidden) first.focus();
      return r;
    }
    if (r.status === 404) {
      fatal("Poll not found", "We couldn't find this poll. Check the address you were given; the poll may have been removed.");
      return null;
    }
    if (r.status === 409 && json.jwt) {
      // Open to every browser after all: the plain GET gives a token.
      loadPoll(false);
      return null;
    }
    if (r.status === 409 && poll && poll.identity === "open") {
      loadPoll(false);
      return null;
    }
    return r;
  } finally {
    trading = false;
    button.disabled = false;
  }
}

// --- embed mode: the JWT from the embedding page ----------------------------

/**
 * Tells the embedding page this poll wants a JWT:
 * {type: "edgepoll:ready", poll, need: "jwt"}. The page (embed.js) answers
 * {type: "edgepoll:jwt", poll, jwt} to this frame; onMessage believes it
 * only from the parent window, from the embedding origin, for this poll,
 * and only while the poll is signed and this page holds no token.
 */
function reportReady() {
  asked = true;
  const to = embedder || parentOrigin() || "*";
  window.parent.postMessage({ type: "edgepoll:ready", poll: id, need: "jwt" }, to);
}

function onMessage(e) {
  if (!embed || window.parent === window || e.source !== window.parent) return;
  const d = e.data;
  if (!d || typeof d !== "object" || d.type !== "edgepoll:jwt" || d.poll !== id) return;
  // The embedding origin: the browser's record of it, else the first
  // message's origin, pinned for the page's life.
  if (!embedder) embedder = parentOrigin() || e.origin;
  if (e.origin !== embedder) return;
  if (typeof d.jwt !== "string" || !d.jwt || d.jwt.length > 4096) return;
  if (!poll || poll.identity !== "signed" || token || trading) return;
  tradeJWT(d.jwt);
}

// --- the form ------------------------------------------------------------

/** The first control of the form (for focus). */
function firstControl() {
  return ballot ? ballot.first() : document.querySelector("#options input:not(:disabled)");
}

/** Draws the kind's controls: radios or checkboxes (keeping what was already ticked), or a ballot. */
function drawOptions() {
  const box = $("options");
  const kinds = { scale: [scaleForm, scaleLegend], ranked: [rankedForm, rankedLegend], words: [wordsForm, (p) => (maxWords(p) > 1 ? "Up to " + maxWords(p) + " words" : "One word")] };
  const k = kinds[poll.kind];
  box.dataset.kind = poll.kind;
  if (k) {
    $("legend").textContent = k[1](poll);
    $("choice-count").hidden = true;
    ballot = k[0](poll, box);
    return;
  }
  ballot = null;
  const before = new Set(checked());
  const multi = poll.kind === "multi";
  const max = limit(poll);
  $("legend").textContent = multi ? (max > 1 ? "Choose up to " + max : "Choose one") : "Choose one";
  const items = poll.options.map((o, i) => {
    const div = document.createElement("div");
    div.className = "option";
    const input = document.createElement("input");
    input.type = multi ? "checkbox" : "radio";
    input.name = "choice";
    input.id = "opt-" + i;
    input.value = String(i);
    input.checked = before.has(i);
    const label = document.createElement("label");
    label.htmlFor = input.id;
    label.textContent = o.label;
    div.append(input, label);
    return div;
  });
  box.replaceChildren(...items);
  $("choice-count").hidden = !multi || max < 2;
  enforceMax();
}

/** The ticked option indexes. */
function checked() {
  return [...document.querySelectorAll("#options input:checked")].map((el) => Number(el.value));
}

/** Multi polls: at max_choices, the unticked boxes are disabled. */
function enforceMax() {
  if (!poll || poll.kind !== "multi") return;
  const max = limit(poll);
  const n = checked().length;
  for (const el of document.querySelectorAll("#options input")) {
    el.disabled = !el.checked && n >= max && max > 1;
  }
  if (max > 1) {
    $("choice-count").textContent =
      n >= max
        ? "You have chosen " + n + " of " + max + ". Untick one to choose another."
        : "You have chosen " + n + " of " + max + ".";
  }
}

function showError(text, focus) {
  errorFocus = focus || null;
  $("error-link").textContent = text;
  $("error-summary").hidden = false;
  // Word fields mark themselves; other ballots are marked as a whole.
  if (poll.kind !== "words") $("options-set").classList.add("invalid");
  $("error-summary").focus();
}

function hideError() {
  $("error-summary").hidden = true;
  $("options-set").classList.remove("invalid");
}

async function onSubmit(e) {
  e.preventDefault();
  if (sending || !poll) return;
  let b;
  if (ballot) {
    b = ballot.read();
    if (b.error) {
      showError(b.error, b.focus);
      return;
    }
  } else {
    let choices = checked();
    if (poll.kind === "multi" && limit(poll) === 1 && choices.length > 1) choices = choices.slice(0, 1);
    if (!choices.length) {
      showError(poll.kind === "multi" && limit(poll) > 1 ? "Choose at least one option" : "Choose an option");
      return;
    }
    b = { json: poll.kind === "multi" ? { choices } : { choice: choices[0] }, labels: choices.map((i) => poll.options[i].label), choices };
  }
  hideError();
  sending = true;
  const button = $("vote-submit");
  button.disabled = true;
  $("vote-form").setAttribute("aria-busy", "true");
  say("Sending your vote…", "", true);
  try {
    await sendVote(b, false);
  } finally {
    sending = false;
    button.disabled = false;
    $("vote-form").removeAttribute("aria-busy");
  }
}

/**
 * POST /v1/polls/{id}/votes with b = {json, labels, choices?}, and what each
 * answer means to the voter.
 */
async function sendVote(b, renewed) {
  const { json, labels } = b;
  const r = await callRetrying(pollPath(id) + "/votes", { method: "POST", token, json }, waiting("Your vote hasn't been sent yet."));
  noteServerDate(r.res);
  switch (r.status) {
    case 202:
      remember({ choices: b.choices || [], labels, receipt: (r.body && r.body.receipt) || "", at: Date.now(), kind: poll.kind });
      say("Thank you, your vote is in.", "ok");
      $("voted-title").focus();
      return;
    case 409:
      // The edge remembers this voter: the first vote stands, whatever this
      // one chose, so the page does not claim to know the choice.
      remember({ choices: [], labels: [], receipt: "", at: Date.now(), kind: poll.kind });
      say("You already voted in this poll. Only your first vote counts.", "ok");
      $("voted-title").focus();
      return;
    case 401:
      if (poll.identity && poll.identity !== "open") {
        // The voter pass no longer holds (the poll's mode changed, or the
        // edge's secret did): only a new code or sign-in buys another.
        token = "";
        saveToken(id, "");
        asked = false;
        update();
        say(
          poll.identity === "invite"
            ? "We couldn't confirm your voter pass. Your vote wasn't counted: enter an unused invite code to vote."
            : "We couldn't confirm your voter pass. Your vote wasn't counted: please sign in again in the app.",
          "error",
        );
        access();
        return;
      }
      if (!renewed) {
        token = "";
        saveToken(id, "");
        if (await loadPoll(false)) return sendVote(b, true);
      }
      say("We couldn't confirm your voter pass. Please reload the page and vote again.", "error");
      return;
    case 403:
      if (errMessage(r) === "poll_not_open") {
        say("Voting hasn't opened yet, so your vote wasn't sent. Please wait for the poll to open.", "warn");
      } else {
        say("Sorry, voting has closed. Your vote wasn't counted.", "error");
      }
      refreshPoll();
      return;
    case 400:
      if (ballot && ballot.fail) {
        // Words: the edge's own message says what it refused.
        const e = ballot.fail(errMessage(r));
        showError(e.error, e.focus);
        clearTransient();
        return;
      }
      say("That choice isn't valid for this poll any more. Please check the options and vote again.", "error");
      refreshPoll();
      return;
    case 404:
      fatal("Poll not found", "This poll no longer exists. Your vote wasn't counted.");
      return;
    default:
      say("Something went wrong and your vote wasn't counted (error " + r.status + "). Please try again.", "error");
  }
}

function remember(v) {
  vote = v;
  saveVote(id, v);
  if (!v) $("voted").hidden = true;
  update();
}

// --- after voting: the receipt and "check my vote" -------------------------

function drawVoted() {
  const l = vote.labels;
  $("voted-title").textContent = l.length ? "You voted" : "You have already voted";
  $("voted-choice").textContent = !l.length
    ? "This device has already voted in this poll."
    : vote.kind === "scale"
      ? "You answered " + l[0] + "."
      : vote.kind === "ranked"
        ? "Your ranking: " + l.map((x, i) => i + 1 + ". " + x).join(", ") + "."
        : vote.kind === "words"
          ? "You said " + list(l.map((w) => "“" + w + "”")) + "."
          : "You voted for " + list(l) + ".";
  $("receipt").textContent = vote.receipt;
  $("receipt-line").hidden = !vote.receipt;
}

async function checkVote() {
  const button = $("check-vote");
  if (button.disabled) return;
  button.disabled = true;
  say("Checking your vote…", "", true);
  try {
    const r = await callRetrying(pollPath(id) + "/vote", { token }, waiting("Checking your vote."));
    if (r.status === 200 && r.body) {
      if (r.body.receipt && vote && !vote.receipt) {
        vote.receipt = r.body.receipt;
        saveVote(id, vote);
        drawVoted();
      }
      if (r.body.counted) say("Your vote is counted.", "ok");
      else say("Your vote isn't counted yet. It usually takes a few seconds: check again shortly.", "warn");
    } else if (r.status === 401) {
      say("We couldn't confirm your voter pass, so we can't check this vote.", "error");
    } else if (r.status === 404) {
      say("This poll no longer exists.", "error");
    } else {
      say("We couldn't check your vote right now (error " + r.status + "). Please try again in a moment.", "error");
    }
  } finally {
    button.disabled = false;
  }
}

// --- the page's state, redrawn every second --------------------------------

function update() {
  if (!poll || dead) return;
  const t = now();
  const ph = phase(poll, t);
  if (ph === "closed" && !closedSince) closedSince = t;
  const text = describe(poll, ph);
  if ($("phase").textContent !== text) $("phase").textContent = text;
  $("countdown").hidden = ph !== "soon";
  if (ph === "soon") $("countdown").textContent = "Opens in " + span(opensAt(poll) - t);

  const was = shown;
  shown = ph;
  if (was && was !== ph) {
    if (ph === "open") say("Voting is open now.", "ok");
    if (ph === "closed" && !vote) say("Voting has closed.", "warn");
    if (drawn()) noteResults();
  }

  $("vote-form").hidden = ph !== "open" || !!vote || !token;
  // Codes and sign-ins are taken from the countdown on, so a voter is ready
  // at the cue.
  const mode = poll.identity || "open";
  const early = (ph === "open" || ph === "soon") && !vote && !token;
  $("code-form").hidden = !(early && mode === "invite");
  $("signin").hidden = !(early && mode === "signed");
  if (ph !== "open") hideError();
  if (vote && $("voted").hidden) drawVoted();
  $("voted").hidden = !vote;
  document.documentElement.dataset.phase = ph;

  // Before opening there is nothing to count: no results, no polling (a
  // countdown page may be open on millions of phones waiting for the cue).
  const counting = ph === "open" || ph === "closed";
  $("results-section").hidden = !counting;
  if (!counting) stopResults();
  else if (resultsVisible(poll, t)) startResults();
  else {
    stopResults();
    $("results-note").textContent = "Results will be shown when voting closes.";
  }
  if (t >= refreshAt && document.visibilityState === "visible") refreshPoll();
}

function startResults() {
  if (results) return;
  $("results-note").textContent = "Loading results…";
  results = pollResults(
    id,
    {
      snapshot(snap) {
        if (!renderPoll($("results"), poll, snap)) return;
        noteResults(snap);
      },
      state(s) {
        if (s === "hidden") $("results-note").textContent = "Results will be shown when voting closes.";
        else if (s === "retrying") $("results-note").textContent = "Reconnecting to live results…";
        else if (s === "gone") $("results-note").textContent = "Results are not available.";
        else if (drawn()) noteResults();
      },
    },
    // A closed poll's numbers settle within seconds: after a minute, poll ~5x slower.
    () => (closedSince && now() - closedSince > 60000 ? 5 : 1),
  );
}

/** Whether a results snapshot has been drawn. */
const drawn = () => !!$("results").firstElementChild;

function noteResults() {
  const n = Number($("results").dataset.total) || 0;
  const closed = shown === "closed";
  let text = (closed ? "Final results: " : "Live results: ") + num(n) + (n === 1 ? " voter" : " voters") + ".";
  if (poll.kind === "multi" && limit(poll) > 1) {
    text += " Each voter could choose up to " + limit(poll) + " options, so the percentages can add up to more than 100%.";
  } else if (poll.kind === "ranked") {
    const n = poll.options.length;
    text += " Options are ordered by points: each ballot gives its first choice " + (n - 1) + (n - 1 === 1 ? " point" : " points") +
      (n > 2 ? ", its second " + (n - 2) + ", and so on" : "") + ".";
  } else if (poll.kind === "words") {
    const d = $("results").dataset;
    const w = Number(d.words) || 0;
    const k = Number(d.distinct) || 0;
    if (w) text += " " + num(w) + (w === 1 ? " word, " : " words, ") + (d.exact ? "" : "about ") + num(k) + " different.";
    text += " The more often a word was given, the bigger it is.";
  }
  $("results-note").textContent = text;
}

function stopResults() {
  if (results) results.stop();
  results = null;
}

// --- embed mode: tell the parent page how tall the content is ---------------

function reportHeight() {
  if (window.parent === window || typeof ResizeObserver !== "function") return;
  let last = -1;
  const post = () => {
    const h = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (h === last) return;
    last = h;
    window.parent.postMessage({ type: "edgepoll:height", poll: id, height: h }, "*");
  };
  new ResizeObserver(post).observe(document.documentElement);
  post();
}

// --- start ---------------------------------------------------------------

function start() {
  // First of all: a code or JWT in the fragment leaves the address bar.
  pending = takeFragment();
  if (embed) {
    addEventListener("message", onMessage);
    document.documentElement.classList.add("embed");
    reportHeight();
  }
  $("vote-form").addEventListener("submit", onSubmit);
  $("options").addEventListener("change", () => {
    enforceMax();
    if (ballot ? poll.kind === "scale" : checked().length) hideError();
  });
  $("error-link").addEventListener("click", (e) => {
    e.preventDefault();
    const first = (errorFocus && errorFocus.isConnected && errorFocus) || firstControl();
    if (first) first.focus();
  });
  $("check-vote").addEventListener("click", checkVote);
  $("code-form").addEventListener("submit", onCode);
  // A link with #code=… or #jwt=… opened in this tab again.
  addEventListener("hashchange", () => {
    const f = takeFragment();
    if (f.code || f.jwt) {
      pending = f;
      access();
    }
  });
  addEventListener("offline", () => say("You're offline. The page will catch up when you're back online.", "warn"));
  addEventListener("online", () => {
    if ($("status").dataset.kind === "warn") say("You're back online.", "ok");
  });
  document.addEventListener("visibilitychange", update);
  if (!id) {
    fatal("Poll not found", "This address doesn't point to a poll. Check the link you were given.");
    return;
  }
  token = loadToken(id);
  vote = loadVote(id);
  setInterval(update, 1000);
  say("Loading the poll…", "", true);
  loadPoll(false).then((ok) => ok && clearTransient());
}

start();
