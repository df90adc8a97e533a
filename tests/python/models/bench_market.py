"""Benchmark of the market models: full build vs incremental build after one new day, per target.

    .venv/bin/python tests/python/models/bench_market.py [duckdb] [timescale] [postgres]

On the whole shared daily set (41 Alpha Vantage files, 204k bars): load everything but the last day
(2021-04-21), `dbt build --full-refresh`, load the last day, `dbt build` (incremental), each timed,
once with models only and once with all data and unit tests. Uses scratch databases of its own
(/tmp/mwh_bench.duckdb, mwh_bench_timescale, mwh_bench_postgres on the configured server) and the
profile in DBT_PROFILES_DIR (default: a copy of profiles.example.yml). Not collected by pytest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import market_fixtures as mf

LAST_DAY = pd.Timestamp("2021-04-21", tz="UTC")
SELECT = ["--select", "tag:market", "path:seeds"]
MODELS_ONLY = ["--exclude-resource-type", "test", "unit_test"]  # seeds and models


def _dbt(env: dict, target_path: str, *args: str) -> tuple[float, float, str]:
    started = time.perf_counter()
    proc = subprocess.run([str(mf.REPO / ".venv" / "bin" / "dbt"), "build", *SELECT, *args,
                           "--target-path", target_path],
                          cwd=mf.REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"dbt build {' '.join(args)} failed:\n{proc.stdout[-3000:]}")
    results = json.loads(Path(target_path, "run_results.json").read_text())
    done = [line.split("Done. ")[-1] for line in proc.stdout.splitlines() if "Done." in line]
    _dbt.node_times = {".".join(r["unique_id"].split(".")[2:]): r["execution_time"] for r in results["results"]}
    return wall, results["elapsed_time"], done[-1] if done else ""


def bench(kind: str) -> list[tuple]:
    env = dict(os.environ, DO_NOT_TRACK="1", MWH_TARGET=kind)
    if kind == "duckdb":
        path = Path(tempfile.gettempdir()) / "mwh_bench.duckdb"
        path.unlink(missing_ok=True)
        env["MWH_DUCKDB_PATH"] = str(path)
    else:
        name = f"mwh_bench_{kind}"
        mf.pg_create_database(name, timescale=kind == "timescale")
        env["MWH_PG_DATABASE" if kind == "timescale" else "MWH_PG_PLAIN_DATABASE"] = name
    os.environ.update(env)
    wh = mf.Warehouse(kind)
    wh.create_raw()
    bars, actions = mf.load_sample(crypto=False)
    # yesterday's load, then today's: loaded_at is what the staging model's increment follows
    first_loaded = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=1)
    bars.loc[bars["ts"] < LAST_DAY, "loaded_at"] = first_loaded
    actions.loc[pd.to_datetime(actions["ex_date"]) < LAST_DAY.tz_localize(None), "loaded_at"] = first_loaded
    ex_date = pd.to_datetime(actions["ex_date"])
    target_path = tempfile.mkdtemp(prefix=f"bench_{kind}_")
    rows = []
    # seeds are reloaded by every `dbt build` (the trading-sessions seed alone takes seconds on
    # PostgreSQL); an incremental run on unchanged seeds can leave them out
    unchanged_seeds = ["--exclude-resource-type", "seed"]
    for mode, extra, incremental_extra in (
        ("models", MODELS_ONLY, []),
        ("models, seeds kept", MODELS_ONLY, unchanged_seeds),
        ("models+tests", [], []),
    ):
        wh.execute("delete from raw.bars; delete from raw.corporate_actions")
        wh.upsert(bars[bars["ts"] < LAST_DAY], actions[ex_date < LAST_DAY.tz_localize(None)])
        full = _dbt(env, target_path, "--full-refresh", *extra)
        wh.upsert(bars[bars["ts"] >= LAST_DAY], actions[ex_date >= LAST_DAY.tz_localize(None)])
        full_nodes = dict(_dbt.node_times)
        incremental = _dbt(env, target_path, *extra, *incremental_extra)
        rows.append((kind, mode, full[1], incremental[1], incremental[1] / full[1], incremental[2]))
        if mode == "models":
            for node in ("fct_features_daily.v1", "fct_features_daily.v2"):
                f, i = full_nodes.get(node, float("nan")), _dbt.node_times.get(node, float("nan"))
                rows.append((kind, node.replace("fct_features_daily.", "features "), f, i, i / f, ""))
    shutil.rmtree(target_path, ignore_errors=True)
    if kind != "duckdb":
        mf.pg_drop_database(os.environ["MWH_PG_DATABASE" if kind == "timescale" else "MWH_PG_PLAIN_DATABASE"])
    return rows


def main(argv: list[str]) -> None:
    if "DBT_PROFILES_DIR" not in os.environ:
        profiles = Path(tempfile.mkdtemp(prefix="bench_profiles_"))
        shutil.copyfile(mf.REPO / "profiles.example.yml", profiles / "profiles.yml")
        os.environ["DBT_PROFILES_DIR"] = str(profiles)
    kinds = argv or ["duckdb", "timescale", "postgres"]
    print(f"{'target':<10} {'build':<19} {'full s':>7} {'incr s':>7} {'incr/full':>9}")
    for kind in kinds:
        for kind_, mode, full, incr, ratio, _ in bench(kind):
            print(f"{kind_:<10} {mode:<19} {full:>7.1f} {incr:>7.1f} {ratio:>9.0%}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
