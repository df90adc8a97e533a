"""Fetching bars from Yahoo Finance through yfinance: the only code that reaches the network, and
only when a user asks for it (`mwh load yfinance`).

- Raw prices: ``auto_adjust=False`` keeps O/H/L/C as traded and Adj Close beside them; dividends and
  splits (``actions=True``) go to raw.corporate_actions.
- Yahoo's history limits per interval: 1m bars only for the last 30 days, at most 7 days a request;
  5m/15m the last 60 days; 1h the last 730 days. Long ranges are fetched in chunks within them.
- Incremental by default: per symbol and interval, fetch from the last loaded bar minus an overlap
  (late corrections by the vendor are picked up; the merge counts them as replaced).
- Rate limits and network errors are retried with exponential backoff; a symbol that still fails is
  reported and recorded in raw.loader_runs, and the other symbols load.

The fetch function is a parameter, so tests feed frames shaped exactly like yfinance's output without
touching the network.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from loaders.pipeline import SourceReport, record_failure, write_batch
from loaders.sinks import Sink
from loaders.sources.common import exchange_for_yahoo_symbol
from loaders.sources.yfinance_format import frame_to_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntervalLimits:
    max_request: pd.Timedelta | None  # longest range one request may ask for
    lookback: pd.Timedelta | None  # how far back Yahoo serves this interval at all
    overlap: pd.Timedelta  # incremental loads re-fetch this much before the last bar


LIMITS = {
    "1m": IntervalLimits(pd.Timedelta(days=7), pd.Timedelta(days=30), pd.Timedelta(hours=1)),
    "5m": IntervalLimits(pd.Timedelta(days=60), pd.Timedelta(days=60), pd.Timedelta(hours=3)),
    "15m": IntervalLimits(pd.Timedelta(days=60), pd.Timedelta(days=60), pd.Timedelta(hours=6)),
    "1h": IntervalLimits(pd.Timedelta(days=730), pd.Timedelta(days=730), pd.Timedelta(days=2)),
    "1d": IntervalLimits(None, None, pd.Timedelta(days=7)),
    "1wk": IntervalLimits(None, None, pd.Timedelta(days=21)),
}
# Yahoo counts its windows loosely; stay a little inside them.
SAFETY = pd.Timedelta(hours=12)
DEFAULT_DAILY_START = pd.Timestamp("2000-01-01", tz="UTC")

Fetch = Callable[[str, pd.Timestamp, pd.Timestamp, str], pd.DataFrame]


class FetchError(Exception):
    """A symbol could not be fetched (after retries, where retrying made sense)."""


def plan_chunks(start: pd.Timestamp, end: pd.Timestamp, interval: str,
                now: pd.Timestamp) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Split [start, end) into requests Yahoo will answer for this interval."""
    limits = LIMITS[interval]
    if limits.lookback is not None:
        start = max(start, now - limits.lookback + SAFETY)
    end = min(end, now + pd.Timedelta(days=1))
    if start >= end:
        return []
    if limits.max_request is None:
        return [(start, end)]
    step = limits.max_request - SAFETY if limits.max_request > SAFETY * 2 else limits.max_request
    chunks = []
    lo = start
    while lo < end:
        hi = min(lo + step, end)
        chunks.append((lo, hi))
        lo = hi
    return chunks


def is_retryable(exc: BaseException) -> bool:
    """Rate limits, timeouts and connection failures are worth another try; a missing ticker is not."""
    name = type(exc).__name__
    if name in ("YFRateLimitError",):
        return True
    if name in ("YFTickerMissingError", "YFPricesMissingError", "YFTzMissingError",
                "YFInvalidPeriodError"):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("requests", "curl_cffi", "urllib3"))


def with_retries(call: Callable[[], pd.DataFrame], attempts: int = 4, base_delay: float = 2.0,
                 sleep: Callable[[float], None] = time.sleep) -> pd.DataFrame:
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            delay = base_delay * 2 ** (attempt - 1) * (1 + random.random() * 0.25)
            log.warning("yfinance: %s (attempt %d/%d), retrying in %.1fs", exc, attempt, attempts, delay)
            sleep(delay)
    raise AssertionError("unreachable")


def yfinance_fetch(symbol: str, start: pd.Timestamp, end: pd.Timestamp, interval: str) -> pd.DataFrame:
    """One request to Yahoo through yfinance, raising its errors instead of logging them."""
    import yfinance as yf
    from yfinance.config import YfConfig

    YfConfig.debug.hide_exceptions = False
    return yf.Ticker(symbol).history(
        start=start.strftime("%Y-%m-%d") if interval in ("1d", "1wk") else start.to_pydatetime(),
        end=end.strftime("%Y-%m-%d") if interval in ("1d", "1wk") else end.to_pydatetime(),
        interval=interval, auto_adjust=False, actions=True, repair=False,
    )


def last_loaded(sink: Sink, symbol: str, exchange: str, interval: str) -> pd.Timestamp | None:
    rows = sink.query("select max(ts) from raw.bars where symbol = ? and exchange = ? and interval = ?",
                      [symbol, exchange, interval])
    value = rows[0][0] if rows else None
    return pd.Timestamp(value).tz_convert("UTC") if value is not None else None


def _to_utc(value: str | pd.Timestamp | None) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def load(sink: Sink, symbols: list[str], interval: str = "1d", start: str | None = None,
         end: str | None = None, incremental: bool = True, run_id: str = "",
         fetch: Fetch = yfinance_fetch, now: pd.Timestamp | None = None,
         sleep: Callable[[float], None] = time.sleep) -> list[SourceReport]:
    """Fetch and land each symbol in its own transaction; one report (and audit row) per symbol."""
    if interval not in LIMITS:
        raise ValueError(f"interval {interval!r} not supported; one of {', '.join(LIMITS)}")
    now = now or pd.Timestamp.now(tz="UTC")
    end_ts = _to_utc(end) or now + pd.Timedelta(days=1)
    reports = []
    for symbol in symbols:
        source = f"yfinance:{symbol}:{interval}"
        exchange = exchange_for_yahoo_symbol(symbol)
        started = pd.Timestamp.now(tz="UTC")
        begin = _to_utc(start) or (DEFAULT_DAILY_START if LIMITS[interval].lookback is None
                                   else now - LIMITS[interval].lookback)
        last = last_loaded(sink, symbol, exchange, interval) if incremental else None
        if last is not None:
            begin = max(begin, last - LIMITS[interval].overlap)
        params = {"symbol": symbol, "interval": interval, "start": str(begin), "end": str(end_ts),
                  "incremental": incremental, "resumed_from": str(last) if last is not None else None}
        frames, error = [], None
        for lo, hi in plan_chunks(begin, end_ts, interval, now):
            try:
                frames.append(with_retries(lambda lo=lo, hi=hi, s=symbol: fetch(s, lo, hi, interval), sleep=sleep))
            except Exception as exc:
                # Keep the contiguous chunks fetched so far; the next incremental run resumes here.
                error = f"{source}: fetch {lo:%Y-%m-%d %H:%M}..{hi:%Y-%m-%d %H:%M} failed: " \
                        f"{type(exc).__name__}: {exc}"
                break
        frames = [f for f in frames if f is not None and not f.empty]
        if frames:
            frame = pd.concat(frames)
            frame = frame[~frame.index.duplicated(keep="last")]  # chunk edges overlap by a bar
            try:
                batch = frame_to_batch(frame, source, interval, symbol=symbol, exchange=exchange)
                batch.parameters.update(params)
                report = write_batch(sink, batch, run_id, started=started, partial_error=error)
            except Exception as exc:
                report = record_failure(sink, run_id, source, "yfinance", f"{source}: {exc}", started, params)
            reports.append(report)
        elif error:
            reports.append(record_failure(sink, run_id, source, "yfinance", error, started, params))
        else:
            reports.append(SourceReport(source=source, loader="yfinance"))
    return reports
