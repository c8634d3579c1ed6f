#!/usr/bin/env node
// Builds the audience's pages (edge/web) into static files both edge hosts
// serve: `node scripts/build-web.mjs [outdir]` (default build/web).
//
//   OUT/vote.html, OUT/screen.html  the pages (the hosts map /p/{id} and
//                                   /p/{id}/screen to them)
//   OUT/assets/NAME-HASH.{js,css}   bundled, minified, content-hashed:
//                                   cached for a year, immutable
//   OUT/embed.js                    the embed snippet's script, minified but
//                                   not hashed: its URL is pasted into sites
//   OUT/manifest.json               {"vote","screen","embed","assets":[…]}
//   OUT/_headers                    Cloudflare Workers Static Assets headers
//
// esbuild's JS API does the bundling (one pass per format, no plugins); the
// output depends only on the sources, esbuild's version and this file: no
// timestamps, no absolute paths, files written in sorted order. OUT is
// removed first (only when empty or an earlier build). The build fails
// when a page exceeds its gzip budget.
import { build } from "esbuild";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const src = path.join(root, "edge", "web");
const out = process.argv[2] ? path.resolve(process.argv[2]) : path.join(root, "build", "web");

// Gzipped first-load budgets (HTML + JS + CSS), in bytes.
const BUDGET = { vote: 30 * 1024, screen: 60 * 1024 };

// The pages: a template in edge/web and the entry points it links.
const PAGES = {
  vote: { html: "vote.html", entries: ["vote.js", "vote.css"] },
  screen: { html: "screen.html", entries: ["screen.js", "screen.css"] },
};

const HEADERS = `/assets/*
  Cache-Control: public, max-age=31536000, immutable
/embed.js
  Cache-Control: public, max-age=300
/*
  X-Content-Type-Options: nosniff
  Referrer-Policy: strict-origin-when-cross-origin
`;

// Why OUT may not be cleaned, or "" when it may: it must not hold the
// repository or the sources, and it must be missing, empty or an earlier
// build (it has a manifest.json), so a mistyped path never wipes a folder.
async function whyNotClean(dir) {
  const rel = path.relative(dir, root);
  if (dir === path.parse(dir).root || rel === "" || !rel.startsWith("..") || src === dir || src.startsWith(dir + path.sep)) {
    return "it holds the repository or its sources";
  }
  let names;
  try {
    names = await readdir(dir);
  } catch (err) {
    if (err.code === "ENOENT") return "";
    throw err;
  }
  if (names.length === 0 || names.includes("manifest.json")) return "";
  return "it is neither empty nor an earlier build (no manifest.json)";
}

async function main() {
  const started = Date.now();
  const why = await whyNotClean(out);
  if (why) throw new Error(`refusing to clean ${out}: ${why}; choose an output directory of its own`);
  await rm(out, { recursive: true, force: true });
  await mkdir(path.join(out, "assets"), { recursive: true });

  const common = {
    absWorkingDir: root,
    bundle: true,
    minify: true,
    write: false,
    charset: "utf8",
    legalComments: "eof",
    logLevel: "warning",
  };

  // Page scripts and styles: ES modules, content-hashed names.
  const entryPoints = [...new Set(Object.values(PAGES).flatMap((p) => p.entries))].map((e) => path.join(src, e));
  const pages = await build({
    ...common,
    entryPoints,
    outdir: path.join(out, "assets"),
    entryNames: "[name]-[hash]",
    format: "esm",
    target: ["es2020"],
    metafile: true,
  });
  // The hashed URL of each entry, e.g. "vote.js" → "/assets/vote-ABCD1234.js".
  const url = {};
  for (const [file, meta] of Object.entries(pages.metafile.outputs)) {
    if (!meta.entryPoint) continue;
    url[path.basename(meta.entryPoint)] = "/" + path.relative(out, path.resolve(root, file)).split(path.sep).join("/");
  }

  // embed.js: a classic script (document.currentScript needs one), fixed name.
  const embed = await build({
    ...common,
    entryPoints: [path.join(src, "embed.js")],
    outfile: path.join(out, "embed.js"),
    format: "iife",
    target: ["es2017"],
  });

  const files = new Map(); // path relative to OUT → contents
  for (const f of [...pages.outputFiles, ...embed.outputFiles]) {
    files.set(path.relative(out, f.path).split(path.sep).join("/"), f.contents);
  }
  const sizes = {};
  for (const [name, page] of Object.entries(PAGES)) {
    let html = await readFile(path.join(src, page.html), "utf8");
    html = html.replace(/\{\{([\w.-]+)\}\}/g, (m, entry) => {
      if (!url[entry]) throw new Error(`${page.html}: ${m} names no entry point`);
      return url[entry];
    });
    // Indentation only: spaces inside a line can matter in inline text.
    html = html.split("\n").map((l) => l.trim()).filter(Boolean).join("\n") + "\n";
    files.set(page.html, Buffer.from(html));
    const parts = [page.html, ...page.entries.map((e) => url[e].slice(1))];
    sizes[name] = parts.reduce((n, p) => n + gzipSync(files.get(p), { level: 9 }).length, 0);
  }

  const manifest = {
    vote: PAGES.vote.html,
    screen: PAGES.screen.html,
    embed: "embed.js",
    assets: [...files.keys()].filter((f) => f.startsWith("assets/")).sort(),
  };
  files.set("manifest.json", Buffer.from(JSON.stringify(manifest, null, 2) + "\n"));
  files.set("_headers", Buffer.from(HEADERS));

  for (const name of [...files.keys()].sort()) {
    await writeFile(path.join(out, name), files.get(name));
  }

  const kb = (n) => (n / 1024).toFixed(1) + " KB";
  const embedGz = gzipSync(files.get("embed.js"), { level: 9 }).length;
  console.log(
    `build-web: ${path.relative(process.cwd(), out) || "."} in ${Date.now() - started} ms; gzipped: ` +
      `vote page ${kb(sizes.vote)} (budget ${kb(BUDGET.vote)}), screen page ${kb(sizes.screen)} (budget ${kb(BUDGET.screen)}), embed.js ${kb(embedGz)}`,
  );
  for (const [name, n] of Object.entries(sizes)) {
    if (n > BUDGET[name]) throw new Error(`${name} page is ${kb(n)} gzipped, over its ${kb(BUDGET[name])} budget`);
  }
}

main().catch((err) => {
  console.error("build-web:", err.message || err);
  process.exit(1);
});
