#!/usr/bin/env python3
"""Intake and escalation on PostgreSQL beside SQLite (issue 11): one binary, three set-ups side
by side in one run, on this machine's loopback:

    sqlite    one replica on a SQLite file (the embedded default)
    pg-1      one replica on a PostgreSQL database
    pg-3      three replicas on one PostgreSQL database, the load split evenly over them

    python3 scripts/bench-replicas.py --bin /work/target-rel/release/paiid-alerts \\
        --postgres "$PAIID_TEST_POSTGRES_URL" --seconds 10 --rounds 3 --incidents 20000

Intake: signed `event_alert` webhooks (fixture 4, trimmed to about 1.7 KB as
scripts/bench-intake.sh sends them, every one a new event over 1,000 Sentry issues) from wrk,
`-c32` in all (split over the replicas), rounds interleaved (sqlite, pg-1, pg-3, sqlite, ...) so
that the machine's noise falls on all three alike. Afterwards every 2xx must be stored.

Escalation: `--incidents` critical incidents seeded by SQL (copies of one real incident), all
due `--lead` seconds after the services start again; the time until every one is on record in
`escalations` (each exactly once), and the scheduler's lateness (p50, p99, max) from
`escalations.lateness_ms`.

Durability `full` everywhere (SQLite `synchronous=FULL`, PostgreSQL `synchronous_commit=on`):
what each answers 2xx is on disk. The test cluster of scripts/test-postgres.sh runs with
`fsync=off`; point --postgres at a server with fsync on for figures about a real disk (the
script prints the server's `fsync` setting beside the figures).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO.parent / "shared/fixtures/sentry/event_alert.triggered.4.json"
LUA = REPO / "scripts/bench-intake.lua"
SECRET = "bench-replicas-secret"
ISSUES = 1000
CONNECTIONS = 32


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def template() -> str:
    doc = json.load(open(FIXTURE))
    ev = doc["data"]["event"]
    for k in ("stacktrace", "modules", "extra", "_metrics", "nodestore_insert", "hashes", "contexts"):
        ev.pop(k, None)
    for k in ("headers", "cookies", "query_string"):
        ev.get("request", {}).pop(k, None)
    ev.get("user", {}).pop("geo", None)
    old_event, old_issue = ev["event_id"], str(ev.get("issue_id", ""))
    ev["event_id"] = "__EVENT__"
    ev["issue_id"] = "__ISSUE__"
    for k in ("url", "web_url", "issue_url"):
        if isinstance(ev.get(k), str):
            ev[k] = ev[k].replace(old_event, "__EVENT__")
            if old_issue:
                ev[k] = ev[k].replace(old_issue, "__ISSUE__")
    return json.dumps(doc, separators=(",", ":"))


def bodies(path: Path, tag: int, count: int) -> None:
    """`count` signed bodies, event ids unique to `tag` (set-up, round, replica)."""
    tpl = template()
    with open(path, "w") as f:
        for i in range(count):
            body = tpl.replace("__EVENT__", "%06x%026x" % (tag, i)).replace("__ISSUE__", str(4300000000 + i % ISSUES))
            sig = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
            f.write(sig + "\t" + body + "\n")


class Service:
    started: list["Service"] = []

    def __init__(self, binary: Path, workdir: Path, url: str, name: str):
        self.log_path = workdir / f"{name}.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": url,
            "ROUTING_CONFIG": str(REPO / "routing.yaml"),
            "LISTEN_ADDR": "127.0.0.1:0",
            "SENTRY_CLIENT_SECRET": SECRET,
            "REPLICA_NAME": name,
            "RUST_LOG": "warn,paiid_alerts=info",
        }
        self.proc = subprocess.Popen(
            [str(binary), "serve"], env=env, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT
        )
        Service.started.append(self)
        deadline = time.time() + 60
        self.base = None
        while time.time() < deadline:
            text = self.log_path.read_text(errors="replace")
            m = re.search(r"address=(\S+)", text)
            if m and self.base is None:
                self.base = "http://" + m.group(1).strip('"')
            if self.base and ready(self.base):
                return
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} exited:\n{text}")
            time.sleep(0.05)
        raise SystemExit(f"{name} not ready:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def ready(base: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
            return r.status == 200
    except Exception:
        return False


class Setup:
    def __init__(self, name, binary, workdir, url, replicas, pg):
        self.name, self.binary, self.workdir, self.url, self.n, self.pg = name, binary, workdir, url, replicas, pg
        self.services: list[Service] = []
        self.accepted = 0
        self.rps: list[float] = []
        self.p99: list[float] = []

    def start(self) -> None:
        self.services = [Service(self.binary, self.workdir, self.url, f"{self.name}-{i}") for i in range(self.n)]

    def stop(self) -> None:
        for s in self.services:
            s.stop()
        self.services = []

    def query(self, sql: str):
        if self.pg:
            import psycopg

            with psycopg.connect(self.url) as c:
                return c.execute(sql).fetchall()
        c = sqlite3.connect(self.url.removeprefix("sqlite://"), timeout=30)
        try:
            return c.execute(sql).fetchall()
        finally:
            c.close()

    def execute(self, sql: str) -> None:
        if self.pg:
            import psycopg

            with psycopg.connect(self.url) as c:
                c.execute(sql)
            return
        c = sqlite3.connect(self.url.removeprefix("sqlite://"), timeout=30)
        try:
            c.executescript(sql)
        finally:
            c.close()


def wrk_round(setup: Setup, tag: int, seconds: float, tmp: Path, rate_guess: int) -> None:
    procs = []
    per = CONNECTIONS // setup.n
    for i, svc in enumerate(setup.services):
        path = tmp / f"bodies.{setup.name}.{tag}.{i}"
        bodies(path, tag * 16 + i, max(2000, int(rate_guess * seconds * 1.5 / setup.n)))
        env = dict(os.environ, BODIES=str(path), THREADS="1")
        procs.append(
            subprocess.Popen(
                ["wrk", "-t1", f"-c{per}", f"-d{int(seconds)}s", "--latency", "-s", str(LUA), svc.base],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    rps = 0.0
    p99 = 0.0
    for p in procs:
        out, _ = p.communicate()
        m = re.search(r"BENCH requests=(\d+) duration_us=(\d+) rps=([\d.]+) p50_us=\d+ p90_us=\d+ p99_us=(\d+).*non2xx=(\d+)", out)
        if not m:
            raise SystemExit(f"wrk said:\n{out}")
        requests, non2xx = int(m.group(1)), int(m.group(5))
        setup.accepted += requests - non2xx
        rps += float(m.group(3)) * (requests - non2xx) / max(requests, 1)
        p99 = max(p99, int(m.group(4)) / 1000)
    for f in tmp.glob(f"bodies.{setup.name}.{tag}.*"):
        f.unlink()
    setup.rps.append(rps)
    setup.p99.append(p99)
    log(f"{setup.name} round {tag % 100}: {rps:,.0f} req/s (2xx), p99 {p99:.1f} ms")


INCIDENT_OVERRIDES = {
    "id": "t.id + g",
    "incident_key": "t.incident_key || ':seed:' || g",
    "sentry_issue_id": "'seed-' || g",
    "next_escalation_at": "{due}",
    "held_escalation_at": "NULL",
    "escalation_step": "0",
    "state": "'triggered'",
}


def seed(setup: Setup, n: int, due_ms: int) -> None:
    """`n` copies of the newest incident, all due at `due_ms`."""
    cols = [r[0] for r in setup.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'incidents' ORDER BY ordinal_position"
    )] if setup.pg else [r[1] for r in setup.query("PRAGMA table_info(incidents)")]
    select = ", ".join(INCIDENT_OVERRIDES.get(c, f"t.{c}").format(due=due_ms) for c in cols)
    series = "generate_series(1, %d) AS s(g)" % n if setup.pg else "(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %d) SELECT g FROM s) AS s" % n
    setup.execute(
        f"INSERT INTO incidents ({', '.join(cols)}) SELECT {select} FROM "
        f"(SELECT * FROM incidents WHERE id = (SELECT MAX(id) FROM incidents)) AS t, {series};"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=str(REPO / "target/release/paiid-alerts"))
    p.add_argument("--postgres", required=True, metavar="ADMIN_URL")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--incidents", type=int, default=20000)
    p.add_argument("--lead", type=float, default=3.0)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    import psycopg

    binary = Path(args.bin).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    local_bin = tmp / "paiid-alerts"
    shutil.copy2(binary, local_bin)

    def fresh_pg() -> str:
        name = f"paiid_bench_{os.urandom(5).hex()}"
        with psycopg.connect(args.postgres, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
            fsync = c.execute("SHOW fsync").fetchone()[0]
            sync = c.execute("SHOW synchronous_commit").fetchone()[0]
        return args.postgres.rsplit("/", 1)[0] + "/" + name, fsync, sync

    pg1_url, fsync, server_sync = fresh_pg()
    pg3_url, _, _ = fresh_pg()
    setups = [
        Setup("sqlite", local_bin, tmp, f"sqlite://{tmp / 'alerts.db'}", 1, False),
        Setup("pg-1", local_bin, tmp, pg1_url, 1, True),
        Setup("pg-3", local_bin, tmp, pg3_url, 3, True),
    ]
    log(f"PostgreSQL server: fsync={fsync}, synchronous_commit={server_sync} (the service sets it on for its writes)")
    for s in setups:
        s.start()
    for r in range(args.rounds):
        for s in setups:
            wrk_round(s, 100 * (setups.index(s) + 1) + r, args.seconds, tmp, 6000)
    for s in setups:
        stored = s.query("SELECT COUNT(*) FROM events")[0][0]
        s.stored = stored
        if stored < s.accepted:
            raise SystemExit(f"{s.name}: {s.accepted} answered 2xx, {stored} stored")
        s.stop()

    # Escalation: N due together, fired by 1 or 3 replicas.
    for s in setups:
        due = int((time.time() + args.lead + 2) * 1000)
        s.execute("DELETE FROM escalations;")
        seed(s, args.incidents, due)
    started = {}
    for s in setups:
        s.start()
        started[s.name] = time.time()
    results = {}
    pending = set(s.name for s in setups)
    deadline = time.time() + 600
    while pending and time.time() < deadline:
        for s in setups:
            if s.name not in pending:
                continue
            (fired,) = s.query("SELECT COUNT(*) FROM escalations")[0]
            if fired >= args.incidents:
                rows = s.query("SELECT COUNT(*), COUNT(DISTINCT incident_id), MAX(fired_at) - MIN(due_at) FROM escalations")
                lat = sorted(r[0] for r in s.query("SELECT lateness_ms FROM escalations"))
                results[s.name] = dict(
                    fired=rows[0][0],
                    distinct=rows[0][1],
                    span_ms=rows[0][2],
                    p50=lat[len(lat) // 2],
                    p99=lat[int(len(lat) * 0.99)],
                    max=lat[-1],
                )
                pending.discard(s.name)
        time.sleep(0.2)
    for s in setups:
        s.stop()

    print()
    print(f"intake, {args.rounds} rounds of {args.seconds:.0f} s, wrk -c{CONNECTIONS} in all, durability full (PostgreSQL fsync={fsync})")
    base = sum(setups[0].rps) / len(setups[0].rps)
    print(f"{'set-up':<8} {'req/s (mean)':>13} {'rounds':>26} {'p99 ms':>8} {'vs sqlite':>10} {'2xx':>8} {'stored':>8}")
    for s in setups:
        mean = sum(s.rps) / len(s.rps)
        rounds = "/".join(f"{x:,.0f}" for x in s.rps)
        print(f"{s.name:<8} {mean:>13,.0f} {rounds:>26} {max(s.p99):>8.1f} {mean / base:>9.2f}x {s.accepted:>8} {s.stored:>8}")
    print()
    print(f"escalation: {args.incidents:,} incidents due together")
    print(f"{'set-up':<8} {'fired':>7} {'once each':>10} {'all fired within ms':>20} {'lateness p50/p99/max ms':>24}")
    for s in setups:
        r = results.get(s.name)
        if not r:
            print(f"{s.name:<8} not all fired within 600 s")
            continue
        once = "yes" if r["fired"] == r["distinct"] == args.incidents else "NO"
        print(f"{s.name:<8} {r['fired']:>7} {once:>10} {r['span_ms']:>20,} {r['p50']:>10}/{r['p99']}/{r['max']}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp}")
    return 0


def stop_all() -> None:
    """Every service this run started, whatever stopped it (a failed check, Ctrl-C)."""
    for svc in Service.started:
        if svc.proc.poll() is None:
            svc.proc.kill()


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
