#!/usr/bin/env python3
"""Bad-input campaign: HTTP and WebSocket fuzzing plus token attacks.

Phase 1 (for --seconds): only requests that must fail — random and mutated JSON
against every POST route, odd query strings on the GET routes, wrong types, huge
and negative numbers, deep nesting, invalid UTF-8, oversized bodies, wrong content
types and methods, up to 20 slowloris-style partial requests, WebSocket frames
(random binary, random text, mutated JSON, oversized) and token attacks (alg none,
another key, refresh as access, access after logout, forged user/session claims
with the real key, expired). The only events the log may gain meanwhile are the
SocketConnected/SocketDisconnected pair of each WebSocket the campaign opened with
a valid token; every new event is inspected with `chat-es replay`.

Then a retired refresh token is re-used (allowed to append the one event that ends
that session), and phase 2 does a few valid operations and checks the log gained
exactly one event per success.

Figures: requests by outcome, 5xx count (must be 0), /healthz after each phase,
server VmRSS before/after (bounded), log positions.

usage: fuzz.py [--seconds S] [--seed N]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import socket
import string
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PASSWORD, Report, Server, replay_events, rss_kib, seeded_report  # noqa: E402

import requests  # noqa: E402
from websockets.sync.client import connect as ws_connect  # noqa: E402

POST_ROUTES = ["/api/register/", "/api/login/", "/api/token/refresh/", "/api/logout/",
               "/api/chat/start/", "/api/chat/send/"]


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(header: dict, claims: dict, key: bytes | None) -> str:
    h = b64(json.dumps(header).encode())
    c = b64(json.dumps(claims).encode())
    sig = b"" if key is None else hmac.new(key, f"{h}.{c}".encode(), hashlib.sha256).digest()
    return f"{h}.{c}.{b64(sig)}"


def claims_of(tok: str) -> dict:
    p = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def rand_json(depth: int = 0):
    r = random.random()
    if depth > 3 or r < 0.5:
        return random.choice([
            None, True, False, 0, -1, 2**63, -2**63, 2**64 + 1, 10**40, -10**40, 1.5e308, -0.0, 1e-300,
            "", " ", "\u0000", "\ud7ff\ue000", "a" * random.randint(1, 5000), "💬" * 50,
            "<script>", "' OR 1=1 --", "%00", "../../etc/passwd", random.randint(-10**6, -1),
            "".join(random.choices(string.printable, k=random.randint(0, 40))),
        ])
    if r < 0.75:
        return [rand_json(depth + 1) for _ in range(random.randint(0, 4))]
    return {random.choice(["username", "password", "refresh", "receiver_id", "receiver", "message",
                           "client_id", "type", "after", "x", ""]): rand_json(depth + 1)
            for _ in range(random.randint(0, 4))}


BAD_PASSWORDS = [None, True, False, [], {}, 0, 1.5, "", "short", "1234567", "12345678901234", ["p" * 20]]
BAD_RECEIVERS = [None, True, [], {}, -1, 0, 10**9, -10**18, 2**64, 1e300, "", " ", "nobody-" + "x" * 8,
                 "x" * 200, "\u0000", "💬"]


class Fuzzer:
    def __init__(self, srv: Server, rep: Report, users: dict, key: bytes):
        self.srv, self.rep, self.u, self.key = srv, rep, users, key
        self.outcomes: dict[str, int] = {}
        self.five_xx: list[str] = []
        self.ws_opens = 0
        self.requests = 0
        self.unexpected_2xx: list[str] = []

    def count(self, what: str) -> None:
        self.outcomes[what] = self.outcomes.get(what, 0) + 1

    def record(self, label: str, r: requests.Response) -> None:
        self.requests += 1
        self.count(f"{label.split(' ', 1)[0]} {r.status_code // 100}xx")
        if r.status_code >= 500:
            self.five_xx.append(f"{label} -> {r.status_code} {r.text[:100]}")
        elif 200 <= r.status_code < 300 and not label.startswith("GET"):
            self.unexpected_2xx.append(f"{label} -> {r.status_code} {r.text[:150]}")

    def raw_post(self, path: str, data: bytes, ctype: str = "application/json", token: str | None = None):
        h = {"Content-Type": ctype}
        if token:
            h["Authorization"] = "Bearer " + token
        try:
            r = self.srv.http.post(self.srv.url + path, data=data, headers=h, timeout=10)
            self.record(f"POST {path} {data[:80]!r}", r)
        except requests.RequestException as e:
            self.count("connection error " + type(e).__name__)

    def get(self, path: str, token: str | None):
        h = {"Authorization": "Bearer " + token} if token else {}
        try:
            r = self.srv.http.get(self.srv.url + path, headers=h, timeout=10)
            self.record(f"GET {path}", r)
        except requests.RequestException as e:
            self.count("connection error " + type(e).__name__)

    # -- body generators that can only fail --------------------------------
    def bad_body(self, path: str) -> dict | object:
        a, b = self.u["a"], self.u["b"]
        m = random.random()
        if m < 0.25:
            return rand_json()
        if path == "/api/register/":
            return {"username": random.choice([rand_json(), "n" + uuid.uuid4().hex[:8], a["username"]]),
                    "password": random.choice(BAD_PASSWORDS)}
        if path == "/api/login/":
            return {"username": random.choice([rand_json(), "ghost" + uuid.uuid4().hex[:6], self.u["victim"]]),
                    "password": random.choice([rand_json(), "wrong-password-" + uuid.uuid4().hex[:4]])}
        if path in ("/api/token/refresh/", "/api/logout/"):
            return {"refresh": random.choice([rand_json(), self.u["a"]["access"], "x.y.z",
                                              self.u["other_key_refresh"]])}
        if path == "/api/chat/start/":
            return {"receiver_id": random.choice(BAD_RECEIVERS + [a["username"], a["id"], str(a["id"])])}
        # /api/chat/send/: never a valid (text, receiver b) pair
        choice = random.random()
        if choice < 0.3:
            return {"message": random.choice([None, [], {}, "m" * 4097, ["hi"]]), "receiver": b["username"],
                    "client_id": rand_json()}
        if choice < 0.6:
            return {"message": "hello", "receiver": random.choice(BAD_RECEIVERS + [self.u["c"]["username"]])}
        return {"message": "hello", "receiver": b["username"], "client_id": random.choice(["c" * 65, [], {}, 10**30])}

    def token_for(self, path: str) -> str | None:
        return random.choice([self.u["a"]["access"]] * 4 + [None] + self.u["bad_tokens"])

    def one_post(self) -> None:
        path = random.choice(POST_ROUTES)
        kind = random.random()
        # chat/send with a good body must not get a good token; others use a's token
        tok = self.token_for(path)
        if kind < 0.55:
            body = json.dumps(self.bad_body(path)).encode()
            if _may_be_valid(path, body, self.u):
                self.count("skipped (might be valid)")
                return
            self.raw_post(path, body, token=tok)
        elif kind < 0.65:  # truncated or mutated JSON text
            body = bytearray(json.dumps(self.bad_body(path)).encode())
            for _ in range(random.randint(1, 4)):
                if body:
                    body[random.randrange(len(body))] = random.randrange(256)
            if random.random() < 0.5 and body:
                body = body[:random.randrange(len(body))]
            if _may_be_valid(path, bytes(body), self.u):
                self.count("skipped (might be valid)")
                return
            self.raw_post(path, bytes(body), token=tok)
        elif kind < 0.72:  # invalid UTF-8
            self.raw_post(path, b'{"username": "\xff\xfe\xc3\x28", "password": "\xed\xa0\x80xxxxxxxx"}', token=tok)
        elif kind < 0.78:  # deep nesting
            n = random.choice([100, 1000, 20000])
            self.raw_post(path, b"[" * n + b"]" * n, token=tok)
            self.raw_post(path, b'{"a":' * n + b"1" + b"}" * n, token=tok)
        elif kind < 0.82:  # oversized
            n = random.choice([65 * 1024, 200 * 1024, 2 * 1024 * 1024])
            self.raw_post(path, b'{"username": "' + b"x" * n + b'", "password": "p"}', token=tok)
        elif kind < 0.86:  # wrong content types
            self.raw_post(path, b"username=a&password=", random.choice(["text/plain", "application/xml",
                                                                          "multipart/form-data", ""]), token=tok)
            self.raw_post(path, b"username=&password=12", "application/x-www-form-urlencoded", token=tok)
        elif kind < 0.90:  # wrong methods
            try:
                r = self.srv.http.request(random.choice(["PUT", "DELETE", "PATCH"]), self.srv.url + path,
                                          data=b"{}", timeout=10)
                self.record(f"METHOD {path}", r)
            except requests.RequestException as e:
                self.count("connection error " + type(e).__name__)
        else:  # empty body
            self.raw_post(path, b"", token=tok)

    def one_get(self) -> None:
        a, b = self.u["a"], self.u["b"]
        odd = random.choice(["-1", "0", "1e99", "99999999999999999999999", "abc", "", "%00", "%ff%fe", "1.5",
                             "null", "[]", "-99999999999999999999", "2147483648", "9223372036854775808"])
        paths = [
            f"/api/online-users/?limit={odd}&offset={random.choice(['-5', odd, '1e9'])}",
            f"/api/online-users/?{odd}={odd}&&&==",
            f"/api/suggested-friends/{random.choice([odd, str(b['id']), str(a['id']), '0', '-3'])}?limit={odd}",
            f"/api/chat/{self.u['conv']}/messages/?after={odd}&limit={odd}",
            f"/api/chat/{random.choice(['c_', 'c_' + 'f' * 200, '../..', 'c_%00', self.u['conv_bc']])}/messages/",
            f"/api/conversations/?x={odd}",
            "/api/" + "a/" * random.randint(1, 300),
            "/healthz?" + odd,
        ]
        self.get(random.choice(paths), self.token_for("GET"))

    def one_ws(self) -> None:
        a, c = self.u["a"], self.u["c"]
        tok = random.choice([a["access"]] * 3 + self.u["bad_tokens"] + [None])
        url = self.srv.ws_url + "/api/chat/send/" + (f"?token={tok}" if tok else "")
        try:
            ws = ws_connect(url, open_timeout=5, max_size=2**22)
        except Exception as e:
            self.count("ws refused " + type(e).__name__)
            if tok == a["access"]:
                self.rep.check(False, f"fuzz: a valid WebSocket upgrade failed: {e}")
            return
        if tok != a["access"]:
            # the contract allows an upgrade then close 4401; nothing may be accepted on it
            try:
                ws.send(json.dumps({"message": "x", "receiver": self.u["b"]["username"]}))
                f = ws.recv(timeout=2)
                self.rep.check(False, f"fuzz: a socket with a bad token answered {f!r}")
            except Exception:
                self.count("ws bad token closed")
            ws.close()
            return
        self.ws_opens += 1
        try:
            for _ in range(random.randint(5, 40)):
                k = random.random()
                if k < 0.2:
                    ws.send(os.urandom(random.randint(0, 300)))                # binary
                elif k < 0.4:
                    ws.send("".join(random.choices(string.printable, k=random.randint(0, 300))))
                elif k < 0.7:
                    ws.send(json.dumps(rand_json()))
                elif k < 0.85:
                    ws.send(json.dumps(random.choice([
                        {"message": "x", "receiver": c["username"], "client_id": "nochat"},     # chat_not_started
                        {"message": "x", "receiver": random.choice(BAD_RECEIVERS)},
                        {"message": "m" * 4097, "receiver": self.u["b"]["username"]},
                        {"message": [], "receiver": self.u["b"]["username"]},
                        {"message": "x", "receiver": self.u["b"]["username"], "client_id": "c" * 65},
                        {"type": "sync", "after": random.choice([-1, 10**30, "x", None, 1.5])},
                        {"type": "ping"}, {"type": "nope"},
                    ])))
                elif k < 0.95:
                    s = bytearray(json.dumps({"message": "x", "receiver": c["username"]}).encode())
                    s[random.randrange(len(s))] = random.randrange(32, 127)
                    ws.send(s.decode("ascii", "replace"))
                else:
                    ws.send("x" * (65 * 1024 + random.randint(0, 1000)))           # oversized: close 1009
                try:
                    while True:
                        f = json.loads(ws.recv(timeout=0.02))
                        self.count(f"ws frame {f.get('type')}:{f.get('code', '')}")
                        if f.get("type") in ("message.ack", "message"):
                            self.rep.check(False, f"fuzz: a bad WebSocket frame was stored: {f}")
                except TimeoutError:
                    pass
        except Exception as e:
            self.count("ws closed " + type(e).__name__)
        finally:
            try:
                ws.close()
            except Exception:
                pass


def _may_be_valid(path: str, body: bytes, users: dict) -> bool:
    """Conservatively true when a generated body might be a valid request (it is then skipped)."""
    try:
        j = json.loads(body)
    except Exception:
        return False
    if not isinstance(j, dict):
        return False
    names = {users[k]["username"].lower() for k in ("a", "b", "c")} | {users["victim"].lower()}

    def real_user(v) -> bool:
        if isinstance(v, bool):
            return False
        if isinstance(v, (int, float)):
            return 1 <= v <= 1000
        if isinstance(v, str):
            return v.strip().lower() in names or (v.strip().isdigit() and 1 <= int(v.strip()) <= 1000)
        return False

    if path == "/api/register/":
        p = j.get("password")
        return isinstance(p, (str, int, float)) and not isinstance(p, bool) and len(str(p)) >= 8
    if path == "/api/login/":
        return j.get("password") == PASSWORD
    if path == "/api/chat/start/":
        return real_user(j.get("receiver_id"))
    if path == "/api/chat/send/":
        return real_user(j.get("receiver")) and j.get("message") is not None \
            and not isinstance(j.get("message"), (list, dict)) and len(str(j.get("message"))) <= 4096 \
            and (j.get("client_id") is None or (isinstance(j.get("client_id"), str) and len(j["client_id"]) <= 64))
    return False


def slowloris(srv: Server, n: int, hold: float, out: dict) -> None:
    socks = []
    for i in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(random.choice([
                b"POST /api/register/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"userna",
                b"GET /api/online-users/ HTTP/1.1\r\nHost: x\r\nAuthor",
                b"POST /api/login/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"use",
                b"GET /api/chat/send/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            ]))
            socks.append(s)
        except OSError:
            out["failed"] = out.get("failed", 0) + 1
    out["opened"] = len(socks)
    # while they are held, the server must keep serving
    t0 = time.monotonic()
    ok = 0
    while time.monotonic() - t0 < hold:
        try:
            if requests.get(srv.url + "/healthz", timeout=3).status_code == 200:
                ok += 1
        except requests.RequestException:
            out["healthz_fail"] = out.get("healthz_fail", 0) + 1
        time.sleep(0.2)
    out["healthz_ok_while_held"] = ok
    for s in socks:
        s.close()


def settle(srv: Server) -> int:
    """log_position once it has stopped moving (socket closes are appended asynchronously)."""
    last, stable = -1, 0
    for _ in range(50):
        p = srv.health()["log_position"]
        stable = stable + 1 if p == last else 0
        if stable >= 3:
            return p
        last = p
        time.sleep(0.1)
    return last


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rep, seed = seeded_report("fuzz", args.seed)
    srv = Server(fsync="always").start()
    try:
        key = open(os.path.join(srv.data, "secret"), "rb").read()
        a, b, c = srv.new_user(), srv.new_user(), srv.new_user()
        victim = srv.new_user()["username"]
        conv = srv.start_chat(a["access"], b["username"])
        conv_bc = srv.start_chat(b["access"], c["username"])
        # a logged-out session (its access token must stop working)
        lo = srv.login(c["username"])
        r = srv.post("/api/logout/", {"refresh": lo["refresh"]}, token=lo["access"])
        rep.check(r.status_code == 200, f"setup logout: {r.status_code}")
        # a rotated session: its first refresh token is retired
        rot = srv.login(b["username"])
        r = srv.post("/api/token/refresh/", {"refresh": rot["refresh"]})
        rep.check(r.status_code == 200, f"setup refresh: {r.status_code}")
        retired_refresh, rotated_access = rot["refresh"], r.json()["access"]

        ca = claims_of(a["access"])
        now = int(time.time())
        other_key = b"0" * 64
        bad_tokens = [
            jwt({"alg": "none", "typ": "JWT"}, ca, None),                                  # alg none
            jwt({"alg": "none", "typ": "JWT"}, ca, None)[:-1],
            jwt({"alg": "HS256", "typ": "JWT"}, ca, other_key),                           # another key
            jwt({"alg": "HS384", "typ": "JWT"}, ca, key),                                  # header lies about alg
            jwt({"typ": "JWT"}, ca, key),                                                  # header names no alg
            a["refresh"],                                                                 # refresh as access
            lo["access"],                                                                 # access after logout
            jwt({"alg": "HS256", "typ": "JWT"}, {**ca, "user_id": b["id"]}, key),         # another user, a's sid
            jwt({"alg": "HS256", "typ": "JWT"}, {**ca, "sid": uuid.uuid4().hex}, key),    # unknown session
            jwt({"alg": "HS256", "typ": "JWT"}, {**ca, "exp": now - 10, "iat": now - 400}, key),  # expired
            a["access"][:-3] + ("AAA" if not a["access"].endswith("AAA") else "BBB"),     # bad signature
            "", "Bearer", "null", "x" * 5000,
        ]
        users = {"a": a, "b": b, "c": c, "victim": victim, "conv": conv, "conv_bc": conv_bc,
                 "bad_tokens": bad_tokens,
                 "forged_refresh": jwt({"alg": "HS256", "typ": "JWT"},
                                       {**claims_of(a["refresh"]), "jti": uuid.uuid4().hex}, key),
                 "other_key_refresh": jwt({"alg": "HS256", "typ": "JWT"}, claims_of(a["refresh"]), other_key)}

        # each token attack, explicitly, on an authenticated GET, a POST and the WebSocket
        p_tok = settle(srv)
        attacks_refused = 0
        for t in bad_tokens:
            g = srv.get("/api/conversations/", token=t)
            s = srv.post("/api/chat/start/", {"receiver_id": b["username"]}, token=t)
            m = srv.post("/api/chat/send/", {"message": "forged", "receiver": b["username"]}, token=t)
            ok = g.status_code == 401 and s.status_code == 401 and m.status_code == 401
            rep.check(ok, f"token attack {t[:40]}...: GET {g.status_code}, start {s.status_code}, send {m.status_code}")
            try:
                ws = ws_connect(srv.ws_url + "/api/chat/send/?token=" + t, open_timeout=5)
                try:
                    ws.send(json.dumps({"message": "forged", "receiver": b["username"]}))
                    f = ws.recv(timeout=2)
                    rep.check(False, f"token attack WS {t[:40]}: socket accepted, answered {f!r}")
                    ok = False
                except Exception:
                    pass
            except Exception:
                pass
            attacks_refused += ok
        r = srv.post("/api/token/refresh/", {"refresh": users["other_key_refresh"]})
        rep.check(r.status_code == 401, f"refresh token signed with another key: {r.status_code}")
        r = srv.post("/api/token/refresh/", {"refresh": a["access"]})
        rep.check(r.status_code == 401, f"access token used as refresh: {r.status_code}")
        p_tok2 = settle(srv)
        rep.check(p_tok2 == p_tok, f"token attacks moved log_position {p_tok} -> {p_tok2}")
        rep.fig("token attacks refused on GET, POST start, POST send and WebSocket", f"{attacks_refused}/{len(bad_tokens)}")

        # phase 1: only requests that must fail
        fz = Fuzzer(srv, rep, users, key)
        rss0 = rss_kib(srv.pid)
        p0 = settle(srv)
        slow: dict = {}
        st = threading.Thread(target=slowloris, args=(srv, 20, min(10.0, args.seconds / 3), slow), daemon=True)
        t_end = time.monotonic() + args.seconds
        slow_started = False
        while time.monotonic() < t_end:
            if not slow_started and time.monotonic() > t_end - args.seconds / 2:
                st.start()
                slow_started = True
            k = random.random()
            if k < 0.6:
                fz.one_post()
            elif k < 0.9:
                fz.one_get()
            else:
                fz.one_ws()
        if slow_started:
            st.join(30)
        p1 = settle(srv)
        rss1 = rss_kib(srv.pid)
        new = [e for e in replay_events(srv.data) if e["seq"] > p0]
        kinds = {}
        for e in new:
            kinds[e["type"]] = kinds.get(e["type"], 0) + 1
        allowed = {"SocketConnected", "SocketDisconnected"}
        rep.check(set(kinds) <= allowed, f"phase 1 appended events it was not entitled to: {kinds}")
        rep.check(kinds.get("SocketConnected", 0) == fz.ws_opens and kinds.get("SocketDisconnected", 0) == fz.ws_opens,
                  f"phase 1: {fz.ws_opens} valid sockets opened, log gained {kinds}")
        rep.check(not fz.five_xx, f"{len(fz.five_xx)} 5xx answers, e.g. {fz.five_xx[:3]}")
        rep.check(not fz.unexpected_2xx, f"{len(fz.unexpected_2xx)} must-fail requests succeeded, e.g. {fz.unexpected_2xx[:3]}")
        h = srv.health()
        rep.check(h["status"] == "ok", f"healthz after phase 1: {h}")
        rep.fig("phase 1 HTTP requests", fz.requests)
        rep.fig("phase 1 WebSockets opened with a valid token", fz.ws_opens)
        rep.fig("phase 1 outcomes", dict(sorted(fz.outcomes.items(), key=lambda kv: -kv[1])))
        rep.fig("5xx answers", len(fz.five_xx))
        rep.fig("slowloris", slow)
        rep.check(slow.get("healthz_fail", 0) == 0 and slow.get("opened", 0) > 0,
                  f"slowloris: server did not keep serving while partial requests were held: {slow}")
        rep.fig("phase 1 log_position before/after (delta = socket open/close pairs only)", f"{p0} -> {p1}")

        # a retired refresh token re-used: refused, and may end that one session
        r = srv.post("/api/token/refresh/", {"refresh": retired_refresh})
        rep.check(r.status_code == 401, f"retired refresh token: {r.status_code}")
        p2 = settle(srv)
        reuse = [e["type"] for e in replay_events(srv.data) if e["seq"] > p1]
        rep.check(len(reuse) <= 1, f"retired-refresh reuse appended {reuse}")
        g = srv.get("/api/conversations/", token=rotated_access)
        rep.check(g.status_code == 401, f"access token of a session ended by refresh reuse still works: {g.status_code}")
        rep.fig("retired refresh reuse", f"401; appended {reuse or 'nothing'}; the session's access token then gets {g.status_code}")

        # phase 2: a few valid operations, one event each (plus a socket's open/close)
        ops = 0
        r = srv.post("/api/register/", {"username": "fz" + uuid.uuid4().hex[:8], "password": PASSWORD}); ops += r.status_code == 201
        r = srv.post("/api/chat/send/", {"message": "valid", "receiver": b["username"]}, token=a["access"]); ops += r.status_code == 201
        t = srv.login(c["username"]); ops += 1
        r = srv.post("/api/token/refresh/", {"refresh": t["refresh"]}); ops += r.status_code == 200
        r = srv.post("/api/logout/", {"refresh": r.json()["refresh"]}, token=r.json()["access"]); ops += r.status_code == 200
        ws = ws_connect(srv.ws_url + "/api/chat/send/?token=" + a["access"])
        ws.send(json.dumps({"message": "valid ws", "receiver": b["username"], "client_id": "v1"}))
        while json.loads(ws.recv(timeout=5)).get("type") != "message.ack":
            pass
        ws.close()
        ops += 3
        p3 = settle(srv)
        types = [e["type"] for e in replay_events(srv.data) if e["seq"] > p2]
        rep.check(p3 - p2 == ops == 8, f"phase 2: {ops} successes, log gained {p3 - p2}: {types}")
        rep.fig("phase 2 valid operations / events appended", f"{ops} / {p3 - p2} {types}")
        rss2 = rss_kib(srv.pid)
        rep.fig("VmRSS KiB before / after phase 1 / end", f"{rss0} / {rss1} / {rss2}")
        rep.check(rss2 < rss0 + 256 * 1024, f"RSS grew from {rss0} to {rss2} KiB")
        rep.check(srv.health()["status"] == "ok", "healthz at the end")
    finally:
        srv.cleanup()
    rep.finish()


if __name__ == "__main__":
    main()
