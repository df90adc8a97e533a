"""The real Binance capture (data/sample/microstructure/) and trimmed or altered copies of it for tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CAPTURE = REPO / "data" / "sample" / "microstructure" / "usdm_btcusdt_20240808.gz"
# The first 40,000 lines: the REST snapshot (line 55), ~2.8k diffs, ~9k trades, 2.5 minutes; enough for
# complete 1m bars and quick loads on a shared machine.
HEAD_LINES = 40_000


def lines(n: int | None = HEAD_LINES) -> list[str]:
    with gzip.open(CAPTURE, "rt") as fh:
        out = fh.read().split("\n")
    out = [x for x in out if x]
    return out if n is None else out[:n]


def write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def kind(line: str) -> str:
    data = json.loads(line.split(" ", 1)[1])
    if "lastUpdateId" in data:
        return "snapshot"
    return data["data"]["e"]


def counts(rows: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        k = kind(r)
        out[k] = out.get(k, 0) + 1
    return out
