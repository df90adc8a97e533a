"""The scale generator's held-back 1-minute session (`make bench-scale --size minute`: the incremental build
after one new day). From the repository's own sample (two FILUSDT months), no build."""

from __future__ import annotations

import pandas as pd

from benchmarks.scale import generate
from market_warehouse.loaders.sources import FORMATS
from market_warehouse.loaders.validate import validate


def test_minute_symbols_hold_back_their_last_utc_day(tmp_path):
    src = generate.find_sources(generate.REPO / "data" / "sample")
    held = generate.generate(tmp_path / "held", daily_symbols=0, minute_bars=80_000, sources=src)
    whole = generate.generate(tmp_path / "whole", daily_symbols=0, minute_bars=80_000, sources=src,
                              hold_back=False)
    # only the newest month of the source symbol gives up its last day; the older month is whole
    assert sorted(p.name for p in (tmp_path / "held" / "new_session").glob("*.csv")) == ["FIL000USDT-1m-2023-04.csv"]
    old = "FIL000USDT-1m-2023-02.csv"
    assert (tmp_path / "held" / "minute" / old).read_bytes() == (tmp_path / "whole" / "minute" / old).read_bytes()

    name = "FIL000USDT-1m-2023-04.csv"
    kept = FORMATS["binance-klines"](tmp_path / "held" / "minute" / name)
    day = FORMATS["binance-klines"](tmp_path / "held" / "new_session" / name)
    full = FORMATS["binance-klines"](tmp_path / "whole" / "minute" / name)
    for part in (kept, day):
        assert part.parameters["symbol"] == "FIL000USDT" and validate(part).rejected.empty
    # the held-back rows are exactly the last UTC day, and nothing is lost or repeated
    last_day = full.bars["ts"].iloc[-1].normalize()
    assert (day.bars["ts"].dt.normalize() == last_day).all() and (kept.bars["ts"] < last_day).all()
    assert len(day.bars) == (full.bars["ts"] >= last_day).sum() == 1_440
    both = pd.concat([kept.bars, day.bars], ignore_index=True)
    pd.testing.assert_frame_equal(both, full.bars.reset_index(drop=True), check_like=True)
    assert held["minute_new_session_bars"] == 1_440 and whole["minute_new_session_bars"] == 0
    assert held["minute_bars"] + held["minute_new_session_bars"] == whole["minute_bars"]
