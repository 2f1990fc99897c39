#!/usr/bin/env python3
"""PostgreSQL campaign: the log kept in PostgreSQL (`serve --postgres URL`), node kills and
database outages.

The campaign starts its own throwaway cluster under a temp dir (`scripts/pg-temp.sh`), since
it stops and starts it, and stops it at exit, failure included. Every node runs with
`--postgres URL` and one CHAT_ES_SECRET (so a node on another data dir reads the same user
keys from the database).

1. kill -9 under load (--cycles, default 5). Four WebSocket senders (pipelined bursts of 8,
   each to its own conversation with one receiver, every send with a client_id) and a
   registration thread load node A; only what was acknowledged is recorded. A's process group
   gets SIGKILL 0.3-0.9 s into the load; in the last cycle PostgreSQL is stopped first (the
   senders' batches then sit in A's cache only) and started again after the kill. A node found
   dead or printing a crash report at the kill is a failure (its crashed thread is printed),
   but the cycles go on: for durability a crash is one more kill. Then:
   * cache ahead of the database: a copy of A's cache as the kill left it is audited with
     `verify --data COPY --postgres URL` (brings it level: cuts what the database lacks); it
     must exit 0 with the same `head digest` as `verify` on a fresh, empty dir; the local head
     of the copy before that is reported (how far the cache was ahead);
   * node B on a fresh, empty data dir against the same database must serve every
     acknowledged message (history with its id and text, once) and let every acknowledged
     registration log in: the database, not A's cache, holds them. B then stops (SIGTERM) and
     has written to the database, so A's cache is now both ahead (unacked tail) and behind;
   * A restarts on its data dir: again every acknowledged message is in history once with its
     id; unacknowledged client_ids and a few acknowledged ones are re-sent (acked ones must get
     their original id back); `replay --data EMPTY --postgres URL` has seqs 1..N, no
     (sender_id, client_id) twice among MessageSent, and each acked message at seq == its id.
2. PostgreSQL stopped (`pg_ctl -m immediate stop`) under node A with a socket open:
   * the first write after the stop (a registration) answers 503 storage_unavailable and
     /healthz turns 503 within 2 s;
   * a WebSocket send gets no ack while the database is down (it is held, or refused with an
     `unavailable` error frame: a node of a shared log cannot take its write turn); /healthz answers 503
     `storage_unavailable` within 5 s; registration, login and POST /api/chat/send/ answer 503
     `storage_unavailable`; the node stays alive;
   * PostgreSQL restarts: /healthz is 200 again and the pending send's ack arrives within 15 s
     (a closed socket: the re-send with the same client_id is acked); the message is in history
     once; a new registration, login and send work. Detection and recovery times are reported.
   * a second outage with a send pending, then SIGTERM: the node must exit within 10 s; no
     snapshot beyond the database head is left; after PostgreSQL returns, a copy of the cache
     (holding the never-acknowledged send) verifies level with the database, the restart cuts
     it, and the re-sent client_id is stored once.
3. At the end (clean stop): `verify --data A --postgres URL` exits 0 and its head digest equals
   a fresh empty dir's, and so does plain `verify --data A` (the cache is level).

usage: postgres.py [--cycles N] [--seed S]
"""

from __future__ import annotations

import argparse
import atexit
import glob
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PASSWORD, REPO, Report, Server, StartFailed, rand_name, send_burst, tool, seeded_report  # noqa: E402

import requests  # noqa: E402
from websockets.sync.client import connect as ws_connect  # noqa: E402

SENDERS = 4
BURST = 8


def pg_bin() -> Optional[str]:
    dirs = glob.glob("/usr/lib/postgresql/*/bin")

    def version(d: str):
        v = d.split("/")[-2]
        return [int(x) if x.isdigit() else 0 for x in v.split(".")]
    return sorted(dirs, key=version)[-1] if dirs else None


class PgCluster:
    """A throwaway cluster made by scripts/pg-temp.sh, stopped and started in place."""

    def __init__(self, base: str):
        self.dir = os.path.join(base, "pg")
        self.bin = pg_bin()
        self.url = ""
        self.port = 0
        self.made = False

    def _owner(self, args: list[str]) -> list[str]:
        return (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + args

    def create(self) -> str:
        self.made = True
        r = subprocess.run([os.path.join(REPO, "scripts", "pg-temp.sh"), "start", self.dir],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
        if r.returncode != 0:
            raise RuntimeError(f"pg-temp.sh start: exit {r.returncode}: {r.stderr.strip()[-500:]}")
        self.url = r.stdout.strip().splitlines()[-1]
        self.port = int(re.search(r":(\d+)/", self.url).group(1))
        return self.url

    def stop_immediate(self) -> None:
        subprocess.run(self._owner([f"{self.bin}/pg_ctl", "-D", f"{self.dir}/cluster", "-m", "immediate",
                                    "-w", "stop"]), stdin=subprocess.DEVNULL, capture_output=True,
                       check=True, timeout=30)

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                "-c fsync=on")
        subprocess.run(self._owner([f"{self.bin}/pg_ctl", "-D", f"{self.dir}/cluster", "-l",
                                    f"{self.dir}/server.log", "-w", "-o", opts, "start"]),
                       stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=60)

    def destroy(self) -> None:
        if self.made:
            self.made = False
            subprocess.run([os.path.join(REPO, "scripts", "pg-temp.sh"), "stop", self.dir],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


# -- helpers ---------------------------------------------------------------

def head_digest(out: str) -> Optional[str]:
    for line in out.splitlines():
        if line.startswith("head digest:"):
            return line.split(":", 1)[1].strip()
    return None


def verify(data: str, url: Optional[str]) -> tuple[int, Optional[str], str]:
    r = tool("verify", "--data", data, *(["--postgres", url] if url else []), timeout=60)
    return r.returncode, head_digest(r.stdout), (r.stdout + r.stderr).strip()[-600:]


def fresh_dir(base: str, name: str) -> str:
    d = tempfile.mkdtemp(prefix=name + "-", dir=base)
    return d


def db_events(base: str, url: str) -> list[dict]:
    """The whole log as the database holds it, read through a fresh, empty cache."""
    d = fresh_dir(base, "replay")
    try:
        r = tool("replay", "--data", d, "--postgres", url, "--format", "jsonl", timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"replay --postgres exited {r.returncode}: {r.stderr.strip()[-500:]}")
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def db_head(base: str, url: str) -> tuple[int, Optional[str], str]:
    d = fresh_dir(base, "fresh")
    try:
        return verify(d, url)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def send_wait(ws, cid: str, text: str, receiver: str, timeout: float = 5) -> dict:
    """Sends one message and waits for its ack or error frame."""
    ws.send(json.dumps({"message": text, "receiver": receiver, "client_id": cid}))
    return wait_frame(ws, cid, timeout)


def wait_frame(ws, cid: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no ack for {cid} in {timeout:.0f} s")
        f = json.loads(ws.recv(timeout=left))
        if f.get("type") in ("message.ack", "error") and f.get("client_id") == cid:
            return f


class Sender(threading.Thread):
    """One WebSocket sender; records only the acknowledged client_ids."""

    def __init__(self, srv: Server, user: dict, receiver: str, tag: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.srv, self.user, self.receiver, self.tag, self.stop_ev = srv, user, receiver, tag, stop
        self.acked: dict[str, int] = {}
        self.sent: list[str] = []
        self.error = ""

    def run(self) -> None:
        try:
            tok = self.srv.login(self.user["username"])["access"]
            ws = ws_connect(self.srv.ws_url + "/api/chat/send/?token=" + tok, open_timeout=5)
            n = 0
            while not self.stop_ev.is_set():
                burst = []
                for _ in range(BURST):
                    cid = f"{self.tag}-{n}"
                    n += 1
                    burst.append(cid)
                    self.sent.append(cid)
                send_burst(ws, burst, self.receiver, self.acked)
        except Exception as e:  # the kill ends the load with some connection error
            self.error = f"{type(e).__name__}: {e}"


class Registrar(threading.Thread):
    def __init__(self, srv: Server, tag: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.srv, self.tag, self.stop_ev = srv, tag, stop
        self.acked: list[str] = []
        self.error = ""

    def run(self) -> None:
        try:
            while not self.stop_ev.is_set():
                name = rand_name(self.tag)
                r = self.srv.post("/api/register/", {"username": name, "password": PASSWORD}, timeout=5)
                if r.status_code == 201:
                    self.acked.append(name)
                elif r.status_code != 429:
                    raise RuntimeError(f"register {r.status_code} {r.text[:200]}")
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"


def history_by_text(srv: Server, token: str, convs: list[str]) -> tuple[dict[str, list[int]], list[str]]:
    """text -> ids over the conversations, and problems (duplicate ids, order)."""
    by_text: dict[str, list[int]] = {}
    problems = []
    for cid in convs:
        hist = srv.history(token, cid)
        ids = [m["id"] for m in hist]
        if len(ids) != len(set(ids)):
            problems.append(f"duplicate message ids in {cid}")
        if ids != sorted(ids):
            problems.append(f"history of {cid} not in id order")
        for m in hist:
            by_text.setdefault(m["message"], []).append(m["id"])
    return by_text, problems


def check_acked_in_history(rep: Report, srv: Server, where: str, bob: dict, convs: list[str],
                           acked: dict[str, int]) -> tuple[int, dict[str, list[int]]]:
    """Checks that every acked client id's message is in bob's history once, with its id;
    returns how many were and the history by text."""
    tok = srv.login(bob["username"])["access"]
    by_text, problems = history_by_text(srv, tok, convs)
    for p in problems:
        rep.check(False, f"{where}: {p}")
    found = 0
    for cid, mid in acked.items():
        got = by_text.get("text " + cid)
        if rep.check(got == [mid], f"{where}: acked {cid} -> {mid} found as {got}"):
            found += 1
    return found, by_text


def snapshot_seqs(data: str) -> list[int]:
    d = os.path.join(data, "snapshots")
    out = []
    for f in os.listdir(d) if os.path.isdir(d) else []:
        m = re.match(r"(\d+)-[0-9a-f]+\.snap$", f)
        if m:
            out.append(int(m.group(1)))
    return out


def health_code(srv: Server) -> Optional[int]:
    try:
        return srv.get("/healthz", timeout=5).status_code
    except requests.RequestException:
        return None


def crash_excerpt(srv: Server) -> Optional[str]:
    """The first lines of a crash report in the node's output since its start, None if none."""
    out = srv.output_since_start()
    i = out.find("*** Program crashed")
    if i < 0:
        i = out.find("*** Signal")
    if i < 0:
        return None
    lines = [ln for ln in out[i:].splitlines() if ln.strip()]
    crashed = [k for k, ln in enumerate(lines) if ln.startswith("Thread ") and ln.rstrip().endswith("crashed:")]
    keep = lines[:1] + (lines[crashed[0]:crashed[0] + 16] if crashed else lines[1:12])
    return "\n".join(ln[:220] for ln in keep)


_crash_reported = False


def check_alive(rep: Report, srv: Server, where: str) -> bool:
    """Fails the campaign if the node died or printed a crash report."""
    global _crash_reported
    crash = crash_excerpt(srv)
    if crash and not _crash_reported and srv.proc is not None and srv.proc.poll() is None:
        _crash_reported = True
        try:  # let the backtracer finish its report (a few seconds) before the kill
            srv.proc.wait(12)
        except subprocess.TimeoutExpired:
            pass
        crash = crash_excerpt(srv)
    dead = srv.proc is not None and srv.proc.poll() is not None
    if dead or crash:
        rc = srv.proc.returncode if srv.proc is not None else None
        rep.check(False, f"{where}: the node {'exited (status ' + str(rc) + ')' if dead else 'is crashing'}"
                  f"{':' + chr(10) + crash if crash else ''}")
        return False
    return True


def copy_cache(data: str, base: str) -> str:
    """A copy of the node's cache (DIR/log) as it is now."""
    d = fresh_dir(base, "cachecopy")
    shutil.copytree(os.path.join(data, "log"), os.path.join(d, "log"))
    return d


def cache_audit(rep: Report, where: str, data: str, base: str, url: str, stats: dict) -> None:
    """Check 3 on a copy of `data`'s cache: verify --postgres levels it with the database."""
    copy = copy_cache(data, base)
    try:
        lrc, local, _ = verify(copy, None)
        prc, level, pout = verify(copy, url)
        frc, fresh, fout = db_head(base, url)
        rep.check(frc == 0 and fresh, f"{where}: verify on a fresh dir: exit {frc}: {fout}")
        if rep.check(prc == 0, f"{where}: verify --postgres of the cache exit {prc}: {pout}"):
            rep.check(level == fresh, f"{where}: cache head digest after verify --postgres {level} != "
                      f"a fresh dir's {fresh}")
        stats["audits"] += 1
        if lrc != 0:
            stats["local verify failed"] += 1
        lseq = int(local.split()[0]) if local else 0
        dseq = int(fresh.split()[0]) if fresh else 0
        if lseq > dseq:
            stats["ahead"] += 1
            stats["seqs ahead"] += lseq - dseq
        elif local != fresh:
            stats["other"] += 1
    finally:
        shutil.rmtree(copy, ignore_errors=True)


# -- the campaign ----------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rep, seed = seeded_report("postgres", args.seed)
    if not pg_bin():
        print("[postgres] PostgreSQL is not installed (/usr/lib/postgresql/*/bin): nothing to test")
        rep.check(False, "PostgreSQL not installed")
        rep.finish()

    base = tempfile.mkdtemp(prefix="chat-rel-pg-")
    os.chmod(base, 0o755)  # the cluster runs as user postgres when we are root
    pg = PgCluster(base)
    servers: list[Server] = []

    def cleanup() -> None:
        for s in servers:
            s.cleanup()
        pg.destroy()
        if os.environ.get("CHAT_KEEP_DATA") != "1":
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"[postgres] kept {base}")
    atexit.register(cleanup)

    try:
        t = time.monotonic()
        url = pg.create()
        rep.fig("cluster start s", round(time.monotonic() - t, 2))
        os.environ["CHAT_ES_SECRET"] = secrets.token_hex(32)
        extra = ["--postgres", url, "--socket-rate", "100000"]

        def node(data: Optional[str] = None) -> Server:
            s = Server(data=data, extra=extra)
            servers.append(s)
            return s

        a = node().start()
        bob = a.new_user()
        senders = [a.new_user() for _ in range(SENDERS)]
        convs = [a.start_chat(s["access"], bob["username"]) for s in senders]

        campaign_kills(rep, args.cycles, a, node, pg, base, url, bob, senders, convs)
        if a.proc is not None:
            campaign_outage(rep, a, pg, base, url, bob, senders, convs)

        # 3. final: a clean stop leaves the cache level with the database
        if a.proc is not None:
            rc = a.stop(timeout=15)
            rep.check(rc == 0, f"final SIGTERM: exit {rc}")
        frc, fresh, fout = db_head(base, url)
        prc, level, pout = verify(a.data, url)
        lrc, local, lout = verify(a.data, None)
        rep.check(frc == 0 and prc == 0 and lrc == 0,
                  f"final verify exits: fresh {frc} ({fout}), --postgres {prc} ({pout}), local {lrc} ({lout})")
        rep.check(fresh is not None and level == fresh == local,
                  f"final head digests differ: fresh dir {fresh}, cache via --postgres {level}, cache alone {local}")
        rep.fig("final head digest", fresh)
    except StartFailed as e:
        rep.check(False, f"a node did not start (exit {e.rc}): {e.output[-1500:]}")
    except Exception as e:  # noqa: BLE001 - any surprise is a failed campaign, with its figures
        rep.check(False, f"campaign error: {type(e).__name__}: {e}")
        import traceback
        traceback.print_exc()
        for s in servers:  # a node that crashed is the likely cause
            if s.proc is not None:
                check_alive(rep, s, "after the campaign error")
    finally:
        cleanup()
        atexit.unregister(cleanup)
    rep.finish()


def campaign_kills(rep: Report, cycles: int, a: Server, node, pg: PgCluster, base: str, url: str, bob: dict,
                   senders: list[dict], convs: list[str]) -> None:
    all_acked: dict[str, int] = {}          # client_id -> message id
    sender_of: dict[str, int] = {}          # client_id -> sender index
    all_regs: list[str] = []
    checked_a = checked_b = regs_checked = 0
    resent = in_flight_kept = in_flight_lost = 0
    cache = {"audits": 0, "ahead": 0, "seqs ahead": 0, "other": 0, "local verify failed": 0}
    starts = {"cut": 0, "refetched": 0, "fetched": 0}
    endings: dict[str, int] = {}
    b_start = []
    replay_events = replay_msgs = 0
    crashes = 0
    for cycle in range(1, cycles + 1):
        n_failures = len(rep.failures)
        stop = threading.Event()
        load = [Sender(a, senders[i], bob["username"], f"k{cycle}s{i}", stop) for i in range(SENDERS)]
        rstop = threading.Event()
        reg = Registrar(a, f"r{cycle}", rstop)
        for th in load + [reg]:
            th.start()
        time.sleep(random.uniform(0.3, 0.9))
        outage = cycle == cycles and cycles >= 2
        if outage:
            # the last kill lands while PostgreSQL is down: the senders' batches are in the
            # cache, never in the database, never acknowledged
            rstop.set()
            reg.join(10)
            pg.stop_immediate()
            t0 = time.monotonic()
            while time.monotonic() - t0 < 5 and health_code(a) not in (503, None):
                time.sleep(0.05)
            time.sleep(0.3)
            acked_before = sum(len(th.acked) for th in load)
            time.sleep(0.3)
            rep.check(sum(len(th.acked) for th in load) == acked_before,
                      f"cycle {cycle}: messages acknowledged while PostgreSQL was down")
        if not check_alive(rep, a, f"cycle {cycle} before the kill"):
            crashes += 1
            n_failures += 1  # a crash is a kill too: the cycles go on
        a.kill()
        stop.set()
        rstop.set()
        for th in load + [reg]:
            th.join(15)
            if th.is_alive():
                rep.check(False, f"cycle {cycle}: a load thread hung after the kill")
        if outage:
            pg.start()
        for i, th in enumerate(load):
            e = th.error.split(":", 1)[0] or "none"
            endings[e] = endings.get(e, 0) + 1
            rep.check(not th.error.startswith("RuntimeError"), f"cycle {cycle}: sender {i} failed: {th.error}")
            for cid in th.acked:
                sender_of[cid] = i
            for cid in th.sent:
                sender_of.setdefault(cid, i)
        rep.check(not reg.error.startswith("RuntimeError"), f"cycle {cycle}: registrations failed: {reg.error}")
        acked_now = {cid: mid for th in load for cid, mid in th.acked.items()}
        all_acked.update(acked_now)
        all_regs.extend(reg.acked)

        # 3. the cache as the kill left it (often ahead of the database) verifies level with it
        cache_audit(rep, f"cycle {cycle} after kill", a.data, base, url, cache)

        # 1b. a second node on a fresh, empty data dir sees every acknowledged message
        b = node()
        t = time.monotonic()
        b.start()
        b_start.append(time.monotonic() - t)
        checked_b += check_acked_in_history(rep, b, f"cycle {cycle} node B (fresh dir)", bob, convs, all_acked)[0]
        for name in reg.acked + random.sample(all_regs, min(3, len(all_regs))):
            r = b.post("/api/login/", {"username": name, "password": PASSWORD})
            if rep.check(r.status_code == 200, f"cycle {cycle} node B: acked user {name} login {r.status_code}"):
                regs_checked += 1
        check_alive(rep, b, f"cycle {cycle} node B")
        rc = b.stop(timeout=15)
        rep.check(rc == 0, f"cycle {cycle}: node B SIGTERM exit {rc}")
        b.cleanup()

        # 1a. node A restarts on its cache (ahead by its unacked tail, behind by B's events)
        a.start()
        out = a.output_since_start()
        if "cut seqs" in out:
            starts["cut"] += 1
        if "emptied and fetched again" in out:
            starts["refetched"] += 1
        if "fetched seqs" in out:
            starts["fetched"] += 1
        found, by_text = check_acked_in_history(rep, a, f"cycle {cycle} node A (restarted)", bob, convs, all_acked)
        checked_a += found
        unacked = [cid for th in load for cid in th.sent if cid not in th.acked]
        for cid in unacked:
            got = by_text.get("text " + cid)
            rep.check(got is None or len(got) == 1, f"cycle {cycle}: unacked {cid} stored {got}")
            if got:
                in_flight_kept += 1
            else:
                in_flight_lost += 1

        # idempotency across the kill: re-send the unacked and a few acked client_ids
        resend = unacked + random.sample(sorted(acked_now), min(3, len(acked_now)))
        by_sender: dict[int, list[str]] = {}
        for cid in resend:
            by_sender.setdefault(sender_of[cid], []).append(cid)
        for i, cids in sorted(by_sender.items()):
            stok = a.login(senders[i]["username"])["access"]
            ws = ws_connect(a.ws_url + "/api/chat/send/?token=" + stok, open_timeout=5)
            try:
                for cid in cids:
                    f = send_wait(ws, cid, "text " + cid, bob["username"])
                    if not rep.check(f.get("type") == "message.ack", f"cycle {cycle}: resend {cid}: {f}"):
                        continue
                    if cid in all_acked:
                        rep.check(f["id"] == all_acked[cid], f"cycle {cycle}: resend of acked {cid} got id "
                                  f"{f['id']}, was {all_acked[cid]}")
                    elif by_text.get("text " + cid):
                        rep.check([f["id"]] == by_text["text " + cid],
                                  f"cycle {cycle}: resend of stored {cid} got new id {f['id']}")
                    all_acked[cid] = f["id"]
                    resent += 1
            finally:
                ws.close()

        check_alive(rep, a, f"cycle {cycle} node A after the checks")
        # the database's log: seqs 1..N, no (sender, client_id) twice, acked ids are their seqs
        evs = db_events(base, url)
        replay_events = len(evs)
        replay_msgs = sum(e["type"] == "MessageSent" for e in evs)
        seqs = [e["seq"] for e in evs]
        rep.check(seqs == list(range(1, len(seqs) + 1)), f"cycle {cycle}: seq gap or disorder in replay --postgres")
        sent = [e for e in evs if e["type"] == "MessageSent" and e.get("client_id")]
        keys = [(e["sender_id"], e["client_id"]) for e in sent]
        dup = len(keys) - len(set(keys))
        rep.check(dup == 0, f"cycle {cycle}: {dup} (sender, client_id) stored twice in the database")
        seq_of = {e["client_id"]: e["seq"] for e in sent}
        wrong = [(cid, mid, seq_of.get(cid)) for cid, mid in all_acked.items() if seq_of.get(cid) != mid]
        rep.check(not wrong, f"cycle {cycle}: acked messages missing from replay --postgres or at another seq: "
                  f"{wrong[:5]} ({len(wrong)})")
        if len(rep.failures) > n_failures:
            print(f"[postgres] stopping the kill cycles after cycle {cycle}")
            break
        print(f"[postgres] cycle {cycle}: {len(all_acked)} acked messages, {len(all_regs)} registrations, "
              f"database log {len(evs)} events", flush=True)

    rep.fig("kill cycles", cycle)
    rep.fig("node A crashes found at kill time", crashes)
    rep.fig("distinct acked messages", len(all_acked))
    rep.fig("acked messages checked on restarted node A / fresh node B (cumulative)", f"{checked_a} / {checked_b}")
    rep.fig("acked registrations (logins checked on node B)", f"{len(all_regs)} ({regs_checked})")
    rep.fig("in flight at kill: stored / not stored", f"{in_flight_kept} / {in_flight_lost}")
    rep.fig("client_ids re-sent after a kill", resent)
    rep.fig("what ended the senders at the kill", endings)
    rep.fig("killed caches audited / ahead of the database (seqs ahead in all) / local verify failed",
            f"{cache['audits']} / {cache['ahead']} ({cache['seqs ahead']}) / {cache['local verify failed']}")
    rep.fig("node A restarts: cache cut / emptied+refetched / fetched from the database",
            f"{starts['cut']} / {starts['refetched']} / {starts['fetched']}")
    if b_start:
        rep.fig("node B start on an empty dir s (max)", round(max(b_start), 2))
    rep.fig("database log after the kills: events / MessageSent (each client_id once)",
            f"{replay_events} / {replay_msgs}")


def campaign_outage(rep: Report, a: Server, pg: PgCluster, base: str, url: str, bob: dict,
                    senders: list[dict], convs: list[str]) -> None:
    alice, conv = senders[0], convs[0]
    tok = a.login(alice["username"])["access"]
    ws = ws_connect(a.ws_url + "/api/chat/send/?token=" + tok, open_timeout=5)
    f = send_wait(ws, "pg-before", "text pg-before", bob["username"])
    rep.check(f.get("type") == "message.ack", f"outage: send before the stop: {f}")
    seen: dict[str, int] = {}

    def note_status(r) -> str:
        try:
            code = r.json().get("code") or r.json().get("status")
        except ValueError:
            code = "?"
        key = f"{r.status_code} {code}"
        seen[key] = seen.get(key, 0) + 1
        return key

    def write_probe() -> str:
        r = a.post("/api/register/", {"username": rand_name("o"), "password": PASSWORD}, timeout=5)
        return note_status(r)

    # -- the stop
    pg.stop_immediate()
    t_stop = time.monotonic()
    first = write_probe()
    rep.check(first == "503 storage_unavailable",
              f"outage: the first write after the stop (a registration) answered {first}, "
              f"not 503 storage_unavailable")
    flipped = None
    while time.monotonic() - t_stop < 2:
        r = a.get("/healthz", timeout=5)
        if r.status_code == 503:
            flipped = time.monotonic() - t_stop
            break
        time.sleep(0.1)
    rep.check(flipped is not None, "outage: /healthz still 200 2 s after the stop and a refused registration "
              "(no event written yet)")
    rep.fig("outage: first registration after the stop / /healthz 503 after it (s)",
            f"{first} / {'%.2f' % flipped if flipped is not None else 'not within 2 s'}")

    # a WebSocket send while the database is down: never acknowledged; held until the database
    # returns, or refused with an `unavailable` error (its write turn could not be taken) and
    # re-sent by the client with the same client_id
    ws.send(json.dumps({"message": "text pg-down-1", "receiver": bob["username"], "client_id": "pg-down-1"}))
    t_send = time.monotonic()
    health = None
    while time.monotonic() - t_stop < 5:
        r = a.get("/healthz", timeout=5)
        if r.status_code == 503:
            health = r.json()
            break
        time.sleep(0.05)
    t_detect = time.monotonic() - t_stop
    rep.check(health is not None and health.get("status") == "storage_unavailable",
              f"outage: /healthz not 503 storage_unavailable within 5 s of the stop (last {r.status_code} {r.text[:200]})")
    rep.fig("outage: /healthz 503 after the stop (a send pending) s", round(t_detect, 2))
    for what, probe in (("register", write_probe),
                        ("login", lambda: note_status(a.post("/api/login/", {"username": alice["username"],
                                                                             "password": PASSWORD}, timeout=5))),
                        ("POST /api/chat/send/", lambda: note_status(a.post(
                            "/api/chat/send/", {"message": "text pg-http", "receiver": bob["username"],
                                                "client_id": "pg-http"}, token=tok, timeout=5)))):
        try:
            got = probe()
        except requests.RequestException as e:
            got = f"no answer ({type(e).__name__})"
        rep.check(got == "503 storage_unavailable", f"outage: {what} answered {got}, not 503 storage_unavailable")
    # no ack while the database is down (held ~3 s in all)
    acked_down = None
    socket_closed = False
    try:
        acked_down = wait_frame(ws, "pg-down-1", max(0.5, 3 - (time.monotonic() - t_send)))
    except TimeoutError:
        pass
    except Exception as e:  # noqa: BLE001
        socket_closed = True
        rep.note(f"the socket closed during the outage: {type(e).__name__}: {e}")
    refused_down = acked_down is not None and acked_down.get("type") == "error" \
        and acked_down.get("code") == "unavailable" and acked_down.get("client_id") == "pg-down-1"
    rep.check(acked_down is None or refused_down,
              f"outage: a send was answered while PostgreSQL was down: {acked_down}")
    check_alive(rep, a, "outage: node A while PostgreSQL was down")
    down_for = time.monotonic() - t_stop

    # -- PostgreSQL back
    pg.start()
    t_up = time.monotonic()
    t_health = t_ack = None
    ack = None
    if refused_down:
        ack = None
    while time.monotonic() - t_up < 15 and (t_health is None or (ack is None and not socket_closed and not refused_down)):
        if t_health is None:
            try:
                if a.get("/healthz", timeout=2).status_code == 200:
                    t_health = time.monotonic() - t_up
            except requests.RequestException:
                pass
        if ack is None and not socket_closed and not refused_down:
            try:
                ack = wait_frame(ws, "pg-down-1", 0.05)
                t_ack = time.monotonic() - t_up
            except TimeoutError:
                pass
            except Exception as e:  # noqa: BLE001
                socket_closed = True
                rep.note(f"the socket closed after PostgreSQL came back: {type(e).__name__}: {e}")
    rep.check(t_health is not None, "recovery: /healthz not 200 within 15 s of PostgreSQL's start")
    if socket_closed or refused_down:
        # resend with the same client_id (on a new socket if it closed): stored once
        if socket_closed:
            ws = ws_connect(a.ws_url + "/api/chat/send/?token=" + tok, open_timeout=5)
        ack = send_wait(ws, "pg-down-1", "text pg-down-1", bob["username"], timeout=15)
        t_ack = time.monotonic() - t_up
    rep.check(ack is not None and ack.get("type") == "message.ack",
              f"recovery: the send pending through the outage got {ack} within 15 s")
    rep.fig("outage: PostgreSQL down for s", round(down_for, 2))
    rep.fig("recovery after PostgreSQL start: /healthz 200 / pending ack (s)",
            f"{'%.2f' % t_health if t_health is not None else '-'} / {'%.2f' % t_ack if t_ack is not None else '-'}")
    rep.fig("recovery: the pending send", "socket closed, re-sent" if socket_closed
            else "refused (unavailable), re-sent" if refused_down else "held, ack arrived")
    # new writes work
    try:
        name = rand_name("after")
        a.register(name)
        a.login(name)
        f = send_wait(ws, "pg-after", "text pg-after", bob["username"])
        rep.check(f.get("type") == "message.ack", f"recovery: a new send got {f}")
    except Exception as e:  # noqa: BLE001
        rep.check(False, f"recovery: writes after PostgreSQL's return failed: {type(e).__name__}: {e}")
    btok = a.login(bob["username"])["access"]
    by_text, _ = history_by_text(a, btok, [conv])
    for cid in ("pg-before", "pg-down-1", "pg-after"):
        got = by_text.get("text " + cid)
        want = [ack["id"]] if cid == "pg-down-1" and ack and ack.get("id") else None
        rep.check(got is not None and len(got) == 1 and (want is None or got == want),
                  f"recovery: {cid} in history as {got}, want once{' as ' + str(want) if want else ''}")
    rep.check(by_text.get("text pg-http") is None, "outage: the 503 HTTP send was stored")
    check_alive(rep, a, "recovery: node A")
    rep.fig("status answers to writes during the outage", seen)

    # -- a second outage with a send pending, then SIGTERM: the node must go
    pg.stop_immediate()
    ws.send(json.dumps({"message": "text pg-term", "receiver": bob["username"], "client_id": "pg-term"}))
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5 and health_code(a) not in (503, None):
        time.sleep(0.05)
    try:
        early = wait_frame(ws, "pg-term", 0.3)
    except Exception:  # noqa: BLE001
        early = None
    rep.check(early is None or (early.get("type") == "error" and early.get("code") == "unavailable"),
              f"second outage: a send was answered while PostgreSQL was down: {early}")
    t0 = time.monotonic()
    rc = a.stop(timeout=10)
    t_term = time.monotonic() - t0
    rep.check(rc != -9, "second outage: node A did not exit within 10 s of SIGTERM while PostgreSQL was down "
              "(killed)")
    rep.fig("SIGTERM while PostgreSQL is down: exit status / seconds", f"{rc} / {t_term:.2f}")
    try:
        ws.close()
    except Exception:  # noqa: BLE001
        pass
    pg.start()
    frc, fresh, _ = db_head(base, url)
    dseq = int(fresh.split()[0]) if fresh else 0
    ahead_snaps = [s for s in snapshot_seqs(a.data) if s > dseq]
    rep.check(not ahead_snaps, f"second outage: snapshots beyond the database head {dseq} left at shutdown: {ahead_snaps}")
    cstats = {"audits": 0, "ahead": 0, "seqs ahead": 0, "other": 0, "local verify failed": 0}
    cache_audit(rep, "after SIGTERM during the outage", a.data, base, url, cstats)
    rep.fig("cache after SIGTERM during the outage: seqs ahead of the database", cstats["seqs ahead"])
    a.start()
    out = a.output_since_start()
    rep.fig("restart after it cut the cache", "cut seqs" in out or "emptied and fetched again" in out)
    tok = a.login(alice["username"])["access"]
    ws = ws_connect(a.ws_url + "/api/chat/send/?token=" + tok, open_timeout=5)
    try:
        f = send_wait(ws, "pg-term", "text pg-term", bob["username"])
        rep.check(f.get("type") == "message.ack", f"after the second outage: resend pg-term got {f}")
    finally:
        ws.close()
    by_text, problems = history_by_text(a, a.login(bob["username"])["access"], [conv])
    for p in problems:
        rep.check(False, f"after the second outage: {p}")
    for cid in ("pg-before", "pg-down-1", "pg-after", "pg-term"):
        got = by_text.get("text " + cid)
        rep.check(got is not None and len(got) == 1, f"after the second outage: {cid} in history as {got}")
    evs = db_events(base, url)
    keys = [(e["sender_id"], e["client_id"]) for e in evs if e["type"] == "MessageSent" and e.get("client_id")]
    rep.check(len(keys) == len(set(keys)), "after the outages: a (sender, client_id) stored twice in the database")


if __name__ == "__main__":
    main()
