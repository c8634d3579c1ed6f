// Per-poll memory in localStorage: the voter token and the voter's own vote.
//
// Keys: "edgepoll:token:{id}" holds the token string; "edgepoll:vote:{id}"
// holds {choices:[index…], labels:[text…], receipt, at, kind} (receipt may
// be "" when the edge answered 409 and the receipt is not known yet; labels
// are the options in order, or the scale value or words as shown).
// Storage can be unavailable (private modes, or blocked third-party storage
// inside an iframe): then a Map stands in and nothing survives a reload,
// which costs a new token (a new voter id) on reload and nothing else.

const mem = new Map();

function get(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return mem.has(key) ? mem.get(key) : null;
  }
}

function set(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    if (value === null) mem.delete(key);
    else mem.set(key, value);
  }
}

export const loadToken = (id) => get("edgepoll:token:" + id) || "";
export const saveToken = (id, token) => set("edgepoll:token:" + id, token || null);

export function loadVote(id) {
  try {
    const v = JSON.parse(get("edgepoll:vote:" + id) || "null");
    if (!v || !Array.isArray(v.choices)) return null;
    return { choices: v.choices, labels: Array.isArray(v.labels) ? v.labels : [], receipt: String(v.receipt || ""), at: v.at, kind: String(v.kind || "") };
  } catch {
    return null;
  }
}

export const saveVote = (id, vote) => set("edgepoll:vote:" + id, vote ? JSON.stringify(vote) : null);
