"""Features against independent references, on every bar of every daily sample symbol.

- RSI, ATR, MACD (line, signal, histogram) against TA-Lib, the reference quants check against, run on the
  point-in-time adjusted series that the features read (fct_bars_1d prices x pit_price_factor); ATR and
  MACD are reported in traded prices, so TA-Lib's value is divided by the same factor.
- The other per-bar features against pandas (rolling windows, shifts) on the same series: a second,
  independent implementation, not our SQL.
- Cross-sectional ranks and z-scores against pandas' groupby on our own rounded inputs.

Tolerance: 1e-6 relative after warm-up, with an absolute floor of 1e-9 for values rounded to
`feature_round_digits` (10) decimals near zero. The measured worst errors are printed (pytest -s).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from market_fixtures import MARKET_SELECTION, Warehouse, dbt, load_sample

REL, ABS = 1e-6, 1e-9


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MWH_TARGET", "duckdb")
    mp.setenv("MWH_DUCKDB_PATH", str(tmp_path_factory.mktemp("ref") / "warehouse.duckdb"))
    wh = Warehouse("duckdb")
    wh.create_raw()
    bars, actions = load_sample(crypto=False)
    wh.upsert(bars, actions)
    dbt("build", *MARKET_SELECTION, "--exclude-resource-type", "test", "unit_test")
    series = wh.query("""
        select symbol, ts, open * pit_price_factor as open, high * pit_price_factor as high,
               low * pit_price_factor as low, close * pit_price_factor as close,
               volume * pit_volume_factor as volume, close as traded_close, volume as traded_volume,
               pit_price_factor
        from marts.fct_bars_1d order by symbol, ts""")
    v2 = wh.query("select * from marts.fct_features_daily_v2 order by symbol, ts")
    v1 = wh.query("select * from marts.fct_features_daily_v1 order by symbol, ts")
    yield series, v1, v2
    mp.undo()


def _compare(ours: pd.Series, ref: pd.Series, name: str) -> float:
    """Equal where the reference is defined, null where it is not; returns the worst relative error."""
    ours = ours.astype(float).to_numpy()
    ref = ref.astype(float).to_numpy()
    defined = ~np.isnan(ref)
    assert np.isnan(ours[~defined]).all(), f"{name}: a value where the reference has none"
    assert not np.isnan(ours[defined]).any(), f"{name}: missing where the reference has a value"
    err = np.abs(ours[defined] - ref[defined])
    bad = err > REL * np.abs(ref[defined]) + ABS
    assert not bad.any(), f"{name}: {bad.sum()} values off, worst {err.max():.3g}"
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(np.abs(ref[defined]) > 1e-3, err / np.abs(ref[defined]), 0)
    return float(rel.max()) if len(rel) else 0.0


def _reference(s: pd.DataFrame) -> dict[str, pd.Series]:
    o, h, l, c, v = (s[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close", "volume"))
    f = s["pit_price_factor"].to_numpy(dtype=float)
    macd, signal, hist = talib.MACD(c, 12, 26, 9)
    atr = talib.ATR(h, l, c, 14)
    close = pd.Series(c)
    lr = np.log(close / close.shift(1))
    tp = (s["high"] + s["low"] + s["close"]) / 3
    dollar = s["traded_close"] * s["traded_volume"]
    ret = close / close.shift(1) - 1
    hl = np.log(s["high"] / s["low"])
    co = np.log(s["close"] / s["open"])
    mean20, std20 = close.rolling(20).mean(), close.rolling(20).std(ddof=0)
    return {
        "rsi_14": pd.Series(talib.RSI(c, 14)),
        "atr_14": pd.Series(atr / f), "atr_14_pct": pd.Series(atr / c),
        "macd_12_26": pd.Series(macd / f), "macd_signal_9": pd.Series(signal / f),
        "macd_histogram": pd.Series(hist / f), "macd_12_26_pct": pd.Series(macd / c),
        "macd_histogram_pct": pd.Series(hist / c),
        "return_1": ret, "return_5": close / close.shift(5) - 1, "return_20": close / close.shift(20) - 1,
        "log_return_1": lr,
        "overnight_return": pd.Series(o) / close.shift(1) - 1, "intraday_return": close / pd.Series(o) - 1,
        "momentum_60": close / close.shift(60) - 1, "momentum_120": close / close.shift(120) - 1,
        "momentum_252": close / close.shift(252) - 1, "momentum_12_1": close.shift(21) / close.shift(252) - 1,
        "sma_50_distance": close / close.rolling(50).mean() - 1,
        "sma_200_distance": close / close.rolling(200).mean() - 1,
        "high_52w_distance": close / s["high"].rolling(252).max().to_numpy() - 1,
        "low_52w_distance": close / s["low"].rolling(252).min().to_numpy() - 1,
        "volatility_20": lr.rolling(20).std(), "volatility_60": lr.rolling(60).std(),
        "volatility_20_annualized": lr.rolling(20).std() * np.sqrt(252),
        "parkinson_volatility_20": np.sqrt((hl ** 2).rolling(20).mean() / (4 * np.log(2))).reset_index(drop=True),
        "garman_klass_volatility_20": np.sqrt(
            (0.5 * hl ** 2 - (2 * np.log(2) - 1) * co ** 2).rolling(20).mean().clip(lower=0)).reset_index(drop=True),
        "bollinger_pct_b_20": (close - (mean20 - 2 * std20)) / (4 * std20),
        "volume_zscore_20": (pd.Series(v) - pd.Series(v).rolling(20).mean()) / pd.Series(v).rolling(20).std(),
        "vwap_distance_20": close / ((tp * s["volume"]).rolling(20).sum()
                                     / s["volume"].rolling(20).sum()).reset_index(drop=True) - 1,
        "dollar_volume": dollar.reset_index(drop=True),
        "adv_20": dollar.rolling(20).mean().reset_index(drop=True),
        "amihud_illiquidity_20": 1e6 * (ret.abs() / dollar.reset_index(drop=True)).rolling(20).mean(),
    }


def test_features_match_talib_and_pandas(features):
    series, v1, v2 = features
    worst: dict[str, float] = {}
    for symbol, s in series.groupby("symbol", sort=True):
        s = s.reset_index(drop=True)
        ours = v2[v2["symbol"] == symbol].reset_index(drop=True)
        assert len(ours) == len(s), symbol
        for name, ref in _reference(s).items():
            worst[name] = max(worst.get(name, 0.0), _compare(ours[name], ref, f"{symbol}.{name}"))
    print("\nworst relative error per feature (values above 1e-3 in magnitude):")
    for name, err in sorted(worst.items()):
        print(f"  {name:28s} {err:.3g}")
    # version 1 carries the same definitions for its columns
    shared = [c for c in v1.columns if c not in ("feature_version", "actions_loaded_at")]
    pd.testing.assert_frame_equal(v1[shared].reset_index(drop=True), v2[shared].reset_index(drop=True))


def test_benchmark_and_cross_sections(features):
    series, _, v2 = features
    us = v2[v2["exchange"] == "US"].copy()
    # equal-weight benchmark: mean 1-bar return of the exchange's symbols with a return on the session
    s = series.copy()
    s["ret"] = s.groupby("symbol")["close"].transform(lambda c: c / c.shift(1) - 1)
    bench = s.merge(v2[["symbol", "ts", "exchange"]], on=["symbol", "ts"])
    bench = bench[bench["exchange"] == "US"].groupby("ts")["ret"].mean()
    got = us.groupby("ts")["benchmark_return_1"].first()
    joined = pd.concat([got, bench], axis=1, keys=["ours", "ref"]).dropna()
    assert len(joined) > 5000
    assert np.allclose(joined["ours"], joined["ref"], rtol=1e-6, atol=1e-9)
    # beta: sample covariance / variance over the last 60 bars, per symbol
    aapl = us[us["symbol"] == "AAPL"].reset_index(drop=True)
    r = aapl["return_1"].astype(float)
    b = aapl["benchmark_return_1"].astype(float)
    beta = r.rolling(60).cov(b) / b.rolling(60).var()
    _compare(aapl["beta_60"].iloc[61:], beta.iloc[61:], "AAPL.beta_60")
    # ranks and z-scores per session over our rounded inputs
    for of, kind in [("momentum_252", "rank"), ("volatility_20", "zscore"), ("adv_20", "rank")]:
        g = us.groupby("ts")[of]
        if kind == "rank":
            ref = g.rank(method="min").sub(1).div(g.transform("count").sub(1).replace(0, np.nan))
            ref = ref.where(us[of].notna() & (g.transform("count") > 1), np.where(us[of].notna(), 0.0, np.nan))
        else:
            ref = (us[of] - g.transform("mean")) / g.transform("std").replace(0, np.nan)
        col = f"{of}_{kind}"
        ours = us[col].astype(float).to_numpy()
        ok = np.isclose(ours, ref.to_numpy(dtype=float), rtol=1e-6, atol=1e-9, equal_nan=True)
        assert ok.all(), f"{col}: {(~ok).sum()} values differ"
