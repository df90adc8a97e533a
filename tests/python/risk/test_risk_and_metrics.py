"""Risk and market-metrics marts against independent references, on DuckDB, TimescaleDB and plain
PostgreSQL (no extension: the rollups feeding the marts are plain tables there, not continuous aggregates).

Input: the bundled sample, trimmed (AAPL, MSFT, JPM, XOM daily from 2017, the constituents of the seed
portfolio `us_large_caps`; FILUSDT 1-minute bars of 2023-02-01..07 and 2023-04-27..30, so the series has
a month-long gap). The marts and their upstream models are built with dbt; every reference is computed
here in pandas/numpy/scipy from the rows the marts read (fct_bars_1d, the calendars, the 1-minute bars):

- daily returns: pct_change over consecutive sessions of the exchange's calendar; the portfolio's as
  the weighted sum on common sessions;
- historical VaR = -numpy's linear empirical quantile, CVaR = -tail mean; parametric VaR/CVaR from
  scipy.stats.norm (ppf, pdf) with the window's mean and ddof=1 standard deviation;
- Kupiec's LR from its formula and its p-value from scipy.stats.chi2.sf;
- 24h stats, realized volatility and the volume profile (POC, value area) by direct loops.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from market_fixtures import REPO, Warehouse, dbt, load_sample, pg_create_database, pg_drop_database

SYMBOLS = ["AAPL", "MSFT", "JPM", "XOM"]
MODELS = ["fct_value_at_risk", "fct_var_backtest", "fct_market_stats_24h", "fct_realized_volatility_daily",
          "fct_volume_profile"]
WINDOW, BACKTEST, LEVELS, BINS, VALUE_AREA = 250, 250, (0.95, 0.99), 50, 0.7
RTOL = 1e-9


def _input_bars() -> tuple[pd.DataFrame, pd.DataFrame]:
    bars, actions = load_sample(symbols=SYMBOLS, start="2017-01-01")
    crypto = bars["symbol"] == "FILUSDT"
    ts = bars["ts"]
    keep = ~crypto | (ts < pd.Timestamp("2023-02-08", tz="UTC")) | (ts >= pd.Timestamp("2023-04-27", tz="UTC"))
    return bars[keep].reset_index(drop=True), actions


@pytest.fixture(scope="module", params=[
    "duckdb",
    pytest.param("timescale", marks=pytest.mark.postgres),
    pytest.param("postgres", marks=pytest.mark.postgres),
])
def built(request, tmp_path_factory):
    kind = request.param
    mp = pytest.MonkeyPatch()
    database = None
    if kind == "duckdb":
        mp.setenv("MWH_TARGET", "duckdb")
        mp.setenv("MWH_DUCKDB_PATH", str(tmp_path_factory.mktemp("risk") / "warehouse.duckdb"))
    else:
        request.getfixturevalue("pg_server")  # provisions the server (or skips)
        database = f"mwh_test_risk_{uuid.uuid4().hex[:8]}"
        pg_create_database(database, timescale=kind == "timescale")
        mp.setenv("MWH_TARGET", kind)
        mp.setenv("MWH_PG_DATABASE" if kind == "timescale" else "MWH_PG_PLAIN_DATABASE", database)
    started = time.monotonic()
    wh = Warehouse(kind)
    wh.create_raw()
    bars, actions = _input_bars()
    wh.upsert(bars, actions)
    selection = ["--select", *(f"+{m}" for m in MODELS)]
    dbt("build", *selection, "--exclude-resource-type", "test", "unit_test")
    dbt("test", "--select", *MODELS, "int_risk__daily_returns_unioned", "risk_portfolio_weights")
    print(f"\n[{kind}] load + build + tests of the risk/metrics marts: {time.monotonic() - started:.1f}s")
    yield kind, wh, bars
    mp.undo()
    if database:
        pg_drop_database(database)


def _close(ours, ref, what: str, rtol: float = RTOL, atol: float = 1e-12) -> float:
    ours = np.asarray(ours, dtype=float)
    ref = np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape, f"{what}: {ours.shape} vs {ref.shape}"
    assert (np.isnan(ours) == np.isnan(ref)).all(), f"{what}: nulls differ"
    ok = ~np.isnan(ref)
    err = np.abs(ours[ok] - ref[ok])
    bad = err > rtol * np.abs(ref[ok]) + atol
    assert not bad.any(), f"{what}: {bad.sum()} values differ, worst {err.max():.3g}"
    return float(err.max()) if len(err) else 0.0


def _query(wh: Warehouse, sql: str) -> pd.DataFrame:
    df = wh.query(sql)
    for col in df.columns:
        if col.endswith("_ts"):
            df[col] = pd.to_datetime(df[col], utc=True)
        elif col.endswith("_date"):
            df[col] = pd.to_datetime(df[col]).dt.date
    return df


# ---- references ---------------------------------------------------------------------------------

def _reference_returns(wh: Warehouse) -> pd.DataFrame:
    bars = _query(wh, """
        select b.symbol, b.exchange, b.session_date, b.adj_close, e.calendar
        from marts.fct_bars_1d as b left join reference.exchanges as e on b.exchange = e.exchange
        where b.adj_close > 0""")
    sessions = _query(wh, "select calendar, session_date from marts.dim_trading_sessions")
    out = []
    for (symbol, exchange), g in bars.groupby(["symbol", "exchange"]):
        g = g.sort_values("session_date")
        cal = np.sort(sessions.loc[sessions["calendar"] == g["calendar"].iloc[0], "session_date"].to_numpy())
        ret = g["adj_close"].to_numpy(dtype=float)
        ret = ret[1:] / ret[:-1] - 1
        dates = g["session_date"].to_numpy()
        if len(cal):
            pos = np.searchsorted(cal, dates)
            consecutive = pos[1:] == pos[:-1] + 1
        else:
            consecutive = np.ones(len(ret), dtype=bool)
        out.append(pd.DataFrame({"series_type": "symbol", "series_name": symbol, "exchange": exchange,
                                 "session_date": dates[1:][consecutive], "daily_return": ret[consecutive]}))
    symbols = pd.concat(out, ignore_index=True)
    weights = _query(wh, "select * from reference.risk_portfolio_weights")
    for name, w in weights.groupby("portfolio"):
        m = symbols.merge(w, left_on=["series_name", "exchange"], right_on=["symbol", "exchange"])
        m["weighted"] = m["daily_return"] * m["weight"]
        agg = m.groupby("session_date").agg(daily_return=("weighted", "sum"), n=("weighted", "size"))
        agg = agg[agg["n"] == len(w)].reset_index()
        symbols = pd.concat([symbols, pd.DataFrame({
            "series_type": "portfolio", "series_name": name, "exchange": "ALL",
            "session_date": agg["session_date"], "daily_return": agg["daily_return"]})], ignore_index=True)
    return symbols.sort_values(["series_type", "series_name", "exchange", "session_date"]).reset_index(drop=True)


def _reference_var(returns: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (stype, name, exchange), g in returns.groupby(["series_type", "series_name", "exchange"]):
        r = g["daily_return"].to_numpy(dtype=float)
        dates = g["session_date"].to_numpy()
        last = len(r)
        for i in range(max(WINDOW, last - BACKTEST), last + 1):  # i returns up to the as-of session
            w = r[i - WINDOW:i]
            mu, sd = w.mean(), w.std(ddof=1)
            for c in LEVELS:
                p = 1 - c
                q = np.quantile(w, p)
                z = stats.norm.ppf(p)
                realized = r[i] if i < last else np.nan
                rows.append({
                    "series_type": stype, "series_name": name, "exchange": exchange,
                    "as_of_date": dates[i - 1], "confidence_level": c, "realized_return": realized,
                    "historical_var": -q, "historical_cvar": -w[w <= q].mean(),
                    "parametric_var": -(mu + sd * z), "parametric_cvar": -(mu - sd * stats.norm.pdf(z) / p),
                    "z_score": z,
                    "is_historical_breach": realized < q if i < last else None,
                    "is_parametric_breach": realized < mu + sd * z if i < last else None,
                })
    return pd.DataFrame(rows)


def _kupiec(t: int, x: int, p: float) -> tuple[float, float]:
    def xlogy(a, b):
        return 0.0 if a == 0 else a * np.log(b)
    lr = -2 * (xlogy(t - x, 1 - p) + xlogy(x, p)) + 2 * (xlogy(t - x, 1 - x / t) + xlogy(x, x / t))
    lr = max(lr, 0.0)
    return lr, float(stats.chi2.sf(lr, 1))


def _minute_bars(bars: pd.DataFrame) -> pd.DataFrame:
    m = bars[bars["interval"] == "1m"].sort_values(["symbol", "exchange", "ts"]).reset_index(drop=True)
    return m


# ---- tests --------------------------------------------------------------------------------------

def test_daily_returns(built):
    kind, wh, _ = built
    ours = _query(wh, "select series_type, series_name, exchange, session_date, daily_return "
                      "from intermediate.int_risk__daily_returns_unioned "
                      "order by series_type, series_name, exchange, session_date").reset_index(drop=True)
    ref = _reference_returns(wh)
    assert len(ref) > 0 and (ref["series_type"] == "portfolio").any()
    key = ["series_type", "series_name", "exchange", "session_date"]
    assert ours[key].equals(ref[key]), f"[{kind}] return rows differ"
    _close(ours["daily_return"], ref["daily_return"], "daily_return", rtol=1e-12)
    # FILUSDT's month-long gap is no return (it is a gap, not a one-day move)
    fil = ours[ours["series_name"] == "FILUSDT"]
    assert len(fil) and not (pd.to_datetime(fil["session_date"]) == pd.Timestamp("2023-04-27")).any()


def test_value_at_risk(built):
    kind, wh, _ = built
    key = ["series_type", "series_name", "exchange", "as_of_date", "confidence_level"]
    ours = _query(wh, "select * from marts.fct_value_at_risk").sort_values(key).reset_index(drop=True)
    ref = _reference_var(_reference_returns(wh)).sort_values(key).reset_index(drop=True)
    # 4 symbols + 1 portfolio with >= 500 returns: 251 as-of dates x 2 levels each
    assert len(ref) == 5 * (BACKTEST + 1) * len(LEVELS)
    assert ours[key].astype(str).equals(ref[key].astype(str)), f"[{kind}] VaR rows differ"
    worst = {c: _close(ours[c], ref[c], c) for c in
             ("historical_var", "historical_cvar", "parametric_var", "parametric_cvar", "realized_return",
              "z_score")}
    for c in ("is_historical_breach", "is_parametric_breach"):
        assert ours[c].astype(object).where(ours[c].notna(), None).tolist() == ref[c].tolist(), c
    assert (ours["historical_cvar"] >= ours["historical_var"] - 1e-15).all()
    print(f"\n[{kind}] VaR rows {len(ours)}, worst abs errors {worst}")


def test_kupiec_backtest(built):
    kind, wh, _ = built
    var = _query(wh, "select * from marts.fct_value_at_risk where realized_return is not null")
    ours = _query(wh, "select * from marts.fct_var_backtest")
    assert len(ours) == 5 * len(LEVELS) * 2
    worst_p = 0.0
    for row in ours.itertuples():
        g = var[(var["series_type"] == row.series_type) & (var["series_name"] == row.series_name)
                & (var["exchange"] == row.exchange) & (var["confidence_level"] == row.confidence_level)]
        flags = g[f"is_{row.var_method}_breach"].astype(bool)
        t, x = len(g), int(flags.sum())
        assert (row.observations, row.breaches) == (t, x), row
        lr, pv = _kupiec(t, x, 1 - row.confidence_level)
        _close([row.kupiec_lr], [lr], "kupiec_lr", rtol=1e-9, atol=1e-12)
        _close([row.kupiec_p_value], [pv], "kupiec_p_value", rtol=1e-9, atol=1e-15)
        assert bool(row.is_rejected) == (pv < 0.05)
        worst_p = max(worst_p, abs(row.kupiec_p_value - pv))
    print(f"\n[{kind}] Kupiec: {len(ours)} rows, {int(ours['is_rejected'].sum())} rejected, "
          f"worst |p - scipy| {worst_p:.2e}")


def test_normal_helpers_against_scipy(built):
    """The SQL normal CDF/quantile/chi2 tail (macros/risk/mwh_normal.sql) over a range of inputs."""
    _, wh, _ = built
    xs = [-40, -12, -7.5, -7, -3.3, -1.96, -0.5, 0, 0.25, 1.2, 2.5, 6.9, 7.2, 30]
    lr = [0, 1e-6, 0.5, 3.841458820694124, 10, 50, 200]
    from dbt.cli.main import dbtRunner
    sql_cdf = " union all ".join(
        f"select {x} as x, {{{{ mwh_norm_cdf('cast({x} as double precision)') }}}} as v" for x in xs)
    sql_sf = " union all ".join(
        f"select {v} as x, {{{{ mwh_chi2_1_sf('cast({v} as double precision)') }}}} as v" for v in lr)
    compiled = []
    for sql in (sql_cdf, sql_sf):
        res = dbtRunner().invoke(["--no-use-colors", "--quiet", "compile", "--inline", sql, "--project-dir",
                                  str(REPO)])
        assert res.success
        compiled.append(res.result.results[0].node.compiled_code)
    cdf = wh.query(compiled[0]).astype(float).sort_values("x")
    _close(cdf["v"], stats.norm.cdf(cdf["x"]), "norm_cdf", rtol=1e-13, atol=1e-16)
    sf = wh.query(compiled[1]).astype(float).sort_values("x")
    _close(sf["v"], stats.chi2.sf(sf["x"], 1), "chi2_sf", rtol=1e-12, atol=1e-16)


def test_market_stats_24h(built):
    kind, wh, bars = built
    key = ["symbol", "exchange", "window_end_ts"]
    ours = _query(wh, "select * from marts.fct_market_stats_24h").sort_values(key).reset_index(drop=True)
    rows = []
    for (symbol, exchange), g in _minute_bars(bars).groupby(["symbol", "exchange"]):
        ts = g["ts"].reset_index(drop=True)
        for end in sorted(set(g["ts"].dt.floor("h") + pd.Timedelta(hours=1))):
            lo = ts.searchsorted(end - pd.Timedelta(hours=24), "left")
            hi = ts.searchsorted(end, "left")
            w = g.iloc[lo:hi]
            rows.append({"symbol": symbol, "exchange": exchange, "window_end_ts": end,
                         "open_price": w["open"].iloc[0], "high_price": w["high"].max(),
                         "low_price": w["low"].min(), "last_price": w["close"].iloc[-1],
                         "volume": w["volume"].sum(), "quote_volume": w["quote_volume"].sum(),
                         "trade_count": w["trade_count"].sum(), "bar_count": len(w)})
    ref = pd.DataFrame(rows).sort_values(key).reset_index(drop=True)
    assert len(ref) > 200
    assert (ours[key] == ref[key]).all().all(), f"[{kind}] 24h windows differ"
    for c in ("open_price", "high_price", "low_price", "last_price", "volume", "quote_volume"):
        _close(ours[c], ref[c], c)
    _close(ours["price_change_pct"], (ref["last_price"] - ref["open_price"]) / ref["open_price"],
           "price_change_pct")
    assert (ours["trade_count"].astype(int) == ref["trade_count"].astype(int)).all()
    assert (ours["bar_count"].astype(int) == ref["bar_count"]).all()
    assert ours["is_complete"].astype(bool).sum() == (ref["bar_count"] == 1440).sum() > 0


def test_realized_volatility(built):
    kind, wh, bars = built
    key = ["symbol", "exchange", "session_date"]
    ours = _query(wh, "select * from marts.fct_realized_volatility_daily").sort_values(key).reset_index(drop=True)
    parts = []
    for (symbol, exchange), g in _minute_bars(bars).groupby(["symbol", "exchange"]):
        r = np.log(g["close"] / g["close"].shift(1))
        ok = (g["ts"] - g["ts"].shift(1)) == pd.Timedelta(minutes=1)
        d = pd.DataFrame({"symbol": symbol, "exchange": exchange, "session_date": g["ts"].dt.date,
                          "r": r})[ok]
        parts.append(d.groupby(key).agg(return_count=("r", "size"), rv=("r", lambda s: (s * s).sum()))
                     .reset_index())
    ref = pd.concat(parts).sort_values(key).reset_index(drop=True)
    assert (ours[key].astype(str) == ref[key].astype(str)).all().all(), f"[{kind}] days differ"
    assert (ours["return_count"].astype(int) == ref["return_count"]).all()
    _close(ours["realized_variance"], ref["rv"], "realized_variance")
    _close(ours["realized_volatility_annualized"], np.sqrt(ref["rv"] * 365), "annualized (365 days, crypto)")
    # the first day after the gap has 1439 returns, not one spanning the month
    assert ours.loc[ours["session_date"].astype(str) == "2023-04-27", "return_count"].astype(int).tolist() == [1439]


def _reference_profile(g: pd.DataFrame) -> dict:
    lo, hi = g["low"].min(), g["high"].max()
    tp = (g["high"] + g["low"] + g["close"]) / 3
    if hi == lo:
        idx = np.zeros(len(g), dtype=int)
    else:
        idx = np.minimum(BINS - 1, np.floor((tp - lo) / (hi - lo) * BINS).astype(int))
    vol = np.zeros(BINS)
    np.add.at(vol, idx, g["volume"].to_numpy())
    poc = int(np.argmax(vol))  # first maximum: the lowest price on ties
    a = b = poc
    area = vol[poc]
    total = vol.sum()
    while area < VALUE_AREA * total and (a > 0 or b < BINS - 1):
        below = vol[a - 1] if a > 0 else None
        above = vol[b + 1] if b < BINS - 1 else None
        if above is None or (below is not None and below > above):
            a -= 1
            area += below
        else:
            b += 1
            area += above
    return {"volume": vol, "poc": poc, "val_bin": a, "vah_bin": b, "lo": lo, "hi": hi, "area": area / total}


def test_volume_profile(built):
    kind, wh, bars = built
    ours = _query(wh, "select * from marts.fct_volume_profile order by symbol, exchange, window_start_ts, bin_index")
    m = _minute_bars(bars)
    m["window_start_ts"] = m["ts"].dt.floor("D")
    windows = 0
    for (symbol, exchange, start), g in m.groupby(["symbol", "exchange", "window_start_ts"]):
        ref = _reference_profile(g)
        o = ours[(ours["symbol"] == symbol) & (ours["exchange"] == exchange) & (ours["window_start_ts"] == start)]
        assert len(o) == BINS, f"[{kind}] {symbol} {start}: {len(o)} bins"
        _close(o["volume"], ref["volume"], f"{symbol} {start} volume", rtol=1e-9, atol=1e-6)
        assert o["is_point_of_control"].astype(bool).to_numpy().nonzero()[0].tolist() == [ref["poc"]]
        va = o["is_in_value_area"].astype(bool).to_numpy().nonzero()[0]
        assert (va.min(), va.max(), len(va)) == (ref["val_bin"], ref["vah_bin"], ref["vah_bin"] - ref["val_bin"] + 1)
        width = (ref["hi"] - ref["lo"]) / BINS
        _close(o["value_area_low"].iloc[:1], [ref["lo"] + width * ref["val_bin"]], "VAL")
        _close(o["value_area_high"].iloc[:1], [ref["lo"] + width * (ref["vah_bin"] + 1)], "VAH")
        _close(o["poc_price"].iloc[:1], [ref["lo"] + width * (ref["poc"] + 0.5)], "POC price")
        assert ref["area"] >= VALUE_AREA
        windows += 1
    assert windows == ours.groupby(["symbol", "exchange", "window_start_ts"]).ngroups > 5
