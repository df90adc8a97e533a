"""Read API latency (market_warehouse/read.py) on the full shared sample, per target: p50/p95 of 50 warm runs of
the last 1,000 daily bars of one symbol, the latest bar of every symbol, and 30-day price stats.

Goals (issue 10): last 1,000 bars < 10 ms p95, latest bar of every symbol < 50 ms, 30-day stats < 50 ms.

Beside each figure, in the same run: the bare SQL of that call through the driver (duckdb's
`fetchall()`, psycopg's `fetchall()` on the same connection), so the API's own cost (binding, Arrow or
row conversion to a DataFrame) reads apart from the database's, whatever the machine's load.

Uses scratch warehouses of its own (/tmp/mwh_bench_read/warehouse.duckdb, mwh_bench_read_timescale and
mwh_bench_read_postgres on the configured server; MWH_BENCH_READ_NAME renames them), loaded with the market
model tests' fixtures (the 41 Alpha Vantage files and the FILUSDT minute bars) and built with the market
models (no tests). MWH_BENCH_READ_REUSE=1 measures an already built scratch warehouse again.

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
    """Point the profile at a scratch warehouse of `kind`, load the sample and build the market models
    (unless MWH_BENCH_READ_REUSE=1: then only point the profile at it)."""
    from market_warehouse.config import profiles_dir

    import market_fixtures as mf

    reuse = os.environ.get("MWH_BENCH_READ_REUSE") == "1"
    base = os.environ.get("MWH_BENCH_READ_NAME", "mwh_bench_read")
    folder = Path(tempfile.gettempdir()) / base
    folder.mkdir(exist_ok=True)
    os.environ.setdefault("DBT_PROFILES_DIR", str(profiles_dir()))
    os.environ["DBT_TARGET_PATH"] = str(folder / "target")
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ["MWH_TARGET"] = kind
    if kind == "duckdb":
        path = folder / "warehouse.duckdb"
        os.environ["MWH_DUCKDB_PATH"] = str(path)
        if reuse and path.exists():
            return
        path.unlink(missing_ok=True)
    else:
        os.environ.update(MWH_PG_HOST=server.host, MWH_PG_PORT=str(server.port), MWH_PG_USER=server.user,
                          MWH_PG_PASSWORD=server.password)
        name = f"{base}_{kind}"
        os.environ["MWH_PG_DATABASE" if kind == "timescale" else "MWH_PG_PLAIN_DATABASE"] = name
        if reuse:
            return
        mf.PG_DSN = (f"host={server.host} port={server.port} user={server.user}"
                     + (f" password={server.password}" if server.password else ""))
        mf.pg_create_database(name, timescale=kind == "timescale")
    wh = mf.Warehouse(kind)
    wh.create_raw()
    bars, actions = mf.load_sample()
    wh.upsert(bars, actions)
    mf.dbt("build", *mf.MODELS_ONLY)


def _percentiles(call, runs: int) -> tuple[float, float]:
    call()  # warm-up, untimed
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def _bare(reader, call):
    """The statement `call` sends through the read API, as a callable that runs it on the bare driver
    (same connection, rows fetched as tuples, no DataFrame)."""
    seen = []
    real = reader.query

    def spy(sql, params=()):
        seen.append((sql, list(params)))
        return real(sql, params)

    reader.query = spy
    try:
        call()
    finally:
        del reader.query
    sql, params = seen[-1]
    if reader.dialect == "duckdb":
        return lambda: reader.con.execute(sql, params).fetchall()
    from market_warehouse.loaders.sinks.postgres_sink import _pg

    return lambda: reader.con.execute(_pg(sql), params).fetchall()


def measure(reader, runs: int = RUNS) -> dict[str, tuple[float, float, int, float, float]]:
    """name -> (p50 ms, p95 ms, rows, bare-driver p50 ms, bare-driver p95 ms) over `runs` warm runs."""
    cases = {
        "bars last 1000": lambda: reader.bars(SYMBOL, "1d", last=1000),
        "latest bar, all symbols": lambda: reader.latest_bars(),
        "price_stats 30d": lambda: reader.price_stats(SYMBOL, 30),
    }
    out = {}
    for name, call in cases.items():
        rows = len(call())
        bare = _bare(reader, call)
        # interleaved: API, driver, API, driver, so both see the same load
        api1, bare1 = _percentiles(call, runs // 2), _percentiles(bare, runs // 2)
        api2, bare2 = _percentiles(call, runs // 2), _percentiles(bare, runs // 2)
        out[name] = ((api1[0] + api2[0]) / 2, max(api1[1], api2[1]), rows,
                     (bare1[0] + bare2[0]) / 2, max(bare1[1], bare2[1]))
    return out


def run(server, targets: list[str] | None = None) -> list[str]:
    from market_warehouse.config import load_target
    from market_warehouse.read import Reader

    targets = targets or (["duckdb"] + (["timescale", "postgres"] if server is not None else []))
    saved = dict(os.environ)
    lines = [f"read API: p50 / p95 of {RUNS} warm runs (ms), full sample, load average "
             f"{os.getloadavg()[0]:.1f} at the start; goals p95: "
             + ", ".join(f"{k} < {v:g}" for k, v in GOALS_MS.items())]
    try:
        for kind in targets:
            _prepare(kind, server)
            with Reader(load_target(kind)) as reader:
                for name, (p50, p95, rows, b50, b95) in measure(reader).items():
                    verdict = "ok" if p95 < GOALS_MS[name] else "OVER GOAL"
                    lines.append(f"  {kind:<10} {name:<24} p50 {p50:7.2f}  p95 {p95:7.2f}  "
                                 f"({rows} rows)  {verdict}   bare driver p50 {b50:7.2f}  p95 {b95:7.2f}")
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
