"""Storage policies: compression (columnstore) and retention, on every target.

Settings are dbt vars (dbt_project.yml `vars:`, defaults below), so dbt and the loaders agree:

- `mwh_raw_bars_compress_after_days` (30): raw.bars chunks older than this are compressed,
  segmented by symbol and ordered by time (full edition only; readers see no difference, loads and
  corrections into compressed chunks still work).
- `mwh_minute_bars_retention_days` (null = keep): 1-minute bars older than this are deleted. Every
  interval shares raw.bars' chunks, so this is a delete of the 1m rows, not a chunk drop; the
  5m/15m/1h/1d rollups keep their history (their incremental runs and refresh windows never reach
  back that far; see docs/timescaledb.md).
- `mwh_ml_compress_after_days` (30) and `mwh_ml_retention_days` (null = keep): the ML hypertables
  (predictions, signals, agent decisions), each by its own time column.

On TimescaleDB's full edition `install_policies` declares all of it as TimescaleDB jobs (compression
policies, a retention policy per ML hypertable, and a job that deletes old minute bars). Everywhere
else `mwh retention --apply` does the same deletes once (dry run by default: it prints what it would
delete).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import yaml

from market_warehouse.config import Target, load_target, project_dir
from market_warehouse.loaders.schema import BARS, TICK_TABLES
from market_warehouse.ml.schema import AGENT_DECISIONS, PREDICTIONS, SIGNALS

DEFAULTS: dict[str, int | None] = {
    "mwh_raw_bars_compress_after_days": 30,
    "mwh_minute_bars_retention_days": None,
    "mwh_ml_compress_after_days": 30,
    "mwh_ml_retention_days": None,
    # Ticks are the bulk of the raw data (a day of one symbol's book is ~0.5 GB as text): their chunks
    # compress after a week by default.
    "mwh_ticks_compress_after_days": 7,
    "mwh_ticks_retention_days": None,
}

# ML hypertables: (table, time column, compression segment columns)
ML_HYPERTABLES = (
    (PREDICTIONS, PREDICTIONS.hypertable_time, "model_id"),
    (SIGNALS, SIGNALS.hypertable_time, "strategy"),
    (AGENT_DECISIONS, AGENT_DECISIONS.hypertable_time, "agent_id"),
)
# Raw tick hypertables, the same shape: one symbol's messages in time order compress best.
TICK_HYPERTABLES = tuple((t, "ts", "symbol, exchange") for t in TICK_TABLES)
# Hypertables whose chunks are compressed and dropped by age: (tables, compress var, retention var).
AGED_HYPERTABLES = (
    (ML_HYPERTABLES, "mwh_ml_compress_after_days", "mwh_ml_retention_days"),
    (TICK_HYPERTABLES, "mwh_ticks_compress_after_days", "mwh_ticks_retention_days"),
)
MINUTE_RETENTION_PROC = "raw.mwh_minute_bars_retention"


class RetentionError(Exception):
    """A setting that is not a whole number of days, or a target that cannot do what was asked."""


def settings(**overrides: int | None) -> dict[str, int | None]:
    """The dbt vars of dbt_project.yml over DEFAULTS, then explicit overrides (None = not given)."""
    merged = dict(DEFAULTS)
    try:
        project = yaml.safe_load((project_dir() / "dbt_project.yml").read_text()) or {}
    except FileNotFoundError:
        project = {}
    for key in DEFAULTS:
        if key in (project.get("vars") or {}):
            merged[key] = project["vars"][key]
    for key, value in overrides.items():
        if value is not None:
            merged[key] = value
    for key, value in merged.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise RetentionError(f"dbt var {key} = {value!r}: expected a whole number of days >= 1, or null")
    return merged


@dataclass(frozen=True)
class Deletion:
    table: str
    where: str  # SQL condition, with one ? for the cut-off
    cutoff: datetime
    rows: int = 0

    def describe(self) -> str:
        return f"{self.table}: {self.rows:,} rows where {self.where.replace('?', repr(self.cutoff.isoformat()))}"


def plan(conn, dialect: str, conf: dict[str, int | None], now: datetime | None = None) -> list[Deletion]:
    """What the retention settings delete now: one Deletion per table, with its row count."""
    now = now or datetime.now(UTC)
    wanted: list[tuple[str, str, datetime]] = []
    if conf["mwh_minute_bars_retention_days"]:
        wanted.append((BARS.qualified, "\"interval\" = '1m' and ts < ?",
                       now - timedelta(days=conf["mwh_minute_bars_retention_days"])))
    for tables, _, retention_var in AGED_HYPERTABLES:
        if conf[retention_var]:
            cutoff = now - timedelta(days=conf[retention_var])
            wanted += [(t.qualified, f"{col} < ?", cutoff) for t, col, _ in tables]
    out = []
    for table, where, cutoff in wanted:
        if not _table_exists(conn, dialect, table):
            continue
        rows = _query(conn, dialect, f"select count(*) from {table} where {where}", [cutoff])[0][0]
        out.append(Deletion(table, where, cutoff, int(rows)))
    return out


def apply(conn, dialect: str, deletions: list[Deletion]) -> int:
    """Delete what `plan` found, in one transaction; returns the rows deleted."""
    total = 0
    cur = conn.cursor()
    if dialect == "duckdb":
        cur.execute("begin")
    try:
        for d in deletions:
            sql = f"delete from {d.table} where {d.where}"
            if dialect == "postgres":
                sql = sql.replace("?", "%s")
            cur.execute(sql, [d.cutoff])
            total += cur.rowcount if cur.rowcount and cur.rowcount > 0 else d.rows
        conn.commit() if dialect == "postgres" else cur.execute("commit")
    except Exception:
        conn.rollback() if dialect == "postgres" else cur.execute("rollback")
        raise
    return total


# ---- TimescaleDB full edition: the same as policies -------------------------------------------------

def is_full_edition(conn) -> bool:
    row = conn.execute(
        "select coalesce(current_setting('timescaledb.license', true), '') = 'timescale'"
        " and exists (select 1 from pg_extension where extname = 'timescaledb')").fetchone()
    return bool(row[0])


def _is_hypertable(conn, qualified: str) -> bool:
    schema, name = qualified.split(".")
    return conn.execute("select count(*) from timescaledb_information.hypertables"
                        " where hypertable_schema = %s and hypertable_name = %s", [schema, name]).fetchone()[0] > 0


def _compression(conn, qualified: str, segmentby: str, orderby: str, days: int | None) -> str:
    schema, name = qualified.split(".")
    enabled = conn.execute("select compression_enabled from timescaledb_information.hypertables"
                           " where hypertable_schema = %s and hypertable_name = %s", [schema, name]).fetchone()[0]
    conn.execute(f"select remove_compression_policy('{qualified}', if_exists => true)")
    if not days:
        return f"{qualified}: no compression policy"
    if not enabled:
        conn.execute(f"alter table {qualified} set (timescaledb.compress, "
                     f"timescaledb.compress_segmentby = '{segmentby}', timescaledb.compress_orderby = '{orderby}')")
    conn.execute(f"select add_compression_policy('{qualified}', compress_after => interval '{int(days)} days')")
    return f"{qualified}: compress chunks older than {days} days (segment by {segmentby}, order by {orderby})"


def install_policies(conn, conf: dict[str, int | None]) -> list[str]:
    """Declare compression and retention as TimescaleDB jobs (idempotent: replaces earlier ones).
    `conn`: a psycopg connection in autocommit mode to a full-edition database. Returns one line per
    policy."""
    if not is_full_edition(conn):
        raise RetentionError("TimescaleDB's full edition (timescaledb.license = 'timescale') is not in this "
                             "database: use `mwh retention --apply` instead of policies")
    done = []
    if _is_hypertable(conn, BARS.qualified):
        done.append(_compression(conn, BARS.qualified, "symbol", "ts", conf["mwh_raw_bars_compress_after_days"]))
        conn.execute(f"""
            create or replace procedure {MINUTE_RETENTION_PROC}(job_id int, config jsonb)
            language plpgsql as $$
            begin
                delete from {BARS.qualified}
                where "interval" = '1m' and ts < now() - (config ->> 'drop_after')::interval;
            end
            $$""")
        for (job,) in conn.execute("select job_id from timescaledb_information.jobs where proc_schema = 'raw'"
                                   " and proc_name = 'mwh_minute_bars_retention'").fetchall():
            conn.execute("select delete_job(%s)", [job])
        days = conf["mwh_minute_bars_retention_days"]
        if days:
            conn.execute(f"select add_job('{MINUTE_RETENTION_PROC}', interval '1 day', "
                         f"config => jsonb_build_object('drop_after', '{int(days)} days'))")
            done.append(f"{BARS.qualified}: delete 1-minute bars older than {days} days (daily job)")
        else:
            done.append(f"{BARS.qualified}: 1-minute bars kept")
    for tables, compress_var, retention_var in AGED_HYPERTABLES:
        days = conf[retention_var]
        for table, col, segment in tables:
            if not _is_hypertable(conn, table.qualified):
                continue
            done.append(_compression(conn, table.qualified, segment, col, conf[compress_var]))
            conn.execute(f"select remove_retention_policy('{table.qualified}', if_exists => true)")
            if days:
                conn.execute(f"select add_retention_policy('{table.qualified}', "
                             f"drop_after => interval '{int(days)} days')")
                done.append(f"{table.qualified}: drop chunks older than {days} days")
    return done


# ---- plumbing ----------------------------------------------------------------------------------

def connect(target: Target):
    if target.type == "duckdb":
        import duckdb  # deferred: a PostgreSQL-only run need not load DuckDB
        return duckdb.connect(target.path)
    import psycopg  # deferred: a DuckDB-only run need not load psycopg
    return psycopg.connect(target.conninfo())


def _query(conn, dialect: str, sql: str, params: list) -> list[tuple]:
    if dialect == "postgres":
        return conn.execute(sql.replace("?", "%s"), params).fetchall()
    return conn.execute(sql, params).fetchall()


def _table_exists(conn, dialect: str, qualified: str) -> bool:
    schema, name = qualified.split(".")
    sql = "select count(*) from information_schema.tables where table_schema = ? and table_name = ?"
    return _query(conn, dialect, sql, [schema, name])[0][0] > 0


def run(target_name: str | None, apply_: bool, policies: bool, minute_days: int | None, ml_days: int | None,
        now: datetime | None = None, out=print) -> int:
    """`mwh retention`: print (and with apply_ do) the deletes; with policies, install the TimescaleDB jobs."""
    conf = settings(mwh_minute_bars_retention_days=minute_days, mwh_ml_retention_days=ml_days)
    target = load_target(target_name)
    conn = connect(target)
    try:
        if policies:
            if target.type != "postgres":
                raise RetentionError(f"target {target.name} is DuckDB: policies need TimescaleDB's full edition")
            conn.autocommit = True
            for line in install_policies(conn, conf):
                out(f"policy: {line}")
            return 0
        retention_vars = ["mwh_minute_bars_retention_days", *(r for _, _, r in AGED_HYPERTABLES)]
        if not any(conf[v] for v in retention_vars):
            out(f"retention: nothing configured (dbt vars {', '.join(retention_vars)})")
            return 0
        deletions = plan(conn, target.dialect, conf, now)
        if not deletions:
            out(f"retention: {target.describe()} holds none of the tables retention prunes")
            return 0
        for d in deletions:
            out(f"{'deleting' if apply_ else 'would delete'} {d.describe()}")
        if apply_:
            out(f"retention: deleted {apply(conn, target.dialect, deletions):,} rows")
        else:
            out("retention: dry run; add --apply to delete")
        return 0
    finally:
        conn.close()


def _cmd(args) -> int:
    try:
        return run(args.target, args.apply, args.policies, args.minute_days, args.ml_days,
                   datetime.fromisoformat(args.now).replace(tzinfo=UTC) if args.now else None)
    except (RetentionError, ValueError) as exc:
        print(f"mwh retention: {exc}", flush=True)
        return 2


def register(sub) -> None:
    """`mwh retention`: the subcommand on the main parser's subparsers."""
    p = sub.add_parser("retention", help="delete raw 1-minute bars / ML records past their retention "
                                         "(dry run unless --apply), or install TimescaleDB policies")
    p.add_argument("--apply", action="store_true", help="delete (default: print what would be deleted)")
    p.add_argument("--policies", action="store_true",
                   help="full edition: declare compression and retention as TimescaleDB jobs instead")
    p.add_argument("--minute-days", type=int, help="override dbt var mwh_minute_bars_retention_days")
    p.add_argument("--ml-days", type=int, help="override dbt var mwh_ml_retention_days")
    p.add_argument("--now", help="reference time (UTC, ISO) instead of the clock, for replays and tests")
    p.set_defaults(func=_cmd)
