"""The raw layer's tables: one definition serves DDL on every target and the loaders' frames.

Everything the loaders write is declared here (name, columns, key, descriptions); the sinks turn it
into DDL for DuckDB or PostgreSQL/TimescaleDB, and `mwh schema --write` (market_warehouse/source_yaml.py) turns
it into the dbt sources (models/staging/*/_*__sources.yml). Change a table here, then regenerate; a
test fails while the YAML is out of date.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RAW_SCHEMA = "raw"

# Logical types -> physical types per dialect.
TYPES = {
    "timestamp": {"duckdb": "timestamptz", "postgres": "timestamptz"},
    "date": {"duckdb": "date", "postgres": "date"},
    "text": {"duckdb": "varchar", "postgres": "text"},
    "double": {"duckdb": "double", "postgres": "double precision"},
    "bigint": {"duckdb": "bigint", "postgres": "bigint"},
    "integer": {"duckdb": "integer", "postgres": "integer"},
    "boolean": {"duckdb": "boolean", "postgres": "boolean"},
    "json": {"duckdb": "json", "postgres": "jsonb"},
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    description: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    description: str = ""
    # Columns a merge compares to tell a duplicate from a correction (default: all non-key data columns).
    compare: tuple[str, ...] | None = None
    # TimescaleDB: partition column and chunk interval; None = a plain table everywhere.
    hypertable_time: str | None = None
    chunk_interval: str | None = None
    # Extra (non-unique) indexes: tuples of "col" or "col desc".
    indexes: tuple[tuple[str, ...], ...] = field(default_factory=tuple)
    # dbt source freshness ({"warn_after": {"count": 96, "period": "hour"}, ...}), and why those limits.
    freshness: dict | None = None
    freshness_note: str = ""

    @property
    def qualified(self) -> str:
        return f"{RAW_SCHEMA}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def compare_columns(self) -> list[str]:
        if self.compare is not None:
            return list(self.compare)
        return [c for c in self.column_names if c not in self.key and c not in AUDIT_COLUMNS]


# Written by the sinks on every row, never by a parser.
AUDIT_COLUMNS = ("source", "run_id", "loaded_at")


def _audit(run_id: str = "The loader run that wrote (or last replaced) the row; see loader_runs.",
           ) -> tuple[Column, ...]:
    return (
        Column("source", "text", False, "Where the row came from: a file path or `yfinance`."),
        Column("run_id", "text", False, run_id),
        Column("loaded_at", "timestamp", False, "When that run wrote the row (UTC)."),
    )


_AUDIT = _audit()

BARS = Table(
    name="bars",
    description="OHLCV bars of every interval as the vendor sent them (raw, unadjusted prices). Key: symbol, "
                "exchange, interval, ts. A reload of the same bars replaces them (newest load wins).",
    columns=(
        Column("ts", "timestamp", False,
               "Bar open time in UTC. Daily and weekly bars carry their session date at 00:00 UTC."),
        Column("symbol", "text", False, "Ticker as the vendor spells it (AAPL, BRK.B, FILUSDT)."),
        Column("exchange", "text", False, "Exchange code: US (US composite), BINANCE, XLON, XTKS, ..."),
        Column("interval", "text", False, "Bar length: 1m, 5m, 15m, 1h, 1d, 1wk."),
        Column("open", "double", False, "First trade price of the bar."),
        Column("high", "double", False, "Highest trade price."),
        Column("low", "double", False, "Lowest trade price."),
        Column("close", "double", False, "Last trade price."),
        Column("volume", "double", False, "Traded quantity (shares, or base asset for crypto)."),
        Column("adj_close", "double", True, "Vendor's split- and dividend-adjusted close, where sent."),
        Column("vwap", "double", True, "Volume-weighted average price, where sent."),
        Column("trade_count", "bigint", True, "Number of trades, where sent."),
        Column("quote_volume", "double", True, "Traded quantity in the quote asset, where sent."),
        Column("taker_buy_volume", "double", True, "Base volume of taker buys (Binance)."),
        Column("taker_buy_quote_volume", "double", True, "Quote volume of taker buys (Binance)."),
        *_AUDIT,
    ),
    key=("symbol", "exchange", "interval", "ts"),
    hypertable_time="ts",
    # One month per chunk: ~800 daily rows per 40 symbols, ~43k 1m rows per symbol. Both fit memory
    # comfortably at this project's scale; override with MWH_BARS_CHUNK_INTERVAL.
    chunk_interval="30 days",
    indexes=(("symbol", "ts desc"),),
    freshness={"warn_after": {"count": 96, "period": "hour"}, "error_after": {"count": 168, "period": "hour"}},
    freshness_note="Daily bars are loaded once per session, after the close. The longest regular pause is a "
                   "weekend plus a holiday (Friday close -> Tuesday evening load, ~4 days), so warn only after "
                   "4 days and fail after a week. Crypto minute bars trade 24/7 but share this table; their "
                   "tighter check is the calendar-aware `bars_are_fresh` test on stg_market__bars (in market "
                   "hours).",
)

CORPORATE_ACTIONS = Table(
    name="corporate_actions",
    description="Dividends and splits by ex-date, as the vendor reported them.",
    columns=(
        Column("ex_date", "date", False, "Ex-date (exchange-local trading date)."),
        Column("symbol", "text", False, "Ticker."),
        Column("exchange", "text", False, "Exchange code, as in bars."),
        Column("action", "text", False, "`dividend` or `split`."),
        Column("value", "double", False,
               "Dividend: cash amount per share. Split: new shares per old share (2.0 for 2-for-1)."),
        *_audit("The loader run that wrote the row."),
    ),
    key=("symbol", "exchange", "ex_date", "action"),
    freshness={"warn_after": {"count": 100, "period": "day"}, "error_after": None},
    freshness_note="Actions arrive with the daily files but only when a company declares one: weeks can pass "
                   "without a new row, so this only warns, after a quarter (dividends are mostly quarterly).",
)

QUARANTINE = Table(
    name="quarantine",
    description="Rows that failed validation, kept whole with the reason. Nothing a user gave is dropped.",
    columns=(
        Column("run_id", "text", False, "The loader run that read the row."),
        Column("source", "text", False, "File path or `yfinance:SYMBOL:INTERVAL`."),
        Column("row_number", "bigint", False, "1-based line number in the file (the header is line 1), or the row's position."),
        Column("target_table", "text", False, "The raw table the row was meant for."),
        Column("record", "text", False, "The original row, as JSON of the fields as read."),
        Column("reason", "text", False, "Why it was rejected (several reasons joined by '; ')."),
        Column("quarantined_at", "timestamp", False, "When (UTC)."),
    ),
    key=("run_id", "source", "row_number", "target_table"),
)

LOADER_RUNS = Table(
    name="loader_runs",
    description="Audit: one row per loader run and source, with counts, status and error.",
    columns=(
        Column("run_id", "text", False, "Identifier of one `mwh load` invocation."),
        Column("source", "text", False, "File path or `yfinance:SYMBOL:INTERVAL`."),
        Column("loader", "text", False, "Format/loader: alphavantage, yfinance, binance-klines, generic."),
        Column("target_table", "text", False, "Raw table written."),
        Column("parameters", "json", True, "The run's parameters (symbol, interval, range, ...), JSON."),
        Column("rows_read", "bigint", False, "Rows parsed from the source."),
        Column("rows_loaded", "bigint", False, "Rows new to the table."),
        Column("rows_replaced", "bigint", False, "Rows whose key existed with other values; the new values won."),
        Column("rows_duplicate", "bigint", False, "Rows identical to what the table already held."),
        Column("rows_quarantined", "bigint", False, "Rows rejected by validation (see quarantine)."),
        Column("status", "text", False,
               "`success`, `failed` (nothing written), or `partial` (a fetch failed after earlier chunks "
               "were written; the next incremental run resumes); `undone` once `mwh runs undo` removed "
               "what it wrote."),
        Column("error", "text", True, "Error message of a failed source."),
        Column("started_at", "timestamp", False, "Start (UTC)."),
        Column("finished_at", "timestamp", False, "End (UTC)."),
    ),
    key=("run_id", "source", "target_table"),
)



def _replaced_history(table: Table) -> Table:
    """Where the merge keeps the rows a load replaced, so that `mwh runs undo` can put them back."""
    return Table(
        name=f"replaced_{table.name}",
        description=f"History: {table.qualified} rows that a later load replaced (newest wins), kept so "
                    f"that `mwh runs undo RUN_ID` can restore them.",
        columns=(*table.columns,
                 Column("replaced_by_run_id", "text", False, "The loader run whose rows replaced this one."),
                 Column("replaced_at", "timestamp", False, "When (UTC)."),),
        key=(*table.key, "replaced_by_run_id"),
    )


REPLACED_BARS = _replaced_history(BARS)
REPLACED_CORPORATE_ACTIONS = _replaced_history(CORPORATE_ACTIONS)
_HISTORY = {BARS.name: REPLACED_BARS, CORPORATE_ACTIONS.name: REPLACED_CORPORATE_ACTIONS}


def history_of(table: Table) -> Table | None:
    """The table that keeps `table`'s replaced rows, if it has one."""
    return _HISTORY.get(table.name)


MARKET_TABLES = (BARS, CORPORATE_ACTIONS, QUARANTINE, LOADER_RUNS, REPLACED_BARS, REPLACED_CORPORATE_ACTIONS)

# ---- `mwh run` (market_warehouse/jobs.py): the scheduled job's ledger of files and its run history ----------

FILE_LEDGER = Table(
    name="file_ledger",
    description="`mwh run`: every drop file it loaded, by path, size, modification time and SHA-256, so "
                "an unchanged file is skipped on the next run (a changed one is loaded again).",
    columns=(
        Column("path", "text", False, "Absolute path of the file."),
        Column("size_bytes", "bigint", False, "Size when loaded."),
        Column("mtime", "timestamp", False, "Modification time when loaded (UTC)."),
        Column("sha256", "text", False, "SHA-256 of the file's bytes."),
        Column("source_name", "text", False, "The sources.yml entry that loaded it."),
        Column("kind", "text", False, "Loader: a `mwh load csv` format or `ml-<kind>`."),
        Column("status", "text", False, "The load's status (success, failed)."),
        Column("rows_loaded", "bigint", False, "Rows new to the warehouse."),
        Column("run_id", "text", False, "The loader run (raw.loader_runs) that loaded it."),
        Column("loaded_at", "timestamp", False, "When (UTC)."),
    ),
    key=("path", "sha256"),
)

JOB_RUNS = Table(
    name="job_runs",
    description="`mwh run`: one row per run of the scheduled job: what it loaded, what it built, and how "
                "it ended (exit status as the scheduler saw it).",
    columns=(
        Column("job_run_id", "text", False, "The run's id (also the run_id of its loads in loader_runs)."),
        Column("sources_file", "text", False, "The sources file it read."),
        Column("started_at", "timestamp", False, "Start (UTC)."),
        Column("finished_at", "timestamp", False, "End (UTC)."),
        Column("duration_s", "double", False, "Wall time in seconds."),
        Column("sources", "json", True, "Per source: name, files seen/loaded/skipped, rows new, status."),
        Column("rows_loaded", "bigint", False, "Rows new to raw tables, all sources."),
        Column("selection", "text", True, "The dbt selection built (empty: nothing new, no build)."),
        Column("models_built", "bigint", False, "Models, seeds and snapshots dbt built successfully."),
        Column("tests_passed", "bigint", False, "Tests that passed."),
        Column("tests_warned", "bigint", False, "Tests that warned."),
        Column("tests_failed", "bigint", False, "Tests that failed or errored (and models that errored)."),
        Column("status", "text", False, "`ok`, `warn`, `skipped` (closed session), `failed`."),
        Column("exit_code", "integer", False, "The process exit code."),
        Column("message", "text", True, "Summary line, or the error."),
    ),
    key=("job_run_id",),
)

JOB_TABLES = (FILE_LEDGER, JOB_RUNS)
