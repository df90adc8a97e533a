"""`mwh load yfinance`: per symbol, from the last loaded bar (minus the interval's overlap) to now,
fetched by sources/yfinance_api.py (chunks, retries), parsed by sources/yfinance_format.py and
written by the pipeline in its own transaction, with its audit row. A symbol that fails is recorded
and the others load."""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from market_warehouse.loaders.pipeline import write_batch
from market_warehouse.loaders.schema import BARS
from market_warehouse.loaders.sinks import Sink
from market_warehouse.loaders.sources.common import exchange_for_yahoo_symbol
from market_warehouse.loaders.sources.yfinance_api import (
    DEFAULT_DAILY_START,
    LIMITS,
    Fetch,
    fetch_range,
    to_utc,
    yfinance_fetch,
)
from market_warehouse.loaders.sources.yfinance_format import frame_to_batch
from market_warehouse.runs import SourceReport, describe_error, new_run_id, record_failure, utcnow

LOADER = "yfinance"


def last_loaded(sink: Sink, symbol: str, exchange: str, interval: str) -> pd.Timestamp | None:
    """Time of the newest stored bar of one series, or None."""
    series = " and ".join(f"{k} = ?" for k in BARS.key if k != BARS.hypertable_time)
    rows = sink.query(f"select max({BARS.hypertable_time}) from {BARS.qualified} where {series}",
                      [symbol, exchange, interval])
    value = rows[0][0] if rows else None
    return pd.Timestamp(value).tz_convert("UTC") if value is not None else None


def load_yfinance(sink: Sink, symbols: list[str], interval: str = "1d", start: str | None = None,
                  end: str | None = None, incremental: bool = True, run_id: str | None = None,
                  fetch: Fetch = yfinance_fetch, now: pd.Timestamp | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> list[SourceReport]:
    """Fetch and land each symbol in its own transaction; one report (and audit row) per symbol."""
    if interval not in LIMITS:
        raise ValueError(f"interval {interval!r} not supported; one of {', '.join(LIMITS)}")
    run_id = run_id or new_run_id()
    now = now or utcnow()
    end_ts = to_utc(end) or now + pd.Timedelta(days=1)
    limits = LIMITS[interval]
    reports = []
    for symbol in symbols:
        source = f"yfinance:{symbol}:{interval}"
        exchange = exchange_for_yahoo_symbol(symbol)
        started = utcnow()
        begin = to_utc(start) or (DEFAULT_DAILY_START if limits.lookback is None else now - limits.lookback)
        last = last_loaded(sink, symbol, exchange, interval) if incremental else None
        if last is not None:
            begin = max(begin, last - limits.overlap)
        params = {"symbol": symbol, "interval": interval, "start": str(begin), "end": str(end_ts),
                  "incremental": incremental, "resumed_from": str(last) if last is not None else None}
        frame, error = fetch_range(symbol, begin, end_ts, interval, now, source, fetch=fetch, sleep=sleep)
        if frame is not None:
            try:
                batch = frame_to_batch(frame, source, interval, symbol=symbol, exchange=exchange)
                batch.parameters.update(params)
                report = write_batch(sink, batch, run_id, started=started, partial_error=error)
            except Exception as exc:  # noqa: BLE001 - this symbol fails, the others load
                report = record_failure(sink, run_id, source, LOADER, describe_error(exc, source), started,
                                        params, BARS)
        elif error:
            report = record_failure(sink, run_id, source, LOADER, error, started, params, BARS)
        else:
            report = SourceReport(source=source, loader=LOADER)
        reports.append(report)
    return reports
