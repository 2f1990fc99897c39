#!/usr/bin/env bash
# The web client in a real browser: starts the given chat-es binary on a free port and has two
# headless Chromium sessions (Selenium + chromedriver from Debian) sign up, chat live both ways,
# reload, log out, download one user's data and delete that account (the other page then shows
# "[deleted]" and erased messages). Screenshots go to artifacts/. Usage: web-test/run.sh path/to/chat-es
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:?usage: web-test/run.sh path/to/chat-es}
[[ -x $bin ]] || { echo "web-test: $bin is not an executable" >&2; exit 2; }
# Debian's selenium is for Debian's python; a pyenv python3 on PATH would not see it.
py=/usr/bin/python3

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[[ -x /usr/bin/chromedriver ]] || need+=(chromium-driver)
$py -c 'import selenium' >/dev/null 2>&1 || need+=(python3-selenium)
if ((${#need[@]})); then
  echo "web-test: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 900 apt-get update -qq
  timeout 900 apt-get install -y -qq "${need[@]}" >/dev/null
fi

data=$(mktemp -d /tmp/chat-es-web.XXXXXX)
log="$data/server.log"
server=""
cleanup() {
  if [[ -n $server ]] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

port=$($py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
# A short access lifetime so the page's refresh-before-expiry and socket reconnect happen during the test.
CHAT_ES_SECRET=web-test-secret-web-test-secret-0001 \
  "$bin" serve --data "$data/store" --port "$port" --password-iterations 2000 --access-lifetime 20 >"$log" 2>&1 &
server=$!

url="http://127.0.0.1:$port"
healthy() {
  $py -c 'import sys, urllib.request; sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)' \
    "$url/healthz" >/dev/null 2>&1
}
for _ in $(seq 150); do
  healthy && break
  kill -0 "$server" 2>/dev/null || { echo "web-test: the server exited:" >&2; tail -20 "$log" >&2; exit 1; }
  sleep 0.2
done
healthy || { echo "web-test: no healthy server at $url" >&2; tail -20 "$log" >&2; exit 1; }

mkdir -p artifacts
rm -f artifacts/web-chat-*.png
status=0
timeout 300 $py web-test/chat_in_browser.py --url "$url" --artifacts artifacts --access-lifetime 20 || status=$?
if ((status != 0)); then
  echo "web-test: FAILED (exit $status); server log tail:" >&2
  tail -20 "$log" >&2
fi
exit $status
