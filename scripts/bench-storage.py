#!/usr/bin/env python3
"""Storage benchmark (issue 10, target 6): bytes stored per event and per incident, and intake
req/s, for each binary given, side by side in one run.

    python3 scripts/bench-storage.py --bin old=/path/to/daae34c/paiid-alerts \\
        --bin new=target/release/paiid-alerts --events 50000
    python3 scripts/bench-storage.py --quick --bin target/debug/paiid-alerts   # CI smoke size

For each binary: a fresh database, `paiid-alerts serve` (durability as given, default the
service's default, `full`), and N webhooks of the full-size real payloads that carry an event
(`shared/fixtures/sentry`: error.created.1, event_alert.triggered.{1,2,4,5}, legacy_webhook.{1,2};
8.6 KB on average) posted over `--connections` keep-alive connections. Each body is the file as
it is (pretty-printed, unaltered) but for its event id, swapped for a fresh one of the same
length, and its issue id, one of N / `--events-per-issue` issues (same number of digits), so
that every request is a new event and the incidents are a known number. Sentry-signed (client
secret), the legacy plugin's with the URL token, all signed before the clock starts.

Then the service is stopped (SIGTERM), and the database file is checkpointed and VACUUMed:
bytes/event = file size / events, bytes/incident = file size / incidents; also the average
stored body and details per event, and (when the `zstd` CLI is there) what the details would
take compressed with the same dictionary. Server CPU per request is read from /proc.

The exit status is 1 when a request is not answered 2xx or an answered event is missing;
nothing is asserted about sizes or time (CI runs --quick so the script does not rot).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures" / "sentry"
if not FIXTURES.is_dir():
    FIXTURES = Path("/work/shared/fixtures/sentry")
DICT = REPO / "src" / "store" / "body" / "payloads.dict"
# (file, Sentry-Hook-Resource or None for the legacy plugin)
PAYLOADS = [
    ("error.created.1.json", "error"),
    ("event_alert.triggered.1.json", "event_alert"),
    ("event_alert.triggered.2.json", "event_alert"),
    ("event_alert.triggered.4.json", "event_alert"),
    ("event_alert.triggered.5.json", "event_alert"),
    ("legacy_webhook.1.json", None),
    ("legacy_webhook.2.json", None),
]
SECRET = "bench-secret"
TOKEN = "bench-token"


class Failure(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def event_and_issue(doc: dict) -> tuple[str, str]:
    """The payload's event id and issue id, as they appear in its text."""
    data = doc.get("data", {})
    ev = data.get("event") or data.get("error") or doc.get("event") or {}
    event_id = ev.get("event_id")
    issue = ev.get("issue_id") or doc.get("id")
    if not issue:  # older captures: only in the URLs
        m = re.search(r"/issues/([0-9]+)/", ev.get("web_url", ""))
        issue = m and m.group(1)
    if not event_id or not issue:
        raise Failure(f"no event/issue id in {list(doc)}")
    return str(event_id), str(issue)


def templates() -> list[tuple[bytes, str | None, str, str]]:
    out = []
    for name, resource in PAYLOADS:
        raw = (FIXTURES / name).read_bytes()
        event_id, issue = event_and_issue(json.loads(raw))
        out.append((raw, resource, event_id, issue))
    return out


def make_bodies(n: int, per_issue: int, run: int) -> list[tuple[bytes, str | None]]:
    """n bodies: the fixtures in turn, each with a fresh event id and one of n/per_issue issues."""
    tpl = templates()
    issues = max(1, n // per_issue)
    out = []
    for i in range(n):
        raw, resource, event_id, issue = tpl[i % len(tpl)]
        new_event = ("%x" % (run << 40 | i)).rjust(len(event_id), "0")[-len(event_id) :]
        k = i % issues
        # Same number of digits where the id is long enough (all but one, a 3-digit one).
        new_issue = str(10 ** (max(len(issue), 9) - 1) + k)
        body = raw.replace(event_id.encode(), new_event.encode())
        body = re.sub(rb"(?<![0-9])" + re.escape(issue.encode()) + rb"(?![0-9])", new_issue.encode(), body)
        out.append((body, resource))
    return out


def signed(bodies: list[tuple[bytes, str | None]]) -> list[tuple[str, bytes, dict]]:
    reqs = []
    for body, resource in bodies:
        headers = {"Content-Type": "application/json"}
        path = "/webhooks/sentry"
        if resource is None:
            path += f"?token={TOKEN}"
        else:
            headers["Sentry-Hook-Resource"] = resource
            headers["Sentry-Hook-Signature"] = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            headers["Sentry-Hook-Timestamp"] = str(int(time.time()))
        reqs.append((path, body, headers))
    return reqs


def cpu_ticks(pid: int) -> int:
    s = Path(f"/proc/{pid}/stat").read_text()
    f = s[s.rindex(")") + 2 :].split()
    return int(f[11]) + int(f[12])


def post_all(port: int, reqs: list, connections: int) -> tuple[float, list[str]]:
    """Posts every request over `connections` keep-alive connections; seconds, and failures."""
    errors: list[str] = []
    lock = threading.Lock()

    def worker(share: list) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for path, body, headers in share:
            try:
                conn.request("POST", path, body=body, headers=headers)
                r = conn.getresponse()
                text = r.read()
                if r.status not in (200, 202):
                    with lock:
                        errors.append(f"{r.status} {text[:200]!r}")
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    errors.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.close()

    threads = [threading.Thread(target=worker, args=(reqs[k::connections],)) for k in range(connections)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - t0, errors


def wait_ready(port: int, proc: subprocess.Popen, log: Path) -> None:
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise Failure(f"service exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() - t0 > 60:
            raise Failure("not ready within 60 s")
        time.sleep(0.02)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure_db(db: Path, workdir: Path) -> dict:
    con = sqlite3.connect(db)
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    cols = {r[1] for r in con.execute("PRAGMA table_info(events)")}
    m = {
        "events": q("SELECT COUNT(*) FROM events"),
        "incidents": q("SELECT COUNT(*) FROM incidents"),
        "deliveries": q("SELECT COUNT(*) FROM deliveries"),
        "body_avg": q("SELECT AVG(length(body)) FROM events"),
        "details_avg": q("SELECT AVG(length(details)) FROM events"),
        "compressed": q("SELECT COUNT(*) FROM events WHERE body_encoding = 1") if "body_encoding" in cols else 0,
    }
    m["details_zstd_avg"] = details_compressed(con, workdir)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("VACUUM")
    con.close()
    m["file_bytes"] = db.stat().st_size
    return m


def details_compressed(con: sqlite3.Connection, workdir: Path, sample: int = 200) -> float | None:
    """Average size of `details` compressed with the bodies' dictionary (zstd CLI), or None."""
    if not shutil.which("zstd") or not DICT.is_file():
        return None
    rows = [r[0] for r in con.execute(f"SELECT details FROM events WHERE details IS NOT NULL ORDER BY random() LIMIT {sample}")]
    sizes = []
    for d in rows:
        out = subprocess.run(["zstd", "-q", "-3", "-D", str(DICT), "-c"], input=d.encode(), capture_output=True, check=True).stdout
        sizes.append(len(out))
    return sum(sizes) / len(sizes) if sizes else None


def run_one(label: str, binary: Path, n: int, per_issue: int, connections: int, durability: str | None, run: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-storage-{label}-"))
    try:
        shutil.copy(REPO / "routing.yaml", workdir / "routing.yaml")
        reqs = signed(make_bodies(n, per_issue, run))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PAGERDUTY_", "SMTP_", "SENTRY_", "PUBLIC_URL"))}
        env.update(
            DATABASE_URL=f"sqlite://{workdir / 'bench.db'}",
            ROUTING_CONFIG=str(workdir / "routing.yaml"),
            SENTRY_CLIENT_SECRET=SECRET,
            SENTRY_WEBHOOK_TOKEN=TOKEN,
            LISTEN_ADDR=f"127.0.0.1:{port}",
            RUST_LOG="warn",
        )
        if durability:
            env["DATABASE_DURABILITY"] = durability
        log = workdir / "service.log"
        with open(log, "wb") as logf:
            proc = subprocess.Popen([str(binary), "serve"], env=env, cwd=workdir, stdin=subprocess.DEVNULL,
                                    stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                wait_ready(port, proc, log)
                c0 = cpu_ticks(proc.pid)
                secs, errors = post_all(port, reqs, connections)
                cpu_s = (cpu_ticks(proc.pid) - c0) / os.sysconf("SC_CLK_TCK")
            finally:
                stop(proc)
        if errors:
            raise Failure(f"{label}: {len(errors)} requests failed, first: {errors[0]}")
        m = measure_db(workdir / "bench.db", workdir)
        if m["events"] != n:
            raise Failure(f"{label}: {n} answered 2xx, {m['events']} events stored")
        m.update(label=label, secs=secs, rps=n / secs, cpu_us=cpu_s * 1e6 / n,
                 sent_avg=sum(len(b) for _, b, _ in reqs) / n)
        return m
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report(results: list[dict]) -> None:
    print(f"{'binary':<10} {'events':>7} {'incid.':>6} {'sent B/ev':>9} {'body B/ev':>9} {'details B/ev':>12} "
          f"{'details zstd':>12} {'file MB':>8} {'B/event':>8} {'B/incident':>10} {'req/s':>7} {'CPU us/req':>10}")
    for m in results:
        dz = f"{m['details_zstd_avg']:.0f}" if m["details_zstd_avg"] else "-"
        print(f"{m['label']:<10} {m['events']:>7} {m['incidents']:>6} {m['sent_avg']:>9.0f} {m['body_avg']:>9.0f} "
              f"{m['details_avg']:>12.0f} {dz:>12} {m['file_bytes'] / 1e6:>8.1f} {m['file_bytes'] / m['events']:>8.0f} "
              f"{m['file_bytes'] / max(m['incidents'], 1):>10.0f} {m['rps']:>7.0f} {m['cpu_us']:>10.0f}")
    labels = list(dict.fromkeys(m["label"] for m in results))
    if len(labels) >= 2:
        mean = lambda label, f: sum(f(m) for m in results if m["label"] == label) / sum(1 for m in results if m["label"] == label)  # noqa: E731
        per_event = lambda m: m["file_bytes"] / m["events"]  # noqa: E731
        per_incident = lambda m: m["file_bytes"] / max(m["incidents"], 1)  # noqa: E731
        a = labels[0]
        for b in labels[1:]:
            r = {name: mean(b, f) / mean(a, f) for name, f in [("bytes/event", per_event), ("bytes/incident", per_incident),
                                                               ("req/s", lambda m: m["rps"]), ("CPU/request", lambda m: m["cpu_us"])]}
            print(f"\n{b} / {a} (means over runs): " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True, help="LABEL=PATH or PATH (repeatable, run in order)")
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--events-per-issue", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--durability", default=None, help="DATABASE_DURABILITY (default: the service's)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each binary, order reversed each time")
    ap.add_argument("--quick", action="store_true", help="CI smoke size: 700 events")
    args = ap.parse_args()
    n = 700 if args.quick else args.events
    bins = []
    for b in args.bin:
        label, _, path = b.rpartition("=")
        bins.append((label or Path(path).parent.name, Path(path).resolve()))
    results = []
    try:
        for rep in range(args.repeat):
            order = bins if rep % 2 == 0 else list(reversed(bins))
            for label, path in order:
                print(f"[bench-storage] {label}: {n} events ...", file=sys.stderr, flush=True)
                results.append(run_one(label, path, n, args.events_per_issue, args.connections, args.durability, rep + 1))
    except Failure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    report(sorted(results, key=lambda m: [l for l, _ in bins].index(m["label"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
