#!/usr/bin/env bash
# Fan-out over SSE, Northstar and nginx + Nchan side by side, in one run.
#
# Method: both servers run on this machine's loopback, started by this
# script; the same load tool (northstar-load) drives both, alternating, for
# ROUNDS rounds of each scenario, and the script prints the median of each
# figure and the ratio Northstar / Nchan. Northstar runs its embedded
# default (SQLite, fsync on every commit: every event is durable before it is
# delivered); Nchan keeps messages in memory (Benchmarks/nchan/nginx.conf,
# 2 workers, the same 2 cores). Only a ratio measured in one run carries from
# one machine to another.
#
#   Benchmarks/fanout_vs_nchan.sh [ROUNDS]        (default 5)
#
# Needs: a release build (swift build -c release), Debian's nginx-light and
# libnginx-mod-nchan (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
bin=.build/release
for package in nginx-light libnginx-mod-nchan; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
done
[ -x "$bin/northstar" ] && [ -x "$bin/northstar-load" ] || { echo "build first: swift build -c release" >&2; exit 1; }

work=$(mktemp -d)
cleanup() { kill "${ns_pid:-}" "${nginx_pid:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true

"$bin/northstar" serve --listen 127.0.0.1:8384 --data-dir "$work/ns" --log-level warning &
ns_pid=$!
nginx -p "$PWD/Benchmarks/nchan" -c nginx.conf &
nginx_pid=$!
for _ in $(seq 100); do curl -sf localhost:8384/healthz >/dev/null && break; sleep 0.1; done
token=$("$bin/northstar" token --tenant t_bench --user bench --data-dir "$work/ns")

# One run: prints "delivered_per_s p50_ms p99_ms delivered_percent".
run() {
  local target=$1 subscribers=$2 rate=$3 seconds=$4 output
  if [ "$target" = northstar ]; then
    local thread
    thread=$(curl -s -H "Authorization: Bearer $token" -d '{}' localhost:8384/v1/threads | python3 -c 'import json,sys; print(json.load(sys.stdin)["thread_id"])')
    output=$("$bin/northstar-load" --subscribe "http://127.0.0.1:8384/sse/chat/$thread" \
      --publish "http://127.0.0.1:8384/v1/threads/$thread/messages" --header "Authorization: Bearer $token" \
      --subscribers "$subscribers" --rate "$rate" --seconds "$seconds")
  else
    local channel="c$RANDOM$RANDOM"
    output=$("$bin/northstar-load" --subscribe "http://127.0.0.1:8390/sub?id=$channel" \
      --publish "http://127.0.0.1:8390/pub?id=$channel" --body '{"text":"{{ts}}"}' \
      --subscribers "$subscribers" --rate "$rate" --seconds "$seconds")
  fi
  python3 -c '
import re, sys
text = sys.stdin.read()
delivered = re.search(r"delivered: \d+ of \d+ \(([\d.]+)%\), (\d+) events/s", text)
latency = re.search(r"latency ms: p50 ([\d.]+)\s+p90 [\d.]+\s+p99 ([\d.]+)", text)
print(delivered.group(2), latency.group(1), latency.group(2), delivered.group(1))' <<<"$output"
}

median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

scenario() {
  local name=$1 subscribers=$2 rate=$3 seconds=$4
  declare -A rates p50s p99s
  for target in northstar nchan; do rates[$target]=""; p50s[$target]=""; p99s[$target]=""; done
  for round in $(seq "$rounds"); do
    for target in northstar nchan; do
      read -r per_s p50 p99 percent < <(run "$target" "$subscribers" "$rate" "$seconds")
      echo "  round $round $target: $per_s deliveries/s ($percent%), p50 $p50 ms, p99 $p99 ms"
      rates[$target]+=" $per_s"; p50s[$target]+=" $p50"; p99s[$target]+=" $p99"
    done
  done
  local ns_rate nc_rate ns_p50 nc_p50 ns_p99 nc_p99
  ns_rate=$(median ${rates[northstar]}); nc_rate=$(median ${rates[nchan]})
  ns_p50=$(median ${p50s[northstar]}); nc_p50=$(median ${p50s[nchan]})
  ns_p99=$(median ${p99s[northstar]}); nc_p99=$(median ${p99s[nchan]})
  printf '%s: medians of %d rounds\n' "$name" "$rounds"
  printf '  Northstar %.0f deliveries/s, p50 %.2f ms, p99 %.2f ms\n' "$ns_rate" "$ns_p50" "$ns_p99"
  printf '  Nchan     %.0f deliveries/s, p50 %.2f ms, p99 %.2f ms\n' "$nc_rate" "$nc_p50" "$nc_p99"
  python3 -c "import sys; a,b,c,d,e,f = map(float, sys.argv[1:]); print(f'  ratio Northstar/Nchan: deliveries {a/b:.2f}x, p50 {c/d:.2f}x, p99 {e/f:.2f}x')" \
    "$ns_rate" "$nc_rate" "$ns_p50" "$nc_p50" "$ns_p99" "$nc_p99"
}

scenario "light load, 100 subscribers x 100 msg/s" 100 100 10
scenario "saturated, 1,000 subscribers x 100 msg/s (100,000 deliveries/s asked)" 1000 100 10
