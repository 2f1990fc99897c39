#!/usr/bin/env bash
# Reliability campaigns of chat-es (see RELIABILITY.md): crash, storage, fuzz, isolation, erasure,
# and postgres (the log in PostgreSQL) and multinode (three nodes on one PostgreSQL log) when
# PostgreSQL is installed.
#
# usage: reliability/run.sh [--cycles N] [--fuzz-seconds S] [--erasure-rounds N] [--pg-cycles N]
#                           [--only NAME[,NAME...]]
#
# Runs each campaign against the release binary (CHAT_ES_BIN, default
# .build/release/chat-es; build it first with `swift build -c release`), each under
# its own time limit so the whole run stays under 7 minutes, 10.5 with postgres and multinode
# (plus a one-time venv creation). postgres and multinode run only when
# /usr/lib/postgresql/*/bin exists (each starts a throwaway cluster with scripts/pg-temp.sh);
# otherwise they are reported skipped and counted neither way. Prints every campaign's figures,
# then a last line `N passed, M failed` (campaigns counted); exits 1 if any campaign failed or
# ran out of time.
#
# Environment:
#   CHAT_ES_BIN              the chat-es binary under test
#   CHAT_RELIABILITY_VENV    virtualenv to create once and reuse (default /tmp/chat-es-reliability-venv)
#   CHAT_RELIABILITY_PYTHON  interpreter that creates it (default python3, >= 3.9)
#   CHAT_KEEP_DATA=1         keep the temporary data dirs and server output
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
venv=${CHAT_RELIABILITY_VENV:-/tmp/chat-es-reliability-venv}
py=${CHAT_RELIABILITY_PYTHON:-python3}
pins=(requests==2.34.2 websockets==15.0.1)
export CHAT_ES_BIN=${CHAT_ES_BIN:-$repo/.build/release/chat-es}

cycles=50
fuzz_seconds=45
erasure_rounds=40
pg_cycles=5
only=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cycles) cycles=$2; shift 2 ;;
    --fuzz-seconds) fuzz_seconds=$2; shift 2 ;;
    --erasure-rounds) erasure_rounds=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --pg-cycles) pg_cycles=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

selected() { [[ -z $only || ",$only," == *",$1,"* ]]; }
pg_installed() { ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; }
# The campaigns this run would count: what a failure before any of them ran counts as failed.
expected=0
for name in crash storage fuzz isolation erasure postgres multinode; do
  if selected "$name" && { [[ $name != postgres && $name != multinode ]] || pg_installed; }; then
    expected=$((expected + 1))
  fi
done

if [[ ! -x $CHAT_ES_BIN ]]; then
  echo "run.sh: $CHAT_ES_BIN not found; build it with: swift build -c release" >&2
  echo "0 passed, $expected failed"
  exit 1
fi

# Create the virtualenv once (guarded by a lock so parallel runs do not race).
want="${pins[*]}"
stamp="$venv/.chat-reliability-pins"
if [[ ! -x $venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  mkdir -p "$(dirname "$venv")"
  (
    if command -v flock >/dev/null 2>&1; then flock 9; fi
    if [[ ! -x $venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
      echo "run.sh: creating $venv ($want)" >&2
      rm -rf "$venv"
      "$py" -m venv "$venv" &&
        timeout 300 "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q "${pins[@]}" </dev/null &&
        printf '%s' "$want" >"$stamp"
    fi
  ) 9>"$venv.lock"
fi
python=$venv/bin/python
if ! "$python" -c 'import requests, websockets' 2>/dev/null; then
  echo "run.sh: $venv lacks requests/websockets" >&2
  echo "0 passed, $expected failed"
  exit 1
fi

export PYTHONDONTWRITEBYTECODE=1
passed=0
failed=0
failed_names=()
t_start=$(date +%s)

# name, time limit (s), command
run_campaign() {
  local name=$1 limit=$2; shift 2
  selected "$name" || return
  echo "=== $name (limit ${limit}s): $*"
  local t0=$(date +%s)
  timeout -k 10 "$limit" "$python" "$@" </dev/null
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  if [[ $rc -eq 0 ]]; then
    passed=$((passed + 1)); echo "=== $name: passed in ${dt}s"
  else
    failed=$((failed + 1)); failed_names+=("$name")
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
      echo "=== $name: FAILED (out of time after ${dt}s)"
    else
      echo "=== $name: FAILED (exit $rc) in ${dt}s"
    fi
  fi
}

run_campaign crash 110 "$here/crash.py" --cycles "$cycles"
run_campaign storage 75 "$here/storage.py"
run_campaign fuzz $((fuzz_seconds + 40)) "$here/fuzz.py" --seconds "$fuzz_seconds"
run_campaign isolation 45 "$here/isolation.py"
run_campaign erasure 90 "$here/erasure.py" --rounds "$erasure_rounds"
if pg_installed; then
  run_campaign postgres 90 "$here/postgres.py" --cycles "$pg_cycles"
  run_campaign multinode 120 "$here/multinode.py"
else
  for name in postgres multinode; do
    if selected "$name"; then
      echo "=== $name: skipped (PostgreSQL is not installed: no /usr/lib/postgresql/*/bin)"
    fi
  done
fi

echo "=== total $(( $(date +%s) - t_start ))s${failed_names[*]:+; failed: ${failed_names[*]}}"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
