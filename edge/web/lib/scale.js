// Scale polls ("kind":"scale"): a number from scale.min to scale.max (2-101
// steps, min may be negative), with optional words for the two ends.
//
// Voting: up to 11 steps, a row of radio buttons drawn as number buttons
// (arrow keys move between them, as in any radio group); more steps, a
// native range input with its value shown in large type and − / + buttons
// for fine steps on a touch screen. The range starts in the middle but
// counts as unanswered until the voter moves it, so nobody votes the
// midpoint by pressing Vote. The end words are on the end values' labels
// (for screen readers) and under the scale.
//
// Results: a histogram, one column per value (index i of counts is value
// min+i), heights relative to the tallest (a CSS custom property), the
// mean as a marker and as text. Each column carries its value and count as
// visually hidden text, so the chart reads as a list.

import { create } from "./dom.js";
import { num } from "./poll.js";

/** {min, max, minLabel, maxLabel, steps} of a scale poll. */
export function scaleOf(p) {
  const s = p.scale || {};
  const min = Number.isInteger(s.min) ? s.min : 1;
  const max = Number.isInteger(s.max) && s.max > min ? s.max : min + 4;
  return { min, max, minLabel: s.min_label || "", maxLabel: s.max_label || "", steps: max - min + 1 };
}

/** The most steps drawn as buttons; more get a range input. */
export const MAX_BUTTONS = 11;

const endWord = (sc, v) => (v === sc.min ? sc.minLabel : v === sc.max ? sc.maxLabel : "");

/** "7" or "10 (brilliant)". */
export function valueText(sc, v) {
  const w = endWord(sc, v);
  return w ? v + " (" + w + ")" : String(v);
}

function ends(sc) {
  const div = create("div", "ends");
  div.setAttribute("aria-hidden", "true");
  const a = document.createElement("span");
  const b = document.createElement("span");
  a.textContent = sc.minLabel ? sc.min + ": " + sc.minLabel : "";
  b.textContent = sc.maxLabel ? sc.max + ": " + sc.maxLabel : "";
  div.append(a, b);
  return div;
}

/** The legend for a scale poll's fieldset. */
export const scaleLegend = (p) => {
  const sc = scaleOf(p);
  return "Choose a number from " + sc.min + " to " + sc.max;
};

/**
 * The scale controls of the voting form, in box. Returns the ballot (see
 * words.js): read() gives {json: {value}, labels} or {error, focus}.
 */
export function scaleForm(poll, box) {
  const sc = scaleOf(poll);
  if (sc.steps <= MAX_BUTTONS) {
    const row = create("div", "steps");
    // One row, or two even rows on a narrow screen (vote.css).
    row.style.setProperty("--n", String(sc.steps));
    row.style.setProperty("--half", String(Math.ceil(sc.steps / 2)));
    for (let v = sc.min; v <= sc.max; v++) {
      const step = create("div", "step");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "choice";
      input.id = "opt-" + (v - sc.min);
      input.value = String(v);
      const label = document.createElement("label");
      label.htmlFor = input.id;
      label.textContent = String(v);
      const w = endWord(sc, v);
      if (w) {
        const hid = create("span", "visually-hidden");
        hid.textContent = ", " + w;
        label.append(hid);
      }
      step.append(input, label);
      row.append(step);
    }
    box.replaceChildren(row, ends(sc));
    const radios = () => [...row.querySelectorAll("input")];
    return {
      first: () => radios().find((r) => r.checked) || radios()[0],
      read() {
        const r = radios().find((x) => x.checked);
        if (!r) return { error: "Choose a number", focus: radios()[0] };
        const v = Number(r.value);
        return { json: { value: v }, labels: [valueText(sc, v)] };
      },
    };
  }

  // Many steps: a range input.
  const wrap = create("div", "range");
  const label = create("label", "field-label");
  label.htmlFor = "scale-range";
  label.textContent = "Your answer";
  const out = document.createElement("output");
  out.id = "scale-value";
  out.className = "range-value";
  out.htmlFor = "scale-range";
  const rowEl = create("div", "range-row");
  const input = document.createElement("input");
  input.type = "range";
  input.id = "scale-range";
  input.min = String(sc.min);
  input.max = String(sc.max);
  input.step = "1";
  input.value = String(Math.round((sc.min + sc.max) / 2));
  const nudge = (d, text, name) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "button secondary nudge";
    b.textContent = text;
    b.setAttribute("aria-label", name);
    b.addEventListener("click", () => {
      input.value = String(Math.min(sc.max, Math.max(sc.min, Number(input.value) + d)));
      touch();
    });
    return b;
  };
  rowEl.append(nudge(-1, "−", "One less"), input, nudge(1, "+", "One more"));
  const endsEl = ends(sc);
  endsEl.id = "scale-ends";
  if (sc.minLabel || sc.maxLabel) input.setAttribute("aria-describedby", "scale-ends-text");
  const endsText = document.createElement("span");
  endsText.id = "scale-ends-text";
  endsText.className = "visually-hidden";
  endsText.textContent = [sc.minLabel && sc.min + " means " + sc.minLabel, sc.maxLabel && sc.max + " means " + sc.maxLabel].filter(Boolean).join(", ");
  wrap.append(label, out, rowEl, endsEl, endsText);
  box.replaceChildren(wrap);
  let touched = false;
  const show = () => {
    const v = Number(input.value);
    out.textContent = touched ? valueText(sc, v) : "Move the slider to choose";
    out.dataset.touched = touched ? "1" : "";
    input.setAttribute("aria-valuetext", touched ? valueText(sc, v) : "not chosen yet, " + v);
  };
  const touch = () => {
    touched = true;
    show();
  };
  input.addEventListener("input", touch);
  input.addEventListener("pointerdown", touch);
  input.addEventListener("keydown", (e) => {
    if (/^(Arrow|Page|Home|End)/.test(e.key)) touched = true;
  });
  input.addEventListener("keyup", show);
  show();
  return {
    first: () => input,
    read() {
      if (!touched) return { error: "Move the slider to choose a number", focus: input };
      const v = Number(input.value);
      return { json: { value: v }, labels: [valueText(sc, v)] };
    },
  };
}

/**
 * Draws snapshot snap ({counts, mean, median?, voters}) of scale poll p
 * into el as a histogram with the mean.
 */
export function drawHistogram(el, p, snap) {
  const sc = scaleOf(p);
  const counts = Array.isArray(snap.counts) ? snap.counts.map((c) => Number(c) || 0) : [];
  const n = counts.length || sc.steps;
  let box = el.querySelector(".histo");
  if (!box || box.querySelectorAll(".col").length !== n) {
    box = document.createElement("div");
    box.className = "histo";
    const stats = create("p", "stats");
    const plot = create("div", "plot");
    const ol = create("ol", "cols");
    ol.style.setProperty("--n", String(n));
    // Value labels under the columns: all of them up to 21 steps, else the
    // ends, zero and round values, about ten in all.
    const every = n <= 21 ? 1 : [5, 10, 20, 25].find((s) => n / s <= 11) || 50;
    for (let i = 0; i < n; i++) {
      const v = sc.min + i;
      const li = create("li", "col");
      li.dataset.value = String(v);
      const pct = create("span", "col-pct");
      pct.setAttribute("aria-hidden", "true");
      const bar = create("span", "col-bar");
      bar.setAttribute("aria-hidden", "true");
      const x = create("span", "col-x");
      x.setAttribute("aria-hidden", "true");
      if (i === 0 || i === n - 1 || v % every === 0) x.textContent = String(v);
      const sr = create("span", "visually-hidden");
      li.append(pct, bar, x, sr);
      ol.append(li);
    }
    const mean = create("div", "mean-mark");
    mean.setAttribute("aria-hidden", "true");
    const ml = document.createElement("span");
    mean.append(ml);
    plot.append(ol, mean);
    box.append(stats, plot, ends(sc));
    el.replaceChildren(box);
  }
  let top = 0;
  let sum = 0;
  for (const c of counts) {
    top = Math.max(top, c);
    sum += c;
  }
  const cols = box.querySelectorAll(".col");
  cols.forEach((li, i) => {
    const c = counts[i] || 0;
    const share = sum ? c / sum : 0;
    const pct = Math.round(share * 100);
    li.style.setProperty("--share", String(top ? c / top : 0));
    li.querySelector(".col-pct").textContent = n <= MAX_BUTTONS && c ? (pct === 0 ? "<1%" : pct + "%") : "";
    li.lastChild.textContent = valueText(sc, sc.min + i) + ": " + num(c) + (c === 1 ? " vote" : " votes");
    li.dataset.count = String(c);
    li.classList.toggle("lead", c > 0 && c === top);
  });
  const mean = Number(snap.mean);
  const has = sum > 0 && Number.isFinite(mean);
  const stats = box.querySelector(".stats");
  let text = has ? "Average " + mean.toFixed(2) : "No answers yet";
  if (has && snap.median !== undefined && snap.median !== null) text += " · median " + snap.median;
  stats.textContent = text;
  stats.dataset.mean = has ? mean.toFixed(2) : "";
  const mark = box.querySelector(".mean-mark");
  mark.hidden = !has;
  if (has) {
    const at = Math.min(1, Math.max(0, (mean - sc.min + 0.5) / n));
    mark.style.setProperty("--at", String(at));
    mark.classList.toggle("right", at > 0.6);
    mark.firstChild.textContent = "average " + mean.toFixed(2);
  }
}
