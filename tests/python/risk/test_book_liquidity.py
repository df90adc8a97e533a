"""fct_book_liquidity (average spread and depth) against pandas on the real Binance capture.

The head of the capture (tests/python/microstructure/capture.py: ~2.5 minutes of BTCUSDT) is loaded with
`mwh load ticks`, the book snapshots mart and fct_book_liquidity are built, and every bucket's averages
are recomputed in pandas from the snapshot rows (DuckDB and TimescaleDB).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from market_warehouse.cli import main
from tests.python.microstructure import capture

from market_fixtures import Warehouse, dbt


@pytest.fixture(params=["duckdb", "timescale"])
def target(request):
    return request.param, request.getfixturevalue(f"{request.param}_target")


def test_book_liquidity_matches_pandas(target, tmp_path, capsys):
    kind, _ = target
    started = time.monotonic()
    path = capture.write(tmp_path / "BTCUSDT-capture.txt", capture.lines())
    assert main(["load", "ticks", str(path), "--format", "binance-ws"]) == 0
    capsys.readouterr()
    dbt("build", "--select", "+fct_book_liquidity", "--exclude-resource-type", "unit_test")
    wh = Warehouse(kind)
    snaps = wh.query("select * from marts.fct_book_snapshots")
    ours = wh.query("select * from marts.fct_book_liquidity order by symbol, exchange, bucket_ts")
    assert len(snaps) > 60 and len(ours) >= 2

    snaps["bucket_ts"] = pd.to_datetime(snaps["snapshot_ts"], utc=True).dt.floor("min")
    cols = ["mid_price", "spread", "spread_bps", "best_bid_qty", "best_ask_qty", "bid_depth_10bps",
            "ask_depth_10bps", "bid_depth_50bps", "ask_depth_50bps"]
    snaps[cols] = snaps[cols].astype(float)
    g = snaps.groupby(["symbol", "exchange", "bucket_ts"])
    ref = g[cols].mean().add_prefix("avg_")
    ref["snapshot_count"] = g.size()
    ref["min_spread_bps"] = g["spread_bps"].min()
    ref["max_spread_bps"] = g["spread_bps"].max()
    ref["avg_depth_10bps"] = ref["avg_bid_depth_10bps"] + ref["avg_ask_depth_10bps"]
    ref["avg_depth_50bps"] = ref["avg_bid_depth_50bps"] + ref["avg_ask_depth_50bps"]
    step_ms = float(snaps["snapshot_interval_ms"].iloc[0])
    ref["valid_share"] = ref["snapshot_count"] * step_ms / 60_000
    ref = ref.reset_index()

    ours["bucket_ts"] = pd.to_datetime(ours["bucket_ts"], utc=True)
    assert ours["bucket_ts"].tolist() == ref["bucket_ts"].tolist()
    assert ours["snapshot_count"].astype(int).tolist() == ref["snapshot_count"].tolist()
    for c in ["avg_mid_price", "avg_spread", "avg_spread_bps", "min_spread_bps", "max_spread_bps",
              "avg_best_bid_qty", "avg_best_ask_qty", "avg_bid_depth_10bps", "avg_ask_depth_10bps",
              "avg_depth_10bps", "avg_bid_depth_50bps", "avg_ask_depth_50bps", "avg_depth_50bps",
              "valid_share"]:
        a, b = ours[c].astype(float).to_numpy(), ref[c].to_numpy(dtype=float)
        assert np.allclose(a, b, rtol=1e-9, atol=1e-12), f"{c}: {a[:3]} vs {b[:3]}"
    assert (ours["avg_spread_bps"].astype(float) > 0).all()
    print(f"\n[{kind}] book liquidity: {len(ours)} buckets from {len(snaps)} snapshots, "
          f"mean spread {ours['avg_spread_bps'].astype(float).mean():.4f} bps, "
          f"mean depth within 10 bps {ours['avg_depth_10bps'].astype(float).mean():.2f} BTC; "
          f"{time.monotonic() - started:.1f}s")
