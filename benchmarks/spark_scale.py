"""The Spark side of the scale run: load generated bars into the local Spark target and build on it.

`run(n_daily_symbols, minute_bars, work)` is what the scale bench (`benchmarks/scale/`, `--engine spark`)
calls: it generates the same deterministic data as the other engines (benchmarks.scale.generate), then in
a child process (one SparkSession per process: its warehouse folder and metastore are fixed at start)
loads it with the Spark sink and runs `dbt build --select SELECTION` on the spark target. It returns the
figures as a dict; a build that fails returns build_ok False and dbt's first error line, never raises.

    .venv/bin/python -m benchmarks.spark_scale --daily-symbols 40 --work /tmp/spark-scale
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The market models that build on Spark (docs/spark.md), with the seeds they read.
SEEDS = "trading_sessions exchanges symbols known_data_issues"
DEFAULT_SELECTION = ("stg_market__bars stg_market__corporate_actions int_market__trading_sessions "
                     "int_market__bars_rolled_up_5m int_market__bars_rolled_up_15m int_market__bars_rolled_up_1h "
                     "int_market__bars_rolled_up_1d int_market__bars_unioned_1d "
                     "int_market__adjustment_events int_market__adjustment_factors fct_bars_1d fct_bars_1h fct_bars_1m "
                     "fct_features_daily fct_features_hourly fct_labels_daily fct_labels_hourly "
                     "fct_training_set_daily fct_bar_gaps")


def run(n_daily_symbols: int, minute_bars: int = 0, work: str | Path = "/tmp/mwh-spark-scale",
        selection: str = DEFAULT_SELECTION, driver_memory: str = "4g", generate: bool = True) -> dict:
    """Generate (unless `generate` is False and `work`/data exists), load and build on Spark local.
    Keys: engine, daily_symbols, daily_bars, minute_bars, load_s, rows_loaded, seed_s, build_s, build_ok,
    build_error, wall_s."""
    work = Path(work)
    data = work / "data"
    started = time.perf_counter()
    manifest = {}
    if generate:
        from benchmarks.scale.generate import generate as make_data

        manifest = make_data(data, n_daily_symbols, minute_bars)
    elif (data / "manifest.json").exists():
        manifest = json.loads((data / "manifest.json").read_text())
    env = {**os.environ, "MWH_TARGET": "spark", "MWH_SPARK_DIR": str(work / "warehouse"),
           "MWH_SPARK_DRIVER_MEMORY": driver_memory, "DBT_TARGET_PATH": str(work / "target"),
           "DBT_LOG_PATH": str(work / "logs")}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.spark_scale", "--child", "--work", str(work),
                           "--selection", selection], env=env, cwd=REPO, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    result = json.loads(lines[-1]) if lines else {
        "load_s": None, "rows_loaded": 0, "build_s": None, "build_ok": False,
        "build_error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return {"engine": "spark", "daily_symbols": len(manifest.get("daily_symbols", [])) or n_daily_symbols,
            "daily_bars": manifest.get("daily_bars"), "minute_bars": manifest.get("minute_bars"),
            **result, "wall_s": round(time.perf_counter() - started, 1)}


def _child(work: Path, selection: str) -> dict:
    """In the child process: load every generated file, then build `selection`."""
    from market_warehouse.dbt import run_dbt
    from market_warehouse.loaders.pipeline import load_files
    from market_warehouse.loaders.sinks import open_sink

    data = work / "data"
    out: dict = {}
    t0 = time.perf_counter()
    sink = open_sink("spark")
    rows = 0
    for sub, fmt in (("daily", "alphavantage"), ("minute", "binance-klines")):
        files = sorted((data / sub).glob("*.csv"))
        if files:
            rows += sum(r.loaded + r.replaced for r in load_files(sink, files, fmt))
    out["load_s"] = round(time.perf_counter() - t0, 1)
    out["rows_loaded"] = rows
    t0 = time.perf_counter()
    seeded = run_dbt(["seed", "--select", SEEDS], target="spark", quiet=True)
    out["seed_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    res = run_dbt(["build", "--select", selection], target="spark", quiet=True) if seeded.success else seeded
    out["build_s"] = round(time.perf_counter() - t0, 1)
    out["build_ok"] = bool(res.success)
    out["build_error"] = None
    if not res.success:
        errors = [str(getattr(r, "message", "") or "") for r in (getattr(res.result, "results", None) or [])
                  if str(getattr(r, "status", "")) in ("error", "fail")]
        text = errors[0] if errors else str(res.exception or "dbt build failed")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        out["build_error"] = " | ".join(lines[:2])[:300]  # "Compilation Error in model X | the reason"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--daily-symbols", type=int, default=40)
    ap.add_argument("--minute-bars", type=int, default=0)
    ap.add_argument("--work", default="/tmp/mwh-spark-scale")
    ap.add_argument("--selection", default=DEFAULT_SELECTION)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(Path(args.work), args.selection)))
        return 0
    print(json.dumps(run(args.daily_symbols, args.minute_bars, args.work, args.selection), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
