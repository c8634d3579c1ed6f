// Ranked polls ("kind":"ranked"): the voter ranks 1..max_choices of the
// options, favourite first; results are Borda points with first
// preferences.
//
// Voting: the voter builds a ranking instead of reordering a list that
// starts in the poll's order (which would hand the first options a head
// start from everyone who just presses Vote). Each option is a button that
// adds it at the end of "Your ranking"; in the ranking each item has Move
// up, Move down and Remove buttons, Alt+Arrow Up/Down moves the focused
// item, and a pointer (mouse, pen or finger on the grip) drags it. Every
// change is said in a polite live region ("Red moved to position 1 of 3").
// Moving buttons are never disabled (aria-disabled instead), so focus
// never falls off a button that just stopped applying.
//
// Results: one bar per option, ordered by Borda points, the length
// relative to the leader's points, the first preferences as text.

import { create } from "./dom.js";
import { num } from "./poll.js";

/** How many options a ranked ballot may carry. */
export const rankLimit = (p) => Math.max(1, Math.min(p.max_choices || p.options.length, p.options.length));

export function rankedLegend(p) {
  const k = rankLimit(p);
  return k === 1 ? "Choose your favourite" : k < p.options.length ? "Rank up to " + k + ", favourite first" : "Rank the options, favourite first";
}

function button(cls, text, name) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  if (name) b.setAttribute("aria-label", name);
  return b;
}

/**
 * The ranking controls of the voting form, in box. Returns the ballot (see
 * words.js): read() gives {json: {choices}, labels} or {error, focus}.
 */
export function rankedForm(poll, box) {
  const labels = poll.options.map((o) => o.label);
  const k = rankLimit(poll);
  let order = []; // option indexes, favourite first

  const hint = create("p", "hint");
  hint.id = "rank-hint";
  hint.textContent =
    "Choose options in order of preference, favourite first. To change the order, drag one by its handle " +
    "or use its arrow buttons (or Alt with the arrow keys).";
  const rankTitle = create("p", "sub");
  rankTitle.id = "ranking-title";
  rankTitle.textContent = "Your ranking";
  const ranking = create("ol", "ranking");
  ranking.id = "ranking";
  ranking.setAttribute("aria-labelledby", "ranking-title");
  const empty = create("p", "empty note");
  empty.textContent = "Nothing ranked yet.";
  const poolTitle = create("p", "sub");
  poolTitle.id = "pool-title";
  poolTitle.textContent = k < labels.length ? "Options (choose up to " + k + ")" : "Options";
  const pool = create("ul", "pool");
  pool.id = "pool";
  pool.setAttribute("aria-labelledby", "pool-title");
  const live = create("p", "hint rank-live");
  live.id = "rank-live";
  live.setAttribute("aria-live", "polite");
  box.replaceChildren(hint, rankTitle, ranking, empty, poolTitle, pool, live);

  // One ranking item and one pool button per option, reused, so focus and
  // drags survive redraws.
  const items = labels.map((label, i) => {
    const li = create("li", "ranked");
    li.dataset.option = String(i);
    const grip = create("span", "grip");
    grip.setAttribute("aria-hidden", "true");
    grip.title = "Drag to reorder";
    const pos = create("span", "pos");
    pos.setAttribute("aria-hidden", "true");
    const name = create("span", "label");
    name.textContent = label;
    const moves = create("span", "moves");
    moves.append(
      button("move up", "↑", "Move " + label + " up"),
      button("move down", "↓", "Move " + label + " down"),
      button("move remove", "✕", "Remove " + label + " from your ranking"),
    );
    li.append(grip, pos, name, moves);
    return li;
  });
  const picks = labels.map((label, i) => {
    const li = document.createElement("li");
    const b = button("pick", "", "");
    b.dataset.option = String(i);
    const plus = create("span", "plus");
    plus.setAttribute("aria-hidden", "true");
    plus.textContent = "+";
    const hid = create("span", "visually-hidden");
    hid.textContent = "Rank ";
    b.append(plus, hid, label);
    li.append(b);
    return li;
  });

  const say = (text) => {
    live.textContent = text;
  };

  function draw() {
    ranking.replaceChildren(
      ...order.map((o, r) => {
        const li = items[o];
        li.querySelector(".pos").textContent = String(r + 1);
        const [up, down] = li.querySelectorAll(".move");
        up.setAttribute("aria-disabled", String(r === 0));
        down.setAttribute("aria-disabled", String(r === order.length - 1));
        return li;
      }),
    );
    empty.hidden = order.length > 0;
    const full = order.length >= k;
    pool.replaceChildren(...picks.filter((li, i) => !order.includes(i)));
    for (const li of pool.children) li.firstChild.setAttribute("aria-disabled", String(full));
    pool.hidden = !pool.children.length;
    poolTitle.hidden = pool.hidden;
  }

  const pos = (o) => order.indexOf(o) + 1;
  const movedText = (o) => labels[o] + " moved to position " + pos(o) + " of " + order.length + ".";

  function move(o, to, focusSel) {
    const from = order.indexOf(o);
    to = Math.max(0, Math.min(order.length - 1, to));
    if (to === from) {
      say(labels[o] + (from === 0 ? " is already first." : " is already last."));
      return;
    }
    order.splice(from, 1);
    order.splice(to, 0, o);
    draw();
    if (focusSel) items[o].querySelector(focusSel).focus();
    say(movedText(o));
  }

  pool.addEventListener("click", (e) => {
    const b = e.target.closest(".pick");
    if (!b) return;
    const o = Number(b.dataset.option);
    if (order.length >= k) {
      say("You have ranked " + k + ", the most this poll takes. Remove one to rank another.");
      return;
    }
    const next = b.parentElement.nextElementSibling || b.parentElement.previousElementSibling;
    order.push(o);
    draw();
    const full = order.length >= k;
    // Focus stays in the options while more can be chosen, else goes to
    // the item just ranked.
    if (!full && next) next.firstChild.focus();
    else items[o].querySelector(".up").focus();
    say(labels[o] + " ranked " + pos(o) + (full ? ". Your ranking is complete: you can vote, or change the order." : "."));
  });

  ranking.addEventListener("click", (e) => {
    const b = e.target.closest(".move");
    if (!b) return;
    const o = Number(b.closest("li").dataset.option);
    const r = order.indexOf(o);
    if (b.classList.contains("up")) move(o, r - 1, ".up");
    else if (b.classList.contains("down")) move(o, r + 1, ".down");
    else {
      order.splice(r, 1);
      draw();
      const near = items[order[r]] || items[order[r - 1]];
      if (near) near.querySelector(".remove").focus();
      else if (pool.firstChild) pool.firstChild.firstChild.focus();
      say(labels[o] + " removed from your ranking.");
    }
  });

  ranking.addEventListener("keydown", (e) => {
    if (!e.altKey || (e.key !== "ArrowUp" && e.key !== "ArrowDown")) return;
    const li = e.target.closest("li.ranked");
    if (!li) return;
    e.preventDefault();
    const o = Number(li.dataset.option);
    const cls = [...e.target.classList].find((c) => c === "up" || c === "down" || c === "remove");
    move(o, order.indexOf(o) + (e.key === "ArrowUp" ? -1 : 1), cls ? "." + cls : ".up");
  });

  // Dragging: the pointer is captured by the list (which never moves), the
  // dragged item moves through the list as the pointer passes the middles
  // of the other items.
  let drag = null; // {o, id, from}
  ranking.addEventListener("pointerdown", (e) => {
    const li = e.target.closest("li.ranked");
    if (!li || e.target.closest("button") || e.button !== 0) return;
    // A finger drags by the grip only, so the page still scrolls by touch.
    if (e.pointerType === "touch" && !e.target.closest(".grip")) return;
    e.preventDefault();
    const o = Number(li.dataset.option);
    drag = { o, id: e.pointerId, from: order.indexOf(o) };
    ranking.setPointerCapture(e.pointerId);
    li.classList.add("dragging");
  });
  ranking.addEventListener("pointermove", (e) => {
    if (!drag || e.pointerId !== drag.id) return;
    let to = 0;
    for (const li of ranking.children) {
      if (li === items[drag.o]) continue;
      const r = li.getBoundingClientRect();
      if (r.top + r.height / 2 < e.clientY) to++;
    }
    if (to !== order.indexOf(drag.o)) {
      order.splice(order.indexOf(drag.o), 1);
      order.splice(to, 0, drag.o);
      draw();
    }
  });
  const end = (e) => {
    if (!drag || e.pointerId !== drag.id) return;
    const { o, from } = drag;
    drag = null;
    items[o].classList.remove("dragging");
    if (ranking.hasPointerCapture(e.pointerId)) ranking.releasePointerCapture(e.pointerId);
    if (order.indexOf(o) !== from) say(movedText(o));
  };
  ranking.addEventListener("pointerup", end);
  ranking.addEventListener("pointercancel", end);

  draw();
  return {
    first: () => (order.length ? items[order[0]].querySelector(".up") : pool.querySelector(".pick")),
    read() {
      if (!order.length) return { error: k > 1 ? "Choose at least one option to rank" : "Choose an option", focus: pool.querySelector(".pick") };
      return { json: { choices: order.slice() }, labels: order.map((o) => labels[o]) };
    },
  };
}

/**
 * Draws snapshot snap ({counts: first preferences, borda: points, voters})
 * into el: bars ordered by points. row(i) makes a bar row (results.js).
 */
export function drawRanked(el, labels, snap, row) {
  const borda = Array.isArray(snap.borda) ? snap.borda.map((b) => Number(b) || 0) : [];
  const first = Array.isArray(snap.counts) ? snap.counts.map((c) => Number(c) || 0) : [];
  const n = Math.max(borda.length, first.length);
  let ol = el.querySelector("ol.bars");
  if (!ol || ol.children.length !== n || !ol.classList.contains("ranked-bars")) {
    ol = document.createElement("ol");
    ol.className = "bars ranked-bars";
    for (let i = 0; i < n; i++) ol.append(row(i));
    el.replaceChildren(ol);
  }
  let top = 0;
  for (const b of borda) top = Math.max(top, b);
  const rows = new Map([...ol.children].map((li) => [Number(li.dataset.option), li]));
  const rank = [...rows.keys()].sort((a, b) => (borda[b] || 0) - (borda[a] || 0) || (first[b] || 0) - (first[a] || 0) || a - b);
  for (const i of rank) {
    const li = rows.get(i);
    const p = borda[i] || 0;
    const f = first[i] || 0;
    li.querySelector(".label").textContent = labels[i] || "Option " + (i + 1);
    li.querySelector(".pct").textContent = num(p) + (p === 1 ? " point" : " points");
    li.querySelector(".count").textContent = num(f) + (f === 1 ? " first choice" : " first choices");
    li.querySelector(".fill").style.setProperty("--share", String(top ? p / top : 0));
    li.classList.toggle("lead", p > 0 && p === top);
    li.dataset.points = String(p);
    li.dataset.first = String(f);
  }
  // Reorder only when the order changed (moving nodes restarts nothing
  // but costs layout).
  if (rank.some((i, r) => ol.children[r] !== rows.get(i))) ol.append(...rank.map((i) => rows.get(i)));
}
