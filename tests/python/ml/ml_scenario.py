"""A small ML lifecycle built on real AAPL and MSFT daily bars (data/sample/alphavantage), whose outcomes
are known by hand. Used by the tests (and handy for a dev warehouse: `python tests/python/ml/ml_scenario.py`).

AAPL bars the hand-checked cases rely on (raw, unadjusted; Alpha Vantage):

    date        open     high      low     close
    2021-03-01  123.75   127.93   122.79   127.79
    2021-03-02  128.41   128.72   125.01   125.12
    2021-03-03  124.81   125.71   121.84   122.06
    2021-03-04  121.75   123.60   118.62   120.13
    2021-03-09  119.03   122.06   118.79   121.085
    2021-03-10  121.69   122.17   119.45   119.98
    2021-03-11  122.54   123.21   121.26   121.96
    2021-03-12  120.40   121.17   119.16   121.03
    2021-03-15  121.41   124.00   120.42   123.99
    2021-03-16  125.70   127.22   124.715  125.57
    2021-04-21  (the last bar of the sample)
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.sinks import Sink
from market_warehouse.ml import registry
from market_warehouse.ml.records import write_records

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "data" / "sample" / "alphavantage"
AAPL = SAMPLE / "DA-AAPL-T-2021-04-21.csv.gz"
MSFT = SAMPLE / "DA-MSFT-T-2021-04-21.csv.gz"

# Signals whose outcome is known by hand (strategy "hand"), keyed by a short name.
HAND_SIGNALS = {
    # BUY at 121.085; target 123.5 is first reached on 03-15 (high 124.00; open 121.41 below it;
    # low 120.42 above the stop): target, exit 123.5, pnl 2.415, 4 bars held.
    "buy_target": {"signal_ts": "2021-03-09", "signal_type": "BUY", "entry_price": 121.085,
        "target_price": 123.5, "stop_price": 115.0},
    # SELL at 121.03; 03-15 trades up to 124.00 >= stop 123.5 (open 121.41 below it, low 120.42 above
    # the target 115): stop, exit 123.5, pnl -2.47, 1 bar held.
    "sell_stopped": {"signal_ts": "2021-03-12", "signal_type": "SELL", "entry_price": 121.03, "target_price": 115.0,
        "stop_price": 123.5},
    # BUY at 122.06; 03-04 opens at 121.75 between stop 119 and target 123.5, then trades 118.62 (stop)
    # and 123.60 (target): both in one bar. Rule: stop first (conservative), exit 119.0, pnl -3.06.
    "same_bar": {"signal_ts": "2021-03-03", "signal_type": "BUY", "entry_price": 122.06, "target_price": 123.5,
        "stop_price": 119.0},
    # BUY at 123.99; 03-16 opens at 125.70, above the target 125: target at the open, pnl 1.71.
    "gap_target": {"signal_ts": "2021-03-15", "signal_type": "BUY", "entry_price": 123.99, "target_price": 125.0,
        "stop_price": 120.0},
    # BUY at 127.79 with a 3-bar window and far levels: expires at the 03-04 close 120.13, pnl -7.66.
    "expired": {"signal_ts": "2021-03-01", "signal_type": "BUY", "entry_price": 127.79, "target_price": 200.0,
        "stop_price": 50.0, "max_holding_bars": 3},
    # BUY on 04-20: one bar (04-21) follows, no level reached: still open.
    "open": {"signal_ts": "2021-04-20", "signal_type": "BUY", "entry_price": 133.11, "target_price": 150.0,
        "stop_price": 120.0},
    # SELL on the last bar of the sample (04-21): no bar follows yet, still open.
    "open_last_bar": {"signal_ts": "2021-04-21", "signal_type": "SELL", "entry_price": 133.5,
        "target_price": 120.0, "stop_price": 140.0},
    # HOLD: no trade.
    "hold": {"signal_ts": "2021-03-02", "signal_type": "HOLD"},
    # Executed with a supplied exit: the supplied figures win over the bars.
    "supplied": {"signal_ts": "2021-03-10", "signal_type": "BUY", "entry_price": 119.98, "target_price": 130.0,
        "stop_price": 110.0, "status": "EXECUTED", "execution_price": 120.0, "exit_price": 126.0,
        "realized_pnl": 6.0},
}


def load_bars(sink: Sink, paths=(AAPL, MSFT)) -> None:
    reports = load_files(sink, list(paths), "alphavantage")
    assert all(r.status == "success" for r in reports), [r.line() for r in reports]


def daily_bars(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path).sort_values("timestamp").reset_index(drop=True)
    df["ts"] = pd.to_datetime(df["timestamp"]).dt.tz_localize("UTC")
    return df


def register_models(sink: Sink, tmp: Path) -> None:
    art = tmp / "aapl_direction_v1.json"
    art.write_text(json.dumps({"coef": [0.1, -0.2]}))
    registry.register_model(
        sink, "aapl_direction", "1", "logistic", "classification", "2020-06-30T00:00:00Z",
        # A baseline no always-up model can meet: accuracy 0.9 +/- 0.02 -> drift threshold 0.86.
        metrics={"accuracy": 0.9, "accuracy_std": 0.02}, hyperparameters={"C": 1.0},
        feature_columns=["close", "day_of_week"], feature_set_version="hand_v1",
        training_run_id="run-aapl-1", artifact=art, store=tmp / "artifacts", activate=True)
    registry.register_model(
        sink, "msft_direction", "1", "logistic", "classification", "2020-06-30T00:00:00Z",
        # Baseline 0.5 +/- 0.05 -> threshold 0.4: an always-up model on MSFT stays above it.
        metrics={"accuracy": 0.5, "accuracy_std": 0.05}, feature_columns=["day_of_week"],
        training_run_id="run-msft-1", activate=True)
    registry.register_model(
        sink, "aapl_return", "1", "ridge", "regression", "2020-06-30T00:00:00Z",
        metrics={"rmse": 0.02}, feature_columns=["ret_1d"], activate=True)
    write_records(sink, "training-runs", [
        {"training_run_id": "run-aapl-1", "model_name": "aapl_direction", "started_at": "2020-06-30T01:00:00Z",
         "ended_at": "2020-06-30T01:10:00Z", "status": "completed", "data_start": "2020-01-01T00:00:00Z",
         "data_end": "2020-06-29T00:00:00Z", "symbols": ["AAPL"], "sample_count": 123, "created_by": "test"},
        {"training_run_id": "run-msft-1", "model_name": "msft_direction", "started_at": "2020-06-30T01:00:00Z",
         "ended_at": "2020-06-30T01:05:00Z", "status": "completed", "data_start": "2020-01-01T00:00:00Z",
         "data_end": "2020-06-29T00:00:00Z", "symbols": ["MSFT"], "sample_count": 123, "created_by": "test"},
    ], strict=True)


def prediction_rows(start: str = "2020-01-01") -> list[dict]:
    """Always-up classifiers on AAPL and MSFT from `start`, and a small regression on AAPL.
    AAPL's feature `close` is the raw close: ~300 before the 2020-08 4:1 split, ~130 in 2021, so
    it drifts; `day_of_week` does not."""
    rows = []
    for path, model, sym in ((AAPL, "aapl_direction@1", "AAPL"), (MSFT, "msft_direction@1", "MSFT")):
        bars = daily_bars(path)
        bars = bars[bars["ts"] >= pd.Timestamp(start, tz="UTC")]
        for ts, close in zip(bars["ts"], bars["close"]):
            features = {"day_of_week": float(ts.dayofweek)}
            if sym == "AAPL":
                features["close"] = float(close)
            rows.append({"model_id": model, "symbol": sym, "bar_ts": ts.isoformat(),
                         "predicted_at": (ts + pd.Timedelta(hours=21)).isoformat(),
                         "predicted_class": "up", "probability": 0.6, "latency_ms": 5.0,
                         "features": features})
    # Hand-checked: 03-09 close 121.085 -> 03-10 119.98 (down) -> 03-11 121.96 (up).
    rows.append({"model_id": "aapl_direction@1", "symbol": "AAPL", "bar_ts": "2021-03-09", "horizon_bars": 2,
                 "predicted_at": "2021-03-09T21:00:00Z", "predicted_class": "down", "probability": 0.7,
                 "latency_ms": 7.0})
    rows.append({"model_id": "aapl_return@1", "symbol": "AAPL", "bar_ts": "2021-03-10",
                 "predicted_at": "2021-03-10T21:00:00Z", "predicted_value": 0.01, "latency_ms": 3.0,
                 "features": {"ret_1d": -0.0091}})
    rows.append({"model_id": "aapl_return@1", "symbol": "AAPL", "bar_ts": "2021-03-11",
                 "predicted_at": "2021-03-11T21:00:00Z", "predicted_value": -0.02, "latency_ms": 4.0})
    return rows


def signal_rows() -> list[dict]:
    rows = []
    for spec in HAND_SIGNALS.values():
        row = {"strategy": "hand", "symbol": "AAPL", "latency_ms": 10.0 + len(rows), **spec}
        row["signal_ts"] = pd.Timestamp(spec["signal_ts"], tz="UTC").isoformat()
        rows.append(row)
    return rows


def agent_rows() -> tuple[list[dict], list[dict]]:
    decisions, episodes = [], []
    actions = ["BUY", "HOLD", "SELL", "HOLD"]
    for ep in range(1, 13):
        day = pd.Timestamp("2021-03-01", tz="UTC") + pd.Timedelta(days=ep)
        for step in range(4):
            decisions.append({"agent_id": "ppo_1", "episode": ep, "symbol": "AAPL",
                              "decision_ts": (day + pd.Timedelta(hours=14 + step)).isoformat(),
                              "state": {"pos": step}, "action": actions[step], "confidence": 0.5,
                              "reward": float(ep) / 4, "next_state": {"pos": step + 1}, "position_size": 1.0,
                              "model_version": "ppo_1@1"})
        episodes.append({"agent_id": "ppo_1", "episode": ep, "started_at": day.isoformat(),
                         "ended_at": (day + pd.Timedelta(hours=20)).isoformat(), "total_reward": float(ep),
                         "episode_length": 4, "loss": 1.0 / ep, "portfolio_value": 1000.0 + ep,
                         "sharpe": 0.1 * ep})
    return decisions, episodes


def build_all(sink: Sink, tmp: Path) -> None:
    """Bars, registry, training runs, predictions, signals, agent records."""
    load_bars(sink)
    register_models(sink, tmp)
    for kind, rows in (("predictions", prediction_rows()), ("signals", signal_rows())):
        report = write_records(sink, kind, rows)
        assert report.quarantined == 0, report.examples
    decisions, episodes = agent_rows()
    write_records(sink, "agent-decisions", decisions, strict=True)
    write_records(sink, "agent-episodes", episodes, strict=True)


if __name__ == "__main__":
    import sys
    import tempfile

    from market_warehouse.ml.db import open_ml_sink

    with open_ml_sink(sys.argv[1] if len(sys.argv) > 1 else None) as s:
        build_all(s, Path(tempfile.mkdtemp()))
