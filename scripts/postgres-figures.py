#!/usr/bin/env python3
"""Issue 15's figures in one run, same load generator, fresh data (and a fresh database) each:

  file    the segmented file log (--fsync always)
  pg1     one node on the PostgreSQL store
  pg2     two nodes on one PostgreSQL database, the load generator's sockets spread over both
          (each sender's receivers sit on the other node: every delivery crosses nodes)

For each: delivered msg/s at saturation with 1,000 users, and ack p50/p99 at 2,000 msg/s paced
(100 users), with the store's own commit time from the server's /metrics (fsyncs for the file
log, database commits for PostgreSQL) and the database's commit latency measured by pgbench in
the same run (one client, one-row INSERT transactions, 5 s). Starts its own PostgreSQL cluster
(scripts/pg-temp.sh) under a temp dir and stops it at exit.

usage: scripts/postgres-figures.py [--bin PATH] [--rounds N] [--duration S]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(base: str, sql: str) -> None:
    subprocess.run(["psql", base + "/postgres", "-qc", sql], check=True, capture_output=True)


class Server:
    def __init__(self, binary: str, extra: list[str], postgres: str | None, secret: str | None = None):
        self.base = tempfile.mkdtemp(prefix="chat-pgfig-")
        self.data = os.path.join(self.base, "data")
        self.port = free_port()
        env = dict(os.environ, CHAT_ES_SECRET=secret or secrets.token_hex(32))
        flags = ["--postgres", postgres] if postgres else ["--fsync", "always"]
        self.log = open(os.path.join(self.base, "server.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data", self.data, "--port", str(self.port), "--password-iterations", "1000",
             "--snapshot-every-events", "0", *flags, *extra],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(600):
            try:
                if urllib.request.urlopen(self.url + "/healthz", timeout=1).status == 200:
                    return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("server did not start: " + open(os.path.join(self.base, "server.log")).read()[-2000:])

    def commits(self) -> tuple[float, float]:
        text = urllib.request.urlopen(self.url + "/metrics", timeout=2).read().decode()
        m = dict(line.split()[:2] for line in text.splitlines() if line.startswith("chat_log_"))
        store = float(m.get("chat_log_store_commits_total", 0))
        if store > 0:
            return store, float(m["chat_log_store_commit_seconds_total"])
        return float(m.get("chat_log_fsyncs_total", 0)), float(m.get("chat_log_fsync_seconds_total", 0))

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.base, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(binary: str, store: str, kind: str, duration: float, pg_base: str) -> dict:
    postgres = None
    if store != "file":
        db = "fig_" + secrets.token_hex(6)
        psql(pg_base, f"CREATE DATABASE {db}")
        postgres = f"{pg_base}/{db}"
    secret = secrets.token_hex(32)
    nodes = 2 if store == "pg2" else 1
    if kind == "saturation":
        extra = ["--socket-rate", "100000"]
        args = ["--users", "1000", "--senders", "1000", "--rate", "0"]
    else:
        extra = []
        args = ["--users", "100", "--senders", "50", "--rate", "2000"]
    servers = []
    try:
        for _ in range(nodes):
            servers.append(Server(binary, extra, postgres, secret))
        urls = ["--url", servers[0].url] + [a for s in servers[1:] for a in ("--also-url", s.url)]
        before = [s.commits() for s in servers]
        cpu_before = sum(cpu_seconds(s.proc.pid) for s in servers)
        out = subprocess.run([binary, "loadgen", *urls, *args, "--duration", str(duration), "--json"],
                             capture_output=True, text=True, check=True).stdout
        cpu = sum(cpu_seconds(s.proc.pid) for s in servers) - cpu_before
        after = [s.commits() for s in servers]
    finally:
        for s in servers:
            s.stop()
    r = json.loads(out)
    commits = max(sum(a[0] - b[0] for a, b in zip(after, before)), 1)
    seconds = sum(a[1] - b[1] for a, b in zip(after, before))
    # CPU over set-up, sending and drain, per delivered message: comparable across stores.
    delivered = max(r["delivered_per_s"] * r["elapsed_s"], 1)
    return {"delivered": r["delivered_per_s"], "p50": r["ack_ms"]["p50"], "p99": r["ack_ms"]["p99"],
            "e2e99": r.get("e2e_ms", {}).get("p99", 0),
            "undelivered": r["undelivered"], "errors": r["errors"], "cpu": 1e6 * cpu / delivered,
            "commit_ms": 1e3 * seconds / commits, "commits_per_s": commits / r["elapsed_s"]}


def pgbench(pg_base: str) -> str:
    psql(pg_base, "CREATE DATABASE bench")
    subprocess.run(["psql", pg_base + "/bench", "-qc", "CREATE TABLE t (id serial, v bytea)"], check=True)
    script = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
    script.write("INSERT INTO t (v) VALUES ('\\x00112233445566778899aabbccddeeff'::bytea);\n")
    script.close()
    bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    out = subprocess.run([bindir + "/pgbench", "-n", "-c", "1", "-T", "5", "-f", script.name, pg_base + "/bench"],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    psql(pg_base, "DROP DATABASE bench")
    latency = re.search(r"latency average = ([0-9.]+) ms", out)
    tps = re.search(r"tps = ([0-9.]+)", out)
    return f"pgbench 1 client, 1-row INSERT commits: {latency.group(1)} ms average, {float(tps.group(1)):,.0f} commits/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, ".build", "release", "chat-es"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=float, default=10)
    args = ap.parse_args()
    cluster = tempfile.mkdtemp(prefix="chat-pgfig-cluster-")
    url = subprocess.run([os.path.join(REPO, "scripts", "pg-temp.sh"), "start", cluster],
                         capture_output=True, text=True, check=True).stdout.strip()
    pg_base = url.rsplit("/", 1)[0]
    try:
        for rnd in range(1, args.rounds + 1):
            print(f"round {rnd}: {pgbench(pg_base)}", flush=True)
            for store in ("file", "pg1", "pg2"):
                sat = measure(args.bin, store, "saturation", args.duration, pg_base)
                paced = measure(args.bin, store, "paced", args.duration, pg_base)
                print(f"  {store:4s} saturation 1,000 users: {sat['delivered']:>9,.0f} delivered/s, ack p50/p99 "
                      f"{sat['p50']:.1f}/{sat['p99']:.1f} ms, {sat['cpu']:.1f} µs CPU/msg, {sat['commits_per_s']:,.0f} commits/s "
                      f"of {sat['commit_ms']:.2f} ms | 2,000/s paced: ack p50/p99 {paced['p50']:.2f}/{paced['p99']:.2f} ms, "
                      f"delivery p99 {paced['e2e99']:.2f} ms, "
                      f"commits {paced['commits_per_s']:,.0f}/s of {paced['commit_ms']:.2f} ms, undelivered "
                      f"{sat['undelivered'] + paced['undelivered']}, errors {sat['errors'] + paced['errors']}", flush=True)
    finally:
        subprocess.run([os.path.join(REPO, "scripts", "pg-temp.sh"), "stop", cluster], capture_output=True)
        shutil.rmtree(cluster, ignore_errors=True)


if __name__ == "__main__":
    main()
