"""`make bench`: load throughput on every target (and any other benchmark sections registered
below), printed as figures. Starts the local TimescaleDB (scripts/timescaledb.sh) unless
MWH_TEST_PG_HOST names your own server."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import load
from benchmarks.load import PgServer

REPO = Path(__file__).resolve().parents[1]


def pg_server() -> PgServer | None:
    if os.environ.get("MWH_TEST_PG_HOST"):
        return PgServer(os.environ["MWH_TEST_PG_HOST"], int(os.environ.get("MWH_TEST_PG_PORT", "5432")),
                        os.environ.get("MWH_TEST_PG_USER", "postgres"),
                        os.environ.get("MWH_TEST_PG_PASSWORD", ""))
    if os.geteuid() != 0:
        print("bench: not root and MWH_TEST_PG_HOST unset: PostgreSQL figures skipped", file=sys.stderr)
        return None
    subprocess.run(["bash", str(REPO / "scripts" / "timescaledb.sh"), "up"], check=True)
    return PgServer("127.0.0.1", int(os.environ.get("MWH_PG_PORT", "5433")), "postgres", "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["load", "build", "timescale", "read", "ticks", "scale"],
                        help="run one section (scale: `make bench-scale`, only when asked)")
    args = parser.parse_args(argv)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if args.only == "scale":  # the seeds' scale: long, so never part of the default run
        from benchmarks.scale import run as scale
        return scale.main([])
    server = pg_server()
    if args.only in (None, "load"):
        for line in load.run(server, repeat=args.repeat):
            print(line, flush=True)
    if args.only in (None, "build"):
        try:
            from benchmarks import build
        except ImportError:
            print("build: no build benchmark yet")
        else:
            for line in build.run(server):
                print(line, flush=True)
    if args.only in (None, "timescale"):  # full edition: compression and continuous aggregates
        from benchmarks import timescale
        for line in timescale.run(server):
            print(line, flush=True)
    if args.only in (None, "ticks"):  # tick events/s vs COPY (market_warehouse/loaders/ticks.py)
        from benchmarks import ticks
        for line in ticks.run(server):
            print(line, flush=True)
    if args.only in (None, "read"):  # read API latency (market_warehouse/read.py)
        from benchmarks import read_api
        for line in read_api.run(server):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
