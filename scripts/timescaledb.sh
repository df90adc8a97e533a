#!/usr/bin/env bash
# Provision and run a local TimescaleDB for tests and benchmarks.
#
# Debian bookworm ships no TimescaleDB; trixie ships postgresql-17-timescaledb (Apache-licensed
# edition). It needs trixie's libc, so the server runs inside a trixie chroot and the host talks to
# it over 127.0.0.1. Users with their own server skip this and set MWH_PG_* instead (see README).
#
#   scripts/timescaledb.sh up      build the chroot if missing, init the cluster, start it (idempotent)
#   scripts/timescaledb.sh down    stop the server
#   scripts/timescaledb.sh status  exit 0 if the server answers
#
# Settings (environment): MWH_TSDB_ROOT (chroot dir), MWH_PG_PORT (default 5433).
set -euo pipefail

ROOT=${MWH_TSDB_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/market-warehouse/trixie}
PORT=${MWH_PG_PORT:-5433}
PGBIN=/usr/lib/postgresql/17/bin
PGDATA=/srv/mwh/pgdata            # inside the chroot
LOG=/srv/mwh/postgres.log          # inside the chroot

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "timescaledb.sh: building and entering the chroot needs root (debootstrap, mount, chroot)" >&2
        exit 2
    fi
}

debian_mirror() {
    # Use the mirror this machine's apt already uses, so nothing here names a host.
    local m=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
    fi
    if [ -z "$m" ]; then
        echo "timescaledb.sh: cannot find a Debian mirror in /etc/apt; set MWH_DEBIAN_MIRROR" >&2
        exit 2
    fi
    echo "${MWH_DEBIAN_MIRROR:-$m}"
}

build_chroot() {
    if [ -x "$ROOT$PGBIN/postgres" ] && ls "$ROOT"/usr/lib/postgresql/17/lib/timescaledb*.so >/dev/null 2>&1; then
        return 0
    fi
    need_root
    if ! command -v debootstrap >/dev/null; then
        echo "timescaledb.sh: installing debootstrap" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    echo "timescaledb.sh: building a Debian trixie chroot with PostgreSQL 17 + TimescaleDB in $ROOT (about a minute)" >&2
    mkdir -p "$(dirname "$ROOT")"
    rm -rf "$ROOT.partial"
    debootstrap --variant=minbase --include=postgresql-17,postgresql-17-timescaledb \
        trixie "$ROOT.partial" "$(debian_mirror)" >"$ROOT.debootstrap.log" 2>&1 || {
        echo "timescaledb.sh: debootstrap failed; see $ROOT.debootstrap.log" >&2
        tail -20 "$ROOT.debootstrap.log" >&2
        exit 1
    }
    mv "$ROOT.partial" "$ROOT"
}

mount_proc() {
    if ! mountpoint -q "$ROOT/proc"; then
        mount -t proc proc "$ROOT/proc"
    fi
}

in_chroot_as_postgres() {
    chroot --userspec=postgres:postgres "$ROOT" env HOME=/var/lib/postgresql LANG=C.UTF-8 "$@"
}

init_cluster() {
    if [ -f "$ROOT$PGDATA/PG_VERSION" ]; then
        return 0
    fi
    mkdir -p "$ROOT/srv/mwh"
    chroot "$ROOT" chown postgres:postgres /srv/mwh
    in_chroot_as_postgres "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$ROOT$PGDATA/postgresql.conf" <<EOF
# market-warehouse test server
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '/tmp'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_connections = 100
shared_buffers = 512MB
maintenance_work_mem = 256MB
fsync = on
EOF
    echo "host all all 127.0.0.1/32 trust" >>"$ROOT$PGDATA/pg_hba.conf"
}

is_up() {
    pg_isready -h 127.0.0.1 -p "$PORT" -q 2>/dev/null
}

case "${1:-up}" in
up)
    need_root
    build_chroot
    mount_proc
    init_cluster
    # After an unclean stop (a killed session), the old server's processes may still be exiting
    # and its postmaster.pid is left behind: wait for them and try again.
    for attempt in 1 2 3 4 5; do
        is_up && break
        if in_chroot_as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOG" -w -t 60 start >/dev/null 2>&1; then
            break
        fi
        [ "$attempt" = 5 ] && { echo "timescaledb.sh: server did not start; see $ROOT$LOG" >&2; tail -5 "$ROOT$LOG" >&2; exit 1; }
        sleep 2
    done
    is_up
    # The profile's default databases: one with the extension (timescale), one without (postgres).
    for db in "${MWH_PG_DATABASE:-market_warehouse}" "${MWH_PG_PLAIN_DATABASE:-market_warehouse_plain}"; do
        in_chroot_as_postgres "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -qAt -d postgres \
            -c "select 1 from pg_database where datname = '$db'" | grep -q 1 ||
            in_chroot_as_postgres "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -q -d postgres \
                -c "create database \"$db\""
    done
    echo "timescaledb.sh: TimescaleDB up on 127.0.0.1:$PORT (user postgres, trust)" >&2
    ;;
down)
    if [ -f "$ROOT$PGDATA/postmaster.pid" ]; then
        in_chroot_as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null || true
    fi
    ;;
status)
    is_up
    ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
