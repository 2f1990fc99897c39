#!/usr/bin/env bash
# Issue 13's figures in one run, on one log of --events events written by `bench replay`:
#   rebuild    `chat-es rebuild` wall time vs `cat <segments> | lz4 -dc > /dev/null` (target ≤ 2×)
#   start      serve → /healthz 200 with a full replay vs from a snapshot (target ≤ 10 %), and the
#              resident memory after each start (a snapshot start must use no more)
#   snapshot   ack p99 of a paced load while snapshots are written back to back vs with none
# Each pair alternates its two sides round by round. Servers are stopped with SIGKILL, so no
# shutdown snapshot changes the next measurement.
# usage: scripts/start-targets.sh [--bin PATH] [--rounds N] [--events N] [--rate R]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release/chat-es rounds=3 events=2000000 rate=2000
while (($#)); do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --events) events=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    *) echo "usage: $0 [--bin PATH] [--rounds N] [--events N] [--rate R]" >&2; exit 2 ;;
  esac
done
[[ -x $bin ]] || { echo "start-targets: $bin not found (swift build -c release)" >&2; exit 2; }
work=$(mktemp -d)
pid=0
trap '((pid)) && kill -9 -- -$pid 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$work/data
export CHAT_ES_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

echo "writing a $events-event log (bench replay)…" >&2
"$bin" bench replay --events "$events" --data "$data" --keep >"$work/bench.txt"
grep -E "^(on disk|rebuild)" "$work/bench.txt" >&2

now() { date +%s.%N; }
# Starts serve on $data with extra flags; sets `started` (seconds to /healthz 200) and `rss` (MiB).
start_once() {
  local t0 t1
  t0=$(now)
  setsid "$bin" serve --data "$data" --port $port --password-iterations 1000 "$@" >"$work/server.log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do
    kill -0 $pid 2>/dev/null || { tail -5 "$work/server.log" >&2; exit 1; }
    sleep 0.005
  done
  t1=$(now)
  rss=$(( $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") / 1024 ))
  started=$(echo "$t1 - $t0" | bc -l | cut -c1-6)
}
stop_hard() { kill -9 -- -$pid 2>/dev/null || true; wait $pid 2>/dev/null || true; pid=0; }

echo "== rebuild vs lz4 -dc (wall seconds)"
for round in $(seq 1 "$rounds"); do
  a=$( { /usr/bin/time -f %e "$bin" rebuild --data "$data" >/dev/null; } 2>&1 )
  b=$( { /usr/bin/time -f %e sh -c "cat $data/log/*.seg | lz4 -dc > /dev/null"; } 2>&1 )
  echo "round $round  rebuild $a s  lz4 -dc $b s  ratio $(echo "$a / $b" | bc -l | cut -c1-4)"
done

echo "== start: full replay vs from a snapshot (seconds to /healthz 200, RSS MiB)"
for round in $(seq 1 "$rounds"); do
  rm -rf "$data/snapshots"
  start_once --snapshot-every-events 0
  full=$started full_rss=$rss
  stop_hard
  "$bin" rebuild --data "$data" --write-snapshot >/dev/null 2>&1
  start_once --snapshot-every-events 0
  snap=$started snap_rss=$rss
  grep -o "starting from snapshot [^ ]*" "$work/server.log" >/dev/null || echo "  (the snapshot was not used!)"
  stop_hard
  echo "round $round  full $full s ($full_rss MiB)  snapshot $snap s ($snap_rss MiB)  ratio $(echo "100 * $snap / $full" | bc -l | cut -c1-4) %"
done

echo "== paced $rate msg/s ack p99: snapshots written back to back vs none"
for round in $(seq 1 "$rounds"); do
  for mode in none busy; do
    flags=(--snapshot-every-events 0)
    [[ $mode == busy ]] && flags=(--snapshot-every-events 1 --snapshot-every-seconds 1)
    start_once "${flags[@]}"
    "$bin" loadgen --url "http://127.0.0.1:$port" --users 100 --senders 50 --rate "$rate" --duration 15 --json >"$work/load.json"
    written=$(grep -c "snapshot at seq" "$work/server.log" || true)
    stop_hard
    python3 - "$mode" "$work/load.json" "$written" <<'PY'
import json, sys
mode, r, written = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
a = r["ack_ms"]
print(f"{mode:5s} ack p50/p99/p999 {a['p50']:.2f}/{a['p99']:.2f}/{a['p999']:.2f} ms  delivered/s {r['delivered_per_s']:,.0f}"
      f"  errors {r['errors']}  snapshots written during the load {written}")
PY
  done
done
