#!/usr/bin/env bash
# A throw-away PostgreSQL cluster on loopback for the PostgreSQL half of the test suite.
#
#   eval "$(scripts/test-postgres.sh start)"   # prints: export PAIID_TEST_POSTGRES_URL=...
#   scripts/test-postgres.sh stop              # stops the cluster and removes its directory
#
# Debian's server binaries (package postgresql), a cluster made by `initdb` in a temporary
# directory and run as a non-root user (`postgres`, which the package creates; the server
# refuses to run as root), listening on 127.0.0.1 only, on a free port. Trust authentication:
# nothing but this machine's loopback can reach it. `fsync=off`: the cluster is deleted after
# the run, and tests measure behaviour, not durability. Each test makes its own database.
#
# Environment: PG_STATE (default /tmp/paiid-test-postgres), where the cluster's directory
# is remembered between `start` and `stop`; PG_PORT (default: a free one); PG_FSYNC=on for a
# cluster that syncs its WAL like a production one (scripts/bench-replicas.py).
set -euo pipefail

STATE=${PG_STATE:-/tmp/paiid-test-postgres}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -n $bin ]] || { echo "test-postgres.sh: no /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    if [[ -f $STATE/dir ]] && as_owner "$bin/pg_ctl" -D "$(cat "$STATE/dir")" status >/dev/null 2>&1; then
        echo "export PAIID_TEST_POSTGRES_URL=$(cat "$STATE/url")"
        exit 0
    fi
    mkdir -p "$STATE"
    dir=$(mktemp -d /tmp/paiid-pg.XXXXXX)
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    port=${PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
    as_owner "$bin/initdb" -D "$dir/data" -U paiid --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=${PG_FSYNC:-off} -c synchronous_commit=${PG_FSYNC:-off} -c max_connections=300" \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    url="postgres://paiid@127.0.0.1:$port/postgres"
    echo "$dir/data" >"$STATE/dir"
    echo "$url" >"$STATE/url"
    echo "export PAIID_TEST_POSTGRES_URL=$url"
    ;;
stop)
    [[ -f $STATE/dir ]] || exit 0
    data=$(cat "$STATE/dir")
    as_owner "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$(dirname "$data")" "$STATE"
    ;;
*)
    sed -n '2,13p' "$0" >&2
    exit 2
    ;;
esac
