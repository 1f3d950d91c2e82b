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


def start_and_time(binary: Path, workdir: Path, env: dict, timeout: float, check: bool = True, seed: bool = False) -> tuple[float, int]:
    """Seconds from spawn to /readyz 200, and VmHWM (KB) then; stops the service (SIGTERM)."""
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
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    return elapsed, hwm


def check_window(port: int, secret: str) -> None:
    """One more error, signed as Sentry signs it: the rebuilt window must make it High."""
    answer = post(port, secret, "error.created.1.json", "error")
    if answer.get("severity") != "high":
        raise Failure(f"an error after the restart was not High (rate window not rebuilt?): {answer}")


def post(port: int, secret: str, fixture: str, resource: str) -> dict:
    """The fixture with a fresh event id, signed as Sentry signs it; the service's answer."""
    body = json.loads((FIXTURES / fixture).read_bytes())
    for part in ("error", "event"):
        if part in body.get("data", {}):
            body["data"][part]["event_id"] = uuid.uuid4().hex
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
    args = p.parse_args()
    sizes = [2_000] if args.quick else (args.events or [50_000])
    bins = []
    for b in args.bin:
        label, _, path = b.rpartition("=")
        path = Path(path)
        if not path.is_file():
            raise Failure(f"no binary at {path}")
        bins.append((label or path.parent.parent.name, path))

    results = []
    print(f"{'binary':<10} {'events':>8} {'start':>5} {'ready s':>8} {'VmHWM MB':>9}", flush=True)
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
            filled = fill(workdir / "alerts.db", n, args.spread_seconds, facts)
            for s in range(1, args.starts + 1):
                secs, hwm = start_and_time(own, workdir, env, args.timeout)
                print(f"{label:<10} {n:>8} {s:>5} {secs:>8.2f} {hwm / 1024:>9.0f}", flush=True)
                results.append(
                    {"binary": label, "events": n, "start": s, "ready_s": secs, "vm_hwm_kb": hwm, "fill_s": filled}
                )
        finally:
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
