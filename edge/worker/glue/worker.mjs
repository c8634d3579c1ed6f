// edgepoll Worker glue: ONE Go wasm instance per isolate.
//
// syumai/workers' generated glue (workers-assets-gen) starts a new Go
// instance for every request, so no state survives a request and start-up
// costs more than the request. This glue instantiates the Go program once,
// on the first event (the env bindings only exist then), keeps it running and
// dispatches every fetch and queue event into it (edge/worker/serve_js.go is
// the Go side).
//
// Crossing cost. A request is written as ONE packed frame straight into a
// scratch buffer in Go's memory and announced with one plain WebAssembly
// export call, ep_request(id, headLen, bodyLen) (a js.FuncOf callback would
// cost several js.Values with finalizers); the answer comes back as ONE
// frame through a plain WebAssembly import, respond(id, ptr, len). No header
// travels as its own JS value (each js.Value on the Go side costs a
// finalizer); the frame layout is documented in edge/worker/wire.go.
//
// Request contexts. A Worker ties I/O, timers and promise continuations to
// the request (IoContext) whose code created them. Go runs every ready
// goroutine whenever any event resumes it, so the goroutine of request B may
// finish, or want to start I/O, while Go runs on behalf of request A. Hence:
//   - Go never settles anything and does no I/O itself. It records answers
//     (respond) and I/O requests (io) in B's slot, as plain bytes.
//   - B's own fetch() picks them up, in B's own context: it polls its slot on
//     a short timer of its own (pollMillis) until Go has answered. It does
//     NOT wait for a promise resolved from another request: workerd's
//     cross-request promise resolution was measured here to run such a
//     continuation in the wrong context now and then, under load ("Cannot
//     perform I/O on behalf of a different request" for B's queue send and
//     B's Response), and polling own timers also cost less CPU than those
//     cross-context wake-ups.
//   - What B needs done (the group commit's queue send, an origin fetch, a
//     Cache API read or write, the rate limiter) B performs WHOLE in its own
//     context (a fetch including reading its body) and hands Go the bytes.
//     Go never holds a stream, a Response or a promise of any request.
//   - Go's timers (the group committer's few-millisecond wait) run when a
//     waiting event's poll finds one due: a waiting event always exists
//     while Go waits on a timer for a request, and any other Go timer is run
//     by the next event that enters Go.
//
// If the Go program exits or dies, every pending event fails (nothing hangs)
// and the next event starts a fresh instance.
//
// TinyGo. The same glue runs a TinyGo build (scripts/build-edge.sh tinygo,
// with syumai/workers' wasm_exec_tinygo.js shim). What differs: the memory
// export is "memory" (Go: "mem"); Go's scheduler is run by the export
// go_scheduler; its timers arrive as runtime.sleepTicks, which the shim
// would serve with a setTimeout of whichever request is running (the
// cross-request trap): the glue takes it over like Go's timeout events, so
// TinyGo's timers too only run from a waiting event's own poll. recover()
// does nothing in TinyGo on wasm: a panic traps the instance. Every call
// into Go goes through enter(), which notices a dead instance, fails the
// events it was serving (500, logged) and lets the next event start afresh.
import "./wasm_exec.js";
import wasmModule from "./app.wasm";
import { observe } from "./observe.mjs";

// No event waits on Go forever: past these deadlines a request gets a 503 and
// a queue delivery is retried (the vote or batch is then unacknowledged,
// never silently lost).
const requestDeadlineMillis = 15000;
const queueDeadlineMillis = 60000;
const votesBinding = "VOTES"; // edge/worker.BindingVotes
const rateLimiterBinding = "RATE_LIMITER"; // edge/worker.BindingRateLimiter

// The request headers the Go handler reads (edge.RequestHeaders, checked by
// a test): only these cross. Iterating every header of a request (a browser
// and Cloudflare send dozens) cost more than the rest of a cached read.
const requestHeaders = ["accept", "authorization", "cf-connecting-ip", "content-type", "cookie", "if-none-match", "origin"];

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const nullBodyStatus = new Set([101, 204, 205, 304]);

let instance; // the running instance, once started
let starting; // Promise<instance> while starting

// Per-event state lives in slots, keyed by a small integer id that Go holds.
const slots = new Map();
let nextId = 1;

class Slot {
  constructor(env, ctx) {
    this.id = nextId++;
    if (nextId > 0x7fffffff) {
      nextId = 1;
    }
    this.env = env;
    this.ctx = ctx;
    this.alive = true;
    this.answer = null; // Uint8Array frame copied from Go, or an Error
    this.ops = []; // work Go asked this context to do
    this.timedOut = false;
    slots.set(this.id, this);
  }
}

// ---- Go's timers -------------------------------------------------------
// Go keeps at most a couple of timeout events; each records when Go wants to
// run again. Waiting events run them (see waitFor).
const goTimers = new Map(); // Go's timeout id → due (ms since epoch)
let nextTimerId = 1;

function earliestDue() {
  let due = Infinity;
  for (const d of goTimers.values()) {
    due = Math.min(due, d);
  }
  return due;
}

// runDueTimers resumes Go when one of its timeouts is due. Its caller is a
// waiting event, so Go runs from that event's own context.
function runDueTimers(inst) {
  if (goTimers.size === 0 || !live(inst)) {
    return;
  }
  const now = Date.now();
  const due = [];
  for (const [id, d] of goTimers) {
    if (d <= now) {
      due.push(id);
    }
  }
  if (due.length > 0) {
    // Go clears a timeout it has handled; never fire one twice.
    for (const id of due) {
      goTimers.delete(id);
    }
    wake(inst);
  }
}

// live reports whether inst is the running instance.
function live(inst) {
  return instance === inst && !inst.dead && !inst.go.exited;
}

// enter calls into Go (an export, or the scheduler). Should Go die there (a
// TinyGo panic traps; a Go program may exit), the instance is dropped and
// every event it was serving fails; enter then returns undefined.
function enter(inst, call) {
  if (inst.dead) {
    return undefined;
  }
  try {
    return call();
  } catch (e) {
    inst.stop(e);
    return undefined;
  }
}

// wake runs every ready goroutine until all are idle.
function wake(inst) {
  enter(inst, inst.tiny ? () => inst.go._inst.exports.go_scheduler() : () => inst.go._resume());
}

function memory() {
  const ex = instance.go._inst.exports;
  return (ex.mem ?? ex.memory).buffer; // Go: mem, TinyGo: memory
}

function start(env) {
  if (starting !== undefined) {
    return starting;
  }
  const binding = {}; // Go registers handleQueue here
  // syumai/workers' packages read globalThis.context (env and the binding
  // object) when the Go program initialises. env holds the isolate's
  // bindings and vars, the same for every event.
  globalThis.context = { env, binding };
  const go = new Go();
  const gojs = go.importObject.gojs;
  // TinyGo's shim has sleepTicks where Go's has scheduleTimeoutEvent.
  const tiny = gojs["runtime.sleepTicks"] !== undefined;
  const inst = { go, binding, tiny, dead: false, stop: null, exports: null, scratchPtr: 0, scratchLen: 0, view: null };
  if (tiny) {
    // TinyGo's syscall/js reads _pendingEvent on every resume: null, not
    // undefined, means "no callback event".
    go._pendingEvent = null;
    // TinyGo asks to be resumed after timeout nanoseconds: a Go timer, run
    // by a waiting event (runDueTimers), never by the shim's setTimeout.
    gojs["runtime.sleepTicks"] = (timeout) => {
      goTimers.set(nextTimerId++, Date.now() + Math.max(0, Number(timeout) / 1e6));
    };
    // Go 1.24+'s crypto/internal/sysrand imports this; the shim (written
    // for older TinyGo) lacks it. TinyGo passes the slice as ptr, len, cap.
    gojs["runtime.getRandomData"] ??= (ptr, len) => {
      crypto.getRandomValues(new Uint8Array(go._inst.exports.memory.buffer, ptr >>> 0, len >>> 0));
    };
  }
  // Go's timers: see runDueTimers.
  gojs["runtime.scheduleTimeoutEvent"] = (sp) => {
    sp >>>= 0;
    const delay = go.mem.getUint32(sp + 8, true) + go.mem.getInt32(sp + 12, true) * 4294967296;
    const id = nextTimerId++;
    goTimers.set(id, Date.now() + delay);
    go.mem.setInt32(sp + 16, id, true);
  };
  gojs["runtime.clearTimeoutEvent"] = (sp) => {
    sp >>>= 0;
    goTimers.delete(go.mem.getInt32(sp + 8, true));
  };
  starting = new Promise((resolve, reject) => {
    const wasm = new WebAssembly.Instance(wasmModule, {
      ...go.importObject,
      workers: {
        ready: () => {
          instance = inst;
          resolve(inst);
        },
      },
      edgepoll: {
        scratch: (ptr, len) => {
          inst.scratchPtr = ptr >>> 0;
          inst.scratchLen = len >>> 0;
          inst.view = null;
        },
        respond: (id, ptr, len) => {
          const s = slots.get(id);
          if (s === undefined || !s.alive || s.answer !== null) {
            return; // timed out or gone
          }
          s.answer = new Uint8Array(memory(), ptr >>> 0, len >>> 0).slice();
        },
        io: (id, op, kind, ptr, len) => {
          const s = slots.get(id);
          if (s === undefined || !s.alive) {
            return 0;
          }
          s.ops.push({ op, kind, body: new Uint8Array(memory(), ptr >>> 0, len >>> 0).slice() });
          return 1;
        },
      },
    });
    inst.exports = wasm.exports;
    const stop = (err) => {
      if (inst.dead) {
        return;
      }
      inst.dead = true;
      console.error(JSON.stringify({
        level: "ERROR", msg: "edgepoll: Go instance stopped; the next event starts a fresh one", service: "edgepoll-edge",
        edge: env.EDGE_ID || "cf", err: err && err.stack ? err.stack : String(err),
      }));
      if (instance === inst || instance === undefined) {
        starting = undefined; // the next event starts a fresh instance
        instance = undefined;
        goTimers.clear();
      }
      reject(err);
      for (const s of slots.values()) {
        if (s.answer === null) {
          s.answer = err instanceof Error ? err : new Error(String(err));
        }
      }
    };
    inst.stop = stop;
    // syumai's TinyGo shim takes the context (env, binding) as run's second
    // argument; Go's ignores it.
    go.run(wasm, globalThis.context).then(() => stop(new Error("edgepoll: Go program exited")), stop);
  });
  return starting;
}

// ---- I/O on Go's behalf ------------------------------------------------
// Go never starts I/O, awaits a promise or reads a stream itself: a goroutine
// may run while another event's context is current, and workerd refuses I/O
// objects used from a context other than their own ("Cannot perform I/O on
// behalf of a different request"). Go asks; the owning event performs the
// whole operation here, from its own context, and hands back plain bytes.
// The kinds and frames are edge/worker/wire.go's ioKind and frames.
const ioSend = 1;
const ioFetch = 2;
const ioCacheMatch = 3;
const ioCachePut = 4;
const ioLimit = 5;
const maxFetchBody = 8 << 20;

// ioRequest decodes an I/O request frame: u32 headLen, "METHOD\nURL\nname\nvalue…", body.
function ioRequest(frame) {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const headLen = dv.getUint32(0, true);
  const parts = decoder.decode(frame.subarray(4, 4 + headLen)).split("\n");
  const headers = new Headers();
  for (let i = 2; i + 1 < parts.length; i += 2) {
    headers.append(parts[i], parts[i + 1]);
  }
  return { method: parts[0], url: parts[1], headers, body: frame.subarray(4 + headLen) };
}

// responseFrame encodes a status, headers and body as a response frame.
function responseFrame(status, headers, body) {
  let head = "";
  if (headers !== undefined) {
    for (const [name, value] of headers) {
      head += (head === "" ? "" : "\n") + name + "\n" + value;
    }
  }
  const hb = encoder.encode(head);
  const out = new Uint8Array(8 + hb.length + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, status, true);
  dv.setUint32(4, hb.length, true);
  out.set(hb, 8);
  out.set(body, 8 + hb.length);
  return out;
}

const empty = new Uint8Array(0);

async function readResponse(res) {
  const body = new Uint8Array(await res.arrayBuffer());
  if (body.length > maxFetchBody) {
    throw new Error("response of " + body.length + " bytes is too large");
  }
  return responseFrame(res.status, res.headers, body);
}

// perform does one I/O operation for slot; it resolves to the answer bytes
// (or null).
async function perform(slot, kind, body) {
  switch (kind) {
    case ioSend:
      await slot.env[votesBinding].send(body, { contentType: "bytes" });
      return null;
    case ioFetch: {
      const r = ioRequest(body);
      const init = { method: r.method, headers: r.headers, redirect: "manual" };
      if (r.body.length > 0) {
        init.body = r.body;
      }
      return readResponse(await globalThis.fetch(r.url, init));
    }
    case ioCacheMatch: {
      const res = await caches.default.match(decoder.decode(body));
      return res === undefined ? responseFrame(404, undefined, empty) : readResponse(res);
    }
    case ioCachePut: {
      const r = ioRequest(body);
      const p = caches.default.put(r.url, new Response(r.body, { headers: r.headers }));
      slot.ctx.waitUntil(p.catch((e) => console.error("edgepoll: cache put failed:", String(e))));
      return null;
    }
    case ioLimit: {
      const rl = slot.env[rateLimiterBinding];
      const { success } = await rl.limit({ key: decoder.decode(body) });
      return responseFrame(success ? 200 : 429, undefined, empty);
    }
  }
  throw new Error("unknown I/O kind " + kind);
}

// runOps does, in slot's own context, what Go asked of it, and reports each
// outcome to Go from this context.
function runOps(slot, inst) {
  const ops = slot.ops;
  slot.ops = [];
  for (const { op, kind, body } of ops) {
    let p;
    try {
      p = perform(slot, kind, body);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (answer) => done(slot, inst, op, null, answer),
      (e) => done(slot, inst, op, String(e && e.message ? e.message : e), null),
    );
  }
}

// done hands an operation's outcome to Go: the answer bytes go through the
// scratch buffer, which Go copies before ep_op_done returns.
function done(slot, inst, op, err, answer) {
  if (op === 0 || !live(inst)) {
    return;
  }
  const bytes = err !== null ? encoder.encode(err) : answer;
  let n = 0;
  if (bytes !== null && bytes.length > 0) {
    const view = ensureScratch(inst, bytes.length);
    if (view === undefined) {
      return;
    }
    view.set(bytes);
    n = bytes.length;
  }
  enter(inst, () => inst.exports.ep_op_done(op, n, err !== null ? 1 : 0));
  wake(inst); // run the goroutines the answer woke
}

// pollMillis is how often a waiting event looks at its slot. A vote waits
// for its group (a few milliseconds) and the group's queue send.
const pollMillis = 1;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// waitFor serves slot from its own context until Go has answered it, or
// deadlineMillis have passed.
async function waitFor(slot, inst, deadlineMillis) {
  const deadline = Date.now() + deadlineMillis;
  for (;;) {
    if (slot.ops.length > 0) {
      runOps(slot, inst);
    }
    if (slot.answer !== null) {
      return;
    }
    if (Date.now() >= deadline) {
      slot.answer = new Error("edgepoll: no answer from Go within " + deadlineMillis + " ms");
      slot.timedOut = true;
      return;
    }
    runDueTimers(inst);
    if (slot.answer !== null || slot.ops.length > 0) {
      continue;
    }
    // Wake for Go's next timer (the group commit's window) on time.
    let ms = pollMillis;
    if (goTimers.size > 0) {
      ms = Math.max(0, Math.min(ms, earliestDue() - Date.now()));
    }
    await sleep(ms);
  }
}

function release(slot) {
  slot.alive = false;
  slots.delete(slot.id);
}

function internalError() {
  return new Response('{"error":{"code":"internal","message":"internal error"}}', {
    status: 500,
    headers: { "Content-Type": "application/json", "Cache-Control": "no-store" },
  });
}

function busy() {
  return new Response('{"error":{"code":"unavailable","message":"the edge did not answer in time; try again"}}', {
    status: 503,
    headers: { "Content-Type": "application/json", "Retry-After": "1", "Cache-Control": "no-store" },
  });
}

function ensureScratch(inst, need) {
  if (need > inst.scratchLen) {
    enter(inst, () => inst.exports.ep_grow(need));
  }
  if (inst.dead) {
    return undefined;
  }
  if (inst.view === null || inst.view.byteLength === 0) {
    inst.view = new Uint8Array(memory(), inst.scratchPtr, inst.scratchLen);
  }
  return inst.view;
}

// ---- The audience's pages and the results stream ------------------------
// Workers Static Assets serve /assets/* and /embed.js without running this
// Worker (their headers come from the build's _headers file). The pages'
// paths carry a poll id, so they reach the Worker, which serves the built
// HTML from the ASSETS binding with the pages' headers (edge.PageCSP and
// the constants beside it, edge/pages.go; a test compares the two).
const pagePath = /^\/p\/([A-Za-z0-9_-]{1,64})(\/screen)?\/?$/;
const streamPath = /^\/v1\/polls\/([A-Za-z0-9_-]{1,64})\/stream$/;

function pageCSP(allowed) {
  let anc = "'self'";
  for (let o of String(allowed ?? "").split(",")) {
    o = o.trim().replace(/\/$/, "");
    if (o === "*") {
      anc = "*";
      break;
    }
    if (o !== "") {
      anc += " " + o;
    }
  }
  return [
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors " + anc,
  ].join("; ");
}

async function page(req, env, file) {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response('{"error":{"code":"invalid","message":"method ' + req.method.slice(0, 16) + ' not allowed; use GET or HEAD"}}', {
      status: 405, headers: { "Content-Type": "application/json", Allow: "GET, HEAD" },
    });
  }
  const res = await env.ASSETS.fetch(new Request(new URL("/" + file, req.url), { method: req.method, headers: req.headers }));
  const headers = new Headers(res.headers);
  headers.set("Cache-Control", "public, max-age=60"); // edge.PageCacheControl
  headers.set("Content-Security-Policy", pageCSP(env.ALLOWED_ORIGINS));
  headers.set("X-Content-Type-Options", "nosniff");
  headers.set("Referrer-Policy", "strict-origin-when-cross-origin"); // edge.ReferrerPolicy
  return new Response(res.body, { status: res.status, headers });
}

// The stream's timing: wasm/stream's Interval, Lifetime, Heartbeat, RetryMillis.
const streamIntervalMillis = 1000;
const streamLifetimeMillis = 5 * 60 * 1000;
const streamHeartbeatMillis = 15000;
const streamRetryMillis = 2000;

// stream answers GET /v1/polls/{id}/stream (docs/EDGE-API.md). It reads the
// results through the Go handler, from the same cache as the results route,
// once a second, and sends an event when the version changes. Every read
// and timer is this request's own: the loop runs in its context.
async function stream(req, env, ctx, id) {
  if (req.method !== "GET") {
    return new Response('{"error":{"code":"invalid","message":"method ' + req.method.slice(0, 16) + ' not allowed; use GET"}}', {
      status: 405, headers: { "Content-Type": "application/json", Allow: "GET" },
    });
  }
  const resultsURL = new URL("/v1/polls/" + id + "/results", req.url).toString();
  const origin = req.headers.get("origin");
  const read = (etag) => {
    const h = { accept: "application/json" };
    if (etag) {
      h["if-none-match"] = etag;
    }
    if (origin !== null) {
      h.origin = origin;
    }
    return serveGo(new Request(resultsURL, { headers: h }), env, ctx);
  };
  const first = await read("");
  const body = first.status === 200 ? await first.text() : null;
  let version;
  try {
    version = body === null ? undefined : JSON.parse(body).version;
  } catch {
    version = undefined;
  }
  if (version === undefined) {
    return body === null ? first : new Response(body, first);
  }
  const headers = new Headers();
  for (const [k, v] of first.headers) {
    if (k.startsWith("access-control-") || k === "vary") {
      headers.set(k, v);
    }
  }
  headers.set("Content-Type", "text/event-stream; charset=utf-8");
  headers.set("Cache-Control", "no-store");
  const { readable, writable } = new TransformStream();
  const writer = writable.getWriter();
  const event = (v, text) => "id: " + v + "\n" + text.split("\n").map((l) => "data: " + l).join("\n") + "\n\n";
  const last = req.headers.get("last-event-id");
  const loop = async () => {
    let etag = first.headers.get("etag") ?? "";
    let quiet = Date.now();
    const end = quiet + streamLifetimeMillis;
    try {
      await writer.write(encoder.encode("retry: " + streamRetryMillis + "\n\n" + (last === String(version) ? "" : event(version, body))));
      while (Date.now() < end) {
        await sleep(streamIntervalMillis);
        let out = "";
        try {
          const r = await read(etag);
          if (r.status === 200) {
            const text = await r.text();
            const v = JSON.parse(text).version;
            if (v !== version) {
              version = v;
              etag = r.headers.get("etag") ?? "";
              out = event(v, text);
            }
          }
        } catch (e) {
          console.error("edgepoll: stream read failed:", String(e));
        }
        if (out === "" && Date.now() - quiet >= streamHeartbeatMillis) {
          out = ": keep-alive\n\n";
        }
        if (out !== "") {
          await writer.write(encoder.encode(out));
          quiet = Date.now();
        }
      }
      await writer.close();
    } catch {
      // The client went away.
    }
  };
  ctx.waitUntil(loop());
  return new Response(readable, { status: 200, headers });
}

// urlPath is req.url's path without parsing the whole URL (every request
// pays for this check).
function urlPath(u) {
  const i = u.indexOf("/", u.indexOf("//") + 2);
  if (i < 0) {
    return "/";
  }
  const q = u.indexOf("?", i);
  const h = u.indexOf("#", i);
  const end = q >= 0 ? q : h >= 0 ? h : u.length;
  return u.slice(i, end);
}

async function fetch(req, env, ctx) {
  const path = urlPath(req.url);
  // Votes and results, the hot paths, skip both patterns on their first bytes.
  if (path.startsWith("/p/") && env.ASSETS !== undefined) {
    const m = pagePath.exec(path);
    if (m !== null) {
      return page(req, env, m[2] ? "screen.html" : "vote.html");
    }
  } else if (path.endsWith("/stream")) {
    const m = streamPath.exec(path);
    if (m !== null) {
      return stream(req, env, ctx, m[1]);
    }
  }
  return serveGo(req, env, ctx, path);
}

// serveGo has the Go handler answer req (whose URL path is path).
async function serveGo(req, env, ctx, path) {
  const began = Date.now();
  const inst = instance ?? (await start(env));
  const method = req.method;
  let body = null;
  if (method !== "GET" && method !== "HEAD" && req.body !== null) {
    body = new Uint8Array(await req.arrayBuffer());
  }
  let head = method + "\n" + req.url;
  const hs = req.headers;
  for (const name of requestHeaders) {
    const value = hs.get(name);
    if (value !== null) {
      head += "\n" + name + "\n" + value;
    }
  }
  const bodyLen = body === null ? 0 : body.length;
  const slot = new Slot(env, ctx);
  try {
    let view = ensureScratch(inst, head.length * 3 + bodyLen);
    if (view !== undefined) {
      const { written } = encoder.encodeInto(head, view);
      if (bodyLen > 0) {
        view.set(body, written);
      }
      enter(inst, () => inst.exports.ep_request(slot.id, written, bodyLen));
      wake(inst); // serve it: Go runs until every goroutine is idle
    }
    // A handler that needs no I/O has answered before Go yields.
    if (slot.answer === null || slot.ops.length > 0) {
      await waitFor(slot, inst, requestDeadlineMillis);
    }
  } finally {
    release(slot);
  }
  const a = slot.answer;
  if (slot.timedOut) {
    console.error(JSON.stringify({ level: "ERROR", msg: a.message, service: "edgepoll-edge", edge: env.EDGE_ID || "cf", method, path }));
    observe(env, req, path, 503, null, Date.now() - began);
    return busy();
  }
  if (a instanceof Error) {
    // The instance died serving this event (a TinyGo panic traps it): this
    // request gets a 500; the next one starts a fresh instance.
    console.error(JSON.stringify({ level: "ERROR", msg: "edgepoll: request failed: " + a.message, service: "edgepoll-edge", edge: env.EDGE_ID || "cf", method, path, status: 500 }));
    observe(env, req, path, 500, null, Date.now() - began);
    return internalError();
  }
  const dv = new DataView(a.buffer, a.byteOffset, a.byteLength);
  const status = dv.getUint16(0, true);
  const headLen = dv.getUint32(4, true);
  if (status === 0) {
    throw new Error(decoder.decode(a.subarray(8 + headLen)));
  }
  // A Headers object filled with append (what the constructor does with a
  // list of pairs, duplicates and order kept): converting a list of pairs
  // cost more, ≈ 6 µs per answer of six headers in plain workerd
  // (BENCHMARKS.md, plain workerd and the sound time budget).
  const headers = new Headers();
  if (headLen > 0) {
    const parts = decoder.decode(a.subarray(8, 8 + headLen)).split("\n");
    for (let i = 0; i + 1 < parts.length; i += 2) {
      headers.append(parts[i], parts[i + 1]);
    }
  }
  const noBody = nullBodyStatus.has(status) || method === "HEAD";
  const out = a.subarray(8 + headLen);
  observe(env, req, path, status, out, Date.now() - began);
  return new Response(noBody ? null : out, { status, headers });
}

async function queue(batch, env, ctx) {
  const inst = instance ?? (await start(env));
  // Go reads every message body now, posts the batches and answers with one
  // verdict per message: 0 = ack, n > 0 = retry after n seconds. The acks
  // and retries are applied here, in the queue event's own context.
  const slot = new Slot(env, ctx);
  try {
    enter(inst, () => inst.binding.handleQueue(slot.id, batch.messages));
    wake(inst);
    if (slot.answer === null || slot.ops.length > 0) {
      await waitFor(slot, inst, queueDeadlineMillis);
    }
  } finally {
    release(slot);
  }
  const a = slot.answer;
  if (a instanceof Error) {
    throw a; // every message is delivered again
  }
  const dv = new DataView(a.buffer, a.byteOffset, a.byteLength);
  const status = dv.getUint16(0, true);
  const off = 8 + dv.getUint32(4, true);
  if (status === 0) {
    throw new Error(decoder.decode(a.subarray(off)));
  }
  batch.messages.forEach((m, i) => {
    const secs = off + 4 * i + 4 <= a.byteLength ? dv.getUint32(off + 4 * i, true) : 1;
    if (secs === 0) {
      m.ack();
    } else {
      m.retry({ delaySeconds: secs });
    }
  });
}

export default { fetch, queue };
