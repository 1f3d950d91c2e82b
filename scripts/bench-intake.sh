#!/usr/bin/env bash
# Intake benchmark: paiid-alerts `POST /webhooks/sentry` (signed Sentry event_alert webhooks, each
# committed to SQLite before its 2xx) against Alertmanager's own `POST /api/v2/alerts` (one alert
# per request, memory only), side by side in one run on this machine. See benches/README.md.
#
# Rounds alternate AM, PA, AM, PA, ... after a short warm-up of each; the table gives req/s per
# round and the mean, p50/p99, non-2xx and socket errors, CPU used by each process, and the ratio
# paiid-alerts / Alertmanager. Afterwards sqlite3 checks that every webhook answered 2xx is stored.
#
# Knobs (environment):
#   DURATION=10      seconds per measured round        WARMUP=3      seconds of warm-up (each)
#   CONNECTIONS=32   wrk -c                            THREADS=2     wrk -t
#   ROUNDS=2         measured rounds of each           ISSUES=1000   distinct Sentry issues cycled
#   DURABILITY=normal  paiid-alerts DATABASE_DURABILITY (normal | full)
#   KEEP_TMP=1       keep the temp dir (bodies, logs, database) for inspection
#   SKIP_BUILD=1     use the existing target/release/paiid-alerts (and examples/bare_server)
#   PA_BIN=path      the paiid-alerts binary to measure (default target/release/paiid-alerts)
#   SEED_EVENTS=1000000 SEED_DELIVERIES=100000   also run PAB: a second paiid-alerts on a database
#                    with that backlog (issue 10, target 3), reported against PA's empty one
#   FULL_FIXTURES=a,b  real event_alert fixtures sent unaltered (but for their event and issue
#                    ids) in the PAF rounds; FULL_FIXTURES= (empty) skips those rounds
#
# Besides AM and PA, each round also runs BARE (examples/bare_server: the same axum/hyper stack
# reading the body and answering 200, nothing else: the ceiling of this machine) and PAF
# (paiid-alerts with the full-size real fixtures). Before the rounds, fdatasync is timed on the
# database's file system: with `full` every 2xx waits for one, so C connections can get at most
# C / fsync-time requests a second whatever the code does.
# Exit status: 0 when every round had no non-2xx/socket errors and nothing answered 2xx was lost.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}; DURATION=${DURATION%s}
WARMUP=${WARMUP:-3}; WARMUP=${WARMUP%s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
ISSUES=${ISSUES:-1000}
DURABILITY=${DURABILITY:-normal}
SECRET=bench-secret
AM_DIR=${AM_DIR:-$ROOT/../shared/bench/alertmanager}
[[ -d $AM_DIR ]] || AM_DIR=/work/shared/bench/alertmanager
FIXTURE=${FIXTURE:-$(dirname "$AM_DIR")/../fixtures/sentry/event_alert.triggered.4.json}
[[ -f $FIXTURE ]] || FIXTURE=/work/shared/fixtures/sentry/event_alert.triggered.4.json

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------- 1. tools ----------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
    log "installing ${need[*]} (Debian)"
    apt-get update -qq
    # The package's init script must not start a system-wide Alertmanager: we start our own.
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v python3 >/dev/null || die "python3 is needed to sign the bodies"

# ---------- 2. build ----------
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet && cargo build --release --quiet --example bare_server)
fi
PA_BIN=${PA_BIN:-$ROOT/target/release/paiid-alerts}
BARE_BIN=${BARE_BIN:-$ROOT/target/release/examples/bare_server}
FS=/work/shared/fixtures/sentry
FULL_FIXTURES=${FULL_FIXTURES-$FS/event_alert.triggered.1.json,$FS/event_alert.triggered.2.json,$FS/event_alert.triggered.4.json}
[[ -x $PA_BIN ]] || die "$PA_BIN is missing"

# ---------- temp dir, process bookkeeping, cleanup ----------
TMP=$(mktemp -d /tmp/bench-intake.XXXXXX)
PIDS=()
WRK_PID=
cleanup() {
    local rc=$?
    [[ -z $WRK_PID ]] || kill "$WRK_PID" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP_TMP:-0} == 1 || $rc != 0 ]]; then
        log "kept $TMP (logs, database)"
        rm -f "$TMP"/bodies.*  # large; the database has what was sent
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port_free() {
    python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null
}
wait_ready() { # url pid name
    for _ in $(seq 300); do
        curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || die "$3 exited during start-up; see $TMP/$3.log: $(tail -5 "$TMP/$3.log")"
        sleep 0.1
    done
    die "$3 not ready after 30 s: $(tail -5 "$TMP/$3.log")"
}

# Helpers in Python: body generation and signing, CPU accounting from /proc.
cat >"$TMP/gen.py" <<'EOF'
"""gen.py FIXTURES OUT ROUND COUNT ISSUES SECRET [full]: COUNT lines of
`hex(hmac_sha256(body))<TAB>body`. FIXTURES is one event_alert fixture or several, comma-separated
(cycled). Each body is the compact fixture with a unique data.event.event_id (ROUND in the first
hex digits) and data.event.issue_id cycling over ISSUES issues. Without `full`, large fields are
dropped so that a body is about 1.7 KB, like the design's measurement; with `full` nothing else
changes (the real payloads, several KB each)."""
import hashlib, hmac, json, sys
fixtures, out, rnd, count, issues, secret = sys.argv[1:7]
full = len(sys.argv) > 7 and sys.argv[7] == "full"
rnd, count, issues, secret = int(rnd), int(count), int(issues), secret.encode()
templates = []
for fixture in fixtures.split(","):
    doc = json.load(open(fixture))
    ev = doc["data"]["event"]
    if not full:
        for k in ("stacktrace", "modules", "extra", "_metrics", "nodestore_insert", "hashes", "contexts"):
            ev.pop(k, None)
        for k in ("headers", "cookies", "query_string"):
            ev.get("request", {}).pop(k, None)
        ev.get("user", {}).pop("geo", None)
    old_event, old_issue = ev["event_id"], str(ev.get("issue_id", ""))
    ev["event_id"] = "__BENCH_EVENT__"; ev["issue_id"] = "__BENCH_ISSUE__"
    for k in ("url", "web_url", "issue_url"):
        if isinstance(ev.get(k), str):
            ev[k] = ev[k].replace(old_event, "__BENCH_EVENT__")
            if old_issue:
                ev[k] = ev[k].replace(old_issue, "__BENCH_ISSUE__")
    templates.append(json.dumps(doc, separators=(",", ":")))
total = 0
with open(out, "w") as f:
    for i in range(count):
        eid = "%04x%028x" % (rnd, i)
        iid = str(4300000000 + i % issues)
        body = templates[i % len(templates)].replace("__BENCH_EVENT__", eid).replace("__BENCH_ISSUE__", iid)
        sig = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        f.write(sig + "\t" + body + "\n")
        total += len(body)
print(total // max(count, 1))
EOF
cat >"$TMP/cpu.py" <<'EOF'
"""cpu.py machine          -> `busy idle` jiffies of the whole machine
cpu.py snap PID OUT      -> jiffies of PID (process, which includes ended threads, and per thread) as JSON
cpu.py diff A B SECS     -> `process% busiest-threads` in % of one core, threads summed by name"""
import json, os, sys
def ticks(path):
    s = open(path).read()
    f = s[s.rindex(")") + 2:].split()
    return s[s.index("(") + 1:s.rindex(")")], int(f[11]) + int(f[12])
cmd = sys.argv[1]
if cmd == "machine":
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    print(sum(v[:8]) - v[3] - v[4], v[3] + v[4])
elif cmd == "snap":
    pid, out = sys.argv[2], sys.argv[3]
    snap = {"total": 0, "threads": {}}
    try:
        snap["total"] = ticks(f"/proc/{pid}/stat")[1]
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                snap["threads"][t] = ticks(f"/proc/{pid}/task/{t}/stat")
            except (FileNotFoundError, ProcessLookupError):
                pass
    except (FileNotFoundError, ProcessLookupError):
        pass
    json.dump(snap, open(out, "w"))
elif cmd == "diff":
    a, b = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
    scale = 100.0 / os.sysconf("SC_CLK_TCK") / float(sys.argv[4])
    by_name = {}
    for tid, (name, t1) in b["threads"].items():
        t0 = a["threads"].get(tid, (name, 0))[1]
        by_name[name] = by_name.get(name, 0) + t1 - t0
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:3]
    print("%.0f" % ((b["total"] - a["total"]) * scale),
          ",".join("%s=%.0f%%" % (n, d * scale) for n, d in top if d > 0) or "-")
EOF
HZ=$(getconf CLK_TCK)

# ---------- 3. Alertmanager + its sink ----------
AM_CONFIG=$AM_DIR/alertmanager.yml
SINK_PORT=5001
if ! port_free $SINK_PORT; then
    SINK_PORT=$(free_port)
    sed "s#127.0.0.1:5001#127.0.0.1:$SINK_PORT#" "$AM_CONFIG" >"$TMP/alertmanager.yml"
    AM_CONFIG=$TMP/alertmanager.yml
    log "port 5001 is taken: sink on $SINK_PORT"
fi
python3 "$AM_DIR/sink.py" "$SINK_PORT" >"$TMP/sink.log" 2>&1 &
SINK_PID=$!; PIDS+=("$SINK_PID")
AM_PORT=$(free_port)
mkdir -p "$TMP/am-data"
prometheus-alertmanager --config.file="$AM_CONFIG" --storage.path="$TMP/am-data" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= --log.level=warn \
    >"$TMP/alertmanager.log" 2>&1 &
AM_PID=$!; PIDS+=("$AM_PID")
wait_ready "http://127.0.0.1:$SINK_PORT/count" "$SINK_PID" sink
wait_ready "http://127.0.0.1:$AM_PORT/-/ready" "$AM_PID" alertmanager
AM_VERSION=$(prometheus-alertmanager --version 2>&1 | head -1 | awk '{print $3}')

# ---------- 4. paiid-alerts ----------
# start_pa DB PORT LOGNAME: starts paiid-alerts on DB; sets STARTED_PID.
start_pa() {
    (cd "$ROOT" && exec env -u SLACK_WEBHOOK_URL -u SLACK_BOT_TOKEN -u PAGERDUTY_ROUTING_KEY -u SMTP_URL \
        -u SENTRY_WEBHOOK_TOKEN -u PUBLIC_URL \
        DATABASE_URL="sqlite://$1" ROUTING_CONFIG="${ROUTING:-$ROOT/routing.yaml}" SENTRY_CLIENT_SECRET=$SECRET \
        LISTEN_ADDR="127.0.0.1:$2" DATABASE_DURABILITY="$DURABILITY" RUST_LOG=warn \
        "$PA_BIN" serve) >>"$TMP/$3.log" 2>&1 &
    STARTED_PID=$!; PIDS+=("$STARTED_PID")
    wait_ready "http://127.0.0.1:$2/readyz" "$STARTED_PID" "$3"
}
PA_PORT=$(free_port)
DB=$TMP/bench.db
start_pa "$DB" "$PA_PORT" paiid-alerts
PA_PID=$STARTED_PID

# Sanity: one signed webhook must be accepted, one with a bad signature refused.
python3 "$TMP/gen.py" "$FIXTURE" "$TMP/bodies.probe" 65535 1 1 "$SECRET" >/dev/null
IFS=$'\t' read -r probe_sig probe_body <"$TMP/bodies.probe"
probe() { # SIGNATURE [PORT]
    curl -sS -o "$TMP/probe.out" -w '%{http_code}' --max-time 10 -X POST \
        "http://127.0.0.1:${2:-$PA_PORT}/webhooks/sentry" -H 'Content-Type: application/json' \
        -H 'Sentry-Hook-Resource: event_alert' -H "Sentry-Hook-Signature: $1" --data-binary "$probe_body"
}
if [[ ${probe_sig:0:1} == 0 ]]; then bad_sig=1${probe_sig:1}; else bad_sig=0${probe_sig:1}; fi
code=$(probe "$bad_sig")
[[ $code == 401 || $code == 403 ]] || die "a bad signature got $code, not 401/403: $(cat "$TMP/probe.out")"
code=$(probe "$probe_sig")
[[ $code == 200 ]] || die "a signed webhook got $code: $(cat "$TMP/probe.out")"
log "probe ok: $(cat "$TMP/probe.out")"

stored_events() { sqlite3 -cmd '.timeout 5000' "${1:-$DB}" 'SELECT count(*) FROM events'; }

# The backlog side (PAB): a second paiid-alerts whose database holds SEED_EVENTS older events
# (1-30 days old: outside every rate window) and SEED_DELIVERIES deliveries waiting for a Slack
# that is down (failed, next retry in an hour), each for its own open incident. Rows are SQL
# copies of the ones this binary wrote for the probe webhook, so they match its schema.
SEED_EVENTS=${SEED_EVENTS:-0}; SEED_DELIVERIES=${SEED_DELIVERIES:-0}
PAB_PID=
if ((SEED_EVENTS + SEED_DELIVERIES > 0)); then
    DBB=$TMP/backlog.db; PAB_PORT=$(free_port)
    start_pa "$DBB" "$PAB_PORT" paiid-alerts-backlog
    code=$(probe "$probe_sig" "$PAB_PORT"); [[ $code == 200 ]] || die "backlog probe got $code"
    sleep 1  # its delivery to the log channel
    kill -TERM "$STARTED_PID"; wait "$STARTED_PID" 2>/dev/null || true
    log "seeding $SEED_EVENTS events and $SEED_DELIVERIES waiting deliveries"
    python3 - "$DBB" "$SEED_EVENTS" "$SEED_DELIVERIES" <<'EOF'
import sqlite3, sys, time
db, events, deliveries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time() * 1000); day = 86_400_000
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA synchronous = OFF"); con.execute("BEGIN")
def copy(table, where, n, overrides):
    cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
    exprs = [overrides.get(c, f"t.{c}") for c in cols]
    con.execute(f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
                f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM c, "
                f"(SELECT * FROM {table} WHERE {where} LIMIT 1) t")
(inc,) = con.execute("SELECT max(id) FROM incidents").fetchone()
(ev,) = con.execute("SELECT max(id) FROM events").fetchone()
(dl,) = con.execute("SELECT max(id) FROM deliveries").fetchone()
if deliveries:
    copy("incidents", f"id = {inc}", deliveries, {"id": f"{inc} + x", "incident_key": "'seed-' || x",
         "sentry_issue_id": "'seed-' || x", "next_escalation_at": "NULL"})
    copy("deliveries", f"incident_id = {inc}", deliveries, {"id": f"{dl} + x", "incident_id": f"{inc} + x",
         "channel": "'slack-alerts'", "status": "'failed'", "attempts": "1", "lease_until": "NULL",
         "next_attempt_at": f"{now} + 3600000", "delivered_at": "NULL"})
if events:
    copy("events", f"id = {ev}", events, {"id": f"{ev} + x", "dedup_key": "'seed-' || x",
         "received_at": f"{now} - 30 * {day} + x * (29 * {day} / {events})", "incident_id": "NULL"})
con.execute("COMMIT")
print(con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries WHERE status = 'failed')").fetchone())
EOF
    start_pa "$DBB" "$PAB_PORT" paiid-alerts-backlog
    PAB_PID=$STARTED_PID
fi

# The ceiling: the same HTTP stack reading the body and nothing else.
BARE_PID=
if [[ -x $BARE_BIN ]]; then
    BARE_PORT=$(free_port)
    "$BARE_BIN" "127.0.0.1:$BARE_PORT" >"$TMP/bare.log" 2>&1 &
    BARE_PID=$!; PIDS+=("$BARE_PID")
    wait_ready "http://127.0.0.1:$BARE_PORT/readyz" "$BARE_PID" bare
else
    log "no $BARE_BIN (cargo build --release --example bare_server): no BARE rounds"
fi

# What one fsync costs on the database's file system: 16 KB rewritten in place, as a WAL commit.
FSYNC=$(python3 - "$TMP" <<'EOF'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync.probe")
fd = os.open(path, os.O_RDWR | os.O_CREAT)
os.ftruncate(fd, 16 << 20); os.fsync(fd)
ts = []
for i in range(200):
    os.pwrite(fd, b"x" * 16384, (i % 512) * 16384)
    t = time.perf_counter(); os.fdatasync(fd); ts.append(time.perf_counter() - t)
os.close(fd); os.unlink(path)
ts.sort()
print("%.3f %.3f %.3f" % (sum(ts) / len(ts) * 1e3, ts[100] * 1e3, ts[180] * 1e3))
EOF
)
log "fdatasync on the database's file system (mean p50 p90, ms): $FSYNC"

proc_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Waits until a server has been idle (<5% of a core) for a second, at most 15 s: each round
# starts without the previous round's leftovers (Alertmanager notifications, our outbox).
settle() {
    local a b
    local busy_ticks
    busy_ticks() { local t=0 p; for p in "$AM_PID" "$PA_PID" $BARE_PID $PAB_PID; do t=$((t + $(proc_ticks "$p"))); done; echo "$t"; }
    for _ in $(seq 15); do
        a=$(busy_ticks)
        sleep 1
        b=$(busy_ticks)
        (((b - a) * 100 < 5 * HZ)) && return 0
    done
    log "servers still busy after 15 s; going on"
}

# ---------- 5. the runs ----------
cat >"$TMP/am.lua" <<EOF
dofile("$AM_DIR/alerts.lua")
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "non2xx=%d connect=%d read=%d write=%d timeout=%d sent=%d bodies=0 repeats=0\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout, summary.requests))
end
EOF

RESULTS=$TMP/results.tsv
: >"$RESULTS"
PA_RPS_GUESS=30000 # bodies for the warm-up; later rounds are sized from the warm-up's rate
FAILED=0

# run NAME ROUND SECONDS: one wrk run; appends a row to $RESULTS.
run() {
    local name=$1 round=$2 secs=$3 url script pid before=0 before_max=0 after stored lower db=$DB
    settle
    if [[ $name == AM ]]; then
        url="http://127.0.0.1:$AM_PORT"; script=$TMP/am.lua; pid=$AM_PID
    else
        url="http://127.0.0.1:$PA_PORT"; script=$ROOT/scripts/bench-intake.lua; pid=$PA_PID
        [[ $name == BARE ]] && { url="http://127.0.0.1:$BARE_PORT"; pid=$BARE_PID; }
        [[ $name == PAB ]] && { url="http://127.0.0.1:$PAB_PORT"; pid=$PAB_PID; db=$DBB; }
        local n=$((PA_RPS_GUESS * secs + 10 * CONNECTIONS)) size fixtures=$FIXTURE mode=trimmed
        [[ $name == PAF ]] && { fixtures=$FULL_FIXTURES; mode=full; }
        # Each round and side its own event ids (the round number's high digit says which).
        local seed=${round/warmup/0}
        [[ $name == PAF ]] && seed=$((seed + 1000))
        [[ $name == BARE ]] && seed=$((seed + 2000))
        [[ $name == PAB ]] && seed=$((seed + 3000))
        size=$(python3 "$TMP/gen.py" "$fixtures" "$TMP/bodies.$round" "$seed" "$n" "$ISSUES" "$SECRET" "$mode")
        export BODIES=$TMP/bodies.$round
        [[ $name == PAF ]] && PAF_SIZE=$size
        log "$name round $round: $n distinct signed bodies ($mode), mean $size bytes"
        before=$(stored_events "$db")
        before_max=$(sqlite3 -cmd '.timeout 5000' "$db" 'SELECT coalesce(max(id), 0) FROM events')
    fi
    # CPU is sampled over the steady part of the run only: from when the server starts working
    # (wrk first loads its requests) plus 0.5 s, to 1 s before wrk's end.
    log "$name round $round: wrk -t$THREADS -c$CONNECTIONS -d${secs}s --latency"
    THREADS=$THREADS wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" --latency -s "$script" \
        "$url" >"$TMP/wrk.$name.$round.out" 2>&1 &
    local wpid=$! t0 m0 m1 w0 w1 ns0 ns1 window
    WRK_PID=$wpid
    t0=$(proc_ticks "$pid")
    for _ in $(seq 1200); do
        sleep 0.05
        (($(proc_ticks "$pid") > t0 + 1)) && break
        kill -0 "$wpid" 2>/dev/null || break
    done
    sleep 0.5
    ns0=$(date +%s%N); m0=$(python3 "$TMP/cpu.py" machine); w0=$(proc_ticks "$wpid")
    python3 "$TMP/cpu.py" snap "$pid" "$TMP/cpu.$name.$round.0"
    sleep "$(awk -v s="$secs" 'BEGIN {print (s > 2.5 ? s - 1.5 : 1)}')"
    ns1=$(date +%s%N); m1=$(python3 "$TMP/cpu.py" machine); w1=$(proc_ticks "$wpid")
    python3 "$TMP/cpu.py" snap "$pid" "$TMP/cpu.$name.$round.1"
    wait "$wpid" || die "wrk failed: $(cat "$TMP/wrk.$name.$round.out")"
    WRK_PID=
    window=$(awk -v a="$ns0" -v b="$ns1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
    local line
    line=$(grep '^BENCH ' "$TMP/wrk.$name.$round.out") || die "no result from wrk: $(cat "$TMP/wrk.$name.$round.out")"
    local requests duration_us rps p50_us p90_us p99_us max_us non2xx connect read write timeout sent bodies repeats
    eval "$(echo "${line#BENCH }" | tr ' ' '\n' | sed 's/^/local /')"
    # CPU in % of one core over that window: server (total and busiest threads), wrk, machine.
    local server_cpu wrk_cpu machine_cpu threads_cpu
    read -r server_cpu threads_cpu < <(python3 "$TMP/cpu.py" diff "$TMP/cpu.$name.$round.0" "$TMP/cpu.$name.$round.1" "$window")
    wrk_cpu=$(awk -v a="$w0" -v b="$w1" -v hz="$HZ" -v s="$window" 'BEGIN {printf "%.0f", (b - a) / hz / s * 100}')
    machine_cpu=$(echo "$m0 $m1" | awk -v n="$(nproc)" '{b=$3-$1; i=$4-$2; printf "%.0f", b/(b+i)*n*100}')
    local check="-"
    if [[ $name == PA || $name == PAF || $name == PAB ]]; then
        # Committed before 2xx: every request answered 2xx is stored once the run ends. Requests
        # in flight when wrk stops may be stored without being counted, so stored <= sent.
        local prev=-1
        for _ in $(seq 50); do after=$(stored_events "$db"); [[ $after == "$prev" ]] && break; prev=$after; sleep 0.2; done
        stored=$((after - before))
        lower=$((requests - non2xx - repeats))
        if ((stored < lower)); then
            check="LOST:$((lower - stored))"; FAILED=1
        elif ((stored > sent)); then
            check="EXTRA:$((stored - sent))"; FAILED=1
        else
            check="ok:$stored"
        fi
        # Events of one group commit share received_at (ms): about how many webhooks per commit.
        local per_commit
        per_commit=$(sqlite3 -cmd '.timeout 5000' "$db" \
            "SELECT printf('%.1f', count(*) * 1.0 / max(count(DISTINCT received_at), 1)) FROM events WHERE id > $before_max")
        check="$check,~$per_commit/commit"
        ((repeats == 0)) || log "PA round $round: up to $repeats requests resent a body (duplicates)"
        rm -f "$TMP/bodies.$round"
        if [[ $round == warmup && $name == PA ]]; then
            PA_RPS_GUESS=$(awk -v r="$rps" 'BEGIN {printf "%d", r * 2 + 1000}')
        fi
    fi
    [[ $name == BARE ]] && rm -f "$TMP/bodies.$round"
    if ((non2xx + connect + read + write + timeout > 0)) && [[ $round != warmup ]]; then FAILED=1; fi
    # CPU time the server spent per request (us): less sensitive to other load than req/s.
    local cost others
    cost=$(awk -v c="$server_cpu" -v r="$rps" 'BEGIN {printf "%.0f", (r > 0 ? c / 100 / r * 1e6 : 0)}')
    others=$((machine_cpu - server_cpu - wrk_cpu)); ((others > 0)) || others=0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rps" \
        "$requests" "$p50_us" "$p99_us" "$max_us" "$non2xx" "$((connect + read + write + timeout))" \
        "$server_cpu" "$cost" "$wrk_cpu" "$others" "$check" "$threads_cpu" >>"$RESULTS"
    log "$name round $round: $rps req/s, p99 $((p99_us / 1000)) ms, non-2xx $non2xx, check $check"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine: $(nproc) cores, load $LOAD0"
START=$(date +%s)
PAF_SIZE=0
run AM warmup "$WARMUP"
run PA warmup "$WARMUP"
[[ -n $BARE_PID ]] && run BARE warmup "$WARMUP"
[[ -n $FULL_FIXTURES ]] && run PAF warmup "$WARMUP"
[[ -n $PAB_PID ]] && run PAB warmup "$WARMUP"
for r in $(seq "$ROUNDS"); do
    run AM "$r" "$DURATION"
    run PA "$r" "$DURATION"
    [[ -n $BARE_PID ]] && run BARE "$r" "$DURATION"
    [[ -n $FULL_FIXTURES ]] && run PAF "$r" "$DURATION"
    [[ -n $PAB_PID ]] && run PAB "$r" "$DURATION"
done
ELAPSED=$(($(date +%s) - START))

# ---------- 6. report ----------
sink=$(curl -fsS "http://127.0.0.1:$SINK_PORT/count" || echo '?')
total_events=$(stored_events)
incidents=$(sqlite3 -cmd '.timeout 5000' "$DB" 'SELECT count(*) FROM incidents')
statuses=$(sqlite3 -cmd '.timeout 5000' "$DB" "SELECT group_concat(status || '=' || n, ' ') FROM (SELECT status, count(*) n FROM events GROUP BY status)")
deliveries=$(sqlite3 -cmd '.timeout 5000' "$DB" "SELECT group_concat(status || '=' || n, ' ') FROM (SELECT status, count(*) n FROM deliveries GROUP BY status)")

echo
echo "paiid-alerts intake vs Alertmanager $AM_VERSION  ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, wrk -t$THREADS -c$CONNECTIONS, ${DURATION}s rounds, SQLite WAL synchronous=$DURABILITY)"
echo "AM = POST /api/v2/alerts, 1 alert/request, memory only.  PA = POST /webhooks/sentry, signed event_alert, committed before 2xx."
echo "CPU: % of one core over the steady part of the round (200% = both cores); other = the rest of the machine (shared)."
echo "stored check: events stored in the round, between wrk's 2xx count and the requests it sent; ~N/commit = webhooks per group commit."
echo "load average at start: $LOAD0"
echo
{
    printf 'who\tround\treq/s\trequests\tp50 ms\tp99 ms\tmax ms\tnon-2xx\tsock err\tserver CPU\tCPU us/req\twrk CPU\tother CPU\tstored check\tbusiest server threads\n'
    awk -F'\t' -v OFS='\t' '{printf "%s\t%s\t%.0f\t%s\t%.2f\t%.2f\t%.1f\t%s\t%s\t%s%%\t%s\t%s%%\t%s%%\t%s\t%s\n",
        $1, $2, $3, $4, $5/1000, $6/1000, $7/1000, $8, $9, $10, $11, $12, $13, $14, $15}' "$RESULTS"
} | column -t -s $'\t'
echo
awk -F'\t' -v conns="$CONNECTIONS" -v fsync="$FSYNC" -v pafsize="$PAF_SIZE" -v seedev="$SEED_EVENTS" -v seeddl="$SEED_DELIVERIES" '$2 != "warmup" {n[$1]++; r[$1]+=$3; p50[$1]+=$5; p99[$1]+=$6; bad[$1]+=$8+$9; cost[$1]+=$11}
    END {
        split("AM PA BARE PAF PAB", order, " ")
        for (k = 1; k <= 5; k++) {
            w = order[k]
            if (n[w]) printf "%s mean: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %.0f us server CPU per request (means of %d rounds), non-2xx + socket errors %d\n",
                w, r[w]/n[w], p50[w]/n[w]/1000, p99[w]/n[w]/1000, cost[w]/n[w], n[w], bad[w]
        }
        if (n["AM"] && n["PA"] && r["AM"] > 0 && cost["PA"] > 0) {
            printf "RATIO paiid-alerts / Alertmanager = %.2f in req/s  (target >= 2.00, with p99 < 10 ms)\n", (r["PA"]/n["PA"]) / (r["AM"]/n["AM"])
            printf "      in server CPU per request (AM us/req / PA us/req) = %.2f\n", (cost["AM"]/n["AM"]) / (cost["PA"]/n["PA"])
        }
        if (n["BARE"] && r["BARE"] > 0)
            printf "PA / bare-server ceiling = %.2f in req/s (BARE %.0f req/s: same HTTP stack, reads the body, nothing else)\n", (r["PA"]/n["PA"]) / (r["BARE"]/n["BARE"]), r["BARE"]/n["BARE"]
        if (n["PAF"])
            printf "PAF (full-size real fixtures, mean %d bytes): %.0f req/s, %.1f MB/s of bodies, p99 %.2f ms\n", pafsize, r["PAF"]/n["PAF"], r["PAF"]/n["PAF"]*pafsize/1e6, p99["PAF"]/n["PAF"]/1000
        if (n["PAB"] && r["PA"] > 0)
            printf "PAB (backlog: %d older events, %d deliveries waiting) / PA (empty database) = %.2f in req/s (target >= 0.90)\n", seedev, seeddl, (r["PAB"]/n["PAB"]) / (r["PA"]/n["PA"])
        split(fsync, f, " ")
        if (f[1] > 0)
            printf "fdatasync mean %.2f ms (p50 %.2f, p90 %.2f): at %d connections, one fsync before each 2xx caps intake near %.0f req/s (durability full)\n", f[1], f[2], f[3], conns, conns / (f[1] / 1000)
    }' "$RESULTS"
echo "stored events: $total_events ($statuses), incidents: $incidents, deliveries: ${deliveries:-none}"
echo "alertmanager sink: $sink"
echo "benchmark time: ${ELAPSED}s"
if ((FAILED)); then
    echo "FAILED: non-2xx / socket errors or lost events (see above)"
    exit 1
fi
echo "OK: no non-2xx, no socket errors, every 2xx stored"
