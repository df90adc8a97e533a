"""Builds that can't corrupt each other (issue 7 item 4): `mwh build --select ...` on a fresh warehouse
builds what its selection needs and runs only the tests whose parents exist; it records the seeds'
checksum only if it loaded every seed, so the next plain `mwh build` loads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from market_warehouse.dbt import seeds_checksum
from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.sinks import open_sink

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "data" / "sample" / "alphavantage"
FILES = [SAMPLE / "DA-AAPL-T-2021-04-21.csv.gz", SAMPLE / "DA-MSFT-T-2021-04-21.csv.gz"]


def _relations(target, schema: str) -> set[str]:
    with open_sink(target, tables=()) as sink:
        return {r[0] for r in sink.query("select table_name from information_schema.tables "
                                         "where table_schema = ?", [schema])}


def _stored_checksum(target) -> str | None:
    with open_sink(target, tables=()) as sink:
        return sink.stored_seeds_checksum()


# timescale stands for both PostgreSQL targets: the seeds' checksum lives in the PostgreSQL sink, the
# same code on both, and the models it builds are covered on plain PostgreSQL by test_market_incremental.
@pytest.mark.parametrize("target_name", ["duckdb", "timescale"])
def test_selected_build_then_plain_build(target_name, request, tmp_path):
    from market_warehouse.cli import main as mwh
    from market_warehouse.ml.db import open_ml_sink
    from market_warehouse.ml.records import write_records

    target = request.getfixturevalue(f"{target_name}_target")
    with open_ml_sink(target) as sink:
        reports = load_files(sink, [str(p) for p in FILES], "alphavantage")
        assert all(r.status == "success" for r in reports), [r.line() for r in reports]
        report = write_records(sink, "signals", [
            {"strategy": "s", "symbol": "AAPL", "signal_ts": "2021-03-09T16:00:00-05:00", "signal_type": "BUY",
             "entry_price": 121.085, "target_price": 123.5, "stop_price": 115.0}], strict=True)
        assert report.loaded == 1

    # A fresh warehouse: the selection's parents and the tests of built nodes only -> exit 0.
    assert mwh(["build", "--select", "+fct_signal_outcomes"]) == 0
    assert "fct_signal_outcomes" in _relations(target, "marts")
    seeds = {p.stem for p in (REPO / "seeds").glob("*.csv")}
    # The selection did not load every seed, so the checksum is not recorded.
    if not seeds <= _relations(target, "reference"):
        assert _stored_checksum(target) is None
    with open_sink(target, tables=()) as sink:
        assert sink.query("select outcome from marts.fct_signal_outcomes") == [("target",)]

    # The plain build after it loads the seeds and builds everything.
    assert mwh(["build"]) == 0
    assert seeds <= _relations(target, "reference")
    assert _stored_checksum(target) == seeds_checksum()
    assert {"fct_signal_outcomes", "fct_bars_1d"} <= _relations(target, "marts")

    # A selection whose parent is missing (dropped) rebuilds that parent instead of failing.
    with open_sink(target, tables=()) as sink, sink.transaction() as tx:
        tx.execute("drop table marts.fct_signal_outcomes cascade" if target_name != "duckdb"
                   else "drop table marts.fct_signal_outcomes")
    assert mwh(["build", "--select", "fct_signal_performance"]) == 0
    assert {"fct_signal_outcomes", "fct_signal_performance"} <= _relations(target, "marts")
    # Seeds unchanged and present: the checksum stays.
    assert _stored_checksum(target) == seeds_checksum()
