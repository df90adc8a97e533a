"""`mwh demo`, what `make demo` runs, on a fresh DuckDB file: it loads the bundled sample (one vendor error file
fails on purpose), builds everything, prints a summary, and leaves no ML mart empty: the demo's ML sample
(market_warehouse/ml/demo_sample.py) trains a baseline on the sample bars, registers it, records predictions,
signals and agent records, and builds. One demo run serves every check (it takes about two minutes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np

from market_warehouse.ml.demo_sample import MODEL_ID, fit_logistic

REPO = Path(__file__).resolve().parents[2]
ML_MARTS = sorted(p.stem for p in (REPO / "models" / "marts" / "ml").glob("*.sql"))


def test_demo_loads_the_sample_builds_summarizes_and_fills_every_ml_mart(duckdb_target, tmp_path):
    env = dict(os.environ, MWH_ARTIFACT_STORE=str(tmp_path / "artifacts"))
    res = subprocess.run([sys.executable, "-m", "market_warehouse.cli", "demo"], capture_output=True, text=True,
                         env=env, timeout=1800, cwd=REPO)
    out = res.stdout
    assert res.returncode == 0, out[-4000:] + res.stderr[-4000:]
    assert "FAILED  " in out and "DA-BF.B-T-2021-04-21.csv" in out  # the vendor error body, on purpose
    summary = out.split("== summary", 1)[1]
    assert "symbols:" in summary and "bars 1d" in summary and "bars 1m" in summary
    assert "rows quarantined:" in summary and "time taken:" in summary
    with duckdb.connect(duckdb_target.path, read_only=True) as con:
        assert con.execute("select count(distinct symbol) from raw.bars where exchange = 'US'"
                           ).fetchone()[0] >= 40
    assert "== ML sample: training-runs 1, models 1, predictions" in res.stdout
    assert "ML build ok" in res.stdout
    assert len(ML_MARTS) >= 15
    with duckdb.connect(duckdb_target.path, read_only=True) as con:
        empty = [m for m in ML_MARTS if con.execute(f"select count(*) from marts.{m}").fetchone()[0] == 0]
        assert not empty, f"ML marts without rows after the demo: {empty}"
        model_type, metrics, features, uri = con.execute(
            "select model_type, metrics, feature_columns, artifact_uri from raw.ml_model_registry "
            "where model_id = ?", [MODEL_ID]).fetchone()
        assert model_type == "logistic_regression" and json.loads(features) == ["return_5", "rsi_14",
                                                                               "volatility_20"]
        assert 0.45 < json.loads(metrics)["accuracy"] < 0.65
        perf = con.execute("select n_signals from marts.fct_signal_performance "
                           "where strategy = 'demo_baseline' and symbol = 'ALL'").fetchall()
        assert perf and perf[0][0] > 10
    artifact = json.loads(Path(uri.removeprefix("file://")).read_text()) if "://" in uri or Path(uri).exists() \
        else None
    assert artifact is None or artifact["features"] == ["return_5", "rsi_14", "volatility_20"]


def test_fit_logistic_recovers_a_known_rule():
    """The numpy baseline is a real logistic regression: on separable synthetic data it finds the sign
    of each coefficient, and the same input gives the same weights."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 3))
    y = (1.5 * x[:, 0] - 2.0 * x[:, 1] + 0.2 * rng.normal(size=2000) > 0).astype(float)
    w = fit_logistic(x, y)
    assert w[1] > 1 and w[2] < -1 and abs(w[3]) < 0.5
    assert np.array_equal(w, fit_logistic(x, y))
