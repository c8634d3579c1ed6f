// Profiling aid for bench-edge (a benchmark fixture): samples V8's CPU
// profiler of a workerd service through its inspector for a while and
// prints the functions with the most self time. Start workerd with
// `--inspector-addr=127.0.0.1:PORT`, put load on the service, then
//   node edge/worker/bench/workerd/profile.mjs PORT SERVICE SECONDS [TOP]
// Go functions have names when app.wasm is built without -ldflags=-s.
import WebSocket from "ws";

const [port, service, seconds, top = "40"] = process.argv.slice(2);
const ws = new WebSocket(`ws://127.0.0.1:${port}/${service}`);
let id = 0;
const pending = new Map();
const call = (method, params = {}) =>
  new Promise((resolve, reject) => {
    const n = ++id;
    pending.set(n, { resolve, reject });
    ws.send(JSON.stringify({ id: n, method, params }));
  });
ws.on("message", (data) => {
  const msg = JSON.parse(data);
  const p = pending.get(msg.id);
  if (p) {
    pending.delete(msg.id);
    msg.error ? p.reject(new Error(JSON.stringify(msg.error))) : p.resolve(msg.result);
  }
});
ws.on("open", async () => {
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 100 });
  await call("Profiler.start");
  await new Promise((r) => setTimeout(r, 1000 * Number(seconds)));
  const { profile } = await call("Profiler.stop");
  const self = new Map();
  let total = 0;
  for (const node of profile.nodes) {
    const f = node.callFrame;
    const name = `${f.functionName || "(anonymous)"} ${f.url ? f.url.split("/").pop() : ""}`.trim();
    self.set(name, (self.get(name) ?? 0) + node.hitCount);
    total += node.hitCount;
  }
  // self time by kind: Go (wasm), JS by script, V8 and the runtime
  const kinds = new Map();
  for (const node of profile.nodes) {
    const f = node.callFrame;
    const kind = /^wasm:|\.wasm$|^[0-9a-f]{8}$/.test(f.url.split("/").pop()) ? "wasm (Go)" : f.url ? "js " + f.url.split("/").pop() : f.functionName.startsWith("(") ? f.functionName : "builtins and runtime (no script)";
    kinds.set(kind, (kinds.get(kind) ?? 0) + node.hitCount);
  }
  for (const [kind, n] of [...kinds.entries()].sort((a, b) => b[1] - a[1])) {
    console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  [${kind}]`);
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(top));
  for (const [name, n] of rows) {
    console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${name}`);
  }
  // hot lines of the hottest script functions (V8's positionTicks)
  const lines = new Map();
  for (const node of profile.nodes) {
    const f = node.callFrame;
    for (const t of node.positionTicks ?? []) {
      const k = `${f.url.split("/").pop()}:${t.line} (${f.functionName})`;
      lines.set(k, (lines.get(k) ?? 0) + t.ticks);
    }
  }
  console.log("hot lines:");
  for (const [k, n] of [...lines.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${k}`);
  }
  ws.close();
});
ws.on("error", (e) => {
  console.error("profile:", e.message);
  process.exit(1);
});
