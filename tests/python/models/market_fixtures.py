"""Helpers for the market model tests: the shared vendor files parsed the way the loaders do and
written straight into raw.* (DuckDB or PostgreSQL), dbt invoked in-process, tables read back.

Writing raw rows directly (instead of through `mwh load`) lets a test hold bars back, correct them
and replay them late with exact control; the table layout comes from market_warehouse/loaders/schema.py.
"""

from __future__ import annotations

import io
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from market_warehouse.loaders.schema import BARS, CORPORATE_ACTIONS, MARKET_TABLES, RAW_SCHEMA, TYPES  # noqa: E402

SAMPLE = REPO / "data" / "sample"
ALPHAVANTAGE = sorted((SAMPLE / "alphavantage").glob("DA-*-T-*.csv.gz"))
# Two whole daily histories, for tests that load through the real pipeline (load_through_pipeline)
AAPL_MSFT_DAILY = [SAMPLE / "alphavantage" / f"DA-{s}-T-2021-04-21.csv.gz" for s in ("AAPL", "MSFT")]
FILUSDT = [SAMPLE / "binance_klines" / f"FILUSDT-1m-2023-{m}.csv.gz" for m in ("02", "04")]
RUN_ID = "test-run"
PROJECT_PARTS = ("dbt_project.yml", "models", "macros", "seeds", "snapshots", "analyses", "docs", "tests")


def copy_project(dest: Path) -> Path:
    """A copy of the dbt project (no Python tests, no caches) for a test that edits a seed or a model."""
    dest.mkdir(parents=True)
    for part in PROJECT_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("python", "__pycache__"))
        elif src.exists():
            shutil.copyfile(src, dest / part)
    return dest


def av_symbol(path: Path) -> str:
    return path.name[len("DA-"):].rsplit("-T-", 1)[0]


def read_alphavantage(path: Path, loaded_at: datetime | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bars and corporate actions of one Alpha Vantage daily-adjusted file."""
    loaded_at = loaded_at or datetime.now(UTC)
    df = pd.read_csv(path)
    symbol = av_symbol(path)
    ts = pd.to_datetime(df["timestamp"]).dt.tz_localize("UTC")
    bars = pd.DataFrame({
        "ts": ts, "symbol": symbol, "exchange": "US", "interval": "1d",
        "open": df["open"], "high": df["high"], "low": df["low"], "close": df["close"],
        "volume": df["volume"].astype(float), "adj_close": df["adjusted_close"],
        "vwap": None, "trade_count": None, "quote_volume": None,
        "taker_buy_volume": None, "taker_buy_quote_volume": None,
        "source": str(path), "run_id": RUN_ID, "loaded_at": loaded_at,
    })
    ex_date = pd.to_datetime(df["timestamp"]).dt.date
    div = df[df["dividend_amount"] > 0]
    spl = df[df["split_coefficient"] != 1]
    actions = pd.concat([
        pd.DataFrame({"ex_date": ex_date[div.index], "action": "dividend", "value": div["dividend_amount"]}),
        pd.DataFrame({"ex_date": ex_date[spl.index], "action": "split", "value": spl["split_coefficient"]}),
    ], ignore_index=True)
    actions.insert(1, "symbol", symbol)
    actions.insert(2, "exchange", "US")
    actions["source"] = str(path)
    actions["run_id"] = RUN_ID
    actions["loaded_at"] = loaded_at
    return bars, actions[[c.name for c in CORPORATE_ACTIONS.columns]]


def read_binance(path: Path, symbol: str = "FILUSDT", loaded_at: datetime | None = None) -> pd.DataFrame:
    loaded_at = loaded_at or datetime.now(UTC)
    df = pd.read_csv(path)
    return pd.DataFrame({
        "ts": pd.to_datetime(df["open_time"], unit="ms", utc=True), "symbol": symbol,
        "exchange": "BINANCE", "interval": "1m",
        "open": df["open"], "high": df["high"], "low": df["low"], "close": df["close"],
        "volume": df["volume"].astype(float), "adj_close": None,
        "vwap": (df["quote_volume"] / df["volume"]).where(df["volume"] > 0),
        "trade_count": df["count"].astype("Int64"), "quote_volume": df["quote_volume"],
        "taker_buy_volume": df["taker_buy_volume"], "taker_buy_quote_volume": df["taker_buy_quote_volume"],
        "source": str(path), "run_id": RUN_ID, "loaded_at": loaded_at,
    })


def closed_xnys_sessions(n: int) -> list[pd.Timestamp]:
    """The last n XNYS session dates (UTC midnight) closed at least 6 hours ago, from the calendar seed (the
    freshness checks' default grace): a series whose last bar is the last of them is fresh."""
    sessions = pd.read_csv(REPO / "seeds" / "trading_sessions.csv")
    sessions = sessions[sessions["calendar"] == "XNYS"]
    close = pd.to_datetime(sessions["close_utc"], utc=True)
    done = sessions[close + pd.Timedelta(hours=6) <= pd.Timestamp.now(tz="UTC")]
    return [pd.Timestamp(d, tz="UTC") for d in done["session_date"].tail(n)]


def load_sample(symbols: list[str] | None = None, start: str | None = None, end: str | None = None,
                crypto: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shared sample as (bars, actions); optional symbol subset and [start, end] date range."""
    frames, actions = [], []
    for path in ALPHAVANTAGE:
        if symbols is not None and av_symbol(path) not in symbols:
            continue
        b, a = read_alphavantage(path)
        frames.append(b)
        actions.append(a)
    if crypto:
        frames.extend(read_binance(p) for p in FILUSDT)
    bars = pd.concat(frames, ignore_index=True)
    acts = pd.concat(actions, ignore_index=True) if actions else _empty(CORPORATE_ACTIONS)
    if start:
        bars = bars[bars["ts"] >= pd.Timestamp(start, tz="UTC")]
        acts = acts[pd.to_datetime(acts["ex_date"]) >= pd.Timestamp(start)]
    if end:
        bars = bars[bars["ts"] < pd.Timestamp(end, tz="UTC")]
        acts = acts[pd.to_datetime(acts["ex_date"]) < pd.Timestamp(end)]
    return bars.reset_index(drop=True), acts.reset_index(drop=True)


def _empty(table) -> pd.DataFrame:
    return pd.DataFrame({c.name: [] for c in table.columns})


def ddl(table, dialect: str) -> str:
    cols = ", ".join(
        f'"{c.name}" {TYPES[c.type][dialect]}{"" if c.nullable else " not null"}' for c in table.columns
    )
    key = ", ".join(f'"{k}"' for k in table.key)
    return f"create table if not exists {RAW_SCHEMA}.{table.name} ({cols}, primary key ({key}))"


# ---- DuckDB -------------------------------------------------------------------------------------

def duckdb_create(path: str) -> None:
    import duckdb
    with duckdb.connect(path) as con:
        con.execute(f"create schema if not exists {RAW_SCHEMA}")
        for t in MARKET_TABLES:
            con.execute(ddl(t, "duckdb"))


def duckdb_upsert(path: str, bars: pd.DataFrame | None = None, actions: pd.DataFrame | None = None) -> None:
    """Insert or replace rows by key (newest load wins), as the loader's merge does."""
    import duckdb
    duckdb_create(path)
    with duckdb.connect(path) as con:
        for table, df in ((BARS, bars), (CORPORATE_ACTIONS, actions)):
            if df is None or df.empty:
                continue
            cols = ", ".join(f'"{c}"' for c in table.column_names)
            con.register("frame", df[table.column_names])
            con.execute(f"insert or replace into {table.qualified} ({cols}) select {cols} from frame")
            con.unregister("frame")


def duckdb_execute(path: str, sql: str) -> None:
    import duckdb
    with duckdb.connect(path) as con:
        con.execute(sql)


# ---- PostgreSQL / TimescaleDB -------------------------------------------------------------------

PG_DSN = "host=127.0.0.1 port=5433 user=postgres"


def pg_create_database(name: str, timescale: bool) -> None:
    import psycopg
    with psycopg.connect(PG_DSN + " dbname=postgres", autocommit=True) as con:
        con.execute(f'drop database if exists "{name}" with (force)')
        con.execute(f'create database "{name}"')
    pg_create_raw(name, timescale)


def pg_create_raw(name: str, timescale: bool) -> None:
    """raw.* in an existing database (a hypertable for bars where the extension is installed)."""
    import psycopg
    with psycopg.connect(f"{PG_DSN} dbname={name}", autocommit=True) as con:
        if timescale:
            con.execute("create extension if not exists timescaledb")
        con.execute(f"create schema if not exists {RAW_SCHEMA}")
        for t in MARKET_TABLES:
            con.execute(ddl(t, "postgres"))
        if timescale:
            con.execute(f"select create_hypertable('{BARS.qualified}', 'ts', "
                        f"chunk_time_interval => interval '30 days', migrate_data => true, if_not_exists => true)")


def pg_drop_database(name: str) -> None:
    import psycopg
    with psycopg.connect(PG_DSN + " dbname=postgres", autocommit=True) as con:
        con.execute(f'drop database if exists "{name}" with (force)')


def pg_upsert(name: str, bars: pd.DataFrame | None = None, actions: pd.DataFrame | None = None) -> None:
    import psycopg
    with psycopg.connect(f"{PG_DSN} dbname={name}") as con:
        for table, df in ((BARS, bars), (CORPORATE_ACTIONS, actions)):
            if df is None or df.empty:
                continue
            cols = ", ".join(f'"{c}"' for c in table.column_names)
            key = ", ".join(f'"{k}"' for k in table.key)
            updates = ", ".join(f'"{c}" = excluded."{c}"' for c in table.column_names if c not in table.key)
            con.execute("create temp table frame (like " + table.qualified + ") on commit drop")
            buf = io.StringIO()
            df[table.column_names].to_csv(buf, index=False, header=False, na_rep="\\N")
            with con.cursor().copy(f"copy frame ({cols}) from stdin with (format csv, null '\\N')") as cp:
                cp.write(buf.getvalue())
            con.execute(f"insert into {table.qualified} ({cols}) select {cols} from frame "
                        f"on conflict ({key}) do update set {updates}")
            con.execute("drop table frame")
        con.commit()
    pg_execute(name, f"analyze {BARS.qualified}; analyze {CORPORATE_ACTIONS.qualified}")


def pg_execute(name: str, sql: str) -> None:
    import psycopg
    with psycopg.connect(f"{PG_DSN} dbname={name}", autocommit=True) as con:
        con.execute(sql)


# ---- one interface over both --------------------------------------------------------------------

class Warehouse:
    """The target the test fixtures selected (MWH_* environment), seen from the test."""

    def __init__(self, kind: str):
        import os
        self.kind = kind
        if kind == "duckdb":
            self.where = os.environ["MWH_DUCKDB_PATH"]
        elif kind == "timescale":
            self.where = os.environ["MWH_PG_DATABASE"]
        else:
            self.where = os.environ["MWH_PG_PLAIN_DATABASE"]
        global PG_DSN
        if kind != "duckdb":
            PG_DSN = (f"host={os.environ.get('MWH_PG_HOST', '127.0.0.1')} port={os.environ.get('MWH_PG_PORT', '5433')} "
                      f"user={os.environ.get('MWH_PG_USER', 'postgres')}"
                      + (f" password={os.environ['MWH_PG_PASSWORD']}" if os.environ.get("MWH_PG_PASSWORD") else ""))

    def create_raw(self) -> None:
        if self.kind == "duckdb":
            duckdb_create(self.where)
        else:
            pg_create_raw(self.where, timescale=self.kind == "timescale")

    def upsert(self, bars: pd.DataFrame | None = None, actions: pd.DataFrame | None = None) -> None:
        if self.kind == "duckdb":
            duckdb_upsert(self.where, bars, actions)
        else:
            pg_upsert(self.where, bars, actions)

    def execute(self, sql: str) -> None:
        if self.kind == "duckdb":
            duckdb_execute(self.where, sql)
        else:
            pg_execute(self.where, sql)

    def query(self, sql: str) -> pd.DataFrame:
        if self.kind == "duckdb":
            import duckdb
            with duckdb.connect(self.where) as con:
                return con.execute(sql).df()
        import psycopg
        with psycopg.connect(f"{PG_DSN} dbname={self.where}") as con:
            cur = con.execute(sql)
            cols = [d.name for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=cols)


MARKET_SELECTION = ["--select", "tag:market", "path:seeds"]
# build seeds and models only (tests run in the build steps that check them)
MODELS_ONLY = [*MARKET_SELECTION, "--exclude-resource-type", "test", "unit_test"]


def load_through_pipeline(target, paths: list[Path], fmt: str) -> None:
    """Load vendor files as `mwh load` does (parse, validate, write, audit into raw.loader_runs); every
    file must load. For tests that need the loaders' load marks and audit rows, not hand-written rows."""
    from market_warehouse.loaders.pipeline import load_files
    from market_warehouse.loaders.sinks import open_sink

    with open_sink(target) as sink:
        reports = load_files(sink, [str(p) for p in paths], fmt)
    assert all(r.status == "success" for r in reports), [r.line() for r in reports]


def dbt(*args: str) -> None:
    """Run dbt in-process against the target the environment selects; fail with its errors."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(["--no-use-colors", *args, "--project-dir", str(REPO)])
    if not result.success:
        failures = []
        if result.result is not None and hasattr(result.result, "results"):
            failures = [f"{r.node.unique_id}: {r.status}: {r.message}" for r in result.result.results
                        if str(r.status) in ("error", "fail")]
        raise AssertionError(f"dbt {' '.join(args)} failed: {result.exception or ''}\n" + "\n".join(failures))


def build_then_load_incrementally(wh: Warehouse, first: pd.DataFrame, second: pd.DataFrame,
                                  actions: pd.DataFrame, selection: list[str]) -> None:
    """`first` loaded two days ago and built by a full refresh, then `second` loaded now and built
    incrementally (the load marks tell the second build what changed): the incremental run under test."""
    from datetime import timedelta

    first, second = first.copy(), second.copy()
    first["loaded_at"] = datetime.now(UTC) - timedelta(days=2)
    second["loaded_at"] = datetime.now(UTC) + timedelta(minutes=1)
    wh.upsert(first, actions)
    dbt("build", *selection, "--full-refresh")
    wh.upsert(second, actions)
    dbt("build", *selection)


def read_table(wh: Warehouse, relation: str, key: list[str]) -> pd.DataFrame:
    df = wh.query(f"select * from {relation}")
    for col in df.columns:
        if str(df[col].dtype).startswith("datetime64") or (df[col].dtype == object and len(df[col].dropna()) and hasattr(df[col].dropna().iloc[0], "tzinfo")):
            df[col] = pd.to_datetime(df[col], utc=True)
    return df.sort_values(key).reset_index(drop=True)


def assert_frames_match(left: pd.DataFrame, right: pd.DataFrame, what: str, rtol: float = 1e-8,
                        atol: float = 1e-9) -> None:
    """Same rows and columns; floats equal within rtol/atol (float sums may differ in the last bits)."""
    import numpy as np
    assert list(left.columns) == list(right.columns), f"{what}: columns differ"
    assert len(left) == len(right), f"{what}: {len(left)} rows vs {len(right)}"
    for col in left.columns:
        a, b = left[col], right[col]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            a = pd.to_numeric(a, errors="coerce").to_numpy(dtype=float)
            b = pd.to_numeric(b, errors="coerce").to_numpy(dtype=float)
            bad = ~np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
            assert not bad.any(), (f"{what}.{col}: {bad.sum()} values differ, first at row "
                                   f"{int(np.argmax(bad))}: {a[bad][:3].tolist()} vs {b[bad][:3].tolist()}\n"
                                   f"{left[bad][:3]}")
        else:
            diff = ~((a == b) | (a.isna() & b.isna()))
            assert not diff.any(), f"{what}.{col}: {diff.sum()} values differ\n{left[diff][:3]}\n{right[diff][:3]}"


if __name__ == "__main__":  # scratch: python rawdata.py duckdb /tmp/x.duckdb | pg dbname [timescale]
    kind, where = sys.argv[1], sys.argv[2]
    b, a = load_sample()
    if kind == "duckdb":
        duckdb_upsert(where, b, a)
    else:
        pg_create_database(where, timescale=len(sys.argv) > 3)
        pg_upsert(where, b, a)
    print(len(b), "bars", len(a), "actions")
