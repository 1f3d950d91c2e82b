#!/usr/bin/env python3
"""Storm-of-many-issues benchmark (issue 10, target 7, bundling): how late incidents reach Slack
when many distinct issues page at once, and how long a lone alert takes to reach Slack.

    python3 scripts/bench-storm.py --bin before=/work/bundle-bins/before-daae34c \\
        --bin after=/work/target-rel/release/paiid-alerts --mode webhook --mode bot
    python3 scripts/bench-storm.py --quick --bin target/debug/paiid-alerts   # CI smoke size

A loopback Slack (127.0.0.1 only, in this process) answers incoming-webhook posts and the Web
API's chat.postMessage / chat.update, and enforces Slack's 1 message per second per channel:
a post (webhook, postMessage, thread reply) less than 0.95 s after the channel's last accepted
post gets HTTP 429 with `Retry-After: 1`. Updates are not posts and are not limited. It records
when each incident (a marker in its title, `Storm#007#`) first appears in an accepted post or
update.

For each binary and mode, a fresh service (durability `full`, the default) gets a routing file
that sends critical production errors to that Slack only (webhook mode, or bot mode with
SLACK_API_URL pointing here), with `storm: enabled: false` so that bundling is measured alone
(`--storms` adds a run with storm groups on, for binaries that know them).

1. Storm: one signed critical webhook every 200 ms, each a distinct Sentry issue (default 150).
   Reported: lateness of the last incident's first appearance in Slack (appearance minus the
   moment its webhook was sent), p50 and max over all, Slack calls (posts, updates, 429s), and
   whether every incident appeared.
2. Lone alerts: after the storm has drained, `--lone` (default 50) alerts, each sent when
   nothing is queued and the channel's rate limit is free again (1.2 s apart): time from sending
   the webhook to the first Slack call that arrives afterwards, p50/p99/max.

Nothing is asserted about time (CI runs `--quick` so the script does not rot); the exit status
is 1 when a service does not start or an incident never appears in Slack (storms off).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO.parent / "shared" / "fixtures" / "sentry" / "event_alert.triggered.4.json"
SECRET = "bench-storm-secret"
TOKEN = "xoxb-bench-storm"
CHANNEL_ID = "C0BENCH01"
MARKER = re.compile(r"Storm#(\d{3,})#")
# Slack's limit is "1 message per second per channel, short bursts allowed"; a strict 1.000 s
# would turn a post that left on time but arrived a few ms early (request jitter) into a 429.
MIN_GAP_S = 0.95


class Slack:
    """The loopback Slack: 1 post per second per channel, first appearance of each marker."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_post: float | None = None
        self.first_seen: dict[int, float] = {}
        self.calls: list[tuple[float, str, int]] = []  # (time, path, status)
        self.next_ts = 0
        server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        server.daemon_threads = True
        self.server = server
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handler(self):
        slack = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                at = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer, retry = slack.answer(self.path, body, at)
                self.send_response(status)
                if retry:
                    self.send_header("Retry-After", "1")
                ctype = "text/plain" if self.path == "/hook" else "application/json; charset=utf-8"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        return Handler

    def answer(self, path: str, body: bytes, at: float) -> tuple[int, bytes, bool]:
        text = body.decode("utf-8", "replace")
        is_post = path in ("/hook", "/api/chat.postMessage")
        with self.lock:
            if is_post and self.last_post is not None and at - self.last_post < MIN_GAP_S:
                self.calls.append((at, path, 429))
                if path == "/hook":
                    return 429, b"rate_limited", True
                return 429, b'{"ok":false,"error":"ratelimited"}', True
            if is_post:
                self.last_post = at
            self.calls.append((at, path, 200))
            for m in MARKER.finditer(text):
                self.first_seen.setdefault(int(m.group(1)), at)
            if path == "/hook":
                return 200, b"ok", False
            ts = self.ts_for(path, text)
            return 200, json.dumps({"ok": True, "channel": CHANNEL_ID, "ts": ts}).encode(), False

    def ts_for(self, path: str, text: str) -> str:
        if path.endswith("chat.update"):
            try:
                return json.loads(text).get("ts", "")
            except ValueError:
                return ""
        self.next_ts += 1
        return f"1760000000.{self.next_ts:06d}"

    def calls_since(self, t: float) -> list[tuple[float, str, int]]:
        with self.lock:
            return [c for c in self.calls if c[0] >= t]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def routing(slack: Slack, mode: str, storms: bool) -> str:
    if mode == "bot":
        line = f'bot_token: "{TOKEN}"'
    else:
        line = f'webhook_url: "http://127.0.0.1:{slack.port}/hook"'
    return f"""
channels:
  slack-alerts: {{ type: slack, channel: "#paiid-alerts", {line} }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts] }}
storm: {{ enabled: {"true" if storms else "false"} }}
delivery:
  retry_schedule: [1s, 2s, 5s]
  max_attempts: 20
  send_timeout: 5s
  slack_update_interval: 1h
"""


class Service:
    def __init__(self, binary: Path, workdir: Path, slack: Slack, mode: str, storms: bool) -> None:
        (workdir / "routing.yaml").write_text(routing(slack, mode, storms))
        self.port = free_port()
        env = dict(
            os.environ,
            LISTEN_ADDR=f"127.0.0.1:{self.port}",
            DATABASE_URL=f"sqlite://{workdir / 'alerts.db'}",
            ROUTING_CONFIG=str(workdir / "routing.yaml"),
            SENTRY_CLIENT_SECRET=SECRET,
            SLACK_API_URL=f"http://127.0.0.1:{slack.port}/api",
            RUST_LOG="warn",
        )
        self.log = open(workdir / "service.log", "ab")
        self.proc = subprocess.Popen(
            [str(binary), "serve"], env=env, cwd=workdir, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"{binary} did not start; see {workdir / 'service.log'}")
            time.sleep(0.01)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def critical(self, n: int) -> None:
        """A signed critical webhook for distinct Sentry issue `n`, titled with its marker."""
        body = json.loads(FIXTURE.read_bytes())
        event = body["data"]["event"]
        event["issue_id"] = str(880000 + n)
        event["event_id"] = uuid.uuid4().hex
        event["title"] = f"DatabaseDown Storm#{n:03d}# connection refused"
        raw = json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhooks/sentry", data=raw,
            headers={
                "Content-Type": "application/json",
                "Sentry-Hook-Resource": "event_alert",
                "Sentry-Hook-Signature": hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest(),
                "Sentry-Hook-Timestamp": str(int(time.time())),
                "Request-ID": str(uuid.uuid4()),
            },
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


args_verbose = False


def storm(svc: Service, slack: Slack, count: int, interval: float, drain_s: float) -> dict:
    sent: dict[int, float] = {}
    t0 = time.monotonic()
    for n in range(count):
        delay = t0 + n * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[n] = time.monotonic()
        svc.critical(n)
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline:
        with slack.lock:
            if all(n in slack.first_seen for n in sent):
                break
        time.sleep(0.05)
    time.sleep(1.5)  # let the last calls land before counting
    calls = slack.calls_since(t0)
    with slack.lock:
        seen = {n: slack.first_seen[n] - sent[n] for n in sent if n in slack.first_seen}
    minute = [c for c in calls if c[0] - t0 <= 60]
    last = count - 1
    return {
        "incidents": count,
        "appeared": len(seen),
        "last_late_s": round(seen[last], 2) if last in seen else None,
        "p50_late_s": round(statistics.median(seen.values()), 2) if seen else None,
        "max_late_s": round(max(seen.values()), 2) if seen else None,
        "posts": sum(1 for c in calls if c[2] == 200 and not c[1].endswith("chat.update")),
        "updates": sum(1 for c in calls if c[2] == 200 and c[1].endswith("chat.update")),
        "rejected_429": sum(1 for c in calls if c[2] == 429),
        "calls_first_minute": sum(1 for c in minute if c[2] == 200),
        "late_by_incident_s": [round(seen.get(n, -1), 2) for n in sent] if args_verbose else None,
    }


def lone(svc: Service, slack: Slack, count: int, first: int) -> dict:
    """Alerts sent one at a time with nothing queued: webhook -> first Slack call (ms)."""
    out = []
    for i in range(count):
        time.sleep(1.2)  # the channel's token is free again and nothing is waiting
        t = time.monotonic()
        svc.critical(first + i)
        deadline = t + 30
        while time.monotonic() < deadline:
            calls = slack.calls_since(t)
            if calls:
                out.append((calls[0][0] - t) * 1000)
                break
            time.sleep(0.0005)
    return {
        "alerts": count,
        "answered": len(out),
        "p50_ms": round(pct(out, 50), 1) if out else None,
        "p99_ms": round(pct(out, 99), 1) if out else None,
        "max_ms": round(max(out), 1) if out else None,
    }


def run(label: str, binary: Path, mode: str, storms: bool, args) -> dict:
    slack = Slack()
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as d:
        svc = Service(binary, Path(d), slack, mode, storms)
        try:
            result = {"bin": label, "mode": mode, "storms": storms}
            if args.incidents > 0:
                result["storm"] = storm(svc, slack, args.incidents, args.interval, args.drain)
            result["lone"] = lone(svc, slack, args.lone, args.incidents)
        finally:
            svc.stop()
            slack.stop()
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", action="append", required=True, help="[label=]path of a paiid-alerts binary")
    p.add_argument("--mode", action="append", choices=["webhook", "bot"], help="Slack mode (default webhook)")
    p.add_argument("--incidents", type=int, default=150, help="storm size (0: lone alerts only)")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between storm webhooks")
    p.add_argument("--lone", type=int, default=50, help="isolated alerts timed after the storm")
    p.add_argument("--drain", type=float, default=240, help="max seconds to wait for the storm to appear")
    p.add_argument("--storms", action="store_true", help="also run with storm groups on")
    p.add_argument("--quick", action="store_true", help="CI smoke size: 15 incidents, 5 lone alerts")
    p.add_argument("--verbose", action="store_true", help="also each incident's lateness")
    args = p.parse_args()
    global args_verbose
    args_verbose = args.verbose
    if args.quick:
        args.incidents, args.lone, args.drain = 15, 5, 60
    failed = False
    for spec in args.bin:
        label, _, path = spec.rpartition("=")
        binary = Path(path).resolve()
        for mode in args.mode or ["webhook"]:
            for storms in [False, True] if args.storms else [False]:
                r = run(label or binary.name, binary, mode, storms, args)
                print(json.dumps(r), flush=True)
                if not storms and r.get("storm", {}).get("appeared", 0) < args.incidents:
                    failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
