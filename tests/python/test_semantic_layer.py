"""The semantic layer (models/semantic/, docs/semantic_layer.md) on DuckDB and PostgreSQL: every metric, queried
through MetricFlow (`mf query` once, as a user runs it, and the MetricFlow engine the CLI builds for the rest),
equals what the mart it comes from holds, computed here independently with pandas.

Data: the four symbols of the demo's ML sample (market_warehouse/ml/demo_sample.py) as daily bars, the market
marts built, the ML sample generated (a model, predictions, signals) and the ML marts built, so every metric has
rows (drift alerts included).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "models"))
from market_warehouse.ml import demo_sample

from market_fixtures import Warehouse, load_sample

REPO = Path(__file__).resolve().parents[2]
MF = Path(sys.executable).parent / "mf"
# Bars from here: features have a year of history before the ML sample's training window (2016-2019).
START = "2014-06-01"
# The market marts the ML sample trains on, the daily-returns view, the time spine.
MARKET = ["--select", "path:seeds", "+fct_training_set_daily", "+sem_market__daily_returns", "metricflow_time_spine",
          "--exclude-resource-type", "test", "unit_test"]
ML = ["--select", "source:ml+", "--exclude-resource-type", "test", "unit_test"]


def dbt(*args: str) -> None:
    """dbt in a subprocess: in-process, dbt-duckdb keeps the DuckDB file open (with the profile's settings)
    until the process ends, and the ML sample and `mf` must open it after the build."""
    res = subprocess.run([str(Path(sys.executable).parent / "dbt"), "--no-use-colors", *args, "--project-dir",
                          str(REPO)], capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, f"dbt {' '.join(args)} failed:\n{res.stdout[-4000:]}\n{res.stderr[-2000:]}"


def project_copy(tmp_path: Path) -> Path:
    """`mf` reads <project>/target/semantic_manifest.json: a project directory of links to the repository's
    folders with its own target/, so the test never touches the repository's target/."""
    proj = tmp_path / "project"
    proj.mkdir()
    for name in ("dbt_project.yml", "models", "macros", "seeds", "snapshots", "analyses", "tests", "docs", "data"):
        if (REPO / name).exists():
            (proj / name).symlink_to(REPO / name)
    return proj


def build(kind: str, target, tmp_path: Path) -> tuple[Warehouse, Path]:
    wh = Warehouse(kind)
    wh.create_raw()
    bars, actions = load_sample(symbols=list(demo_sample.SYMBOLS), start=START, crypto=False)
    wh.upsert(bars, actions)
    dbt("build", *MARKET)
    os.environ["MWH_ARTIFACT_STORE"] = str(tmp_path / "artifacts")
    try:
        demo_sample.generate(target)
    finally:
        os.environ.pop("MWH_ARTIFACT_STORE", None)
    dbt("build", *ML)
    proj = project_copy(tmp_path)
    # the semantic manifest names the relations of this target (database, schema), so parse against it
    dbt("parse", "--target-path", str(proj / "target"))
    return wh, proj


def mf_query_cli(proj: Path, out: Path, metrics: list[str], group_by: list[str]) -> pd.DataFrame:
    """`mf query ... --csv` run as a user runs it, in the project directory."""
    res = subprocess.run([str(MF), "query", "--metrics", ",".join(metrics), "--group-by", ",".join(group_by),
                          "--csv", str(out), "--quiet"], cwd=proj, capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, DBT_PROJECT_DIR=str(proj)))
    assert res.returncode == 0 and out.exists(), res.stdout[-3000:] + res.stderr[-3000:]
    return pd.read_csv(out)


class Engine:
    """The MetricFlow engine `mf` builds (dbt adapter, semantic manifest of the project), in-process."""

    def __init__(self, proj: Path):
        from dbt_metricflow.cli.cli_configuration import CLIConfiguration

        self.cfg = CLIConfiguration()
        self.cfg.setup(dbt_profiles_path=Path(os.environ["DBT_PROFILES_DIR"]), dbt_project_path=proj,
                       configure_file_logging=False)

    def query(self, metrics: list[str], group_by: list[str], where: list[str] | None = None) -> pd.DataFrame:
        from metricflow.engine.metricflow_engine import MetricFlowQueryRequest

        result = self.cfg.mf.query(MetricFlowQueryRequest.create(
            metric_names=metrics, group_by_names=group_by, where_constraints=where))
        table = result.result_df
        df = pd.DataFrame([list(r) for r in table.rows], columns=list(table.column_names))
        for m in metrics:
            df[m] = pd.to_numeric(df[m], errors="coerce").astype(float)
        return df


def close(a, b, what: str, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, f"{what}: {a.shape} vs {b.shape}"
    bad = ~np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    assert not bad.any(), f"{what}: {bad.sum()} of {len(a)} differ, e.g. {a[bad][:3]} vs {b[bad][:3]}"


def check_metrics(wh: Warehouse, proj: Path, tmp_path: Path) -> None:
    # the marts, read before MetricFlow's dbt adapter opens the database (DuckDB: one configuration a process)
    bars = wh.query("select symbol, exchange, session_date, adj_close from marts.fct_bars_1d")
    perf = wh.query("select strategy, model_key, symbol, n_trades, win_rate, profit_factor, max_drawdown "
                    "from marts.fct_signal_performance")
    outcomes = wh.query("select strategy, model_key, symbol, is_closed, realized_r_multiple "
                        "from marts.fct_signal_outcomes")
    mp = wh.query("select model_id, accuracy, brier_score, accuracy_vs_baseline, n_resolved "
                  "from marts.fct_model_performance")
    daily = wh.query("select model_id, symbol, prediction_date, accuracy, brier_score "
                     "from marts.fct_model_performance_daily where n_resolved > 0")
    alerts = wh.query("select model_id, alert_type from marts.fct_model_drift_alerts")

    # --- daily return and volatility per symbol (fct_bars_1d) -------------------------------------------
    bars["session_date"] = pd.to_datetime(bars["session_date"])
    bars = bars.sort_values(["symbol", "exchange", "session_date"])
    bars["r"] = bars.groupby(["symbol", "exchange"])["adj_close"].transform(lambda s: s.astype(float).pct_change())
    ref = bars.dropna(subset=["r"])
    assert ref["symbol"].nunique() == len(demo_sample.SYMBOLS) and len(ref) > 6_000

    # `mf query` as a user runs it: the CLI, CSV out
    got = mf_query_cli(proj, tmp_path / "daily_return.csv", ["daily_return"], ["daily_bar__symbol", "metric_time__day"])
    got["metric_time__day"] = pd.to_datetime(got["metric_time__day"])
    got = got.dropna(subset=["daily_return"])
    m = ref.merge(got, left_on=["symbol", "session_date"], right_on=["daily_bar__symbol", "metric_time__day"],
                  how="outer", indicator=True)
    assert (m["_merge"] == "both").all(), m[m["_merge"] != "both"].head()
    close(m["daily_return"], m["r"], "daily_return per symbol and day")

    eng = Engine(proj)  # after the CLI: on DuckDB the engine's adapter holds the file until the process ends

    got = eng.query(["volatility", "volatility_annualized", "daily_return_count", "daily_return"],
                    ["daily_bar__symbol", "metric_time__year"])
    got["year"] = pd.to_datetime(got["metric_time__year"]).dt.year
    ref_y = ref.assign(year=ref["session_date"].dt.year).groupby(["symbol", "year"])["r"].agg(["std", "count", "mean"])
    m = ref_y.reset_index().merge(got, left_on=["symbol", "year"], right_on=["daily_bar__symbol", "year"])
    assert len(m) == len(ref_y) >= 4 * 7
    close(m["daily_return_count"], m["count"], "daily_return_count per symbol and year")
    close(m["daily_return"], m["mean"], "daily_return (mean) per symbol and year", rtol=1e-8)
    close(m["volatility"], m["std"], "volatility per symbol and year", rtol=1e-7)
    close(m["volatility_annualized"], m["std"] * np.sqrt(252), "volatility_annualized", rtol=1e-7)

    # --- signals: win rate, profit factor, average R multiple, max drawdown (fct_signal_*) ---------------
    book = ["trading_book__strategy", "trading_book__model_key"]
    got = eng.query(["win_rate", "profit_factor", "avg_r_multiple", "closed_trades", "max_drawdown"], book)
    whole = perf[perf["symbol"] == "ALL"]
    assert len(whole) >= 1 and (whole["n_trades"] > 10).all() and whole["max_drawdown"].notna().all()
    m = whole.merge(got, left_on=["strategy", "model_key"], right_on=book)
    assert len(m) == len(whole) == len(got)
    close(m["closed_trades"], m["n_trades"], "closed_trades")
    close(m["win_rate_y"], m["win_rate_x"], "win_rate")
    close(m["profit_factor_y"], m["profit_factor_x"], "profit_factor", rtol=1e-9)
    close(m["max_drawdown_y"], m["max_drawdown_x"], "max_drawdown")
    closed = outcomes[outcomes["is_closed"].astype(bool)]
    r_ref = closed.groupby(["strategy", "model_key"])["realized_r_multiple"].mean().rename("r_ref").reset_index()
    m = m.merge(r_ref, on=["strategy", "model_key"])
    close(m["avg_r_multiple"], m["r_ref"], "avg_r_multiple", rtol=1e-9)

    got = eng.query(["win_rate", "profit_factor", "max_drawdown_per_symbol", "closed_trades"],
                    [*book, "trading_book__symbol"])
    per = perf[(perf["symbol"] != "ALL") & (perf["n_trades"] > 0)]
    m = per.merge(got, left_on=["strategy", "model_key", "symbol"], right_on=[*book, "trading_book__symbol"])
    assert len(m) == len(per) and len(per) >= 2
    close(m["win_rate_y"], m["win_rate_x"], "win_rate per symbol")
    close(m["profit_factor_y"], m["profit_factor_x"], "profit_factor per symbol")
    close(m["max_drawdown_per_symbol"], m["max_drawdown"], "max_drawdown per symbol")

    # --- model accuracy, Brier score, drift alerts per model version (fct_model_performance*, drift) ----
    assert len(alerts) >= 1, "the ML sample raises drift alerts"
    got = eng.query(["model_accuracy", "brier_score", "accuracy_vs_baseline"], ["model_version"])
    m = mp.merge(got, left_on="model_id", right_on="model_version")
    assert len(m) == len(mp) >= 1 and (m["n_resolved"] > 100).all()
    close(m["model_accuracy"], m["accuracy"], "model_accuracy")
    close(m["brier_score_y"], m["brier_score_x"], "brier_score", rtol=1e-9)
    close(m["accuracy_vs_baseline_y"], m["accuracy_vs_baseline_x"], "accuracy_vs_baseline", rtol=1e-9)

    daily["prediction_date"] = pd.to_datetime(daily["prediction_date"])
    got = eng.query(["model_accuracy", "brier_score"], ["model_version", "prediction__symbol", "metric_time__day"])
    got["metric_time__day"] = pd.to_datetime(got["metric_time__day"])
    got = got.dropna(subset=["model_accuracy"])
    m = daily.merge(got, left_on=["model_id", "symbol", "prediction_date"],
                    right_on=["model_version", "prediction__symbol", "metric_time__day"], how="outer", indicator=True)
    assert (m["_merge"] == "both").all() and len(m) > 500, m[m["_merge"] != "both"].head()
    close(m["model_accuracy"], m["accuracy"], "model_accuracy per version, symbol and day")
    close(m["brier_score_y"], m["brier_score_x"], "brier_score per version, symbol and day")

    got = eng.query(["drift_alerts", "feature_drift_alerts", "performance_drift_alerts"],
                    ["model_version", "drift_alert__alert_type"])
    ref_a = alerts.groupby(["model_id", "alert_type"]).size().rename("n").reset_index()
    m = ref_a.merge(got, left_on=["model_id", "alert_type"], right_on=["model_version", "drift_alert__alert_type"])
    assert len(m) == len(ref_a) == len(got)
    close(m["drift_alerts"], m["n"], "drift_alerts per model version and type")
    close(m["feature_drift_alerts"], np.where(m["alert_type"] == "feature", m["n"], 0), "feature_drift_alerts")
    close(m["performance_drift_alerts"], np.where(m["alert_type"] == "performance", m["n"], 0),
          "performance_drift_alerts")


def test_metrics_match_marts_duckdb(duckdb_target, tmp_path):
    wh, proj = build("duckdb", duckdb_target, tmp_path)
    check_metrics(wh, proj, tmp_path)


@pytest.mark.postgres
def test_metrics_match_marts_postgres(postgres_target, tmp_path):
    wh, proj = build("postgres", postgres_target, tmp_path)
    check_metrics(wh, proj, tmp_path)
