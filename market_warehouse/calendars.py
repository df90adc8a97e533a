"""Trading sessions from `exchange_calendars`, written to the committed dbt seed.

The warehouse never reaches the network at run time, so exchange calendars are generated here once
(and refreshed when the library learns new holidays) into `seeds/trading_sessions.csv`; dbt loads it
with `dbt seed` and `dim_trading_sessions` adds the 24/7 calendar.

Crypto (calendar `24/7`) is not in the seed: it trades around the clock, so its sessions are the UTC
days 00:00-24:00, generated in SQL for any date range.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SEED_PATH = Path(__file__).resolve().parents[1] / "seeds" / "trading_sessions.csv"
DEFAULT_CALENDARS = ("XNYS", "XLON", "XTKS", "XTSE")  # the calendars of seeds/exchanges.csv
DEFAULT_START = "1995-01-01"
DEFAULT_END = "2030-12-31"
SEED_COLUMNS = ["calendar", "session_date", "open_utc", "close_utc", "is_early_close", "is_late_open"]


def trading_sessions(calendar: str = "XNYS", start: str = DEFAULT_START, end: str = DEFAULT_END) -> pd.DataFrame:
    """One row per session of `calendar` in [start, end]: open/close in UTC, early closes, late opens.

    Pure apart from the calendar library; a lunch break (XTKS, XHKG) is ignored: the session runs
    from the morning open to the afternoon close.
    """
    # Deferred on purpose: exchange_calendars takes seconds to import and only `mwh calendars` needs it.
    import exchange_calendars as xcals
    from exchange_calendars.calendar_utils import global_calendar_dispatcher

    # Some calendars start later than the default range (XTKS: 1997); clamp to what they know.
    bound = global_calendar_dispatcher._calendar_factories[calendar].bound_min()
    if bound is not None and pd.Timestamp(start) < bound:
        start = bound.strftime("%Y-%m-%d")
    cal = xcals.get_calendar(calendar, start=start, end=end)
    sched = cal.schedule.loc[start:end]
    early = set(pd.DatetimeIndex(cal.early_closes).date)
    late = set(pd.DatetimeIndex(cal.late_opens).date)
    dates = [d.date() for d in sched.index]
    return pd.DataFrame({
        "calendar": calendar,
        "session_date": [d.isoformat() for d in dates],
        "open_utc": sched["open"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M:%S+00").to_list(),
        "close_utc": sched["close"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M:%S+00").to_list(),
        "is_early_close": [d in early for d in dates],
        "is_late_open": [d in late for d in dates],
    }, columns=SEED_COLUMNS)


def write_sessions_seed(path: Path | str = SEED_PATH, calendars: tuple[str, ...] = DEFAULT_CALENDARS,
                        start: str = DEFAULT_START, end: str = DEFAULT_END) -> int:
    """Regenerate the trading-sessions seed CSV; returns the number of sessions written.

    Deterministic (sorted, fixed formats), so an unchanged calendar gives an unchanged file and git
    shows exactly the sessions a library upgrade added or moved.
    """
    frames = [trading_sessions(c, start, end) for c in calendars]
    out = pd.concat(frames, ignore_index=True).sort_values(["calendar", "session_date"])
    out["is_early_close"] = out["is_early_close"].map({True: "true", False: "false"})
    out["is_late_open"] = out["is_late_open"].map({True: "true", False: "false"})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, lineterminator="\n")
    return len(out)


if __name__ == "__main__":
    print(write_sessions_seed(), "sessions written to", SEED_PATH)
