"""The market models on the local Spark target (issue 13): the same model files as on DuckDB, built on
Spark from a small fixture (two daily symbols with a split and dividends, a day of 1-minute crypto bars)
and compared value by value with DuckDB's build of the same rows. `dbt run`, not `build`: the models'
~150 dbt tests take minutes more on Spark local (they pass there: docs/spark.md gives the run).

One SparkSession per process (tests/python/spark/test_spark_loader.py says why); skip with -m "not spark".
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

pytest.importorskip("pyspark", reason="the spark target needs `make spark` (dbt-spark, pyspark)")

from market_warehouse.config import load_target
from market_warehouse.dbt import run_dbt
from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.sinks.spark_sink import stop_spark

pytestmark = pytest.mark.spark

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample"
DAILY_ROWS = 180  # AAPL from 2020-08: its 4:1 split of 2020-08-31 and two dividends; F: a dividend
SEEDS = "trading_sessions exchanges symbols known_data_issues"
# staging, adjustment, rollups, bars, features, labels, training set and gaps (docs/spark.md)
MODELS = ("stg_market__bars stg_market__corporate_actions int_market__trading_sessions "
          "int_market__bars_rolled_up_5m int_market__bars_rolled_up_15m int_market__bars_rolled_up_1h "
          "int_market__bars_rolled_up_1d int_market__bars_unioned_1d "
          "int_market__adjustment_events int_market__adjustment_factors fct_bars_1d fct_bars_1h fct_bars_1m "
          "int_market__ewm_states_daily int_market__ewm_states_hourly "
          "fct_features_daily fct_features_hourly fct_labels_daily fct_labels_hourly "
          "fct_training_set_daily fct_bar_gaps")

# Queries both engines answer alike (plain SQL, rounded doubles, dates as text).
CHECKS = {
    "staged bars": "select bar_interval, count(*) from staging.stg_market__bars group by bar_interval order by 1",
    "daily bars": "select symbol, count(*), round(sum(adj_close), 6), round(min(price_factor), 9) "
                  "from marts.fct_bars_1d group by symbol order by 1",
    "hourly rollup": "select count(*), round(sum(volume), 4), round(max(high), 6) from marts.fct_bars_1h",
    "features": "select symbol, count(return_1), round(sum(return_1), 9), round(sum(volatility_60), 9) "
                "from marts.fct_features_daily_v1 group by symbol order by 1",
    "labels": "select count(forward_return_5), round(sum(forward_return_5), 9) from marts.fct_labels_daily",
    "training set": "select count(*) from marts.fct_training_set_daily",
    "gaps": "select bar_interval, count(*), sum(missing_bars) from marts.fct_bar_gaps group by bar_interval order by 1",
}


def _trim(src: Path, dst: Path, newest: int | None = None, oldest: int | None = None) -> Path:
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt") as f:
        lines = f.read().splitlines()
    body = lines[1:][-newest:] if newest else lines[1:][:oldest]
    dst.write_text("\n".join([lines[0], *body]) + "\n")
    return dst


def _files(base: Path) -> dict[str, list[Path]]:
    daily = [_trim(SAMPLE / "alphavantage" / f"DA-{s}-T-2021-04-21.csv.gz", base / f"DA-{s}-T-2021-04-21.csv",
                   newest=DAILY_ROWS) for s in ("AAPL", "F")]
    # one UTC day of 1-minute bars, with a 10-minute hole: rollups and a gap
    minute = _trim(SAMPLE / "binance_klines" / "FILUSDT-1m-2023-04.csv.gz", base / "FILUSDT-1m-2023-04.csv",
                   oldest=1440)
    lines = minute.read_text().splitlines()
    minute.write_text("\n".join(lines[:601] + lines[611:]) + "\n")
    return {"alphavantage": daily, "binance-klines": [minute]}


def _load_and_build(target, files) -> object:
    sink = open_sink(target)
    try:
        for fmt, paths in files.items():
            assert {r.status for r in load_files(sink, paths, fmt)} == {"success"}
    finally:
        if target.type != "spark":
            sink.close()
    seeded = run_dbt(["seed", "--select", SEEDS], target=target, quiet=True)
    assert seeded.success, f"dbt seed failed on {target.type}"
    return sink, run_dbt(["run", "--select", MODELS], target=target, quiet=True)


def _failures(result) -> list[str]:
    return [f"{r.node.name}: {str(r.message or '').strip().splitlines()[:3]}"
            for r in (getattr(result.result, "results", None) or []) if str(r.status) in ("error", "fail")]


def test_market_models_build_on_spark_as_on_duckdb(tmp_path, monkeypatch):
    files = _files(tmp_path)

    monkeypatch.setenv("MWH_TARGET", "duckdb")
    monkeypatch.setenv("MWH_DUCKDB_PATH", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target-duckdb"))
    _, built = _load_and_build(load_target(), files)
    assert built.success, _failures(built)
    with open_sink(load_target(), tables=()) as duck:  # as dbt-duckdb's in-process connection is configured
        expected = {name: [tuple(r) for r in duck.query(sql)] for name, sql in CHECKS.items()}

    monkeypatch.setenv("MWH_TARGET", "spark")
    monkeypatch.setenv("MWH_SPARK_DIR", str(tmp_path / "spark"))
    monkeypatch.setenv("MWH_SPARK_DRIVER_MEMORY", "1g")
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target-spark"))
    try:
        sink, built = _load_and_build(load_target(), files)
        # every model of the selection
        assert built.success, _failures(built)
        statuses = {str(r.status) for r in built.result.results}
        assert statuses == {"success"}, statuses
        assert len(built.result.results) == len(MODELS.split()) + 1  # fct_features_daily: v1 and v2
        got = {name: [tuple(r) for r in sink.query(sql)] for name, sql in CHECKS.items()}
    finally:
        stop_spark()

    assert expected["staged bars"] == [("1d", 2 * DAILY_ROWS), ("1m", 1430)]
    assert expected["gaps"] and expected["gaps"][0][2] > 0  # the 10-minute hole is a gap
    for name in CHECKS:
        assert _normalised(got[name]) == _normalised(expected[name]), name


def _normalised(rows):
    """Numbers as floats (DuckDB's HUGEINT/Decimal vs Spark's long/Decimal), rounded to 6 significant digits."""
    def norm(v):
        if isinstance(v, (int, float)) or hasattr(v, "as_tuple"):
            f = float(v)
            return float(f"{f:.6g}")
        return v
    return [tuple(norm(v) for v in row) for row in rows]
