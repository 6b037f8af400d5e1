#!/usr/bin/env bash
# Fan-out, Northstar and nginx + Nchan side by side, in one run.
# Each round also reports the server's CPU time per delivery (from
# /proc/<pid>/stat, user + system; nginx: master and workers), around the
# whole run and while publishing only (between the load tool's marks on
# stderr), since connecting 10,000 subscribers costs more than delivering.
#
# Method: both servers run on this machine's loopback, started by this
# script; the same load tool (northstar-load) drives both, alternating
# (Northstar, then Nchan, in every round), for ROUNDS rounds of each
# scenario, and the script prints each round, the median of each figure and
# the ratio Northstar / Nchan (or WS / SSE, or new build / baseline: see
# the scenarios and NORTHSTAR_BASELINE_DIR below). Northstar runs its embedded default (SQLite,
# fsync on every commit: every event is durable before it is delivered);
# Nchan keeps messages in memory (Benchmarks/nchan/nginx.conf, 2 workers,
# the same 2 cores). Only a ratio measured in one run carries from one
# machine to another.
#
# Scenarios (publish -> deliver over SSE unless named WS):
#   light        100 subscribers, 100 publishes/s (open loop)
#   light-1      1 subscriber, 100 publishes/s: the publish path alone, no
#                fan-out (set beside light, it tells the two apart)
#   open-50k     1,000 subscribers, 50 publishes/s  (50,000 deliveries/s asked)
#   open-100k    1,000 subscribers, 100 publishes/s (100,000 deliveries/s asked)
#   closed-1     1,000 subscribers, the next publish when the last is answered
#   closed-16    1,000 subscribers, 16 publishes in flight
#   ws-light     as light, WebSocket subscribers (Nchan's websocket subscriber)
#   ws-open-50k  as open-50k, WebSocket subscribers
#   10k          10,000 subscribers on one stream, 2 publishes/s
#   ws-vs-sse-light, ws-vs-sse-50k
#                as light and open-50k, Northstar against itself: WebSocket
#                subscribers, then SSE, in every round, so the two
#                transports run seconds apart instead of a scenario apart
#
#   Benchmarks/fanout_vs_nchan.sh [ROUNDS] [SECONDS] [SCENARIO...]   (default 5 rounds of 10 s, all)
#
# Needs: a release build (swift build -c release), Debian's nginx-light and
# libnginx-mod-nchan (installed here when missing). NORTHSTAR_RELEASE_DIR
# names another build folder to run instead. NORTHSTAR_BASELINE_DIR names a
# second build (a copy of .build/release made before a change): it runs
# beside the first, on port 8385, and takes Nchan's place in every
# scenario, so the two builds alternate round by round in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
seconds=${2:-10}
shift $(( $# > 2 ? 2 : $# ))
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(light open-50k open-100k closed-1 closed-16 ws-light ws-open-50k 10k ws-vs-sse-light ws-vs-sse-50k)
bin=${NORTHSTAR_RELEASE_DIR:-.build/release}
baseline_bin=${NORTHSTAR_BASELINE_DIR:-}
# What Northstar is set against in every scenario but ws-vs-sse.
peer=nchan
[ -n "$baseline_bin" ] && peer=baseline
if [ "$peer" = nchan ]; then
  for package in nginx-light libnginx-mod-nchan; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
  done
fi
# Which builds run, so a result can be traced to its binary (a build left
# over from an experiment looks like any other).
for folder in "$bin" $baseline_bin; do
  [ -x "$folder/northstar" ] && [ -x "$folder/northstar-load" ] || { echo "build first: swift build -c release (no $folder/northstar)" >&2; exit 1; }
  echo "build $folder: northstar of $(date -u -r "$folder/northstar" '+%Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$folder/northstar" | cut -c1-12)"
done

work=$(mktemp -d)
cleanup() { kill "${ns_pid:-}" "${baseline_pid:-}" "${nginx_pid:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true

# Starts a Northstar build on the embedded default, with room for 10,000
# subscribers from one address, in a data folder of its own; sets
# started_pid and started_token (a token it accepts).
# start_northstar BUILD_FOLDER PORT NAME
start_northstar() {
  local folder=$1 port=$2 name=$3
  python3 -c '
import json, os, sys
settings = json.load(open("Deploy/northstar.dev.json"))
settings["node"]["data_dir"] = sys.argv[1] + "/ns"
settings["limits"].update({"max_connections": 15000, "max_pending_connections_per_ip": 100000, "max_connections_per_user": 100000})
# One tenant holds every subscriber and one user publishes every event: no tenant cap, no request
# rates, no pace of WebSocket messages or stream starts (a key that a build from before it does not
# know is left out).
binary = open(sys.argv[2] + "/northstar", "rb").read()
off = {"max_connections_per_tenant": 100000, "writes_per_second_per_user": 0, "writes_per_second_per_tenant": 0,
       "reads_per_second_per_user": 0, "reads_per_second_per_tenant": 0,
       "ws_messages_per_second_per_user": 0, "ws_messages_per_second_per_tenant": 0}
for key, value in off.items():
    if key.encode() in binary:
        settings["limits"][key] = value
os.makedirs(sys.argv[1])
json.dump(settings, open(sys.argv[1] + "/config.json", "w"))' "$work/$name" "$folder"
  "$folder/northstar" serve --listen "127.0.0.1:$port" --config "$work/$name/config.json" --log-level warning &
  started_pid=$!
  for _ in $(seq 100); do curl -sf "localhost:$port/healthz" >/dev/null && break; sleep 0.1; done
  started_token=$("$folder/northstar" token --tenant t_bench --user bench --config "$work/$name/config.json")
}
start_northstar "$bin" 8384 northstar
ns_pid=$started_pid token=$started_token
if [ "$peer" = baseline ]; then
  start_northstar "$baseline_bin" 8385 baseline
  baseline_pid=$started_pid baseline_token=$started_token
else
  nginx -p "$PWD/Benchmarks/nchan" -c nginx.conf &
  nginx_pid=$!
fi

# CPU time (user + system, in clock ticks) a server's processes have used
# so far: a Northstar process, or nginx's master and workers.
# server_ticks northstar|baseline|nchan
server_ticks() {
  local pids total=0 pid stat fields
  case "$1" in
    northstar) pids=$ns_pid ;;
    baseline) pids=$baseline_pid ;;
    nchan) pids="$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')" ;;
  esac
  for pid in $pids; do
    stat=$(<"/proc/$pid/stat")
    read -r -a fields <<<"${stat##*) }"   # the fields after the command name: utime and stime are the 12th and 13th
    total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# A Northstar's fsyncs so far, from /metrics: "count sum_seconds count_over_10ms".
# fsyncs PORT
fsyncs() {
  curl -s "localhost:$1/metrics" | python3 -c '
import re, sys
count = total = within = 0.0
for line in sys.stdin:
    if line.startswith("northstar_commit_fsync_duration_seconds_count"): count = float(line.split()[-1])
    elif line.startswith("northstar_commit_fsync_duration_seconds_sum"): total = float(line.split()[-1])
    elif re.match(r"northstar_commit_fsync_duration_seconds_bucket\{le=\"0\.01\"\}", line): within = float(line.split()[-1])
print(int(count), total, int(count - within))'
}

# Waits until the load tool (PID) has written LINE to FILE, or has ended.
wait_for_mark() {
  until grep -qx "$1" "$2" 2>/dev/null; do kill -0 "$3" 2>/dev/null || return 0; sleep 0.02; done
}

# One run: prints "delivered_per_s p50_ms p99_ms delivered_percent server_cpu_us_per_delivery
# publishing_cpu_us_per_delivery fsyncs lost": the server's CPU over the whole run (connecting the
# subscribers included) and over the publishing only (from the load tool's marks), for
# Northstar the fsyncs of the run (their mean and how many took over 10 ms), and what the run
# lost: "-" when every accepted publish reached every subscriber and no publish was refused or
# left unanswered, else what went missing (such a round is no comparison).
# run northstar|baseline|nchan TRANSPORT SUBSCRIBERS PUBLISHER_FLAGS...
run() {
  local target=$1 transport=$2 subscribers=$3 output ticks publishing_ticks load_pid
  shift 3
  ticks=$(server_ticks "$target")
  local synced_before="0 0 0" synced_after="0 0 0" port=8384 bearer=$token
  [ "$target" = baseline ] && port=8385 bearer=$baseline_token
  if [ "$target" != nchan ]; then
    synced_before=$(fsyncs "$port")
    local thread scheme=http path=sse
    thread=$(curl -s -H "Authorization: Bearer $bearer" -d '{}' "localhost:$port/v1/threads" | python3 -c 'import json,sys; print(json.load(sys.stdin)["thread_id"])')
    [ "$transport" = ws ] && scheme=ws path=ws
    "$bin/northstar-load" --subscribe "$scheme://127.0.0.1:$port/$path/chat/$thread" \
      --publish "http://127.0.0.1:$port/v1/threads/$thread/messages" --header "Authorization: Bearer $bearer" \
      --subscribers "$subscribers" --seconds "$seconds" "$@" >"$work/load.out" 2>"$work/load.err" &
  else
    local channel="c$RANDOM$RANDOM" subscribe
    subscribe="http://127.0.0.1:8390/sub?id=$channel"
    [ "$transport" = ws ] && subscribe="ws://127.0.0.1:8390/ws?id=$channel"
    "$bin/northstar-load" --subscribe "$subscribe" \
      --publish "http://127.0.0.1:8390/pub?id=$channel" --body '{"text":"{{ts}}"}' \
      --subscribers "$subscribers" --seconds "$seconds" "$@" >"$work/load.out" 2>"$work/load.err" &
  fi
  load_pid=$!
  wait_for_mark publishing "$work/load.err" "$load_pid"
  publishing_ticks=$(server_ticks "$target")
  wait_for_mark published "$work/load.err" "$load_pid"
  publishing_ticks=$(( $(server_ticks "$target") - publishing_ticks ))
  wait "$load_pid" || true
  grep -vx -e publishing -e published "$work/load.err" >&2 || true  # the tool's own complaints, if any
  output=$(<"$work/load.out")
  ticks=$(( $(server_ticks "$target") - ticks ))
  [ "$target" != nchan ] && synced_after=$(fsyncs "$port")
  python3 -c '
import os, re, sys
text = sys.stdin.read()
delivered = re.search(r"delivered: (\d+) of \d+ \(([\d.]+)%\), (\d+) events/s", text)
latency = re.search(r"latency ms: p50 ([\d.]+|nan)\s+p90 \S+\s+p99 ([\d.]+|nan)", text)
before, after = sys.argv[2].split(), sys.argv[3].split()
count = int(after[0]) - int(before[0])
fsync = f"{(float(after[1]) - float(before[1])) * 1000 / count:.2f}ms/{int(after[2]) - int(before[2])}" if count else "-"
published = re.search(r"(\d+) refused, (\d+) unanswered", text)
if not delivered or not latency:
    print(0, "nan", "nan", 0, "nan", "nan", fsync, "no-result"); sys.exit()
lost = []
if float(delivered.group(2)) < 100: lost.append(f"delivered-{delivered.group(2)}%")
if not published: lost.append("no-publish-counts")
elif published.group(1) != "0" or published.group(2) != "0": lost.append(f"{published.group(1)}-refused-{published.group(2)}-unanswered")
tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
per_delivery = lambda ticks: "%.2f" % (int(ticks) * tick_us / max(1, int(delivered.group(1))))
print(delivered.group(3), latency.group(1), latency.group(2), delivered.group(2), per_delivery(sys.argv[1]),
      per_delivery(sys.argv[4]), fsync, ",".join(lost) or "-")' "$ticks" "$synced_before" "$synced_after" "$publishing_ticks" <<<"$output"
}

median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# How a side of a comparison is named in the output: "Northstar SSE", "Nchan WS"...
label() {
  local name
  case "${1%:*}" in northstar) name=Northstar ;; baseline) name=Baseline ;; nchan) name=Nchan ;; esac
  case "${1#*:}" in sse) name+=" SSE" ;; ws) name+=" WS" ;; esac
  echo "$name"
}

# Runs two sides one after the other in every round, and prints each round,
# the medians and the ratio first/second. A side is SERVER:TRANSPORT
# (northstar, baseline or nchan; sse or ws).
# scenario NAME FIRST SECOND SUBSCRIBERS PUBLISHER_FLAGS...
scenario() {
  local name=$1 subscribers=$4 sides=("$2" "$3")
  shift 4
  declare -A rates p50s p99s cpus publishing_cpus incomplete
  for side in "${sides[@]}"; do rates[$side]=""; p50s[$side]=""; p99s[$side]=""; cpus[$side]=""; publishing_cpus[$side]=""; incomplete[$side]=0; done
  for round in $(seq "$rounds"); do
    for side in "${sides[@]}"; do
      read -r per_s p50 p99 percent cpu publishing_cpu fsync lost < <(run "${side%:*}" "${side#*:}" "$subscribers" "$@")
      local disk="" warning=""
      [ "$fsync" != "-" ] && disk=", fsync mean ${fsync%/*}, ${fsync#*/} over 10 ms"
      if [ "$lost" != "-" ]; then
        warning=", INCOMPLETE: $lost"
        incomplete[$side]=$(( incomplete[$side] + 1 ))
      fi
      echo "  round $round $(label "$side"): $per_s deliveries/s ($percent%), p50 $p50 ms, p99 $p99 ms, server CPU $cpu µs per delivery ($publishing_cpu while publishing)$disk$warning"
      rates[$side]+=" $per_s"; p50s[$side]+=" $p50"; p99s[$side]+=" $p99"; cpus[$side]+=" $cpu"
      publishing_cpus[$side]+=" $publishing_cpu"
    done
  done
  local first=${sides[0]} second=${sides[1]} first_label second_label
  first_label=$(label "$first"); second_label=$(label "$second")
  printf '%s: medians of %d rounds of %d s\n' "$name" "$rounds" "$seconds"
  for side in "${sides[@]}"; do
    printf '  %-14s %.0f deliveries/s, p50 %.2f ms, p99 %.2f ms\n' "$(label "$side")" \
      "$(median ${rates[$side]})" "$(median ${p50s[$side]})" "$(median ${p99s[$side]})"
  done
  python3 -c "import sys; a,b,c,d,e,f = map(float, sys.argv[1:]); print(f'  ratio $first_label/$second_label: deliveries {a/b:.2f}x, p50 {c/d:.2f}x, p99 {e/f:.2f}x')" \
    "$(median ${rates[$first]})" "$(median ${rates[$second]})" "$(median ${p50s[$first]})" "$(median ${p50s[$second]})" \
    "$(median ${p99s[$first]})" "$(median ${p99s[$second]})"
  printf '  server CPU per delivery (user + system, whole run): %s %s µs, %s %s µs\n' \
    "$first_label" "$(median ${cpus[$first]})" "$second_label" "$(median ${cpus[$second]})"
  printf '  server CPU per delivery while publishing (connecting left out): %s %s µs, %s %s µs\n' \
    "$first_label" "$(median ${publishing_cpus[$first]})" "$second_label" "$(median ${publishing_cpus[$second]})"
  if [ "${incomplete[$first]}" -gt 0 ] || [ "${incomplete[$second]}" -gt 0 ]; then
    printf '  WARNING: incomplete rounds (events not delivered, publishes refused or unanswered): %s %d, %s %d; the medians above include them\n' \
      "$first_label" "${incomplete[$first]}" "$second_label" "${incomplete[$second]}"
  fi
}

for name in "${scenarios[@]}"; do
  case "$name" in
    light) scenario "light: 100 SSE subscribers x 100 msg/s" northstar:sse "$peer:sse" 100 --rate 100 ;;
    light-1) scenario "light, one subscriber: 1 SSE subscriber x 100 msg/s" northstar:sse "$peer:sse" 1 --rate 100 ;;
    open-50k) scenario "open loop: 1,000 SSE subscribers x 50 msg/s (50,000 deliveries/s asked)" northstar:sse "$peer:sse" 1000 --rate 50 ;;
    open-100k) scenario "open loop: 1,000 SSE subscribers x 100 msg/s (100,000 deliveries/s asked)" northstar:sse "$peer:sse" 1000 --rate 100 ;;
    closed-1) scenario "closed loop: 1,000 SSE subscribers, 1 publish in flight" northstar:sse "$peer:sse" 1000 --in-flight 1 ;;
    closed-16) scenario "closed loop: 1,000 SSE subscribers, 16 publishes in flight" northstar:sse "$peer:sse" 1000 --in-flight 16 ;;
    ws-light) scenario "WS light: 100 WebSocket subscribers x 100 msg/s" northstar:ws "$peer:ws" 100 --rate 100 ;;
    ws-open-50k) scenario "WS open loop: 1,000 WebSocket subscribers x 50 msg/s" northstar:ws "$peer:ws" 1000 --rate 50 ;;
    10k) scenario "10,000 SSE subscribers on one stream x 2 msg/s" northstar:sse "$peer:sse" 10000 --rate 2 ;;
    ws-vs-sse-light) scenario "WS against SSE, light: 100 subscribers x 100 msg/s" northstar:ws northstar:sse 100 --rate 100 ;;
    ws-vs-sse-50k) scenario "WS against SSE, open loop: 1,000 subscribers x 50 msg/s" northstar:ws northstar:sse 1000 --rate 50 ;;
    *) echo "unknown scenario: $name" >&2; exit 2 ;;
  esac
done
