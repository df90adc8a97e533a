"""The read API for quants: bars, features and ML results as pandas DataFrames, on every target.

    from market_warehouse import read

    read.bars(["AAPL", "MSFT"], "1d", "2021-01-01", "2021-04-21")     # adjusted OHLCV (daily)
    read.bars("AAPL", last=1000)                                       # the last 1,000 daily bars
    read.latest_bars()                                                 # the latest bar of every symbol
    read.price_stats("AAPL", days=30)
    read.volume_profile("AAPL", "2021-01-01", "2021-04-21", bins=20)
    read.features(["AAPL"], "2021-01-01", "2021-04-21", version=2)
    read.training_set(["AAPL"], "2020-01-01", "2021-01-01")
    read.strategy_performance(strategy="baseline")
    read.table_sizes(); read.health()

    with read.connect("timescale") as r:                               # an explicit target / connection
        r.bars("AAPL", last=1000)

The module-level functions use one shared connection to the profile's default target (MWH_TARGET),
opened on first use (`read.close()` closes it). DuckDB is opened read-only (read-write only when this
process already holds the file read-write, as after an in-process dbt run).

Values are always bound parameters (never formatted into SQL); the only names in the SQL come from
fixed whitelists (intervals, feature versions, filter columns). Times are UTC; `start` and `end` are
inclusive (a date means that session's bar). DuckDB results come through Arrow (`.arrow()`); PostgreSQL
rows come from psycopg's binary protocol on prepared statements, into pandas column by column: timestamps
arrive as their int64 microseconds (no Python datetime per value) and become datetime64 in one vectorised
step; doubles, integers and text become numpy arrays. A double column with NULLs is float64 with NaN on
both targets (before 2026-11-22 it was an object column of floats and None on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from market_warehouse.config import Target, load_target

# interval -> (relation, has adjusted columns). Daily, hourly and 1-minute bars come from the marts (fct_bars_1m:
# indexed on (symbol, ts desc) on PostgreSQL, where staging's (symbol, exchange, interval, ts) key cannot serve
# "the last N minutes of a symbol" without a sort); the other intervals are the vendor's raw bars as staged (no
# adjustment exists for them).
BAR_RELATIONS = {
    "1d": ("marts.fct_bars_1d", True),
    "1h": ("marts.fct_bars_1h", False),
    "1m": ("marts.fct_bars_1m", False),
    "5m": ("staging.stg_market__bars", False),
    "15m": ("staging.stg_market__bars", False),
    "1wk": ("staging.stg_market__bars", False),
}
FEATURE_RELATIONS = {None: "marts.fct_features_daily", 1: "marts.fct_features_daily_v1",
                     2: "marts.fct_features_daily_v2"}
PERFORMANCE_FILTERS = ("strategy", "model_key", "symbol")
NUMERIC_OID = 1700  # PostgreSQL's numeric (psycopg returns Decimal)
# PostgreSQL type oids read column by column into numpy (everything else: per-value objects, as pandas infers).
TIMESTAMPTZ_OID, TIMESTAMP_OID = 1184, 1114  # binary: int64 microseconds since 2000-01-01
FLOAT_OIDS = (700, 701)  # real, double precision: NULL -> NaN
INT_OIDS = (20, 21, 23)  # bigint, smallint, integer: int64 (float64 with NaN when a NULL is present, as pandas)
TEXT_OIDS = (25, 1043, 1042, 19)  # text, varchar, char, name
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds
NAT = np.iinfo(np.int64).min
NS_LIMIT_US = 9_223_372_036_854_775  # |microseconds| a datetime64[ns] holds (years 1677-2262)
SCHEMAS = ("raw", "staging", "intermediate", "marts", "reference", "snapshots")
THREADED_CONVERSION_CELLS = 250_000  # DuckDB results of at least this many values convert on pyarrow's threads


def _symbols(symbols: str | Iterable[str] | None) -> list[str] | None:
    if symbols is None:
        return None
    if isinstance(symbols, str):
        return [s.strip() for s in symbols.split(",") if s.strip()]
    return [str(s) for s in symbols]


def _pg_column(oid: int, values: tuple):
    """One PostgreSQL result column (binary values, timestamps as int64 microseconds) as pandas infers it
    from Python objects, without making one per value where the type allows."""
    if oid in (TIMESTAMPTZ_OID, TIMESTAMP_OID):
        if values and all(v is None for v in values):
            return np.array(values, dtype=object)  # as pandas: a column of None
        has_null = None in values
        micros = np.array([NAT if v is None else v for v in values] if has_null else values, dtype=np.int64)
        if has_null:
            nulls = micros == NAT
            micros[nulls] = 0
        micros += PG_EPOCH_US
        if len(micros) and max(micros.max(), -micros.min()) >= NS_LIMIT_US:  # beyond datetime64[ns]: keep us
            stamps = micros
            unit = "datetime64[us]"
        else:
            stamps = micros * 1000
            unit = "datetime64[ns]"
        if has_null:
            stamps[nulls] = NAT
        return pd.DatetimeIndex(stamps.view(unit), tz="UTC" if oid == TIMESTAMPTZ_OID else None)
    if oid in FLOAT_OIDS:
        return np.array(values, dtype=np.float64)  # None -> NaN
    if oid in INT_OIDS:
        return np.array(values, dtype=np.float64 if None in values else np.int64)
    if oid in TEXT_OIDS:
        return np.array(values, dtype=object)
    column = pd.Series(list(values), dtype=None if values else object)
    return column.astype(float) if oid == NUMERIC_OID else column


def _ts(value) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class Reader:
    """One connection to a warehouse, and the read API on it."""

    def __init__(self, target: Target | str | None = None):
        self.target = target if isinstance(target, Target) else load_target(target)
        if self.target.type == "duckdb":
            import duckdb  # deferred: a PostgreSQL-only run need not load DuckDB

            self.dialect = "duckdb"
            try:
                self.con = duckdb.connect(self.target.path, read_only=True)
            except duckdb.ConnectionException:
                # This process already has the file open read-write (dbt in-process, a sink): share it.
                self.con = duckdb.connect(self.target.path)
            self.con.execute("set TimeZone = 'UTC'")
        else:
            import psycopg  # deferred: a DuckDB-only run need not load psycopg

            self.dialect = "postgres"
            self.con = psycopg.connect(self.target.conninfo(), autocommit=True)
            self.con.execute("set timezone = 'UTC'")
            # Plan once, reuse: the same statements run again and again.
            self.con.prepare_threshold = 1
            from psycopg.types.numeric import Int8BinaryLoader

            # One cursor for query(): timestamps load as their binary int64 (psycopg's C int8 loader).
            self._cur = self.con.cursor(binary=True)
            for name in ("timestamptz", "timestamp"):
                self._cur.adapters.register_loader(name, Int8BinaryLoader)

    # ---- plumbing ----------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence = (), reverse: bool = False) -> pd.DataFrame:
        """Run `sql` with `?` placeholders and bound `params`; a DataFrame (`reverse`: rows last to first)."""
        if self.dialect == "duckdb":
            arrow = self.con.execute(sql, list(params)).arrow()
            # DuckDB >= 1.4 hands back a RecordBatchReader, earlier versions a Table.
            table = arrow.read_all() if hasattr(arrow, "read_all") else arrow
            # pyarrow converts on its thread pool by default; for a small result waking the pool costs more
            # than the conversion (1,000 bars: p95 7.5 -> 0.7 ms at load 12), so small results convert here.
            frame = table.to_pandas(use_threads=table.num_rows * table.num_columns >= THREADED_CONVERSION_CELLS)
            return frame.iloc[::-1].reset_index(drop=True) if reverse else frame
        from market_warehouse.loaders.sinks.postgres_sink import _pg  # deferred: it loads psycopg

        # Binary protocol: doubles and timestamps arrive as bytes, not text to parse (the statement is
        # prepared on first use: prepare_threshold).
        cur = self._cur
        cur.execute(_pg(sql), list(params))
        desc = cur.description
        rows = cur.fetchall()
        if reverse:
            rows.reverse()
        columns = list(zip(*rows)) if rows else [()] * len(desc)
        frame = pd.DataFrame({i: _pg_column(d.type_code, values) for i, (d, values) in enumerate(zip(desc, columns))})
        frame.columns = [d.name for d in desc]  # by position: a name may repeat
        return frame

    def _query_rows(self, sql: str, params: Sequence = ()) -> pd.DataFrame:
        """PostgreSQL: the per-value path (a Python object per value, pandas infers each column); the
        reference query() is checked against in the tests."""
        from market_warehouse.loaders.sinks.postgres_sink import _pg  # deferred: it loads psycopg

        cur = self.con.cursor(binary=True)
        cur.execute(_pg(sql), list(params))
        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
        for d in cur.description:  # numeric arrives as Decimal: floats for analysis
            if d.type_code == NUMERIC_OID:
                frame[d.name] = frame[d.name].astype(float)
        return frame

    def _in(self, column: str, values: list[str]) -> tuple[str, list]:
        """`column` in `values`, as a condition with one bound parameter."""
        if len(values) == 1:
            return f"{column} = ?", [values[0]]
        if self.dialect == "duckdb":
            return f"list_contains(?, {column})", [values]
        return f"{column} = any(?)", [values]

    def _where(self, symbols, start, end, ts: str = "ts", symbol: str = "symbol") -> tuple[str, list]:
        conds, params = [], []
        syms = _symbols(symbols)
        if syms is not None:
            c, p = self._in(symbol, syms)
            conds.append(c)
            params += p
        if start is not None:
            conds.append(f"{ts} >= ?")
            params.append(_ts(start))
        if end is not None:
            conds.append(f"{ts} <= ?")
            params.append(_ts(end))
        return (" where " + " and ".join(conds)) if conds else "", params

    def close(self) -> None:
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- market ------------------------------------------------------------------------------------

    def bars(self, symbols: str | Iterable[str], interval: str = "1d", start=None, end=None,
             adjusted: bool = True, last: int | None = None) -> pd.DataFrame:
        """OHLCV bars of `symbols` in [start, end], oldest first. Daily bars are split- and
        dividend-adjusted (point-in-time factors of fct_bars_1d) unless adjusted=False; other
        intervals are as traded. `last=N`: only the N most recent bars per call (after the filters)."""
        if interval not in BAR_RELATIONS:
            raise ValueError(f"interval {interval!r} not one of {', '.join(BAR_RELATIONS)}")
        relation, has_adjusted = BAR_RELATIONS[interval]
        if adjusted and has_adjusted:
            cols = ("symbol, exchange, ts, adj_open as open, adj_high as high, adj_low as low, "
                    "adj_close as close, adj_volume as volume, adj_vwap as vwap, close as raw_close, "
                    "price_factor")
        else:
            cols = "symbol, exchange, ts, open, high, low, close, volume, vwap"
        syms = _symbols(symbols)
        where, params = self._where(syms, start, end)
        if relation.startswith("staging."):
            where = (where + " and " if where else " where ") + "bar_interval = ?"
            params.append(interval)
        if last is not None:
            # Newest first through the (symbol, ts desc) index; put in order here (a server-side sort on
            # the symbol's text cost more than the index scan itself on PostgreSQL).
            sql = f"select {cols} from {relation}{where} order by ts desc limit ?"
            if syms is not None and len(syms) == 1:  # one symbol: newest first, reversed while converting
                return self.query(sql, [*params, int(last)], reverse=True)
            newest = self.query(sql, [*params, int(last)])
            if newest["symbol"].nunique() <= 1:
                return newest.iloc[::-1].reset_index(drop=True)
            return newest.sort_values(["symbol", "ts"], kind="stable", ignore_index=True)
        return self.query(f"select {cols} from {relation}{where} order by symbol, ts", params)

    def latest_bars(self, symbols: str | Iterable[str] | None = None) -> pd.DataFrame:
        """The latest daily bar of each symbol (all symbols by default), adjusted and raw close."""
        cols = ", ".join(f"b.{c}" for c in ("symbol", "exchange", "ts", "open", "high", "low", "close",
                                                "volume", "adj_close"))
        # marts.fct_latest_bars holds one row per symbol and interval (rebuilt by every build).
        where, params = self._where(symbols, None, None, symbol="b.symbol")
        where = (where + " and" if where else " where") + " b.bar_interval = '1d'"
        sql = f"select {cols} from marts.fct_latest_bars as b{where} order by b.symbol, b.exchange"
        return self.query(sql, params)

    def price_stats(self, symbol: str, days: int = 30) -> pd.DataFrame:
        """One row: the symbol's last `days` calendar days of daily bars up to its latest bar: first and
        last adjusted close, return, high, low, average volume, annualised volatility, bar count."""
        # The latest bar from fct_latest_bars (one row per symbol and interval), then only the window's
        # rows of fct_bars_1d (an index range scan on PostgreSQL, not the symbol's whole history), all
        # aggregated by the database: one row comes back.
        sql = """
            with b as (
                select f.ts, f.adj_close, f.adj_high, f.adj_low, f.adj_volume,
                       f.adj_close / lag(f.adj_close) over (order by f.ts) - 1 as ret
                from marts.fct_bars_1d as f
                where f.symbol = ? and f.ts > (
                    select max(l.ts) from marts.fct_latest_bars as l where l.symbol = ? and l.bar_interval = '1d'
                ) - ? * interval '1 day'
            ),
            s as (
                select min(ts) as first_ts, max(ts) as last_ts, count(*) as bars,
                       min(adj_close) filter (where ts = (select min(ts) from b)) as first_close,
                       min(adj_close) filter (where ts = (select max(ts) from b)) as last_close,
                       max(adj_high) as high, min(adj_low) as low, avg(adj_volume) as avg_volume,
                       stddev_samp(ret) * sqrt(252) as volatility_annualised
                from b
            )
            select ? as symbol, first_ts, last_ts, bars, first_close, last_close, high, low, avg_volume,
                   volatility_annualised, last_close / nullif(first_close, 0) - 1 as "return"
            from s
        """
        return self.query(sql, [symbol, symbol, int(days), symbol])

    def volume_profile(self, symbol: str, start=None, end=None, bins: int = 20,
                       interval: str = "1d") -> pd.DataFrame:
        """Volume by price: `bins` equal-width bins of the typical price (high+low+close)/3 between
        its lowest and highest in [start, end]; one row per bin with volume, bars and share of volume."""
        if interval not in BAR_RELATIONS:
            raise ValueError(f"interval {interval!r} not one of {', '.join(BAR_RELATIONS)}")
        bins = int(bins)
        if bins < 1:
            raise ValueError("bins must be at least 1")
        relation, _ = BAR_RELATIONS[interval]
        where, params = self._where(symbol, start, end)
        if relation.startswith("staging."):
            where += " and bar_interval = ?"
            params.append(interval)
        sql = f"""
            with b as (select (high + low + close) / 3.0 as price, volume from {relation}{where}),
            r as (select min(price) as lo, max(price) as hi from b),
            binned as (
                select least(cast(floor((b.price - r.lo) / nullif(r.hi - r.lo, 0) * ?) as integer), ? - 1)
                       as bin, b.volume, r.lo, r.hi
                from b, r
            )
            select coalesce(bin, 0) as bin,
                   min(lo) + coalesce(bin, 0) * (min(hi) - min(lo)) / ? as price_low,
                   min(lo) + (coalesce(bin, 0) + 1) * (min(hi) - min(lo)) / ? as price_high,
                   sum(volume) as volume, count(*) as bars
            from binned group by coalesce(bin, 0) order by 1
        """
        out = self.query(sql, [*params, bins, bins, float(bins), float(bins)])
        total = out["volume"].sum()
        out["volume_share"] = out["volume"] / total if total else 0.0
        return out

    # ---- features and ML -----------------------------------------------------------------------------

    def features(self, symbols: str | Iterable[str], start=None, end=None,
                 version: int | str | None = None) -> pd.DataFrame:
        """Daily features (fct_features_daily: the latest version, or version 1 / 2)."""
        if isinstance(version, str):
            version = int(version.lstrip("v"))
        if version not in FEATURE_RELATIONS:
            raise ValueError(f"feature version {version!r} not one of 1, 2 (None: the latest)")
        where, params = self._where(symbols, start, end)
        return self.query(f"select * from {FEATURE_RELATIONS[version]}{where} order by symbol, ts", params)

    def training_set(self, symbols: str | Iterable[str] | None = None, start=None, end=None) -> pd.DataFrame:
        """Leakage-free daily training rows: features at ts and the forward returns (fct_training_set_daily)."""
        where, params = self._where(symbols, start, end)
        return self.query(f"select * from marts.fct_training_set_daily{where} order by symbol, ts", params)

    def strategy_performance(self, strategy: str | None = None, model_key: str | None = None,
                             symbol: str | None = None) -> pd.DataFrame:
        """Signal performance per strategy, model and symbol ('ALL' rows: over all symbols), from
        fct_signal_performance: win rate, profit factor, P&L, drawdown, latency."""
        conds, params = [], []
        for column, value in zip(PERFORMANCE_FILTERS, (strategy, model_key, symbol)):
            if value is not None:
                conds.append(f"{column} = ?")
                params.append(value)
        where = (" where " + " and ".join(conds)) if conds else ""
        return self.query(f"select * from marts.fct_signal_performance{where} "
                          f"order by strategy, model_key, symbol", params)

    # ---- the warehouse -------------------------------------------------------------------------------

    def table_sizes(self) -> pd.DataFrame:
        """schema, table, rows (estimated on PostgreSQL), bytes (where the database says)."""
        if self.dialect == "duckdb":
            return self.query(
                "select schema_name as schema, table_name as \"table\", estimated_size as rows, "
                "cast(null as bigint) as bytes from duckdb_tables() "
                "where database_name = current_database() and list_contains(?, schema_name) "
                "order by schema_name, table_name", [list(SCHEMAS)])
        hyper = bool(self.query("select 1 from pg_extension where extname = 'timescaledb'").shape[0])
        size = ("case when h.hypertable_name is not null then hypertable_size(c.oid) "
                "else pg_total_relation_size(c.oid) end" if hyper else "pg_total_relation_size(c.oid)")
        rows = ("case when h.hypertable_name is not null then approximate_row_count(c.oid) "
                "else greatest(c.reltuples, 0)::bigint end" if hyper else "greatest(c.reltuples, 0)::bigint")
        join = ("left join timescaledb_information.hypertables as h on h.hypertable_schema = n.nspname "
                "and h.hypertable_name = c.relname" if hyper else "")
        return self.query(
            f"select n.nspname as schema, c.relname as \"table\", {rows} as rows, {size} as bytes "
            f"from pg_class as c join pg_namespace as n on n.oid = c.relnamespace {join} "
            f"where c.relkind in ('r', 'p', 'm') and n.nspname = any(?) order by 1, 2", [list(SCHEMAS)])

    def health(self) -> pd.DataFrame:
        """One row per check: per exchange and interval the last bar and its age; the last loader
        run; rows in quarantine; the last `mwh run`."""
        out = self.query(
            "select 'last_bar' as \"check\", exchange || ' ' || interval as subject, "
            "cast(max(ts) as varchar) as value, count(distinct symbol) as n "
            "from raw.bars group by exchange, interval order by exchange, interval")
        out["age_hours"] = [
            (pd.Timestamp.now(tz="UTC") - pd.Timestamp(v).tz_convert("UTC")).total_seconds() / 3600
            if v else None for v in out["value"]]
        run = self.query(
            "select 'last_loader_run' as \"check\", run_id || ': ' || status as subject, "
            "cast(finished_at as varchar) as value, count(*) over () as n from raw.loader_runs "
            "order by finished_at desc, run_id limit 1")
        quarantined = self.query(
            "select 'quarantined_rows' as \"check\", 'raw.quarantine' as subject, "
            "cast(count(*) as varchar) as value, count(*) as n from raw.quarantine")
        frames = [out, run, quarantined]
        if self.query("select 1 from information_schema.tables where table_schema = 'raw' "
                      "and table_name = 'job_runs'").shape[0]:
            frames.append(self.query(
                "select 'last_job_run' as \"check\", status as subject, message as value, "
                "cast(exit_code as bigint) as n from raw.job_runs order by started_at desc limit 1"))
        return pd.concat([f for f in frames if len(f)], ignore_index=True)


def connect(target: Target | str | None = None) -> Reader:
    """A Reader on `target` (default: the profile's default target); use as a context manager."""
    return Reader(target)


_default: Reader | None = None


def _reader() -> Reader:
    global _default
    if _default is None:
        _default = Reader()
    return _default


def close() -> None:
    """Close the shared connection of the module-level functions."""
    global _default
    if _default is not None:
        _default.close()
        _default = None


def bars(symbols, interval: str = "1d", start=None, end=None, adjusted: bool = True,
         last: int | None = None) -> pd.DataFrame:
    return _reader().bars(symbols, interval, start, end, adjusted, last)


def latest_bars(symbols=None) -> pd.DataFrame:
    return _reader().latest_bars(symbols)


def price_stats(symbol: str, days: int = 30) -> pd.DataFrame:
    return _reader().price_stats(symbol, days)


def volume_profile(symbol: str, start=None, end=None, bins: int = 20, interval: str = "1d") -> pd.DataFrame:
    return _reader().volume_profile(symbol, start, end, bins, interval)


def features(symbols, start=None, end=None, version=None) -> pd.DataFrame:
    return _reader().features(symbols, start, end, version)


def training_set(symbols=None, start=None, end=None) -> pd.DataFrame:
    return _reader().training_set(symbols, start, end)


def strategy_performance(strategy=None, model_key=None, symbol=None) -> pd.DataFrame:
    return _reader().strategy_performance(strategy, model_key, symbol)


def table_sizes() -> pd.DataFrame:
    return _reader().table_sizes()


def health() -> pd.DataFrame:
    return _reader().health()


for _f in (bars, latest_bars, price_stats, volume_profile, features, training_set, strategy_performance,
           table_sizes, health):
    _f.__doc__ = getattr(Reader, _f.__name__).__doc__

__all__ = ["Reader", "bars", "close", "connect", "features", "health", "latest_bars", "price_stats",
           "strategy_performance", "table_sizes", "training_set", "volume_profile"]
