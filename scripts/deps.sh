#!/usr/bin/env bash
# Installs what edgepoll's tests and benchmarks need, only when missing:
# redis-server, redis-tools, wrk, chromium (the browser tests) and
# prometheus (the server and promtool, for the operations tests) and
# systemd (systemd-analyze checks the origin's unit) from
# Debian's packages, wrangler, esbuild, axe-core and the pages' libraries
# from npm (package-lock.json), and the Go modules.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v wrk >/dev/null || need+=(wrk)
command -v chromium >/dev/null || need+=(chromium)
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v systemd-analyze >/dev/null || need+=(systemd)
if ((${#need[@]})); then
	echo "deps: installing ${need[*]} from Debian's packages" >&2
	SUDO=""
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ! -x node_modules/.bin/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	echo "deps: npm ci" >&2
	npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
go mod download
