"""Shared helpers of the chat-es reliability campaigns (stdlib + requests + websockets).

The campaigns treat the server as a black box: they start the release binary in
its own process group, speak the wire contract (../shared/API.md) to it, kill it,
and audit its data directory with the binary's read-only subcommands
(`verify`, `replay`, `rebuild`).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from typing import Optional

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BIN = os.environ.get("CHAT_ES_BIN", os.path.join(REPO, ".build", "release", "chat-es"))
PASSWORD = "s3cret-pass-word"

_live: "set[Server]" = set()
# a kill -9 mid-frame makes the websockets library log "unexpected internal error"; the
# campaigns see the failure through the exception they get anyway
logging.getLogger("websockets").setLevel(logging.CRITICAL)


@atexit.register
def _kill_leftovers() -> None:
    for s in list(_live):
        s.kill()


def _on_term(signum, frame):  # `timeout` sends SIGTERM: unwind so finally blocks and atexit run
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_term)


def send_burst(ws, cids: list[str], receiver: str, acked: dict[str, int]) -> None:
    """Sends one message per client id on `ws`, pipelined, then reads until each is acked,
    recording the message ids in `acked`; an error frame raises."""
    for cid in cids:
        ws.send(json.dumps({"message": "text " + cid, "receiver": receiver, "client_id": cid}))
    pending = set(cids)
    while pending:
        f = json.loads(ws.recv(timeout=5))
        if f.get("type") == "message.ack":
            acked[f["client_id"]] = f["id"]
            pending.discard(f["client_id"])
        elif f.get("type") == "error":
            raise RuntimeError(f"error frame {f}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rand_name(prefix: str = "u") -> str:
    return prefix + "_" + "".join(random.choices(string.ascii_lowercase + string.digits, k=10))


def tool(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `chat-es <args>` and capture its output."""
    return subprocess.run([BIN, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors="replace", timeout=timeout)


def replay_events(data: str) -> list[dict]:
    r = tool("replay", "--data", data, "--format", "jsonl")
    if r.returncode != 0:
        raise RuntimeError(f"replay exited {r.returncode}: {r.stderr.strip()[-500:]}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def rebuild_digests(data: str, as_of: Optional[int] = None, from_snapshot: bool = False) -> dict[str, str]:
    """The view digests of `rebuild` (with `from_snapshot`: started as `serve` starts)."""
    r = tool("rebuild", "--data", data, *(["--as-of", str(as_of)] if as_of is not None else []),
             *(["--from-snapshot"] if from_snapshot else []))
    if r.returncode != 0:
        raise RuntimeError(f"rebuild exited {r.returncode}: {r.stderr.strip()[-500:]}")
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            out[parts[0]] = parts[1].strip()
    return out


def segments(data: str) -> list[str]:
    d = os.path.join(data, "log")
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".seg"))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class StartFailed(Exception):
    def __init__(self, rc: Optional[int], output: str):
        super().__init__(f"server did not start (exit {rc})")
        self.rc = rc
        self.output = output


class Server:
    """The release server on a data dir, in its own process group."""

    def __init__(self, data: Optional[str] = None, iterations: int = 1000,
                 fsync: str = "always", extra: Optional[list[str]] = None):
        self.base = tempfile.mkdtemp(prefix="chat-rel-")
        self.data = data or os.path.join(self.base, "data")
        os.makedirs(self.data, exist_ok=True)
        self.out_path = os.path.join(self.base, "server.out")
        self.iterations = iterations
        self.fsync = fsync
        self.extra = extra or []
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.http = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, timeout: float = 60, expect_fail: bool = False, env: Optional[dict] = None,
              wait: bool = True) -> "Server":
        """Spawn the server; `env` adds variables for this run only (e.g. a test hook);
        with wait=False return at once instead of waiting for /healthz."""
        assert self.proc is None
        self.port = free_port()
        cmd = [BIN, "serve", "--data", self.data, "--port", str(self.port),
               "--password-iterations", str(self.iterations), "--fsync", self.fsync, *self.extra]
        self._out_start = os.path.getsize(self.out_path) if os.path.exists(self.out_path) else 0
        with open(self.out_path, "ab") as f:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, **env} if env else None)
        _live.add(self)
        if not wait:
            return self
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                _live.discard(self)
                raise StartFailed(rc, self.output_since_start())
            try:
                r = self.http.get(self.url + "/healthz", timeout=2)
                if r.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise StartFailed(None, "timeout waiting for /healthz\n" + self.output_since_start())
            time.sleep(0.02)

    def output_since_start(self) -> str:
        try:
            with open(self.out_path, "rb") as f:
                f.seek(getattr(self, "_out_start", 0))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None
        _live.discard(self)
        self.http = requests.Session()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, wait; SIGKILL if it does not go in time. Returns the exit status."""
        if self.proc is None:
            return 0
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9
        self.proc = None
        _live.discard(self)
        self.http = requests.Session()
        return rc

    def wait_exit(self, timeout: float = 10) -> Optional[int]:
        """Reap a server that ends by itself (a crash hook); its exit status, None if it did
        not end in time (it is then killed)."""
        if self.proc is None:
            return None
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        try:  # anything else left in its process group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc = None
        _live.discard(self)
        self.http = requests.Session()
        return rc

    def restart(self) -> "Server":
        self.stop()
        return self.start()

    def health(self) -> dict:
        r = self.http.get(self.url + "/healthz", timeout=5)
        r.raise_for_status()
        return r.json()

    def cleanup(self) -> None:
        self.kill()
        if os.environ.get("CHAT_KEEP_DATA") != "1":
            shutil.rmtree(self.base, ignore_errors=True)

    # -- API helpers -------------------------------------------------------
    def post(self, path: str, body=None, token: Optional[str] = None, timeout: float = 10, **kw):
        h = kw.pop("headers", {})
        if token:
            h["Authorization"] = "Bearer " + token
        return self.http.post(self.url + path, json=body, headers=h, timeout=timeout, **kw)

    def get(self, path: str, token: Optional[str] = None, timeout: float = 10, **kw):
        h = kw.pop("headers", {})
        if token:
            h["Authorization"] = "Bearer " + token
        return self.http.get(self.url + path, headers=h, timeout=timeout, **kw)

    def register(self, username: str, password: str = PASSWORD) -> dict:
        r = self.post("/api/register/", {"username": username, "password": password})
        if r.status_code != 201:
            raise RuntimeError(f"register {username}: {r.status_code} {r.text[:200]}")
        return r.json()

    def login(self, username: str, password: str = PASSWORD) -> dict:
        for _ in range(20):
            r = self.post("/api/login/", {"username": username, "password": password})
            if r.status_code == 429:
                time.sleep(min(float(r.headers.get("Retry-After", "1")), 2))
                continue
            if r.status_code != 200:
                raise RuntimeError(f"login {username}: {r.status_code} {r.text[:200]}")
            return r.json()
        raise RuntimeError(f"login {username}: rate limited")

    def new_user(self) -> dict:
        name = rand_name()
        self.register(name)
        t = self.login(name)
        return {"username": name, "id": t["user"]["id"], "access": t["access"], "refresh": t["refresh"]}

    def start_chat(self, token: str, receiver: str) -> str:
        r = self.post("/api/chat/start/", {"receiver_id": receiver}, token=token)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"start chat: {r.status_code} {r.text[:200]}")
        return r.json()["conversation_id"]

    def history(self, token: str, cid: str) -> list[dict]:
        out: list[dict] = []
        after = None
        while True:
            q = "?limit=500" + (f"&after={after}" if after is not None else "")
            r = self.get(f"/api/chat/{cid}/messages/{q}", token=token)
            if r.status_code != 200:
                raise RuntimeError(f"history {cid}: {r.status_code} {r.text[:200]}")
            j = r.json()
            out.extend(j["results"])
            if not j.get("next_after") or not j["results"]:
                return out
            after = j["next_after"]


class Report:
    """Collects a campaign's checks and figures; prints them and exits accordingly."""

    def __init__(self, name: str):
        self.name = name
        self.failures: list[str] = []
        self.figures: dict[str, object] = {}
        self.notes: list[str] = []
        self.t0 = time.monotonic()

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failures.append(what)
            print(f"[{self.name}] FAIL: {what}", flush=True)
        return ok

    def fig(self, key: str, value) -> None:
        self.figures[key] = value

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"[{self.name}] note: {text}", flush=True)

    def finish(self) -> None:
        self.fig("seconds", round(time.monotonic() - self.t0, 1))
        for k, v in self.figures.items():
            print(f"[{self.name}] {k}: {v}")
        status = "PASS" if not self.failures else f"FAIL ({len(self.failures)} failed checks)"
        print(f"[{self.name}] {status}", flush=True)
        sys.exit(0 if not self.failures else 1)


def seeded_report(name: str, seed: "Optional[int]") -> "tuple[Report, int]":
    """A campaign's report, with `random` seeded by `seed` (or a fresh one) and the seed shown,
    so `--seed S` replays the run."""
    seed = seed if seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    rep = Report(name)
    rep.fig("seed", seed)
    return rep, seed
