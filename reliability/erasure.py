#!/usr/bin/env python3
"""Erasure campaign: a deleted account leaves no byte of its name, password hash or
messages anywhere, in every state a crash can leave, and never half-erased.

Each victim gets unique canaries: an ASCII one and a non-ASCII one (accents, ß, CJK) in the
username, and per message an ASCII and a non-ASCII one (plus emoji), in short texts and in
long compressible ones (a canary repeated up to 4,096 characters, since long texts are
LZ4-compressed before they are encrypted), sent over REST and over the WebSocket; and a
unique password. A survivor chats with every victim with canaries of its own that must stay.

In every audited state the campaign searches, for every byte form of each canary (UTF-8;
lower/upper/case-folded names; NFC and NFD; JSON \\u escapes; URL-encoded; UTF-16):
* every file under the data directory: raw, through `lz4 -dc` for files that begin with an
  LZ4 frame (the log segments), and snapshots decompressed (their LZ4 chunks);
* the names of those files, and the server's captured stdout+stderr;
* `chat-es replay --include-secrets`, `replay`, `rebuild --print <all views>`, `stats`,
  `verify`;
* what the server tells the survivor: conversations, each history, export, a WebSocket
  `sync`, online users, suggested friends (and live frames after a deletion).
Erased victims: zero hits of their canaries, password hash and wrapped data key (the 60
bytes their key-store entry held); no entry of theirs in the key store; replay shows their
UserRegistered/MessageSent fields null with "erased": true; the survivor sees "[deleted]" and
"message": null; login 401, register of the name 409, their tokens 401. Every person's
password: zero hits, ever. `verify` exits 0 in every state. A victim is searched with every
form in the state of its deletion and in the (b) and final audits, and with the UTF-8 forms,
hash and key in every other later state.

Positive controls (the search must find what is there): control files planted in a control
directory (plain, an `lz4` frame, a snapshot-shaped file with an LZ4 block) are found;
each victim's canaries are found in `replay --include-secrets` and its export before the
deletion, and its wrapped key in the key store; in every state the survivor's canaries are
found in `replay --include-secrets` and its texts in the API, and the survivor's
client_ids (stored in clear) are found in the log through `lz4 -dc`.

Scenarios, one data dir: (a) while serving, right after the 200 (one victim with its socket
open, which must be closed; a snapshot written before the deletions stays in the data dir);
a wrong password first (403, nothing appended); (b) after a
graceful restart, and after `rebuild --write-snapshot`; (c) CHAT_ES_CRASH_POINT =
erase-before-event (nothing happened: the victim logs in, messages intact; then deleted
normally), erase-after-event (with one restart killed during recovery) and erase-after-key
(fully erased after the restart); (d) SIGKILL of the process group at a random moment of a
deletion request, then a restart: the outcome must be exactly "nothing happened" or "fully
erased", never a mix; a 200 seen before the kill must mean "erased". In (a) once and in every
other (d) round, the victim's own WebSocket sends a burst of 12 messages (fresh canaries)
that races the deletion: acked ones follow the outcome, and none may be stored after the
UserErased.

usage: erasure.py [--rounds N] [--seed S]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BIN, Report, Server, StartFailed, replay_events, tool, seeded_report  # noqa: E402

import requests  # noqa: E402
from websockets.sync.client import connect as ws_connect  # noqa: E402

CRASH_POINTS = ["erase-before-event", "erase-after-event", "erase-after-key"]
UPPER = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
ACCENTS = "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœ"
EMOJI = [chr(c) for c in range(0x1F600, 0x1F650)]
WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
LZ4_FRAME = b"\x04\x22\x4d\x18"


def rtag(k: int = 10) -> str:
    return "".join(random.choices(UPPER, k=k))


def accents(k: int) -> str:
    return "".join(random.choices(ACCENTS, k=k))


def cjk(k: int) -> str:
    return "".join(chr(random.randint(0x4E00, 0x9FA5)) for _ in range(k))


def forms(text: str, cases: bool = False) -> list[tuple[str, bytes]]:
    """The byte strings a leak of `text` could take, each with a short description."""
    out: dict[bytes, str] = {}
    bases = [("", text)]
    if cases:
        bases += [("lower ", text.lower()), ("upper ", text.upper()), ("casefold ", text.casefold())]
    for cdesc, b in bases:
        for norm in ("NFC", "NFD"):
            f = unicodedata.normalize(norm, b)
            nd = "" if f == b else norm + " "
            for edesc, enc in (("utf-8", f.encode()), ("json", json.dumps(f)[1:-1].encode()),
                               ("url", urllib.parse.quote(f, safe="").encode()),
                               ("utf-16", f.encode("utf-16-le"))):
                out.setdefault(enc, f"{cdesc}{nd}{edesc}")
    return [(d, e) for e, d in out.items()]


# -- LZ4 block format (snapshots keep LZ4 blocks, which `lz4 -dc` does not read) ----------

def lz4_block_decompress(src: bytes, raw_size: int) -> bytes:
    dst = bytearray()
    i, n = 0, len(src)
    while i < n:
        token = src[i]
        i += 1
        lit = token >> 4
        if lit == 15:
            while True:
                b = src[i]
                i += 1
                lit += b
                if b != 255:
                    break
        dst += src[i:i + lit]
        i += lit
        if i >= n:
            break
        off = src[i] | (src[i + 1] << 8)
        i += 2
        ml = token & 15
        if ml == 15:
            while True:
                b = src[i]
                i += 1
                ml += b
                if b != 255:
                    break
        ml += 4
        start = len(dst) - off
        if off == 0 or start < 0:
            raise ValueError("bad LZ4 match offset")
        if off >= ml:
            dst += dst[start:start + ml]
        else:
            chunk = bytes(dst[start:])
            dst += (chunk * (ml // off + 1))[:ml]
    if len(dst) != raw_size:
        raise ValueError(f"LZ4 block gave {len(dst)} bytes, expected {raw_size}")
    return bytes(dst)


def varint(b: bytes, p: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        x = b[p]
        p += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return v, p


def snapshot_body(b: bytes) -> bytes:
    """The decompressed body of a `CHATSNAP` file (layout: Sources/Projections/Snapshots/Snapshot.swift):
    magic, u32 format, u64 lastSeq, i64 lastTimestamp, u64 plaintextRecords, (format 3 and up:
    32 bytes of chain hash), u16 view count, per view (varint-length name, u32 version), (format
    4: u16 section count, per section a u64 length), u64 body size, u64 checksum, then u32 chunk
    count and per chunk u32 raw size, u32 compressed size, LZ4 block.
    Another format raises: the campaign must learn it rather than skip the file."""
    fmt, = struct.unpack_from("<I", b, 8)
    if fmt not in (2, 3, 4):
        raise ValueError(f"snapshot format {fmt} is unknown to this campaign (knows 2, 3 and 4)")
    p = 8 + 4 + 8 + 8 + 8 + (32 if fmt >= 3 else 0)
    count, = struct.unpack_from("<H", b, p)
    p += 2
    for _ in range(count):
        n, p = varint(b, p)
        p += n + 4
    if fmt >= 4:
        sections, = struct.unpack_from("<H", b, p)
        p += 2 + 8 * sections
    size, = struct.unpack_from("<Q", b, p)
    p += 16  # body size, checksum
    chunks, = struct.unpack_from("<I", b, p)
    p += 4
    out = []
    for _ in range(chunks):
        raw, comp = struct.unpack_from("<II", b, p)
        p += 8
        out.append(lz4_block_decompress(b[p:p + comp], raw))
        p += comp
    body = b"".join(out)
    if len(body) != size or p != len(b):
        raise ValueError(f"snapshot body {len(body)} of {size} bytes, parsed {p} of {len(b)}")
    return body


def key_entries(data: str) -> dict[int, bytes]:
    """User id -> wrapped key, from the key store's shard files (`CESKEYS1`, then 64-byte
    entries: u32 user id, 60-byte wrapped key; Sources/Projections/Personal/KeyStore.swift)."""
    out = {}
    d = os.path.join(data, "keys")
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if not (name.startswith("users-") and name.endswith(".keys")):
            continue
        b = open(os.path.join(d, name), "rb").read()
        if not b.startswith(b"CESKEYS1"):
            continue
        for p in range(8, len(b) - 63, 64):
            out[struct.unpack_from("<I", b, p)[0]] = b[p + 4:p + 64]
    return out


class Person:
    def __init__(self, role: str, idx: int):
        self.role, self.idx = role, idx
        self.tag = rtag()
        self.label = "survivor" if role == "survivor" else f"victim{idx}"
        self.name_ascii = ("Sv" if role == "survivor" else "Cn") + self.tag
        self.name_uni = "Ü" + accents(4) + cjk(3)
        self.name = f"{self.name_ascii}_{self.name_uni}"
        self.password = f"Pw-{self.tag}-ünï-{cjk(2)}"
        self.id = 0
        self.access = self.refresh = ""
        self.sent: dict[int, str] = {}          # message id -> text this person sent
        self.convs: dict[str, str] = {}         # peer name -> conversation id
        self.canaries: list[tuple[str, str]] = [("name", self.name), ("name ascii part", self.name_ascii),
                                                ("name non-ascii part", self.name_uni)]
        self.erased = False
        self.how = ""
        self.key = b""
        self.pwhash = ""
        self.full: list[tuple[str, str, bytes]] = []   # (owner, what, bytes): every form
        self.core: list[tuple[str, str, bytes]] = []   # the UTF-8 forms, for later states
        self.pw: list[tuple[str, str, bytes]] = [(self.label, f"password {d}", e) for d, e in forms(self.password)]

    def new_canary(self, what: str) -> tuple[str, str]:
        a = f"Mg{self.tag}x{len(self.canaries)}q"   # the q: no canary is a prefix of another
        u = "ñ" + accents(2) + cjk(3) + random.choice(EMOJI)
        self.canaries += [(f"{what} ascii", a), (f"{what} non-ascii", u)]
        return a, u

    def build_patterns(self) -> None:
        full, core = [], []
        for what, text in self.canaries:
            for d, e in forms(text, cases=what.startswith("name")):
                full.append((self.label, f"{what} [{d}]", e))
            core.append((self.label, what, text.encode()))
        # the hash and the wrapped key: core has the forms the tools show before a deletion
        extra = []
        if self.pwhash:
            algo, it, salt, h = self.pwhash.split("$")
            extra += [("password hash", self.pwhash.encode()), ("password salt", salt.encode()),
                      ("password hash b64", h.encode())]
            full.append((self.label, "password hash bytes", base64.b64decode(h + "=" * (-len(h) % 4))))
        if self.key:
            extra.append(("wrapped data key", self.key))
            full.append((self.label, "wrapped data key hex", self.key.hex().encode()))
        full += [(self.label, w, e) for w, e in extra]
        core += [(self.label, w, e) for w, e in extra]
        self.full, self.core = full, core


def search(blobs: list[tuple[str, bytes]], patterns: list[tuple[str, str, bytes]]) -> list[tuple]:
    hits = []
    for source, data in blobs:
        for owner, what, pat in patterns:
            i = data.find(pat)
            while i >= 0:
                ctx = data[max(0, i - 16):i] + b"<<" + pat[:24] + b">>" + data[i + len(pat):i + len(pat) + 16]
                hits.append((owner, what, source, i, ctx))
                i = data.find(pat, i + 1)
    return hits


class Chatter(threading.Thread):
    """The victim's WebSocket sends a burst of messages (fresh canaries) while its deletion runs."""

    def __init__(self, camp: "Campaign", v: Person, n: int = 12):
        super().__init__(daemon=True)
        self.v, self.go, self.midway = v, threading.Event(), threading.Event()
        self.frames = []
        for i in range(n):
            a, u = v.new_canary(f"race{len(v.canaries)}")
            self.frames.append((f"cid{v.tag}r{i}", f"race {a} {u}"))
        v.build_patterns()
        self.to = camp.survivor.name
        self.ws = ws_connect(camp.srv.ws_url + "/api/chat/send/?token=" + v.access, open_timeout=5)
        self.acked: dict[int, str] = {}
        self.errors: dict[str, int] = {}
        self.sent = 0

    def run(self) -> None:
        texts = dict(self.frames)
        self.go.wait(10)
        try:
            for i, (cid, text) in enumerate(self.frames):
                if i == len(self.frames) // 3:
                    self.midway.set()     # the deletion goes now: the rest race it
                self.ws.send(json.dumps({"message": text, "receiver": self.to, "client_id": cid}))
                self.sent += 1
                time.sleep(0.0003)
        except Exception:  # the deletion closes the socket; a kill resets it
            pass
        self.midway.set()
        try:  # the acks that came (read on after a close: what was received is still queued)
            while len(self.acked) + sum(self.errors.values()) < self.sent:
                f = json.loads(self.ws.recv(timeout=3))
                if f.get("type") == "message.ack":
                    self.acked[f["id"]] = texts[f["client_id"]]
                elif f.get("type") == "error":
                    self.errors[f.get("code")] = self.errors.get(f.get("code"), 0) + 1
        except Exception:
            pass
        try:
            self.ws.close()
        except Exception:
            pass


class Campaign:
    def __init__(self, rep: Report, rounds: int):
        self.rep, self.rounds = rep, rounds
        # the per-socket rate limit is raised so that a racing burst is never cut short by it
        self.srv = Server(iterations=2000, fsync="always", extra=["--socket-rate", "100000"])
        self.survivor = Person("survivor", 0)
        self.victims: list[Person] = []
        self.controls: list[str] = []           # survivor client_ids, stored in clear
        self.states = 0
        self.files = 0
        self.file_bytes = 0
        self.decoded_bytes = 0
        self.output_bytes = 0
        self.patterns_checked = 0
        self.hits = 0
        self.pw_hits = 0
        self.verify_runs = 0
        self.latencies: list[float] = []
        self.found_before = 0
        self.control_found = 0
        self.snapshots_seen = 0
        self.erased_by: dict[str, int] = {}
        self.crash_outcomes: dict[str, str] = {}
        self.kills: list[dict] = []
        self.recovery_kill = "-"
        self.live_frames = 0
        self.race = {"rounds": 0, "sent": 0, "acked": 0, "error frames": 0}

    def race_done(self, ch: "Chatter") -> None:
        ch.join(15)
        ch.v.sent.update(ch.acked)
        self.race["rounds"] += 1
        self.race["sent"] += ch.sent
        self.race["acked"] += len(ch.acked)
        self.race["error frames"] += sum(ch.errors.values())

    # -- people and messages ------------------------------------------------------------

    def login(self, name: str, password: str) -> requests.Response:
        for _ in range(20):
            r = self.srv.post("/api/login/", {"username": name, "password": password})
            if r.status_code != 429:
                return r
            time.sleep(min(float(r.headers.get("Retry-After", "1")), 2))
        return r

    def sign_in(self, p: Person) -> None:
        r = self.login(p.name, p.password)
        if r.status_code != 200:
            raise RuntimeError(f"login {p.label}: {r.status_code} {r.text[:200]}")
        j = r.json()
        p.access, p.refresh, p.id = j["access"], j["refresh"], j["user"]["id"]

    def register(self, p: Person) -> None:
        r = self.srv.post("/api/register/", {"username": p.name, "password": p.password})
        if r.status_code != 201:
            raise RuntimeError(f"register {p.label} {p.name!r}: {r.status_code} {r.text[:200]}")
        self.sign_in(p)

    def rest_send(self, p: Person, to: Person, text: str, client_id: str | None = None) -> int:
        body = {"message": text, "receiver": to.name}
        if client_id:
            body["client_id"] = client_id
        r = self.srv.post("/api/chat/send/", body, token=p.access)
        if r.status_code != 201 or r.json().get("message") != text:
            raise RuntimeError(f"REST send {p.label}: {r.status_code} {r.text[:200]}")
        p.sent[r.json()["id"]] = text
        return r.json()["id"]

    def ws_send(self, p: Person, to: Person, texts: list[str], client_ids: list[str]) -> None:
        ws = ws_connect(self.srv.ws_url + "/api/chat/send/?token=" + p.access, open_timeout=5)
        try:
            for t, c in zip(texts, client_ids):
                ws.send(json.dumps({"message": t, "receiver": to.name, "client_id": c}))
            want = dict(zip(client_ids, texts))
            while want:
                f = json.loads(ws.recv(timeout=10))
                if f.get("type") == "message.ack" and f.get("client_id") in want:
                    p.sent[f["id"]] = want.pop(f["client_id"])
                elif f.get("type") == "error":
                    raise RuntimeError(f"WebSocket send {p.label}: {f}")
        finally:
            ws.close()

    def new_victim(self) -> Person:
        v = Person("victim", len(self.victims) + 1)
        self.victims.append(v)
        s = self.survivor
        self.register(v)
        r = self.srv.post("/api/chat/start/", {"receiver_id": s.name}, token=v.access)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"start chat {v.label}: {r.status_code} {r.text[:200]}")
        v.convs[s.name] = s.convs[v.name] = r.json()["conversation_id"]
        c = [v.new_canary(f"msg{i}") for i in range(6)]
        filler = [" ".join(random.choices(WORDS, k=250)) for _ in range(2)]
        texts = [
            f"hi {c[0][0]} {c[0][1]}",                                # short
            f"{c[1][1]} 🎉 {c[1][0]} ok?",                              # short, emoji first
            (f"{c[2][0]} {c[2][1]} " * 80)[:2000],                    # long, compressible
            f"ws {c[3][0]} {c[3][1]}",                                # short (WebSocket from here on)
            ((c[4][1] + c[4][0]) * 300)[:4096],                       # long, at the 4,096 limit
            " ".join([*c[5], filler[0], *c[5], filler[1], *c[5]]),    # long, mixed, canaries spread
        ]
        for t in texts[:3]:
            self.rest_send(v, s, t)
        self.ws_send(v, s, texts[3:], [f"cid{v.tag}n{i}" for i in range(3, 6)])
        # the survivor answers: its own canaries, its client_ids in clear in the log
        for k in range(2):
            a, u = s.new_canary(f"reply to {v.label} #{k}")
            cid = f"ctl{s.tag}{v.idx}n{k}"
            self.controls.append(cid)
            if k == 0:
                self.rest_send(s, v, f"re {a} {u}", client_id=cid)
            else:
                self.ws_send(s, v, [f"{u} — {a} " * 20], [cid])
        # before the deletion: the search must find every canary (decrypted) and the key
        out = tool("replay", "--data", self.srv.data, "--include-secrets")
        for line in out.stdout.splitlines():
            e = json.loads(line)
            if e.get("type") == "UserRegistered" and e.get("user_id") == v.id:
                v.pwhash = e.get("password_hash") or ""
        self.rep.check(v.pwhash.startswith("pbkdf2_sha256$"),
                       f"{v.label}: replay --include-secrets shows no password hash before the deletion")
        v.key = key_entries(self.srv.data).get(v.id, b"")
        self.rep.check(len(v.key) == 60, f"{v.label}: no 60-byte key-store entry before the deletion")
        v.build_patterns()
        exp = self.srv.get("/api/account/export/", token=v.access)
        blobs = [("replay --include-secrets", out.stdout.encode()), ("export", exp.content),
                 ("keys", b"".join(open(os.path.join(self.srv.data, "keys", f), "rb").read()
                                   for f in os.listdir(os.path.join(self.srv.data, "keys"))))]
        found = {(o, w) for o, w, *_ in search(blobs, v.core)}
        missing = [w for o, w, _ in v.core if (o, w) not in found]
        if self.rep.check(not missing, f"{v.label}: before the deletion, the search does not find {missing} "
                          "in replay --include-secrets / export / key store"):
            self.found_before += 1
        return v

    # -- deletion -------------------------------------------------------------------------

    def delete(self, v: Person, how: str) -> None:
        t0 = time.perf_counter()
        r = self.srv.post("/api/account/delete/", {"password": v.password}, token=v.access)
        self.latencies.append(time.perf_counter() - t0)
        ok = r.status_code == 200 and r.json().get("detail") == "Account deleted."
        if self.rep.check(ok, f"{v.label}: delete {r.status_code} {r.text[:200]}"):
            self.mark_erased(v, how)

    def mark_erased(self, v: Person, how: str) -> None:
        v.erased, v.how = True, how
        self.erased_by[how] = self.erased_by.get(how, 0) + 1

    # -- audit ----------------------------------------------------------------------------

    def data_blobs(self, data: str, label: str, count: bool = True) -> list[tuple[str, bytes]]:
        """Every file under `data`: raw, through `lz4 -dc` (LZ4 frames), decompressed (snapshots)."""
        counters = (self.files, self.file_bytes, self.decoded_bytes, self.snapshots_seen)
        blobs, names = [], []
        for root, dirs, files in os.walk(data):
            dirs.sort()
            for f in sorted(files):
                path = os.path.join(root, f)
                rel = os.path.relpath(path, data)
                names.append(rel)
                try:
                    b = open(path, "rb").read()
                except OSError as e:
                    self.rep.check(False, f"{label}: cannot read {rel}: {e}")
                    continue
                self.files += 1
                self.file_bytes += len(b)
                blobs.append((f"file {rel}", b))
                if b[:4] == LZ4_FRAME or (len(b) >= 4 and b[0] & 0xF0 == 0x50 and b[1:4] == b"\x2a\x4d\x18"):
                    r = subprocess.run(["lz4", "-dc", path], stdin=subprocess.DEVNULL, capture_output=True)
                    self.rep.check(r.returncode == 0, f"{label}: lz4 -dc {rel} exit {r.returncode}: {r.stderr[-200:]!r}")
                    self.decoded_bytes += len(r.stdout)
                    blobs.append((f"lz4 -dc {rel}", r.stdout))
                elif b.startswith(b"CHATSNAP"):
                    try:
                        body = snapshot_body(b)
                        self.decoded_bytes += len(body)
                        self.snapshots_seen += 1
                        blobs.append((f"snapshot body {rel}", body))
                    except (ValueError, IndexError, struct.error) as e:
                        self.rep.check(False, f"{label}: cannot decompress snapshot {rel}: {e}")
        blobs.append(("file names", "\n".join(names).encode()))
        if not count:
            self.files, self.file_bytes, self.decoded_bytes, self.snapshots_seen = counters
        return blobs

    def tool_blobs(self, label: str) -> list[tuple[str, bytes]]:
        d = self.srv.data
        views = [x for v in ("users", "sessions", "presence", "friendship", "conversations") for x in ("--print", v)]
        blobs = []
        for name, args in (("replay --include-secrets", ["replay", "--data", d, "--include-secrets"]),
                           ("replay", ["replay", "--data", d]),
                           ("rebuild --print", ["rebuild", "--data", d, *views]),
                           ("stats", ["stats", "--data", d]),
                           ("verify", ["verify", "--data", d])):
            r = subprocess.run([BIN, *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
            self.rep.check(r.returncode == 0, f"{label}: chat-es {name} exit {r.returncode}: {(r.stdout + r.stderr)[-300:]!r}")
            if name == "verify":
                self.verify_runs += 1
            blobs.append((f"chat-es {name}", r.stdout + b"\n" + r.stderr))
        blobs.append(("server output", open(self.srv.out_path, "rb").read()))
        return blobs

    def api_blobs(self, label: str) -> tuple[list[tuple[str, bytes]], dict[str, list[dict]]]:
        """What the server shows the survivor; and each conversation's history."""
        s, srv = self.survivor, self.srv
        self.sign_in(s)
        blobs, hist = [], {}
        r = srv.get("/api/conversations/", token=s.access)
        self.rep.check(r.status_code == 200, f"{label}: survivor conversations {r.status_code}")
        blobs.append(("API conversations", r.content))
        for peer, cid in s.convs.items():
            out, after = [], None
            while True:
                q = "?limit=500" + (f"&after={after}" if after is not None else "")
                r = srv.get(f"/api/chat/{cid}/messages/{q}", token=s.access)
                if not self.rep.check(r.status_code == 200, f"{label}: survivor history {cid} {r.status_code}"):
                    break
                blobs.append((f"API history {cid}", r.content))
                j = r.json()
                out += j["results"]
                if not j.get("next_after") or not j["results"]:
                    break
                after = j["next_after"]
            hist[peer] = out
        for what, path in (("export", "/api/account/export/"), ("online users", "/api/online-users/?limit=1000"),
                           ("suggested friends", f"/api/suggested-friends/{s.id}?limit=50")):
            r = srv.get(path, token=s.access)
            self.rep.check(r.status_code == 200, f"{label}: survivor {what} {r.status_code}")
            blobs.append((f"API {what}", r.content))
        ws = ws_connect(srv.ws_url + "/api/chat/send/?token=" + s.access, open_timeout=5)
        try:
            ws.send(json.dumps({"type": "sync", "after": 0}))
            frames = []
            while True:
                f = ws.recv(timeout=10)
                frames.append(f.encode() if isinstance(f, str) else f)
                if json.loads(f).get("type") == "sync.done":
                    break
        finally:
            ws.close()
        blobs.append(("WebSocket sync", b"\n".join(frames)))
        return blobs, hist

    def audit(self, label: str, erased_now: list[Person] = (), alive: list[Person] = (),
              full: bool = False, api: bool = True) -> bool:
        """Audits the current state; True if it passed."""
        rep = self.rep
        before = len(rep.failures)
        self.states += 1
        blobs = self.data_blobs(self.srv.data, label) + self.tool_blobs(label)
        hist: dict[str, list[dict]] = {}
        if api:
            api_b, hist = self.api_blobs(label)
            blobs += api_b
        self.output_bytes += sum(len(b) for src, b in blobs if not src.startswith("file "))
        s = self.survivor
        patterns = []
        for v in self.victims:
            if v.erased:
                patterns += v.full if (full or v in erased_now) else v.core
        for p in [s] + self.victims:
            patterns += p.pw
        self.patterns_checked += len(patterns)
        hits = search(blobs, patterns)
        pw = [h for h in hits if h[1].startswith("password ") and "hash" not in h[1] and "salt" not in h[1]]
        self.hits += len(hits) - len(pw)
        self.pw_hits += len(pw)
        for owner, what, source, off, ctx in hits[:12]:
            rep.check(False, f"{label}: {owner} {what} found in {source} at offset {off}: {ctx!r}")
        rep.check(not hits, f"{label}: {len(hits)} hits in all")

        # positive controls: the survivor's canaries decrypted, its client_ids in clear
        s.build_patterns()
        replay_blob = [(src, b) for src, b in blobs if src == "chat-es replay --include-secrets"]
        found = {w for _, w, *_ in search(replay_blob, s.core)}
        missing = [w for _, w, _ in s.core if w not in found and not w.startswith(("password", "wrapped"))]
        rep.check(not missing, f"{label}: control: survivor's {missing[:4]} not found in replay --include-secrets")
        # and sealed at rest: never in clear in the data dir, though the survivor is never deleted
        at_rest = search([(src, b) for src, b in blobs if src.startswith(("file ", "lz4 -dc ", "snapshot body "))],
                         [x for x in s.core if not x[1].startswith(("password", "wrapped"))])
        rep.check(not at_rest, f"{label}: survivor's {at_rest[0][1] if at_rest else ''} in clear in "
                  f"{at_rest[0][2] if at_rest else ''} ({len(at_rest)} hits): not sealed at rest")
        log_blobs = [(src, b) for src, b in blobs if src.startswith("lz4 -dc log/")]
        ctl = [("survivor", c, c.encode()) for c in self.controls]
        found = {w for _, w, *_ in search(log_blobs, ctl)}
        missing = [c for c in self.controls if c not in found]
        if rep.check(log_blobs and not missing,
                     f"{label}: control: client_ids {missing[:4]} not found in the log through lz4 -dc"):
            self.control_found += 1

        # the log's view of each person
        events = [json.loads(x) for x in replay_blob[0][1].split(b"\n") if x.strip().startswith(b"{")] if replay_blob else []
        erased_ids = {e["user_id"]: e["seq"] for e in events if e.get("type") == "UserErased"}
        regs = {e["user_id"]: e for e in events if e.get("type") == "UserRegistered"}
        texts = {e["seq"]: e for e in events if e.get("type") == "MessageSent"}
        keys = key_entries(self.srv.data)
        for v in self.victims + [s]:
            reg = regs.get(v.id, {})
            if v.erased:
                rep.check(v.id in erased_ids, f"{label}: {v.label} erased but no UserErased in the log")
                rep.check(reg.get("username") is None and reg.get("password_hash") is None and reg.get("erased") is True,
                          f"{label}: {v.label} erased but replay shows its registration as {reg}")
                bad = [m for m in v.sent if texts.get(m, {}).get("text") is not None or texts.get(m, {}).get("erased") is not True]
                rep.check(not bad, f"{label}: {v.label} erased but replay shows messages {bad[:3]} not erased")
                mine = [e for e in texts.values() if e.get("sender_id") == v.id]
                bad = [e["seq"] for e in mine if e.get("text") is not None or e.get("erased") is not True]
                rep.check(not bad, f"{label}: {v.label} erased but replay shows its messages {bad[:3]} not erased")
                late = [e["seq"] for e in mine if e["seq"] > erased_ids.get(v.id, 1 << 62)]
                rep.check(not late, f"{label}: {v.label}'s messages {late[:3]} stored after its UserErased")
                rep.check(v.id not in keys, f"{label}: {v.label} erased but its key-store entry is still there")
            else:
                rep.check(v.id not in erased_ids, f"{label}: {v.label} not deleted but the log has its UserErased")
                rep.check(reg.get("username") == v.name and reg.get("erased") is False,
                          f"{label}: {v.label} not deleted but replay shows its registration as {reg}")
                bad = [m for m, t in v.sent.items() if texts.get(m, {}).get("text") != t]
                rep.check(not bad, f"{label}: {v.label} not deleted but replay shows messages {bad[:3]} changed")
                rep.check(v.id in keys and (not v.key or keys[v.id] == v.key),
                          f"{label}: {v.label} not deleted but its key-store entry is missing or changed")

        # what the survivor sees
        for v in self.victims:
            if v.name not in hist:
                continue
            msgs = {m["id"]: m for m in hist[v.name]}
            for mid, t in v.sent.items():
                m = msgs.get(mid)
                if v.erased:
                    rep.check(m is not None and m["sender"] == "[deleted]" and m["message"] is None and m["erased"] is True,
                              f"{label}: survivor sees {v.label}'s erased message {mid} as {str(m)[:200]}")
                else:
                    rep.check(m is not None and m["sender"] == v.name and m["message"] == t and m["erased"] is False,
                              f"{label}: survivor sees {v.label}'s live message {mid} as {str(m)[:200]}")
            mine = [m for m in hist[v.name] if m["id"] in s.sent]
            rep.check(len(mine) == 2 and all(m["message"] == s.sent[m["id"]] and m["erased"] is False and
                                             m["receiver"] == ("[deleted]" if v.erased else v.name) for m in mine),
                      f"{label}: survivor's own messages to {v.label} read {[str(m)[:120] for m in mine]}")

        # accounts: the erased cannot log in, the name stays taken; the living can
        if api:
            for v in erased_now:
                r = self.login(v.name, v.password)
                rep.check(r.status_code == 401 and r.json().get("code") == "no_active_account",
                          f"{label}: login of erased {v.label}: {r.status_code} {r.text[:120]}")
                same = v.name_ascii.lower() + "_" + v.name_uni   # equal case-insensitively
                r = self.login(same, v.password)
                rep.check(r.status_code == 401, f"{label}: login of erased {v.label} lower-cased: {r.status_code}")
                for n in (v.name, same):
                    r = self.srv.post("/api/register/", {"username": n, "password": v.password})
                    rep.check(r.status_code == 409 and r.json().get("code") == "username_taken",
                              f"{label}: register of erased {v.label}'s name {n!r}: {r.status_code} {r.text[:120]}")
                r = self.srv.get("/api/conversations/", token=v.access)
                rep.check(r.status_code == 401, f"{label}: erased {v.label}'s access token: {r.status_code}")
                r = self.srv.post("/api/chat/start/", {"receiver_id": v.name}, token=s.access)
                rep.check(r.status_code == 404, f"{label}: start chat with erased {v.label}: {r.status_code}")
                r = self.srv.post("/api/chat/send/", {"message": "still there?", "receiver": v.name}, token=s.access)
                rep.check(r.status_code == 404 and r.json().get("code") == "unknown_receiver",
                          f"{label}: send to erased {v.label}: {r.status_code} {r.text[:120]}")
            for v in alive:
                r = self.login(v.name, v.password)
                if rep.check(r.status_code == 200, f"{label}: {v.label} should be intact but login gives {r.status_code}"):
                    v.access, v.refresh = r.json()["access"], r.json()["refresh"]
                    own = self.srv.history(v.access, v.convs[s.name])
                    got = {m["id"]: m["message"] for m in own if m["id"] in v.sent}
                    rep.check(got == v.sent, f"{label}: {v.label} reads back its messages as "
                              f"{ {k: (x or '')[:40] for k, x in got.items()} }")
        return len(rep.failures) == before

    # -- scenarios ------------------------------------------------------------------------

    def controls_selftest(self) -> None:
        """The search finds planted strings: in a plain file, in an lz4 frame, in a snapshot."""
        rep = self.rep
        d = tempfile.mkdtemp(prefix="chat-rel-erasure-ctl-")
        try:
            c = Person("control", 0)
            a1, u1 = c.new_canary("plain")
            a2, u2 = c.new_canary("lz4 frame")
            a3, u3 = c.new_canary("snapshot")
            with open(os.path.join(d, "plain.txt"), "wb") as f:
                f.write(f"x {a1} {u1} y".encode())
            long2 = (f"{a2} {u2} " * 100).encode()
            with open(os.path.join(d, "frame.seg"), "wb") as f:
                subprocess.run(["lz4", "-q", "-c", "-BI", "-B4", "-"], input=long2, stdout=f, check=True)
            # a snapshot-shaped file whose one chunk is the LZ4 block of an lz4 frame
            long3 = (f"{a3} {u3} " * 100).encode()
            frame = subprocess.run(["lz4", "-q", "-c", "-BI", "-B4", "--no-frame-crc", "-"], input=long3,
                                   capture_output=True, check=True).stdout
            flg = frame[4]
            p = 6 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0) + 1
            bsize, = struct.unpack_from("<I", frame, p)
            rep.check(not bsize & 0x80000000, "control: lz4 stored the control block uncompressed")
            block = frame[p + 4:p + 4 + (bsize & 0x7FFFFFFF)]
            tail = (b"\x05users" + struct.pack("<I", 1) + struct.pack("<QQ", len(long3), 0)
                    + struct.pack("<III", 1, len(long3), len(block)) + block)
            os.makedirs(os.path.join(d, "snapshots"))
            with open(os.path.join(d, "snapshots", "00000000000000000001.snap"), "wb") as f:
                f.write(b"CHATSNAP" + struct.pack("<IQqQH", 2, 1, 0, 0, 1) + tail)
            with open(os.path.join(d, "snapshots", "00000000000000000001-0badc0de.snap"), "wb") as f:
                f.write(b"CHATSNAP" + struct.pack("<IQqQ", 3, 1, 0, 0) + os.urandom(32) + struct.pack("<H", 1) + tail)
            head4, rest4 = tail[:10], tail[10:]  # name and version, then body size onwards
            with open(os.path.join(d, "snapshots", "00000000000000000001-0badf00d.snap"), "wb") as f:
                f.write(b"CHATSNAP" + struct.pack("<IQqQ", 4, 1, 0, 0) + os.urandom(32) + struct.pack("<H", 1) + head4
                        + struct.pack("<HQ", 1, len(long3)) + rest4)
            c.build_patterns()
            blobs = self.data_blobs(d, "control", count=False)
            hits = search(blobs, c.core)
            where = {(w, src) for _, w, src, *_ in hits}
            found = 0
            for w, src in (("plain ascii", "file plain.txt"), ("plain non-ascii", "file plain.txt"),
                           ("lz4 frame ascii", "lz4 -dc frame.seg"), ("lz4 frame non-ascii", "lz4 -dc frame.seg"),
                           ("snapshot ascii", "snapshot body snapshots/00000000000000000001.snap"),
                           ("snapshot non-ascii", "snapshot body snapshots/00000000000000000001.snap"),
                           ("snapshot ascii", "snapshot body snapshots/00000000000000000001-0badc0de.snap"),
                           ("snapshot non-ascii", "snapshot body snapshots/00000000000000000001-0badc0de.snap"),
                           ("snapshot ascii", "snapshot body snapshots/00000000000000000001-0badf00d.snap"),
                           ("snapshot non-ascii", "snapshot body snapshots/00000000000000000001-0badf00d.snap")):
                found += rep.check((w, src) in where, f"control: planted {w} not found in {src}")
            rep.fig("control files: planted strings found where they must be",
                    f"{found}/10 (plain file, lz4 frame, snapshots of formats 2, 3 and 4 around an LZ4 block)")
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def serving(self) -> None:
        """(a) deletion while serving, audited right after the 200."""
        srv, s, rep = self.srv, self.survivor, self.rep
        swatch = ws_connect(srv.ws_url + "/api/chat/send/?token=" + s.access, open_timeout=5)
        vs = [self.new_victim() for _ in range(4)]
        r = tool("rebuild", "--data", srv.data, "--write-snapshot")
        rep.check(r.returncode == 0, f"(a) rebuild --write-snapshot before the deletion: exit {r.returncode}")
        # a wrong password changes nothing
        pos = srv.health()["log_position"]
        r = srv.post("/api/account/delete/", {"password": vs[0].password + "x"}, token=vs[0].access)
        rep.check(r.status_code == 403 and r.json().get("code") == "wrong_password",
                  f"(a) delete with a wrong password: {r.status_code} {r.text[:200]}")
        rep.check(srv.health()["log_position"] == pos, "(a) a refused deletion appended to the log")
        vws = ws_connect(srv.ws_url + "/api/chat/send/?token=" + vs[0].access, open_timeout=5)

        def drain(ws, seconds: float) -> list[bytes]:
            out, end = [], time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    f = ws.recv(timeout=max(0.01, end - time.monotonic()))
                    out.append(f.encode() if isinstance(f, str) else f)
                except TimeoutError:
                    break
            return out

        drain(swatch, 0.3)
        for i, v in enumerate(vs):
            ch = Chatter(self, v) if i == 3 else None   # the last one races its own messages
            if ch:
                drain(swatch, 0.3)                        # its socket's presence frame
                ch.start()
                ch.go.set()
                ch.midway.wait(10)
            self.delete(v, "while serving")
            if ch:
                self.race_done(ch)
            if i == 0:
                closed = None
                try:
                    while True:
                        vws.recv(timeout=5)
                except TimeoutError:
                    closed = "still open after 5 s"
                except Exception as e:
                    closed = getattr(getattr(e, "rcvd", None), "code", type(e).__name__)
                rep.check(closed != "still open after 5 s", f"(a) {v.label}'s WebSocket {closed}")
                rep.fig("(a) the deleted user's open WebSocket", f"closed ({closed})")
            # frames the survivor gets after the 200: a racing message stored before the UserErased
            # may still be on its way (the survivor's copy); nothing else may name the victim
            live = drain(swatch, 0.3)
            erased_at = max([e["seq"] for e in replay_events(srv.data)
                             if e["type"] == "UserErased" and e.get("user_id") == v.id] or [0])
            late = [f for f in live if not (json.loads(f).get("type") == "message" and json.loads(f)["id"] < erased_at)]
            hits = search([("survivor live frames", b"\n".join(late))], v.full)
            rep.check(not hits, f"(a) {len(hits)} hits of {v.label} in {len(late)} live frames to the survivor "
                      f"after the deletion: {hits[:2]}")
            self.live_frames += len(live)
            self.audit(f"(a) {v.label} deleted while serving", erased_now=[v])
        swatch.close()

    def graceful_restart(self) -> None:
        """(b) SIGTERM, restart, audit; then a snapshot written after the erasure."""
        rc = self.srv.stop()
        self.rep.check(rc == 0, f"(b) SIGTERM: exit {rc}")
        self.srv.start()
        self.audit("(b) after a graceful restart", full=True)
        r = tool("rebuild", "--data", self.srv.data, "--write-snapshot")
        self.rep.check(r.returncode == 0, f"(b) rebuild --write-snapshot: exit {r.returncode}")
        self.audit("(b) after rebuild --write-snapshot", full=True)

    def crash_points(self) -> None:
        """(c) the server kills itself at each named point of a deletion."""
        rep, srv = self.rep, self.srv
        for cp in CRASH_POINTS:
            srv.stop()
            srv.start(env={"CHAT_ES_CRASH_POINT": cp})
            v = self.new_victim()
            try:
                r = srv.post("/api/account/delete/", {"password": v.password}, token=v.access)
                answer = f"{r.status_code} {r.text[:100]}"
            except requests.RequestException as e:
                answer = type(e).__name__
            rc = srv.wait_exit(10)
            rep.check(rc == -9, f"(c) {cp}: the server did not kill itself (exit {rc}; client got {answer})")
            rep.check(not answer[:1].isdigit(), f"(c) {cp}: the client got an answer: {answer}")
            if cp == "erase-after-event":
                # a restart killed once it starts replaying, maybe while it finishes the erasure
                srv.start(wait=False)
                end = time.monotonic() + 5
                while "replaying" not in srv.output_since_start() and time.monotonic() < end:
                    time.sleep(0.0005)
                time.sleep(random.uniform(0, 0.004))
                srv.kill()
                said = srv.output_since_start()
                self.recovery_kill = ("after it destroyed the key" if "destroyed" in said else
                                      "before it destroyed the key" if "replaying" in said else "before it logged anything")
            srv.start()
            r = self.login(v.name, v.password)
            if cp == "erase-before-event":
                ok = self.audit(f"(c) {cp}: after the restart (nothing happened)", alive=[v])
                outcome = "nothing happened" if ok and r.status_code == 200 else f"login {r.status_code}"
                self.sign_in(v)
                self.delete(v, "deleted again after erase-before-event")
                self.audit(f"(c) {cp}: deleted again normally", erased_now=[v])
            else:
                if r.status_code == 401:
                    self.mark_erased(v, f"crash point {cp}")
                ok = self.audit(f"(c) {cp}: after the restart (fully erased)", erased_now=[v])
                outcome = "erased" if ok and v.erased else f"login {r.status_code}"
            rep.check(outcome == ("nothing happened" if cp == "erase-before-event" else "erased"),
                      f"(c) {cp}: outcome {outcome}")
            self.crash_outcomes[cp] = outcome

    def random_kills(self) -> None:
        """(d) SIGKILL of the process group at a random moment of the deletion request."""
        rep, srv = self.rep, self.srv
        med = statistics.median(self.latencies) if self.latencies else 0.005
        # the kill lands anywhere from before the request is read to after the answer: the delay is
        # uniform in [0, window]; the window starts at 1.2 x the median deletion latency seen so
        # far and adapts (shrinks after a round whose 200 beat the kill, grows otherwise) so that
        # about a quarter of the kills come after the answer, on a fast or a slow machine
        window = min(max(1.2 * med, 0.002), 0.05)
        first_window = window
        for rnd in range(1, self.rounds + 1):
            v = self.new_victim()
            ch = Chatter(self, v) if rnd % 2 == 0 else None
            if ch:
                ch.start()
            sess = requests.Session()
            sess.get(srv.url + "/healthz", timeout=5)   # a warm connection: the delay counts from the send
            result: dict = {}
            go = threading.Event()

            def run() -> None:
                if ch:
                    ch.go.set()
                    ch.midway.wait(10)
                go.set()
                try:
                    r = sess.post(srv.url + "/api/account/delete/", json={"password": v.password},
                                  headers={"Authorization": "Bearer " + v.access}, timeout=10)
                    result["answer"] = r.status_code
                except requests.RequestException as e:
                    result["answer"] = type(e).__name__

            th = threading.Thread(target=run, daemon=True)
            th.start()
            go.wait()
            delay = random.uniform(0, window)
            time.sleep(delay)
            srv.kill()
            th.join(15)
            if ch:
                self.race_done(ch)
            answered = result.get("answer")
            srv.start()
            r = self.login(v.name, v.password)
            label = (f"(d) round {rnd} (kill after {delay * 1000:.2f} ms, client got {answered}"
                     f"{', racing sends' if ch else ''})")
            kill = {"delay": delay, "answer": answered}
            if r.status_code == 200:
                kill["outcome"] = "nothing happened"
                rep.check(answered != 200, f"{label}: the deletion was answered 200 but the account logs in")
                ok = self.audit(f"{label}: nothing happened", alive=[v])
                self.sign_in(v)
                self.delete(v, "deleted again after a random kill")
                self.audit(f"{label}: deleted again normally", erased_now=[v])
            elif r.status_code == 401:
                kill["outcome"] = "erased"
                self.mark_erased(v, "random kill")
                ok = self.audit(f"{label}: fully erased", erased_now=[v])
            else:
                kill["outcome"] = f"login {r.status_code}"
                ok = rep.check(False, f"{label}: login after the restart {r.status_code} {r.text[:200]}")
            if not ok:
                kill["outcome"] += " (HALF STATE)"
            self.kills.append(kill)
            window = min(max(window * (0.85 if answered == 200 else 1.1), 0.0005), 0.05)
        rep.fig("(d) kill delay window ms (first / last)", f"0-{first_window * 1000:.2f} / 0-{window * 1000:.2f}")

    def final(self) -> None:
        self.audit("final: serving, every erased victim with every form", full=True)
        rc = self.srv.stop()
        self.rep.check(rc == 0, f"final SIGTERM: exit {rc}")
        self.audit("final: stopped, files and tools only", full=True, api=False)
        # an observation, not a check: client_ids are not personal fields in API.md, and stay
        ids = [("", c, c.encode()) for v in self.victims if v.erased for c in (f"cid{v.tag}n{i}" for i in range(3, 6))]
        log = [(src, b) for src, b in self.data_blobs(self.srv.data, "final", count=False) if src.startswith("lz4 -dc log/")]
        kept = {w for _, w, *_ in search(log, ids)}
        self.rep.fig("erased victims' own client_ids still in the log in clear (not personal fields in API.md)",
                     f"{len(kept)}/{len(ids)}")

    def run(self) -> None:
        rep = self.rep
        if not shutil.which("lz4"):
            rep.check(False, "the lz4 command is missing (Debian: apt-get install lz4)")
            return
        self.controls_selftest()
        self.srv.start()
        self.register(self.survivor)
        try:
            for step in (self.serving, self.graceful_restart, self.crash_points, self.random_kills, self.final):
                step()
                print(f"[erasure] {step.__name__}: {len(self.victims)} victims, {self.states} states audited, "
                      f"{self.hits + self.pw_hits} hits, {len(rep.failures)} failed checks", flush=True)
        finally:
            self.srv.cleanup()
        v = self.victims
        rep.fig("victims (name + 6 messages each: 3 REST, 3 WebSocket; 2 survivor replies each)", len(v))
        rep.fig("victims erased, by path", dict(sorted(self.erased_by.items())))
        rep.fig("forms searched per victim (all / after its audit)",
                f"{sum(len(x.full) for x in v) // max(1, len(v))} / {sum(len(x.core) for x in v) // max(1, len(v))}")
        rep.fig("victims whose canaries, hash and key the search found before their deletion",
                f"{self.found_before}/{len(v)}")
        rep.fig("states audited", self.states)
        rep.fig("files searched / bytes raw / bytes decompressed (cumulative)",
                f"{self.files} / {self.file_bytes:,} / {self.decoded_bytes:,}")
        rep.fig("snapshots decompressed and searched (cumulative)", self.snapshots_seen)
        rep.fig("tool output, server output and API bytes searched (cumulative)", f"{self.output_bytes:,}")
        rep.fig("pattern x state checks", f"{self.patterns_checked:,}")
        rep.fig("hits of erased victims' canaries, hashes, keys", self.hits)
        rep.fig("hits of any password", self.pw_hits)
        rep.fig("states where the survivor's client_ids were found in the log through lz4 -dc",
                f"{self.control_found}/{self.states}")
        rep.fig("verify runs (all must exit 0)", self.verify_runs)
        if self.latencies:
            rep.fig("deletion latency ms (median / max)",
                    f"{statistics.median(self.latencies) * 1000:.2f} / {max(self.latencies) * 1000:.2f}")
        rep.fig("(a) live frames to the survivor after a 200, searched", self.live_frames)
        rep.fig("(c) crash points", self.crash_outcomes)
        rep.fig("(c) erase-after-event: the extra restart was killed", self.recovery_kill)
        outcomes: dict[str, int] = {}
        for k in self.kills:
            key = k["outcome"] + (" (client had the 200)" if k["answer"] == 200 else "")
            outcomes[key] = outcomes.get(key, 0) + 1
        rep.fig("racing sends during a deletion ((a) once, (d) every other round)", self.race)
        rep.fig("(d) random kills: rounds", len(self.kills))
        rep.fig("(d) random kills: outcomes", dict(sorted(outcomes.items())))
        if self.kills:
            ds = [k["delay"] * 1000 for k in self.kills]
            rep.fig("(d) kill delays ms (min / max)", f"{min(ds):.2f} / {max(ds):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rep, seed = seeded_report("erasure", args.seed)
    camp = Campaign(rep, args.rounds)
    try:
        camp.run()
    except (RuntimeError, StartFailed, requests.RequestException, OSError) as e:
        rep.check(False, f"campaign stopped: {type(e).__name__}: {e} "
                  f"{getattr(e, 'output', '')[-500:] if isinstance(e, StartFailed) else ''}")
    rep.finish()


if __name__ == "__main__":
    main()
