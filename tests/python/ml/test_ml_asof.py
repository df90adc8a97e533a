"""ML records on real timestamps (issue 7 item 5), on DuckDB, TimescaleDB and PostgreSQL:

- a signal or prediction is matched as of its time (the bar in progress at it, a daily bar covering its
  UTC session date, else the next bar): stamped at the close in local time, at 00:00 UTC, or in the
  middle of the session, it gets the outcome of its session's bar; stamped on a weekend, the next one;
- one that matches no bar is listed in marts.fct_ml_unmatched_records with its reason, and `mwh build`
  prints the count;
- a 4:1 split inside a signal's holding window (or a prediction's horizon) changes nothing: the same
  MSFT bars with a synthetic split give exactly the outcomes of the bars without it;
- every registry change reaches the history: v1 activated, v2 activated with no build in between,
  then a build: dim_model_versions shows v1's active period and v2's.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from pathlib import Path

import pandas as pd
import pytest

from market_warehouse.cli import main as mwh
from market_warehouse.ml import registry
from market_warehouse.ml.db import open_ml_sink
from market_warehouse.ml.records import load_record_files, write_records

import ml_scenario as scenario

# Plain PostgreSQL runs the same postgres__ SQL as TimescaleDB here (the ML marts have no continuous
# aggregate); its ML path is built and checked by test_ml_models.py::test_marts_on_real_bars_every_target.
TARGETS = ["duckdb", "timescale"]
EX_DATE = "2021-03-15"  # the synthetic 4:1 split of SPLT
SELECT = ["--select", "+fct_signal_outcomes", "+fct_prediction_outcomes", "+fct_ml_unmatched_records",
          "--exclude", "tag:market,resource_type:test"]


def _split_files(tmp: Path) -> list[Path]:
    """MSFT's 2021 bars as NOSP (as they are) and SPLT (a 4:1 split on EX_DATE: prices from then on / 4,
    exact in binary floating point, split_coefficient 4 on the ex-date)."""
    df = pd.read_csv(scenario.MSFT)
    df = df[df["timestamp"] >= "2021-01-01"].reset_index(drop=True)
    out = []
    for sym in ("NOSP", "SPLT"):
        d = df.copy()
        if sym == "SPLT":
            after = d["timestamp"] >= EX_DATE
            for col in ("open", "high", "low", "close", "adjusted_close"):
                d.loc[after, col] = d.loc[after, col] / 4
            d.loc[after, "volume"] = d.loc[after, "volume"] * 4
            d.loc[d["timestamp"] == EX_DATE, "split_coefficient"] = 4.0
        path = tmp / f"DA-{sym}-T-2021-04-21.csv.gz"
        with gzip.open(path, "wt") as f:
            d.to_csv(f, index=False)
        out.append(path)
    return out


def _split_signals() -> list[dict]:
    """BUY and SELL signals on MSFT closes before the ex-date, levels +/- 1.5% and 3%, 8-bar windows that
    span the split (signal at the close in New York time)."""
    bars = pd.read_csv(scenario.MSFT).set_index("timestamp")["close"]
    rows = []
    for day in ("2021-03-05", "2021-03-08", "2021-03-09", "2021-03-10", "2021-03-11", "2021-03-12"):
        close = float(bars[day])
        for kind, width in (("BUY", 0.015), ("SELL", 0.015), ("BUY", 0.03), ("SELL", 0.03), ("BUY", 0.5)):
            sign = 1 if kind == "BUY" else -1
            rows.append({"strategy": f"{kind.lower()}_{width}", "signal_ts": f"{day}T16:00:00-05:00",
                         "signal_type": kind, "entry_price": close,
                         "target_price": round(close * (1 + sign * width), 2),
                         "stop_price": round(close * (1 - sign * width), 2), "max_holding_bars": 8})
    return rows


def _asof_signals() -> list[dict]:
    """The hand signals (ml_scenario) stamped as real clocks would: the close in local time, a time in
    the session, 00:00 UTC; the hand outcomes must not move. Plus a weekend one and unmatched ones."""
    rows = []
    stamps = {
        "buy_target": "2021-03-09T16:00:00-05:00",     # the close in New York (21:00 UTC)
        "sell_stopped": "2021-03-12T10:30:00-05:00",   # during the session
        "same_bar": "2021-03-03T23:59:59+00:00",       # the last second of the UTC date
        "gap_target": "2021-03-15T16:00:00-04:00",     # after the DST switch (20:00 UTC)
        "expired": "2021-03-01T00:00:00+00:00",        # the bar's own label
    }
    for name, ts in stamps.items():
        rows.append({**scenario.HAND_SIGNALS[name], "strategy": "asof", "symbol": "AAPL", "signal_ts": ts})
    # Saturday 2021-03-06: the next bar is Monday 03-08's; its window starts on 03-09.
    rows.append({"strategy": "asof", "symbol": "AAPL", "signal_ts": "2021-03-06T12:00:00+00:00",
                 "signal_type": "BUY", "entry_price": 116.36, "target_price": 200.0, "stop_price": 50.0,
                 "max_holding_bars": 1})
    unmatched = [
        {"strategy": "unmatched", "symbol": "AAPL", "signal_ts": "2021-04-22T16:00:00-04:00"},  # after the last bar
        {"strategy": "unmatched", "symbol": "NOSUCH", "signal_ts": "2021-03-09T16:00:00-05:00"},
        {"strategy": "unmatched", "symbol": "AAPL", "bar_interval": "1h", "signal_ts": "2021-03-09T16:00:00-05:00"},
    ]
    for r in unmatched:
        rows.append({"signal_type": "BUY", "entry_price": 100.0, "target_price": 110.0, "stop_price": 90.0, **r})
    return rows


def _outcomes(sink, strategy_like: str) -> dict:
    rows = sink.query(
        "select strategy, symbol, cast(signal_bar_ts as date), outcome, exit_price, exit_ts, bars_held, pnl, "
        "is_ambiguous from marts.fct_signal_outcomes where strategy like ? order by strategy, symbol, signal_ts",
        [strategy_like])
    return {(r[0], r[1], i): r[2:] for i, r in enumerate(rows)}


@pytest.mark.parametrize("target_name", TARGETS)
def test_records_matched_as_of_their_time_and_across_splits(target_name, request, tmp_path, capsys):
    target = request.getfixturevalue(f"{target_name}_target")
    with open_ml_sink(target) as sink:
        scenario.load_bars(sink, paths=(scenario.AAPL, *_split_files(tmp_path)))
        scenario.register_models(sink, tmp_path)
        signals = _asof_signals()
        for sym in ("NOSP", "SPLT"):
            signals += [{**r, "symbol": sym} for r in _split_signals()]
        assert write_records(sink, "signals", signals, strict=True).loaded == len(signals)
        # Predictions: the close in local time, and a 3-bar horizon over the split on both symbols.
        preds = [
            {"model_id": "aapl_direction@1", "symbol": "AAPL", "bar_ts": "2021-03-09T16:00:00-05:00",
             "horizon_bars": 2, "predicted_at": "2021-03-09T21:00:00Z", "predicted_class": "down",
             "probability": 0.7},
            {"model_id": "aapl_direction@1", "symbol": "AAPL", "bar_ts": "2021-04-23T16:00:00-04:00",
             "predicted_at": "2021-04-21T21:00:00Z", "predicted_class": "up", "probability": 0.6},
        ]
        for sym in ("NOSP", "SPLT"):
            preds.append({"model_id": "msft_direction@1", "symbol": sym, "bar_ts": "2021-03-11T16:00:00-05:00",
                          "horizon_bars": 3, "predicted_at": "2021-03-11T21:00:00Z", "predicted_class": "up",
                          "probability": 0.6})
        assert write_records(sink, "predictions", preds, now=pd.Timestamp("2021-04-23T22:00:00Z"),
                             strict=True).loaded == len(preds)

    assert mwh(["build", *SELECT]) == 0
    out = capsys.readouterr().out
    assert "warning: 4 ML record(s) not matched to a bar" in out, out

    with open_ml_sink(target) as sink:
        # 1. As of their time: the hand outcomes of tests/python/ml/test_ml_models.py, whatever the clock.
        got = {r[0]: r[1:] for r in sink.query(
            "select cast(signal_bar_ts as date), outcome, exit_price, cast(exit_ts as date), bars_held, "
            "is_ambiguous from marts.fct_signal_outcomes where strategy = 'asof' order by signal_ts")}
        d = pd.Timestamp
        assert got == {
            d("2021-03-01").date(): ("expired", 120.13, d("2021-03-04").date(), 3, False),
            d("2021-03-03").date(): ("stop", 119.0, d("2021-03-04").date(), 1, True),
            d("2021-03-08").date(): ("expired", 121.085, d("2021-03-09").date(), 1, False),  # the Saturday one
            d("2021-03-09").date(): ("target", 123.5, d("2021-03-15").date(), 4, False),
            d("2021-03-12").date(): ("stop", 123.5, d("2021-03-15").date(), 1, False),
            d("2021-03-15").date(): ("target", 125.7, d("2021-03-16").date(), 1, False),
        }
        p = sink.query("select realized_return, entry_close from marts.fct_prediction_outcomes "
                       "where model_id = 'aapl_direction@1' and horizon_bars = 2")[0]
        assert math.isclose(p[0], 121.96 / 121.085 - 1, abs_tol=1e-12) and p[1] == 121.085

        # 2. Unmatched records, with the reason.
        unmatched = sink.query("select record_type, symbol, reason from marts.fct_ml_unmatched_records "
                               "order by record_type, symbol, reason")
        assert unmatched == [
            ("prediction", "AAPL", "no bar at or after 2021-04-23T20:00:00Z (the series ends at 2021-04-21T00:00:00Z)"),
            ("signal", "AAPL", "no 1h bars for AAPL on US"),
            ("signal", "AAPL", "no bar at or after 2021-04-22T20:00:00Z (the series ends at 2021-04-21T00:00:00Z)"),
            ("signal", "NOSUCH", "unknown symbol NOSUCH on US: no bars loaded"),
        ]
        assert {r[0] for r in sink.query("select outcome from marts.fct_signal_outcomes "
                                         "where strategy = 'unmatched'")} == {"no_bars"}

        # 3. A 4:1 split inside the window changes nothing.
        plain = sink.query(
            "select strategy, signal_ts, outcome, exit_price, exit_ts, bars_held, pnl, is_ambiguous "
            "from marts.fct_signal_outcomes where symbol = 'NOSP' order by strategy, signal_ts")
        split = sink.query(
            "select strategy, signal_ts, outcome, exit_price, exit_ts, bars_held, pnl, is_ambiguous "
            "from marts.fct_signal_outcomes where symbol = 'SPLT' order by strategy, signal_ts")
        assert split == plain
        # ... and the scenario is not trivial: windows cross the ex-date and reach every kind of exit.
        assert {r[2] for r in plain} == {"target", "stop", "expired"}
        assert any(r[4] is not None and pd.Timestamp(r[4]) >= pd.Timestamp(EX_DATE, tz="UTC") for r in plain)
        returns = sink.query("select symbol, realized_return, outcome_close from marts.fct_prediction_outcomes "
                             "where model_id = 'msft_direction@1' order by symbol")
        assert returns[0][1] == returns[1][1] and returns[0][2] == 4 * returns[1][2]


@pytest.mark.parametrize("target_name", TARGETS)
def test_every_registry_change_reaches_the_history(target_name, request, tmp_path):
    target = request.getfixturevalue(f"{target_name}_target")
    with open_ml_sink(target) as sink:
        registry.register_model(sink, "m", "1", "logistic", "classification", "2021-01-01T00:00:00Z",
                                metrics={"accuracy": 0.6}, activate=True)
        v1_on = pd.Timestamp.now(tz="UTC")
        time.sleep(0.05)
        registry.register_model(sink, "m", "2", "logistic", "classification", "2021-02-01T00:00:00Z",
                                metrics={"accuracy": 0.7})
        registry.activate(sink, "m", "2")  # no build in between
        v2_on = pd.Timestamp.now(tz="UTC")
        # `mwh ml load models` files too: two files changing model n@1, no build in between.
        for i, active in enumerate([False, True]):
            f = tmp_path / f"models_{i}.jsonl"
            f.write_text(json.dumps({"model_name": "n", "model_version": "1", "model_type": "ridge",
                                     "task": "regression", "training_date": "2021-01-01T00:00:00Z",
                                     "is_active": active}))
            time.sleep(0.05)
            [report] = load_record_files(sink, "models", [f])
            assert report.loaded + report.replaced == 1, report
    assert mwh(["build", "--select", "+dim_model_versions"]) == 0
    with open_ml_sink(target) as sink:
        hist = sink.query("select model_id, is_active, valid_from, valid_to from marts.dim_model_versions "
                          "order by model_id, valid_from")
        active = [(m, pd.Timestamp(f), None if t is None else pd.Timestamp(t)) for m, a, f, t in hist
                  if a and m.startswith("m@")]
        assert [m for m, _, _ in active] == ["m@1", "m@2"]
        (_, v1_from, v1_to), (_, v2_from, v2_to) = active
        assert v1_from < v1_on and v1_to is not None and v1_to == v2_from and v2_from <= v2_on and v2_to is None

        def active_at(t: pd.Timestamp) -> list[tuple]:
            return sink.query("select model_id from marts.dim_model_versions where model_name = 'm' "
                              "and is_active and valid_from <= ? and (valid_to is null or ? < valid_to)",
                              [t.to_pydatetime(), t.to_pydatetime()])

        assert active_at(v1_on) == [("m@1",)]
        assert active_at(v2_on) == [("m@2",)]
        states = sink.query("select is_active from marts.dim_model_versions where model_id = 'n@1' "
                            "order by valid_from")
        assert states == [(False,), (True,)]
