#!/usr/bin/env bash
# Build the Cloudflare Worker bundle into build/edge/: app.wasm (the Go
# program), wasm_exec.js (the matching Go runtime shim) and worker.mjs (our
# one-instance-per-isolate glue), and the audience's pages into build/web. Usage: scripts/build-edge.sh [go|tinygo] [outdir]
# EDGE_TAGS adds Go build tags (the tests' edgepoll_paniccheck).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-go}
out=${2:-build/edge}
pkg=./edge/cmd/worker

case "$mode" in
go)
	mkdir -p "$out"
	GOOS=js GOARCH=wasm go build -trimpath -ldflags='-s -w' ${EDGE_TAGS:+-tags "$EDGE_TAGS"} -o "$out/app.wasm.tmp" "$pkg"
	mv "$out/app.wasm.tmp" "$out/app.wasm"
	cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" "$out/wasm_exec.js"
	;;
tinygo)
	if ! command -v tinygo >/dev/null 2>&1; then
		echo "tinygo not found on PATH; install TinyGo (https://tinygo.org/getting-started/install/) to build the Worker with it. The standard Go build is \`make edge\`." >&2
		exit 1
	fi
	mkdir -p "$out"
	# Default (asyncify) scheduler: the Worker's goroutines wait for I/O.
	# Each goroutine's stack is -stack-size (see scripts/build-wasm.sh).
	tinygo build -o "$out/app.wasm.tmp" -target wasm -no-debug -stack-size=32KB ${EDGE_TAGS:+-tags "$EDGE_TAGS"} "$pkg"
	mv "$out/app.wasm.tmp" "$out/app.wasm"
	# syumai/workers' shim for TinyGo, not TinyGo's targets/wasm_exec.js
	# (bundled by wrangler, that one dies at start-up with "Maximum call
	# stack size exceeded"). The glue replaces its timer (sleepTicks).
	cp "$(go list -m -f '{{.Dir}}' github.com/syumai/workers)/cmd/workers-assets-gen/assets/wasm_exec_tinygo.js" "$out/wasm_exec.js"
	;;
*)
	echo "usage: $0 [go|tinygo] [outdir]" >&2
	exit 2
	;;
esac
cp edge/worker/glue/worker.mjs "$out/worker.mjs"
cp edge/worker/glue/observe.mjs "$out/observe.mjs"
# The audience's pages, served as the Worker's static assets (wrangler.toml
# [assets]; WEB_OUT moves them, as the workerd tests do).
node scripts/build-web.mjs "${WEB_OUT:-build/web}" >/dev/null

raw=$(stat -c %s "$out/app.wasm")
gz=$(gzip -9 -c "$out/app.wasm" "$out/wasm_exec.js" "$out/worker.mjs" "$out/observe.mjs" | wc -c)
echo "built $out with $mode: app.wasm ${raw} bytes raw"
echo "bundle_raw_bytes=$((raw + $(stat -c %s "$out/wasm_exec.js") + $(stat -c %s "$out/worker.mjs") + $(stat -c %s "$out/observe.mjs")))"
echo "bundle_gzip_bytes=${gz}"
