// edgepoll Worker glue: ONE Go wasm instance per isolate.
//
// syumai/workers' generated glue (workers-assets-gen) starts a new Go
// instance for every request, so no state survives a request and start-up
// costs more than the request. This glue instantiates the Go program once,
// on the first event (the env bindings only exist then), keeps it running and
// dispatches every fetch and queue event into it:
//
//   fetch(req, env, ctx) → binding.handleRequest(method, url, headers, body,
//                                                 env, ctx, slot)
//   queue(batch, env, ctx) → binding.handleQueue(messages, slot)
//
// Each request passes its own env and ExecutionContext, so concurrent requests
// in the isolate never share per-request handles; Go keeps them in the
// request's context.Context. The request/response crossing is plain values
// (strings, a flat header array, one Uint8Array each way): no streams, no
// per-request js.Func allocations.
//
// If the Go program exits or dies, every pending event is rejected (nothing
// hangs) and the next event starts a fresh instance.
import "./wasm_exec.js";
import wasmModule from "./app.wasm";

let starting; // Promise<{binding, dead}> while an instance is starting or running

function start(env) {
  if (starting !== undefined) {
    return starting;
  }
  const binding = {};
  // syumai/workers' packages read globalThis.context (env and the binding
  // object they register callbacks on) when the Go program initialises.
  // env holds the isolate's bindings and vars, which are the same for every
  // event; per-request handles travel with each call instead.
  globalThis.context = { env, binding };
  const go = new Go();
  let dead; // rejects when the Go program stops: nothing pending may hang
  const died = new Promise((_, reject) => {
    dead = reject;
  });
  died.catch(() => {}); // observed through Promise.race below
  starting = new Promise((resolve, reject) => {
    const instance = new WebAssembly.Instance(wasmModule, {
      ...go.importObject,
      workers: { ready: () => resolve({ binding, died, go }) },
    });
    const stop = (err) => {
      console.error("edgepoll: Go instance stopped:", err && err.stack ? err.stack : String(err));
      starting = undefined; // the next event starts a fresh instance
      reject(err);
      dead(err);
    };
    go.run(instance).then(() => stop(new Error("edgepoll: Go program exited")), stop);
  });
  return starting;
}

// Answers are collected, not pushed. Go runs every goroutine that is ready
// whenever any event enters it, so the goroutine serving request B may finish
// while Go is running on behalf of request A; settling B's promise from A's
// event crosses request contexts, which workerd does not allow (under load it
// brought workerd down). So Go only writes the answer into B's plain "slot"
// object, and B's own interval, running in B's context, picks it up.
//
// The same interval keeps Go's timers alive: Go's timers (the group
// committer's few-millisecond wait) are setTimeouts made in whichever event
// last ran Go, and a Worker cancels a request's timers when it ends, so a
// timer set while serving a finished request would never fire. One waiting
// request at a time (the "ticker") resumes Go whenever Go has a timer
// scheduled; Go then runs every timer that is due.
const tickMillis = 1;
let ticker = null;

// The reverse hazard: a goroutine of request B may START I/O (the group's
// queue send, an origin fetch) while Go runs in request A's event, so that
// I/O belongs to A, and a Worker cancels a request's outstanding I/O when the
// request ends. So a request that finishes while others are still being
// served keeps its context open (waitUntil) until those have finished too,
// bounded by lingerMillis.
const lingerMillis = 10000;

// No event waits on Go forever: past these deadlines a request gets a 503 and
// a queue delivery is retried (the vote or batch is then unacknowledged,
// never silently lost).
const requestDeadlineMillis = 15000;
const queueDeadlineMillis = 60000;
const serving = new Set(); // slots of the events Go is serving

function newSlot() {
  const slot = { done: false, value: undefined, error: undefined, finished: null, finish: null };
  slot.finished = new Promise((resolve) => {
    slot.finish = resolve;
  });
  serving.add(slot);
  return slot;
}

function release(slot, ctx) {
  serving.delete(slot);
  slot.finish();
  if (serving.size > 0 && ctx && typeof ctx.waitUntil === "function") {
    const others = [...serving].map((s) => s.finished);
    let timer;
    const linger = new Promise((resolve) => {
      timer = setTimeout(resolve, lingerMillis);
    });
    ctx.waitUntil(Promise.race([Promise.all(others), linger]).then(() => clearTimeout(timer)));
  }
}

function awaitSlot(go, slot, deadlineMillis) {
  return new Promise((resolve) => {
    const me = {};
    const deadline = Date.now() + deadlineMillis;
    const id = setInterval(() => {
      if (!slot.done && Date.now() > deadline) {
        slot.error = new Error("edgepoll: no answer from Go within " + deadlineMillis + " ms");
        slot.timedOut = true;
        slot.done = true;
      }
      if (slot.done) {
        clearInterval(id);
        if (ticker === me) {
          ticker = null;
        }
        resolve();
        return;
      }
      if (ticker === null) {
        ticker = me;
      }
      if (ticker === me && go._scheduledTimeouts.size > 0 && !go.exited) {
        go._resume();
      }
    }, tickMillis);
  });
}

const nullBodyStatus = new Set([101, 204, 205, 304]);

async function fetch(req, env, ctx) {
  const { binding, died, go } = await start(env);
  const method = req.method;
  let body = null;
  if (method !== "GET" && method !== "HEAD" && req.body !== null) {
    body = new Uint8Array(await req.arrayBuffer());
  }
  const headers = [];
  for (const [name, value] of req.headers) {
    headers.push(name, value);
  }
  const slot = newSlot();
  try {
    binding.handleRequest(method, req.url, headers, body, env, ctx, slot);
    // A handler that needs no I/O has answered before handleRequest returns.
    if (!slot.done) {
      await Promise.race([awaitSlot(go, slot, requestDeadlineMillis), died]);
    }
  } finally {
    release(slot, ctx);
  }
  if (slot.timedOut) {
    console.error(slot.error.message, method, req.url);
    return new Response('{"error":{"code":"unavailable","message":"the edge did not answer in time; try again"}}', {
      status: 503,
      headers: { "Content-Type": "application/json", "Retry-After": "1", "Cache-Control": "no-store" },
    });
  }
  if (slot.error !== undefined) {
    throw slot.error;
  }
  const [status, outHeaders, outBody] = slot.value;
  const h = new Headers();
  for (let i = 0; i < outHeaders.length; i += 2) {
    h.append(outHeaders[i], outHeaders[i + 1]);
  }
  return new Response(nullBodyStatus.has(status) || method === "HEAD" ? null : outBody, {
    status,
    headers: h,
  });
}

async function queue(batch, env, ctx) {
  const { binding, died, go } = await start(env);
  // Go reads every message body now, posts the batches and writes one verdict
  // per message into the slot: 0 = ack, n > 0 = retry after n seconds. The
  // acks and retries are applied here, in the queue event's own context.
  const slot = newSlot();
  try {
    binding.handleQueue(batch.messages, slot);
    if (!slot.done) {
      await Promise.race([awaitSlot(go, slot, queueDeadlineMillis), died]);
    }
  } finally {
    release(slot, ctx);
  }
  if (slot.error !== undefined) {
    throw slot.error; // every message is delivered again
  }
  const verdicts = slot.value;
  batch.messages.forEach((m, i) => {
    if (verdicts[i] === 0) {
      m.ack();
    } else {
      m.retry({ delaySeconds: verdicts[i] });
    }
  });
}

export default { fetch, queue };
