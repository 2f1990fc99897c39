#!/usr/bin/env python3
"""Isolation campaign: nobody reads, starts or sends as someone else; login timing.

* a third user gets 403 on another pair's history and on another user's suggested
  friends, does not see their conversation in /api/conversations/, and receives
  none of their messages on a WebSocket (live or via `sync`);
* extra "sender"/"user_id" fields in start/send bodies are ignored: what is stored
  names the caller; the log is inspected with `chat-es replay`;
* tokens claiming another user (signed with another key, or with the real key but
  the caller's session) are refused, and so is logging out someone else's session;
* a slow reader cannot stall others: one user's socket completes the upgrade and then never
  reads while another user floods it with 4 KB messages; the server must close that socket
  (1008) once its backlog passes the bound, ack every flood message, and keep a third pair
  chatting (their ack latency is reported);
* login timing: N unknown-user logins vs N wrong-password logins (interleaved at
  random, from several loopback source addresses so the per-address failure limit
  is not hit) against a server started with --password-iterations 100000; reports
  mean and median of each and the difference. Passes if the median difference is
  within 10 % of the wrong-password median or 3 ms.

usage: isolation.py [--n N] [--iterations I] [--seed S]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import socket
import statistics
import struct
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PASSWORD, Report, Server, replay_events, rss_kib, seeded_report  # noqa: E402
from fuzz import claims_of, jwt  # noqa: E402

from websockets.sync.client import connect as ws_connect  # noqa: E402


def access_checks(rep: Report, srv: Server) -> None:
    a, b, c = srv.new_user(), srv.new_user(), srv.new_user()
    conv = srv.start_chat(a["access"], b["username"])
    r = srv.post("/api/chat/send/", {"message": "secret a->b", "receiver": b["username"]}, token=a["access"])
    rep.check(r.status_code == 201, f"setup send: {r.status_code}")
    checks = 0

    def chk(ok: bool, what: str) -> None:
        nonlocal checks
        checks += 1
        rep.check(ok, what)

    # c's live socket must hear nothing of a and b
    wsc = ws_connect(srv.ws_url + "/api/chat/send/?token=" + c["access"])

    r = srv.get(f"/api/chat/{conv}/messages/", token=c["access"])
    chk(r.status_code == 403, f"history of another pair: {r.status_code}")
    r = srv.get(f"/api/chat/{conv}/messages/?after=0&limit=500", token=c["access"])
    chk(r.status_code == 403, f"history of another pair with after/limit: {r.status_code}")
    r = srv.get(f"/api/suggested-friends/{a['id']}", token=c["access"])
    chk(r.status_code == 403, f"suggested friends of another user: {r.status_code}")
    r = srv.get("/api/conversations/", token=c["access"])
    chk(r.status_code == 200 and all(x["conversation_id"] != conv for x in r.json()),
        f"conversations list of c shows a/b's conversation: {r.text[:200]}")

    # extra identity fields are ignored
    r = srv.post("/api/chat/start/", {"receiver_id": b["username"], "sender": a["username"], "user_id": a["id"],
                                      "sender_id": a["id"]}, token=c["access"])
    chk(r.status_code == 201 and {p["id"] for p in r.json()["participants"]} == {b["id"], c["id"]},
        f"start with a forged sender field: {r.status_code} {r.text[:200]}")
    conv_cb = r.json().get("conversation_id")
    chk(conv_cb != conv, "c's chat with b reuses a/b's conversation")
    r = srv.post("/api/chat/send/", {"message": "from c", "receiver": b["username"], "sender": a["username"],
                                     "sender_id": a["id"], "user_id": a["id"]}, token=c["access"])
    chk(r.status_code == 201 and r.json().get("sender") == c["username"],
        f"send with a forged sender field: {r.status_code} {r.text[:200]}")
    wsc.send(json.dumps({"message": "ws from c", "receiver": b["username"], "sender": a["username"],
                         "client_id": "iso1"}))
    # c cannot send into a/b's conversation by naming a as receiver without a chat
    r = srv.post("/api/chat/send/", {"message": "intrude", "receiver": a["username"]}, token=c["access"])
    chk(r.status_code in (400, 403, 409), f"send to a user without a chat: {r.status_code} {r.text[:120]}")

    # forged identities
    key = open(os.path.join(srv.data, "secret"), "rb").read()
    cc = claims_of(c["access"])
    forged = {
        "c's claims with user_id a, another key": jwt({"alg": "HS256", "typ": "JWT"}, {**cc, "user_id": a["id"]}, b"k" * 64),
        "c's claims with user_id a, real key": jwt({"alg": "HS256", "typ": "JWT"}, {**cc, "user_id": a["id"]}, key),
        "a's claims, alg none": jwt({"alg": "none", "typ": "JWT"}, claims_of(a["access"]), None),
    }
    for label, t in forged.items():
        r1 = srv.get(f"/api/chat/{conv}/messages/", token=t)
        r2 = srv.post("/api/chat/send/", {"message": "forged", "receiver": b["username"]}, token=t)
        r3 = srv.post("/api/chat/start/", {"receiver_id": b["username"]}, token=t)
        chk(r1.status_code == 401 and r2.status_code == 401 and r3.status_code == 401,
            f"forged token ({label}): history {r1.status_code}, send {r2.status_code}, start {r3.status_code}")
    r = srv.post("/api/logout/", {"refresh": a["refresh"]}, token=c["access"])
    chk(r.status_code == 401, f"logout of another user's session: {r.status_code}")
    r = srv.get("/api/conversations/", token=a["access"])
    chk(r.status_code == 200, f"a's session after c tried to log it out: {r.status_code}")

    # a's message to b must not reach c, live or via sync
    r = srv.post("/api/chat/send/", {"message": "secret 2", "receiver": b["username"]}, token=a["access"])
    wsc.send(json.dumps({"type": "sync", "after": 0}))
    seen = []
    t_end = time.monotonic() + 1.5
    while time.monotonic() < t_end:
        try:
            f = json.loads(wsc.recv(timeout=0.3))
        except TimeoutError:
            continue
        seen.append(f)
    wsc.close()
    leaked = [f for f in seen if f.get("type") == "message" and c["username"] not in (f.get("sender"), f.get("receiver"))]
    chk(not leaked, f"c's socket received other users' messages: {leaked[:2]}")
    chk(any(f.get("type") == "sync.done" for f in seen), f"sync.done not received: {seen[-3:]}")
    acks = [f for f in seen if f.get("type") == "message.ack"]
    # the log: every MessageSent names its real sender; none of c's lands in a/b's conversation
    evs = replay_events(srv.data)
    msgs = [e for e in evs if e["type"] == "MessageSent"]
    chk(all(not (e["sender_id"] == c["id"] and e["conversation_id"] == conv) for e in msgs),
        "a message from c was stored in a/b's conversation")
    chk(sum(1 for e in msgs if e["sender_id"] == c["id"]) == 1 + len(acks),
        f"c's stored messages: {[e for e in msgs if e['sender_id'] == c['id']]}")
    chk(not any(e["type"] == "SessionRevoked" or e["type"] == "UserLoggedOut" for e in evs),
        "a session was ended by another user's request")
    rep.fig("access checks passed", f"{checks - len(rep.failures)}/{checks}")


def open_socket(rep: Report, srv: Server, token: str, rcvbuf: int = 0) -> socket.socket:
    """A raw WebSocket: the upgrade is read, then nothing more unless asked."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", srv.port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /api/chat/send/?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            break
        head += chunk
    rep.check(head.startswith(b"HTTP/1.1 101"), f"raw upgrade: {head[:40]!r}")
    return s


def read_close_code(s: socket.socket, timeout: float = 30) -> tuple[int, int]:
    """Reads server frames until a close frame or EOF: (close code or -1, frames read)."""
    s.settimeout(timeout)
    buf = bytearray()
    frames = 0
    deadline = time.time() + timeout

    def need(n: int) -> bool:
        while len(buf) < n:
            if time.time() > deadline:
                return False
            try:
                chunk = s.recv(1 << 20)
            except (socket.timeout, OSError):
                return False
            if not chunk:
                return False
            buf.extend(chunk)
        return True

    while need(2):
        opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
        at = 2
        if length == 126:
            if not need(4):
                break
            length, at = struct.unpack(">H", buf[2:4])[0], 4
        elif length == 127:
            if not need(10):
                break
            length, at = struct.unpack(">Q", buf[2:10])[0], 10
        if not need(at + length):
            break
        payload = bytes(buf[at:at + length])
        del buf[:at + length]
        frames += 1
        if opcode == 0x8:
            return (struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005), frames
    return -1, frames


def slow_reader(rep: Report) -> None:
    srv = Server(fsync="always", extra=["--socket-rate", "100000"]).start()
    try:
        slow, flooder, c, d = srv.new_user(), srv.new_user(), srv.new_user(), srv.new_user()
        srv.start_chat(flooder["access"], slow["username"])
        srv.start_chat(c["access"], d["username"])
        stalled = open_socket(rep, srv, slow["access"], rcvbuf=4096)
        wsf = ws_connect(srv.ws_url + "/api/chat/send/?token=" + flooder["access"], max_size=1 << 20)
        wsc = ws_connect(srv.ws_url + "/api/chat/send/?token=" + c["access"])
        wsd = ws_connect(srv.ws_url + "/api/chat/send/?token=" + d["access"])
        time.sleep(0.3)

        # The other pair keeps chatting all along: one message every 10 ms, ack latency measured.
        stop = threading.Event()
        latencies: list[float] = []
        delivered = [0]
        pair_errors: list[str] = []

        def pair() -> None:
            i = 0
            try:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    wsc.send(json.dumps({"message": f"pair {i}", "receiver": d["username"], "client_id": f"p{i}"}))
                    while True:
                        f = json.loads(wsc.recv(timeout=10))
                        if f.get("type") == "message.ack":
                            break
                    latencies.append((time.perf_counter() - t0) * 1000)
                    while True:
                        f = json.loads(wsd.recv(timeout=10))
                        if f.get("type") == "message":
                            delivered[0] += 1
                            break
                    i += 1
                    time.sleep(0.01)
            except Exception as e:  # noqa: BLE001 - reported as a failure below
                pair_errors.append(repr(e))

        t = threading.Thread(target=pair, daemon=True)
        t.start()
        text = "x" * 4000
        sent = acked = 0
        flood = 12000  # ~48 MB for a reader that takes nothing
        rss_before = rss_kib(srv.pid)
        while sent < flood:
            for _ in range(64):
                wsf.send(json.dumps({"message": text, "receiver": slow["username"], "client_id": f"f{sent}"}))
                sent += 1
            while acked < sent:
                if json.loads(wsf.recv(timeout=10)).get("type") == "message.ack":
                    acked += 1
        rss_after = rss_kib(srv.pid)
        stop.set()
        t.join(timeout=15)
        code, frames = read_close_code(stalled)
        rep.fig("slow reader: flood messages sent / acked", f"{sent} / {acked}")
        rep.fig("slow reader: frames the stalled socket still got before its close frame, close code", f"{frames}, {code}")
        rep.fig("slow reader: server VmRSS KiB before / after the flood", f"{rss_before} / {rss_after}")
        rep.check(frames < sent // 2, f"the stalled socket got {frames} of {sent} frames: its backlog was not bounded")
        rep.check(rss_after - rss_before < 256 * 1024, f"RSS grew {rss_after - rss_before} KiB during the flood")
        rep.check(code == 1008, f"stalled socket's close code: {code}")
        rep.check(acked == sent, f"flood acks {acked} of {sent}")
        rep.check(not pair_errors, f"the other pair failed: {pair_errors}")
        if latencies:
            ordered = sorted(latencies)
            p50, p99 = ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            rep.fig("slow reader: the other pair meanwhile, messages / ack ms p50 / p99 / max",
                    f"{len(ordered)} / {p50:.2f} / {p99:.2f} / {ordered[-1]:.2f}")
            rep.check(len(ordered) >= 10 and delivered[0] == len(ordered) and p99 < 1000,
                      f"the other pair: {len(ordered)} acks, {delivered[0]} deliveries, p99 {p99:.1f} ms")
        rep.check(srv.health().get("status") == "ok", "healthz after the flood")
        for ws in (wsf, wsc, wsd):
            ws.close()
        stalled.close()
    finally:
        srv.cleanup()


def login_timing(rep: Report, n: int, iterations: int, attempt: int = 1) -> bool:
    srv = Server(iterations=iterations, fsync="always").start()
    try:
        victims = [srv.new_user()["username"] for _ in range(max(2, n // 5 + 1))]
        conns = {}

        def post_login(username: str, password: str, k: int) -> tuple[float, int]:
            src = f"127.0.0.{2 + k % 8}"
            c = conns.get(src)
            if c is None:
                c = conns[src] = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30,
                                                            source_address=(src, 0))
            body = json.dumps({"username": username, "password": password})
            t0 = time.perf_counter()
            c.request("POST", "/api/login/", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            return (time.perf_counter() - t0) * 1000, r.status

        # warm-up, both kinds
        for i in range(4):
            post_login("ghost" + uuid.uuid4().hex[:8], "wrong-password-x", i)
            post_login(victims[i % len(victims)], "wrong-password-x", i)
        trials = [("unknown", i) for i in range(n)] + [("wrong", i) for i in range(n)]
        random.shuffle(trials)
        t = {"unknown": [], "wrong": [], "ok": []}
        statuses = {}
        for j, (kind, i) in enumerate(trials):
            user = "ghost" + uuid.uuid4().hex[:8] if kind == "unknown" else victims[i % len(victims)]
            ms, st = post_login(user, "wrong-password-" + str(i), j)
            statuses[f"{kind} {st}"] = statuses.get(f"{kind} {st}", 0) + 1
            if st == 401:
                t[kind].append(ms)
        for i in range(min(10, n)):
            ms, st = post_login(victims[0], PASSWORD, i)
            if st == 200:
                t["ok"].append(ms)
        for c in conns.values():
            c.close()
        rep.check(len(t["unknown"]) == n and len(t["wrong"]) == n, f"login timing statuses: {statuses}")
        mu, mw = statistics.mean(t["unknown"]), statistics.mean(t["wrong"])
        du, dw = statistics.median(t["unknown"]), statistics.median(t["wrong"])
        diff = du - dw
        rel = abs(diff) / dw if dw else 0
        within = abs(diff) <= max(0.10 * dw, 3.0)
        sfx = "" if attempt == 1 else f" (attempt {attempt})"
        rep.fig("login timing iterations / N" + sfx, f"{iterations} / {n} each")
        rep.fig("unknown user ms mean / median / stdev" + sfx,
                f"{mu:.2f} / {du:.2f} / {statistics.pstdev(t['unknown']):.2f}")
        rep.fig("wrong password ms mean / median / stdev" + sfx,
                f"{mw:.2f} / {dw:.2f} / {statistics.pstdev(t['wrong']):.2f}")
        if t["ok"]:
            rep.fig("right password ms median (reference)" + sfx, f"{statistics.median(t['ok']):.2f}")
        rep.fig("difference unknown - wrong: mean / median" + sfx,
                f"{mu - mw:+.2f} ms / {diff:+.2f} ms ({rel * 100:.1f} % of the wrong-password median)")
        if not within and attempt == 1:
            # one re-measurement on a fresh server, so a burst of load from other jobs on the
            # machine does not fail the campaign; both figures are printed
            rep.note(f"login timing outside the bound on attempt 1 (median {du:.2f} vs {dw:.2f} ms); re-measuring")
            return True
        rep.check(within, f"login timing differs: median {du:.2f} ms unknown vs {dw:.2f} ms wrong password")
        return False
    finally:
        srv.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rep, seed = seeded_report("isolation", args.seed)
    srv = Server(fsync="always").start()
    try:
        access_checks(rep, srv)
    finally:
        srv.cleanup()
    slow_reader(rep)
    if login_timing(rep, args.n, args.iterations):
        login_timing(rep, args.n, args.iterations, attempt=2)
    rep.finish()


if __name__ == "__main__":
    main()
