#!/usr/bin/env bash
# make bench-identity: what each identity mode costs at the edge, natively
# and inside wazero (Go benchmarks, same run): new voter tokens per second
# in each mode (open, invite with the redeem answered from memory, signed
# with an Ed25519 JWT verified in the edge), one JWT verification (EdDSA and
# ES256) natively and as a wasip1 module under wazero, and the vote path in
# each mode against open's. Appends a dated section to BENCHMARKS.md; the
# last line of output is
#   identity open_tokens_per_s=A invite_tokens_per_s=B signed_tokens_per_s=C jwt_verify_native_us=J jwt_verify_wasm_us=W vote_vs_open=R
# (tokens/s and vote_vs_open from the wazero guest, the edge as the harness
# runs it, median runs; the vote benchmark lets the modes take turns vote
# by vote, so other load on the machine falls on all three alike; the JWT
# figures are the slower of EdDSA and ES256).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCHTIME=${BENCHTIME:-3000x}
JWTTIME=${JWTTIME:-500x}
COUNT=${COUNT:-5}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { # median ns/op of benchmark lines matching $1 in file $2
	awk -v n="^$1-[0-9]+$" '$1 ~ n { print $3 }' "$2" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; print v[int((NR + 1) / 2)] }'
}
metric() { # median of metric $2 (e.g. open-ns/vote) on benchmark lines matching $1 in file $3
	awk -v n="^$1-[0-9]+$" -v m="$2" '$1 ~ n { for (i = 3; i < NF; i++) if ($(i + 1) == m) print int($i) }' "$3" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; print v[int((NR + 1) / 2)] }'
}

# --- 1. token issuance and the vote path: native vs guest, same run ---------
echo "bench-identity: go test -bench 'Identity(Tokens|Vote)' -benchtime $BENCHTIME -count $COUNT ./wasm/harness" >&2
go test -run '^$' -bench '^BenchmarkIdentity(Tokens|Vote)$' -benchtime "$BENCHTIME" -count "$COUNT" ./wasm/harness | tee "$tmp/bench.txt" >&2
declare -A ns
for b in Tokens Vote; do
	for m in open invite signed; do
		for w in native wasm; do
			if [ "$b" = Vote ]; then
				ns[$b/$m/$w]=$(metric "BenchmarkIdentityVote/$w" "$m-ns/vote" "$tmp/bench.txt")
			else
				ns[$b/$m/$w]=$(median "BenchmarkIdentity$b/$m/$w" "$tmp/bench.txt")
			fi
		done
	done
done
per_s() { awk -v n="$1" 'BEGIN { printf "%d", 1e9 / n }'; }

# --- 2. one JWT verification: native, and the same test binary as wasip1 ----
echo "bench-identity: go test -bench Verify -benchtime $JWTTIME -count $COUNT ./shared/jwt (native, then GOOS=wasip1 under wazero)" >&2
go test -run '^$' -bench '^BenchmarkVerify' -benchtime "$JWTTIME" -count "$COUNT" ./shared/jwt | tee "$tmp/jwt-native.txt" >&2
GOOS=wasip1 GOARCH=wasm go test -c -o "$tmp/jwt.wasm" ./shared/jwt
go build -o "$tmp/wazero" github.com/tetratelabs/wazero/cmd/wazero
(cd shared/jwt && "$tmp/wazero" run -mount=.:/ -env PWD=/ "$tmp/jwt.wasm" -test.run '^$' -test.bench '^BenchmarkVerify' \
	-test.benchtime "$JWTTIME" -test.count "$COUNT") | tee "$tmp/jwt-wasm.txt" >&2
us() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1000 }'; }
ed_native=$(median BenchmarkVerifyEdDSA "$tmp/jwt-native.txt")
es_native=$(median BenchmarkVerifyES256 "$tmp/jwt-native.txt")
ed_wasm=$(awk -v n='^BenchmarkVerifyEdDSA$' '$1 ~ n { print $3 }' "$tmp/jwt-wasm.txt" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
es_wasm=$(awk -v n='^BenchmarkVerifyES256$' '$1 ~ n { print $3 }' "$tmp/jwt-wasm.txt" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
jwt_native_us=$(us "$(( ed_native > es_native ? ed_native : es_native ))")
jwt_wasm_us=$(us "$(( ed_wasm > es_wasm ? ed_wasm : es_wasm ))")

open_tps=$(per_s "${ns[Tokens/open/wasm]}")
invite_tps=$(per_s "${ns[Tokens/invite/wasm]}")
signed_tps=$(per_s "${ns[Tokens/signed/wasm]}")
# vote_vs_open: per run, open's ns/vote over the slower of invite's and
# signed's (the modes are mixed within a run, so the ratio cancels load that
# comes and goes), median over the runs.
vote_vs_open=$(awk '$1 ~ /^BenchmarkIdentityVote\/wasm-[0-9]+$/ {
		for (i = 3; i < NF; i++) v[$(i + 1)] = $i
		w = v["invite-ns/vote"] > v["signed-ns/vote"] ? v["invite-ns/vote"] : v["signed-ns/vote"]
		printf "%.4f\n", v["open-ns/vote"] / w
	}' "$tmp/bench.txt" | sort -n | awk '{ r[NR] = $1 } END { printf "%.2f", r[int((NR + 1) / 2)] }')
line="identity open_tokens_per_s=$open_tps invite_tokens_per_s=$invite_tps signed_tokens_per_s=$signed_tps jwt_verify_native_us=$jwt_native_us jwt_verify_wasm_us=$jwt_wasm_us vote_vs_open=$vote_vs_open"

# --- 3. BENCHMARKS.md ---------------------------------------------------------------
{
	echo
	echo "## bench-identity — $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Command: \`make bench-identity\` (BENCHTIME=$BENCHTIME JWTTIME=$JWTTIME COUNT=$COUNT)."
	echo
	echo "| new voter token (one handler / one guest instance) | native ns | wazero ns | wazero tokens/s |"
	echo "|---|---|---|---|"
	for m in open invite signed; do
		echo "| $m | ${ns[Tokens/$m/native]} | ${ns[Tokens/$m/wasm]} | $(per_s "${ns[Tokens/$m/wasm]}") |"
	done
	echo
	echo "invite's redeem is answered from memory here: at a real edge add one signed round trip to the origin (one Lua call)."
	echo
	echo "| one JWT verification | native µs | wasip1 under wazero µs |"
	echo "|---|---|---|"
	echo "| EdDSA (Ed25519) | $(us "$ed_native") | $(us "$ed_wasm") |"
	echo "| ES256 (P-256) | $(us "$es_native") | $(us "$es_wasm") |"
	echo
	echo "| vote of a distinct voter (the modes mixed vote by vote in a shuffled order; median of $COUNT runs) | native ns | wazero ns |"
	echo "|---|---|---|"
	for m in open invite signed; do
		echo "| $m poll | ${ns[Vote/$m/native]} | ${ns[Vote/$m/wasm]} |"
	done
	echo
	echo "Targets: jwt_verify_wasm_us ≤ 2000 (verified in the guest with Go's crypto: no host call); vote_vs_open ≥ 0.95."
	echo
	echo "    $line"
} >>BENCHMARKS.md
echo "$line"
