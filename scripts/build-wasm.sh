#!/usr/bin/env bash
# Builds the edge guest (wasm/guest) as a WASI reactor module for the wazero
# harness: build/edge.wasm.
#
#   scripts/build-wasm.sh          standard Go (GOOS=wasip1 -buildmode=c-shared)
#   scripts/build-wasm.sh tinygo   TinyGo, when tinygo is on PATH
#   OUT=path scripts/build-wasm.sh writes elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."

toolchain=${1:-go}
out=${OUT:-build/edge.wasm}
mkdir -p "$(dirname "$out")"

case "$toolchain" in
go)
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags='-s -w' -o "$out" ./wasm/guest
	;;
tinygo)
	if ! command -v tinygo >/dev/null; then
		echo "build-wasm: tinygo is not on PATH." >&2
		echo "  No TinyGo package installs here through apt or npm; get a release from" >&2
		echo "  https://tinygo.org/getting-started/install/ (0.41 or newer; see README.md, Building with TinyGo)," >&2
		echo "  or build with standard Go: scripts/build-wasm.sh go (make wasm)." >&2
		exit 2
	fi
	# The flags of wasm/internal/wasmtest.TinyGoFlags (the tests' build).
	# asyncify: -scheduler=none cannot build net/http with Go 1.24+'s crypto
	# (time.AfterFunc in crypto/internal/sysrand). Every exported call runs on
	# a fresh goroutine whose stack is -stack-size: its cost grows with it
	# (64 KB, the default: ~6x slower per vote); 8 KB overflows in ed25519.
	tinygo build -target=wasip1 -buildmode=c-shared -no-debug -scheduler=asyncify -stack-size=32KB -o "$out" ./wasm/guest
	;;
*)
	echo "usage: $0 [go|tinygo]" >&2
	exit 2
	;;
esac
size=$(stat -c %s "$out")
gz=$(gzip -9c "$out" | wc -c)
echo "build-wasm: $out ($toolchain) $size bytes, $gz gzipped"
