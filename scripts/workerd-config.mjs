#!/usr/bin/env node
// workerd-config: a capnp config for plain `workerd serve` from Workers'
// wrangler.toml files and the bundles `wrangler deploy --dry-run --outdir`
// wrote for them, so bench-edge can run the same bundle without wrangler
// dev's proxy in front.
//
//   node scripts/workerd-config.mjs --out DIR/config.capnp \
//     --worker NAME,WRANGLER_TOML,OUTDIR,ADDRESS [--worker ...]
//
// Each worker gets a socket at ADDRESS (host:port) and every module of
// OUTDIR (.js as ES modules, .wasm, .txt, .bin). From wrangler.toml it takes
// compatibility_date and compatibility_flags, [vars] (text bindings; other
// values as JSON) and [[queues.producers]]. Plain workerd has no Queue
// bindings: each producer binding becomes a service binding to a stand-in
// worker (edge/worker/bench/workerd/queue.mjs, a benchmark fixture) that
// delivers batches to the worker whose [[queues.consumers]] names the queue,
// through workerd's service-binding queue event, honouring max_batch_size,
// max_batch_timeout and max_retries. Outbound fetch goes through a network
// service that allows loopback and private addresses (the bench's origin
// listens on 127.0.0.1). There is no Cache API service (cacheApiOutbound):
// caches.default stores nothing, so the results path is measured with the
// Worker's in-isolate memo and origin fetches. Other bindings (KV, R2, D1,
// Durable Objects, assets, rate limiters, Analytics Engine) are not
// supported: the script names them and leaves them out.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const standIn = resolve(here, "../edge/worker/bench/workerd/queue.mjs");

function usage(msg) {
  console.error(`workerd-config: ${msg}\nusage: workerd-config.mjs --out FILE --worker NAME,WRANGLER_TOML,OUTDIR,ADDRESS [--worker ...]`);
  process.exit(2);
}

const args = process.argv.slice(2);
let out;
const workers = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--out") {
    out = args[++i];
  } else if (args[i] === "--worker") {
    const parts = (args[++i] ?? "").split(",");
    if (parts.length !== 4) {
      usage(`--worker wants NAME,WRANGLER_TOML,OUTDIR,ADDRESS, got ${args[i]}`);
    }
    const [name, toml, outdir, address] = parts;
    workers.push({ name, toml: resolve(toml), outdir: resolve(outdir), address });
  } else {
    usage(`unknown argument ${args[i]}`);
  }
}
if (!out || workers.length === 0) {
  usage("--out and at least one --worker are required");
}
const outDir = dirname(resolve(out));

// parseToml reads the subset of TOML wrangler.toml files use here: tables,
// arrays of tables, strings, numbers, booleans, one-line arrays and inline
// tables of those.
function parseToml(text) {
  const root = {};
  let cur = root;
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = stripComment(lines[n]).trim();
    if (line === "") {
      continue;
    }
    let m;
    if ((m = /^\[\[([^\]]+)\]\]$/.exec(line))) {
      const path = m[1].trim().split(".");
      const parent = walk(root, path.slice(0, -1));
      const key = path[path.length - 1];
      parent[key] ??= [];
      cur = {};
      parent[key].push(cur);
    } else if ((m = /^\[([^\]]+)\]$/.exec(line))) {
      cur = walk(root, m[1].trim().split("."));
    } else if ((m = /^([A-Za-z0-9_.-]+)\s*=\s*(.+)$/.exec(line))) {
      const p = { s: m[2], i: 0 };
      cur[m[1]] = value(p, n + 1);
      skipSpace(p);
      if (p.i !== p.s.length) {
        throw new Error(`wrangler.toml line ${n + 1}: unexpected ${p.s.slice(p.i)}`);
      }
    } else {
      throw new Error(`wrangler.toml line ${n + 1}: cannot parse ${line}`);
    }
  }
  return root;
}

function walk(obj, path) {
  for (const k of path) {
    obj[k] ??= {};
    obj = Array.isArray(obj[k]) ? obj[k][obj[k].length - 1] : obj[k];
  }
  return obj;
}

function stripComment(line) {
  let q = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === "\\" && q === '"') {
        i++;
      } else if (c === q) {
        q = null;
      }
    } else if (c === '"' || c === "'") {
      q = c;
    } else if (c === "#") {
      return line.slice(0, i);
    }
  }
  return line;
}

function skipSpace(p) {
  while (p.i < p.s.length && /\s/.test(p.s[p.i])) {
    p.i++;
  }
}

function value(p, line) {
  skipSpace(p);
  const c = p.s[p.i];
  if (c === '"') {
    let j = p.i + 1;
    let str = "";
    while (j < p.s.length && p.s[j] !== '"') {
      if (p.s[j] === "\\") {
        const e = p.s[++j];
        str += { n: "\n", t: "\t", r: "\r", '"': '"', "\\": "\\" }[e] ?? e;
      } else {
        str += p.s[j];
      }
      j++;
    }
    p.i = j + 1;
    return str;
  }
  if (c === "'") {
    const j = p.s.indexOf("'", p.i + 1);
    const str = p.s.slice(p.i + 1, j);
    p.i = j + 1;
    return str;
  }
  if (c === "[" || c === "{") {
    const close = c === "[" ? "]" : "}";
    const res = c === "[" ? [] : {};
    p.i++;
    for (;;) {
      skipSpace(p);
      if (p.s[p.i] === close) {
        p.i++;
        return res;
      }
      if (c === "[") {
        res.push(value(p, line));
      } else {
        const m = /^([A-Za-z0-9_-]+)\s*=/.exec(p.s.slice(p.i));
        if (!m) {
          throw new Error(`wrangler.toml line ${line}: bad inline table`);
        }
        p.i += m[0].length;
        res[m[1]] = value(p, line);
      }
      skipSpace(p);
      if (p.s[p.i] === ",") {
        p.i++;
      }
    }
  }
  const m = /^(true|false|[+-]?[0-9_]+(\.[0-9_]+)?)/.exec(p.s.slice(p.i));
  if (!m) {
    throw new Error(`wrangler.toml line ${line}: unsupported value ${p.s.slice(p.i)}`);
  }
  p.i += m[0].length;
  return m[1] === "true" ? true : m[1] === "false" ? false : Number(m[1].replaceAll("_", ""));
}

const str = (s) => JSON.stringify(String(s)); // a capnp text literal
const embed = (file) => `embed ${str(relative(outDir, file))}`;

function modules(outdir) {
  const files = readdirSync(outdir).sort();
  const mods = [];
  // the entry module first: wrangler names it after main (worker.js)
  const js = files.filter((f) => f.endsWith(".js") || f.endsWith(".mjs"));
  if (js.length === 0) {
    throw new Error(`${outdir}: no .js module (run wrangler deploy --dry-run --outdir ${outdir})`);
  }
  const entry = js.includes("worker.js") ? "worker.js" : js[0];
  for (const f of [entry, ...files.filter((f) => f !== entry)]) {
    const p = join(outdir, f);
    if (f.endsWith(".js") || f.endsWith(".mjs")) {
      mods.push(`(name = ${str(f)}, esModule = ${embed(p)})`);
    } else if (f.endsWith(".wasm")) {
      mods.push(`(name = ${str(f)}, wasm = ${embed(p)})`);
    } else if (f.endsWith(".txt") || f.endsWith(".html")) {
      mods.push(`(name = ${str(f)}, text = ${embed(p)})`);
    } else if (f.endsWith(".bin")) {
      mods.push(`(name = ${str(f)}, data = ${embed(p)})`);
    }
  }
  return mods;
}

const unsupported = ["kv_namespaces", "r2_buckets", "d1_databases", "durable_objects", "services", "assets", "ratelimits", "analytics_engine_datasets", "vectorize", "hyperdrive", "ai", "browser", "workflows"];
const services = [];
const sockets = [];
const consumers = new Map(); // queue → { worker, settings }
const producers = []; // { worker, binding, queue }
const parsed = workers.map((w) => ({ ...w, conf: parseToml(readFileSync(w.toml, "utf8")) }));
for (const w of parsed) {
  for (const c of w.conf.queues?.consumers ?? []) {
    consumers.set(c.queue, { worker: w.name, c });
  }
}
for (const w of parsed) {
  const { conf } = w;
  for (const k of unsupported) {
    if (conf[k] !== undefined) {
      console.error(`workerd-config: ${w.name}: [${k}] is not supported under plain workerd; left out`);
    }
  }
  const bindings = [];
  for (const [k, v] of Object.entries(conf.vars ?? {})) {
    bindings.push(typeof v === "string" ? `(name = ${str(k)}, text = ${str(v)})` : `(name = ${str(k)}, json = ${str(JSON.stringify(v))})`);
  }
  for (const p of conf.queues?.producers ?? []) {
    const svc = `queue-${p.queue}`;
    bindings.push(`(name = ${str(p.binding)}, service = ${str(svc)})`);
    producers.push({ worker: w.name, binding: p.binding, queue: p.queue, svc });
  }
  const flags = conf.compatibility_flags ?? [];
  services.push(`(name = ${str(w.name)}, worker = (
      modules = [
        ${modules(w.outdir).join(",\n        ")}
      ],
      compatibilityDate = ${str(conf.compatibility_date ?? "2025-06-01")},
      compatibilityFlags = [${flags.map(str).join(", ")}],
      bindings = [
        ${bindings.join(",\n        ")}
      ],
      globalOutbound = "internet",
    ))`);
  sockets.push(`(name = ${str(w.name)}, address = ${str(w.address)}, http = (), service = ${str(w.name)})`);
}
for (const q of new Set(producers.map((p) => p.queue))) {
  const cons = consumers.get(q);
  if (cons === undefined) {
    throw new Error(`queue ${q} has a producer but no consumer among the workers given`);
  }
  const c = cons.c;
  const b = [
    `(name = "CONSUMER", service = ${str(cons.worker)})`,
    `(name = "QUEUE_NAME", text = ${str(q)})`,
    `(name = "MAX_BATCH_SIZE", text = ${str(c.max_batch_size ?? 10)})`,
    `(name = "MAX_BATCH_TIMEOUT", text = ${str(c.max_batch_timeout ?? 5)})`,
    `(name = "MAX_RETRIES", text = ${str(c.max_retries ?? 3)})`,
  ];
  services.push(`(name = ${str(`queue-${q}`)}, worker = (
      modules = [(name = "queue.mjs", esModule = ${embed(standIn)})],
      compatibilityDate = "2025-06-01",
      compatibilityFlags = ["service_binding_extra_handlers"],
      bindings = [${b.join(", ")}],
    ))`);
}
services.push(`(name = "internet", network = (allow = ["public", "private", "local"]))`);

const capnp = `# Generated by scripts/workerd-config.mjs from ${parsed.map((w) => relative(outDir, w.toml)).join(", ")}; do not edit.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    ${services.join(",\n    ")}
  ],
  sockets = [
    ${sockets.join(",\n    ")}
  ],
);
`;
writeFileSync(out, capnp);
