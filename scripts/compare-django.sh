#!/usr/bin/env bash
# Runs the same loadgen settings against chat-es (release) and the Django reference peer,
# one after the other on fresh data directories, and prints both JSON results.
# usage: scripts/compare-django.sh [loadgen flags...]   (default: --users 20 --senders 10 --rate 0 --duration 10)
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
((${#args[@]})) || args=(--users 20 --senders 10 --rate 0 --duration 10)
bin=.build/release/chat-es
[[ -x $bin ]] || swift build -c release >/dev/null
peer=../shared/peers/django-chat
work=$(mktemp -d)
trap 'kill -- -$es_pid -$dj_pid 2>/dev/null || true; rm -rf "$work"' EXIT
es_pid=0 dj_pid=0

wait_healthy() {
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return 0
    sleep 0.2
  done
  echo "server on $1 did not become healthy" >&2
  return 1
}

setsid "$bin" serve --data "$work/es" --port 18701 --password-iterations 1000 ${ES_FLAGS:-} >"$work/es.log" 2>&1 &
es_pid=$!
wait_healthy 18701
echo "chat-es: $("$bin" loadgen --url http://127.0.0.1:18701 "${args[@]}" --json)"
kill -TERM -- -$es_pid; wait $es_pid 2>/dev/null || true

PEER_FAST_HASH=1 setsid "$peer/run.sh" 18702 "$work/dj" >"$work/dj.log" 2>&1 &
dj_pid=$!
wait_healthy 18702
echo "django:  $("$bin" loadgen --url http://127.0.0.1:18702 "${args[@]}" --json)"
kill -TERM -- -$dj_pid; wait $dj_pid 2>/dev/null || true
