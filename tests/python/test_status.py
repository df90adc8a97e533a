"""`mwh status`: freshness against the exchange calendar, runs, sizes, quarantine, jobs; exit 2 beyond the SLA.

Real warehouses (a fresh DuckDB file, a fresh TimescaleDB database), real sample files, the real calendar seed.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "models"))
from market_warehouse.cli import main
from market_warehouse.status import freshness

from market_fixtures import closed_xnys_sessions

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
AAPL = SAMPLE / "alphavantage" / "DA-AAPL-T-2021-04-21.csv.gz"


def _fresh_file(tmp_path: Path, symbol: str = "FRSH") -> Path:
    days = closed_xnys_sessions(5)
    rows = [{"ts": d.strftime("%Y-%m-%d"), "open": 10 + i, "high": 11 + i, "low": 9 + i, "close": 10.5 + i,
             "volume": 1000 * (i + 1), "ticker": symbol} for i, d in enumerate(days)]
    path = tmp_path / f"{symbol}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _load_fresh(path: Path) -> None:
    assert main(["load", "csv", str(path), "--format", "generic", "--interval", "1d",
                 "--map", "ts=ts,open=open,high=high,low=low,close=close,volume=volume,symbol=ticker"]) == 0


def _status(capsys, *args) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["status", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("target_fixture", ["duckdb_target", "timescale_target"])
def test_status_reports_and_exits_on_stale(request, tmp_path, capsys, target_fixture):
    target = request.getfixturevalue(target_fixture)
    _load_fresh(_fresh_file(tmp_path))
    # Only fresh data: exit 0.
    code, report = _status(capsys)
    assert code == 0, report["sources"]
    (fresh,) = report["sources"]
    assert fresh["symbol"] == "FRSH" and fresh["sessions_behind"] == 0 and not fresh["stale"]
    assert report["stale_beyond_sla"] == [] and report["last_job_run"] is None

    # A real file whose history ends in 2021: stale, beyond the SLA, exit 2; the fresh source still fresh.
    assert main(["load", "csv", str(AAPL), "--format", "alphavantage"]) == 0
    code, report = _status(capsys)
    assert code == 2
    by = {s["symbol"]: s for s in report["sources"]}
    assert by["AAPL"]["beyond_sla"] and by["AAPL"]["stale"] and by["AAPL"]["sessions_behind"] > 1000
    assert by["AAPL"]["last_bar"].startswith("2021-04-21")
    assert not by["FRSH"]["beyond_sla"]
    assert report["stale_beyond_sla"] == ["AAPL/US/1d"]
    assert by["AAPL"]["last_run"]["status"] == "success"
    # A generous SLA: exit 0.
    code, _ = _status(capsys, "--sla-sessions", str(by["AAPL"]["sessions_behind"]))
    assert code == 0

    # Row counts and quarantine agree with the tables; the last loader run is the AAPL load.
    rows = {t["table"]: t["rows"] for t in report["tables"]}
    assert rows["raw.bars"] == by["AAPL"]["bars"] + by["FRSH"]["bars"] == by["AAPL"]["bars"] + 5
    assert report["last_loader_run"]["rows_read"] == by["AAPL"]["bars"]
    assert report["quarantine"]["total"] == rows["raw.quarantine"]
    assert report["database_size_bytes"] > 0

    if target.name == "timescale":
        ts = report["timescaledb"]
        assert ts["license"] in ("apache", "timescale") and ts["version"].startswith("2.")
        assert ts["chunks"]["raw.bars"] > 1  # 2021 history in 30-day chunks
        assert all(t["bytes"] and t["bytes"] > 0 for t in report["tables"] if t["table"] == "raw.bars")
        assert isinstance(ts["jobs"], list)
    else:
        assert report["timescaledb"] is None and report["edition"].startswith("DuckDB")

    # The text report says the same, once per source, and names the stale source.
    capsys.readouterr()
    assert main(["status"]) == 2
    text = capsys.readouterr().out
    assert "AAPL" in text and "BEYOND SLA" in text and "last mwh run:    none" in text
    assert f"target:      {target.describe()}" in text


def test_status_quarantine_and_failed_run(duckdb_target, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    good = pd.read_csv(_fresh_file(tmp_path))
    good.loc[1, "high"] = 1.0  # high below low: quarantined
    good.to_csv(bad, index=False)
    _load_fresh(bad)
    code, report = _status(capsys)
    assert code == 0
    assert report["quarantine"]["total"] == 1 and report["quarantine"]["by_table"] == {"raw.bars": 1}
    assert "high" in report["quarantine"]["top_reasons"][0]["reason"]
    assert report["last_loader_run"]["rows_quarantined"] == 1


def test_freshness_follows_the_exchange_calendar():
    last = dt.datetime(2021, 4, 21)  # a Wednesday
    # Friday noon: only Thursday's session closed since: within a 1-session SLA.
    assert freshness("US", "1d", last, dt.datetime(2021, 4, 23, 12))["sessions_behind"] == 1
    # Monday noon: Thursday and Friday closed, the weekend is not sessions.
    assert freshness("US", "1d", last, dt.datetime(2021, 4, 26, 12))["sessions_behind"] == 2
    # Good Friday 2021-04-02 is a NYSE holiday: Thursday's bar is current on Monday morning.
    assert freshness("US", "1d", dt.datetime(2021, 4, 1), dt.datetime(2021, 4, 5, 12))["sessions_behind"] == 0
    # Tokyo: Friday's session closes 06:00 UTC; with the 6-hour grace it counts from 12:00 UTC.
    assert freshness("XTKS", "1d", dt.datetime(2023, 4, 13), dt.datetime(2023, 4, 14, 11))["sessions_behind"] == 0
    assert freshness("XTKS", "1d", dt.datetime(2023, 4, 13), dt.datetime(2023, 4, 14, 13))["sessions_behind"] == 1
    # 24/7 crypto: every minute counts.
    f = freshness("BINANCE", "1m", dt.datetime(2023, 4, 30, 23, 59), dt.datetime(2023, 5, 1, 0, 20))
    assert f["open_minutes_behind"] == 21 and not f["stale"] and f["sessions_behind"] == 0
    f = freshness("BINANCE", "1m", dt.datetime(2023, 4, 30, 23, 59), dt.datetime(2023, 5, 3, 12))
    assert f["stale"] and f["sessions_behind"] == 2  # 05-01 and 05-02 closed (+6 h) by 05-03 12:00
    # NYSE intraday: a Friday-close bar is not stale over the weekend.
    f = freshness("US", "5m", dt.datetime(2021, 4, 23, 19, 55), dt.datetime(2021, 4, 26, 13, 0))
    assert f["open_minutes_behind"] == 5 and not f["stale"]
