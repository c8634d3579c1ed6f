// The voter API client shared by the voting page and the big screen.
//
// Plain fetch, no library: the whole client is a few hundred bytes, and a
// page opened by millions of people on phones should parse as little script
// as possible. The rules it follows are those of docs/EDGE-API.md:
//
//   - The voter token travels only as `Authorization: Bearer <token>`, with
//     credentials "omit". The cookie the edge also sets is never relied on:
//     inside another site's iframe it is a third-party cookie, which Safari
//     blocks and Firefox partitions.
//   - 429 carries Retry-After (whole seconds): wait exactly that long.
//   - 503 means nothing was recorded and a retry is safe: exponential
//     backoff with full jitter (AWS's "full jitter": a random delay between
//     0 and min(cap, base·2^attempt)), so a million phones that failed
//     together do not come back together.
//   - A fetch that throws is a network failure: wait for the browser's
//     "online" event when it says it is offline, else back off as for 503.

/** Backoff base and cap for 503 and network failures, in milliseconds. */
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 8000;

/** Full-jitter delay in ms for the given attempt (0, 1, 2, …). */
export function backoff(attempt) {
  return Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
}

/** Seconds from a Retry-After header (seconds form), clamped to 1..300. */
export function retryAfter(res) {
  const s = parseInt(res.headers.get("Retry-After") || "", 10);
  return s > 0 ? Math.min(s, 300) : 1;
}

/** The base path of a poll's API. */
export const pollPath = (id) => "/v1/polls/" + id;

/**
 * One HTTP request. Resolves to {status, body, res}: body is the parsed JSON
 * (or null), and for errors body.error is {code, message}. Throws only when
 * the network failed (fetch threw).
 */
export async function call(path, { method = "GET", token, json, etag } = {}) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  if (etag) headers["If-None-Match"] = etag;
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    credentials: "omit",
    cache: "no-store",
  });
  let body = null;
  if (res.status !== 204 && res.status !== 304) {
    try {
      body = await res.json();
    } catch {
      body = null;
    }
  }
  return { status: res.status, body, res };
}

/** The error code of a failed call ("" when none was given). */
export const errCode = (r) => (r.body && r.body.error && r.body.error.code) || "";
/** The error message of a failed call ("" when none was given). */
export const errMessage = (r) => (r.body && r.body.error && r.body.error.message) || "";

/** Resolves after ms milliseconds. */
export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Resolves when the browser reports it is back online (or after maxMs). */
export function whenOnline(maxMs) {
  return new Promise((ok) => {
    const done = () => {
      removeEventListener("online", done);
      clearTimeout(t);
      ok();
    };
    addEventListener("online", done);
    const t = setTimeout(done, maxMs);
  });
}

/**
 * call(), retried through what the docs say is safe to retry: network
 * failures, 429 and 503. onWait(kind, seconds, attempt) tells the page what
 * is happening, with kind "offline", "busy" (429) or "unavailable" (503).
 * Every other answer, success or not, is returned.
 */
export async function callRetrying(path, opts, onWait) {
  for (let attempt = 0; ; attempt++) {
    let r;
    try {
      r = await call(path, opts);
    } catch {
      r = null;
    }
    if (r === null) {
      if (!navigator.onLine) {
        onWait("offline", 0, attempt);
        await whenOnline(30000);
      } else {
        const ms = backoff(attempt);
        onWait("offline", Math.ceil(ms / 1000), attempt);
        await sleep(ms);
      }
      continue;
    }
    if (r.status === 429) {
      const s = retryAfter(r.res);
      onWait("busy", s, attempt);
      await sleep(s * 1000);
      continue;
    }
    if (r.status === 503) {
      const ms = backoff(attempt);
      onWait("unavailable", Math.ceil(ms / 1000), attempt);
      await sleep(ms);
      continue;
    }
    return r;
  }
}
