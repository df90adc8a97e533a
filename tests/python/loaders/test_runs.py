"""`mwh runs list` and `mwh runs undo RUN_ID`: undoing removes what a load wrote and puts back what it
replaced (kept in raw.replaced_bars / raw.replaced_corporate_actions in the load's transaction), or
says what it cannot restore."""

from __future__ import annotations

import gzip
from pathlib import Path

from market_warehouse.cli import main as mwh
from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.ml.db import ALL_TABLES, open_ml_sink
from market_warehouse.ml.records import write_records
from market_warehouse.runs import list_runs, undo_run

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample"
AAPL = SAMPLE / "alphavantage" / "DA-AAPL-T-2021-04-21.csv.gz"
BARS = ("select symbol, exchange, interval, ts, open, high, low, close, volume, adj_close, source, run_id, "
        "loaded_at from raw.bars order by symbol, exchange, interval, ts")
ACTIONS = "select * from raw.corporate_actions order by symbol, ex_date, action"


def _files(tmp_path: Path) -> tuple[Path, Path]:
    """The first 100 AAPL rows; then the vendor re-sends rows 90..109 with two closes corrected
    (10 bars new)."""
    text = gzip.decompress(AAPL.read_bytes()).decode().splitlines()
    header, rows = text[0], text[1:]
    old = tmp_path / "DA-AAPL-T-2021-04-20.csv"
    old.write_text("\n".join([header, *rows[:100]]) + "\n")
    corrected = []
    for i, row in enumerate(rows[90:110]):
        f = row.split(",")
        if i in (3, 7):
            f[4] = str(round(float(f[4]) + 0.01, 2))
            f[3] = str(min(float(f[3]), float(f[4])))
            f[2] = str(max(float(f[2]), float(f[4])))
        corrected.append(",".join(f))
    new = tmp_path / "DA-AAPL-T-2021-04-21.csv"
    new.write_text("\n".join([header, *corrected]) + "\n")
    return old, new


def test_undo_removes_a_load_and_restores_what_it_replaced(any_target, tmp_path, capsys):
    old, new = _files(tmp_path)
    with open_sink(any_target) as sink:
        load_files(sink, [old], "alphavantage", run_id="run-a")
        bars_a, actions_a = sink.query(BARS), sink.query(ACTIONS)
        (b,) = load_files(sink, [new], "alphavantage", run_id="run-b")
        assert (b.loaded, b.replaced, b.duplicate) == (10, 2, 8)
        assert sink.query("select count(*), min(replaced_by_run_id), max(run_id) from raw.replaced_bars") == [
            (2, "run-b", "run-a")]
        runs = list_runs(sink)
        assert [(r.run_id, r.status, r.loaded, r.replaced) for r in runs] == [
            ("run-b", "success", 10, 2), ("run-a", "success", 100, 0)]

    assert mwh(["runs", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith("run-b") and listed[1].startswith("run-a")

    assert mwh(["runs", "undo", "run-b"]) == 0
    out = capsys.readouterr().out
    assert "removed          12 rows from raw.bars" in out and "restored          2 replaced rows of raw.bars" in out
    assert "not restored" not in out
    with open_sink(any_target) as sink:
        assert sink.query(BARS) == bars_a  # to the bit: values, source, run_id and loaded_at
        assert sink.query(ACTIONS) == actions_a
        assert sink.query("select count(*) from raw.replaced_bars") == [(0,)]
        assert {r[0] for r in sink.query("select status from raw.loader_runs where run_id = 'run-b'")} == {"undone"}
        assert [r.status for r in list_runs(sink)] == ["undone", "success"]

    assert mwh(["runs", "undo", "run-b"]) == 1
    assert "already undone" in capsys.readouterr().err
    assert mwh(["runs", "undo", "no-such-run"]) == 1
    assert "no run 'no-such-run'" in capsys.readouterr().err
    assert mwh(["runs", "undo", "run-a"]) == 0
    with open_sink(any_target) as sink:
        assert sink.query("select count(*) from raw.bars") == [(0,)]
        assert sink.query("select count(*) from raw.corporate_actions") == [(0,)]


def test_undo_says_what_a_later_run_blocks(any_target, tmp_path):
    old, new = _files(tmp_path)
    with open_sink(any_target) as sink:
        load_files(sink, [old], "alphavantage", run_id="run-a")
        load_files(sink, [new], "alphavantage", run_id="run-b")
        newer = tmp_path / "newer" / new.name
        newer.parent.mkdir()
        lines = new.read_text().splitlines()
        f = lines[4].split(",")  # one of run-b's corrected bars, corrected again
        f[4] = str(round(float(f[4]) + 0.01, 2))
        f[2] = str(max(float(f[2]), float(f[4])))
        lines[4] = ",".join(f)
        newer.write_text("\n".join(lines) + "\n")
        (c,) = load_files(sink, [newer], "alphavantage", run_id="run-c")
        assert c.replaced == 1
        report = undo_run(sink, "run-b", ALL_TABLES)
        assert report.restored["raw.bars"] == 1
        assert report.removed["raw.bars"] == 11  # 12 written, 1 since replaced by run-c
        assert any("1 rows of raw.bars it replaced: a later run has since written those keys" in n
                   for n in report.not_restored)
        assert sink.query("select run_id, count(*) from raw.bars group by run_id order by run_id") == [
            ("run-a", 99), ("run-c", 1)]


def test_undo_of_ml_records(any_target):
    with open_ml_sink(any_target) as sink:
        write_records(sink, "models", [{"model_name": "m", "model_version": "1", "model_type": "logistic",
                                        "task": "regression", "training_date": "2024-01-01"}], run_id="reg")
        rows = [{"model_id": "m@1", "symbol": "AAPL", "bar_ts": f"2024-01-0{d}", "predicted_at": "2024-01-10",
                 "predicted_value": 0.01 * d} for d in range(2, 6)]
        write_records(sink, "predictions", rows, run_id="p1")
        write_records(sink, "predictions", [{**rows[0], "predicted_value": 0.5}], run_id="p2")
        report = undo_run(sink, "p2", ALL_TABLES)
        assert report.removed["raw.ml_predictions"] == 1
        assert report.not_restored == ["1 rows of raw.ml_predictions it replaced (no history of replaced rows "
                                       "is kept for that table)"]
        assert sink.query("select count(*) from raw.ml_predictions") == [(3,)]
