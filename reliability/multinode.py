#!/usr/bin/env python3
"""Multi-node campaign: three `serve --postgres URL` nodes (A, B, C) on one fresh database.

The campaign starts its own throwaway cluster (`scripts/pg-temp.sh`, as postgres.py does: it
stops and starts it) and three nodes, each on its own data dir and port, all with one
CHAT_ES_SECRET. Every node accepts every request; what one node writes the others serve.

1. Across nodes: users registered on A log in on B; their chats are started on C; the
   receivers hold sockets on B and on C, the senders on A. Each of --messages messages is sent
   on A and waited for on the receiver's socket: the cross-node delivery latency (send on A to
   the `message` frame on B, and on C) is reported as p50/p99; every message is delivered once,
   with its acked id. The history of each conversation, read on A, B and C, must be identical
   (and hold every acked message) within 2 s of the last ack.
   And a socket just opened on B (upgrade answered) gets a message sent on A right after the
   upgrade (20 rounds). (Elsewhere the campaign waits until a new socket shows connected=true
   before it counts on deliveries to it.)
2. Presence: a user whose only socket is on C shows connected=true in GET /api/online-users/
   asked on A (within 3 s; the time is reported), and connected=false once it closes.
3. client_id across nodes: one sender holds sockets on A and on B and sends the same 200
   client_ids through both at once (pipelined). Every pair of acks has the same id; the
   receiver's socket on C gets each message once; history has each client_id once with that
   id; `replay --postgres` (through an empty cache) has no (sender, client_id) twice.
4. kill -9 of A under load: two senders on A and two on B send pipelined bursts with
   client_ids (only acked ones are recorded); a user's only socket is on A. A's process group
   gets SIGKILL; then a send via B (WebSocket) and via C (REST) must be acked at once, B's
   senders keep being acked; every acked message (A's and B's sockets) is in history on B once
   with its acked id (within 2 s); B must report the users whose sockets were on A as
   connected=false within 10 s of the kill (the time is reported; the heartbeat makes it ~5-7 s).
   A restarts on its data dir, serves, has every acked message, accepts a send, and answers a
   re-sent acked client_id of its last life with its id.
5. PostgreSQL stopped (`pg_ctl -m immediate stop`) under B and C (A stopped with SIGTERM first)
   for --pg-down seconds (default 7: longer than the 5 s after which a node without a heartbeat
   is taken for dead): a write on each (a registration; and a REST send on C) answers 503
   storage_unavailable within 3 s, and so does every registration tried while it is down; a
   WebSocket send on B is not acknowledged (an error frame is fine) nor delivered; /healthz of
   both turns 503 within 5 s; both stay alive. PostgreSQL restarts: within 20 s both answer
   /healthz 200, the refused send re-sent with its client_id is acked, and a new send from B's
   socket is acked and delivered to the receiver's socket on C. The outage must not make a node
   take a live one for dead (no "taken for dead"/"has no heartbeat" in B's and C's output since
   the stop, both sockets still open). Nothing refused was stored.
6. A hung node: C writes (so it keeps the turn lock), then gets SIGSTOP with a socket open. A
   write through B must succeed within 12 s (C's database sessions are ended once its heartbeat
   is 5 s old, which frees the lock) and C's socket must count as closed on B; after SIGCONT, C
   (taken for dead) closes its sockets, joins again and takes a write within 20 s.
At the end (B and C stopped with SIGTERM): `replay --postgres` has seqs 1..N and no
(sender, client_id) twice, and `verify --postgres URL --data EMPTY` exits 0.

usage: multinode.py [--messages N] [--pg-down S] [--seed S]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PASSWORD, Report, Server, StartFailed, rand_name, send_burst, seeded_report  # noqa: E402
from postgres import (PgCluster, Sender, check_alive, db_events, db_head, health_code, history_by_text,  # noqa: E402
                      pg_bin, send_wait, wait_frame)

import requests  # noqa: E402
from websockets.sync.client import connect as ws_connect  # noqa: E402

DUP_IDS = 200          # client_ids sent through two nodes at once (check 3)
PRESENCE_BOUND = 10.0  # s: sockets of a killed node count as closed on the others by then
SUMMARY: dict[str, str] = {}  # the figures of the last line


# -- helpers ---------------------------------------------------------------

def user_on(reg: Server, login: Server, prefix: str) -> dict:
    """A user registered on `reg` and logged in on `login`."""
    name = rand_name(prefix)
    reg.register(name)
    t = login.login(name)
    return {"username": name, "id": t["user"]["id"], "access": t["access"], "refresh": t["refresh"]}


def socket_on(srv: Server, user: dict):
    return ws_connect(srv.ws_url + "/api/chat/send/?token=" + user["access"], open_timeout=5)


def socket_ready(srv: Server, user: dict, seen_on: Server) -> object:
    """A socket of `user` on `srv`, returned once `seen_on` shows the user connected: the socket
    has joined its node's hub by then (a message decided before that may miss it; see
    part_fresh_socket)."""
    ws = socket_on(srv, user)
    if wait_connected(seen_on, user["access"], [user["username"]], True, 3.0) is None:
        raise RuntimeError(f"the socket of {user['username']} on :{srv.port} not connected on :{seen_on.port} in 3 s")
    return ws


def connected_map(srv: Server, token: str) -> dict[str, bool]:
    """username -> connected, over every page of GET /api/online-users/."""
    out: dict[str, bool] = {}
    offset = 0
    while True:
        r = srv.get(f"/api/online-users/?limit=1000&offset={offset}", token=token, timeout=5)
        if r.status_code != 200:
            raise RuntimeError(f"online-users on :{srv.port}: {r.status_code} {r.text[:200]}")
        j = r.json()
        for u in j["results"]:
            out[u["username"]] = bool(u["connected"])
        if not j.get("next") or not j["results"]:
            return out
        offset += len(j["results"])


def wait_connected(srv: Server, token: str, names: list[str], want: bool, limit: float) -> Optional[float]:
    """Polls `srv` until every one of `names` shows connected == want; the seconds it took, or
    None if not within `limit`."""
    t0 = time.monotonic()
    while True:
        try:
            m = connected_map(srv, token)
            if all(m.get(n, False) == want for n in names):
                return time.monotonic() - t0
        except (RuntimeError, requests.RequestException):
            pass
        if time.monotonic() - t0 > limit:
            return None
        time.sleep(0.01)


def status_of(r) -> str:
    try:
        code = r.json().get("code") or r.json().get("status")
    except ValueError:
        code = "?"
    return f"{r.status_code} {code}"


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def ms(x: float) -> str:
    return f"{x * 1000:.1f}"


def history_problems(srv: Server, token: str, convs: list[str], acked: dict[str, int]) -> list[str]:
    """What is wrong in `srv`'s history of `convs` for the acked client ids (text "text CID"):
    each must be there once with its acked id; ids unique and in order."""
    by_text, problems = history_by_text(srv, token, convs)
    for cid, mid in acked.items():
        got = by_text.get("text " + cid)
        if got != [mid]:
            problems.append(f"acked {cid} -> {mid} found as {got}")
    return problems


def wait_history(rep: Report, srv: Server, where: str, token: str, convs: list[str], acked: dict[str, int],
                 limit: float = 2.0) -> float:
    """Checks (retrying up to `limit` s for the replication lag) that every acked message is in
    `srv`'s history once with its id; returns the seconds it took."""
    t0 = time.monotonic()
    while True:
        try:
            problems = history_problems(srv, token, convs, acked)
        except (RuntimeError, requests.RequestException) as e:  # e.g. a 503: reported if it lasts
            problems = [f"history not readable: {e}"]
        if not problems or time.monotonic() - t0 > limit:
            break
        time.sleep(0.05)
    for p in problems[:10]:
        rep.check(False, f"{where}: {p}")
    if len(problems) > 10:
        rep.check(False, f"{where}: {len(problems) - 10} more history problems")
    return time.monotonic() - t0


def log_problems(srv: Server) -> list[tuple[str, int]]:
    """The node's warning/error lines (and crash reports) in its whole output, each distinct text
    once (the first line's timestamp kept) with how many times it came."""
    try:
        with open(srv.out_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    seen: dict[str, list] = {}
    for ln in lines:
        parts = ln.split(None, 2)
        if (len(parts) == 3 and parts[1] in ("warning", "error", "critical")) or "crashed" in ln or "Fatal error" in ln:
            key = parts[2] if len(parts) == 3 else ln
            if key in seen:
                seen[key][1] += 1
            else:
                seen[key] = [ln, 1]
    return [(ln, n) for ln, n in seen.values()]


def check_replay(rep: Report, base: str, url: str, where: str) -> list[dict]:
    evs = db_events(base, url)
    seqs = [e["seq"] for e in evs]
    rep.check(seqs == list(range(1, len(seqs) + 1)), f"{where}: seq gap or disorder in replay --postgres")
    keys = [(e["sender_id"], e["client_id"]) for e in evs if e["type"] == "MessageSent" and e.get("client_id")]
    seen: set = set()
    dups = sorted({k for k in keys if k in seen or seen.add(k)})
    rep.check(not dups, f"{where}: (sender, client_id) stored twice in the database: {dups[:5]} ({len(dups)})")
    return evs


def history_converges(rep: Report, nodes: dict[str, Server], senders: list[dict], convs: dict,
                      acked_by_conv: dict[str, dict[str, int]], t_last: float) -> None:
    """The history of every conversation is the same on every node (after a short lag) and holds
    every acked message: checked within 2 s of the last ack."""
    t_conv = None
    last_diff = ""
    while time.monotonic() - t_last < 2.0:
        last_diff = ""
        for (i, j), conv in convs.items():
            hists = {n: srv.history(senders[i]["access"], conv) for n, srv in nodes.items()}
            if not (hists["A"] == hists["B"] == hists["C"]):
                lens = {n: len(h) for n, h in hists.items()}
                last_diff = f"{conv}: differs between nodes (lengths {lens})"
                break
            ids = {m["message"]: m["id"] for m in hists["A"]}
            miss = [cid for cid, mid in acked_by_conv[conv].items() if ids.get("text " + cid) != mid]
            if miss or len(hists["A"]) != len(acked_by_conv[conv]):
                last_diff = f"{conv}: {len(hists['A'])} messages, acked {len(acked_by_conv[conv])}, missing {miss[:3]}"
                break
        if not last_diff:
            t_conv = time.monotonic() - t_last
            break
        time.sleep(0.05)
    rep.check(t_conv is not None, f"cross: history not identical on A, B and C 2 s after the last ack: {last_diff}")
    rep.fig("cross: history identical on A/B/C after s", round(t_conv, 3) if t_conv is not None else "no")
    SUMMARY["history converged s"] = "%.3f" % t_conv if t_conv is not None else "no"


# -- 1. across nodes ---------------------------------------------------------

def part_cross(rep: Report, a: Server, b: Server, c: Server, n_msgs: int) -> None:
    senders = [user_on(a, b, "s") for _ in range(2)]     # registered on A, logged in on B
    recvs = [user_on(a, b, "r") for _ in range(2)]
    rep.fig("users registered on A logged in on B", len(senders) + len(recvs))
    convs: dict[tuple[int, int], str] = {}
    for i, s in enumerate(senders):
        for j, r in enumerate(recvs):
            resp = c.post("/api/chat/start/", {"receiver_id": r["username"]}, token=s["access"])
            rep.check(resp.status_code == 201 and resp.json().get("created") is True,
                      f"cross: chat start on C {resp.status_code} {resp.text[:200]}")
            convs[(i, j)] = resp.json()["conversation_id"]
    s_ws = [socket_on(a, s) for s in senders]
    r_ws = [socket_ready(b, recvs[0], a), socket_ready(c, recvs[1], a)]   # receiver 0 on B, 1 on C
    where = ["B", "C"]
    lat: dict[str, list[float]] = {"B": [], "C": []}
    seen: list[set] = [set(), set()]
    dup_frames = 0
    acked: dict[str, int] = {}
    acked_by_conv: dict[str, dict[str, int]] = {v: {} for v in convs.values()}
    try:
        for k in range(n_msgs):
            i, j = k % 2, (k // 2) % 2
            cid = f"x{k}"
            t0 = time.monotonic()
            s_ws[i].send(json.dumps({"message": "text " + cid, "receiver": recvs[j]["username"], "client_id": cid}))
            frame = None
            while frame is None:
                left = 5 - (time.monotonic() - t0)
                if left <= 0:
                    break
                try:
                    f = json.loads(r_ws[j].recv(timeout=left))
                except TimeoutError:
                    break
                if f.get("type") != "message":
                    continue
                if f["id"] in seen[j]:
                    dup_frames += 1
                seen[j].add(f["id"])
                if f.get("message") == "text " + cid:
                    frame = f
                    lat[where[j]].append(time.monotonic() - t0)
            if not rep.check(frame is not None, f"cross: message {cid} from A not delivered to the socket on "
                             f"{where[j]} within 5 s"):
                break
            ack = wait_frame(s_ws[i], cid, 5)
            if not rep.check(ack.get("type") == "message.ack", f"cross: send {cid} on A answered {ack}"):
                break
            rep.check(ack["id"] == frame["id"] and frame["sender"] == senders[i]["username"]
                      and frame["conversation_id"] == convs[(i, j)],
                      f"cross: ack {ack} and delivered frame {frame} disagree")
            acked[cid] = ack["id"]
            acked_by_conv[convs[(i, j)]][cid] = ack["id"]
        t_last = time.monotonic()
        history_converges(rep, {"A": a, "B": b, "C": c}, senders, convs, acked_by_conv, t_last)
        # nothing delivered twice (a late duplicate shows up now)
        for j, ws in enumerate(r_ws):
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.3:
                try:
                    f = json.loads(ws.recv(timeout=0.3))
                except TimeoutError:
                    break
                if f.get("type") == "message":
                    if f["id"] in seen[j]:
                        dup_frames += 1
                    else:
                        rep.check(False, f"cross: unexpected frame on {where[j]}: {f}")
        rep.check(dup_frames == 0, f"cross: {dup_frames} message frames delivered twice")
    finally:
        for ws in s_ws + r_ws:
            ws.close()
    rep.fig("cross-node delivered messages A->B / A->C", f"{len(lat['B'])} / {len(lat['C'])}")
    for w in ("B", "C"):
        if lat[w]:
            rep.fig(f"cross-node delivery latency A->{w} ms p50/p99/max",
                    f"{ms(pct(lat[w], 50))} / {ms(pct(lat[w], 99))} / {ms(max(lat[w]))}")
    if lat["B"]:
        SUMMARY["A->B delivery ms p50/p99"] = f"{ms(pct(lat['B'], 50))}/{ms(pct(lat['B'], 99))} ({len(lat['B'])} msgs)"


def part_fresh_socket(rep: Report, a: Server, b: Server, rounds: int = 20) -> None:
    """A socket whose upgrade on B has completed gets a message sent on A right after it (the
    message is decided after the upgrade's answer)."""
    s = user_on(a, a, "fs")
    r = user_on(a, b, "fr")
    a.start_chat(s["access"], r["username"])
    s_ws = socket_on(a, s)
    missed = []
    try:
        for k in range(rounds):
            r_ws = socket_on(b, r)
            cid = f"fresh{k}"
            s_ws.send(json.dumps({"message": "text " + cid, "receiver": r["username"], "client_id": cid}))
            got = None
            t0 = time.monotonic()
            while got is None and time.monotonic() - t0 < 1.0:
                try:
                    f = json.loads(r_ws.recv(timeout=max(0.01, 1.0 - (time.monotonic() - t0))))
                except TimeoutError:
                    break
                if f.get("type") == "message" and f.get("message") == "text " + cid:
                    got = f
            ack = wait_frame(s_ws, cid, 5)
            if got is None:
                missed.append(f"{cid} (id {ack.get('id')})")
            r_ws.close()
    finally:
        s_ws.close()
    rep.check(not missed, f"fresh socket: {len(missed)} of {rounds} messages sent on A right after the receiver's "
              f"socket upgrade on B were stored and acked but never delivered to that open socket: {missed[:5]}")
    rep.fig("fresh socket on B: messages sent on A at once not delivered", f"{len(missed)} of {rounds}")
    SUMMARY["fresh-socket misses"] = f"{len(missed)}/{rounds}"


# -- 2. presence ---------------------------------------------------------------

def part_presence(rep: Report, a: Server, c: Server, asker: dict) -> None:
    p = user_on(c, c, "p")
    m = connected_map(a, asker["access"])
    rep.check(not m.get(p["username"], False), f"presence: {p['username']} connected on A before any socket")
    ws = socket_on(c, p)
    t_on = wait_connected(a, asker["access"], [p["username"]], True, 3.0)
    rep.check(t_on is not None, "presence: a user with a socket only on C is not connected=true on A within 3 s")
    ws.close()
    t_off = wait_connected(a, asker["access"], [p["username"]], False, 3.0)
    rep.check(t_off is not None, "presence: its socket on C closed, the user is still connected=true on A 3 s later")
    rep.fig("presence on A of a socket on C: connected after / disconnected after (s)",
            f"{'%.3f' % t_on if t_on is not None else '-'} / {'%.3f' % t_off if t_off is not None else '-'}")
    SUMMARY["presence on/off s"] = f"{'%.3f' % t_on if t_on is not None else '-'}/{'%.3f' % t_off if t_off is not None else '-'}"


# -- 3. client_id across nodes -----------------------------------------------

def part_client_id(rep: Report, a: Server, b: Server, c: Server, base: str, url: str) -> None:
    x = user_on(b, a, "d")
    y = user_on(b, c, "e")
    conv = a.start_chat(x["access"], y["username"])
    ids = [f"d{i}" for i in range(DUP_IDS)]
    y_ws = socket_ready(c, y, a)
    socks = {"A": socket_on(a, x), "B": socket_on(b, x)}
    acks: dict[str, dict[str, int]] = {"A": {}, "B": {}}
    errors: dict[str, str] = {}
    barrier = threading.Barrier(2)

    def run(node: str) -> None:
        try:
            barrier.wait(5)
            send_burst(socks[node], ids, y["username"], acks[node])
        except Exception as e:  # noqa: BLE001
            errors[node] = f"{type(e).__name__}: {e}"

    ths = [threading.Thread(target=run, args=(n,), daemon=True) for n in ("A", "B")]
    t0 = time.monotonic()
    for th in ths:
        th.start()
    for th in ths:
        th.join(30)
    dt = time.monotonic() - t0
    rep.check(not errors, f"client_id: senders failed: {errors}")
    differ = [(cid, acks["A"].get(cid), acks["B"].get(cid)) for cid in ids
              if acks["A"].get(cid) is None or acks["A"].get(cid) != acks["B"].get(cid)]
    rep.check(not differ, f"client_id: {len(differ)} ack pairs differ or are missing, e.g. {differ[:5]}")
    # the receiver's socket on C gets each message once
    got: dict[int, int] = {}
    want = set(acks["A"].values())
    t1 = time.monotonic()
    while time.monotonic() - t1 < 5 and not want <= set(got):
        try:
            f = json.loads(y_ws.recv(timeout=0.5))
        except TimeoutError:
            continue
        if f.get("type") == "message":
            got[f["id"]] = got.get(f["id"], 0) + 1
    while True:  # a late duplicate
        try:
            f = json.loads(y_ws.recv(timeout=0.3))
        except TimeoutError:
            break
        if f.get("type") == "message":
            got[f["id"]] = got.get(f["id"], 0) + 1
    for ws in [y_ws, *socks.values()]:
        ws.close()
    twice = {k: v for k, v in got.items() if v > 1}
    rep.check(want <= set(got), f"client_id: the receiver on C missed {len(want - set(got))} messages")
    rep.check(not twice, f"client_id: the receiver on C got {len(twice)} messages more than once: "
              f"{list(twice.items())[:5]}")
    rep.check(set(got) <= want, f"client_id: the receiver on C got {len(set(got) - want)} messages never acked")
    wait_history(rep, c, "client_id: history on C", y["access"], [conv], acks["A"])
    hist = c.history(y["access"], conv)
    rep.check(len(hist) == DUP_IDS, f"client_id: {len(hist)} messages in history for {DUP_IDS} client_ids")
    evs = check_replay(rep, base, url, "client_id")
    stored = sum(1 for e in evs if e["type"] == "MessageSent" and e.get("sender_id") == x["id"])
    rep.check(stored == DUP_IDS, f"client_id: replay --postgres has {stored} messages of the sender for "
              f"{DUP_IDS} client_ids")
    rep.fig("client_id: ids each sent via A and B / ack pairs equal / stored (s for both)",
            f"{DUP_IDS} / {DUP_IDS - len(differ)} / {stored} ({dt:.2f})")
    SUMMARY["client_id pairs equal/stored"] = f"{DUP_IDS - len(differ)}/{stored} of {DUP_IDS}"


# -- 4. kill -9 of A under load ------------------------------------------------

def part_kill(rep: Report, a: Server, b: Server, c: Server, base: str, url: str) -> None:
    z = user_on(c, c, "z")                                  # the receiver
    snd_a = [user_on(a, a, "ka") for _ in range(2)]        # senders on A (only sockets there)
    snd_b = [user_on(b, b, "kb") for _ in range(2)]        # senders on B
    ghost = user_on(a, a, "g")                              # one socket, on A
    q = user_on(b, b, "q")                                  # a socket on B, a REST send via C
    convs = {s["username"]: c.start_chat(s["access"], z["username"]) for s in snd_a + snd_b + [q]}
    g_ws = socket_on(a, ghost)
    q_ws = socket_on(b, q)
    on_a = [ghost["username"]] + [s["username"] for s in snd_a]
    stop_a, stop_b = threading.Event(), threading.Event()
    load_a = [Sender(a, s, z["username"], f"ka{i}", stop_a) for i, s in enumerate(snd_a)]
    load_b = [Sender(b, s, z["username"], f"kb{i}", stop_b) for i, s in enumerate(snd_b)]
    for th in load_a + load_b:
        th.start()
    t_on = wait_connected(b, z["access"], on_a, True, 3.0)
    rep.check(t_on is not None, "kill: the sockets on A are not connected=true on B within 3 s")
    time.sleep(random.uniform(0.4, 0.9))
    check_alive(rep, a, "kill: node A before the kill")
    b_at_kill = [len(th.acked) for th in load_b]
    a.kill()
    t_kill = time.monotonic()

    # the sockets of A count as closed on B: measured in the background from the kill
    t_closed: list[Optional[float]] = [None]

    def watch() -> None:
        t = wait_connected(b, z["access"], on_a, False, PRESENCE_BOUND + 5)
        t_closed[0] = (time.monotonic() - t_kill) if t is not None else None
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    # B and C keep serving at once
    t0 = time.monotonic()
    try:
        f = send_wait(q_ws, "q-after-kill", "text q-after-kill", z["username"], timeout=5)
    except Exception as e:  # noqa: BLE001
        f = {"error": f"{type(e).__name__}: {e}"}
    t_ack_b = time.monotonic() - t0
    rep.check(f.get("type") == "message.ack", f"kill: a send via B right after the kill got {f}")
    q_acked = {"q-after-kill": f["id"]} if f.get("type") == "message.ack" else {}
    t0 = time.monotonic()
    r = c.post("/api/chat/send/", {"message": "text q-rest-c", "receiver": z["username"], "client_id": "q-rest-c"},
               token=q["access"], timeout=5)
    t_ack_c = time.monotonic() - t0
    if rep.check(r.status_code == 201, f"kill: a REST send via C right after the kill: {r.status_code} {r.text[:200]}"):
        q_acked["q-rest-c"] = r.json()["id"]
    rep.fig("kill: first send after the kill acked via B (WebSocket) / C (REST) in ms",
            f"{ms(t_ack_b)} / {ms(t_ack_c)}")
    time.sleep(1.0)                      # B's senders go on without A
    stop_a.set()
    stop_b.set()
    for th in load_a + load_b:
        th.join(15)
        if th.is_alive():
            rep.check(False, "kill: a load thread hung after the kill")
    for i, th in enumerate(load_b):
        rep.check(th.error == "", f"kill: sender {i} on B failed: {th.error}")
        rep.check(len(th.acked) > b_at_kill[i], f"kill: sender {i} on B got no ack after A's kill "
                  f"({len(th.acked)} acked, {b_at_kill[i]} at the kill)")
    acked_a = {cid: mid for th in load_a for cid, mid in th.acked.items()}
    acked_b = {cid: mid for th in load_b for cid, mid in th.acked.items()}
    rep.check(len(acked_a) > 0 and len(acked_b) > 0, f"kill: no load acked: {len(acked_a)} on A, {len(acked_b)} on B")
    all_acked = {**acked_a, **acked_b, **q_acked}
    all_convs = sorted(set(convs.values()))
    dt_b = wait_history(rep, b, "kill: history on B", z["access"], all_convs, all_acked)
    # in flight at the kill: stored at most once
    hist_text: dict[str, int] = {}
    try:
        for conv in all_convs:
            for m in b.history(z["access"], conv):
                hist_text[m["message"]] = hist_text.get(m["message"], 0) + 1
    except (RuntimeError, requests.RequestException) as e:
        rep.check(False, f"kill: history on B: {e}")
    unacked = [cid for th in load_a for cid in th.sent if cid not in th.acked]
    kept = sum(1 for cid in unacked if hist_text.get("text " + cid))
    twice = [cid for cid in unacked if hist_text.get("text " + cid, 0) > 1]
    rep.check(not twice, f"kill: unacked messages stored twice: {twice[:5]}")
    watcher.join(PRESENCE_BOUND + 8)
    tc = t_closed[0]
    rep.check(tc is not None and tc <= PRESENCE_BOUND,
              f"kill: the users whose sockets were on A still connected=true on B "
              f"{'%.1f' % tc if tc is not None else 'more than %.0f' % (PRESENCE_BOUND + 5)} s after the kill "
              f"(bound {PRESENCE_BOUND:.0f} s)")
    rep.fig("kill: acked via A / via B (B after the kill) / in flight on A stored",
            f"{len(acked_a)} / {len(acked_b)} ({sum(len(th.acked) for th in load_b) - sum(b_at_kill)}) / "
            f"{kept} of {len(unacked)}")
    rep.fig("kill: all acked in history on B after s", round(dt_b, 3))
    rep.fig("kill: A's sockets connected=false on B after s", round(tc, 2) if tc is not None else "never")
    SUMMARY["kill: acked A/B"] = f"{len(acked_a)}/{len(acked_b)}"
    SUMMARY["closed on B after s"] = "%.2f" % tc if tc is not None else "never"
    for ws in (g_ws, q_ws):
        try:
            ws.close()
        except Exception:  # noqa: BLE001
            pass
    check_alive(rep, b, "kill: node B")
    check_alive(rep, c, "kill: node C")

    # A restarts on its data dir and has every acked message
    t0 = time.monotonic()
    a.start()
    rep.fig("kill: A restart on its data dir s", round(time.monotonic() - t0, 2))
    wait_history(rep, a, "kill: history on restarted A", z["access"], all_convs, all_acked)
    ws = socket_on(a, q)
    try:
        f = send_wait(ws, "q-on-a", "text q-on-a", z["username"])
        rep.check(f.get("type") == "message.ack", f"kill: a send via the restarted A got {f}")
    finally:
        ws.close()
    for s, th in zip(snd_a, load_a):  # the last acked client_id of A's last life, re-sent: its id again
        if th.acked:
            cid, mid = max(th.acked.items(), key=lambda kv: kv[1])
            w = socket_on(a, {"access": a.login(s["username"])["access"]})
            try:
                f = send_wait(w, cid, "text " + cid, z["username"])
                rep.check(f.get("type") == "message.ack" and f.get("id") == mid,
                          f"kill: re-send of acked {cid} (id {mid}) via the restarted A got {f}")
            finally:
                w.close()
    check_replay(rep, base, url, "kill")


# -- 5. PostgreSQL stopped under B and C ---------------------------------------

def output_from(srv: Server, offset: int) -> str:
    try:
        with open(srv.out_path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def part_outage(rep: Report, b: Server, c: Server, pg: PgCluster, down_for: float) -> None:
    u = user_on(b, b, "o")
    w = user_on(c, c, "w")
    conv = b.start_chat(u["access"], w["username"])
    u_ws = socket_on(b, u)
    w_ws = socket_ready(c, w, b)
    closed = {"B": "", "C": ""}     # why the socket on that node closed

    def delivered(cid: str, timeout: float) -> Optional[dict]:
        """The `message` frame of `cid` on w's socket on C (None if not within `timeout`)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                f = json.loads(w_ws.recv(timeout=max(0.01, timeout - (time.monotonic() - t0))))
            except TimeoutError:
                return None
            if f.get("type") == "message" and f.get("message") == "text " + cid:
                return f
        return None

    f = send_wait(u_ws, "before", "text before", w["username"])
    rep.check(f.get("type") == "message.ack", f"outage: send before the stop: {f}")
    rep.check(delivered("before", 3) is not None, "outage: the send before the stop not delivered on C")
    out_at = {"B": os.path.getsize(b.out_path), "C": os.path.getsize(c.out_path)}

    pg.stop_immediate()
    t_stop = time.monotonic()
    answers: dict[str, str] = {}
    for name, probe in (
            ("B register", lambda: b.post("/api/register/", {"username": rand_name("ob"), "password": PASSWORD},
                                          timeout=10)),
            ("C register", lambda: c.post("/api/register/", {"username": rand_name("oc"), "password": PASSWORD},
                                          timeout=10)),
            ("C REST send", lambda: c.post("/api/chat/send/", {"message": "text rest-down", "receiver": u["username"],
                                                               "client_id": "rest-down"}, token=w["access"],
                                           timeout=10))):
        t0 = time.monotonic()
        try:
            got = status_of(probe())
        except requests.RequestException as e:
            got = f"no answer ({type(e).__name__})"
        dt = time.monotonic() - t0
        answers[name] = f"{got} in {dt:.2f} s"
        rep.check(got == "503 storage_unavailable" and dt <= 3.0,
                  f"outage: {name} answered {got} after {dt:.2f} s (want 503 storage_unavailable within 3 s)")
    rep.fig("outage: writes after the stop", answers)

    # a WebSocket send: never acknowledged while the database is down (an error frame is fine)
    u_ws.send(json.dumps({"message": "text down-1", "receiver": w["username"], "client_id": "down-1"}))
    frames: list[str] = []
    try:
        f = wait_frame(u_ws, "down-1", 1.0)
        frames.append(f"{f.get('type')} {f.get('code', '')}".strip())
        rep.check(f.get("type") != "message.ack", f"outage: a WebSocket send was acked while PostgreSQL was down: {f}")
    except TimeoutError:
        frames.append("no answer in 1 s")
    except Exception as e:  # noqa: BLE001
        closed["B"] = f"{type(e).__name__}: {e}"
    rep.fig("outage: WebSocket send on B answered", frames[0] if frames else "-")

    # /healthz of both turns 503; the database stays down `down_for` s (beyond the 5 s after which
    # a node without a heartbeat is taken for dead), the nodes stay alive and answer 503
    t_503: dict[str, Optional[float]] = {"B": None, "C": None}
    refused: dict[str, int] = {}
    while time.monotonic() - t_stop < down_for:
        for name, srv in (("B", b), ("C", c)):
            if t_503[name] is None and health_code(srv) == 503:
                t_503[name] = time.monotonic() - t_stop
            try:
                key = f"{name} {status_of(srv.post('/api/register/', {'username': rand_name('od'), 'password': PASSWORD}, timeout=5))}"
            except requests.RequestException as e:
                key = f"{name} no answer ({type(e).__name__})"
            refused[key] = refused.get(key, 0) + 1
        if not closed["B"]:
            try:
                f = wait_frame(u_ws, "down-1", 0.2)
                rep.check(f.get("type") != "message.ack", f"outage: a WebSocket send was acked while PostgreSQL "
                          f"was down: {f}")
            except TimeoutError:
                pass
            except Exception as e:  # noqa: BLE001
                closed["B"] = f"{type(e).__name__}: {e}"
        else:
            time.sleep(0.2)
    for name, t in t_503.items():
        rep.check(t is not None and t <= 5, f"outage: /healthz of {name} not 503 within 5 s of the stop "
                  f"({'%.2f s' % t if t is not None else 'never, in ' + str(down_for) + ' s down'})")
    rep.check(delivered("down-1", 0.1) is None, "outage: a send was delivered on C while PostgreSQL was down")
    rep.check(set(k.split(" ", 1)[1] for k in refused) == {"503 storage_unavailable"},
              f"outage: writes while PostgreSQL was down answered {refused}")
    rep.fig("outage: /healthz 503 after s, B / C",
            " / ".join("%.2f" % t if t is not None else "never" for t in t_503.values()))
    rep.fig("outage: registrations while down", refused)
    check_alive(rep, b, "outage: node B")
    check_alive(rep, c, "outage: node C")
    rep.fig("outage: PostgreSQL down for s", round(time.monotonic() - t_stop, 2))

    pg.start()
    t_up = time.monotonic()
    t_health: dict[str, Optional[float]] = {"B": None, "C": None}
    while time.monotonic() - t_up < 20 and None in t_health.values():
        for name, srv in (("B", b), ("C", c)):
            if t_health[name] is None and health_code(srv) == 200:
                t_health[name] = time.monotonic() - t_up
        time.sleep(0.05)
    for name, t in t_health.items():
        rep.check(t is not None, f"recovery: /healthz of {name} not 200 within 20 s of PostgreSQL's start")
    left = lambda: max(1.0, 20 - (time.monotonic() - t_up))  # noqa: E731
    # the send refused during the outage, again with its client_id; then a new one B -> C
    ack = None
    t_ack = t_new = None
    for attempt in range(2):
        try:
            if closed["B"]:
                u_ws = socket_on(b, {"access": b.login(u["username"])["access"]})
            ack = send_wait(u_ws, "down-1", "text down-1", w["username"], timeout=left())
            t_ack = time.monotonic() - t_up
            break
        except (TimeoutError, requests.RequestException):
            break
        except Exception as e:  # noqa: BLE001 - the socket closed: once more on a new one
            closed["B"] = closed["B"] or f"{type(e).__name__}: {e}"
    rep.check(ack is not None and ack.get("type") == "message.ack",
              f"recovery: the send refused during the outage, re-sent, got {ack} within 20 s")
    try:
        f = send_wait(u_ws, "after-1", "text after-1", w["username"], timeout=left())
        if rep.check(f.get("type") == "message.ack", f"recovery: a send via B after the restart got {f}"):
            try:
                d = delivered("after-1", left())
            except Exception as e:  # noqa: BLE001
                closed["C"] = f"{type(e).__name__}: {e}"
                d = None
            if d is None and closed["C"]:  # the receiver comes back and finds it in history
                w_tok = c.login(w["username"])["access"]
                d = next((m for m in c.history(w_tok, conv) if m["message"] == "text after-1"), None)
            if rep.check(d is not None and d["id"] == f["id"],
                         f"recovery: the send via B after the restart not delivered on C ({d})"):
                t_new = time.monotonic() - t_up
    except Exception as e:  # noqa: BLE001
        closed["B"] = closed["B"] or f"{type(e).__name__}: {e}"
        rep.check(False, f"recovery: a send via B after the restart: {type(e).__name__}: {e}")
    rep.check(t_new is not None and t_new <= 20, f"recovery: B -> C not working within 20 s (took {t_new})")
    rep.fig("recovery after PostgreSQL start: healthz B / C, re-sent ack, B->C acked+delivered (s)",
            " / ".join("%.2f" % v if v is not None else "-" for v in (t_health["B"], t_health["C"], t_ack, t_new)))
    SUMMARY["outage: healthz 503 B/C s"] = "/".join("%.2f" % t if t is not None else "never" for t in t_503.values())
    SUMMARY["recovered B->C s"] = "%.2f" % t_new if t_new is not None else "no"
    # no live node is taken for dead because the database was away: the sockets stay open
    for name, srv in (("B", b), ("C", c)):
        out = output_from(srv, out_at[name])
        lines = [ln for ln in out.splitlines() if "taken for dead" in ln or "has no heartbeat" in ln]
        rep.check(not lines and not closed[name],
                  f"outage: node {name} took a live node for dead after the outage, or closed the socket on it"
                  f"{' (' + closed[name] + ')' if closed[name] else ''}: " + " | ".join(ln[:200] for ln in lines))
    rep.fig("outage: sockets closed on B / C", f"{closed['B'] or 'no'} / {closed['C'] or 'no'}")
    for ws in (u_ws, w_ws):
        try:
            ws.close()
        except Exception:  # noqa: BLE001
            pass
    texts: dict[str, list[int]] = {}
    for m in c.history(c.login(w["username"])["access"], conv):
        texts.setdefault(m["message"], []).append(m["id"])
    for cid in ("before", "down-1", "after-1"):
        got = texts.get("text " + cid)
        want = [ack["id"]] if cid == "down-1" and ack and ack.get("id") else None
        rep.check(got is not None and len(got) == 1 and (want is None or got == want),
                  f"recovery: {cid} in history on C as {got}, want once{' as ' + str(want) if want else ''}")
    rep.check(texts.get("text rest-down") is None, "outage: the REST send refused with 503 was stored")
    check_alive(rep, b, "recovery: node B")
    check_alive(rep, c, "recovery: node C")


def first_write(srv: Server, prefix: str, limit: float) -> Optional[float]:
    """Registers on `srv` until one is accepted; the seconds it took, or None if not within `limit`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            r = srv.post("/api/register/", {"username": rand_name(prefix), "password": PASSWORD}, timeout=limit)
            if r.status_code == 201:
                return time.monotonic() - t0
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return None


def part_hung(rep: Report, b: Server, c: Server) -> None:
    """C stops (SIGSTOP) right after a write of its own, so it holds the turn lock: B must write
    again within 12 s (C's sessions ended once its heartbeat is 5 s old) and count C's sockets
    closed; C continued (SIGCONT) must come back by itself (it learns it was taken for dead,
    closes its sockets and joins again) and write."""
    asker = user_on(b, b, "hq")
    h = user_on(c, c, "hung")
    h_ws = socket_ready(c, h, b)
    c.register(rand_name("last"))  # C's own write: it keeps the turn lock after it
    os.killpg(c.proc.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        took = first_write(b, "bw", 15)
        rep.check(took is not None and took <= 12, f"hung C: a write through B took {took} s (want <= 12)")
        rep.fig("hung C (SIGSTOP while holding the turn): first write through B after s",
                f"{took:.2f}" if took is not None else "never")
        closed = wait_connected(b, asker["access"], [h["username"]], False, max(1.0, 14 - (time.monotonic() - t0)))
        rep.check(closed is not None, "hung C: its socket still counted connected on B 14 s after the stop")
        if closed is not None:
            rep.fig("hung C: its sockets counted closed on B after s", round(time.monotonic() - t0, 2))
    finally:
        os.killpg(c.proc.pid, signal.SIGCONT)
    back = first_write(c, "cb", 20)
    rep.check(back is not None, "hung C: no write through C within 20 s of SIGCONT")
    rep.fig("hung C: first write through C after SIGCONT s", f"{back:.2f}" if back is not None else "never")
    try:
        h_ws.close()
    except Exception:  # noqa: BLE001
        pass
    check_alive(rep, c, "hung C after SIGCONT")


# -- the campaign ----------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=300)
    ap.add_argument("--pg-down", type=float, default=7.0, help="seconds PostgreSQL stays stopped (check 5)")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rep, seed = seeded_report("multinode", args.seed)
    if not pg_bin():
        print("[multinode] PostgreSQL is not installed (/usr/lib/postgresql/*/bin): nothing to test")
        rep.check(False, "PostgreSQL not installed")
        rep.finish()

    base = tempfile.mkdtemp(prefix="chat-rel-mn-")
    os.chmod(base, 0o755)  # the cluster runs as user postgres when we are root
    pg = PgCluster(base)
    nodes: dict[str, Server] = {}

    def cleanup() -> None:
        for s in nodes.values():
            s.cleanup()
        pg.destroy()
        if os.environ.get("CHAT_KEEP_DATA") != "1":
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"[multinode] kept {base} and the nodes' dirs " + " ".join(s.base for s in nodes.values()))
    atexit.register(cleanup)

    step = "setup"
    try:
        t = time.monotonic()
        url = pg.create()
        rep.fig("cluster start s", round(time.monotonic() - t, 2))
        os.environ["CHAT_ES_SECRET"] = secrets.token_hex(32)
        extra = ["--postgres", url, "--socket-rate", "100000"]
        t = time.monotonic()
        for name in ("A", "B", "C"):
            nodes[name] = Server(extra=extra).start()
        rep.fig("three nodes started in s", round(time.monotonic() - t, 2))
        a, b, c = nodes["A"], nodes["B"], nodes["C"]

        step = "1 across nodes"
        part_cross(rep, a, b, c, args.messages)
        step = "1b fresh socket"
        part_fresh_socket(rep, a, b)
        step = "2 presence"
        part_presence(rep, a, c, user_on(b, b, "ask"))
        step = "3 client_id"
        part_client_id(rep, a, b, c, base, url)
        step = "4 kill -9 of A"
        part_kill(rep, a, b, c, base, url)
        step = "5 PostgreSQL outage"
        t = time.monotonic()
        rc = a.stop(timeout=15)
        rep.check(rc == 0, f"SIGTERM of A before the outage: exit {rc}")
        rep.fig("A SIGTERM exit / s", f"{rc} / {time.monotonic() - t:.2f}")
        part_outage(rep, b, c, pg, args.pg_down)
        step = "6 hung node"
        part_hung(rep, b, c)

        step = "final"
        for name in ("B", "C"):
            rc = nodes[name].stop(timeout=15)
            rep.check(rc == 0, f"final SIGTERM of {name}: exit {rc}")
        evs = check_replay(rep, base, url, "final")
        frc, fresh, fout = db_head(base, url)
        rep.check(frc == 0 and fresh is not None, f"final verify --postgres on an empty dir: exit {frc}: {fout}")
        rep.fig("database log: events / MessageSent", f"{len(evs)} / {sum(e['type'] == 'MessageSent' for e in evs)}")
        rep.fig("final head digest", fresh)
    except StartFailed as e:
        rep.check(False, f"{step}: a node did not start (exit {e.rc}): {e.output[-1500:]}")
    except Exception as e:  # noqa: BLE001 - any surprise is a failed campaign, with its figures
        rep.check(False, f"{step}: campaign error: {type(e).__name__}: {e}")
        import traceback
        traceback.print_exc()
        for s in nodes.values():
            if s.proc is not None:
                check_alive(rep, s, f"{step}: after the campaign error")
    finally:
        if rep.failures:
            for name, s in nodes.items():
                lines = log_problems(s)
                if lines:
                    print(f"[multinode] node {name} warnings/errors (each distinct one once, first time):")
                    for ln, n in lines[-25:]:
                        print(f"    {ln[:300]}{f'  (x{n})' if n > 1 else ''}")
        warn = {name: sum(n for _, n in log_problems(s)) for name, s in nodes.items()}
        rep.fig("node warning/error lines A/B/C", " / ".join(str(warn.get(n, "-")) for n in ("A", "B", "C")))
        cleanup()
        atexit.unregister(cleanup)
    print("[multinode] summary: " + "; ".join(f"{k} {v}" for k, v in SUMMARY.items()), flush=True)
    rep.finish()


if __name__ == "__main__":
    main()
