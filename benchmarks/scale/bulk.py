"""`make bench-scale --bulk-load`: land the generated files in raw through the engine's own bulk path
(DuckDB `read_csv`, PostgreSQL COPY), without `mwh load`, to get a loaded warehouse at the seeds' scale
fast and measure the builds. The rows are the ones `mwh load csv` writes: the same bar columns,
dividends and splits as corporate actions, one `raw.loader_runs` row per file, as `mwh load` writes
them (the models' load marks follow load entries: macros/market/incremental.sql, mwh_load_mark). No validation: the generated files are clean real histories.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import duckdb
import psycopg

from market_warehouse.loaders.schema import BARS, CORPORATE_ACTIONS, MARKET_TABLES, Table
from market_warehouse.loaders.sinks import DuckDBSink, PostgresSink

_DAILY_COLS = ("{'timestamp': 'DATE', 'open': 'DOUBLE', 'high': 'DOUBLE', 'low': 'DOUBLE', 'close': 'DOUBLE', "
               "'adjusted_close': 'DOUBLE', 'volume': 'DOUBLE', 'dividend_amount': 'DOUBLE', "
               "'split_coefficient': 'DOUBLE'}")
_MINUTE_COLS = ("{'open_time': 'BIGINT', 'open': 'DOUBLE', 'high': 'DOUBLE', 'low': 'DOUBLE', 'close': 'DOUBLE', "
                "'volume': 'DOUBLE', 'close_time': 'BIGINT', 'quote_volume': 'DOUBLE', 'count': 'BIGINT', "
                "'taker_buy_volume': 'DOUBLE', 'taker_buy_quote_volume': 'DOUBLE', 'ignore': 'VARCHAR'}")


def _daily(folder: Path) -> str:
    return (f"read_csv('{folder}/DA-*.csv', filename = true, header = true, columns = {_DAILY_COLS})")


def bars_select(folder: Path, kind: str, run_id: str) -> str:
    """raw.bars' columns, in order, of every generated file of `kind` (daily | minute) in `folder`."""
    audit = f"filename as source, '{run_id}' as run_id, cast(now() as timestamptz) as loaded_at"
    if kind == "daily":
        return f"""
            select cast(timestamp as timestamp) at time zone 'UTC' as ts,
                   regexp_extract(filename, 'DA-(.+)-T-[0-9]{{4}}', 1) as symbol, 'US' as exchange,
                   '1d' as interval, open, high, low, close, volume, adjusted_close as adj_close,
                   null::double as vwap, null::bigint as trade_count, null::double as quote_volume,
                   null::double as taker_buy_volume, null::double as taker_buy_quote_volume, {audit}
            from {_daily(folder)}"""
    return f"""
        select to_timestamp(open_time / 1000.0) as ts,
               regexp_extract(filename, '([A-Z0-9]+)-1m-[0-9]{{4}}-[0-9]{{2}}\\.csv', 1) as symbol,
               'BINANCE' as exchange, '1m' as interval, open, high, low, close, volume, null::double as adj_close,
               case when volume > 0 then quote_volume / volume end as vwap, count as trade_count, quote_volume,
               taker_buy_volume, taker_buy_quote_volume, {audit}
        from read_csv('{folder}/*-1m-*.csv', filename = true, header = true, columns = {_MINUTE_COLS})"""


def actions_select(folder: Path, run_id: str) -> str:
    """raw.corporate_actions' columns of the daily files: dividends > 0, splits > 0 and != 1."""
    return f"""
        select cast(timestamp as date) as ex_date, regexp_extract(filename, 'DA-(.+)-T-[0-9]{{4}}', 1) as symbol,
               'US' as exchange, action, value, filename as source, '{run_id}' as run_id,
               cast(now() as timestamptz) as loaded_at
        from (
            select timestamp, filename, 'dividend' as action, dividend_amount as value from {_daily(folder)}
            where dividend_amount > 0
            union all
            select timestamp, filename, 'split', split_coefficient from {_daily(folder)}
            where split_coefficient > 0 and split_coefficient <> 1
        ) as a"""


def _run_rows(run_id: str, kind: str, per_file: list[tuple[str, int]], started: str) -> str:
    """raw.loader_runs' rows of a landing: one per file (its source, as the bars carry it), as `mwh load`."""
    values = ", ".join(
        f"('{run_id}', '{source}', 'bench-bulk-{kind}', 'raw.bars', null, {n}, {n}, 0, 0, 0, 'success', null, "
        f"'{started}', now())" for source, n in per_file)
    return (f"insert into raw.loader_runs (run_id, source, loader, target_table, parameters, rows_read, "
            f"rows_loaded, rows_replaced, rows_duplicate, rows_quarantined, status, error, started_at, "
            f"finished_at) values {values}")


def land_duckdb(path: Path, folder: Path, kind: str) -> tuple[float, int]:
    """Append the files of `folder` to raw.bars (and, daily, raw.corporate_actions) of the DuckDB file
    `path` (tables created if missing). Returns (seconds, bars landed)."""
    with DuckDBSink(path) as sink:
        sink.ensure_tables(MARKET_TABLES)
    run_id = f"bulk-{uuid.uuid4().hex[:12]}"
    con = duckdb.connect(str(path), config={"threads": "2", "memory_limit": "3GB"})
    con.execute("set enable_progress_bar = false")
    con.execute("set timezone = 'UTC'")
    started = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())
    t = time.perf_counter()
    before = con.execute("select count(*) from raw.bars").fetchone()[0]
    cols = ", ".join(BARS.column_names)
    con.execute(f"insert into raw.bars ({cols}) select {cols} from ({bars_select(folder, kind, run_id)})")
    if kind == "daily":
        acols = ", ".join(CORPORATE_ACTIONS.column_names)
        con.execute(f"insert into raw.corporate_actions ({acols}) select {acols} from ({actions_select(folder, run_id)})")
    n = con.execute("select count(*) from raw.bars").fetchone()[0] - before
    per_file = con.execute("select source, count(*) from raw.bars where run_id = ? group by source order by source",
                           [run_id]).fetchall()
    con.execute(_run_rows(run_id, kind, per_file, started))
    seconds = time.perf_counter() - t
    con.close()
    return seconds, n


def copy_csv_file(conn: psycopg.Connection, table: Table, csv_path: Path) -> None:
    """COPY a header-less CSV file in the table's column order into it (client side, 1 MiB reads)."""
    sql = f"copy {table.qualified} ({', '.join(table.column_names)}) from stdin (format csv)"
    with conn.cursor() as cur, csv_path.open("rb") as f, cur.copy(sql) as cp:
        while data := f.read(1 << 20):
            cp.write(data)


def land_postgres(conninfo: str, folder: Path, kind: str, work: Path) -> tuple[float, int]:
    """The same rows by COPY (CSV, client side) into raw.bars / raw.corporate_actions of `conninfo`.
    The CSVs are written by DuckDB first (not timed)."""
    run_id = f"bulk-{uuid.uuid4().hex[:12]}"
    files = {"bars": (work / f"bulk_{kind}_{folder.name}_bars.csv", BARS, bars_select(folder, kind, run_id))}
    if kind == "daily":
        files["corporate_actions"] = (work / f"bulk_{kind}_{folder.name}_actions.csv", CORPORATE_ACTIONS,
                                      actions_select(folder, run_id))
    con = duckdb.connect(config={"threads": "2", "memory_limit": "3GB"})
    con.execute("set enable_progress_bar = false")
    con.execute("set timezone = 'UTC'")
    for csv_path, table, select in files.values():
        cols = ", ".join(table.column_names)
        con.execute(f"copy (select {cols} from ({select})) to '{csv_path}' (header false)")
    per_file = con.execute(f"select source, count(*) from ({files['bars'][2]}) group by source order by source"
                           ).fetchall()
    con.close()
    with PostgresSink(conninfo) as sink:
        sink.ensure_tables(MARKET_TABLES)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("set timezone = 'UTC'")
        started = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())
        t = time.perf_counter()
        before = conn.execute("select count(*) from raw.bars").fetchone()[0]
        for csv_path, table, _ in files.values():
            copy_csv_file(conn, table, csv_path)
        n = conn.execute("select count(*) from raw.bars").fetchone()[0] - before
        conn.execute(_run_rows(run_id, kind, per_file, started))
        conn.execute("analyze raw.bars")
        seconds = time.perf_counter() - t
    for csv_path, _, _ in files.values():
        csv_path.unlink(missing_ok=True)
    return seconds, n
