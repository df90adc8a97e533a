"""The demo's ML sample: a small, reproducible baseline trained on the sample's daily bars, so that every
ML mart has rows after `mwh demo`.

What it does (numpy only, fixed seed, same rows on every run of the same sample):

1. reads the leakage-free training rows (marts.fct_training_set_daily) of a few symbols;
2. trains a logistic regression of "next session's return > 0" on three features (return_5, rsi_14,
   volatility_20, standardised) over 2016-2019; accuracy and its bootstrap std are the baseline;
3. records the training run and registers `demo_direction@1` (artifact: the coefficients as JSON)
   through the registry API, active;
4. scores 2019 (in-sample, logged at training time: the PSI reference window) and 2020-01 onwards
   (live), writing predictions with their feature vectors through the record API;
5. turns the last 60 sessions' most confident scores into BUY/SELL signals (entry the close, target
   2 ATR away, stop 1 ATR), plus one signal on the session after the last bar (waiting for its bar:
   it shows in fct_ml_unmatched_records until that bar is loaded);
6. logs a rule agent that follows the model (decisions, monthly episodes), and a retrain request;
7. builds what the ML sources feed (`dbt build --select source:ml+`).

Nothing here is a trading recommendation: the model is deliberately simple.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from market_warehouse.config import Target, load_target
from market_warehouse.dbt import run_dbt
from market_warehouse.ml import api
from market_warehouse.read import Reader

MODEL_NAME = "demo_direction"
MODEL_VERSION = "1"
MODEL_ID = f"{MODEL_NAME}@{MODEL_VERSION}"
STRATEGY = "demo_baseline"
AGENT = "demo_rule_agent"
SYMBOLS = ("AAPL", "MSFT", "JPM", "XOM")
FEATURES = ("return_5", "rsi_14", "volatility_20")
TRAIN_START, TRAIN_END = "2016-01-01", "2019-12-31"
TRAINING_DATE = "2020-01-02T00:00:00Z"
REFERENCE_START = "2019-01-01"
SEED = 20240501
SIGNAL_SESSIONS = 60


def _frame(target: Target) -> tuple[pd.DataFrame, pd.Series]:
    """The training rows with the raw close, and the newest bar of the symbols."""

    with Reader(target) as r:
        rows = r.training_set(list(SYMBOLS), TRAIN_START, None)
        closes = r.bars(list(SYMBOLS), "1d", TRAIN_START, None, adjusted=False)
    rows = rows.merge(closes[["symbol", "ts", "close"]], on=["symbol", "ts"], how="left")
    rows = rows.dropna(subset=[*FEATURES, "close"]).sort_values(["ts", "symbol"]).reset_index(drop=True)
    return rows, closes.sort_values(["ts", "symbol"]).iloc[-1]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 500,
                 lr: float = 0.5) -> np.ndarray:
    """Weights (intercept first) by full-batch gradient descent on the L2-penalised log loss."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) / len(y) + l2 * np.r_[0.0, w[1:]]
        w -= lr * grad
    return w


def _prob_up(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(w[0] + x @ w[1:])))


def _iso(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").isoformat()


@contextmanager
def _registry_history_off():
    """The demo builds the registry snapshot itself: skip the per-call capture (seconds each)."""
    saved = os.environ.get("MWH_REGISTRY_HISTORY")
    os.environ["MWH_REGISTRY_HISTORY"] = "off"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MWH_REGISTRY_HISTORY", None)
        else:
            os.environ["MWH_REGISTRY_HISTORY"] = saved


def generate(target: Target | str | None = None) -> dict:
    """Train, register and record the sample (see the module docstring); returns counts per record kind.
    Needs the market marts built (fct_training_set_daily)."""

    target = target if isinstance(target, Target) else load_target(target)
    rows, last = _frame(target)
    if rows.empty:
        raise RuntimeError(f"no training rows for {', '.join(SYMBOLS)} in marts.fct_training_set_daily: "
                           f"load the sample and build first")
    rows["label"] = (rows["forward_return_1"] > 0).astype(float)
    train = rows[(rows["ts"] <= pd.Timestamp(TRAIN_END, tz="UTC")) & rows["forward_return_1"].notna()]
    mean, std = train[list(FEATURES)].mean(), train[list(FEATURES)].std(ddof=0)
    x_all = ((rows[list(FEATURES)] - mean) / std).to_numpy()
    x_train = x_all[train.index.to_numpy()]
    y_train = train["label"].to_numpy()
    w = fit_logistic(x_train, y_train)
    rows["p_up"] = _prob_up(w, x_all)
    hit = ((rows.loc[train.index, "p_up"] > 0.5).astype(float) == y_train).to_numpy()
    rng = np.random.default_rng(SEED)
    boot = [hit[rng.integers(0, len(hit), len(hit))].mean() for _ in range(200)]
    accuracy, accuracy_std = float(hit.mean()), float(np.std(boot))

    run_id = "demo-training-run-1"
    training_run = {
        "training_run_id": run_id, "model_name": MODEL_NAME, "started_at": "2020-01-02T00:00:00Z",
        "ended_at": "2020-01-02T00:05:00Z", "status": "completed", "data_start": f"{TRAIN_START}T00:00:00Z",
        "data_end": f"{TRAIN_END}T00:00:00Z", "symbols": list(SYMBOLS), "sample_count": len(train),
        "created_by": "mwh demo"}
    scored = rows[rows["ts"] >= pd.Timestamp(REFERENCE_START, tz="UTC")]
    predictions = []
    for r in scored.itertuples(index=False):
        in_sample = r.ts <= pd.Timestamp(TRAIN_END, tz="UTC")
        predictions.append({
            "model_id": MODEL_ID, "symbol": r.symbol, "bar_ts": _iso(r.ts),
            "predicted_at": TRAINING_DATE if in_sample else _iso(r.ts + pd.Timedelta(hours=21)),
            "predicted_class": "up" if r.p_up >= 0.5 else "down",
            "probability": float(max(r.p_up, 1 - r.p_up)), "latency_ms": 2.0,
            "features": {f: float(getattr(r, f)) for f in FEATURES}})
    live = rows[rows["ts"] > pd.Timestamp(TRAIN_END, tz="UTC")]
    recent = live[live["ts"] >= live["ts"].drop_duplicates().nlargest(SIGNAL_SESSIONS).min()]
    hi, lo = recent["p_up"].quantile(0.8), recent["p_up"].quantile(0.2)
    signals = []
    for r in recent.itertuples(index=False):
        if lo < r.p_up < hi:
            continue
        atr = float(r.atr_14) if np.isfinite(r.atr_14) and r.atr_14 > 0 else 0.02 * r.close
        buy = r.p_up >= hi
        signals.append({
            "strategy": STRATEGY, "model_id": MODEL_ID, "symbol": r.symbol, "signal_ts": _iso(r.ts),
            "signal_type": "BUY" if buy else "SELL", "entry_price": float(r.close),
            "target_price": float(r.close + 2 * atr if buy else r.close - 2 * atr),
            "stop_price": float(r.close - atr if buy else r.close + atr),
            "confidence": float(max(r.p_up, 1 - r.p_up)), "latency_ms": 3.0})
    signals.append({  # the session after the last bar: waits for its bar (fct_ml_unmatched_records)
        "strategy": STRATEGY, "model_id": MODEL_ID, "symbol": last["symbol"],
        "signal_ts": _iso(last["ts"] + pd.Timedelta(days=1)), "signal_type": "BUY",
        "entry_price": float(last["close"]), "target_price": float(last["close"] * 1.04),
        "stop_price": float(last["close"] * 0.98), "confidence": 0.6, "latency_ms": 3.0})
    decisions, episodes = _agent(recent)

    store = os.environ.get("MWH_ARTIFACT_STORE")
    counts = {}
    with tempfile.TemporaryDirectory() as tmp, _registry_history_off(), api.connect(target) as wh:
        artifact = Path(tmp) / "demo_direction_v1.json"
        artifact.write_text(json.dumps({"features": list(FEATURES), "mean": mean.tolist(), "std": std.tolist(),
                                        "weights": w.tolist()}, sort_keys=True))
        counts["training-runs"] = api.record_training_runs(wh, [training_run]).loaded
        api.register_model(
            wh, MODEL_NAME, MODEL_VERSION, "logistic_regression", "classification", TRAINING_DATE,
            metrics={"accuracy": round(accuracy, 6), "accuracy_std": round(accuracy_std, 6),
                     "train_rows": len(train)},
            hyperparameters={"l2": 0.01, "steps": 500, "learning_rate": 0.5, "seed": SEED},
            feature_columns=list(FEATURES), feature_set_version="fct_training_set_daily",
            training_run_id=run_id, artifact=artifact, store=store, activate=True, source="mwh demo")
        counts["models"] = 1
        for kind, fn, recs in (("predictions", api.record_predictions, predictions),
                               ("signals", api.record_signals, signals),
                               ("agent-decisions", api.record_agent_decisions, decisions),
                               ("agent-episodes", api.record_agent_episodes, episodes)):
            report = fn(wh, recs, source="mwh demo")
            if report.quarantined or report.status != "success":
                raise RuntimeError(f"demo ML sample: {kind}: {report.line()} {report.examples}")
            counts[kind] = report.loaded + report.duplicate + report.replaced
        api.request_retrain(wh, MODEL_NAME, "demo: monthly retrain", priority=3, requested_by="mwh demo")
    counts["baseline_accuracy"] = round(accuracy, 4)
    return counts


def _agent(recent: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """A rule agent following the model: long when p_up >= 0.5, else short; reward the next session's
    return times the position; one episode per symbol and calendar month."""
    decisions, episodes = [], []
    recent = recent.sort_values(["symbol", "ts"])
    recent = recent.assign(month=recent["ts"].dt.strftime("%Y%m"))
    for n, ((symbol, _month), g) in enumerate(recent.groupby(["symbol", "month"], sort=True), 1):
        rewards = []
        for r in g.itertuples(index=False):
            position = 1.0 if r.p_up >= 0.5 else -1.0
            reward = float(position * r.forward_return_1) if pd.notna(r.forward_return_1) else 0.0
            rewards.append(reward)
            decisions.append({
                "agent_id": AGENT, "episode": n, "symbol": symbol,
                "decision_ts": _iso(r.ts + pd.Timedelta(hours=21)), "state": {"p_up": round(float(r.p_up), 6)},
                "action": "BUY" if position > 0 else "SELL", "confidence": float(max(r.p_up, 1 - r.p_up)),
                "reward": reward, "position_size": position, "model_version": MODEL_ID})
        returns = np.array(rewards)
        episodes.append({
            "agent_id": AGENT, "episode": n, "started_at": _iso(g["ts"].min()),
            "ended_at": _iso(g["ts"].max() + pd.Timedelta(hours=21)), "total_reward": float(returns.sum()),
            "episode_length": len(g), "portfolio_value": float(1000.0 * np.prod(1 + returns)),
            "sharpe": float(returns.mean() / returns.std() * np.sqrt(252)) if returns.std() > 0 else 0.0})
    return decisions, episodes


def build(target: Target | str | None = None, quiet: bool = True) -> bool:
    """Build what the ML sources feed (marts, snapshot), the tests whose parents are built."""

    res = run_dbt(["build", "--select", "source:ml+", "--indirect-selection", "buildable"], target, quiet=quiet)
    return bool(res.success)


def generate_and_build(target: Target | str | None = None) -> int:
    """What `mwh demo` calls after its build: 0 ok, 2 the ML build failed."""
    counts = generate(target)
    print("\n== ML sample: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    ok = build(target)
    print("ML build " + ("ok" if ok else "FAILED (see logs/dbt.log)"))
    return 0 if ok else 2
