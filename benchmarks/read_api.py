"""Read API latency (market_warehouse/read.py) on the full shared sample, per target: p50/p95 of 50 warm runs of
the last 1,000 daily bars of one symbol, the latest bar of every symbol, and 30-day price stats.

Goals (issue 10): last 1,000 bars < 10 ms p95, latest bar of every symbol < 50 ms, 30-day stats < 50 ms.

Uses scratch warehouses of its own (/tmp/mwh_bench_read/warehouse.duckdb, mwh_bench_read_timescale and
mwh_bench_read_postgres on the configured server), loaded with the market model tests' fixtures (the 41
Alpha Vantage files and the FILUSDT minute bars) and built with the market models (no tests).

    .venv/bin/python -m benchmarks.read_api [duckdb] [timescale] [postgres]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python" / "models"))

RUNS = 50
SYMBOL = "AAPL"
GOALS_MS = {"bars last 1000": 10.0, "latest bar, all symbols": 50.0, "price_stats 30d": 50.0}


def _prepare(kind: str, server) -> None:
    """Point the profile at a scratch warehouse of `kind`, load the sample and build the market models."""
    from market_warehouse.config import profiles_dir

    import market_fixtures as mf

    os.environ.setdefault("DBT_PROFILES_DIR", str(profiles_dir()))
    os.environ["DBT_TARGET_PATH"] = str(Path(tempfile.gettempdir()) / "mwh_bench_read" / "target")
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ["MWH_TARGET"] = kind
    if kind == "duckdb":
        folder = Path(tempfile.gettempdir()) / "mwh_bench_read"
        folder.mkdir(exist_ok=True)
        path = folder / "warehouse.duckdb"
        path.unlink(missing_ok=True)
        os.environ["MWH_DUCKDB_PATH"] = str(path)
    else:
        os.environ.update(MWH_PG_HOST=server.host, MWH_PG_PORT=str(server.port), MWH_PG_USER=server.user,
                          MWH_PG_PASSWORD=server.password)
        name = f"mwh_bench_read_{kind}"
        mf.PG_DSN = (f"host={server.host} port={server.port} user={server.user}"
                     + (f" password={server.password}" if server.password else ""))
        mf.pg_create_database(name, timescale=kind == "timescale")
        os.environ["MWH_PG_DATABASE" if kind == "timescale" else "MWH_PG_PLAIN_DATABASE"] = name
    wh = mf.Warehouse(kind)
    wh.create_raw()
    bars, actions = mf.load_sample()
    wh.upsert(bars, actions)
    mf.dbt("build", *mf.MODELS_ONLY)


def measure(reader, runs: int = RUNS) -> dict[str, tuple[float, float, int]]:
    """name -> (p50 ms, p95 ms, rows) over `runs` warm runs (one untimed warm-up each)."""
    cases = {
        "bars last 1000": lambda: reader.bars(SYMBOL, "1d", last=1000),
        "latest bar, all symbols": lambda: reader.latest_bars(),
        "price_stats 30d": lambda: reader.price_stats(SYMBOL, 30),
    }
    out = {}
    for name, call in cases.items():
        rows = len(call())
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            call()
            times.append((time.perf_counter() - t) * 1000)
        out[name] = (float(np.percentile(times, 50)), float(np.percentile(times, 95)), rows)
    return out


def run(server, targets: list[str] | None = None) -> list[str]:
    from market_warehouse.config import load_target
    from market_warehouse.read import Reader

    targets = targets or (["duckdb"] + (["timescale", "postgres"] if server is not None else []))
    saved = dict(os.environ)
    lines = [f"read API: p50 / p95 of {RUNS} warm runs (ms), full sample; goals p95: "
             + ", ".join(f"{k} < {v:g}" for k, v in GOALS_MS.items())]
    try:
        for kind in targets:
            _prepare(kind, server)
            with Reader(load_target(kind)) as reader:
                for name, (p50, p95, rows) in measure(reader).items():
                    verdict = "ok" if p95 < GOALS_MS[name] else "OVER GOAL"
                    lines.append(f"  {kind:<10} {name:<24} p50 {p50:7.2f}  p95 {p95:7.2f}  "
                                 f"({rows} rows)  {verdict}")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return lines


if __name__ == "__main__":
    from benchmarks.run import pg_server

    kinds = sys.argv[1:] or ["duckdb"]
    srv = pg_server() if any(k != "duckdb" for k in kinds) else None
    for line in run(srv, kinds):
        print(line, flush=True)
