#!/usr/bin/env bash
# make dev: runs the whole platform locally with nothing but Go and Redis:
# redis-server (data in .dev/redis), the origin, and the edge as the wasm
# guest under the wazero harness, then creates and opens a demo poll.
# Ctrl-C stops everything; every process runs in its own process group and
# is stopped with it, so nothing is left behind.
#
# Ports (override in the environment): REDIS_PORT=6390 ORIGIN_PORT=8080 EDGE_PORT=8788
# PROMETHEUS=1 also runs Prometheus (Debian's package) on PROMETHEUS_PORT=9090,
# scraping the origin and the harness with docs/ops/prometheus/alerts.yml loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

REDIS_PORT=${REDIS_PORT:-6390}
ORIGIN_PORT=${ORIGIN_PORT:-8080}
EDGE_PORT=${EDGE_PORT:-8788}
POLL=${POLL:-demo}
PROMETHEUS=${PROMETHEUS:-0}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
dev=$root/.dev
mkdir -p "$dev/redis" "$dev/bin" "$dev/logs"

say() { printf '\033[1mdev:\033[0m %s\n' "$*" >&2 || true; }
die() { say "$*"; exit 1; }

# --- tools ---------------------------------------------------------------
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
	say "installing redis-server and redis-tools from Debian's packages"
	SUDO=""
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
fi
command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
if [ "$PROMETHEUS" = 1 ] && ! command -v prometheus >/dev/null; then
	say "installing prometheus from Debian's packages"
	SUDO=""
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=("$REDIS_PORT" "$ORIGIN_PORT" "$EDGE_PORT")
[ "$PROMETHEUS" = 1 ] && ports+=("$PROMETHEUS_PORT")
for p in "${ports[@]}"; do
	if port_busy "$p"; then
		die "port $p on 127.0.0.1 is already in use (another make dev?); set REDIS_PORT, ORIGIN_PORT, EDGE_PORT or PROMETHEUS_PORT"
	fi
done

# --- secrets (generated once, kept in .dev so tokens survive restarts) ----
secrets=$dev/secrets.env
if [ ! -s "$secrets" ]; then
	rnd() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
	umask 077
	cat >"$secrets" <<SECRETS
ADMIN_TOKEN=$(rnd 24)
INGEST_KEY=dev=$(rnd 24)
TOKEN_SECRET=$(rnd 24)
SECRETS
	umask 022
fi
# shellcheck disable=SC1090
source "$secrets"

# --- build -----------------------------------------------------------------
say "building origin, pollctl, harness, the wasm guest and the audience pages"
go build -o "$dev/bin/origin" ./origin/cmd/origin
go build -o "$dev/bin/pollctl" ./origin/cmd/pollctl
go build -o "$dev/bin/harness" ./wasm/cmd/harness
OUT=$dev/edge.wasm bash scripts/build-wasm.sh go >&2
node scripts/build-web.mjs "$dev/web" >&2

# --- process groups ----------------------------------------------------------
pids=()
names=()
stopping=0
start() { # start NAME LOGFILE CMD...: own process group (setsid), logs teed to the terminal
	local name=$1 log=$2
	shift 2
	# The log filter ignores Ctrl-C so it outlives the service's shutdown
	# logging (a service writing to a dead pipe would die of SIGPIPE).
	setsid "$@" > >(trap '' INT TERM; sed -u "s/^/[$name] /" | tee -a "$log" >&2) 2>&1 </dev/null &
	pids+=($!)
	names+=("$name")
}
stop_all() {
	((stopping)) && return
	stopping=1
	trap '' INT TERM PIPE # a closed terminal or pipe must not cut the clean-up short
	say "stopping"
	# Reverse order: the harness first (it drains its vote queue into the
	# origin), then the origin, then Redis.
	local i pid
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		pid=${pids[i]}
		kill -0 "$pid" 2>/dev/null || continue
		kill -TERM -- "-$pid" 2>/dev/null || true
		for _ in $(seq 1 150); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "${names[i]} did not stop in 15s; killing it"
			kill -KILL -- "-$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	say "stopped"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

wait_for() { # wait_for NAME PID CHECK...
	local name=$1 pid=$2
	shift 2
	for _ in $(seq 1 200); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		kill -0 "$pid" 2>/dev/null || die "$name exited during start-up; see $dev/logs/$name.log"
		sleep 0.1
	done
	die "$name did not become ready in 20s; see $dev/logs/$name.log"
}

# --- start -----------------------------------------------------------------
# Every write is in the append-only file, fsynced, before Redis answers it:
# the origin acknowledges a batch only then (-durability fsync, checked at
# its start). Data from before (.dev/redis/dump.rdb) is not loaded once the
# append-only file is on.
start redis "$dev/logs/redis.log" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
	--dir "$dev/redis" --save "" --appendonly yes --appendfsync always --protected-mode yes --loglevel warning
wait_for redis "${pids[-1]}" redis-cli -p "$REDIS_PORT" ping

export LOG_FORMAT=text
start origin "$dev/logs/origin.log" env ADMIN_TOKEN="$ADMIN_TOKEN" INGEST_KEYS="$INGEST_KEY" \
	"$dev/bin/origin" -listen "127.0.0.1:$ORIGIN_PORT" -redis "redis://127.0.0.1:$REDIS_PORT/0" -durability fsync
origin=http://127.0.0.1:$ORIGIN_PORT
wait_for origin "${pids[-1]}" curl -fsS "$origin/healthz"

start harness "$dev/logs/harness.log" env ORIGIN_URL="$origin" INGEST_KEY="$INGEST_KEY" \
	TOKEN_SECRET="$TOKEN_SECRET" ALLOWED_ORIGINS='*' EDGE_ID=dev-harness COOKIE_SECURE=false \
	"$dev/bin/harness" -listen "127.0.0.1:$EDGE_PORT" -module "$dev/edge.wasm" -spool "$dev/spool" -web "$dev/web"
edge=http://127.0.0.1:$EDGE_PORT
wait_for harness "${pids[-1]}" curl -fsS "$edge/healthz"

monitoring=""
if [ "$PROMETHEUS" = 1 ]; then
	mkdir -p "$dev/prometheus"
	cat >"$dev/prometheus/prometheus.yml" <<PROM
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files: ["$root/docs/ops/prometheus/alerts.yml"]
scrape_configs:
  - job_name: edgepoll-origin
    static_configs: [{targets: ["127.0.0.1:$ORIGIN_PORT"]}]
  - job_name: edgepoll-harness
    static_configs: [{targets: ["127.0.0.1:$EDGE_PORT"]}]
PROM
	start prometheus "$dev/logs/prometheus.log" prometheus --config.file="$dev/prometheus/prometheus.yml" \
		--storage.tsdb.path="$dev/prometheus/data" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --log.level=warn
	wait_for prometheus "${pids[-1]}" curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
	monitoring="
    prometheus             http://127.0.0.1:$PROMETHEUS_PORT   alerts: http://127.0.0.1:$PROMETHEUS_PORT/alerts
    grafana dashboard      import docs/ops/grafana/edgepoll-show.json (data source: this Prometheus)"
fi

# --- demo poll ---------------------------------------------------------------
admin() { curl -sS -o /dev/null -w '%{http_code}' -X "$1" -H "Authorization: Bearer $ADMIN_TOKEN" \
	-H 'Content-Type: application/json' ${3:+--data "$3"} "$origin/v1/admin/$2"; }
demo_poll() { # demo_poll ID JSON: create (or keep) and open one demo poll
	local id=$1 code
	code=$(admin POST polls "$2")
	case $code in
	201) say "created poll $id" ;;
	409) say "poll $id already exists (kept from an earlier run)" ;;
	*) die "creating poll $id: HTTP $code" ;;
	esac
	code=$(admin POST "polls/$id/open")
	[ "$code" = 200 ] || die "opening poll $id: HTTP $code"
}
demo_poll "$POLL" "{\"id\":\"$POLL\",\"title\":\"Which topping wins?\",\"options\":[{\"label\":\"Mushroom\"},{\"label\":\"Pineapple\"},{\"label\":\"Olive\"}],\"kind\":\"single\",\"visibility\":\"live\"}"
# One poll of each other kind.
demo_poll "$POLL-scale" "{\"id\":\"$POLL-scale\",\"title\":\"How was tonight's show?\",\"kind\":\"scale\",\"scale\":{\"min\":1,\"max\":10,\"min_label\":\"awful\",\"max_label\":\"brilliant\"},\"visibility\":\"live\"}"
demo_poll "$POLL-ranked" "{\"id\":\"$POLL-ranked\",\"title\":\"Rank the acts\",\"kind\":\"ranked\",\"max_choices\":3,\"options\":[{\"label\":\"The Jugglers\"},{\"label\":\"The Choir\"},{\"label\":\"The Magician\"},{\"label\":\"The Dancers\"}],\"visibility\":\"live\"}"
demo_poll "$POLL-words" "{\"id\":\"$POLL-words\",\"title\":\"Tonight's show in one word\",\"kind\":\"words\",\"max_words\":1,\"visibility\":\"live\"}"

cat >&2 <<INFO

  edgepoll is running (Ctrl-C stops everything)
    edge (wazero harness)  $edge        metrics: $edge/metrics
    origin                 $origin        admin token in .dev/secrets.env
    redis                  127.0.0.1:$REDIS_PORT   data in .dev/redis (append-only file, fsync always)
    logs                   .dev/logs/$monitoring

  the audience (open these in a browser):
    voting page            $edge/p/$POLL
    big screen             $edge/p/$POLL/screen
    embed snippet          <script src="$edge/embed.js" data-poll="$POLL" async></script>
    other kinds            $edge/p/$POLL-scale  $edge/p/$POLL-ranked  $edge/p/$POLL-words  (each with /screen)

  vote from a shell (gets a voter token, then votes for option 1):
    TOKEN=\$(curl -s $edge/v1/polls/$POLL | sed -E 's/.*"token":"([^"]+)".*/\1/'); curl -s -X POST -H 'Content-Type: application/json' -d "{\"token\":\"\$TOKEN\",\"choice\":1}" $edge/v1/polls/$POLL/votes; echo

  results:
    curl -s $edge/v1/polls/$POLL/results; echo
    EDGEPOLL_ORIGIN=$origin EDGEPOLL_ADMIN_TOKEN=$ADMIN_TOKEN .dev/bin/pollctl results $POLL --watch

INFO

# Run until Ctrl-C or until any service dies.
set +e
wait -n "${pids[@]}"
say "a service exited; see .dev/logs/"
exit 1
