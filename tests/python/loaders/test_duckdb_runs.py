"""The DuckDB loader's write path: a group is checked and inserted straight from Arrow in runs of
consecutive files (`RUN_ROWS`), all in one transaction. What must hold, on a real DuckDB file with
real Alpha Vantage rows: a later run that shares bars with an earlier run of the same transaction
(not committed yet), or two files of one run that share bars, land exactly what one file at a time
lands (newest wins, counts, history, audit); a reload writes nothing new; a run that fails leaves none of
its group's rows; the inserts' thread setting is put back."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.schema import BARS
from market_warehouse.loaders.sinks import duckdb_sink, open_sink

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "alphavantage"
DAY = "2021-04-21"


def _lines(name: str, n: int) -> list[str]:
    return gzip.decompress((SAMPLE / name).read_bytes()).decode().splitlines()[:n]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("runs")
    aapl = _lines(f"DA-AAPL-T-{DAY}.csv.gz", 1500)
    amd = _lines(f"DA-AMD-T-{DAY}.csv.gz", 800)
    ba = _lines(f"DA-BA-T-{DAY}.csv.gz", 600)
    later_amd = [amd[0]] + amd[700:]  # the AMD file's last 100 bars again, other volumes: these win
    for i in range(1, len(later_amd)):
        f = later_amd[i].split(",")
        f[6] = str(int(f[6]) + 1)
        later_amd[i] = ",".join(f)
    written = {f"DA-AAPL-T-{DAY}.csv": aapl, f"DA-AMD-T-{DAY}.csv": amd, f"DA-BA-T-{DAY}.csv": ba,
               "DA-AMD-T-2021-04-22.csv": later_amd}
    paths = []
    for name, lines in written.items():
        (d / name).write_text("\n".join(lines) + "\n")
        paths.append(d / name)
    return paths


STATE = {
    "bars": "select symbol, ts, open, high, low, close, volume, adj_close, source from raw.bars order by 1, 2",
    "actions": "select ex_date, symbol, action, value, source from raw.corporate_actions order by 1, 2, 3",
    "history": "select symbol, ts, volume, source from raw.replaced_bars order by 1, 2",
    "runs": "select source, status, rows_read, rows_loaded, rows_replaced, rows_duplicate from raw.loader_runs "
            "order by source",
}


def _load(path: Path, files: list[Path], monkeypatch, per_group: int, run_rows: int, group_rows: int = 10**6):
    monkeypatch.setenv("MWH_DUCKDB_PATH", str(path))
    monkeypatch.setenv("MWH_LOAD_GROUP_FILES", str(per_group))
    monkeypatch.setenv("MWH_LOAD_GROUP_ROWS", str(group_rows))
    monkeypatch.setattr(duckdb_sink, "RUN_ROWS", run_rows)
    with open_sink("duckdb") as sink:
        sink.con.execute("set threads = 2")
        reports = [(Path(r.source).name, r.status, r.loaded, r.replaced, r.duplicate)
                   for r in load_files(sink, files, "alphavantage")]
        state = {k: sink.query(sql) for k, sql in STATE.items()}
        threads = sink.query("select current_setting('threads')")[0][0]
    return reports, state, threads


# 1,000 rows a run: AAPL (1,499) is run 1, AMD and BA run 2, the later AMD file run 3, which meets
# run 2's bars stored but not committed. 1,000,000: one run, where the two AMD files share bars.
@pytest.mark.parametrize("run_rows", [1_000, 1_000_000])
def test_runs_land_what_one_file_at_a_time_lands(run_rows, files, tmp_path, monkeypatch):
    # The reference: one file per parse, per run and per transaction.
    one, expected, _ = _load(tmp_path / "one.duckdb", files, monkeypatch, per_group=1, run_rows=1, group_rows=1)
    grouped, state, threads = _load(tmp_path / "runs.duckdb", files, monkeypatch, per_group=100, run_rows=run_rows)
    assert grouped == one
    assert {k: v for k, v in state.items() if k != "runs"} == {k: v for k, v in expected.items() if k != "runs"}
    assert [r[1:] for r in state["runs"]] == [r[1:] for r in expected["runs"]]
    assert one[-1] == ("DA-AMD-T-2021-04-22.csv", "success", 0, 100, 0)  # newest wins
    assert threads == 2  # the inserts' single thread is not left behind
    again, after, _ = _load(tmp_path / "runs.duckdb", files, monkeypatch, per_group=100, run_rows=run_rows)
    # A reload adds no bar, and leaves the same bars: the two AMD files replace the 100 shared ones
    # in turn, as they did the first time, and the later file's values are kept.
    assert [r[2:4] for r in again] == [(0, 0), (0, 100), (0, 0), (0, 100)]
    assert after["bars"] == state["bars"]


def test_a_failed_run_leaves_nothing_of_its_group(files, tmp_path, monkeypatch):
    """Run 2 fails after run 1 was inserted: the group's transaction rolls back whole, each of its
    files (AAPL, AMD, BA) is recorded as failed, and raw.bars holds none of their rows. The file
    after them goes on in a transaction of its own (run 3), as with any failed group."""
    calls = {"n": 0}
    real = duckdb_sink.DuckDBTransaction._merge_run

    def failing_second_run(self, table, seen):
        if table.name == "bars":
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("disk full (injected)")
        return real(self, table, seen)

    monkeypatch.setattr(duckdb_sink.DuckDBTransaction, "_merge_run", failing_second_run)
    reports, state, _ = _load(tmp_path / "failed.duckdb", files, monkeypatch, per_group=100, run_rows=1_000)
    assert calls["n"] == 3
    assert [r[1] for r in reports] == ["failed"] * 3 + ["success"]
    assert len(state["bars"]) == 100 and {Path(r[-1]).name for r in state["bars"]} == {files[3].name}
    assert {Path(r[0]).name: r[1] for r in state["runs"]} == {
        **{f.name: "failed" for f in files[:3]}, files[3].name: "success"}


def _bars(symbol: str, times: list[str], unit: str = "ns", **series) -> pa.Table:
    ts = pa.array(pd.to_datetime(times, utc=True).as_unit(unit))
    cols = {"symbol": [symbol] * len(times), "exchange": [series.get("exchange", "US")] * len(times),
            "interval": [series.get("interval", "1d")] * len(times)}
    return pa.table({**{k: pa.array(v).dictionary_encode() for k, v in cols.items()}, "ts": ts})


def test_keys_cannot_repeat_is_shown_only_for_distinct_series_with_strict_times():
    """The Arrow-side proof that lets a run skip its duplicate-key query holds for vendor files (one series
    each, times strictly rising or falling, whole microseconds) and for nothing it cannot show."""
    ok = duckdb_sink.keys_cannot_repeat
    days = ["2021-04-19", "2021-04-20", "2021-04-21"]
    assert ok(BARS, [_bars("AAPL", days), _bars("AMD", days), _bars("AAPL", days, interval="1m")])
    assert ok(BARS, [_bars("AAPL", days[::-1])])  # a vendor file newest first
    assert ok(BARS, [_bars("AAPL", days, unit="us")])
    assert not ok(BARS, [_bars("AMD", days), _bars("AMD", ["2021-04-22"])])  # one series in two batches
    assert not ok(BARS, [_bars("AAPL", ["2021-04-19", "2021-04-21", "2021-04-20"])])  # not ordered
    assert not ok(BARS, [_bars("AAPL", ["2021-04-19", "2021-04-19"])])  # a time twice
    # 1 and 2 ns apart: distinct here, one microsecond once stored
    assert not ok(BARS, [_bars("AAPL", ["2021-04-19 00:00:00.000000001", "2021-04-19 00:00:00.000000002"])])
    two = pa.concat_tables([_bars("AAPL", days[:1]), _bars("AMD", days[1:2])])
    assert not ok(BARS, [two])  # two series in one batch
    assert not ok(BARS, [_bars("AAPL", days).to_pandas()])  # pandas: the query decides
