#!/usr/bin/env bash
# Provision and run a local TimescaleDB for tests and benchmarks.
#
# Debian bookworm ships no TimescaleDB; trixie ships postgresql-17-timescaledb, the Apache-licensed
# edition with the Timescale-License part (tsl/: continuous aggregates, compression, job policies)
# stripped. So the server runs inside a Debian trixie chroot, and `up` builds the full edition from
# source into it (about 5 minutes on 2 cores, once; cached by the source's sha256). The host talks
# to it over 127.0.0.1. Users with their own server skip this and set MWH_PG_* instead (see README).
#
#   scripts/timescaledb.sh up      build the chroot and TimescaleDB if missing, init the cluster, start it (idempotent)
#   scripts/timescaledb.sh down    stop the server and unmount the chroot's /proc
#   scripts/timescaledb.sh status  print edition, licence, version and whether it is up; exit 0 if it answers
#
# Settings (environment):
#   MWH_TSDB_ROOT           chroot dir (default ~/.cache/market-warehouse/trixie)
#   MWH_PG_PORT             port (default 5433)
#   MWH_TIMESCALEDB_SOURCE  TimescaleDB source tarball, a path or an http(s) URL; default: the vendored
#                           ../shared/vendor/timescaledb-2.29.2.tar.xz beside the repo when present, else
#                           the upstream 2.29.2 tarball. `debian` keeps Debian's Apache-licensed package.
#   MWH_PG_DURABLE          1 keeps PostgreSQL's crash-safe defaults. Otherwise this throwaway test server runs
#                           with fsync, synchronous_commit and full_page_writes off: a crash can lose or corrupt
#                           its data, and dbt's DDL-heavy builds commit about 2.3x faster (measured: 200
#                           create/drop table commits plus a database with the extension, 0.8 s vs 1.9 s).
#                           Never keep data you care about here; point MWH_PG_* at your own server for that.
set -euo pipefail

ROOT=${MWH_TSDB_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/market-warehouse/trixie}
PORT=${MWH_PG_PORT:-5433}
PGBIN=/usr/lib/postgresql/17/bin
PGLIB=/usr/lib/postgresql/17/lib
PGDATA=/srv/mwh/pgdata            # inside the chroot
LOG=/srv/mwh/postgres.log          # inside the chroot
BUILD=/srv/mwh-build               # inside the chroot: source, build tree, log, stamp
STAMP=$BUILD/installed.sha256      # sha256 of the source tarball last installed
RESTART=$BUILD/restart-needed      # written after an install, removed once the server runs it
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TSDB_VERSION=2.29.2
VENDORED=$REPO/../shared/vendor/timescaledb-$TSDB_VERSION.tar.xz
UPSTREAM=https://github.com/timescale/timescaledb/archive/refs/tags/$TSDB_VERSION.tar.gz
PATCHES=$REPO/scripts/patches

say() { echo "timescaledb.sh: $*" >&2; }
die() { say "$*"; exit 1; }

need_root() {
    if [ "$(id -u)" != 0 ]; then
        say "building and entering the chroot needs root (debootstrap, mount, chroot)"
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
        say "cannot find a Debian mirror in /etc/apt; set MWH_DEBIAN_MIRROR"
        exit 2
    fi
    echo "${MWH_DEBIAN_MIRROR:-$m}"
}

build_chroot() {
    if [ -x "$ROOT$PGBIN/postgres" ] && ls "$ROOT$PGLIB"/timescaledb*.so >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    say "building a Debian trixie chroot with PostgreSQL 17 + TimescaleDB in $ROOT (about a minute)"
    mkdir -p "$(dirname "$ROOT")"
    rm -rf "$ROOT.partial"
    debootstrap --variant=minbase --include=postgresql-17,postgresql-17-timescaledb \
        trixie "$ROOT.partial" "$(debian_mirror)" >"$ROOT.debootstrap.log" 2>&1 || {
        say "debootstrap failed; see $ROOT.debootstrap.log"
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

in_chroot() {
    chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}

in_chroot_as_postgres() {
    chroot --userspec=postgres:postgres "$ROOT" env HOME=/var/lib/postgresql LANG=C.UTF-8 "$@"
}

psql_c() {  # psql_c DB SQL: values only, no headers; never reads ~/.psqlrc
    in_chroot_as_postgres "$PGBIN/psql" -X -h 127.0.0.1 -p "$PORT" -U postgres -qAt -d "$1" -c "$2"
}

# --- the TimescaleDB source: which tarball, and is it installed? -----------------------------

source_spec() {
    if [ -n "${MWH_TIMESCALEDB_SOURCE:-}" ]; then
        echo "$MWH_TIMESCALEDB_SOURCE"
    elif [ -f "$VENDORED" ]; then
        echo "$(cd "$(dirname "$VENDORED")" && pwd)/$(basename "$VENDORED")"
    else
        echo "$UPSTREAM"
    fi
}

# Copy (or download) the source into the chroot as $BUILD/<name>; prints the in-chroot path,
# or nothing when it cannot be had.
fetch_source() {
    local spec=$1 name
    name=$(basename "${spec%%\?*}")
    mkdir -p "$ROOT$BUILD"
    case "$spec" in
    http://* | https://*)
        if [ ! -s "$ROOT$BUILD/$name" ]; then
            say "downloading $spec"
            if ! curl -fsSL --connect-timeout 15 --retry 2 -o "$ROOT$BUILD/$name.part" "$spec" 2>/dev/null; then
                rm -f "$ROOT$BUILD/$name.part"
                return 0
            fi
            mv "$ROOT$BUILD/$name.part" "$ROOT$BUILD/$name"
        fi
        ;;
    *)
        [ -f "$spec" ] || return 0
        cmp -s "$spec" "$ROOT$BUILD/$name" 2>/dev/null || cp "$spec" "$ROOT$BUILD/$name"
        ;;
    esac
    echo "$BUILD/$name"
}

edition_installed() {  # full when the TSL library is installed, else apache
    if ls "$ROOT$PGLIB"/timescaledb-tsl-*.so >/dev/null 2>&1; then echo full; else echo apache; fi
}

# Our fixes to a release, in scripts/patches/timescaledb-<version>/ (each file says why), applied to
# the unpacked tree when its version.config names that version; a source of another version builds as is.
apply_patches() {
    local tree=$1 version patch
    version=$(awk '$1=="version" {print $3; exit}' "$tree/version.config" 2>/dev/null)
    for patch in "$PATCHES/timescaledb-$version"/*.patch; do
        [ -f "$patch" ] || continue
        if command -v patch >/dev/null; then
            patch -d "$tree" -p1 --forward --batch --quiet <"$patch"
        else
            (cd "$tree" && git apply "$patch")
        fi >>"$ROOT$BUILD/build.log" 2>&1 ||
            die "cannot apply $(basename "$patch") to TimescaleDB $version; see $ROOT$BUILD/build.log"
        say "applied $(basename "$patch")"
    done
}

install_full_edition() {
    local spec src sha started
    spec=$(source_spec)
    [ "$spec" = debian ] && return 0
    src=$(fetch_source "$spec")
    if [ -z "$src" ]; then
        if [ "$(edition_installed)" = full ]; then
            say "TimescaleDB source $spec not available; keeping the full edition already installed"
        else
            say "no TimescaleDB source ($spec not available): using Debian's Apache-licensed edition (no continuous aggregates, compression or policies)"
        fi
        return 0
    fi
    # the stamp covers the source and the patches applied to it, so a new patch rebuilds
    sha=$(cat "$ROOT$src" "$PATCHES"/*/*.patch 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$ROOT$STAMP" 2>/dev/null)" = "$sha" ] && [ "$(edition_installed)" = full ]; then
        return 0   # this source is built and installed
    fi
    started=$(date +%s)
    say "installing build tools in the chroot (postgresql-server-dev-17 cmake gcc make libicu-dev)"
    in_chroot apt-get update -qq >"$ROOT$BUILD/build.log" 2>&1 || true
    in_chroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql-server-dev-17 cmake gcc make libc6-dev libicu-dev xz-utils >>"$ROOT$BUILD/build.log" 2>&1 ||
        die "apt-get install in the chroot failed; see $ROOT$BUILD/build.log"
    say "building TimescaleDB (full edition) from $spec (about 5 minutes on 2 cores; log $ROOT$BUILD/build.log)"
    rm -rf "$ROOT$BUILD/src" && mkdir -p "$ROOT$BUILD/src"
    in_chroot tar -xf "$src" -C "$BUILD/src" --strip-components=1 >>"$ROOT$BUILD/build.log" 2>&1 ||
        die "cannot unpack $spec; see $ROOT$BUILD/build.log"
    apply_patches "$ROOT$BUILD/src"
    in_chroot sh -c "cd $BUILD/src && ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
            -DLINTER=OFF -DUSE_OPENSSL=OFF -DCMAKE_BUILD_TYPE=Release -DGENERATE_DOWNGRADE_SCRIPT=OFF \
        && cd build && make -j$(nproc) && make install" >>"$ROOT$BUILD/build.log" 2>&1 ||
        die "TimescaleDB build failed; see $ROOT$BUILD/build.log"
    rm -rf "$ROOT$BUILD/src"
    echo "$sha" >"$ROOT$STAMP"
    touch "$ROOT$RESTART"
    say "TimescaleDB full edition built and installed in $(($(date +%s) - started))s"
}

# --- the cluster ------------------------------------------------------------------------------

init_cluster() {
    if [ -f "$ROOT$PGDATA/PG_VERSION" ]; then
        return 0
    fi
    say "initialising a PostgreSQL 17 cluster in $ROOT$PGDATA (port $PORT)"
    mkdir -p "$ROOT/srv/mwh"
    chroot "$ROOT" chown postgres:postgres /srv/mwh
    in_chroot_as_postgres "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$ROOT$PGDATA/postgresql.conf" <<CONF
# market-warehouse test server
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '/tmp'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_connections = 100
# one TimescaleDB scheduler per database with the extension (the tests create one per test), plus the jobs
max_worker_processes = 32
timescaledb.max_background_workers = 24
shared_buffers = 512MB
maintenance_work_mem = 256MB
fsync = on
CONF
    echo "host all all 127.0.0.1/32 trust" >>"$ROOT$PGDATA/pg_hba.conf"
}

# The chroot's own pg_isready (the host needs no PostgreSQL client); without root, a TCP probe.
is_up() {
    if [ "$(id -u)" = 0 ] && [ -x "$ROOT$PGBIN/pg_isready" ]; then
        chroot "$ROOT" "$PGBIN/pg_isready" -h 127.0.0.1 -p "$PORT" -q >/dev/null 2>&1
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
    fi
}

start_server() {
    # After an unclean stop (a killed session), the old server's processes may still be exiting
    # and its postmaster.pid is left behind: wait for them and try again.
    local attempt
    for attempt in 1 2 3 4 5; do
        is_up && return 0
        # 9>&-: the server must not inherit the provisioning lock (fd 9), or it would hold it for
        # its whole life and every later `up` would wait forever.
        if in_chroot_as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOG" -w -t 60 start >/dev/null 2>&1 9>&-; then
            return 0
        fi
        [ "$attempt" = 5 ] && { say "server did not start; see $ROOT$LOG"; tail -5 "$ROOT$LOG" >&2; exit 1; }
        sleep 2
    done
}

stop_server() {
    if [ -f "$ROOT$PGDATA/postmaster.pid" ]; then
        in_chroot_as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 120 stop >/dev/null 2>&1 || true
    fi
}

# Clusters initialised before the full edition: room for one scheduler per database and their jobs.
# Answers true when it changed the settings (they apply at the next restart).
worker_settings() {
    [ "$(psql_c postgres "select setting from pg_settings where name = 'max_worker_processes'")" -lt 32 ] || return 1
    [ "$(psql_c postgres "select count(*) from pg_file_settings where name = 'max_worker_processes' and setting::int >= 32")" = 0 ] || return 1
    psql_c postgres "alter system set max_worker_processes = 32" >/dev/null
    psql_c postgres "alter system set timescaledb.max_background_workers = 24" >/dev/null
}

# A throwaway test server: durability off unless MWH_PG_DURABLE=1 (see the settings above). All three
# settings apply on reload; `up` re-applies them every time, so switching either way needs only `up`.
durability_settings() {
    local setting
    for setting in fsync synchronous_commit full_page_writes; do
        if [ "${MWH_PG_DURABLE:-0}" = 1 ]; then
            psql_c postgres "alter system reset $setting" >/dev/null
        else
            psql_c postgres "alter system set $setting = off" >/dev/null
        fi
    done
    psql_c postgres "select pg_reload_conf()" >/dev/null
}

# Databases whose timescaledb extension is older than the installed one get ALTER EXTENSION UPDATE
# (it must be the first statement of a fresh session: psql -X -c is exactly that).
update_extensions() {
    local db old new
    new=$(psql_c postgres "select default_version from pg_available_extensions where name = 'timescaledb'")
    for db in $(psql_c postgres "select datname from pg_database where datallowconn and not datistemplate"); do
        old=$(psql_c "$db" "select extversion from pg_extension where extname = 'timescaledb'" 2>/dev/null || true)
        if [ -n "$old" ] && [ "$old" != "$new" ]; then
            say "updating the timescaledb extension in database $db: $old -> $new"
            in_chroot_as_postgres env PGOPTIONS="-c client_min_messages=error" "$PGBIN/psql" -X -h 127.0.0.1 \
                -p "$PORT" -U postgres -qAt -d "$db" -c "alter extension timescaledb update" >/dev/null ||
                die "alter extension timescaledb update failed in database $db"
        fi
    done
}

status() {
    local edition license version db=${MWH_PG_DATABASE:-market_warehouse}
    edition=$(edition_installed)
    if ! is_up; then
        echo "TimescaleDB on 127.0.0.1:$PORT: down ($edition edition installed in $ROOT)"
        return 1
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "TimescaleDB on 127.0.0.1:$PORT: up ($edition edition installed; run as root for licence and version)"
        return 0
    fi
    # The licence setting exists once the versioned library is loaded: ask in a database with the extension.
    license=$(psql_c "$db" "select coalesce(current_setting('timescaledb.license', true), '?')" 2>/dev/null || echo '?')
    version=$(psql_c "$db" "select coalesce((select extversion from pg_extension where extname = 'timescaledb'),
            (select default_version from pg_available_extensions where name = 'timescaledb'))" 2>/dev/null || echo '?')
    case "$license" in timescale) edition=full ;; apache) edition=apache ;; esac
    echo "TimescaleDB $version on 127.0.0.1:$PORT: up, $edition edition (timescaledb.license = $license), chroot $ROOT"
}

case "${1:-up}" in
up)
    need_root
    # One provisioning at a time (two test runs starting together must not build or start twice).
    mkdir -p "$(dirname "$ROOT")"
    exec 9>"$ROOT.lock"
    flock 9
    build_chroot
    mount_proc
    install_full_edition
    init_cluster
    if [ -f "$ROOT$RESTART" ] && is_up; then
        say "restarting the server on 127.0.0.1:$PORT to load the new TimescaleDB library"
        worker_settings || true   # 1: already raised; the restart applies them either way
        stop_server
    fi
    is_up || say "starting PostgreSQL on 127.0.0.1:$PORT"
    start_server
    rm -f "$ROOT$RESTART"
    if worker_settings; then
        say "raised max_worker_processes to 32 (TimescaleDB schedulers and jobs); it applies at the server's next restart (down, then up)"
    fi
    durability_settings
    update_extensions
    # The profile's default databases: one with the extension (timescale), one without (postgres).
    for db in "${MWH_PG_DATABASE:-market_warehouse}" "${MWH_PG_PLAIN_DATABASE:-market_warehouse_plain}"; do
        psql_c postgres "select 1 from pg_database where datname = '$db'" | grep -q 1 || {
            say "creating database $db"
            psql_c postgres "create database \"$db\"" >/dev/null
        }
    done
    psql_c "${MWH_PG_DATABASE:-market_warehouse}" "create extension if not exists timescaledb" >/dev/null 2>&1 || true
    say "$(status)"
    ;;
down)
    need_root
    if [ -f "$ROOT$PGDATA/postmaster.pid" ]; then
        say "stopping the server on 127.0.0.1:$PORT"
        stop_server
    fi
    if mountpoint -q "$ROOT/proc"; then
        umount "$ROOT/proc" 2>/dev/null || umount -l "$ROOT/proc"
    fi
    ;;
status)
    status
    ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
