"""Fetching bars from Yahoo Finance through yfinance: the only code that reaches the network, and
only when a user asks for it (`mwh load yfinance`).

- Raw prices: ``auto_adjust=False`` keeps O/H/L/C as traded and Adj Close beside them; dividends and
  splits (``actions=True``) go to raw.corporate_actions.
- Yahoo's history limits per interval: 1m bars only for the last 30 days, at most 7 days a request;
  5m/15m the last 60 days; 1h the last 730 days. Long ranges are fetched in chunks within them.
- Each interval's overlap: how much before the last loaded bar an incremental load re-fetches (late
  corrections by the vendor are picked up; the merge counts them as replaced). The incremental load
  itself (last loaded bar, write, audit) is market_warehouse/loaders/yfinance_load.py: no database code here.
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
    # Deferred on purpose: yfinance (and its HTTP stack) loads only when a fetch really happens.
    import yfinance as yf
    from yfinance.config import YfConfig  # deferred: slow to import, only a yfinance fetch needs it

    YfConfig.debug.hide_exceptions = False
    return yf.Ticker(symbol).history(
        start=start.strftime("%Y-%m-%d") if interval in ("1d", "1wk") else start.to_pydatetime(),
        end=end.strftime("%Y-%m-%d") if interval in ("1d", "1wk") else end.to_pydatetime(),
        interval=interval, auto_adjust=False, actions=True, repair=False,
    )


def to_utc(value: str | pd.Timestamp | None) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def fetch_range(symbol: str, begin: pd.Timestamp, end: pd.Timestamp, interval: str, now: pd.Timestamp,
                source: str, fetch: Fetch | None = None, sleep: Callable[[float], None] = time.sleep,
                ) -> tuple[pd.DataFrame | None, str | None]:
    """[begin, end) of one symbol, fetched in the chunks Yahoo answers, each with retries. Returns the
    frame of the contiguous chunks fetched (None if nothing came back) and the error that stopped the
    fetch (None if none did): what was fetched before a failure is kept, the next incremental run
    resumes after it."""
    fetch = fetch or yfinance_fetch
    frames, error = [], None
    for lo, hi in plan_chunks(begin, end, interval, now):
        try:
            frames.append(with_retries(lambda lo=lo, hi=hi: fetch(symbol, lo, hi, interval), sleep=sleep))
        except Exception as exc:  # noqa: BLE001 - reported with the source, the other symbols go on
            error = (f"{source}: fetch {lo:%Y-%m-%d %H:%M}..{hi:%Y-%m-%d %H:%M} failed: "
                     f"{type(exc).__name__}: {exc}")
            break
    frames = [f for f in frames if f is not None and not f.empty]
    if not frames:
        return None, error
    frame = pd.concat(frames)
    return frame[~frame.index.duplicated(keep="last")], error  # chunk edges overlap by a bar
