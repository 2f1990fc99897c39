#!/usr/bin/env python3
"""Crash campaign: kill -9 the release server at random moments under load, restart, audit.

Per cycle: a load thread registers users, logs them in, starts chats and sends
WebSocket messages with client_ids (pipelined, so some are in flight at the kill);
the main thread SIGKILLs the server's process group 0.05-0.5 s into the load,
restarts it on the same data dir and checks:

* every acknowledged message is in the conversation history with its id and text,
  and no message (text, id, or (sender, client_id) in the log) appears twice;
* re-sending acknowledged client_ids after the restart returns the same ids
  (idempotency survives the crash) and stores nothing new;
* every acknowledged registration (201) can log in;
* `chat-es verify` exits 0 and the seqs printed by `chat-es replay` are 1..N.

Every 5th cycle: a copy of the data dir as the kill left it is rebuilt with
`rebuild --as-of K` (K = the last seq before the restart's ServerStarted) and its
digests (all views) must equal those of the restarted log rebuilt as of K; and that
copy rebuilt `--from-snapshot` (as `serve` starts) must equal its full rebuild.
The server writes a snapshot every 500 events or second, so kills often land while
one is being written; restarts start from the newest usable one.

At the end: `rebuild` digests of the users and conversations views before and
after a clean restart are equal, and equal to a rebuild of the log as it was at
the last crash point (nothing acknowledged changed them).

usage: crash.py [--cycles N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PASSWORD, Report, Server, rand_name, rebuild_digests, replay_events, send_burst, tool, seeded_report  # noqa: E402

from websockets.sync.client import connect as ws_connect  # noqa: E402


class Load(threading.Thread):
    """One cycle's load; records only what the server acknowledged."""

    def __init__(self, srv: Server, alice: dict, bob: dict, cycle: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.srv, self.alice, self.bob, self.cycle, self.stop_ev = srv, alice, bob, cycle, stop
        self.acked_regs: list[str] = []
        self.acked_msgs: dict[str, int] = {}     # client_id -> message id
        self.sent_msgs: list[str] = []            # every client_id put on the wire
        self.logins = 0
        self.chats = 0
        self.error: str = ""

    def run(self) -> None:
        srv = self.srv
        try:
            t = srv.login(self.alice["username"])
            self.logins += 1
            ws = ws_connect(srv.ws_url + "/api/chat/send/?token=" + t["access"], open_timeout=5)
            n = 0
            while not self.stop_ev.is_set():
                # a registration, its login and a chat start
                name = rand_name(f"c{self.cycle}")
                r = srv.post("/api/register/", {"username": name, "password": PASSWORD}, timeout=5)
                if r.status_code == 201:
                    self.acked_regs.append(name)
                tt = srv.login(name)
                self.logins += 1
                srv.start_chat(tt["access"], self.alice["username"])
                self.chats += 1
                # a pipelined burst of WebSocket messages alice -> bob
                burst = []
                for _ in range(8):
                    cid = f"k{self.cycle}-{n}"
                    n += 1
                    burst.append(cid)
                    self.sent_msgs.append(cid)
                send_burst(ws, burst, self.bob["username"], self.acked_msgs)
        except Exception as e:  # the kill ends the load with some connection error
            self.error = f"{type(e).__name__}: {e}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rep, seed = seeded_report("crash", args.seed)

    # per-socket rate limit raised: this campaign is about durability, not the limiter; a
    # snapshot is written every 500 events or second, so many kills land while one is written
    srv = Server(fsync="always", extra=["--socket-rate", "100000", "--snapshot-every-events", "500",
                                        "--snapshot-every-seconds", "1"]).start()
    alice, bob = srv.new_user(), srv.new_user()
    conv = srv.start_chat(alice["access"], bob["username"])

    all_acked_msgs: dict[str, int] = {}
    all_regs: list[str] = [alice["username"], bob["username"]]
    events_checked = 0      # acknowledged events (messages + registrations) found after a restart
    seqs_checked = 0        # log events whose seq continuity was checked
    resent_checked = 0
    in_flight_lost = 0      # sent but never acked, absent after restart (allowed)
    in_flight_kept = 0      # sent, not acked, present after restart (allowed)
    kill_delays = []
    projections_compared = 0
    snapshot_starts = 0     # restarts that started from a snapshot (the rest replayed everything)
    torn_snapshots = 0      # temp files a kill left mid-write
    load_endings: dict[str, int] = {}
    cycles_run = 0
    try:
        for cycle in range(1, args.cycles + 1):
            stop = threading.Event()
            load = Load(srv, alice, bob, cycle, stop)
            load.start()
            delay = random.uniform(0.05, 0.5)
            kill_delays.append(delay)
            time.sleep(delay)
            srv.kill()
            stop.set()
            load.join(15)
            if load.is_alive():
                rep.check(False, f"cycle {cycle}: load thread hung after the kill")
            snap = None
            if cycle % 5 == 0 or cycle == args.cycles:
                # the log exactly as the crash left it, to compare projections after the restart
                snap = tempfile.mkdtemp(prefix="chat-rel-crashsnap-")
                shutil.copytree(srv.data, os.path.join(snap, "data"))
            snapdir = os.path.join(srv.data, "snapshots")
            torn_snapshots += sum(".tmp-" in f for f in (os.listdir(snapdir) if os.path.isdir(snapdir) else []))
            srv.start()
            if "starting from snapshot" in srv.output_since_start():
                snapshot_starts += 1
            cycles_run += 1
            ending = load.error.split(":", 1)[0] or "none"
            load_endings[ending] = load_endings.get(ending, 0) + 1
            rep.check(not load.error.startswith("RuntimeError"), f"cycle {cycle}: load failed before the kill: {load.error}")

            # 1. every acknowledged message present, once, with its id and text
            tok = srv.login(alice["username"])["access"]
            hist = srv.history(tok, conv)
            by_text: dict[str, list[int]] = {}
            ids = [m["id"] for m in hist]
            rep.check(len(ids) == len(set(ids)), f"cycle {cycle}: duplicate message ids in history")
            rep.check(ids == sorted(ids), f"cycle {cycle}: history not in id order")
            for m in hist:
                by_text.setdefault(m["message"], []).append(m["id"])
            all_acked_msgs.update(load.acked_msgs)
            for cid, mid in all_acked_msgs.items():
                got = by_text.get("text " + cid)
                if rep.check(got == [mid], f"cycle {cycle}: acked {cid} -> {mid} found as {got}"):
                    events_checked += 1
            for cid in load.sent_msgs:
                if cid in load.acked_msgs:
                    continue
                got = by_text.get("text " + cid)
                rep.check(got is None or len(got) == 1, f"cycle {cycle}: unacked {cid} stored {got}")
                if got:
                    in_flight_kept += 1
                else:
                    in_flight_lost += 1

            # 2. idempotency across the crash: re-send some acked and all unacked client_ids
            resend = [c for c in load.sent_msgs if c not in load.acked_msgs]
            acked_list = list(load.acked_msgs)
            resend += random.sample(acked_list, min(3, len(acked_list)))
            if resend:
                ws = ws_connect(srv.ws_url + "/api/chat/send/?token=" + tok, open_timeout=5)
                for cid in resend:
                    ws.send(json.dumps({"message": "text " + cid, "receiver": bob["username"],
                                        "client_id": cid}))
                    while True:
                        f = json.loads(ws.recv(timeout=5))
                        if f.get("type") in ("message.ack", "error"):
                            break
                    if rep.check(f.get("type") == "message.ack", f"cycle {cycle}: resend {cid}: {f}"):
                        if cid in load.acked_msgs:
                            rep.check(f["id"] == load.acked_msgs[cid],
                                      f"cycle {cycle}: resend of acked {cid} got id {f['id']}, "
                                      f"was {load.acked_msgs[cid]}")
                        elif by_text.get("text " + cid):
                            rep.check([f["id"]] == by_text["text " + cid],
                                      f"cycle {cycle}: resend of stored {cid} got new id {f['id']}")
                        all_acked_msgs[cid] = f["id"]
                        resent_checked += 1
                ws.close()

            # 3. every acknowledged registration can log in (this cycle's, plus a sample of older)
            all_regs.extend(load.acked_regs)
            sample = load.acked_regs + random.sample(all_regs, min(3, len(all_regs)))
            for name in sample:
                r = srv.post("/api/login/", {"username": name, "password": PASSWORD})
                if rep.check(r.status_code == 200, f"cycle {cycle}: acked user {name} login {r.status_code}"):
                    events_checked += 1

            # 4. the log: verify, seq continuity, no (sender, client_id) twice
            v = tool("verify", "--data", srv.data)
            rep.check(v.returncode == 0, f"cycle {cycle}: verify exit {v.returncode}: {v.stdout[-300:]} {v.stderr[-300:]}")
            evs = replay_events(srv.data)
            seqs = [e["seq"] for e in evs]
            rep.check(seqs == list(range(1, len(seqs) + 1)), f"cycle {cycle}: seq gap or disorder in replay")
            seqs_checked += len(seqs)
            keys = [(e["sender_id"], e.get("client_id")) for e in evs
                    if e["type"] == "MessageSent" and e.get("client_id")]
            rep.check(len(keys) == len(set(keys)), f"cycle {cycle}: a (sender, client_id) stored twice")
            if snap:
                # projections of the crashed log == projections of the restarted log as of the same seq
                # (the restart's open may drop a torn tail that the snapshot still has: compare at the
                # seq the restarted log kept from before its new ServerStarted)
                started = [e["seq"] for e in evs if e["type"] == "ServerStarted"][-1]
                k = started - 1
                d_crash = rebuild_digests(os.path.join(snap, "data"), as_of=k)
                d_after = rebuild_digests(srv.data, as_of=k)
                rep.check(d_crash == d_after, f"cycle {cycle}: projections as of seq {k} differ: crashed log "
                          f"{d_crash} vs restarted log {d_after}")
                # and a start from the snapshots the killed server left equals a full replay
                crashed = os.path.join(snap, "data")
                d_full, d_snap = rebuild_digests(crashed), rebuild_digests(crashed, from_snapshot=True)
                rep.check(d_full == d_snap, f"cycle {cycle}: a start from the crashed server's snapshot differs from "
                          f"a full replay: {d_snap} vs {d_full}")
                projections_compared += 1
                shutil.rmtree(snap, ignore_errors=True)
            health = srv.health()
            rep.check(health["log_position"] >= len(seqs), f"cycle {cycle}: healthz position {health} < replay {len(seqs)}")
            if rep.failures:
                print(f"[crash] stopping after cycle {cycle}; load ended with {load.error}")
                break
            if cycle % 10 == 0 or cycle == args.cycles:
                print(f"[crash] cycle {cycle}: {len(all_acked_msgs)} acked messages, "
                      f"{len(all_regs)} users, log {len(seqs)} events", flush=True)

        # 5. projections: users/conversations digests stable across a clean restart
        srv.stop()
        before = rebuild_digests(srv.data)
        srv.start()
        srv.stop()
        after = rebuild_digests(srv.data)
        for view in ("users", "conversations"):
            rep.check(before.get(view) == after.get(view) and before.get(view),
                      f"rebuild {view} digest changed across a clean restart: {before.get(view)} -> {after.get(view)}")
        rep.fig("rebuild digests (users, conversations)", f"{after.get('users')} {after.get('conversations')}")
    finally:
        srv.cleanup()

    rep.fig("cycles run", cycles_run)
    rep.fig("acked events checked (messages + registrations, cumulative over cycles)", events_checked)
    rep.fig("distinct acked messages", len(all_acked_msgs))
    rep.fig("acked registrations", len(all_regs))
    rep.fig("log events seq-checked (cumulative)", seqs_checked)
    rep.fig("restarts that started from a snapshot", f"{snapshot_starts} of {cycles_run}")
    rep.fig("snapshot temp files left by kills (never read, pruned)", torn_snapshots)
    rep.fig("client_ids re-sent after a crash", resent_checked)
    rep.fig("cycles whose rebuilt projections (all views, as of the crash point) equal those of the restarted log",
            projections_compared)
    rep.fig("what ended the load at the kill", load_endings)
    rep.fig("in flight at kill: stored / not stored", f"{in_flight_kept} / {in_flight_lost}")
    if kill_delays:
        rep.fig("kill delay s (min/max)", f"{min(kill_delays):.3f}/{max(kill_delays):.3f}")
    rep.finish()


if __name__ == "__main__":
    main()
