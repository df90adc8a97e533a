"""The scale generator (`make bench-scale`): deterministic, realistic in shape, loadable as it is.
From the repository's own sample (a fresh clone has no ../shared), a few symbols, no build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.scale import generate
from market_warehouse.loaders.sources import FORMATS
from market_warehouse.loaders.validate import validate

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_same_seed_same_bytes_other_seed_other_prices(tmp_path):
    found = generate.find_sources(SAMPLE)
    assert len(found.daily) >= 40 and found.minute
    assert all(generate._read(p).startswith("timestamp,") for p in found.daily)
    n = 5  # a few sources keep it fast; the same code serves 1,000 symbols
    src = generate.Sources(found.root, found.daily[:n], found.minute[:1])
    a = generate.generate(tmp_path / "a", daily_symbols=n + 5, minute_bars=50_000, sources=src)
    b = generate.generate(tmp_path / "b", daily_symbols=n + 5, minute_bars=50_000, sources=src)
    generate.generate(tmp_path / "c", daily_symbols=n + 5, minute_bars=50_000, sources=src, seed=7)
    assert generate.digest(tmp_path / "a") == generate.digest(tmp_path / "b")
    assert generate.digest(tmp_path / "a") != generate.digest(tmp_path / "c")
    assert a == b and json.loads((tmp_path / "a" / "manifest.json").read_text()) == a
    # n + 5 symbols from n sources: all names distinct, symbol n + 1 is AAPL's second copy
    assert len(set(a["daily_symbols"])) == n + 5 and a["daily_symbols"][n] == "AAPL_001"
    assert a["minute_bars"] >= 50_000 and a["new_session_bars"] == n + 5


def test_rescaled_history_keeps_calendar_returns_and_corporate_actions(tmp_path):
    found = generate.find_sources(SAMPLE)
    src = generate.Sources(found.root, found.daily[:1], found.minute[:1])  # AAPL: splits and dividends
    generate.generate(tmp_path, daily_symbols=2, minute_bars=1, sources=src)
    real = FORMATS["alphavantage"](src.daily[0])  # AAPL
    twins = [FORMATS["alphavantage"](tmp_path / "daily" / f"DA-AAPL_00{k}-T-2021-04-21.csv") for k in (0, 1)]
    held = FORMATS["alphavantage"](tmp_path / "new_session" / "DA-AAPL_000-T-2021-04-21.csv")
    for gen in twins:
        assert gen.parameters["symbol"].startswith("AAPL_")
        v = validate(gen)
        assert v.rejected.empty and v.duplicates_in_source == 0  # every generated row loads
        # same sessions (the NYSE calendar of the source), the last one held back for the new session
        assert gen.bars["ts"].tolist() == real.bars["ts"].tolist()[:-1]
        assert held.bars["ts"].tolist() == real.bars["ts"].tolist()[-1:]
        # one price factor per symbol: the returns are the source's (to the 4-decimal rounding)
        ratio = gen.bars["close"].to_numpy() / real.bars["close"].to_numpy()[:-1]
        assert np.allclose(ratio, ratio[0], rtol=1e-3) and not np.isclose(ratio[0], 1.0)
        # corporate actions kept: same dates, splits unchanged, dividends rescaled with the prices
        ra, ga = real.actions, gen.actions
        assert ga["ex_date"].tolist() == ra["ex_date"].tolist()[: len(ga)] and len(ga) >= len(ra) - 1
        splits = ra["action"] == "split"
        assert splits.any() and ga[splits[: len(ga)].to_numpy()]["value"].tolist() == ra[splits]["value"].tolist()
        div_ratio = (ga["value"] / ra["value"][: len(ga)].to_numpy())[~splits[: len(ga)].to_numpy()]
        assert np.allclose(div_ratio, ratio[0], rtol=1e-2)
    assert twins[0].bars["close"].iloc[0] != twins[1].bars["close"].iloc[0]  # two symbols, two scales


def test_minute_files_are_binance_klines_under_new_names(tmp_path):
    src = generate.find_sources(SAMPLE)
    m = generate.generate(tmp_path, daily_symbols=0, minute_bars=80_000, sources=src)
    files = sorted((tmp_path / "minute").glob("*.csv"))
    assert len(files) == m["minute_files"] == 2 and m["minute_bars"] >= 80_000
    real = FORMATS["binance-klines"](src.minute[0])
    gen = FORMATS["binance-klines"](files[0])
    assert gen.parameters["symbol"] == "FIL000USDT" and gen.parameters["interval"] == "1m"
    assert validate(gen).rejected.empty
    assert gen.bars["ts"].equals(real.bars["ts"])  # Binance's clock, its gaps included
    r = gen.bars["vwap"] / gen.bars["close"] - real.bars["vwap"] / real.bars["close"]
    assert float(pd.Series(r).abs().max()) < 1e-3  # vwap moves with the prices


def test_a_folder_without_vendor_files_is_one_clear_line(tmp_path, capsys):
    assert generate.main(["--source", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(tmp_path) in err and "MWH_SHARED_DATA" in err
