#!/usr/bin/env python3
"""Escalation lateness benchmark (issue 10, target 5): N critical incidents whose escalation
deadlines fall evenly over S seconds, fired by `paiid-alerts serve` on the real clock while signed
webhooks arrive at a fraction (default half) of the binary's own maximum intake rate.

    python3 scripts/bench-escalation.py --bin before=/work/target-escbefore/release/paiid-alerts \\
        --bin after=/work/target-rel/release/paiid-alerts --incidents 100000 --spread 60
    python3 scripts/bench-escalation.py --quick --bin target/debug/paiid-alerts   # CI smoke size

For each binary, in a fresh directory, at the default durability (`full`) with the committed
routing.yaml (critical: escalate after 15 minutes to pagerduty-oncall and eng-manager-email):

1. The binary creates the database and is sent one signed critical webhook (`event_alert` fixture
   4): the template incident. With wrk installed, its maximum intake is measured there
   (`wrk -t2 -c32`, `--max-seconds`, signed 1.7 KB `event_alert` bodies, every one a new event
   over 1,000 Sentry issues, as scripts/bench-intake.sh sends them), then the pacing for the
   chosen fraction is calibrated (each of 32 wrk connections waits between requests; wrk has
   no rate of its own). Stopped.
2. N copies of the template incident are written with SQL, triggered and unacknowledged, their
   deadlines spread evenly from `--lead` seconds after now over `--spread` seconds.
3. The binary is started again (timed to `/readyz`) and the paced load runs, in 5-second wrk
   rounds whose wait is corrected by the rate the last one reached, until every copy has fired. PagerDuty and email have no secrets here, so they are the log channel,
   which stores each message as delivered: every escalation still goes through the outbox.
4. Stopped, the file is read: per seeded incident exactly one `escalations` row, one `escalated`
   timeline entry and exactly one escalation delivery to each of the two channels (zero
   duplicates, zero missing); lateness percentiles from `escalations.lateness_ms` (the scheduler's
   clock read once it holds the write lock, minus the deadline; the commit that follows is not
   included).

Columns: `load r/s` is the paced load over the whole run, on the wall clock (start, the
pacing's first rounds and the pauses between rounds included); `fire r/s` over the rounds that
ran wholly between the first and the last deadline, on wrk's clock: the load the target names.

Without wrk (or with --quick) the load is a small Python sender at `--rate` requests/s. Nothing
about time is asserted; the exit status is 1 when a service fails, a webhook is refused, or an
escalation is missing or duplicated.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import importlib.util  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_restart", Path(__file__).resolve().parent / "bench-restart.py")
restart = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(restart)

REPO = restart.REPO
FIXTURES = restart.FIXTURES
Failure = restart.Failure
SECRET = "bench-secret"
LOAD_FIXTURE = FIXTURES / "event_alert.triggered.4.json"

WRK_LUA = r"""
local BODIES = os.getenv("BODIES")
local THREADS = tonumber(os.getenv("THREADS") or "2")
local DELAY = tonumber(os.getenv("DELAY_MS") or "0")
local counter = 0
function setup(thread) counter = counter + 1; thread:set("tid", counter) end
local reqs, nreq, idx = {}, 0, 0
function init(args)
  local me, line_no = (tid or 1) - 1, 0
  for line in io.lines(BODIES) do
    if line_no % THREADS == me then
      local tab = line:find("\t", 1, true)
      nreq = nreq + 1
      reqs[nreq] = wrk.format("POST", "/webhooks/sentry", {
        ["Content-Type"] = "application/json",
        ["Sentry-Hook-Resource"] = "event_alert",
        ["Sentry-Hook-Signature"] = line:sub(1, tab - 1),
      }, line:sub(tab + 1))
    end
    line_no = line_no + 1
  end
end
function request() idx = idx % nreq + 1; return reqs[idx] end
if DELAY > 0 then function delay() return DELAY end end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d mean_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), math.floor(latency.mean),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def bodies(path: Path, count: int, round_no: int, issues: int = 1000) -> None:
    """`count` lines of `hex(hmac)<TAB>body`: the critical fixture cut to about 1.7 KB (as
    bench-intake.sh does), each a new event, over `issues` Sentry issues."""
    doc = json.loads(LOAD_FIXTURE.read_bytes())
    ev = doc["data"]["event"]
    for k in ("stacktrace", "modules", "extra", "_metrics", "nodestore_insert", "hashes", "contexts"):
        ev.pop(k, None)
    for k in ("headers", "cookies", "query_string"):
        ev.get("request", {}).pop(k, None)
    ev.get("user", {}).pop("geo", None)
    ev["event_id"], ev["issue_id"] = "__EVENT__", "__ISSUE__"
    template = json.dumps(doc, separators=(",", ":"))
    with open(path, "w") as f:
        for i in range(count):
            body = template.replace("__EVENT__", "%04x%028x" % (round_no, i)).replace(
                "__ISSUE__", str(4300000000 + i % issues)
            )
            f.write(hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest() + "\t" + body + "\n")


def wrk(port: int, workdir: Path, seconds: float, conns: int, delay_ms: float, round_no: int, rate_hint: float) -> dict:
    """Runs wrk for `seconds`; its BENCH line as a dict (rps added)."""
    lua = workdir / "load.lua"
    lua.write_text(WRK_LUA)
    path = workdir / f"bodies.{round_no}"
    bodies(path, int(rate_hint * seconds * 1.2) + 1000, round_no)
    env = dict(os.environ, BODIES=str(path), THREADS="2", DELAY_MS=str(int(round(delay_ms))))
    out = subprocess.run(
        ["wrk", "-t2", f"-c{conns}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(lua), f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    path.unlink()
    m = re.search(r"^BENCH (.*)$", out, re.M)
    if not m:
        raise Failure(f"no result from wrk: {out}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


class PyLoad:
    """A small paced sender for the smoke run (no wrk): `rate` signed webhooks a second."""

    def __init__(self, port: int, workdir: Path, rate: float, seconds: float):
        self.port, self.rate, self.stop, self.sent, self.errors = port, rate, threading.Event(), 0, 0
        self.elapsed = 0.0
        path = workdir / "bodies.py"
        bodies(path, int(rate * seconds * 2) + 100, 7)
        self.lines = path.read_text().splitlines()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop.is_set() and self.sent < len(self.lines):
            sig, body = self.lines[self.sent].split("\t", 1)
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/webhooks/sentry", data=body.encode(),
                headers={"Content-Type": "application/json", "Sentry-Hook-Resource": "event_alert",
                         "Sentry-Hook-Signature": sig},
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    r.read()
            except (urllib.error.URLError, OSError):
                self.errors += 1
            self.sent += 1
            self.elapsed = time.monotonic() - t0
            time.sleep(max(0.0, t0 + self.sent / self.rate - time.monotonic()))


def spawn(binary: Path, workdir: Path, env: dict, port: int):
    log = open(workdir / "service.log", "ab")
    proc = subprocess.Popen(
        [str(binary), "serve"], env=dict(env, LISTEN_ADDR=f"127.0.0.1:{port}"), cwd=workdir,
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    return proc


def wait_ready(proc, port: int, timeout: float) -> float:
    t0 = time.monotonic()
    while not restart.ready(port):
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            raise Failure(f"service not ready (exit {proc.poll()})")
        time.sleep(0.005)
    return time.monotonic() - t0


def stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


CONNS = 32
SEGMENT_S = 5


def next_delay(delay: float, target: float, got: float) -> float:
    """Per connection a request and its wait take CONNS/rate seconds: move the wait by the gap."""
    return max(0.0, delay + CONNS * 1000 / target - CONNS * 1000 / max(got, 1.0))


def calibrate(port: int, workdir: Path, args) -> tuple[float, float]:
    """(max req/s at 32 connections, a first wait per connection for the target fraction)."""
    top = wrk(port, workdir, args.max_seconds, 32, 0, 1, 15_000)
    target = top["rps"] * args.fraction
    delay = max(0.0, CONNS * 1000 / target - top["mean_us"] / 1000)
    got = wrk(port, workdir, 3, CONNS, delay, 2, target)
    return top["rps"], next_delay(delay, target, got["rps"])


def paced(port: int, workdir: Path, target: float, delay: float, stop: threading.Event, out: dict) -> None:
    """wrk in 5-second rounds until `stop`, each round's wait corrected by the last one's rate
    (wrk paces no rate of its own: a closed loop slows down when the service does)."""
    t0, rounds, requests, errors, p99 = time.monotonic(), 0, 0, 0, 0
    spans = []  # (wall-clock start ms, end ms, requests, wrk's own seconds) of each round
    while not stop.is_set():
        rounds += 1
        began = time.time() * 1000
        r = wrk(port, workdir, SEGMENT_S, CONNS, delay, 10 + rounds, target)
        spans.append((began, time.time() * 1000, r["requests"], r["duration_us"] / 1e6))
        requests, errors, p99 = requests + r["requests"], errors + r["errors"], max(p99, r["p99_us"])
        print(f"  load round {rounds}: wait {delay:.2f} ms/request/connection -> {r['rps']:.0f} req/s "
              f"(target {target:.0f}), mean {r['mean_us'] / 1000:.1f} ms", file=sys.stderr, flush=True)
        delay = next_delay(delay, target, r["rps"])
    out.update(requests=requests, errors=errors, rps=requests / (time.monotonic() - t0), p99_us=p99, spans=spans)


def firing_rate(spans: list, first_due_ms: int, last_due_ms: int) -> float | None:
    """req/s over the rounds that ran wholly while deadlines fell due (None: no such round), on
    wrk's own clock: between two rounds the script writes the next bodies and sends nothing."""
    inside = [(n, secs) for a, b, n, secs in spans if a >= first_due_ms and b <= last_due_ms]
    took = sum(secs for _, secs in inside)
    return sum(n for n, _ in inside) / took if took > 0 else None


def seed(db: Path, n: int, first_due_ms: int, spread_ms: int) -> tuple[int, int]:
    """n copies of the template incident, deadlines evenly over [first_due, first_due + spread)."""
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("BEGIN")
    (tmpl,) = con.execute("SELECT id FROM incidents WHERE sentry_issue_id = ?", (restart.SEED_ISSUE,)).fetchone()
    (inc0,) = con.execute("SELECT MAX(id) FROM incidents").fetchone()
    now = int(time.time() * 1000)
    restart.copy_rows(con, "incidents", f"id = {tmpl}", n, {
        "id": f"{inc0} + x",
        "incident_key": "'bench-due-' || x",
        "sentry_issue_id": "'bench-due-' || x",
        "state": "'triggered'",
        "escalation_step": "0",
        "opened_at": f"{now} - 900000",
        "next_escalation_at": f"{first_due_ms} + (x - 1) * {spread_ms} / {n}",
    })
    con.execute("COMMIT")
    con.close()
    # Written with synchronous=OFF: flush it now, not during the measured run.
    os.sync()
    return inc0 + 1, inc0 + n


def analyse(db: Path, lo: int, hi: int) -> dict:
    """Exactly once per incident and channel; lateness percentiles (ms)."""
    con = sqlite3.connect(db)
    n = hi - lo + 1
    q = lambda sql: con.execute(sql, (lo, hi)).fetchall()  # noqa: E731
    late = sorted(r[0] for r in q("SELECT lateness_ms FROM escalations WHERE incident_id BETWEEN ? AND ?"))
    per_inc = q("SELECT COUNT(*) FROM escalations WHERE incident_id BETWEEN ? AND ? GROUP BY incident_id")
    pairs = q(
        "SELECT channel, status, COUNT(*) FROM deliveries WHERE incident_id BETWEEN ? AND ? AND kind = 'escalation' "
        "GROUP BY incident_id, channel"
    )
    timeline = q("SELECT COUNT(*) FROM timeline WHERE incident_id BETWEEN ? AND ? AND kind = 'escalated'")[0][0]
    con.close()
    by_channel: dict[str, int] = {}
    dup = 0
    for channel, _status, c in pairs:
        by_channel[channel] = by_channel.get(channel, 0) + 1
        dup += c - 1
    found = {
        "fired": len(late),
        "incidents": len(per_inc),
        "duplicate_escalations": sum(c - 1 for (c,) in per_inc),
        "timeline": timeline,
        "pagerduty": by_channel.get("pagerduty-oncall", 0),
        "email": by_channel.get("eng-manager-email", 0),
        "duplicate_deliveries": dup,
    }
    want = {"fired": n, "incidents": n, "duplicate_escalations": 0, "timeline": n, "pagerduty": n, "email": n,
            "duplicate_deliveries": 0}
    if found != want:
        raise Failure(f"not exactly once: found {found}, want {want}")
    pct = lambda p: late[min(len(late) - 1, int(p * len(late)))]  # noqa: E731
    return {"p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": late[-1], **found}


def fired(db: Path, lo: int, hi: int) -> int:
    return restart.fired_count(db, lo, hi)


def run_one(label: str, binary: Path, args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-escalation-"))
    try:
        own = workdir / "paiid-alerts"
        shutil.copy2(binary, own)
        shutil.copy2(REPO / "routing.yaml", workdir / "routing.yaml")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "DATABASE_URL": f"sqlite://{workdir / 'alerts.db'}",
            "ROUTING_CONFIG": str(workdir / "routing.yaml"),
            "SENTRY_CLIENT_SECRET": SECRET,
            "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/services/T/B/X",
            "RUST_LOG": os.environ.get("BENCH_RUST_LOG", "warn"),
        }
        port = restart.free_port()
        proc = spawn(own, workdir, env, port)
        try:
            wait_ready(proc, port, args.timeout)
            restart.post(port, SECRET, "event_alert.triggered.4.json", "event_alert", issue=restart.SEED_ISSUE)
            use_wrk = shutil.which("wrk") is not None and not args.quick
            top, delay = calibrate(port, workdir, args) if use_wrk else (None, 0.0)
        finally:
            stop(proc)
        db = workdir / "alerts.db"
        first_due = int(time.time() * 1000) + int(args.lead * 1000)
        lo, hi = seed(db, args.incidents, first_due, int(args.spread * 1000))
        proc = spawn(own, workdir, env, port)
        try:
            ready_s = wait_ready(proc, port, args.timeout)
            load_s = args.lead + args.spread + 5
            if use_wrk:
                out: dict = {}
                done = threading.Event()
                t = threading.Thread(target=paced, args=(port, workdir, top * args.fraction, delay, done, out))
                t.start()
            else:
                py = PyLoad(port, workdir, args.rate, load_s)
                py.thread.start()
            deadline = time.monotonic() + load_s + args.timeout
            while fired(db, lo, hi) < hi - lo + 1:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise Failure(f"{label}: only {fired(db, lo, hi)} of {hi - lo + 1} escalations fired")
                time.sleep(0.5)
            if use_wrk:
                done.set()
                t.join()
                load = out
                if "rps" not in load:
                    raise Failure(f"{label}: the load generator failed (see above)")
            else:
                py.stop.set()
                py.thread.join()
                load = {"requests": py.sent, "errors": py.errors, "rps": py.sent / max(py.elapsed, 1e-3), "p99_us": 0}
            time.sleep(1)
        finally:
            stop(proc)
        if load["errors"]:
            raise Failure(f"{label}: {load['errors']} webhooks failed under load")
        last_due = first_due + int(args.spread * 1000)
        fire_rps = firing_rate(load.get("spans", []), first_due, last_due)
        result = {"binary": label, "ready_s": ready_s, "max_rps": top, "load_rps": load["rps"], "fire_rps": fire_rps,
                  "load_p99_ms": load["p99_us"] / 1000, **analyse(db, lo, hi)}
        return result
    finally:
        # KEEP_TMP=1 keeps the directory (database, service.log) for a closer look.
        if os.environ.get("KEEP_TMP"):
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", action="append", required=True, help="[label=]path to paiid-alerts (repeatable)")
    p.add_argument("--incidents", type=int, default=100_000)
    p.add_argument("--spread", type=float, default=60.0, help="seconds over which the deadlines fall")
    p.add_argument("--lead", type=float, default=10.0, help="seconds from seeding to the first deadline")
    p.add_argument("--fraction", type=float, default=0.5, help="of the measured maximum intake rate")
    p.add_argument("--max-seconds", type=float, default=5.0, help="length of the maximum-rate wrk run")
    p.add_argument("--rate", type=float, default=20.0, help="req/s of the Python sender (without wrk)")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--quick", action="store_true", help="CI smoke size: 300 incidents over 5 s, Python sender")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.quick:
        args.incidents, args.spread, args.lead = 300, 5.0, 3.0
    results = []
    hdr = (f"{'binary':<8} {'ready s':>7} {'max r/s':>8} {'load r/s':>8} {'fire r/s':>8} {'load p99':>8} "
           f"{'fired':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    print(hdr, flush=True)
    for b in args.bin:
        label, _, path = b.rpartition("=")
        path = Path(path)
        if not path.is_file():
            raise Failure(f"no binary at {path}")
        r = run_one(label or path.parent.parent.name, path, args)
        top = "-" if r["max_rps"] is None else f"{r['max_rps']:.0f}"
        fire = "-" if r["fire_rps"] is None else f"{r['fire_rps']:.0f}"
        print(
            f"{r['binary']:<8} {r['ready_s']:>7.2f} {top:>8} {r['load_rps']:>8.0f} {fire:>8} {r['load_p99_ms']:>8.1f} "
            f"{r['fired']:>7} {r['p50_ms']:>7} {r['p99_ms']:>7} {r['max_ms']:>7}",
            flush=True,
        )
        results.append(r)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (Failure, subprocess.CalledProcessError) as e:
        print(f"bench-escalation: {e}", file=sys.stderr)
        sys.exit(1)
