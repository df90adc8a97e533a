"""The ML marts built by dbt on real bars (AAPL and MSFT daily, data/sample), with predictions and signals
whose outcomes are known by hand (tests/python/ml/ml_scenario.py has the bars and the arithmetic)."""

from __future__ import annotations

import itertools
import math
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from market_warehouse.cli import main as mwh
from market_warehouse.dbt import run_dbt
from market_warehouse.ml import queue, registry
from market_warehouse.ml.db import open_ml_sink

import ml_scenario as scenario

# The current window of the scenario holds 21 daily bars (30 calendar days); judge PSI on 15.
DBT_VARS = "{ml_psi_min_values: 15}"
# Our models and snapshot, the staging model of bars they read, and only our tests.
SELECT = ["--select", "+tag:ml", "--exclude", "tag:market,resource_type:test",
          "--indirect-selection", "cautious", "--vars", DBT_VARS]


def _build(target) -> None:
    res = run_dbt(["build", *SELECT], target, quiet=True)
    failed = [f"{r.node.name}: {r.status} {r.message}" for r in (res.result or [])
              if str(r.status) not in ("success", "pass")]
    assert res.success, failed or res.exception


def _run_analyses(target, sink) -> tuple[list[tuple], list[tuple]]:
    """Compile analyses/ml and run them: the starter queries must work on every target."""
    res = run_dbt(["compile", "--select", "model_leaderboard", "drift_report", "--vars", DBT_VARS],
                  target, quiet=True)
    assert res.success, res.exception
    compiled = Path(os.environ["DBT_TARGET_PATH"]) / "compiled" / "market_warehouse" / "analyses" / "ml"
    return tuple(sink.query((compiled / f"{name}.sql").read_text())
                 for name in ("model_leaderboard", "drift_report"))


def _check_hand_outcomes(sink) -> None:
    rows = sink.query(
        "select cast(signal_ts as date), outcome, exit_price, cast(exit_ts as date), bars_held, pnl, is_ambiguous "
        "from marts.fct_signal_outcomes where strategy = 'hand' order by signal_ts")
    got = {str(r[0]): r[1:] for r in rows}
    d = pd.Timestamp
    expected = {
        # BUY target hit on 2021-03-15 (high 124.00 >= 123.5), 4 bars after 03-09.
        "2021-03-09": ("target", 123.5, d("2021-03-15").date(), 4, 123.5 - 121.085, False),
        # SELL stopped out on 2021-03-15 (high 124.00 >= stop 123.5).
        "2021-03-12": ("stop", 123.5, d("2021-03-15").date(), 1, 121.03 - 123.5, False),
        # Target and stop in the same bar (03-04: low 118.62, high 123.60, open 121.75): stop wins.
        "2021-03-03": ("stop", 119.0, d("2021-03-04").date(), 1, 119.0 - 122.06, True),
        # Gap through the target: filled at the 03-16 open 125.70.
        "2021-03-15": ("target", 125.7, d("2021-03-16").date(), 1, 125.7 - 123.99, False),
        # Expired after 3 bars at the 03-04 close.
        "2021-03-01": ("expired", 120.13, d("2021-03-04").date(), 3, 120.13 - 127.79, False),
        "2021-04-20": ("open", None, None, None, None, False),
        "2021-04-21": ("open", None, None, None, None, False),
        "2021-03-02": ("no_trade", None, None, None, None, False),
        # Supplied exit wins over the bars.
        "2021-03-10": ("supplied", 126.0, None, None, 6.0, False),
    }
    assert got.keys() == expected.keys()
    for day, exp in expected.items():
        outcome, price, exit_day, held, pnl, ambiguous = got[day]
        assert (outcome, exit_day, held, bool(ambiguous)) == (exp[0], exp[2], exp[3], exp[5]), day
        for a, b in ((price, exp[1]), (pnl, exp[4])):
            assert (a is None and b is None) or math.isclose(a, b, abs_tol=1e-9), (day, a, b)

    perf = sink.query("select n_signals, n_trades, n_wins, total_pnl, worst_trade_return, max_drawdown "
                      "from marts.fct_signal_performance where strategy = 'hand' and symbol = 'ALL'")[0]
    assert perf[:3] == (9, 6, 3)
    assert math.isclose(perf[3], 2.415 - 2.47 - 3.06 + 1.71 - 7.66 + 6.0, abs_tol=1e-9)
    assert math.isclose(perf[4], -7.66 / 127.79, abs_tol=1e-12)
    assert perf[5] > 0

    # Prediction on 03-09 (close 121.085), horizon 2 -> 03-11 close 121.96: up; it said down at 0.7.
    p = sink.query("select realized_class, realized_return, is_correct, brier_score, log_loss "
                   "from marts.fct_prediction_outcomes where model_id = 'aapl_direction@1' "
                   "and bar_ts = '2021-03-09' and horizon_bars = 2")[0]
    assert p[0] == "up" and math.isclose(p[1], 121.96 / 121.085 - 1, abs_tol=1e-12) and p[2] is False
    assert math.isclose(p[3], 0.49, abs_tol=1e-12) and math.isclose(p[4], -math.log(0.3), abs_tol=1e-12)
    # Regression on 03-10 (119.98) predicted +1%; 03-11 closed at 121.96.
    err = sink.query("select prediction_error from marts.fct_prediction_outcomes "
                     "where model_id = 'aapl_return@1' and bar_ts = '2021-03-10'")[0][0]
    assert math.isclose(err, 0.01 - (121.96 / 119.98 - 1), abs_tol=1e-12)
    # The newest bar has no next bar yet: unresolved.
    assert sink.query("select count(*) from marts.fct_prediction_outcomes "
                      "where bar_ts = '2021-04-21' and not is_resolved") == [(2,)]

    # 03-09: "up" (h1, fell) and "down" (h2, rose) -- both wrong; 03-10: "up", rose -- right.
    day = sink.query("select prediction_date, n_resolved, accuracy, precision_up, recall_up, precision_down, "
                     "recall_down from marts.fct_model_performance_daily where model_id = 'aapl_direction@1' "
                     "and prediction_date in ('2021-03-09', '2021-03-10') order by prediction_date")
    assert [r[1:] for r in day] == [(2, 0.0, 0.0, 0.0, 0.0, 0.0), (1, 1.0, 1.0, 1.0, None, None)]

    # Two regression predictions, both directions right: the rolling IC (from summed moments) is 1.
    ic = sink.query("select rolling_information_coefficient from marts.fct_model_performance_daily "
                    "where model_id = 'aapl_return@1' and prediction_date = '2021-03-11'")[0][0]
    assert math.isclose(ic, 1.0, abs_tol=1e-9)
    assert math.isclose(sink.query("select information_coefficient from marts.fct_model_performance "
                                   "where model_id = 'aapl_return@1'")[0][0], 1.0, abs_tol=1e-9)

    psi = sink.query("select reference_n, current_n, psi from marts.fct_feature_drift "
                     "where model_id = 'aapl_direction@1' and feature_name = 'close'")[0]
    ref, cur, expected_psi = _psi_of_aapl_close()
    assert (psi[0], psi[1]) == (len(ref), len(cur))
    assert math.isclose(psi[2], expected_psi, rel_tol=1e-9)

    alerts = sink.query("select model_id, alert_type, alert_subject from marts.fct_model_drift_alerts "
                        "order by model_id, alert_type")
    assert alerts == [("aapl_direction@1", "feature", "close"), ("aapl_direction@1", "performance", "accuracy")]
    stable = sink.query("select drift_level from marts.fct_feature_drift where feature_name = 'day_of_week'")
    assert {r[0] for r in stable} == {"stable"}
    cand = sink.query("select model_name, priority, reason from marts.fct_model_retrain_candidates")
    assert [(m, p) for m, p, _ in cand] == [("aapl_direction", 1)]
    assert "rolling 30d accuracy 0.7 below baseline 0.9" in cand[0][2]

    runs = sink.query("select training_run_id, duration_seconds, data_span_days, n_versions_registered "
                      "from marts.fct_training_runs order by training_run_id")
    assert runs == [("run-aapl-1", 600.0, 180.0, 1), ("run-msft-1", 300.0, 180.0, 1)]

    episodes = sink.query("select episode, reward_moving_avg from marts.fct_agent_episodes "
                          "where episode in (1, 12) order by episode")
    # Rewards 1..12, window 10: episode 12 averages 3..12.
    assert episodes == [(1, 1.0), (12, 7.5)]
    mix = sink.query("select action, action_share from marts.fct_agent_action_mix_daily "
                     "where decision_date = '2021-03-02' order by action")
    assert mix == [("BUY", 0.25), ("HOLD", 0.5), ("SELL", 0.25)]


def _psi_of_aapl_close(bins: int = 10) -> tuple[list[float], list[float], float]:
    """PSI of the raw AAPL close between the training run's window (2020-01-01 .. 2020-06-29) and the
    30 days before the last bar (2021-04-21), computed here independently of the SQL."""
    bars = scenario.daily_bars(scenario.AAPL).set_index("ts")["close"]
    ref = sorted(bars[(bars.index >= "2020-01-01") & (bars.index <= "2020-06-29")].tolist())
    last = bars.index.max()
    cur = bars[(bars.index > last - pd.Timedelta(days=30)) & (bars.index <= last)].tolist()
    # ntile(bins): the first len % bins groups hold one more; a group's upper edge is its largest value.
    sizes = [len(ref) // bins + (1 if i < len(ref) % bins else 0) for i in range(bins)]
    ends = [sum(sizes[: i + 1]) - 1 for i in range(bins)]
    edges = sorted({ref[e] for e in ends})
    bounds = [-math.inf, *edges[:-1], math.inf]

    def shares(values: list[float]) -> list[float]:
        counts = [sum(1 for v in values if lo < v <= hi) for lo, hi in itertools.pairwise(bounds)]
        return [max(c / len(values), 0.0001) for c in counts]

    return ref, cur, sum((c - r) * math.log(c / r) for r, c in zip(shares(ref), shares(cur)))


@pytest.mark.parametrize("target_name", ["duckdb", "timescale", "postgres"])
def test_marts_on_real_bars_every_target(target_name, request, tmp_path):
    target = request.getfixturevalue(f"{target_name}_target")
    with open_ml_sink(target) as sink:
        scenario.build_all(sink, tmp_path)
    _build(target)
    with open_ml_sink(target) as sink:
        _check_hand_outcomes(sink)
        leaderboard, report = _run_analyses(target, sink)
    # Always-up classifiers: MSFT's (log loss 0.689) ranks above AAPL's (0.703), which drifts.
    assert [(r[0], r[1], r[2]) for r in leaderboard] == [
        ("classification", 1, "msft_direction@1"), ("classification", 2, "aapl_direction@1")]
    assert leaderboard[1][-1] == "feature:close, performance:accuracy"
    drifting = {r[0]: (r[6], r[9]) for r in report}
    assert drifting["aapl_direction"] == (True, 1) and drifting["msft_direction"] == (False, None)


def test_registry_history_retrain_queue_and_rebuild(duckdb_target, tmp_path, capsys):
    with open_ml_sink(duckdb_target) as sink:
        scenario.build_all(sink, tmp_path)
    _build(duckdb_target)

    # Enqueue the drift candidates through the CLI: once, and not again while pending.
    assert mwh(["retrain", "enqueue"]) == 0
    assert mwh(["retrain", "enqueue"]) == 0
    out = capsys.readouterr().out
    assert "enqueued aapl_direction" in out and "skipped  aapl_direction: a request is already pending" in out
    with open_ml_sink(duckdb_target) as sink:
        assert sink.query("select model_name, priority, status, requested_by from raw.ml_retrain_queue") == [
            ("aapl_direction", 1, "pending", "drift")]
        claim = queue.claim(sink, "trainer-1")
        assert claim.model_name == "aapl_direction" and "PSI" in claim.reason

        # Retrain: v2 registered and activated; msft's metrics revised. The snapshot keeps both states.
        before_switch = pd.Timestamp.now(tz="UTC")
        time.sleep(0.05)
        registry.register_model(sink, "aapl_direction", "2", "logistic", "classification",
                                "2021-04-21T00:00:00Z", metrics={"accuracy": 0.55, "accuracy_std": 0.03},
                                feature_columns=["day_of_week"])
        switched = registry.activate(sink, "aapl_direction", "2")
        registry.update_metrics(sink, "msft_direction@1", {"accuracy": 0.52})
        queue.complete(sink, claim.request_id, "trainer-1")
    _build(duckdb_target)

    with open_ml_sink(duckdb_target) as sink:
        hist = sink.query("select model_id, is_active, baseline_accuracy, valid_from, valid_to "
                          "from marts.dim_model_versions order by model_id, valid_from")
        by_model: dict[str, list] = {}
        for mid, active, acc, _valid_from, vt in hist:
            by_model.setdefault(mid, []).append((active, acc, vt is None))
        assert by_model["aapl_direction@1"] == [(True, 0.9, False), (False, 0.9, True)]
        # v2 registered inactive, then activated: the registry calls captured both states.
        assert by_model["aapl_direction@2"] == [(False, 0.55, False), (True, 0.55, True)]
        assert by_model["msft_direction@1"] == [(True, 0.5, False), (True, 0.52, True)]

        def active_at(t: pd.Timestamp) -> list[tuple]:
            return sink.query("select model_id from marts.dim_model_versions where model_name = 'aapl_direction' "
                              "and is_active and valid_from <= ? and (valid_to is null or ? < valid_to)",
                              [t.to_pydatetime(), t.to_pydatetime()])

        assert active_at(before_switch) == [("aapl_direction@1",)]
        assert active_at(pd.Timestamp.now(tz="UTC")) == [(switched.model_id,)]
        # v2 is active and has no predictions yet: no candidate any more; the old request is completed.
        assert sink.query("select count(*) from marts.fct_model_retrain_candidates") == [(0,)]
        assert sink.query("select status from raw.ml_retrain_queue") == [("completed",)]
        req = sink.query("select effective_status, attempts, wait_seconds >= 0, processing_seconds > 0 "
                         "from marts.fct_retrain_requests")
        assert req == [("completed", 1, True, True)]


def test_ml_models_build_on_a_warehouse_without_ml_records(duckdb_target):
    """`mwh demo` / `mwh build` on market data only: the raw ML tables do not exist; the ML models
    build empty instead of failing (staging reads mwh_ml_source's empty relation)."""
    from market_warehouse.loaders.sinks import open_sink

    with open_sink(duckdb_target) as sink:
        scenario.load_bars(sink, paths=(scenario.AAPL,))
        assert not sink.query("select table_name from information_schema.tables where table_name like 'ml_%'")
    _build(duckdb_target)
    with open_sink(duckdb_target) as sink:
        assert sink.query("select count(*) from marts.fct_prediction_outcomes") == [(0,)]
        assert sink.query("select count(*) from marts.dim_model_versions") == [(0,)]


def _outcomes(sink) -> list[tuple]:
    cols = ("model_id, symbol, bar_ts, horizon_bars, probability, entry_close, outcome_bar_ts, outcome_close, "
            "is_resolved, realized_return, is_correct, brier_score, log_loss, prediction_error, prediction_loaded_at")
    return sink.query(f"select {cols} from marts.fct_prediction_outcomes order by model_id, bar_ts, horizon_bars")


@pytest.mark.parametrize("target_name", ["duckdb", "timescale"])
def test_prediction_outcomes_incremental_equals_full_refresh(target_name, request, tmp_path):
    """Two incremental runs (late predictions, a re-scored old one, new bars resolving open ones)
    give exactly what a full refresh gives."""
    target = request.getfixturevalue(f"{target_name}_target")

    # AAPL without its last two bars (04-20, 04-21), under the vendor's file name.
    early = tmp_path / "early" / scenario.AAPL.name
    early.parent.mkdir()
    full = pd.read_csv(scenario.AAPL)
    full[full["timestamp"] < "2021-04-20"].to_csv(early, index=False, compression="gzip")
    rows = [r for r in scenario.prediction_rows() if r["symbol"] == "AAPL"]
    first = [r for r in rows if r["bar_ts"] < "2021-04-01"]
    later = [r for r in rows if r["bar_ts"] >= "2021-04-01"]
    # A long-horizon prediction older than the late window whose outcome bar is 04-20: unresolved after
    # the first run, it must be picked up (as unresolved) and resolved by the second.
    after = full[(full["timestamp"] > "2021-03-05") & (full["timestamp"] < "2021-04-20")]
    first.append({**first[-1], "bar_ts": "2021-03-05", "predicted_at": "2021-03-05T21:00:00Z",
                  "horizon_bars": len(after) + 1})
    select = ["--select", "+fct_prediction_outcomes", "--exclude", "tag:market,resource_type:test"]
    with open_ml_sink(target) as sink:
        scenario.load_bars(sink, paths=(early,))
        scenario.register_models(sink, tmp_path)
        api_report = scenario.write_records(sink, "predictions", first)
        assert api_report.quarantined == 0
    assert run_dbt(["build", *select], target, quiet=True).success
    with open_ml_sink(target) as sink:
        # 04-19 is the newest bar: its prediction is unresolved for now.
        assert sink.query("select cast(bar_ts as date), horizon_bars > 1 from marts.fct_prediction_outcomes "
                          "where not is_resolved") == [(pd.Timestamp("2021-03-05").date(), True)]
        rescored = dict(first[20], probability=0.95)  # a 2020 prediction, re-scored: outside the window
        scenario.write_records(sink, "predictions", [*later, rescored])
        scenario.load_bars(sink, paths=(scenario.AAPL,))  # 04-20 and 04-21 arrive
    assert run_dbt(["build", *select], target, quiet=True).success
    with open_ml_sink(target) as sink:
        incremental = _outcomes(sink)
        assert sink.query("select probability, is_resolved from marts.fct_prediction_outcomes "
                          f"where model_id = 'aapl_direction@1' and bar_ts = '{rescored['bar_ts']}'") == [(0.95, True)]
        assert sink.query("select is_resolved from marts.fct_prediction_outcomes where model_id = "
                          "'aapl_direction@1' and bar_ts = '2021-04-19' and horizon_bars = 1") == [(True,)]
        long_one = sink.query("select outcome_bar_ts from marts.fct_prediction_outcomes "
                              "where bar_ts = '2021-03-05' and horizon_bars > 1")
        assert long_one == [(pd.Timestamp("2021-04-20", tz="UTC").to_pydatetime(),)]
    assert run_dbt(["build", *select, "--full-refresh"], target, quiet=True).success
    with open_ml_sink(target) as sink:
        assert _outcomes(sink) == incremental
        assert len(incremental) == len(rows) + 1  # every AAPL prediction once, and the long one
