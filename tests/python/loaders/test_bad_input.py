"""Bad input never reaches the build: values the models would refuse are refused at load time, with
one line naming the file and the value, and files that collide in one command follow a stated rule."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import yaml

from market_warehouse.cli import main as mwh
from market_warehouse.loaders.pipeline import load_files, order_repaired_last
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.validate import BAR_INTERVALS, known_exchanges

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "data" / "sample"
YF = SAMPLE / "yfinance"
AAPL = SAMPLE / "alphavantage" / "DA-AAPL-T-2021-04-21.csv.gz"


def _generic_csv(tmp_path: Path, rows: int = 20, extra: dict[str, list] | None = None) -> Path:
    """Real AAPL daily bars as a generic CSV (columns named as the --map tests use)."""
    lines = gzip.decompress(AAPL.read_bytes()).decode().splitlines()[1:rows + 1]
    frame = pd.DataFrame([line.split(",")[:6] for line in lines], columns=["Date", "o", "h", "l", "c", "vol"])
    frame = frame.drop(columns=[]).assign(**(extra or {}))
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)
    return path


MAP = "ts=Date,open=o,high=h,low=l,close=c,volume=vol"


def _count(sink, table: str) -> int:
    return sink.query(f"select count(*) from {table}")[0][0]


def test_bad_interval_exchange_or_symbol_is_refused_with_one_line(any_target, tmp_path, capsys):
    path = _generic_csv(tmp_path)
    cases = [(["--interval", "7x", "--symbol", "AAPL"], "interval '7x'"),
             (["--interval", "1d", "--symbol", "AAPL", "--exchange", "NOPE"], "exchange 'NOPE'"),
             (["--interval", "1d", "--symbol", "AA PL"], "symbol 'AA PL'")]
    for options, says in cases:
        code = mwh(["load", "csv", str(path), "--format", "generic", "--map", MAP, *options])
        out = capsys.readouterr().out
        failed = [line for line in out.splitlines() if line.startswith("FAILED")]
        assert code == 1, out
        assert len(failed) == 1 and str(path) in failed[0] and says in failed[0], out
        assert "Traceback" not in out
    with open_sink(any_target) as sink:
        assert _count(sink, "raw.bars") == 0
        assert _count(sink, "raw.quarantine") == 0
        assert {r[0] for r in sink.query("select status from raw.loader_runs")} == {"failed"}
    # The same file with accepted values loads.
    assert mwh(["load", "csv", str(path), "--format", "generic", "--map", MAP, "--interval", "1d",
                "--symbol", "AAPL"]) == 0


def test_a_bad_value_in_some_rows_quarantines_those_rows(any_target, tmp_path):
    path = _generic_csv(tmp_path, 10, {"ivl": ["1d"] * 9 + ["7x"], "ex": ["US"] * 8 + ["XXXX", "US"]})
    with open_sink(any_target) as sink:
        (r,) = load_files(sink, [path], "generic", symbol="AAPL",
                          mapping={"ts": "Date", "open": "o", "high": "h", "low": "l", "close": "c",
                                   "volume": "vol", "interval": "ivl", "exchange": "ex"})
        assert (r.status, r.loaded, r.quarantined) == ("success", 8, 2)
        reasons = sink.query("select row_number, reason from raw.quarantine order by row_number")
        assert reasons[0][0] == 10 and "exchange 'XXXX'" in reasons[0][1]
        assert reasons[1][0] == 11 and "interval '7x'" in reasons[1][1]
        assert {r[0] for r in sink.query("select distinct interval from raw.bars")} == {"1d"}


def test_a_mapped_column_that_is_not_there_is_named(any_target, tmp_path, capsys):
    path = _generic_csv(tmp_path)
    code = mwh(["load", "csv", str(path), "--format", "generic", "--interval", "1d",
                "--map", MAP + ",symbol=nosuchcol"])
    out = capsys.readouterr().out
    assert code == 1
    assert "symbol=nosuchcol" in out and "no such column" in out and "no symbol" not in out, out
    with open_sink(any_target) as sink:
        assert _count(sink, "raw.bars") == 0


def test_ml_file_with_a_wrong_header_loads_nothing_and_names_it(any_target, tmp_path, capsys):
    path = tmp_path / "preds.csv"
    path.write_text("model,sym,bar_ts,prob\naapl@1,AAPL,2024-01-02,0.6\naapl@1,AAPL,2024-01-03,0.4\n")
    code = mwh(["ml", "load", "predictions", str(path)])
    out = capsys.readouterr().out
    assert code == 1
    line = next(x for x in out.splitlines() if x.startswith("FAILED"))
    assert str(path) in line and "unknown column(s) model, sym, prob" in line
    assert "missing required column(s) model_id, symbol" in line, line
    with open_sink(any_target) as sink:
        assert _count(sink, "raw.ml_predictions") == 0
        assert _count(sink, "raw.quarantine") == 0


def test_a_repaired_twin_wins_whatever_the_glob_order_and_the_collision_is_reported(any_target, capsys):
    twins = [YF / "4063-T-1d-bad-stock-split-fixed.csv", YF / "4063-T-1d-bad-stock-split.csv",
             YF / "SCR-TO-1d-bad-div-fixed.csv", YF / "SCR-TO-1d-bad-div.csv"]
    assert order_repaired_last(twins) == [twins[1], twins[0], twins[3], twins[2]]
    sql = "select symbol, ts, open, high, low, close, volume, adj_close, source from raw.bars order by 1, 2"
    with open_sink(any_target) as sink:
        load_files(sink, [twins[0], twins[2]], "yfinance")
        repaired = [r[:-1] for r in sink.query(sql)]
        assert {r[-1] for r in sink.query(sql)} == {str(twins[0]), str(twins[2])}
    code = mwh(["load", "csv", str(YF / "*.csv"), "--format", "yfinance"])  # the glob of the issue
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"shares 22 bars with {twins[1]}: this file's values are kept (it is the repaired twin)" in out
    assert f"shares 722 bars with {twins[3]}: this file's values are kept (it is the repaired twin)" in out
    with open_sink(any_target) as sink:
        stored = sink.query(sql.replace("from raw.bars", "from raw.bars where symbol in ('4063.T', 'SCR.TO')"))
        assert [r[:-1] for r in stored] == repaired
        params = sink.query("select parameters from raw.loader_runs where source = ? order by started_at desc",
                            [str(twins[2])])[0][0]
        params = params if isinstance(params, dict) else json.loads(params)
        assert params["collides_with"] == {str(twins[3]): 722}


def test_later_file_wins_when_files_are_not_twins(any_target, tmp_path, capsys):
    first = _generic_csv(tmp_path, 5)
    second = tmp_path / "again.csv"
    frame = pd.read_csv(first, dtype=str)
    frame.loc[0, "c"] = str(float(frame.loc[0, "c"]) + 0.01)
    frame.loc[0, "h"] = str(max(float(frame.loc[0, "h"]), float(frame.loc[0, "c"])))
    frame.to_csv(second, index=False)
    assert mwh(["load", "csv", str(first), str(second), "--format", "generic", "--map", MAP,
                "--interval", "1d", "--symbol", "AAPL"]) == 0
    out = capsys.readouterr().out
    assert f"shares 5 bars with {first}: this file's values are kept (later on the command line)" in out
    with open_sink(any_target) as sink:
        # The changed bar is the later file's; the 4 identical ones stay as first written (duplicates).
        closes = sink.query("select close, source from raw.bars where source = ?", [str(second)])
        assert closes == [(float(frame.loc[0, "c"]), str(second))]
        assert _count(sink, "raw.bars") == 5


def test_the_accepted_values_are_the_models():
    """BAR_INTERVALS is stg_market__bars' accepted_values; exchanges come from the seed the
    relationships test reads."""
    models = yaml.safe_load((REPO / "models" / "staging" / "market" / "stg_market__bars.yml").read_text())
    bars = next(m for m in models["models"] if m["name"] == "stg_market__bars")
    interval = next(c for c in bars["columns"] if c["name"] == "bar_interval")
    accepted = next(t["accepted_values"] for t in interval["data_tests"] if isinstance(t, dict)
                    and "accepted_values" in t)
    values = accepted.get("arguments", accepted)["values"]
    assert sorted(values) == sorted(BAR_INTERVALS)
    seed = pd.read_csv(REPO / "seeds" / "exchanges.csv")
    assert known_exchanges() == frozenset(seed["exchange"])
