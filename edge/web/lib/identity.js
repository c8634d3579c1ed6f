// How a voter of an invite or signed poll gets a voter token (docs/EDGE-API.md,
// "Identity modes"): POST /v1/polls/{id}/token with {"code"} or {"jwt"}.
//
// Secrets never reach a server log: an invite code or a JWT may come in the
// URL fragment (#code=… or #jwt=…), which browsers never send, and the page
// removes it from the address bar (and so from the history) as soon as it
// has read it. A JWT is kept in memory only, never stored.

/** An invite code's symbols: Crockford's base32 (shared/invite). */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** Symbols in a code, and the longest input the edge reads. */
export const CODE_SYMBOLS = 20;
const MAX_INPUT = 64;

/**
 * Reads #code=… and #jwt=… from the fragment and removes the fragment from
 * the address bar (history.replaceState: no new history entry, no reload).
 * Returns {code, jwt} ("" when absent).
 */
export function takeFragment() {
  const hash = location.hash;
  if (!hash || hash.length < 2) return { code: "", jwt: "" };
  const q = new URLSearchParams(hash.slice(1));
  const out = { code: q.get("code") || "", jwt: q.get("jwt") || "" };
  if (out.code || out.jwt) {
    try {
      history.replaceState(history.state, "", location.pathname + location.search);
    } catch {
      location.hash = "";
    }
  }
  return out;
}

/**
 * An invite code as the voter typed it, in canonical form (upper case, no
 * dashes or spaces, I and L read as 1, O as 0), or "" when it cannot be a
 * code: not 20 symbols of the alphabet. The check symbols are the edge's to
 * verify (a 400 then).
 */
export function normalizeCode(s) {
  if (typeof s !== "string" || s.length > MAX_INPUT) return "";
  let out = "";
  for (const ch of s.toUpperCase()) {
    if (ch === "-" || ch === " " || ch === "\t") continue;
    const c = ch === "I" || ch === "L" ? "1" : ch === "O" ? "0" : ch;
    if (!ALPHABET.includes(c)) return "";
    out += c;
  }
  return out.length === CODE_SYMBOLS ? out : "";
}

/** A canonical code in groups of four: 7K3Q-M9XD-W2TB-HZ4R-N8CE. */
export const formatCode = (c) => c.replace(/(.{4})(?=.)/g, "$1-");

/**
 * The origin of the page embedding this one: the browser's own record
 * (location.ancestorOrigins, Chromium and Safari), else the referrer's
 * origin, else "" (then the first message's origin is pinned by the caller).
 */
export function parentOrigin() {
  try {
    const a = location.ancestorOrigins;
    if (a && a.length && a[0] && a[0] !== "null") return a[0];
  } catch {
    // not available
  }
  try {
    if (document.referrer) return new URL(document.referrer).origin;
  } catch {
    // an unparsable referrer
  }
  return "";
}

/** The reason of a 401 from the token call: "expired", "bad_signature", … */
export function jwtReason(message) {
  const m = /JWT refused: ([a-z_]+)/.exec(message || "");
  return m ? m[1] : "";
}
