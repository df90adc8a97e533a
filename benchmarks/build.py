"""dbt build times: full vs incremental after one new day, on each target.

The measurement itself lives with the market model tests' fixtures
(tests/python/models/bench_market.py); this runs it for `make bench`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "tests" / "python" / "models" / "bench_market.py"


def run(server) -> list[str]:
    targets = ["duckdb"] + (["timescale", "postgres"] if server is not None else [])
    proc = subprocess.run([sys.executable, str(SCRIPT), *targets], capture_output=True, text=True)
    lines = ["build: " + ", ".join(targets)] + proc.stdout.rstrip().splitlines()
    if proc.returncode != 0:
        lines.append(f"build benchmark failed: {proc.stderr[-2000:]}")
    return lines
