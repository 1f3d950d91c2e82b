#!/usr/bin/env python3
"""Outbox claim vs backlog (issue 10, target 3): what one claim and one next-due query cost as
the number of waiting deliveries grows, before and after migration 0008's partial indexes.

    python3 scripts/bench-outbox.py                        # 0, 10,000 and 100,000 pending
    python3 scripts/bench-outbox.py --pending 0,1000,1000000 --repeat 50
    python3 scripts/bench-outbox.py --quick                # CI smoke: tiny, no timing checked

For each backlog size it builds a fresh SQLite file from migrations/sqlite/*.sql (the files the binary
embeds with `sqlx::migrate!`, applied in name order), then fills `deliveries` with:
- N waiting rows (`pending`, due, one every 10 ms of the last N/100 s) spread evenly at random over
  three channels (slack, pagerduty, email) and N/4 incidents, so most incidents have several rows
  per channel and the later ones wait their turn;
- for one incident in twenty (`--stall-share`), its oldest row per channel `failed` and retrying
  a minute from now (the rows behind it wait, as when a channel answers 500s);
- 8 rows per busy channel being sent (lease not expired);
- N/2 delivered rows of history, on those channels and on `webhook`, a channel with nothing
  waiting (the "idle" channel).

It then times, per backlog, the claim (`UPDATE ... RETURNING` of up to 16 rows, inside a
transaction that is rolled back, so every repeat claims the same rows) for a busy channel and the
idle one, and the worker's next-due query for both:
- after: the SQL of `CLAIM_SQL` and `NEXT_DUE_SQL`, read out of src/store/deliveries.rs (its
  `concat!`s and `macro_rules!` strings are expanded here), on the migrated schema;
- before: the same file's queries as of commit a29b118 (kept verbatim below) with migration 0008's
  indexes dropped.
Last, what the two indexes cost when rows are queued (`insert_cost`). Figures are the median of
`--repeat` calls after one warm-up, in ms, with the `EXPLAIN QUERY
PLAN` of each claim for the largest backlog. It uses Python's sqlite3 module (its SQLite version
is printed; the service bundles its own, whose plans the unit test
`store::deliveries::tests::claim_and_next_due_are_index_walks_without_a_sort` checks).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUSY = ["slack", "pagerduty", "email"]
IDLE = "webhook"
NOW = 1_800_000_000_000
LEASE_MS = 60_000
BATCH = 16

LIVE = "status IN ('pending', 'failed', 'sending')"
OLD_IN_TURN = (
    "NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.incident_id = d.incident_id "
    "AND e.channel = d.channel AND e.id < d.id AND e.status IN ('pending', 'failed', 'sending'))"
)
OLD_CLAIM = (
    "UPDATE deliveries SET status = 'sending', lease_until = ?1 "
    "WHERE id IN (SELECT d.id FROM deliveries d WHERE d.channel = ?2 AND ( "
    "(d.status IN ('pending', 'failed') AND d.next_attempt_at <= ?3) "
    "OR (d.status = 'sending' AND d.lease_until <= ?3)) AND " + OLD_IN_TURN + " "
    "ORDER BY d.next_attempt_at, d.id LIMIT ?4) RETURNING *"
)
OLD_NEXT_DUE = (
    "SELECT MIN(CASE WHEN d.status = 'sending' THEN d.lease_until ELSE d.next_attempt_at END) "
    "FROM deliveries d WHERE d.channel = ? AND d.status IN ('pending', 'failed', 'sending') "
    "AND " + OLD_IN_TURN
)
NEW_INDEXES = ["deliveries_live_due", "deliveries_live_turn"]


def rust_string(lit: str) -> str:
    """The value of a Rust string literal body: `\\` + newline skips the newline and indent."""
    lit = re.sub(r"\\\n\s*", "", lit)
    return lit.replace('\\"', '"').replace("\\\\", "\\")


def expand(src: str, macros: dict[str, str]) -> str:
    """Concatenates the string literals and `name!()` macro calls of one `concat!(...)` body."""
    out = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\w+)!\(\s*\)|concat!\(', src, re.S):
        if m.group(1) is not None:
            out.append(rust_string(m.group(1)))
        elif m.group(2) is not None:
            out.append(macros[m.group(2)])
    return "".join(out)


def queries_from_source() -> tuple[str, str]:
    text = (ROOT / "src/store/deliveries.rs").read_text()
    macros: dict[str, str] = {}
    for m in re.finditer(r"macro_rules! (\w+) \{\s*\(\) => \{(.*?)\n    \};\n\}", text, re.S):
        macros[m.group(1)] = expand(m.group(2), macros)
    consts = {}
    for m in re.finditer(r"const (\w+): &str = concat!\((.*?)\n\);", text, re.S):
        consts[m.group(1)] = expand(m.group(2), macros)
    return consts["CLAIM_SQL"], consts["NEXT_DUE_SQL"]


def build(path: Path, pending: int, seed: int, stall_share: float) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    for f in sorted((ROOT / "migrations" / "sqlite").glob("*.sql")):
        db.executescript(f.read_text())
    rnd = random.Random(seed)
    incidents = max(1, pending // 4)
    stalled = {i for i in range(1, incidents + 1) if rnd.random() < stall_share}
    first_seen: set[tuple[int, str]] = set()
    rows = []
    # History first (older ids), then the backlog in time order.
    for k in range(pending // 2):
        at = NOW - 86_400_000 + k
        rows.append((rnd.randrange(1, incidents + 1), rnd.choice(BUSY + [IDLE]), "delivered",
                     at, None, at, at))
    start = NOW - pending * 10
    for k in range(pending):
        inc, ch = rnd.randrange(1, incidents + 1), rnd.choice(BUSY)
        at = start + k * 10
        status, due = "pending", at
        if inc in stalled and (inc, ch) not in first_seen:
            status, due = "failed", NOW + 60_000
        first_seen.add((inc, ch))
        rows.append((inc, ch, status, due, None, at, None))
    for ch in BUSY:
        for _ in range(8 if pending else 0):
            inc = rnd.randrange(1, incidents + 1)
            rows.append((inc, ch, "sending", NOW - 1_000, NOW + 30_000, NOW - 1_000, None))
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO deliveries (incident_id, episode, channel, kind, status, next_attempt_at, "
        "lease_until, created_at, delivered_at) VALUES (?, 1, ?, 'opened', ?, ?, ?, ?, ?)",
        rows,
    )
    db.execute("COMMIT")
    db.close()


def timed(db: sqlite3.Connection, sql: str, params: tuple, repeat: int, write: bool):
    times, rows = [], []
    for i in range(repeat + 1):
        if write:
            db.execute("BEGIN IMMEDIATE")
        t = time.perf_counter()
        rows = db.execute(sql, params).fetchall()
        dt = time.perf_counter() - t
        if write:
            db.execute("ROLLBACK")
        if i:
            times.append(dt * 1000)
    # What it answered: the claimed ids in claim order, or the next-due moment.
    return statistics.median(times), [r[0] for r in rows]


def insert_cost(path: Path, rows: int, with_indexes: bool) -> float:
    """Microseconds per queued delivery on the write path: commits of 16 rows (4 new incidents
    on 3 channels, roughly what a burst of openings queues), WAL with synchronous=NORMAL as the
    service's default durability, with or without migration 0008's indexes."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    for f in sorted((ROOT / "migrations" / "sqlite").glob("*.sql")):
        db.executescript(f.read_text())
    if not with_indexes:
        for ix in NEW_INDEXES:
            db.execute(f"DROP INDEX {ix}")
    rnd = random.Random(1)
    t = time.perf_counter()
    for b in range(rows // 16):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO deliveries (incident_id, episode, channel, kind, status, "
            "next_attempt_at, created_at) VALUES (?, 1, ?, 'opened', 'pending', ?, ?)",
            [(b * 4 + rnd.randrange(4), rnd.choice(BUSY), NOW + b, NOW + b) for _ in range(16)],
        )
        db.execute("COMMIT")
    dt = time.perf_counter() - t
    db.close()
    return dt / (rows // 16 * 16) * 1e6


def plan(db: sqlite3.Connection, sql: str, params: tuple) -> list[str]:
    return [r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, params)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pending", default="0,10000,100000", help="backlog sizes, comma-separated")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--stall-share", type=float, default=0.05,
                    help="share of incidents whose oldest row per channel is failed and retrying "
                         "(1.0: a channel answering 500s to everything)")
    ap.add_argument("--quick", action="store_true", help="CI smoke: 0 and 200 pending, 2 repeats")
    args = ap.parse_args()
    sizes = [0, 200] if args.quick else [int(x) for x in args.pending.split(",")]
    repeat = 2 if args.quick else args.repeat
    new_claim, new_next = queries_from_source()
    if LIVE not in new_claim or LIVE not in new_next:
        print(f"deliveries.rs queries lack `{LIVE}` (the partial indexes' condition)",
              file=sys.stderr)
        return 1
    print(f"SQLite {sqlite3.sqlite_version} (Python), median of {repeat}, ms per call")
    header = (f"{'pending':>8} {'variant':>7} | {'claim busy':>10} {'claim idle':>10} | "
              f"{'next_due busy':>13} {'next_due idle':>13} | claimed")
    print(header)
    print("-" * len(header))
    plans = {}
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"outbox-{n}.db"
            build(path, n, args.seed, args.stall_share)
            db = sqlite3.connect(path, isolation_level=None)
            variants = [("after", new_claim, new_next), ("before", OLD_CLAIM, OLD_NEXT_DUE)]
            answers = {}
            for name, claim, next_due in variants:
                if name == "before":
                    for ix in NEW_INDEXES:
                        db.execute(f"DROP INDEX IF EXISTS {ix}")
                cp = (NOW + LEASE_MS, BUSY[0], NOW, BATCH)
                cb, nb = timed(db, claim, cp, repeat, True)
                ci, ni = timed(db, claim, (NOW + LEASE_MS, IDLE, NOW, BATCH), repeat, True)
                db_, wb = timed(db, next_due, (BUSY[0],), repeat, False)
                di, wi = timed(db, next_due, (IDLE,), repeat, False)
                answers[name] = (nb, ni, wb, wi)
                print(f"{n:>8} {name:>7} | {cb:>10.3f} {ci:>10.3f} | {db_:>13.3f} {di:>13.3f} | "
                      f"{len(nb)}/{len(ni)}")
                if n == sizes[-1]:
                    plans[name] = (plan(db, claim, cp), plan(db, next_due, (BUSY[0],)))
                if n and not nb and args.stall_share < 1:
                    print("the busy channel claimed nothing", file=sys.stderr)
                    return 1
            # Same rows claimed, in the same order, and the same wake-up, by both.
            if answers["after"] != answers["before"]:
                print(answers, file=sys.stderr)
                print(f"{n} pending: before and after answer differently", file=sys.stderr)
                return 1
            db.close()
            os.remove(path)
        # Alternating, three rounds each, the best kept: the machine is shared.
        ins = {True: [], False: []}
        rows = 1_600 if args.quick else 32_000
        for r in range(1 if args.quick else 3):
            for with_indexes in (False, True):
                path = Path(tmp) / f"insert-{r}-{with_indexes}.db"
                ins[with_indexes].append(insert_cost(path, rows, with_indexes))
        print(f"\nqueueing {rows} deliveries in commits of 16: "
              f"{min(ins[False]):.1f} us/row without 0008's indexes, "
              f"{min(ins[True]):.1f} us/row with them")
    for name, (claim_plan, next_plan) in plans.items():
        print(f"\nplan {name}, {sizes[-1]} pending: claim")
        print("\n".join("  " + s for s in claim_plan))
        print("  next_due")
        print("\n".join("  " + s for s in next_plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
