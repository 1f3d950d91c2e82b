#!/usr/bin/env python3
"""Restart benchmark (issue 10, target 4): time from spawning `paiid-alerts serve` to `/readyz`
answering 200, and the process's peak RSS (VmHWM) at that moment, against a database holding N
Sentry events received within the last few minutes (all inside the committed routing.yaml's
5-minute `high-error-rate` window, so the writer must rebuild that rate window at start).

    python3 scripts/bench-restart.py --bin target/release/paiid-alerts --events 300000
    python3 scripts/bench-restart.py --bin before=/work/target-before/release/paiid-alerts \\
        --bin after=target/release/paiid-alerts --events 50000 --events 300000 --old-rows
    python3 scripts/bench-restart.py --quick --bin target/debug/paiid-alerts   # CI smoke size

For each binary and each N: a fresh database is migrated by the binary itself, which is sent one
signed webhook of each fixture and stopped (SIGTERM); N rows are then written straight into
`events` with Python's sqlite3, as that binary's intake stores them: real fixture bodies from
../shared/fixtures/sentry/, `occurrence = 1`, details already extracted, and (binaries with
migration 0009) the rate facts its intake stored for the same fixture. With `--old-rows`, a
binary with those columns is also run on rows written without them (`<label>/old`: events stored
before the upgrade). The service is then started `--starts` times (default 2) on that file,
each start timed to ready and stopped with SIGTERM.

After each timed start (after its VmHWM is read) one more error is posted, signed as Sentry
signs it: it must come back `high`, i.e. the rebuilt window holds the stored events. Nothing is
asserted about time (CI runs `--quick` so the script does not rot); the exit status is 1 when a
service does not become ready, exits, or that error is not High.

The backlog (target 4 in full): `--pending-escalations E --pending-deliveries D --stored-events S`
also seed, with SQL copies of rows the binary itself wrote for one signed critical webhook,
E triggered critical incidents whose escalation is overdue (deadlines in the last minutes),
D pending deliveries (due) to the Slack channel, and S events received 1-30 days ago (outside
every rate window; 1.3 KB body each). Then each start (the seeded file is restored before each
one) is also timed to the moment every overdue escalation has fired (meanwhile signed webhooks
are posted one after another: `hooks` gives their count and p50/max latency in ms), and once stopped the file is
checked: each seeded incident has exactly one `escalations` row (step 1), one `escalated` timeline
entry, one escalation delivery to each of its escalation channels, and no deadline left.

    python3 scripts/bench-restart.py --bin before=... --bin after=... --events 50000 \
        --pending-escalations 100000 --pending-deliveries 100000 --stored-events 1000000 --starts 1
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures" / "sentry"
# Level error with a project: both count toward `high-error-rate` (per project).
FIXTURE_FILES = [
    ("event_alert.triggered.1.json", "event_alert", "triggered"),
    ("error.created.1.json", "error", "created"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return r.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class Failure(Exception):
    pass


def start_and_time(
    binary: Path,
    workdir: Path,
    env: dict,
    timeout: float,
    check: bool = True,
    seed: bool = False,
    backlog: tuple[int, int] | None = None,
) -> tuple[float, int, float | None, list]:
    """Seconds from spawn to /readyz 200, and VmHWM (KB) then; with `backlog` (the seeded
    incidents' id range), also seconds from spawn until all their overdue escalations fired and
    the latencies of webhooks posted meanwhile. Stops the service (SIGTERM)."""
    fired_s, during = None, []
    port = free_port()
    log = open(workdir / "service.log", "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(binary), "serve"],
        env=dict(env, LISTEN_ADDR=f"127.0.0.1:{port}"),
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        while not ready(port):
            if proc.poll() is not None:
                raise Failure(f"{binary} exited with {proc.returncode}; see {workdir / 'service.log'}")
            if time.monotonic() - t0 > timeout:
                raise Failure(f"{binary} not ready within {timeout} s")
            time.sleep(0.005)
        elapsed = time.monotonic() - t0
        hwm = vm_hwm_kb(proc.pid)
        if check:
            check_window(port, env["SENTRY_CLIENT_SECRET"])
        if seed:
            for name, resource, _ in FIXTURE_FILES:
                post(port, env["SENTRY_CLIENT_SECRET"], name, resource)
            post(port, env["SENTRY_CLIENT_SECRET"], *CRITICAL_FIXTURE, issue=SEED_ISSUE)
        if backlog is not None:
            fired_s, during = wait_fired(workdir / "alerts.db", backlog, t0, timeout, proc, port, env["SENTRY_CLIENT_SECRET"])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    return elapsed, hwm, fired_s, during


def wait_fired(db: Path, backlog: tuple[int, int], t0: float, timeout: float, proc, port: int, secret: str) -> tuple[float, list]:
    """Seconds from spawn until every seeded incident has its escalation on record, and the
    latency (s) of signed webhooks posted one after another meanwhile (intake while recovering)."""
    lo, hi = backlog
    latencies = []
    while fired_count(db, lo, hi) < hi - lo + 1:
        if proc.poll() is not None:
            raise Failure(f"the service exited with {proc.returncode} before firing every overdue escalation")
        if time.monotonic() - t0 > timeout:
            raise Failure(f"not every overdue escalation fired within {timeout} s")
        sent = time.monotonic()
        post(port, secret, "error.created.1.json", "error")
        latencies.append(time.monotonic() - sent)
        time.sleep(0.02)
    return time.monotonic() - t0, latencies


def check_window(port: int, secret: str) -> None:
    """One more error, signed as Sentry signs it: the rebuilt window must make it High."""
    answer = post(port, secret, "error.created.1.json", "error")
    if answer.get("severity") != "high":
        raise Failure(f"an error after the restart was not High (rate window not rebuilt?): {answer}")


def post(port: int, secret: str, fixture: str, resource: str, issue: str | None = None) -> dict:
    """The fixture with a fresh event id (and `issue` as its issue id), signed as Sentry signs it;
    the service's answer."""
    body = json.loads((FIXTURES / fixture).read_bytes())
    for part in ("error", "event"):
        if part in body.get("data", {}):
            body["data"][part]["event_id"] = uuid.uuid4().hex
            if issue is not None:
                body["data"][part]["issue_id"] = issue
    raw = json.dumps(body).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/sentry",
        data=raw,
        headers={
            "Content-Type": "application/json",
            "Sentry-Hook-Resource": resource,
            "Sentry-Hook-Signature": hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest(),
            "Sentry-Hook-Timestamp": str(int(time.time())),
            "Request-ID": str(uuid.uuid4()),
        },
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def stored_facts(db: Path) -> dict | None:
    """resource -> (rate_fp, rate_keys) as this binary's intake stored them for the seeded
    fixtures; None for a binary without those columns (before migration 0009)."""
    con = sqlite3.connect(db)
    try:
        cols = {r[1] for r in con.execute("PRAGMA table_info(events)")}
        if "rate_fp" not in cols:
            return None
        return {r: (fp, keys) for r, fp, keys in con.execute("SELECT resource, rate_fp, rate_keys FROM events")}
    finally:
        con.close()


def fill(db: Path, n: int, spread_s: float, facts: dict | None) -> float:
    """Writes n events received within the last `spread_s` seconds; returns seconds taken.
    `facts` (resource -> (rate_fp, rate_keys)) fills the rate-fact columns; None leaves them out."""
    t0 = time.monotonic()
    bodies = [((FIXTURES / f).read_bytes(), res, act) for f, res, act in FIXTURE_FILES]
    now_ms = int(time.time() * 1000)
    con = sqlite3.connect(db)
    (max_id,) = con.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
    rows = []
    for i in range(n):
        body, resource, action = bodies[i % len(bodies)]
        at = now_ms - int(spread_s * 1000) + (i * int(spread_s * 1000)) // max(n, 1)
        rows.append(
            (
                max_id + 1 + i,
                at,
                f"bench-{uuid.uuid4().hex}",
                None,
                "sentry",
                resource,
                action,
                "processed",
                "high",
                "high-error-rate",
                "bench-project",
                "production",
                "error",
                1,
                body,
                "{}",
            )
            + (facts.get(resource, (None, None)) if facts is not None else ())
        )
        if len(rows) == 10_000:
            insert(con, rows)
            rows = []
    insert(con, rows)
    con.close()
    return time.monotonic() - t0


def insert(con: sqlite3.Connection, rows: list) -> None:
    if not rows:
        return
    cols = (
        "id, received_at, dedup_key, request_id, source, resource, action, status, severity, rule, "
        "project, environment, level, occurrence, body, details"
    )
    if len(rows[0]) == 18:
        cols += ", rate_fp, rate_keys"
    con.executemany(f"INSERT INTO events ({cols}) VALUES ({', '.join('?' * len(rows[0]))})", rows)
    con.commit()


# The critical fixture (production, level error): its incident escalates to PagerDuty and email.
CRITICAL_FIXTURE = ("event_alert.triggered.4.json", "event_alert")
# A small real payload (1.3 KB) for the stored-events backlog.
STORED_BODY = "event_alert.triggered.5.json"
SEED_ISSUE = "4399999999"


def columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]


def counting(n: int) -> str:
    """A CTE `c(x)` of 1..n: rows are made in SQL, not sent one by one from Python."""
    return f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {int(n)}) "


def copy_rows(con, table: str, template_where: str, n: int, overrides: dict[str, str]) -> None:
    """Inserts n copies of the one row of `table` matching `template_where`, columns named in
    `overrides` computed by their SQL expression (over the template `t` and the counter `x`)."""
    cols = columns(con, table)
    exprs = [overrides.get(c, f"t.{c}") for c in cols]
    con.execute(
        counting(n) + f"INSERT INTO {table} ({', '.join(cols)}) "
        f"SELECT {', '.join(exprs)} FROM c, (SELECT * FROM {table} WHERE {template_where} LIMIT 1) t"
    )


def seed_backlog(db: Path, escalations: int, deliveries: int, stored: int) -> float:
    """The target-4 backlog, copied from the rows the binary wrote for the seeded critical webhook
    (so each binary gets rows in its own schema). Returns seconds taken."""
    t0 = time.monotonic()
    now = int(time.time() * 1000)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("BEGIN")
    (tmpl,) = con.execute("SELECT id FROM incidents WHERE sentry_issue_id = ?", (SEED_ISSUE,)).fetchone()
    (inc0,) = con.execute("SELECT MAX(id) FROM incidents").fetchone()
    (ev0,) = con.execute("SELECT MAX(id) FROM events").fetchone()
    (dl0,) = con.execute("SELECT MAX(id) FROM deliveries").fetchone()
    copy_rows(con, "incidents", f"id = {tmpl}", escalations, {
        "id": f"{inc0} + x",
        "incident_key": "'bench-esc-' || x",
        "sentry_issue_id": "'bench-' || x",
        "state": "'triggered'",
        "escalation_step": "0",
        "opened_at": f"{now} - 1200000 + x % 300000",
        "next_escalation_at": f"{now} - 300000 + x % 300000",
    })
    copy_rows(con, "deliveries", f"incident_id = {tmpl} AND channel = 'slack-alerts'", deliveries, {
        "id": f"{dl0} + x",
        "incident_id": f"{inc0} + 1 + (x - 1) % {max(escalations, 1)}" if escalations else f"{tmpl}",
        "status": "'pending'",
        "attempts": "0",
        "lease_until": "NULL",
        "next_attempt_at": f"{now} - 60000 + x % 60000",
        "delivered_at": "NULL",
        "response": "NULL",
    })
    body = (FIXTURES / STORED_BODY).read_bytes()
    day = 86_400_000
    overrides = {
        "id": f"{ev0} + x",
        "received_at": f"{now} - 30 * {day} + x * (29 * {day} / {max(stored, 1)})",
        "dedup_key": "'bench-old-' || x",
        "incident_id": "NULL",
        "body": "?",
    }
    cols = columns(con, "events")
    exprs = [overrides.get(c, f"t.{c}") for c in cols]
    con.execute(
        counting(stored) + f"INSERT INTO events ({', '.join(cols)}) SELECT {', '.join(exprs)} "
        "FROM c, (SELECT * FROM events ORDER BY id LIMIT 1) t",
        (body,),
    )
    con.execute("COMMIT")
    con.close()
    # Written with synchronous=OFF: flush it now, or the timed start pays for its write-back.
    os.sync()
    return time.monotonic() - t0


def backlog_ids(db: Path) -> tuple[int, int]:
    con = sqlite3.connect(db)
    try:
        lo, hi = con.execute("SELECT MIN(id), MAX(id) FROM incidents WHERE incident_key LIKE 'bench-esc-%'").fetchone()
        return lo, hi
    finally:
        con.close()


def fired_count(db: Path, lo: int, hi: int) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        (n,) = con.execute("SELECT COUNT(*) FROM escalations WHERE incident_id BETWEEN ? AND ?", (lo, hi)).fetchone()
        return n
    finally:
        con.close()


def check_fired_once(db: Path, lo: int, hi: int) -> dict:
    """After the service stopped: every seeded incident escalated exactly once, on every channel."""
    con = sqlite3.connect(db)
    try:
        n = hi - lo + 1
        q = lambda sql: con.execute(sql, (lo, hi)).fetchone()[0]  # noqa: E731
        found = {
            "escalations": q("SELECT COUNT(*) FROM escalations WHERE incident_id BETWEEN ? AND ? AND step = 1"),
            "incidents_escalated": q("SELECT COUNT(DISTINCT incident_id) FROM escalations WHERE incident_id BETWEEN ? AND ?"),
            "timeline": q("SELECT COUNT(*) FROM timeline WHERE incident_id BETWEEN ? AND ? AND kind = 'escalated'"),
            "deliveries": q("SELECT COUNT(*) FROM deliveries WHERE incident_id BETWEEN ? AND ? AND kind = 'escalation'"),
            "delivery_pairs": q(
                "SELECT COUNT(*) FROM (SELECT DISTINCT incident_id, channel FROM deliveries "
                "WHERE incident_id BETWEEN ? AND ? AND kind = 'escalation')"
            ),
            "deadlines_left": q(
                "SELECT COUNT(*) FROM incidents WHERE id BETWEEN ? AND ? AND next_escalation_at IS NOT NULL"
            ),
        }
    finally:
        con.close()
    # The committed routing.yaml escalates a critical to pagerduty-oncall and eng-manager-email.
    want = {"escalations": n, "incidents_escalated": n, "timeline": n, "deliveries": 2 * n,
            "delivery_pairs": 2 * n, "deadlines_left": 0}
    if found != want:
        raise Failure(f"escalations not fired exactly once: found {found}, want {want}")
    return found


def restore(workdir: Path) -> None:
    """Back to the seeded file (every escalation overdue again) before another timed start."""
    for suffix in ("-wal", "-shm"):
        (workdir / f"alerts.db{suffix}").unlink(missing_ok=True)
    shutil.copy2(workdir / "seeded.db", workdir / "alerts.db")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", action="append", required=True, help="[label=]path to paiid-alerts (repeatable)")
    p.add_argument("--events", action="append", type=int, help="events in the window (repeatable; default 50000)")
    p.add_argument("--spread-seconds", type=float, default=200.0, help="events received within this many seconds")
    p.add_argument("--starts", type=int, default=2, help="timed starts per database")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--quick", action="store_true", help="CI smoke size: 2,000 events")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument(
        "--old-rows",
        action="store_true",
        help="also, for a binary with rate-fact columns, rows stored without them (before the upgrade)",
    )
    p.add_argument("--pending-escalations", type=int, default=0, help="overdue critical escalations")
    p.add_argument("--pending-deliveries", type=int, default=0, help="pending (due) Slack deliveries")
    p.add_argument("--stored-events", type=int, default=0, help="events outside every rate window")
    args = p.parse_args()
    sizes = [2_000] if args.quick else (args.events or [50_000])
    backlog = (args.pending_escalations, args.pending_deliveries, args.stored_events)
    if args.quick and not any(backlog):
        backlog = (200, 200, 2_000)
    bins = []
    for b in args.bin:
        label, _, path = b.rpartition("=")
        path = Path(path)
        if not path.is_file():
            raise Failure(f"no binary at {path}")
        bins.append((label or path.parent.parent.name, path))

    results = []
    print(f"{'binary':<10} {'events':>8} {'start':>5} {'ready s':>8} {'VmHWM MB':>9} {'fired s':>8} {'hooks p50/max':>14}", flush=True)
    runs = [(n, label, binary, old) for n in sizes for label, binary in bins for old in (False, True)]
    for n, label, binary, old_rows in runs:
        if old_rows and not args.old_rows:
            continue
        workdir = Path(tempfile.mkdtemp(prefix="bench-restart-"))
        try:
            # A private copy: others may rebuild target/ meanwhile.
            own = workdir / "paiid-alerts"
            shutil.copy2(binary, own)
            shutil.copy2(REPO / "routing.yaml", workdir / "routing.yaml")
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", "/tmp"),
                "DATABASE_URL": f"sqlite://{workdir / 'alerts.db'}",
                "ROUTING_CONFIG": str(workdir / "routing.yaml"),
                "SENTRY_CLIENT_SECRET": "bench-secret",
                "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/services/T/B/X",
                "PAGERDUTY_ROUTING_KEY": "BenchRestartRoutingKey0000000032",
                "PAGERDUTY_EVENTS_URL": "http://127.0.0.1:9/v2/enqueue",
                "SMTP_URL": "smtp://127.0.0.1:9",
                "RUST_LOG": "info",
            }
            # Creates and migrates the file; one webhook of each fixture shows the rate facts
            # this binary's intake stores with them, copied into the rows written below.
            start_and_time(own, workdir, env, args.timeout, check=False, seed=True)
            facts = stored_facts(workdir / "alerts.db")
            if old_rows:
                if facts is None:
                    continue
                facts = {}
                label = f"{label}/old"
            db = workdir / "alerts.db"
            filled = fill(db, n, args.spread_seconds, facts)
            ids = None
            if any(backlog) and not old_rows:
                filled += seed_backlog(db, *backlog)
                ids = backlog_ids(db) if backlog[0] else None
                if args.starts > 1:
                    shutil.copy2(db, workdir / "seeded.db")
            for s in range(1, args.starts + 1):
                if ids is not None and s > 1:
                    restore(workdir)
                secs, hwm, fired, during = start_and_time(own, workdir, env, args.timeout, backlog=ids)
                if ids is not None:
                    check_fired_once(db, *ids)
                fired_txt = "-" if fired is None else f"{fired:.2f}"
                during.sort()
                hooks = f"{len(during)} {1000 * during[len(during) // 2]:.0f}/{1000 * during[-1]:.0f}" if during else "-"
                print(f"{label:<10} {n:>8} {s:>5} {secs:>8.2f} {hwm / 1024:>9.0f} {fired_txt:>8} {hooks:>14}", flush=True)
                results.append(
                    {"binary": label, "events": n, "start": s, "ready_s": secs, "vm_hwm_kb": hwm, "fill_s": filled,
                     "all_fired_s": fired, "webhooks_while_firing_s": during, "backlog": dict(zip(("escalations", "deliveries", "stored_events"), backlog))}
                )
        finally:
            # KEEP_TMP=1 keeps the directory (database, service.log) for a closer look.
            if os.environ.get("KEEP_TMP"):
                print(f"kept {workdir}", file=sys.stderr)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print(f"bench-restart: {e}", file=sys.stderr)
        sys.exit(1)
