// Word polls ("kind":"words"): the voter gives 1..max_words words, the big
// screen draws them as a word cloud.
//
// normalizeWord mirrors the edge's rules (docs/EDGE-API.md, "words"; the
// edge runs shared.NormalizeWord) so the voter sees at once what will be
// counted: NFKC; full case folding, approximated by upper- then lower-casing
// (locale-independent; "Straße" → "strasse", final sigma → σ), then NFKC
// again; trimmed; ’ and ʼ read as ', ‐ as -; then 1-24 code points (not
// UTF-16 units), each a letter, a digit (Nd), a combining mark after one of
// those, or a - or ' between them. The edge is the authority: the page
// warns while the voter types but still sends what was typed (its copy of
// the rules may differ in rare corners, or be older than the edge's), and
// shows the edge's own message ("word 2: …") on the field it names.
//
// The cloud is text, never HTML: each word is a list item set with
// textContent, its size a CSS custom property (--size, 0..1, by the square
// root of its count, so a word's area follows its count), laid out by
// flex-wrap with the biggest words in the middle (CSS order, so the list's
// DOM order, the one a screen reader reads, stays the ranking).

import { create } from "./dom.js";
import { num } from "./poll.js";

export const MAX_WORD = 24;
const PART = "(?:[\\p{L}\\p{Nd}]\\p{M}*)+";
const WORD = new RegExp("^" + PART + "(?:['-]" + PART + ")*$", "u");

/**
 * What the edge will make of raw: {word, why}, why "" when it is a valid
 * word, else "empty", "space", "long" or "chars".
 */
export function normalizeWord(raw) {
  const w = String(raw).normalize("NFKC").toUpperCase().toLowerCase().normalize("NFKC").trim()
    .replace(/ς/g, "σ").replace(/[\u2019\u02bc]/g, "'").replace(/\u2010/g, "-");
  if (!w) return { word: "", why: "empty" };
  if (/\s/u.test(w)) return { word: w, why: "space" };
  if ([...w].length > MAX_WORD) return { word: w, why: "long" };
  if (!WORD.test(w)) return { word: w, why: "chars" };
  return { word: w, why: "" };
}

/** The words of a poll config (1..3). */
export const maxWords = (p) => Math.max(1, Math.min(3, Number(p.max_words) || 1));

const WHY = {
  space: "One word only, with no spaces.",
  long: "That's too long: a word has at most " + MAX_WORD + " letters or digits.",
  chars: "Use only letters and digits, with a hyphen or apostrophe inside a word (like well-done).",
};

/**
 * The word fields of the voting form, in box. Returns the ballot: read()
 * gives {json, labels} or {error, focus}; fail(message) puts the edge's
 * message on the fields; first() is the control to focus.
 */
export function wordsForm(poll, box) {
  const n = maxWords(poll);
  const hint = create("p", "hint");
  hint.id = "words-hint";
  hint.textContent =
    (n > 1 ? "One word in each box; the second" + (n > 2 ? " and third are" : " is") + " optional. " : "") +
    "Up to " + MAX_WORD + " letters or digits; a hyphen or apostrophe may join two parts (like well-done).";
  const fields = [];
  for (let i = 0; i < n; i++) {
    const group = create("div", "field");
    const label = create("label", "field-label");
    label.htmlFor = "word-" + i;
    label.textContent = n === 1 ? "Your word" : "Word " + (i + 1) + (i ? " (optional)" : "");
    const err = create("p", "field-error");
    err.id = "word-error-" + i;
    err.hidden = true;
    const input = document.createElement("input");
    input.type = "text";
    input.id = "word-" + i;
    input.name = "word";
    input.className = "input word";
    input.maxLength = 64;
    input.autocomplete = "off";
    input.spellcheck = false;
    input.setAttribute("autocapitalize", "none");
    input.setAttribute("enterkeyhint", i === n - 1 ? "send" : "next");
    const note = create("p", "word-note");
    note.id = "word-note-" + i;
    note.setAttribute("aria-live", "polite");
    input.setAttribute("aria-describedby", "words-hint " + note.id);
    group.append(label, err, input, note);
    fields.push({ group, input, err, note });
    input.addEventListener("input", () => {
      // A field's error goes once it is edited; every note is redrawn (a
      // repeat depends on the other fields).
      if (!fields[i].err.hidden) mark(fields[i], "");
      fields.forEach((_, j) => live(j));
    });
  }
  box.replaceChildren(hint, ...fields.map((f) => f.group));

  // While typing: what will be counted, or why it would not be.
  function live(i) {
    const f = fields[i];
    const { word, why } = normalizeWord(f.input.value);
    const dup = !why && fields.some((g, j) => j < i && normalizeWord(g.input.value).word === word);
    f.note.textContent = why === "empty" ? "" : why ? WHY[why] : dup ? "You've already given this word." : "Counted as “" + word + "”.";
    f.note.dataset.kind = (why && why !== "empty") || dup ? "warn" : "";
  }

  function mark(f, text) {
    f.err.textContent = text ? "Error: " + text : "";
    f.err.hidden = !text;
    f.group.classList.toggle("invalid", !!text);
    if (text) {
      f.input.setAttribute("aria-invalid", "true");
      f.input.setAttribute("aria-describedby", f.err.id + " words-hint " + f.note.id);
    } else {
      f.input.removeAttribute("aria-invalid");
      f.input.setAttribute("aria-describedby", "words-hint " + f.note.id);
    }
  }

  return {
    first: () => fields[0].input,
    read() {
      for (const f of fields) mark(f, "");
      const words = fields.map((f) => f.input.value.trim()).filter(Boolean);
      if (!words.length) {
        const text = n > 1 ? "Enter at least one word" : "Enter a word";
        mark(fields[0], text + ".");
        return { error: text, focus: fields[0].input };
      }
      return { json: { words }, labels: words.map((w) => normalizeWord(w).word || w) };
    },
    // The edge refused the words (400): its message goes on the field it
    // names ("word 2: …", counting the words sent), else on the first field
    // this page also doubts, else the first filled one.
    fail(message) {
      const filled = fields.filter((f) => f.input.value.trim());
      const m = /^word (\d+)/i.exec(message || "");
      const bad = (m && filled[Number(m[1]) - 1]) || filled.find((f) => normalizeWord(f.input.value).why) || filled[0] || fields[0];
      const text = message ? message[0].toUpperCase() + message.slice(1) : "This word can't be used.";
      mark(bad, text);
      return { error: text, focus: bad.input };
    },
  };
}

/**
 * Draws the words of snapshot snap ({words: [{word, count}], distinct,
 * total, voters}) into el as a cloud of at most max words.
 */
export function drawCloud(el, snap, max) {
  const words = (Array.isArray(snap.words) ? snap.words : []).slice(0, max);
  let ol = el.querySelector("ol.cloud");
  if (!ol) {
    ol = document.createElement("ol");
    ol.className = "cloud";
    el.replaceChildren(ol);
  }
  const old = new Map([...ol.children].map((li) => [li.dataset.word, li]));
  let top = 1;
  for (const w of words) top = Math.max(top, Number(w.count) || 0);
  const n = words.length;
  const items = words.map((w, r) => {
    const word = String(w.word);
    const count = Number(w.count) || 0;
    let li = old.get(word);
    if (li) old.delete(word);
    else {
      li = document.createElement("li");
      li.className = "word";
      li.dataset.word = word;
      const t = create("span", "w");
      t.textContent = word;
      const c = create("span", "visually-hidden");
      li.append(t, c);
    }
    li.lastChild.textContent = ", " + num(count) + (count === 1 ? " time" : " times");
    li.dataset.count = String(count);
    li.dataset.tone = String(r % 4);
    li.style.setProperty("--size", Math.sqrt(count / top).toFixed(3));
    // Biggest in the middle: ranks alternate right and left of the centre.
    li.style.order = String(r % 2 ? Math.floor(n / 2) - (r + 1) / 2 : Math.floor(n / 2) + r / 2);
    return li;
  });
  ol.replaceChildren(...items);
  el.dataset.words = String(Number(snap.total) || 0);
  el.dataset.distinct = String(Number(snap.distinct) || 0);
  el.dataset.exact = snap.distinct_exact === false ? "" : "1";
  let empty = el.querySelector(".empty");
  if (!n && !empty) {
    empty = document.createElement("p");
    empty.className = "empty note";
    empty.textContent = "No words yet.";
    el.append(empty);
  } else if (n && empty) empty.remove();
}
