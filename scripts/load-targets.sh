#!/usr/bin/env bash
# Measures issue 4's three load targets in one run, against the release server on fresh data
# directories (one per measurement), each with the machine's own fsync time read from the
# server's /metrics in the same run:
#   django  ≥ 20× the Django peer's delivered/s at the same settings (scripts/compare-django.sh)
#   users   ≥ 50,000 delivered/s with 1,000 connected users
#   paced   ack p99 < 5 ms at 5,000 messages/s (the issue assumes a disk that fsyncs in ~0.2 ms)
#   floor   the same at 100 messages/s: what the disk and idle wake-ups cost with no load at all
# usage: scripts/load-targets.sh [--rounds N] [--only django|users|paced|floor] [--bin PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=2 only="" bin=.build/release/chat-es
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--only django|users|paced|floor] [--bin PATH]" >&2; exit 2 ;;
  esac
done
[[ -x $bin ]] || swift build -c release >/dev/null
work=$(mktemp -d)
pid=0
trap '((pid)) && kill -- -$pid 2>/dev/null; rm -rf "$work"' EXIT
port=18711

# One loadgen run against a fresh server; prints one line of figures.
measure() {
  local label=$1 serve_flags=$2; shift 2
  rm -rf "$work/data"
  setsid "$bin" serve --data "$work/data" --port $port --password-iterations 1000 --fsync always $serve_flags \
    >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local before after
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  /usr/bin/time -f "%U %S" -o "$work/loadgen.time" \
    "$bin" loadgen --url "http://127.0.0.1:$port" "$@" --json >"$work/loadgen.json"
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  curl -s "http://127.0.0.1:$port/metrics" | grep -E '^chat_log_fsync' >"$work/fsync.txt" || true
  kill -TERM -- -$pid; wait $pid 2>/dev/null || true
  pid=0
  python3 - "$label" "$work/loadgen.json" "$work/loadgen.time" $((after - before)) "$(getconf CLK_TCK)" "$work/fsync.txt" <<'PY'
import json, sys
label, report, times, ticks, hz, fsync = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
user, system = map(float, open(times).read().split()[-2:])
metrics = dict(line.split() for line in open(fsync) if line.strip())
syncs, seconds = float(metrics.get("chat_log_fsyncs_total", 0)), float(metrics.get("chat_log_fsync_seconds_total", 0))
messages = max(1, report["acked"])
ack = report["ack_ms"]
print(f"{label:7s} delivered/s {report['delivered_per_s']:9,.0f}  ack p50/p99/p999 {ack['p50']:.2f}/{ack['p99']:.2f}/{ack['p999']:.2f} ms"
      f"  CPU µs/msg server {ticks / hz * 1e6 / messages:.1f} loadgen {(user + system) * 1e6 / messages:.1f}"
      f"  fsync mean {1e3 * seconds / max(syncs, 1):.2f} ms  errors {report['errors']}")
PY
}

for round in $(seq 1 "$rounds"); do
  echo "round $round"
  if [[ -z $only || $only == django ]]; then
    ES_FLAGS="--socket-rate 100000" scripts/compare-django.sh --users 20 --senders 10 --rate 0 --duration 10 |
      python3 -c '
import json, sys
runs = {line.split(":", 1)[0].strip(): json.loads(line.split(":", 1)[1]) for line in sys.stdin if line.startswith(("chat-es:", "django:"))}
es, dj = runs["chat-es"]["delivered_per_s"], runs["django"]["delivered_per_s"]
print(f"django  chat-es {es:,.0f} vs django-chat {dj:,.0f} delivered/s = {es / max(dj, 1e-9):,.0f}x (target 20x)")'
  fi
  if [[ -z $only || $only == users ]]; then
    measure users "--socket-rate 100000" --users 1000 --senders 1000 --rate 0 --duration 10
  fi
  if [[ -z $only || $only == paced ]]; then
    measure paced "" --users 100 --senders 50 --rate 5000 --duration 10
  fi
  if [[ -z $only || $only == floor ]]; then
    measure floor "" --users 100 --senders 50 --rate 100 --duration 10
  fi
done
