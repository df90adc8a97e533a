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
    # PostgreSQL/TimescaleDB: BRIN indexes (one block range summary, a few kB per GB) on columns that grow
    # with the insert order, such as loaded_at: what an incremental build reads since its mark is found
    # without scanning the table or paying a B-tree on every load. DuckDB's zone maps do this by themselves.
    brin_indexes: tuple[str, ...] = field(default_factory=tuple)
    # dbt source freshness ({"warn_after": {"count": 96, "period": "hour"}, ...}), and why those limits.
    freshness: dict | None = None
    freshness_note: str = ""
    # True: models read this table only to find what changed in other tables (their load marks), never as
    # data, so a plain `mwh build` does not run them for its changes alone (market_warehouse/build_state.py).
    read_for_marks_only: bool = False

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
    brin_indexes=("loaded_at",),
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
    read_for_marks_only=True,
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

# ---- ticks and order books (`mwh load ticks`, `mwh stream binance`; market_warehouse/loaders/ticks.py) ----

_TICK_SYMBOL = Column("symbol", "text", False, "Symbol as the exchange spells it (BTCUSDT).")
_TICK_EXCHANGE = Column("exchange", "text", False, "Exchange code (BINANCE).")
_RECEIVED = Column("received_at", "timestamp", True,
                   "When our client received the message (local clock, UTC); null for a trades CSV.")

TRADES = Table(
    name="trades",
    description="Individual trades (Binance `trade` stream or a trades CSV). Key: symbol, exchange, trade_id, ts. "
                "A reload of the same trades leaves them alone (duplicates).",
    columns=(
        Column("ts", "timestamp", False, "Trade time (exchange clock, UTC; Binance `T`)."),
        _TICK_SYMBOL, _TICK_EXCHANGE,
        Column("trade_id", "bigint", False, "The exchange's trade id (Binance `t`)."),
        Column("price", "double", False, "Trade price (quote asset)."),
        Column("quantity", "double", False, "Trade quantity (base asset)."),
        Column("is_buyer_maker", "boolean", True,
               "True when the buyer was the maker, i.e. the taker sold (Binance `m`); null if unknown."),
        Column("event_ts", "timestamp", True, "Event time of the message (Binance `E`)."),
        _RECEIVED,
        *_AUDIT,
    ),
    key=("symbol", "exchange", "trade_id", "ts"),
    hypertable_time="ts", chunk_interval="1 day",
)

DEPTH_UPDATES = Table(
    name="depth_updates",
    description="Order-book diffs (Binance `depthUpdate`), one row per message, levels kept as JSON text. "
                "Key: symbol, exchange, final_update_id, ts.",
    columns=(
        Column("ts", "timestamp", False, "Event time (Binance `E`, UTC)."),
        _TICK_SYMBOL, _TICK_EXCHANGE,
        Column("first_update_id", "bigint", False, "First update id in the diff (`U`)."),
        Column("final_update_id", "bigint", False, "Final update id in the diff (`u`)."),
        Column("prev_final_update_id", "bigint", True, "Final update id of the previous diff (`pu`)."),
        Column("transaction_ts", "timestamp", True, "Transaction time (`T`)."),
        Column("bids", "text", False, "Changed bid levels, JSON `[[price, qty], ...]`; qty 0 removes the level."),
        Column("asks", "text", False, "Changed ask levels, JSON `[[price, qty], ...]`; qty 0 removes the level."),
        _RECEIVED,
        *_AUDIT,
    ),
    key=("symbol", "exchange", "final_update_id", "ts"),
    hypertable_time="ts", chunk_interval="1 day",
)

BOOK_TICKERS = Table(
    name="book_tickers",
    description="Best bid and ask as the exchange published them (Binance `bookTicker`). "
                "Key: symbol, exchange, update_id, ts.",
    columns=(
        Column("ts", "timestamp", False, "Event time (Binance `E`, UTC)."),
        _TICK_SYMBOL, _TICK_EXCHANGE,
        Column("update_id", "bigint", False, "Order-book update id (`u`), the same sequence as the diffs'."),
        Column("bid_price", "double", False, "Best bid price."),
        Column("bid_qty", "double", False, "Quantity at the best bid."),
        Column("ask_price", "double", False, "Best ask price."),
        Column("ask_qty", "double", False, "Quantity at the best ask."),
        Column("transaction_ts", "timestamp", True, "Transaction time (`T`)."),
        _RECEIVED,
        *_AUDIT,
    ),
    key=("symbol", "exchange", "update_id", "ts"),
    hypertable_time="ts", chunk_interval="1 day",
)

DEPTH_SNAPSHOTS = Table(
    name="depth_snapshots",
    description="REST order-book snapshots (`lastUpdateId`, bids, asks), the sync points of the book. "
                "Key: symbol, exchange, last_update_id, ts.",
    columns=(
        Column("ts", "timestamp", False, "Snapshot time (Binance `E`, else our receive time; UTC)."),
        _TICK_SYMBOL, _TICK_EXCHANGE,
        Column("last_update_id", "bigint", False, "The book's update id at the snapshot (`lastUpdateId`)."),
        Column("bids", "text", False, "Bid levels, JSON `[[price, qty], ...]`, best first."),
        Column("asks", "text", False, "Ask levels, JSON `[[price, qty], ...]`, best first."),
        _RECEIVED,
        *_AUDIT,
    ),
    key=("symbol", "exchange", "last_update_id", "ts"),
    hypertable_time="ts", chunk_interval="1 day",
)

BOOK_STATES = Table(
    name="book_states",
    description="The L2 book rebuilt by the loader from a snapshot and the diffs after it (Binance rules, "
                "market_warehouse/loaders/book.py): one row per applied diff while the book is valid, with the "
                "top-N levels and the depth near the mid. Key: symbol, exchange, update_id, ts.",
    columns=(
        Column("ts", "timestamp", False, "Event time of the diff this state follows (UTC)."),
        _TICK_SYMBOL, _TICK_EXCHANGE,
        Column("update_id", "bigint", False, "Final update id (`u`) of that diff."),
        Column("synced_update_id", "bigint", False, "lastUpdateId of the snapshot the book was rebuilt from."),
        Column("best_bid", "double", True, "Highest bid price (null: no bids)."),
        Column("best_bid_qty", "double", True, "Quantity at the best bid."),
        Column("best_ask", "double", True, "Lowest ask price (null: no asks)."),
        Column("best_ask_qty", "double", True, "Quantity at the best ask."),
        Column("bid_levels", "text", False, "Top-N bids, best first, JSON `[[price, qty], ...]`."),
        Column("ask_levels", "text", False, "Top-N asks, best first, JSON `[[price, qty], ...]`."),
        Column("bid_depth_10bps", "double", True, "Bid quantity within 10 bps below the mid."),
        Column("ask_depth_10bps", "double", True, "Ask quantity within 10 bps above the mid."),
        Column("bid_depth_50bps", "double", True, "Bid quantity within 50 bps below the mid."),
        Column("ask_depth_50bps", "double", True, "Ask quantity within 50 bps above the mid."),
        *_AUDIT,
    ),
    key=("symbol", "exchange", "update_id", "ts"),
    hypertable_time="ts", chunk_interval="1 day",
)

BOOK_SEQUENCE_EVENTS = Table(
    name="book_sequence_events",
    description="Data-quality events of the book rebuild: `synced` (a snapshot took), `gap` (a diff's `pu` is "
                "not the previous `u`: the book is invalid until the next snapshot), `no_straddle` (no diff "
                "straddles the snapshot's lastUpdateId + 1), `unsynced` (diffs with no usable snapshot). "
                "Key: symbol, exchange, ts, update_id, event.",
    columns=(
        Column("ts", "timestamp", False, "Event time of the diff (or snapshot) where it happened (UTC)."),
        _TICK_SYMBOL, _TICK_EXCHANGE,
        Column("update_id", "bigint", False, "The diff's final update id (`u`), or the snapshot's lastUpdateId."),
        Column("event", "text", False, "`synced`, `gap`, `no_straddle` or `unsynced`."),
        Column("expected_prev_update_id", "bigint", True, "`gap`: the previous diff's `u` (what `pu` should be)."),
        Column("prev_update_id", "bigint", True, "`gap`: the `pu` the diff carried."),
        Column("diffs_affected", "bigint", True, "Diffs not applied because of it (until the next snapshot)."),
        Column("detail", "text", True, "One line saying what happened."),
        *_AUDIT,
    ),
    key=("symbol", "exchange", "ts", "update_id", "event"),
    hypertable_time="ts", chunk_interval="1 day",
)

TICK_TABLES = (TRADES, DEPTH_UPDATES, BOOK_TICKERS, DEPTH_SNAPSHOTS, BOOK_STATES, BOOK_SEQUENCE_EVENTS)


# ---- `mwh build`: which seed files the warehouse's `reference` tables were last built from ----------------------

SEED_STATE = "raw.mwh_seed_state"


def stored_seeds_checksum(query) -> str | None:
    """The checksum `mwh build` stored after loading every seed, or None (never built here). `query`: a
    function from SQL to rows on an autocommit connection (a failed read leaves nothing to undo): a sink's, or
    market_warehouse.dbt.Warehouse's, which needs no pandas."""
    try:
        rows = query(f"select checksum from {SEED_STATE}")
    except Exception:  # noqa: BLE001 - never built here
        return None
    return rows[0][0] if rows else None
