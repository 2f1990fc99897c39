#!/usr/bin/env bash
# What sealing personal fields costs: the same workload on two binaries, alternated round by
# round so the VM's drift hits both alike (issue 12). Per binary and round:
#   replay  `bench replay --events N`: rebuild events/s and log bytes on disk per event
#   users   1,000 connected users at full speed (--fsync always): appends (acked messages)/s,
#           delivered msg/s, ack p99, server CPU µs per message, log bytes per message
#   paced   5,000 msg/s paced: ack p99
# The load generator is always the new binary's, so only the server differs.
# usage: scripts/encryption-cost.sh --old PATH [--new PATH] [--rounds N] [--events N]
set -euo pipefail
cd "$(dirname "$0")/.."
old="" new=.build/release/chat-es rounds=3 events=1000000
while (($#)); do
  case $1 in
    --old) old=$2; shift 2 ;;
    --new) new=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --events) events=$2; shift 2 ;;
    *) echo "usage: $0 --old PATH [--new PATH] [--rounds N] [--events N]" >&2; exit 2 ;;
  esac
done
[[ -x $old && -x $new ]] || { echo "encryption-cost: need executable --old and --new binaries" >&2; exit 2; }
work=$(mktemp -d)
pid=0
trap '((pid)) && kill -- -$pid 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
results=$work/results.jsonl

replay() {
  local label=$1 bin=$2
  "$bin" bench replay --events "$events" >"$work/replay.txt"
  python3 - "$label" "$work/replay.txt" "$events" >>"$results" <<'PY'
import json, re, sys
label, text, events = sys.argv[1], open(sys.argv[2]).read(), int(sys.argv[3])
rate = float(re.search(r"rebuild:\s+([\d,]+) events/s", text).group(1).replace(",", ""))
disk = float(re.search(r"([\d,]+) B on disk", text).group(1).replace(",", ""))
print(json.dumps({"bin": label, "kind": "replay", "rebuild_per_s": rate, "disk_b_per_event": disk / events}))
PY
}

serve_and_load() {
  local label=$1 bin=$2 kind=$3; shift 3
  rm -rf "$work/data"
  CHAT_ES_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
    setsid "$bin" serve --data "$work/data" --port $port --password-iterations 1000 --fsync always "${serve_flags[@]}" \
    >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local before after
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  "$new" loadgen --url "http://127.0.0.1:$port" "$@" --json >"$work/loadgen.json"
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill -TERM -- -$pid; wait $pid 2>/dev/null || true
  pid=0
  local bytes
  bytes=$(cat "$work"/data/log/*.seg | wc -c)
  python3 - "$label" "$kind" "$work/loadgen.json" $((after - before)) "$(getconf CLK_TCK)" "$bytes" >>"$results" <<'PY'
import json, sys
label, kind, report, ticks, hz, size = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3])), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
acked = max(1, report["acked"])
print(json.dumps({"bin": label, "kind": kind, "appends_per_s": report["acked_per_s"], "delivered_per_s": report["delivered_per_s"],
                  "ack_p99_ms": report["ack_ms"]["p99"], "cpu_us_per_msg": ticks / hz * 1e6 / acked,
                  "log_b_per_msg": size / acked, "errors": report["errors"], "undelivered": report["undelivered"]}))
PY
}

for round in $(seq 1 "$rounds"); do
  # Alternate which binary goes first, so neither always meets the warmer (or colder) machine.
  order=(old new)
  ((round % 2 == 0)) && order=(new old)
  for which in "${order[@]}"; do
    bin=$old
    [[ $which == new ]] && bin=$new
    echo "round $round: $which" >&2
    replay "$which" "$bin"
    serve_flags=(--socket-rate 100000)
    serve_and_load "$which" "$bin" users --users 1000 --senders 1000 --rate 0 --duration 10
    serve_flags=()
    serve_and_load "$which" "$bin" paced --users 100 --senders 50 --rate 5000 --duration 10
  done
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def med(bin, kind, key):
    values = [r[key] for r in rows if r["bin"] == bin and r["kind"] == kind]
    return statistics.median(values), values
print(f"{'figure':32s} {'old (median)':>14s} {'new (median)':>14s} {'new/old':>8s}   runs old | new")
for kind, key, name in [("replay", "rebuild_per_s", "rebuild events/s"), ("replay", "disk_b_per_event", "log B per event (bench log)"),
                        ("users", "appends_per_s", "appends/s (1,000 users)"), ("users", "delivered_per_s", "delivered msg/s (1,000 users)"),
                        ("users", "ack_p99_ms", "ack p99 ms (1,000 users)"), ("users", "cpu_us_per_msg", "server CPU µs/msg (1,000 users)"),
                        ("users", "log_b_per_msg", "log B per message (1,000 users)"), ("paced", "ack_p99_ms", "ack p99 ms (5,000/s paced)")]:
    (o, os_), (n, ns) = med("old", kind, key), med("new", kind, key)
    fmt = (lambda v: f"{v:,.0f}") if max(o, n) >= 100 else (lambda v: f"{v:.2f}")
    print(f"{name:32s} {fmt(o):>14s} {fmt(n):>14s} {n / o if o else float('nan'):8.3f}   "
          f"{' '.join(fmt(v) for v in os_)} | {' '.join(fmt(v) for v in ns)}")
bad = [r for r in rows if r.get("errors") or r.get("undelivered")]
print(f"runs with errors or undelivered messages: {len(bad)}")
PY
