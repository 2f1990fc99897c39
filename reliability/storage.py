#!/usr/bin/env python3
"""Torn and corrupt storage campaign.

Cases, each on a copy of a data dir:

* truncate: a real chat log (one active segment, hundreds of batches) cut at random
  offsets. The server must start and serve exactly the complete-batch prefix: its
  replayed history equals the original's first k events, where k is the event count
  of the log cut at the last batch boundary at or before the offset (computed by
  parsing the LZ4 skippable-frame + LZ4-frame layout of the segment); verify passes.
* flip-active: random bytes flipped in the active segment. The server either starts
  with a verified prefix of the original history, or exits non-zero naming the file.
* flip-sealed / delete-sealed: a real chat log of 3 segments (40,000 ~4 KB WebSocket
  messages, 64 MiB segments). After a byte flip in a sealed segment `verify` must
  exit 1 naming the file and `serve` must refuse naming it (or, if it starts, serve
  an exact prefix — counted as a failure since sealed damage must stop the open);
  without a sealed segment both must refuse naming a segment.
* disk full: the data dir on a 2 MiB tmpfs; WebSocket messages and registrations until
  writes fail. Every ack must survive a restart on a bigger copy; what /healthz and
  the clients see once the disk is full is reported; nothing may be acknowledged
  after the first write failure.

usage: storage.py [--cases N] [--seed S] [--no-sealed] [--no-diskfull]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import string
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BIN, Report, Server, StartFailed, segments, tool, seeded_report)  # noqa: E402

from websockets.sync.client import connect as ws_connect  # noqa: E402


def batch_ends(path: str) -> list[int]:
    """End offsets of the complete batches of a segment (skippable frame + LZ4 frame)."""
    data = open(path, "rb").read()
    ends, pos, n = [], 0, len(data)
    try:
        while pos + 8 <= n:
            magic, size = struct.unpack_from("<II", data, pos)
            if magic & 0xFFFFFFF0 != 0x184D2A50:
                break
            pos += 8 + size
            magic, = struct.unpack_from("<I", data, pos)
            if magic != 0x184D2204:
                break
            flg = data[pos + 4]
            p = pos + 6 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0) + 1
            while True:
                bsize, = struct.unpack_from("<I", data, p)
                p += 4
                if bsize == 0:
                    break
                p += (bsize & 0x7FFFFFFF) + (4 if flg & 0x10 else 0)
            p += 4 if flg & 0x04 else 0
            if p > n:
                break
            pos = p
            ends.append(pos)
    except struct.error:
        pass
    return ends


def verify_count(data: str) -> int:
    r = tool("verify", "--data", data)
    for line in r.stdout.splitlines():
        if line.startswith("head digest:"):
            return int(line.split()[2])
    if r.returncode == 0:
        return 0
    raise RuntimeError(f"verify failed: {r.stdout[-300:]} {r.stderr[-300:]}")


def replay_lines(data: str) -> list[str]:
    r = tool("replay", "--data", data, "--format", "jsonl")
    if r.returncode != 0:
        raise RuntimeError(f"replay exit {r.returncode}: {r.stderr[-300:]}")
    return [l for l in r.stdout.splitlines() if l.strip()]


def copy_data(src: str) -> str:
    dst = tempfile.mkdtemp(prefix="chat-rel-st-")
    shutil.copytree(src, os.path.join(dst, "data"))
    return os.path.join(dst, "data")


def make_chat_log(rep: Report, messages: int) -> tuple[str, list[str]]:
    """A real chat log: users, a chat, `messages` WebSocket messages (many batches)."""
    srv = Server(fsync="always").start()
    a, b = srv.new_user(), srv.new_user()
    srv.start_chat(a["access"], b["username"])
    ws = ws_connect(srv.ws_url + "/api/chat/send/?token=" + a["access"])
    for i in range(messages):
        text = "".join(random.choices(string.ascii_letters + " ", k=random.randint(5, 300)))
        ws.send(json.dumps({"message": text, "receiver": b["username"], "client_id": f"m{i}"}))
        if i % 4 == 3:  # small bursts: a mix of 1-record and multi-record batches
            got = 0
            while got < 4:
                if json.loads(ws.recv(timeout=10)).get("type") == "message.ack":
                    got += 1
    ws.close()
    for _ in range(5):
        srv.new_user()
    srv.stop()
    data = tempfile.mkdtemp(prefix="chat-rel-orig-")
    shutil.copytree(srv.data, os.path.join(data, "data"))
    srv.cleanup()
    data = os.path.join(data, "data")
    # These cases test the log's own recovery, which a start from a snapshot does not read
    # before the snapshot's position: drop the snapshot the graceful stop wrote
    # (campaign_snapshot_skips_history covers damage under a snapshot).
    shutil.rmtree(os.path.join(data, "snapshots"), ignore_errors=True)
    return data, replay_lines(data)


def serve_outcome(data: str) -> tuple[str, object]:
    """Start a server on `data`: ("started", log_position) or ("refused", (rc, output))."""
    srv = Server(data=data, fsync="always")
    try:
        srv.start(timeout=60)
    except StartFailed as e:
        shutil.rmtree(srv.base, ignore_errors=True)
        return "refused", (e.rc, e.output)
    pos = srv.health()["log_position"]
    srv.stop()
    shutil.rmtree(srv.base, ignore_errors=True)
    return "started", pos


def check_prefix(rep: Report, label: str, data: str, orig: list[str], expect_k=None) -> int:
    """After a start on damaged `data`: history = original prefix + one ServerStarted."""
    lines = replay_lines(data)
    k = len(lines) - 1
    last = json.loads(lines[-1]) if lines else {}
    rep.check(last.get("type") == "ServerStarted" and last.get("seq") == k + 1,
              f"{label}: last event after start is not ServerStarted #{k + 1}: {lines[-1:]}")
    rep.check(lines[:k] == orig[:k], f"{label}: recovered history differs from the original prefix")
    rep.check(k <= len(orig), f"{label}: recovered {k} events > original {len(orig)}")
    if expect_k is not None:
        rep.check(k == expect_k, f"{label}: recovered {k} events, complete-batch prefix is {expect_k}")
    v = tool("verify", "--data", data)
    rep.check(v.returncode == 0, f"{label}: verify after recovery exit {v.returncode}: {v.stdout[-200:]}")
    return k


def campaign_active(rep: Report, cases: int) -> None:
    orig_data, orig = make_chat_log(rep, 600)
    seg = segments(orig_data)[-1]
    size = os.path.getsize(seg)
    ends = batch_ends(seg)
    rep.check(ends and ends[-1] == size, f"batch parser: ends {ends[-3:]} vs size {size}")
    rep.fig("active-segment log", f"{len(orig)} events, {len(ends)} batches, {size} bytes")

    # truncation at random offsets (plus a few exactly on and next to boundaries)
    offsets = sorted(random.sample(range(0, size), cases))
    offsets[0] = random.choice(ends[:-1])          # exactly on a boundary
    offsets[1] = random.choice(ends[:-1]) + 1      # one byte into the next batch
    lost_total = 0
    for off in offsets:
        d = copy_data(orig_data)
        s = segments(d)[-1]
        os.truncate(s, off)
        # expected prefix: the log cut at the last complete batch at or before off
        bound = max([e for e in ends if e <= off], default=0)
        ref = copy_data(orig_data)
        rs = segments(ref)[-1]
        os.truncate(rs, bound)
        expect_k = verify_count(ref) if bound > 0 else 0
        shutil.rmtree(os.path.dirname(ref), ignore_errors=True)
        kind, val = serve_outcome(d)
        label = f"truncate at {off}/{size}"
        if rep.check(kind == "started", f"{label}: server refused to start: {val}"):
            rep.check(val == expect_k + 1, f"{label}: log_position {val}, expected {expect_k + 1}")
            check_prefix(rep, label, d, orig, expect_k)
            lost_total += len(orig) - expect_k
        shutil.rmtree(os.path.dirname(d), ignore_errors=True)
    rep.fig("truncations (server served exactly the complete-batch prefix)", len(offsets))

    # byte flips in the active segment
    started = refused = 0
    details = []
    for i in range(cases):
        d = copy_data(orig_data)
        s = segments(d)[-1]
        # the first two flips hit the last batch (a torn/corrupt tail), the rest anywhere
        off = random.randrange(ends[-2], size) if i < 2 else random.randrange(size)
        with open(s, "r+b") as f:
            f.seek(off)
            b = f.read(1)[0]
            f.seek(off)
            f.write(bytes([b ^ random.randint(1, 255)]))
        kind, val = serve_outcome(d)
        label = f"flip active at {off}/{size}"
        if kind == "started":
            started += 1
            # the complete durable prefix: every batch that ends before the damaged byte
            expect_k = None
            bound = max([e for e in ends if e <= off], default=0)
            ref = copy_data(orig_data)
            os.truncate(segments(ref)[-1], bound)
            expect_k = verify_count(ref) if bound > 0 else 0
            shutil.rmtree(os.path.dirname(ref), ignore_errors=True)
            k = check_prefix(rep, label, d, orig)
            rep.check(k >= expect_k, f"{label}: recovered {k} events, fewer than the {expect_k} before the damage")
            details.append(f"{off}:kept {k}/{len(orig)}")
        else:
            refused += 1
            rc, out = val
            rep.check(rc not in (0, None) and os.path.basename(s) in out,
                      f"{label}: refused (exit {rc}) without naming {os.path.basename(s)}: {out[-300:]}")
            details.append(f"{off}:refused")
        shutil.rmtree(os.path.dirname(d), ignore_errors=True)
    rep.fig("active-segment flips: started with verified prefix / refused naming the file", f"{started} / {refused}")
    print("[storage] flips:", ", ".join(details))
    campaign_snapshot_skips_history(rep, orig_data, ends)
    shutil.rmtree(os.path.dirname(orig_data), ignore_errors=True)


def campaign_snapshot_skips_history(rep: Report, orig_data: str, ends: list[int]) -> None:
    """A start from a snapshot reads only the log after it, so damage in a batch before the
    snapshot's position does not stop the start (bounded time is the point); `verify` still
    finds it, naming the file and offset; and without the snapshot the start refuses, as before."""
    d = copy_data(orig_data)
    w = tool("rebuild", "--data", d, "--write-snapshot")
    rep.check(w.returncode == 0, f"snapshot: rebuild --write-snapshot exit {w.returncode}: {w.stderr[-200:]}")
    s = segments(d)[-1]
    # inside an early batch's LZ4 frame, past its 144-byte header (recovery checks every header
    # at every open, so damage there is refused even under a snapshot)
    i = random.randrange(1, len(ends) // 2)
    off = random.randrange(ends[i - 1] + 144 + 8, ends[i])
    with open(s, "r+b") as f:
        f.seek(off)
        b = f.read(1)[0]
        f.seek(off)
        f.write(bytes([b ^ 0xFF]))
    kind, val = serve_outcome(d)
    rep.check(kind == "started", f"snapshot over damage at {off}: the start read history it did not need: {val}")
    v = tool("verify", "--data", d)
    rep.check(v.returncode == 1 and os.path.basename(s) in (v.stdout + v.stderr),
              f"snapshot over damage at {off}: verify exit {v.returncode} without naming {os.path.basename(s)}")
    shutil.rmtree(os.path.join(d, "snapshots"), ignore_errors=True)
    kind, val = serve_outcome(d)
    rep.check(kind == "refused", f"no snapshot, damage at {off}: the full replay started anyway")
    rep.fig("damage under a snapshot", "started from the snapshot, verify named the file, refused without the snapshot"
            if not rep.failures else "see the failures above")
    shutil.rmtree(os.path.dirname(d), ignore_errors=True)


def make_multiseg_chat_log(rep: Report, messages: int) -> str:
    """A real chat log of several 64 MiB segments: ~4 KB WebSocket messages, pipelined."""
    srv = Server(fsync="never", extra=["--socket-rate", "1000000"]).start()
    a, b = srv.new_user(), srv.new_user()
    srv.start_chat(a["access"], b["username"])
    ws = ws_connect(srv.ws_url + "/api/chat/send/?token=" + a["access"])
    alphabet = string.ascii_letters + string.digits + string.punctuation
    blob = "".join(random.choices(alphabet, k=200000))
    n = 0
    while n < messages:
        for _ in range(64):
            o = random.randrange(len(blob) - 4000)
            ws.send(json.dumps({"message": blob[o:o + 4000], "receiver": b["username"], "client_id": f"x{n}"}))
            n += 1
        got = 0
        while got < 64:
            f = json.loads(ws.recv(timeout=10))
            if f.get("type") == "message.ack":
                got += 1
            elif f.get("type") == "error":
                raise RuntimeError(f"building the multi-segment log: {f}")
    ws.close()
    srv.stop()
    base = tempfile.mkdtemp(prefix="chat-rel-multi-")
    shutil.move(srv.data, os.path.join(base, "data"))
    srv.cleanup()
    shutil.rmtree(os.path.join(base, "data", "snapshots"), ignore_errors=True)  # as in make_chat_log
    return os.path.join(base, "data")


def campaign_sealed(rep: Report, cases: int) -> None:
    t0 = time.monotonic()
    orig_data = make_multiseg_chat_log(rep, 40000)
    segs = segments(orig_data)
    if len(segs) < 3:
        rep.note(f"sealed cases skipped: the log has only {len(segs)} segments")
        shutil.rmtree(os.path.dirname(orig_data), ignore_errors=True)
        return
    orig = replay_lines(orig_data)
    rep.fig("sealed-segment log", f"{len(segs)} segments, {len(orig)} events, "
            f"{sum(os.path.getsize(s) for s in segs) // 2**20} MiB, built in {time.monotonic() - t0:.1f} s")

    def shallow_copy(damaged, drop=None) -> str:
        d = tempfile.mkdtemp(prefix="chat-rel-sealed-")
        os.makedirs(os.path.join(d, "data", "log"))
        shutil.copyfile(os.path.join(orig_data, "secret"), os.path.join(d, "data", "secret"))
        for s in segs:
            if s == drop:
                continue
            dst = os.path.join(d, "data", "log", os.path.basename(s))
            if s == damaged or s == segs[-1]:
                shutil.copyfile(s, dst)     # the damaged one and the active one are real copies
            else:
                os.link(s, dst)             # intact sealed segments are hard links (never written)
        return os.path.join(d, "data")

    refused = started = 0
    for i in range(cases):
        victim = random.choice(segs[:-1])
        d = shallow_copy(victim)
        v = os.path.join(d, "log", os.path.basename(victim))
        size = os.path.getsize(v)
        off = random.randrange(size)
        with open(v, "r+b") as f:
            f.seek(off)
            b = f.read(1)[0]
            f.seek(off)
            f.write(bytes([b ^ random.randint(1, 255)]))
        name = os.path.basename(victim)
        label = f"flip sealed {name} at {off}"
        vr = tool("verify", "--data", d)
        rep.check(vr.returncode == 1 and name in (vr.stdout + vr.stderr),
                  f"{label}: verify exit {vr.returncode} without naming the file: {(vr.stdout + vr.stderr)[-300:]}")
        kind, val = serve_outcome(d)
        if kind == "refused":
            refused += 1
            rc, out = val
            rep.check(rc not in (0, None) and name in out,
                      f"{label}: server exit {rc}, message does not name {name}: {out.strip()[-300:]}")
            if i == 0:
                rep.note(f"{label}: server said: {[l for l in out.splitlines() if 'critical' in l][-1:]}")
        else:
            started += 1
            rep.check(False, f"{label}: server started (log_position {val}) on a damaged sealed segment")
            try:
                check_prefix(rep, label, d, orig)
            except RuntimeError as e:
                rep.check(False, f"{label}: {e}")
        shutil.rmtree(os.path.dirname(d), ignore_errors=True)
    rep.fig("sealed-segment flips: refused naming the file / started", f"{refused} / {started}")

    # a torn sealed segment (cut short): damage outside the active segment must stop the open
    victim = segs[0]
    d = shallow_copy(victim)
    v = os.path.join(d, "log", os.path.basename(victim))
    cut = random.randrange(os.path.getsize(v))
    os.truncate(v, cut)
    name = os.path.basename(victim)
    vr = tool("verify", "--data", d)
    rep.check(vr.returncode == 1 and name in (vr.stdout + vr.stderr),
              f"truncate sealed {name} at {cut}: verify exit {vr.returncode}: {(vr.stdout + vr.stderr)[-300:]}")
    kind, val = serve_outcome(d)
    if rep.check(kind == "refused", f"truncate sealed {name} at {cut}: server started (log_position {val})"):
        rep.check(name in val[1], f"truncate sealed {name} at {cut}: message does not name the file: {val[1][-300:]}")
        rep.note(f"truncate sealed {name} at {cut}: server said: "
                 f"{[l.split('critical ')[-1] for l in val[1].splitlines() if 'critical' in l][-1:]}")
    shutil.rmtree(os.path.dirname(d), ignore_errors=True)

    # delete a sealed segment: the first one and a middle one
    for victim in segs[:-1]:
        d = shallow_copy(None, drop=victim)
        name = os.path.basename(victim)
        label = f"delete sealed {name}"
        names = [os.path.basename(s) for s in segs if s != victim]
        vr = tool("verify", "--data", d)
        vout = vr.stdout + vr.stderr
        rep.check(vr.returncode == 1 and (name in vout or any(n in vout for n in names)),
                  f"{label}: verify exit {vr.returncode}, names no segment: {vout.strip()[-300:]}")
        kind, val = serve_outcome(d)
        if rep.check(kind == "refused", f"{label}: server started without a sealed segment"):
            rc, out = val
            rep.check(name in out or any(n in out for n in names),
                      f"{label}: server exit {rc}, message names no segment: {out.strip()[-300:]}")
            rep.note(f"{label}: server said: {[l.split('critical ')[-1] for l in out.splitlines() if 'critical' in l][-1:]}")
        shutil.rmtree(os.path.dirname(d), ignore_errors=True)
    rep.fig("sealed-segment deletions refused", len(segs) - 1)
    shutil.rmtree(os.path.dirname(orig_data), ignore_errors=True)


def campaign_diskfull(rep: Report) -> None:
    base = tempfile.mkdtemp(prefix="chat-rel-full-")
    mnt = os.path.join(base, "mnt")
    os.mkdir(mnt)
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt],
                       capture_output=True, text=True)
    if m.returncode != 0:
        rep.note(f"disk-full case skipped: mount not permitted ({m.stderr.strip()})")
        shutil.rmtree(base, ignore_errors=True)
        return
    srv = None
    try:
        data = os.path.join(mnt, "data")
        srv = Server(data=data, fsync="always").start()
        a, b = srv.new_user(), srv.new_user()
        srv.start_chat(a["access"], b["username"])
        acked: dict[str, int] = {}
        acked_regs: list[str] = []
        ws = ws_connect(srv.ws_url + "/api/chat/send/?token=" + a["access"])
        alphabet = string.ascii_letters + string.digits + string.punctuation
        first_failure = None
        acked_after_failure = 0
        statuses: dict[str, int] = {}
        i = 0
        t_end = time.monotonic() + 30
        while time.monotonic() < t_end:
            cid = f"f{i}"
            i += 1
            text = "".join(random.choices(alphabet, k=4000))
            try:
                ws.send(json.dumps({"message": text, "receiver": b["username"], "client_id": cid}))
                f = None
                while True:
                    f = json.loads(ws.recv(timeout=5))
                    if f.get("type") in ("message.ack", "error"):
                        break
                if f["type"] == "message.ack":
                    acked[cid] = f["id"]
                    if first_failure:
                        acked_after_failure += 1
                else:
                    statuses["ws error frame " + str(f.get("code"))] = statuses.get("ws error frame " + str(f.get("code")), 0) + 1
                    first_failure = first_failure or f"ws error frame {f}"
            except Exception as e:
                statuses["ws " + type(e).__name__] = statuses.get("ws " + type(e).__name__, 0) + 1
                first_failure = first_failure or f"ws {type(e).__name__}: {e}"
                try:
                    ws.close()
                except Exception:
                    pass
                try:
                    ws = ws_connect(srv.ws_url + "/api/chat/send/?token=" + a["access"], open_timeout=5)
                except Exception as e2:
                    statuses["ws reconnect " + type(e2).__name__] = statuses.get("ws reconnect " + type(e2).__name__, 0) + 1
            # an HTTP registration too
            name = f"full{i}"
            try:
                r = srv.post("/api/register/", {"username": name, "password": "s3cret-pass-word"}, timeout=5)
                statuses[f"register {r.status_code}"] = statuses.get(f"register {r.status_code}", 0) + 1
                if r.status_code == 201:
                    acked_regs.append(name)
                    if first_failure:
                        acked_after_failure += 1
                elif first_failure is None:
                    first_failure = f"register {r.status_code} {r.text[:120]}"
            except Exception as e:
                statuses["register " + type(e).__name__] = statuses.get("register " + type(e).__name__, 0) + 1
            if first_failure and sum(v for k, v in statuses.items() if not k.endswith("201")) >= 20:
                break
        try:
            h = srv.http.get(srv.url + "/healthz", timeout=5)
            health = f"{h.status_code} {h.text[:120]}"
        except Exception as e:
            health = f"{type(e).__name__}"
        alive = srv.proc is not None and srv.proc.poll() is None
        df = shutil.disk_usage(mnt)
        rep.fig("disk full: acked messages / registrations before failure", f"{len(acked)} / {len(acked_regs)}")
        rep.fig("disk full: first failure seen", first_failure)
        rep.fig("disk full: outcomes", statuses)
        rep.fig("disk full: /healthz afterwards", health)
        rep.fig("disk full: server process alive", alive)
        rep.fig("disk full: tmpfs free bytes", df.free)
        rep.check(first_failure is not None, "disk full: 30 s of 4 KB messages never failed on a 2 MiB tmpfs")
        rep.check(acked_after_failure == 0, f"disk full: {acked_after_failure} acks after the first write failure")
        if health.startswith("200"):
            rep.note("disk full: /healthz keeps answering 200 ok after the log writer failed; "
                     "writes fail (WebSocket error 'unavailable', HTTP 500) instead")
        srv.kill()
        # restart on a bigger copy: every ack must be there
        big = tempfile.mkdtemp(prefix="chat-rel-full-copy-")
        shutil.copytree(data, os.path.join(big, "data"))
        srv2 = Server(data=os.path.join(big, "data"), fsync="always")
        try:
            srv2.start()
            tok = srv2.login(a["username"])["access"]
            hist = srv2.history(tok, srv2.start_chat(tok, b["username"]))
            ids = {m["id"] for m in hist}
            missing = [c for c, mid in acked.items() if mid not in ids]
            rep.check(not missing, f"disk full: {len(missing)} acked messages missing after restart: {missing[:5]}")
            bad = [n for n in acked_regs
                   if srv2.post("/api/login/", {"username": n, "password": "s3cret-pass-word"}).status_code != 200]
            rep.check(not bad, f"disk full: acked registrations cannot log in: {bad[:5]}")
            v = tool("verify", "--data", srv2.data)
            rep.check(v.returncode == 0, f"disk full: verify on the copy exit {v.returncode}")
            rep.fig("disk full: after restart on a bigger copy", f"{len(acked)} acked messages all present: {not missing}; "
                    f"history {len(hist)} messages")
        except StartFailed as e:
            rep.check(False, f"disk full: server did not start on the bigger copy: {e.output[-300:]}")
        finally:
            srv2.cleanup()
            shutil.rmtree(big, ignore_errors=True)
    finally:
        if srv:
            srv.kill()
        subprocess.run(["umount", mnt], capture_output=True)
        if srv:
            shutil.rmtree(srv.base, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=12)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--no-sealed", action="store_true")
    ap.add_argument("--no-diskfull", action="store_true")
    args = ap.parse_args()
    rep, seed = seeded_report("storage", args.seed)
    campaign_active(rep, args.cases)
    if not args.no_sealed:
        campaign_sealed(rep, max(3, args.cases // 3))
    if not args.no_diskfull:
        campaign_diskfull(rep)
    rep.finish()


if __name__ == "__main__":
    main()
