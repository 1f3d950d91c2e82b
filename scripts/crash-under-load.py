#!/usr/bin/env python3
"""Crash under load: SIGKILL paiid-alerts again and again while signed Sentry webhooks keep
arriving, restart it on the same SQLite file each time, then check what the README promises.

    python3 scripts/crash-under-load.py                 # 24 kills within 120 s, then settle
    python3 scripts/crash-under-load.py --quick         # 5 kills within 30 s (for CI)
    python3 scripts/crash-under-load.py --kills 40 --seconds 200 --seed 7 --keep

What it runs, all on 127.0.0.1 (random ports), all stopped by PID on exit, Ctrl-C or failure:
- loopback peers written here (Python standard library only): a Slack incoming webhook, the
  PagerDuty Events API v2 and an SMTP server. They accept what the vendors accept (the contracts
  tests/support/fake_slack.rs and fake_pagerduty.rs enforce, in short) and record what arrives;
- the service (`--bin`, built with `cargo build` when missing) with its own routing.yaml:
  critical incidents escalate after 2 s, high ones after 3 s, so that escalations fall due while
  the service is up, down, and starting;
- a steady webhook load built from the real fixtures in ../shared/fixtures/sentry/ (event
  alerts, errors, issue created / resolved, metric alerts, plus API acknowledgements), signed
  with HMAC-SHA256 (`Sentry-Hook-Signature`). Every payload carries a unique marker: a fresh
  Sentry `event_id`, or for payloads without one an extra top-level field, whose body hash is
  then the service's dedup key. A payload that gets no 2xx is resent later, as Sentry does.

The service is SIGKILLed at random moments: while serving, and (at least `--kills / 5` times)
during start-up, before `/readyz` answers 200. Load continues while it is down or starting
(refused connections and 503s are expected; they are not 2xx). After the last kill it is
started once more, the load stops, and the script waits (at most `--settle-seconds`) until no
escalation deadline is pending and no delivery is waiting, then stops it with SIGTERM.

Checks, on the `events`, `timeline`, `escalations`, `deliveries` and `delivery_attempts` tables
and on what the peers received; any violation makes the exit status 1:
- every webhook answered 2xx is stored in `events` (by its marker), and no Sentry event is
  counted twice;
- every escalation that fell due (an episode still unacknowledged and unresolved at
  opened + window) fired exactly once: one `escalations` row, one `escalated` timeline entry and
  one escalation delivery per `escalate_to` channel; none fired for an episode that ended before
  its deadline or has no escalation policy;
- every delivery ended `delivered` (none dead or stuck), and each one that was really sent
  reached its loopback peer at least once (matched by incident, episode, kind and channel).

On a violation the database, the service logs, the routing file and a JSON report are copied to
`--evidence-dir/<time>/` (default /tmp/crash-evidence).

`--inject FAULT` tampers with the results after a run (drops a stored event, adds a second
escalation step, drops a fired escalation, forgets a Slack message) to show that each check
fails when it should. `--seed` fixes the harness's choices, not the threads' timing.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import socketserver
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Where tests/support finds them too.
DEFAULT_FIXTURES = REPO.parent / "shared" / "fixtures" / "sentry"

SLACK_WEBHOOK_PATH = "/services/T000/B000/XXXX"
PAGERDUTY_PATH = "/v2/enqueue"
# 32 characters, as PagerDuty integration keys are.
ROUTING_KEY = "CrashUnderLoadRoutingKey00000032"
assert len(ROUTING_KEY) == 32

# Escalation windows of the harness's routing.yaml, in ms (checked against the frozen policies).
WINDOWS_MS = {"critical": 2000, "high": 3000}
# An episode that ended (acknowledged / resolved) within this long after its deadline may or may
# not have escalated: the scheduler fires a few ms late, and after a restart an intake request
# can be committed just before start-up recovery fires what fell due while the service was down.
BORDERLINE_MS = 1500

# Slack text gets a machine-readable first line: a webhook message otherwise names neither its
# episode nor its kind. Everything else is the default template.
ROUTING_YAML = """\
# Written by scripts/crash-under-load.py: the committed routing.yaml with short windows.
channels:
  slack-alerts:      {{ type: slack, channel: "#paiid-alerts", webhook_url: "${{SLACK_WEBHOOK_URL}}" }}
  pagerduty-oncall:  {{ type: pagerduty, routing_key: "${{PAGERDUTY_ROUTING_KEY}}" }}
  trading-ops-email: {{ type: email, to: ["trading-ops@paiid.ai"] }}
  eng-manager-email: {{ type: email, to: ["eng-manager@paiid.ai"] }}
environments:
  production: [production, prod]
rules:
  - name: critical-production-errors
    severity: critical
    when: {{ environment: production, level: [error, fatal] }}
  - name: other-errors
    severity: high
    when: {{ level: [error, fatal] }}
severities:
  critical: {{ notify: [slack-alerts],      escalate_after: {critical}ms, escalate_to: [pagerduty-oncall, eng-manager-email] }}
  high:     {{ notify: [trading-ops-email], escalate_after: {high}ms, escalate_to: [slack-alerts, eng-manager-email] }}
post_mortem_to: [slack-alerts]
# Each incident escalates on its own here, so the checker can hold every deadline to account;
# storms (a group's deadline stands for its members') survive restarts in tests/storms.rs.
storm: {{ enabled: false }}
delivery:
  retry_schedule: [200ms, 500ms, 1s]
  max_attempts: 40
  send_timeout: 2s
  slack_update_interval: 30s
templates:
  slack_text: |-
    crash-test-marker {{{{ dedup_key }}}} {{{{ kind }}}}
    {{% include "default/slack_text" %}}
""".format(critical=WINDOWS_MS["critical"], high=WINDOWS_MS["high"])

EMAIL_CHANNELS = {"trading-ops@paiid.ai": "trading-ops-email", "eng-manager@paiid.ai": "eng-manager-email"}
PAGERDUTY_ACTION = {
    "opened": "trigger",
    "severity_raised": "trigger",
    "escalation": "trigger",
    "test": "trigger",
    "acknowledged": "acknowledge",
    "resolved": "resolve",
}
MARKER_RE = re.compile(r"crash-test-marker (paiid-alerts-\d+-\d+) ([a-z_]+)")
# A bundle (several incidents due together, one message) lists each incident with its page link.
BUNDLE_LINK_RE = re.compile(r"/incidents/(\d+)\|#\d+>")
# Rows a bundle may carry (notify::bundle::may_join).
BUNDLED_KINDS = {"opened", "escalation", "severity_raised"}
DEDUP_RE = re.compile(r"^paiid-alerts-(\d+)-(\d+)$")


def now_ms() -> int:
    return int(time.time() * 1000)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# Loopback peers
# ---------------------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[dict] = []

    def add(self, item: dict) -> None:
        with self.lock:
            self.items.append(item)

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.items)


class HttpPeer:
    """A threaded HTTP server whose `handle(path, headers, body)` returns (status, type, body, record)."""

    def __init__(self, name: str, max_delay: float) -> None:
        self.name = name
        self.recorder = Recorder()
        self.max_delay = max_delay
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                status, ctype, out, record = peer.handle(self.path, self.headers, body)
                record.update({"at": now_ms(), "path": self.path, "status": status})
                peer.recorder.add(record)
                # A little latency, so that some kills land between "received" and "answered":
                # the service must then send again (at least once), never lose the message.
                time.sleep(random.uniform(0.0, peer.max_delay))
                data = out.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                # The service was killed before reading our answer: expected, not worth a trace.
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name=name, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def handle(self, path, headers, body):  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def is_json_type(headers) -> bool:
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    return ctype == "application/json"


class SlackPeer(HttpPeer):
    """An incoming webhook: 200 `ok`, or Slack's plain-text error codes."""

    def handle(self, path, headers, body):
        record = {"accepted": False}
        if path != SLACK_WEBHOOK_PATH:
            return 404, "text/html", "no_service", record
        if not is_json_type(headers):
            return 400, "text/html", "invalid_payload", record
        try:
            msg = json.loads(body)
        except ValueError:
            return 400, "text/html", "invalid_payload", record
        if not isinstance(msg, dict):
            return 400, "text/html", "invalid_payload", record
        text = msg.get("text") or ""
        blocks = msg.get("blocks")
        if not text.strip() and not (isinstance(blocks, list) and blocks):
            return 400, "text/html", "no_text", record
        if len(text) > 40_000:
            return 400, "text/html", "msg_too_long", record
        m = MARKER_RE.search(text)
        record.update(accepted=True, dedup_key=m.group(1) if m else None, kind=m.group(2) if m else None)
        if not m:
            record["bundle"] = sorted({int(i) for i in BUNDLE_LINK_RE.findall(json.dumps(blocks))})
        return 200, "text/html", "ok", record


class PagerDutyPeer(HttpPeer):
    """Events API v2: 202 with a dedup key, or 400 listing what is wrong."""

    def handle(self, path, headers, body):
        record = {"accepted": False}
        if path != PAGERDUTY_PATH:
            return 404, "application/json", '{"status":"not found"}', record
        errors = []
        event = None
        if not is_json_type(headers):
            errors.append("Content-Type must be application/json")
        else:
            try:
                event = json.loads(body)
            except ValueError:
                event = None
            if not isinstance(event, dict):
                errors.append("Request body is not a valid JSON object")
        if event is not None and isinstance(event, dict):
            if event.get("routing_key") != ROUTING_KEY:
                errors.append("'routing_key' is not a valid key")
            action = event.get("event_action")
            key = event.get("dedup_key")
            if action == "trigger":
                payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}
                for k in ("summary", "source"):
                    if not str(payload.get(k) or "").strip():
                        errors.append(f"'payload.{k}' is missing or blank")
                if payload.get("severity") not in ("critical", "error", "warning", "info"):
                    errors.append("'payload.severity' must be one of critical, error, warning, info")
            elif action in ("acknowledge", "resolve"):
                if not str(key or "").strip():
                    errors.append("'dedup_key' is required for acknowledge and resolve")
            else:
                errors.append("'event_action' must be one of trigger, acknowledge, resolve")
            if not isinstance(key, str) or not key:
                errors.append("harness: expected a dedup_key on every event")
        if errors:
            out = json.dumps({"status": "invalid event", "message": "Event object is invalid", "errors": errors})
            record["errors"] = errors
            return 400, "application/json", out, record
        record.update(accepted=True, dedup_key=event["dedup_key"], action=event["event_action"])
        out = json.dumps({"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]})
        return 202, "application/json", out, record


class SmtpPeer:
    """A plain SMTP server (no TLS, no AUTH) that records each message's X-PaiiD-* headers."""

    def __init__(self, max_delay: float) -> None:
        self.recorder = Recorder()
        self.max_delay = max_delay
        peer = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 30

            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self) -> None:
                try:
                    self.session()
                except (OSError, socket.timeout):
                    pass

            def session(self) -> None:
                self.reply("220 crash-sink.test ESMTP")
                mail_from, rcpts = None, []
                while True:
                    raw = self.rfile.readline(65536)
                    if not raw:
                        return
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    verb = line.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.reply("250-crash-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760")
                    elif verb == "HELO":
                        self.reply("250 crash-sink.test")
                    elif verb == "MAIL":
                        mail_from, rcpts = address(line), []
                        self.reply("250 2.1.0 OK")
                    elif verb == "RCPT":
                        if mail_from is None:
                            self.reply("503 5.5.1 MAIL first")
                        else:
                            rcpts.append(address(line))
                            self.reply("250 2.1.5 OK")
                    elif verb == "DATA":
                        if not rcpts:
                            self.reply("503 5.5.1 RCPT first")
                            continue
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        content = self.read_data()
                        if content is None:
                            return
                        peer.record(mail_from, rcpts, content)
                        time.sleep(random.uniform(0.0, peer.max_delay))
                        mail_from, rcpts = None, []
                        self.reply("250 2.0.0 OK: queued")
                    elif verb == "RSET":
                        mail_from, rcpts = None, []
                        self.reply("250 2.0.0 OK")
                    elif verb == "NOOP":
                        self.reply("250 2.0.0 OK")
                    elif verb == "QUIT":
                        self.reply("221 2.0.0 Bye")
                        return
                    else:
                        self.reply("502 5.5.2 Command not recognized")

            def read_data(self):
                lines = []
                while True:
                    raw = self.rfile.readline(1 << 20)
                    if not raw:
                        return None
                    if raw in (b".\r\n", b".\n"):
                        return b"".join(lines)
                    if raw.startswith(b".."):
                        raw = raw[1:]
                    lines.append(raw)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="smtp", daemon=True)
        self.thread.start()

    def record(self, mail_from, rcpts, content: bytes) -> None:
        msg = email.message_from_bytes(content, policy=email.policy.default)
        self.recorder.add(
            {
                "at": now_ms(),
                "accepted": True,
                "mail_from": mail_from,
                "rcpt_tos": rcpts,
                "incident": str(msg.get("X-PaiiD-Incident", "")),
                "kind": str(msg.get("X-PaiiD-Kind", "")),
                "dedup_key": str(msg.get("X-PaiiD-Dedup-Key", "")),
                "bundle": [int(i) for i in str(msg.get("X-PaiiD-Incidents", "")).split(",") if i.strip()],
                "subject": str(msg.get("Subject", "")),
            }
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def address(line: str) -> str:
    m = re.search(r"<([^>]*)>", line)
    return (m.group(1) if m else line.split(":", 1)[-1].strip()).lower()


# ---------------------------------------------------------------------------------------------
# The service
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get_status(port: int, path: str, timeout: float = 0.5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@dataclass
class Run:
    n: int
    pid: int
    spawned_at: int
    ready_at: int | None = None
    ended_at: int | None = None
    how: str = ""  # sigkill-serving | sigkill-startup | sigterm | exited
    exit_code: int | None = None


class Service:
    def __init__(self, binary: Path, workdir: Path, env: dict, port: int) -> None:
        self.binary = binary
        self.workdir = workdir
        self.env = env
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.run: Run | None = None
        self.runs: list[Run] = []

    def log_path(self, n: int) -> Path:
        return self.workdir / f"service-{n:03d}.log"

    def start(self) -> Run:
        n = len(self.runs) + 1
        env = dict(self.env, LISTEN_ADDR=f"127.0.0.1:{self.port}")
        with open(self.log_path(n), "wb") as out:
            # Own session: a Ctrl-C in the terminal reaches this script, which then stops the
            # service by PID, rather than the service shutting down on its own mid-check.
            self.proc = subprocess.Popen(
                [str(self.binary), "serve"],
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.run = Run(n=n, pid=self.proc.pid, spawned_at=now_ms())
        self.runs.append(self.run)
        return self.run

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def is_ready(self) -> bool:
        return http_get_status(self.port, "/readyz") == 200

    def wait_ready(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.exited():
                return False
            if self.is_ready():
                assert self.run is not None
                self.run.ready_at = now_ms()
                return True
            time.sleep(0.005)
        return False

    def _finish(self, how: str) -> None:
        assert self.proc is not None and self.run is not None
        self.run.exit_code = self.proc.wait()
        self.run.ended_at = now_ms()
        self.run.how = how
        self.proc = None

    def kill9(self, how: str) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self._finish(how)

    def terminate(self, grace: float = 20.0) -> bool:
        """SIGTERM, then SIGKILL after `grace` seconds. True when it stopped on its own."""
        if self.proc is None:
            return True
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
            clean = self.proc.returncode == 0
            self._finish("sigterm")
            return clean
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self._finish("sigterm-timeout-sigkill")
            return False

    def reap_exit(self) -> None:
        """The process exited by itself: record it."""
        self._finish("exited")


# ---------------------------------------------------------------------------------------------
# Webhook load
# ---------------------------------------------------------------------------------------------


@dataclass
class Payload:
    marker: str
    keyed_by: str  # "event" (dedup key event:<marker>:...) or "body" (body:<sha256>)
    key: str  # event_id, or the body key
    resource: str
    body: bytes
    issue: str
    attempts: list = field(default_factory=list)  # (at_ms, status or None, error)
    ok: bool = False
    next_try: float = 0.0
    # 2xx `duplicate` answers: an earlier attempt was committed but its answer never arrived.
    duplicate_answers: int = 0


@dataclass
class Issue:
    issue_id: str
    severity: str  # critical | high | unclassified
    template: str


class PayloadFactory:
    def __init__(self, fixtures: Path, rng: random.Random) -> None:
        self.rng = rng

        def load(name: str) -> dict:
            with open(fixtures / name, encoding="utf-8") as f:
                return json.load(f)

        self.fx = {
            name: load(name)
            for name in (
                "event_alert.triggered.4.json",  # environment prod, level error: critical
                "event_alert.triggered.1.json",  # no environment, level error: high
                "error.created.1.json",  # no environment, level error: high
                "event_alert.triggered.5.json",  # production, no level: unclassified
                "issue.created.1.json",
                "issue.resolved.1.json",
                "metric_alert.critical.1.json",
            )
        }
        self.templates = {
            "critical": ["event_alert.triggered.4.json"],
            "high": ["event_alert.triggered.1.json", "error.created.1.json"],
            "unclassified": ["event_alert.triggered.5.json"],
        }
        self.lock = threading.Lock()
        self.issues: list[Issue] = []
        self.next_issue = 900_000_001
        for sev in ("critical", "critical", "high", "high", "high", "unclassified"):
            self.new_issue(sev)
        self.metric_rules = [f"crash-rule-{i}" for i in range(4)]

    def new_issue(self, severity: str | None = None) -> Issue:
        if severity is None:
            severity = self.rng.choices(["critical", "high", "unclassified"], [0.3, 0.45, 0.25])[0]
        issue = Issue(str(self.next_issue), severity, self.rng.choice(self.templates[severity]))
        self.next_issue += 1
        self.issues.append(issue)
        return issue

    def make(self, p_new: float, p_resolve: float, p_issue_created: float, p_metric: float) -> Payload:
        with self.lock:
            r = self.rng.random()
            if r < p_new:
                return self.event(self.new_issue())
            r -= p_new
            if r < p_resolve:
                return self.resolved(self.rng.choice(self.issues))
            r -= p_resolve
            if r < p_issue_created:
                highs = [i for i in self.issues if i.template == "event_alert.triggered.1.json"]
                if highs:
                    return self.issue_created(self.rng.choice(highs))
            r -= p_issue_created
            if r < p_metric:
                return self.metric(self.rng.choice(self.metric_rules))
            return self.event(self.rng.choice(self.issues))

    def clone(self, name: str) -> dict:
        return json.loads(json.dumps(self.fx[name]))

    def event(self, issue: Issue) -> Payload:
        d = self.clone(issue.template)
        resource = "error" if issue.template.startswith("error.") else "event_alert"
        ev = d["data"]["error" if resource == "error" else "event"]
        marker = uuid.uuid4().hex
        ev["event_id"] = marker
        ev["issue_id"] = issue.issue_id
        ev["web_url"] = f"https://sentry.io/organizations/crash-test/issues/{issue.issue_id}/events/{marker}/"
        ev["issue_url"] = f"https://sentry.io/api/0/issues/{issue.issue_id}/"
        ev["title"] = f"{ev.get('title') or 'Sentry event'} (crash-test issue {issue.issue_id})"
        body = json.dumps(d, separators=(",", ":")).encode()
        return Payload(marker, "event", marker, resource, body, issue.issue_id)

    def _body_keyed(self, d: dict, resource: str, issue: str) -> Payload:
        marker = uuid.uuid4().hex
        # No event id: the service's dedup key is the body's hash. An extra top-level field (the
        # parser skips fields it does not know) makes each body, and so that key, unique.
        d["crash_test_marker"] = marker
        body = json.dumps(d, separators=(",", ":")).encode()
        key = "body:" + hashlib.sha256(body).hexdigest()
        return Payload(marker, "body", key, resource, body, issue)

    def resolved(self, issue: Issue) -> Payload:
        d = self.clone("issue.resolved.1.json")
        d["data"]["issue"]["id"] = issue.issue_id
        return self._body_keyed(d, "issue", issue.issue_id)

    def issue_created(self, issue: Issue) -> Payload:
        d = self.clone("issue.created.1.json")
        d["data"]["issue"]["id"] = issue.issue_id
        return self._body_keyed(d, "issue", issue.issue_id)

    def metric(self, rule_id: str) -> Payload:
        d = self.clone("metric_alert.critical.1.json")
        ma = d["data"]["metric_alert"]
        ma["id"] = rule_id
        if isinstance(ma.get("alert_rule"), dict):
            ma["alert_rule"]["id"] = rule_id
        return self._body_keyed(d, "metric_alert", rule_id)


class Load:
    """Paced senders; a payload that got no 2xx is resent later (at most `max_attempts`)."""

    def __init__(self, args, factory: PayloadFactory, secret: bytes, port: int, rng: random.Random) -> None:
        self.args = args
        self.factory = factory
        self.secret = secret
        self.port = port
        self.rng = rng
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.payloads: dict[str, Payload] = {}
        self.retry: list[Payload] = []
        self.incident_ids: set[int] = set()
        self.acks = {"sent": 0, "2xx": 0}
        self.in_flight = 0
        self.next_slot = time.monotonic()
        self.threads = [
            threading.Thread(target=self.worker, name=f"load-{i}", daemon=True) for i in range(args.concurrency)
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)

    def wait_slot(self) -> bool:
        with self.lock:
            slot = max(self.next_slot, time.monotonic())
            self.next_slot = slot + 1.0 / self.args.rate
        delay = slot - time.monotonic()
        if delay > 0:
            return not self.stop.wait(delay)
        return not self.stop.is_set()

    def take(self):
        with self.lock:
            now = time.monotonic()
            for i, p in enumerate(self.retry):
                if p.next_try <= now:
                    return self.retry.pop(i)
            if self.incident_ids and self.rng.random() < self.args.p_ack:
                return ("ack", self.rng.choice(sorted(self.incident_ids)))
        p = self.factory.make(self.args.p_new, self.args.p_resolve, self.args.p_issue_created, self.args.p_metric)
        with self.lock:
            self.payloads[p.marker] = p
        return p

    def worker(self) -> None:
        while self.wait_slot():
            item = self.take()
            if isinstance(item, tuple):
                self.ack(item[1])
            else:
                self.send(item)

    def post(self, path: str, body: bytes, headers: dict):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        with self.lock:
            self.in_flight += 1
        try:
            conn.request("POST", path, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, r.read(), None
        except (OSError, http.client.HTTPException) as e:
            return None, b"", type(e).__name__
        finally:
            with self.lock:
                self.in_flight -= 1
            conn.close()

    def send(self, p: Payload) -> None:
        sig = hmac.new(self.secret, p.body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "Sentry-Hook-Resource": p.resource,
            "Sentry-Hook-Signature": sig,
            "Sentry-Hook-Timestamp": str(int(time.time())),
            # Sentry's retries carry a new Request-ID with the same body.
            "Request-ID": str(uuid.uuid4()),
        }
        at = now_ms()
        status, out, err = self.post("/webhooks/sentry", p.body, headers)
        with self.lock:
            p.attempts.append((at, status, err))
            if status is not None and 200 <= status < 300:
                p.ok = True
                try:
                    answer = json.loads(out)
                    if answer.get("status") == "duplicate":
                        p.duplicate_answers += 1
                    inc = answer.get("incident_id")
                    if isinstance(inc, int):
                        self.incident_ids.add(inc)
                except ValueError:
                    pass
            elif len(p.attempts) < self.args.max_attempts and status not in (400, 401, 413):
                p.next_try = time.monotonic() + self.rng.uniform(0.5, 2.0)
                self.retry.append(p)

    def ack(self, incident_id: int) -> None:
        body = json.dumps({"by": "crash-test"}).encode()
        status, _, _ = self.post(f"/api/incidents/{incident_id}/ack", body, {"Content-Type": "application/json"})
        with self.lock:
            self.acks["sent"] += 1
            if status is not None and 200 <= status < 300:
                self.acks["2xx"] += 1


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


# Set by --postgres: the service and the checks use this PostgreSQL database instead of the file.
POSTGRES_URL: str | None = None


class PgRow(tuple):
    """A row read by index or by column name, as sqlite3.Row is."""

    def __new__(cls, values, names):
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key):
        if isinstance(key, str):
            key = self._names.index(key)
        return tuple.__getitem__(self, key)

    def keys(self):
        return list(self._names)


class PgConnection:
    """The few sqlite3.Connection calls the checks make, on PostgreSQL (psycopg, autocommit off
    like sqlite3's implicit transactions; `?` placeholders become `%s`)."""

    def __init__(self, url: str):
        import psycopg

        def rows(cursor):
            names = [c.name for c in cursor.description or []]
            return lambda values: PgRow(values, names)

        self.conn = psycopg.connect(url, row_factory=rows)

    def execute(self, sql: str, params=()):
        return self.conn.execute(sql.replace("?", "%s"), params)

    def commit(self):
        self.conn.commit()

    def close(self):
        self.conn.close()


def db_connect(path: Path):
    if POSTGRES_URL:
        return PgConnection(POSTGRES_URL)
    conn = sqlite3.connect(str(path), timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def fresh_postgres_database(admin_url: str) -> str:
    """A new, empty database on the server of `admin_url`; its URL."""
    import psycopg

    name = f"paiid_crash_{os.urandom(6).hex()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + "/" + name


def pending_work(db: Path) -> tuple[int, int]:
    """(escalation deadlines still pending, deliveries not yet delivered or dead)."""
    conn = db_connect(db)
    try:
        timers = conn.execute("SELECT COUNT(*) FROM incidents WHERE next_escalation_at IS NOT NULL").fetchone()[0]
        waiting = conn.execute("SELECT COUNT(*) FROM deliveries WHERE status NOT IN ('delivered', 'dead')").fetchone()[0]
        return timers, waiting
    finally:
        conn.close()


@dataclass
class Episode:
    incident: int
    episode: int
    start: int
    end: int | None = None
    end_kind: str | None = None
    escalated_at: list = field(default_factory=list)
    severity_raised: bool = False


def check(db: Path, load: Load, peers: dict, service: Service, checked_at: int) -> tuple[dict, list[str]]:
    violations: list[str] = []
    figures: dict = {}
    conn = db_connect(db)
    try:
        # --- webhooks -------------------------------------------------------------------------
        stored: dict[str, int] = {}
        for (key,) in conn.execute("SELECT dedup_key FROM events"):
            if key.startswith("event:"):
                k = key.split(":")[1]
            elif key.startswith("body:"):
                k = key[: len("body:") + 64]
            else:
                continue
            stored[k] = stored.get(k, 0) + 1
        payloads = list(load.payloads.values())
        attempts = sum(len(p.attempts) for p in payloads)
        answered = [p for p in payloads if p.ok]
        ok_attempts = sum(1 for p in payloads for a in p.attempts if a[1] is not None and 200 <= a[1] < 300)
        missing = [p for p in answered if stored.get(p.key, 0) == 0]
        twice = [p for p in payloads if p.keyed_by == "event" and stored.get(p.key, 0) > 1]
        body_twice = [p for p in payloads if p.keyed_by == "body" and stored.get(p.key, 0) > 1]
        unanswered_stored = [p for p in payloads if not p.ok and stored.get(p.key, 0) > 0]
        statuses: dict[str, int] = {}
        for p in payloads:
            for a in p.attempts:
                label = str(a[1]) if a[1] is not None else (a[2] or "error")
                statuses[label] = statuses.get(label, 0) + 1
        figures["webhooks"] = {
            "sent": len(payloads),
            "attempts": attempts,
            "attempt_outcomes": dict(sorted(statuses.items())),
            "answered_2xx": len(answered),
            "2xx_answers": ok_attempts,
            "stored_of_2xx": len(answered) - len(missing),
            "missing": len(missing),
            "event_counted_twice": len(twice),
            "body_stored_twice": len(body_twice),
            "stored_without_2xx": len(unanswered_stored),
            "answered_duplicate": sum(1 for p in payloads if p.duplicate_answers),
            "acks": dict(load.acks),
        }
        for p in missing[:20]:
            violations.append(
                f"webhook {p.resource} marker {p.marker} (key {p.key[:60]}) got a 2xx "
                f"but is not in `events`; attempts {p.attempts}"
            )
        if len(missing) > 20:
            violations.append(f"... and {len(missing) - 20} more 2xx webhooks missing from `events`")
        for p in twice[:20]:
            violations.append(f"Sentry event {p.marker} is stored {stored[p.key]} times in `events`")

        # --- escalations ---------------------------------------------------------------------
        policies = {}
        severities = {}
        for row in conn.execute("SELECT id, severity, policy FROM incidents"):
            try:
                policies[row["id"]] = json.loads(row["policy"] or "{}")
            except ValueError:
                policies[row["id"]] = {}
            severities[row["id"]] = row["severity"]
        episodes: dict[tuple[int, int], Episode] = {}
        current: dict[int, Episode] = {}
        for row in conn.execute("SELECT incident_id, at, kind, detail FROM timeline ORDER BY id"):
            inc, at, kind = row["incident_id"], row["at"], row["kind"]
            cur = current.get(inc)
            if kind == "opened":
                cur = Episode(inc, 1, at)
            elif kind == "reopened":
                n = (cur.episode + 1) if cur else 1
                m = re.match(r"episode (\d+)", row["detail"] or "")
                if m and int(m.group(1)) != n:
                    violations.append(f"incident {inc}: timeline says episode {m.group(1)}, expected {n}")
                    n = int(m.group(1))
                cur = Episode(inc, n, at)
            elif cur is None:
                continue
            elif kind in ("acknowledged", "resolved", "muted") and cur.end is None:
                cur.end, cur.end_kind = at, kind
            elif kind == "escalated":
                cur.escalated_at.append(at)
            elif kind == "severity_raised":
                cur.severity_raised = True
            current[inc] = cur
            episodes[(inc, cur.episode)] = cur
        esc_rows: dict[tuple[int, int], list] = {}
        for row in conn.execute("SELECT incident_id, episode, step, due_at, fired_at FROM escalations"):
            esc_rows.setdefault((row["incident_id"], row["episode"]), []).append(dict(row))
        esc_deliveries: dict[tuple[int, int, str], int] = {}
        for row in conn.execute(
            "SELECT incident_id, episode, channel, COUNT(*) AS n FROM deliveries WHERE kind = 'escalation' "
            "GROUP BY incident_id, episode, channel"
        ):
            esc_deliveries[(row["incident_id"], row["episode"], row["channel"])] = row["n"]

        due = fired = duplicates = missed = wrongly = borderline = not_yet = 0
        due_while: dict[str, int] = {}
        for (inc, ep), e in sorted(episodes.items()):
            policy = policies.get(inc, {})
            after = policy.get("escalate_after_ms")
            targets = policy.get("escalate_to") or []
            rows = esc_rows.get((inc, ep), [])
            n_fired = max(len(rows), len(e.escalated_at))
            fired += 1 if rows else 0
            if n_fired > 1:
                duplicates += 1
                violations.append(
                    f"incident {inc} episode {ep} escalated {n_fired} times: rows {rows}, "
                    f"timeline 'escalated' at {e.escalated_at}"
                )
            for ch in targets:
                n = esc_deliveries.get((inc, ep, ch), 0)
                if n > 1:
                    duplicates += 1
                    violations.append(f"incident {inc} episode {ep}: {n} escalation deliveries to {ch}")
                if rows and n == 0:
                    violations.append(f"incident {inc} episode {ep} escalated but no escalation delivery to {ch}")
            if not after or not targets:
                if rows:
                    wrongly += 1
                    violations.append(f"incident {inc} episode {ep} ({severities.get(inc)}) has no escalation policy but escalated: {rows}")
                continue
            expected_window = WINDOWS_MS.get(severities.get(inc, ""))
            if expected_window is not None and after != expected_window:
                violations.append(f"incident {inc}: frozen window {after} ms, routing.yaml says {expected_window} ms")
            deadline = e.start + after
            for r in rows:
                if r["due_at"] != deadline and not e.severity_raised:
                    violations.append(
                        f"incident {inc} episode {ep}: escalation due_at {r['due_at']} but the episode opened at "
                        f"{e.start} + {after} ms = {deadline}"
                    )
                if e.end is not None and r["fired_at"] > e.end:
                    wrongly += 1
                    violations.append(
                        f"incident {inc} episode {ep} escalated at {r['fired_at']}, after it was {e.end_kind} at {e.end}"
                    )
            if e.severity_raised:
                borderline += 1
                continue
            if e.end is not None and e.end < deadline:
                if rows:
                    wrongly += 1
                    violations.append(
                        f"incident {inc} episode {ep} was {e.end_kind} at {e.end}, before its deadline {deadline}, "
                        f"yet escalated: {rows}"
                    )
                continue
            if e.end is not None and e.end <= deadline + BORDERLINE_MS:
                borderline += 1
                continue
            if e.end is None and deadline > checked_at:
                not_yet += 1
                continue
            due += 1
            moment = moment_of(service.runs, deadline)
            due_while[moment] = due_while.get(moment, 0) + 1
            if not rows:
                missed += 1
                down = describe_moment(service.runs, deadline)
                violations.append(
                    f"incident {inc} episode {ep} ({severities.get(inc)}): deadline {deadline} passed "
                    f"({down}) and it was {'still open' if e.end is None else e.end_kind + ' only at ' + str(e.end)}, "
                    f"but it never escalated"
                )
        figures["escalations"] = {
            "episodes": len(episodes),
            "due": due,
            "due_while": due_while,
            "fired": fired,
            "duplicates": duplicates,
            "missed": missed,
            "fired_when_not_due": wrongly,
            "borderline_not_judged": borderline,
            "deadline_after_check": not_yet,
        }

        # --- deliveries ----------------------------------------------------------------------
        rows = conn.execute(
            "SELECT d.id, d.incident_id, d.episode, d.channel, d.kind, d.status, d.attempts, d.last_error, "
            "(SELECT outcome FROM delivery_attempts a WHERE a.delivery_id = d.id ORDER BY a.id DESC LIMIT 1) AS outcome "
            "FROM deliveries d ORDER BY d.id"
        ).fetchall()
    finally:
        conn.close()

    reached: dict[tuple, int] = {}

    def bump(key):
        reached[key] = reached.get(key, 0) + 1

    # Incidents listed by bundled messages, per channel: each stands for one row of a kind a
    # bundle carries (the message has no dedup key of its own).
    bundled: dict[tuple, int] = {}
    peer_counts = {}
    for name, items in peers.items():
        accepted = [i for i in items if i.get("accepted")]
        peer_counts[name] = {"requests": len(items), "accepted": len(accepted)}
        for i in accepted:
            for inc in i.get("bundle") or []:
                for channel in (["slack-alerts"] if name == "slack" else
                                [EMAIL_CHANNELS.get(r, r) for r in i.get("rcpt_tos", [])]):
                    bundled[(channel, inc)] = bundled.get((channel, inc), 0) + 1
            m = DEDUP_RE.match(i.get("dedup_key") or "")
            if not m:
                continue
            inc, ep = int(m.group(1)), int(m.group(2))
            if name == "slack":
                bump(("slack-alerts", inc, ep, i.get("kind")))
            elif name == "pagerduty":
                bump(("pagerduty-oncall", inc, ep, i.get("action")))
            else:
                for rcpt in i.get("rcpt_tos", []):
                    bump((EMAIL_CHANNELS.get(rcpt, rcpt), inc, ep, i.get("kind")))
    by_status: dict[str, int] = {}
    needed: dict[tuple, int] = {}
    skipped = 0
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
        if r["status"] == "dead":
            violations.append(
                f"delivery {r['id']} (incident {r['incident_id']} episode {r['episode']} {r['kind']} to "
                f"{r['channel']}) is dead after {r['attempts']} attempts: {r['last_error']}"
            )
            continue
        if r["status"] != "delivered":
            violations.append(
                f"delivery {r['id']} (incident {r['incident_id']} episode {r['episode']} {r['kind']} to "
                f"{r['channel']}) still {r['status']} after settling"
            )
            continue
        if r["outcome"] == "skipped":
            skipped += 1
            continue
        what = PAGERDUTY_ACTION.get(r["kind"]) if r["channel"] == "pagerduty-oncall" else r["kind"]
        key = (r["channel"], r["incident_id"], r["episode"], what)
        needed[key] = needed.get(key, 0) + 1
    sent_rows = sum(needed.values())
    unreached = 0
    for key, n in sorted(needed.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0], str(kv[0][3]))):
        got = reached.get(key, 0)
        if got < n and key[3] in BUNDLED_KINDS:
            take = min(n - got, bundled.get((key[0], key[1]), 0))
            bundled[(key[0], key[1])] = bundled.get((key[0], key[1]), 0) - take
            got += take
        if got < n:
            unreached += n - got
            violations.append(
                f"{n} delivered row(s) {key[3]} for incident {key[1]} episode {key[2]} to {key[0]}, "
                f"but its peer received {got}"
            )
    extra = sum(max(0, got - needed.get(key, 0)) for key, got in reached.items())
    figures["deliveries"] = {
        "rows": len(rows),
        "by_status": dict(sorted(by_status.items())),
        "sent_rows": sent_rows,
        "skipped_by_design": skipped,
        "reached_peer": sent_rows - unreached,
        "unreached": unreached,
        "peer_copies_beyond_rows": extra,
        "peers": peer_counts,
    }
    return figures, violations


def moment_of(runs: list[Run], t: int) -> str:
    """Where the service was at `t`: serving, starting (spawned, /readyz not yet 200) or down."""
    for r in runs:
        end = r.ended_at if r.ended_at is not None else 1 << 62
        if r.spawned_at <= t < end:
            return "starting" if r.ready_at is None or t < r.ready_at else "serving"
    return "down"


def describe_moment(runs: list[Run], t: int) -> str:
    for r in runs:
        end = r.ended_at if r.ended_at is not None else 1 << 62
        if r.spawned_at <= t < end:
            if r.ready_at is None or t < r.ready_at:
                return f"during start-up of run {r.n}"
            return f"while run {r.n} was serving"
    return "while the service was down"


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------


FAULTS = {
    "drop-event": "delete the newest stored Sentry event (a 2xx webhook goes missing)",
    "double-escalation": "record a second escalation step for an episode that escalated",
    "drop-escalation": "delete one fired escalation and its timeline entry (a due escalation is missed)",
    "lose-slack-message": "forget the first message the Slack peer accepted",
}


def inject_fault(fault: str, db: Path, slack: Recorder) -> None:
    conn = db_connect(db)
    try:
        if fault == "drop-event":
            conn.execute("DELETE FROM events WHERE id = (SELECT MAX(id) FROM events WHERE dedup_key LIKE 'event:%')")
        elif fault == "double-escalation":
            conn.execute(
                "INSERT INTO escalations (incident_id, episode, step, due_at, fired_at, lateness_ms) "
                "SELECT incident_id, episode, step + 1, due_at, fired_at + 1, lateness_ms + 1 FROM escalations "
                "ORDER BY id LIMIT 1"
            )
        elif fault == "drop-escalation":
            row = conn.execute("SELECT id, incident_id, fired_at FROM escalations ORDER BY id LIMIT 1").fetchone()
            if row:
                conn.execute("DELETE FROM escalations WHERE id = ?", (row["id"],))
                conn.execute(
                    "DELETE FROM timeline WHERE incident_id = ? AND kind = 'escalated' AND at = ?",
                    (row["incident_id"], row["fired_at"]),
                )
        elif fault == "lose-slack-message":
            with slack.lock:
                i = next(n for n, r in enumerate(slack.items) if r.get("accepted"))
                del slack.items[i]
        conn.commit()
    finally:
        conn.close()


class Failure(Exception):
    pass


def ensure_binary(path: Path) -> Path:
    if path.exists():
        return path
    release = "release" in path.parts
    cmd = ["cargo", "build", "--bin", "paiid-alerts"] + (["--release"] if release else [])
    log(f"{path} is missing: {' '.join(cmd)}")
    subprocess.run(cmd, cwd=REPO, check=True)
    if not path.exists():
        raise Failure(f"{path} still missing after {' '.join(cmd)}")
    return path


def save_evidence(args, workdir: Path, db: Path, report: dict) -> Path:
    dest = Path(args.evidence_dir) / time.strftime("%Y%m%d-%H%M%S")
    dest.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(db) + suffix)
        if src.exists():
            shutil.copy2(src, dest / src.name)
    for f in sorted(workdir.glob("service-*.log")) + [workdir / "routing.yaml"]:
        if f.exists():
            shutil.copy2(f, dest / f.name)
    with open(dest / "report.json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, default=str)
    return dest


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--bin", default=str(REPO / "target/debug/paiid-alerts"), help="service binary (default %(default)s)")
    p.add_argument("--kills", type=int, default=None, help="SIGKILLs (default 24; 5 with --quick)")
    p.add_argument("--seconds", type=float, default=None, help="bound on the kill phase (default 120; 30 with --quick)")
    p.add_argument("--settle-seconds", type=float, default=None, help="bound on the final settling (default 90; 60 with --quick)")
    p.add_argument("--startup-kills", type=int, default=None, help="kills during start-up (default kills/5, at least 2)")
    p.add_argument("--quick", action="store_true", help="5 kills within about 30 s, for CI")
    p.add_argument("--rate", type=float, default=20.0, help="webhooks per second (default %(default)s)")
    p.add_argument("--concurrency", type=int, default=4, help="sending threads (default %(default)s)")
    p.add_argument("--max-attempts", type=int, default=6, help="sends of one payload at most (default %(default)s)")
    p.add_argument("--p-new", type=float, default=0.03, help="share of webhooks opening a new Sentry issue")
    p.add_argument("--p-resolve", type=float, default=0.015, help="share of `issue resolved` webhooks")
    p.add_argument("--p-issue-created", type=float, default=0.03, help="share of `issue created` webhooks")
    p.add_argument("--p-metric", type=float, default=0.03, help="share of metric alerts")
    p.add_argument("--p-ack", type=float, default=0.008, help="share of API acknowledgements")
    p.add_argument("--peer-delay", type=float, default=0.2, help="peers answer after up to this many seconds (default %(default)s)")
    p.add_argument("--durability", choices=["normal", "full"], help="passed to the service as DATABASE_DURABILITY")
    p.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        default=None,
        help="run on a new database of this PostgreSQL server (e.g. $PAIID_TEST_POSTGRES_URL) instead of a SQLite file",
    )
    p.add_argument("--fixtures", default=str(DEFAULT_FIXTURES), help="Sentry fixtures (default %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="random seed (printed; default: random)")
    p.add_argument("--workdir", default=None, help="keep the database and logs here (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory even when every check passes")
    p.add_argument("--evidence-dir", default="/tmp/crash-evidence", help="where violations are saved (default %(default)s)")
    p.add_argument("--json", default=None, help="also write the figures as JSON to this file")
    p.add_argument(
        "--inject",
        choices=sorted(FAULTS),
        help="self-check: after the run, tamper with the results this way; the checks must then fail",
    )
    args = p.parse_args(argv)
    args.kills = args.kills if args.kills is not None else (5 if args.quick else 24)
    args.seconds = args.seconds if args.seconds is not None else (30.0 if args.quick else 120.0)
    args.settle_seconds = args.settle_seconds if args.settle_seconds is not None else (60.0 if args.quick else 90.0)
    if args.startup_kills is None:
        args.startup_kills = min(args.kills, max(2, round(args.kills / 5)))
    if args.kills < 1 or args.seconds <= 0 or args.rate <= 0 or args.concurrency < 1:
        p.error("--kills, --seconds, --rate and --concurrency must be positive")
    if args.startup_kills > args.kills:
        p.error("--startup-kills cannot exceed --kills")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 31)
    return args


def chaos(args, service: Service, load: Load, rng: random.Random, violations: list[str]) -> dict:
    """Start, (wait,) SIGKILL, repeat. Returns the kill figures."""
    started = time.monotonic()
    deadline = started + args.seconds
    owed = args.startup_kills  # start-up kills still to land
    startup_times: list[float] = []
    kills = startup_kills = serving_kills = unexpected = in_flight_kills = 0
    # Extra kills are allowed when start-up attempts found the service ready: it is ready in
    # ~20 ms now (overdue work runs after ready), so a kill aimed inside start-up often lands late.
    while (kills < args.kills or (owed > 0 and kills < args.kills + 20)) and time.monotonic() < deadline:
        run = service.start()
        t0 = time.monotonic()
        remaining = max(1, args.kills - kills)
        if owed > 0 and (owed >= remaining or rng.random() < owed / remaining):
            # Somewhere in the start-up: before the database is open, during migrations or
            # recovery, or while binding. It counts as a start-up kill only if /readyz had not
            # answered 200 by then; otherwise the next kill tries again.
            limit = min(startup_times) * 0.5 if startup_times else 0.02
            at = t0 + rng.uniform(0.0, max(0.002, limit))
            ready = False
            while time.monotonic() < at and not service.exited():
                if service.is_ready():
                    ready = True
                    run.ready_at = now_ms()
                    break
                time.sleep(0.001)
            if service.exited():
                service.reap_exit()
                unexpected += 1
                violations.append(f"run {run.n} exited by itself with status {run.exit_code} during start-up (see {service.log_path(run.n).name})")
                continue
            service.kill9("sigkill-serving" if ready else "sigkill-startup")
            if ready:
                serving_kills += 1
            else:
                startup_kills += 1
                owed -= 1
            kills += 1
        else:
            if not service.wait_ready(30.0):
                if service.exited():
                    service.reap_exit()
                    unexpected += 1
                    violations.append(f"run {run.n} exited by itself with status {run.exit_code} (see {service.log_path(run.n).name})")
                    continue
                violations.append(f"run {run.n} was not ready within 30 s (see {service.log_path(run.n).name})")
                service.kill9("sigkill-startup")
                kills += 1
                startup_kills += 1
                continue
            startup_times.append(time.monotonic() - t0)
            remaining_kills = max(1, args.kills - kills)
            budget = max(0.3, (deadline - time.monotonic()) / remaining_kills)
            up = rng.uniform(0.2, max(0.3, min(5.0, 1.6 * budget - 0.8)))
            end = time.monotonic() + up
            while time.monotonic() < end and not service.exited():
                time.sleep(0.02)
            if rng.random() < 0.5:
                # Half the time, kill while a webhook is in flight (received, maybe committed,
                # not yet answered): the moment a lost answer or a lost commit would show.
                end = time.monotonic() + 0.5
                while time.monotonic() < end and load.in_flight == 0:
                    time.sleep(0.0005)
                if load.in_flight:
                    # Somewhere in its few milliseconds: parsing, queued for the group commit,
                    # committing, or answering.
                    time.sleep(rng.uniform(0.0, 0.004))
                    in_flight_kills += 1
            if service.exited():
                service.reap_exit()
                unexpected += 1
                violations.append(f"run {run.n} exited by itself with status {run.exit_code} while serving (see {service.log_path(run.n).name})")
                continue
            service.kill9("sigkill-serving")
            kills += 1
            serving_kills += 1
        log(f"kill {kills}/{args.kills}: run {run.n} ({run.how}, pid {run.pid}, up {(run.ended_at - run.spawned_at) / 1000:.2f} s)")
        # Sometimes stay down long enough for escalation deadlines to pass meanwhile.
        down = rng.uniform(0.0, 0.3) if rng.random() < 0.6 else rng.uniform(1.0, 3.0)
        time.sleep(max(0.0, min(down, deadline - time.monotonic())))
    return {
        "kills": kills,
        "during_startup": startup_kills,
        "while_serving": serving_kills,
        "with_webhook_in_flight": in_flight_kills,
        "unexpected_exits": unexpected,
        "kill_phase_seconds": round(time.monotonic() - started, 1),
        "median_startup_seconds": round(sorted(startup_times)[len(startup_times) // 2], 3) if startup_times else None,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    binary = ensure_binary(Path(args.bin).resolve())
    fixtures = Path(args.fixtures)
    if not (fixtures / "event_alert.triggered.4.json").exists():
        raise Failure(f"no Sentry fixtures in {fixtures} (use --fixtures)")
    own_tmp = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="crash-under-load-")) if own_tmp else Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "alerts.db"
    if db.exists():
        raise Failure(f"{db} exists: use an empty --workdir")
    if args.postgres:
        global POSTGRES_URL
        POSTGRES_URL = fresh_postgres_database(args.postgres)
        log(f"PostgreSQL database {POSTGRES_URL.rsplit('/', 1)[1]} (--postgres)")
    (workdir / "routing.yaml").write_text(ROUTING_YAML, encoding="utf-8")
    # A private copy: others may rebuild target/ while this runs, and every restart must run the
    # same code.
    shutil.copy2(binary, workdir / "paiid-alerts")
    binary = workdir / "paiid-alerts"

    slack = SlackPeer("slack", args.peer_delay)
    pagerduty = PagerDutyPeer("pagerduty", args.peer_delay)
    smtp = SmtpPeer(args.peer_delay)
    secret = os.urandom(16).hex()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": POSTGRES_URL or f"sqlite://{db}",
        "ROUTING_CONFIG": str(workdir / "routing.yaml"),
        "SENTRY_CLIENT_SECRET": secret,
        "SLACK_WEBHOOK_URL": slack.url(SLACK_WEBHOOK_PATH),
        "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "PAGERDUTY_EVENTS_URL": pagerduty.url(PAGERDUTY_PATH),
        "SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
        "RUST_LOG": "info",
    }
    if args.durability:
        env["DATABASE_DURABILITY"] = args.durability
    check_cfg = subprocess.run(
        [str(binary), "check-config", str(workdir / "routing.yaml")], env=env, capture_output=True, text=True
    )
    if check_cfg.returncode != 0:
        raise Failure(f"check-config rejected the harness's routing.yaml: {check_cfg.stderr.strip()}")

    port = free_port()
    service = Service(binary, workdir, env, port)
    factory = PayloadFactory(fixtures, random.Random(rng.random()))
    load = Load(args, factory, secret.encode(), port, random.Random(rng.random()))
    violations: list[str] = []
    report: dict = {"seed": args.seed, "args": vars(args), "workdir": str(workdir)}
    log(
        f"crash under load: {args.kills} kills ({args.startup_kills} during start-up) within {args.seconds:g} s, "
        f"{args.rate:g} webhooks/s, seed {args.seed}; service on 127.0.0.1:{port}, files in {workdir}"
    )
    t_start = time.monotonic()
    passed = False
    try:
        load.start()
        report["kills"] = chaos(args, service, load, rng, violations)

        # Last start: up and ready, then stop the load and let everything due happen.
        service.start()
        if not service.wait_ready(60.0):
            raise Failure(f"the final run did not become ready within 60 s (see {service.log_path(len(service.runs))})")
        time.sleep(1.0)
        load.finish()
        settle_end = time.monotonic() + args.settle_seconds
        timers = waiting = -1
        while time.monotonic() < settle_end:
            if service.exited():
                raise Failure("the final run exited by itself while settling")
            timers, waiting = pending_work(db)
            if timers == 0 and waiting == 0:
                break
            time.sleep(0.5)
        settled = timers == 0 and waiting == 0
        if not settled:
            violations.append(
                f"not settled within {args.settle_seconds:g} s: {timers} escalation deadlines pending, "
                f"{waiting} deliveries waiting"
            )
        # Peers may still be answering the last sends' follow-ups (none should be left).
        time.sleep(0.5)
        checked_at = now_ms()
        clean = service.terminate()
        if not clean:
            violations.append(f"SIGTERM: the final run exited with {service.runs[-1].exit_code} ({service.runs[-1].how})")
        report["settle_seconds"] = round(args.settle_seconds - max(0.0, settle_end - time.monotonic()), 1)

        if args.inject:
            log(f"injecting fault `{args.inject}` to show that the checks catch it")
            inject_fault(args.inject, db, slack.recorder)
        figures, found = check(
            db,
            load,
            {"slack": slack.recorder.snapshot(), "pagerduty": pagerduty.recorder.snapshot(), "email": smtp.recorder.snapshot()},
            service,
            checked_at,
        )
        violations.extend(found)
        report.update(figures)
        report["elapsed_seconds"] = round(time.monotonic() - t_start, 1)
        if report["kills"]["kills"] < args.kills:
            violations.append(f"only {report['kills']['kills']} of {args.kills} kills fitted in {args.seconds:g} s")
        if report["kills"]["during_startup"] < args.startup_kills:
            violations.append(
                f"only {report['kills']['during_startup']} kills landed during start-up "
                f"(asked for {args.startup_kills}); the service was ready sooner than expected"
            )
        report["violations"] = violations
        print_figures(report)
        passed = not violations
    except KeyboardInterrupt:
        log("interrupted: stopping everything this script started")
        raise
    except Exception as e:  # a Failure, or the harness itself broke: keep the evidence either way
        violations.append(str(e) if isinstance(e, Failure) else f"harness error: {e!r}")
        report["violations"] = violations
        raise
    finally:
        load.stop.set()
        if service.proc is not None:
            service.kill9("cleanup")
        load.finish()
        for peer in (slack, pagerduty, smtp):
            peer.close()
        if args.json and "violations" in report:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=2, default=str)
        if "violations" in report and not passed and not args.inject:
            dest = save_evidence(args, workdir, db, report)
            log(f"VIOLATIONS: evidence saved in {dest}")
        if own_tmp and (passed or args.inject) and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"database and logs kept in {workdir}")
    return 0 if passed else 1


def print_figures(r: dict) -> None:
    k, w, e, d = r["kills"], r["webhooks"], r["escalations"], r["deliveries"]
    peers = ", ".join(f"{n} {v['accepted']}" for n, v in d["peers"].items())
    print()
    print(f"crash under load (seed {r['seed']}), {r['elapsed_seconds']} s in all")
    print(
        f"  kills:       {k['kills']} SIGKILLs ({k['during_startup']} during start-up, {k['while_serving']} while serving, "
        f"{k['with_webhook_in_flight']} of them with a webhook in flight) "
        f"in {k['kill_phase_seconds']} s; median start-up {k['median_startup_seconds']} s; "
        f"{k['unexpected_exits']} unexpected exits; settled in {r['settle_seconds']} s"
    )
    print(
        f"  webhooks:    {w['sent']} sent ({w['attempts']} attempts: {w['attempt_outcomes']}), "
        f"{w['answered_2xx']} answered 2xx, {w['stored_of_2xx']} of them stored, {w['missing']} missing; "
        f"{w['event_counted_twice']} events counted twice; {w['stored_without_2xx'] + w['answered_duplicate']} committed whose answer was lost "
        f"({w['answered_duplicate']} of them answered `duplicate` when resent); "
        f"acks {w['acks']['2xx']}/{w['acks']['sent']}"
    )
    print(
        f"  escalations: {e['due']} due ({', '.join(f'{v} while {k}' for k, v in sorted(e['due_while'].items()))}), {e['fired']} fired, {e['duplicates']} duplicates, {e['missed']} missed, "
        f"{e['fired_when_not_due']} fired when not due ({e['episodes']} episodes; "
        f"{e['borderline_not_judged']} ended within {BORDERLINE_MS} ms of the deadline, not judged)"
    )
    print(
        f"  deliveries:  {d['rows']} rows {d['by_status']}: {d['sent_rows']} sent, {d['reached_peer']} reached their peer, "
        f"{d['unreached']} did not; {d['skipped_by_design']} skipped by design; "
        f"{d['peer_copies_beyond_rows']} extra copies (resent after a kill); peers accepted: {peers}"
    )
    if r["violations"]:
        print(f"  VIOLATIONS ({len(r['violations'])}):")
        for v in r["violations"]:
            print(f"    - {v}")
    else:
        print("  OK: no violation")


if __name__ == "__main__":

    def on_term(signum, frame):
        raise KeyboardInterrupt

    # Also SIGINT: a shell starts background jobs with SIGINT ignored, and Ctrl-C / `kill -INT`
    # must still stop the service and the peers.
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Failure as e:
        print(f"crash-under-load: {e}", file=sys.stderr)
        sys.exit(2)
