#!/usr/bin/env python3
"""A real SMTP server for tests: accepts mail on 127.0.0.1 and writes each message to a JSON file.

    python3 scripts/smtp_sink.py --port 0 --dir DIR [--reject-rcpt ADDR]... [--tempfail-rcpt ADDR]...
                                 [--delay SECS]

Prints ``LISTENING <port>`` on stdout once it accepts connections. Each message becomes
``DIR/<n>.json`` (n = 1, 2, ...), written to a temporary name and renamed so a reader never sees
a partial file:

    {mail_from, rcpt_tos, subject, headers: {name: value}, text, html, raw}

``text`` and ``html`` are the decoded text/plain and text/html parts (transfer encodings undone),
``raw`` the message exactly as received.

--reject-rcpt ADDR    answer ``550`` to RCPT TO for ADDR (permanent failure)
--tempfail-rcpt ADDR  answer ``450`` to RCPT TO for ADDR (transient failure)
--delay SECS          sleep before answering the end of DATA (for client timeout tests)

Needs the ``aiosmtpd`` package (``pip install aiosmtpd``).
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import os
import signal
import sys

try:
    from aiosmtpd.smtp import SMTP
except ImportError:  # pragma: no cover - reported to the test harness
    sys.stderr.write("smtp_sink.py: the aiosmtpd package is missing: pip install aiosmtpd\n")
    sys.exit(3)


class Sink:
    def __init__(self, outdir, reject, tempfail, delay):
        self.outdir = outdir
        self.reject = {a.lower() for a in reject}
        self.tempfail = {a.lower() for a in tempfail}
        self.delay = delay
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: mailbox unavailable"
        if address.lower() in self.tempfail:
            return f"450 4.2.1 <{address}>: Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        n = next(self.counter)
        record = describe(envelope, content)
        path = os.path.join(self.outdir, f"{n}.json")
        tmp = os.path.join(self.outdir, f".{n}.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return f"250 2.0.0 OK: queued as {n}"


def describe(envelope, content):
    msg = email.message_from_bytes(content, policy=email.policy.default)
    headers = {}
    for name, value in msg.items():
        value = str(value)
        headers[name] = f"{headers[name]}\n{value}" if name in headers else value
    text = html = None
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        try:
            body = part.get_content()
        except Exception:  # undecodable part: keep the raw payload
            body = part.get_payload()
        if not isinstance(body, str):
            continue
        if ctype == "text/plain" and text is None:
            text = body
        elif ctype == "text/html" and html is None:
            html = body
    return {
        "mail_from": envelope.mail_from,
        "rcpt_tos": list(envelope.rcpt_tos),
        "subject": str(msg.get("Subject", "")),
        "headers": headers,
        "text": text,
        "html": html,
        "raw": content.decode("utf-8", "replace"),
    }


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--reject-rcpt", action="append", default=[])
    parser.add_argument("--tempfail-rcpt", action="append", default=[])
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    sink = Sink(args.dir, args.reject_rcpt, args.tempfail_rcpt, args.delay)
    loop = asyncio.get_running_loop()
    # A fixed hostname: the default asks DNS for the FQDN, which can stall in sandboxes.
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="smtp-sink.test", ident="paiid-alerts smtp sink"),
        host="127.0.0.1",
        port=args.port,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"LISTENING {port}", flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
