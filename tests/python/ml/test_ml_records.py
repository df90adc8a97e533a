"""The write path on real databases: quarantine with reasons, audit rows, idempotent reloads, strict mode,
whole-batch rollback, and `mwh ml load` from files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from market_warehouse.cli import main as mwh
from market_warehouse.loaders.schema import QUARANTINE
from market_warehouse.ml import registry
from market_warehouse.ml.records import RecordsRejected, load_record_files, write_records


def _register(sink) -> None:
    registry.register_model(sink, "m", "1", "logistic", "classification", "2024-01-01T00:00:00Z",
                            metrics={"accuracy": 0.6})


def _predictions() -> list[dict]:
    rows = [{"model_id": "m@1", "symbol": "AAPL", "bar_ts": f"2024-01-{d:02d}", "predicted_at": f"2024-01-{d:02d}T21:00:00Z",
             "predicted_class": "up", "probability": 0.55, "features": {"x": float(d)}} for d in range(2, 12)]
    rows.append({**rows[0], "model_id": "m@7"})
    rows.append({**rows[1], "bar_ts": "2024-02-01", "probability": -0.1})
    rows.append({**rows[2], "bar_ts": "2099-01-01"})
    return rows


def _count(sink, table: str, where: str = "") -> int:
    return sink.query(f"select count(*) from raw.{table} {where}")[0][0]


def test_bad_rows_are_quarantined_with_reasons_and_the_rest_lands(ml_any):
    _register(ml_any)
    report = write_records(ml_any, "predictions", _predictions(), source="batch-1")
    assert (report.loaded, report.quarantined, report.rows_read) == (10, 3, 13)
    assert _count(ml_any, "ml_predictions") == 10
    q = ml_any.query("select row_number, reason, record from raw.quarantine "
                     "where target_table = 'raw.ml_predictions' order by row_number")
    assert [(n, r) for n, r, _ in q] == [
        (11, "unknown model version (not in ml_model_registry)"),
        (12, "probability outside [0, 1]"),
        (13, "bar_ts in the future"),
    ]
    assert json.loads(q[0][2])["model_id"] == "m@7"
    audit = ml_any.query("select rows_read, rows_loaded, rows_quarantined, status, target_table "
                         "from raw.loader_runs where source = 'batch-1'")
    assert audit == [(13, 10, 3, "success", "raw.ml_predictions")]

    # The same batch again: nothing new, the ten valid rows are duplicates; a changed row replaces.
    again = write_records(ml_any, "predictions", _predictions()[:10])
    assert (again.loaded, again.replaced, again.duplicate) == (0, 0, 10)
    changed = _predictions()[:1]
    changed[0]["probability"] = 0.9
    third = write_records(ml_any, "predictions", changed)
    assert (third.loaded, third.replaced) == (0, 1)
    assert ml_any.query("select probability from raw.ml_predictions where bar_ts = '2024-01-02'")[0][0] == 0.9
    assert _count(ml_any, "ml_predictions") == 10


def test_strict_mode_raises_and_writes_nothing(ml_duckdb):
    _register(ml_duckdb)
    with pytest.raises(RecordsRejected, match=r"row 11: unknown model version"):
        write_records(ml_duckdb, "predictions", _predictions(), strict=True, source="strict")
    assert _count(ml_duckdb, "ml_predictions") == 0
    assert ml_duckdb.query("select status from raw.loader_runs where source = 'strict'") == [("failed",)]


def test_a_failing_batch_leaves_no_partial_rows(ml_duckdb, monkeypatch):
    """The quarantine append fails after the merge wrote the valid rows: all of it rolls back."""
    _register(ml_duckdb)
    from market_warehouse.loaders.sinks.duckdb_sink import DuckDBTransaction

    real_append = DuckDBTransaction.append

    def failing_append(self, table, frame, *args, **kwargs):
        if table is QUARANTINE:
            raise RuntimeError("disk full")
        return real_append(self, table, frame, *args, **kwargs)

    monkeypatch.setattr(DuckDBTransaction, "append", failing_append)
    with pytest.raises(RuntimeError, match="disk full"):
        write_records(ml_duckdb, "predictions", _predictions(), source="doomed")
    monkeypatch.undo()
    assert _count(ml_duckdb, "ml_predictions") == 0
    assert _count(ml_duckdb, "quarantine") == 0
    assert ml_duckdb.query("select status, error from raw.loader_runs where source = 'doomed'") == [
        ("failed", "disk full")]


def test_mwh_ml_load_files(duckdb_target, tmp_path, capsys):
    signals = tmp_path / "signals.jsonl"
    signals.write_text("\n".join([
        json.dumps({"strategy": "s", "symbol": "AAPL", "signal_ts": "2021-03-09", "signal_type": "BUY",
                    "entry_price": 121.0, "target_price": 125.0, "stop_price": 118.0}),
        json.dumps({"strategy": "s", "symbol": "AAPL", "signal_ts": "2021-03-10", "signal_type": "BUY",
                    "entry_price": 121.0, "target_price": 125.0, "stop_price": 122.0}),
        "{oops",
    ]))
    runs = tmp_path / "runs.csv"
    runs.write_text("training_run_id,model_name,started_at,ended_at,status,symbols,sample_count\n"
                    "r1,m,2024-01-01T00:00:00Z,2024-01-01T01:00:00Z,completed,\"[\"\"AAPL\"\"]\",100\n"
                    "r2,m,2024-01-02T00:00:00Z,2024-01-01T01:00:00Z,done,[],x\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert mwh(["ml", "load", "signals", str(signals)]) == 0
    out = capsys.readouterr().out
    assert "loaded 1" in out and "quarantined 2" in out
    assert "row 2: BUY stop_price not below entry_price" in out
    assert "row 3: not valid JSON" in out
    assert mwh(["ml", "load", "training-runs", str(runs), str(empty)]) == 1
    out = capsys.readouterr().out
    assert "row 3: sample_count 'x': not a number; status not one of" in out
    assert f"FAILED  {empty}: file is empty" in out
    from market_warehouse.ml.db import open_ml_sink

    with open_ml_sink(duckdb_target) as sink:
        assert sink.query("select symbols, sample_count from raw.ml_training_runs") == [('["AAPL"]', 100)]
        reasons = sink.query("select reason from raw.quarantine where target_table = 'raw.ml_training_runs'")
        assert reasons == [(("sample_count 'x': not a number; status not one of running, completed, failed; "
                             "ended_at before started_at"),)]


def test_load_record_files_reports_each_file(ml_duckdb, tmp_path):
    good = tmp_path / "episodes.csv"
    good.write_text("agent_id,episode,ended_at,total_reward\na,1,2024-01-01T00:00:00Z,1.5\n")
    bad = tmp_path / "episodes.txt"
    bad.write_text("x")
    reports = load_record_files(ml_duckdb, "agent-episodes", [good, bad])
    assert [r.status for r in reports] == ["success", "failed"]
    assert "cannot tell the format" in reports[1].error
    assert pd.Timestamp(ml_duckdb.query("select ended_at from raw.ml_agent_episodes")[0][0]) == pd.Timestamp(
        "2024-01-01T00:00:00Z")


def test_python_api_and_registry_rows_from_a_file(duckdb_target, tmp_path):
    from market_warehouse.ml import api

    models = tmp_path / "models.jsonl"
    models.write_text("\n".join(json.dumps(r) for r in [
        {"model_name": "f", "model_version": "1", "model_type": "ridge", "task": "regression",
         "training_date": "2024-01-01T00:00:00Z", "is_active": True},
        {"model_name": "g", "model_version": "1", "model_type": "ridge", "task": "regression",
         "training_date": "2024-01-01T00:00:00Z", "is_active": True},
        {"model_name": "g", "model_version": "2", "model_type": "ridge", "task": "regression",
         "training_date": "2024-01-02T00:00:00Z", "is_active": True},
    ]))
    with api.connect(duckdb_target) as wh:
        [report] = load_record_files(wh, "models", [models])
        assert (report.loaded, report.quarantined) == (1, 2)
        assert wh.query("select reason from raw.quarantine order by row_number") == [
            ("more than one active version of model g in the batch",)] * 2
        assert api.active_version(wh, "f").model_id == "f@1"
        report = api.record_predictions(wh, [{"model_id": "f@1", "symbol": "X", "bar_ts": "2024-01-03",
                                              "predicted_at": "2024-01-03T21:00:00Z", "predicted_value": 0.1}])
        assert report.loaded == 1
        assert api.request_retrain(wh, "f", "manual") is not None
        assert api.request_retrain(wh, "f", "manual again") is None
        assert api.claim_retrain(wh, "w").model_name == "f"


def test_time_series_tables_are_hypertables_on_timescale(ml_timescale):
    rows = ml_timescale.query("select hypertable_name from timescaledb_information.hypertables "
                              "where hypertable_schema = 'raw' and hypertable_name like 'ml_%' order by 1")
    assert rows == [("ml_agent_decisions",), ("ml_predictions",), ("ml_signals",)]
