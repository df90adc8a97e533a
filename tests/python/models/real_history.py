"""A gappy real history: Alpha Vantage files of the bundled sample with sessions removed, the way real
vendor files miss a few sessions (issue 7: 27 sessions across 5 symbols, each a single day or two).

The files are rewritten line by line (the removed sessions' lines dropped, every other byte kept), so
the loader reads them exactly as it reads the vendor's. Sessions carrying a dividend or split, or
followed by one, are never removed (the corporate action rides on the bar's row), and neither are the
first and last bars (a gap is only a gap inside a symbol's history).
"""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ALPHAVANTAGE = REPO / "data" / "sample" / "alphavantage"
FILE_SUFFIX = "-T-2021-04-21.csv.gz"

# symbol -> lengths of the runs of consecutive sessions to remove (1 = a single day, 2 = two days).
GAPS: dict[str, list[int]] = {
    "AAPL": [1, 1, 1, 1, 1, 2],  # 7 sessions, 6 runs
    "F": [1, 1, 1, 2],           # 5 sessions, 4 runs
    "JPM": [1, 1, 1, 1],         # 4 sessions, 4 runs
    "KO": [1, 1, 2, 2],          # 6 sessions, 4 runs
    "MSFT": [1, 1, 1, 2],        # 5 sessions, 4 runs
}
# symbols loaded complete beside them
COMPLETE = ["IBM", "XOM"]


def sample_path(symbol: str) -> Path:
    return ALPHAVANTAGE / f"DA-{symbol}{FILE_SUFFIX}"


def _read(path: Path) -> tuple[str, list[str]]:
    with gzip.open(path, "rt", newline="") as f:
        lines = f.read().splitlines(keepends=True)
    return lines[0], lines[1:]


def _has_action(line: str, columns: list[str]) -> bool:
    row = dict(zip(columns, line.strip().split(",")))
    return float(row["dividend_amount"]) != 0 or float(row["split_coefficient"]) != 1


def choose_gaps(symbol: str, runs: list[int]) -> list[list[date]]:
    """Runs of consecutive sessions of `symbol`'s file to remove, spread evenly over its history."""
    header, lines = _read(sample_path(symbol))
    columns = header.strip().split(",")
    rows = sorted(lines, key=lambda line: line.split(",", 1)[0])  # oldest first
    dates = [date.fromisoformat(line.split(",", 1)[0]) for line in rows]
    chosen: list[list[date]] = []
    step = len(rows) // (len(runs) + 1)
    for i, length in enumerate(runs, start=1):
        start = i * step
        # the run, the bar after it (whose previous close changes) must carry no corporate action
        while any(_has_action(rows[j], columns) for j in range(start, start + length + 1)):
            start += 1
        assert start > 0 and start + length < len(rows) - 1, (symbol, start)
        chosen.append(dates[start:start + length])
    return chosen


def write_gappy_history(out_dir: Path, gaps: dict[str, list[int]] | None = None,
                        complete: list[str] | None = None) -> tuple[list[Path], dict[str, list[list[date]]]]:
    """Write the sample's files for `gaps` (with sessions removed) and `complete` (unchanged) into
    out_dir under their vendor names. Returns the files and, per symbol, the removed runs."""
    gaps = GAPS if gaps is None else gaps
    complete = COMPLETE if complete is None else complete
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, removed = [], {}
    for symbol, runs in gaps.items():
        chosen = choose_gaps(symbol, runs)
        drop = {d.isoformat() for run in chosen for d in run}
        header, lines = _read(sample_path(symbol))
        kept = [line for line in lines if line.split(",", 1)[0] not in drop]
        assert len(kept) == len(lines) - len(drop), symbol
        out = out_dir / sample_path(symbol).name
        with gzip.open(out, "wt", newline="") as f:
            f.write(header + "".join(kept))
        paths.append(out)
        removed[symbol] = chosen
    for symbol in complete:
        out = out_dir / sample_path(symbol).name
        out.write_bytes(sample_path(symbol).read_bytes())
        paths.append(out)
    return paths, removed


if __name__ == "__main__":  # python tests/python/models/real_history.py OUT_DIR
    import sys

    files, gone = write_gappy_history(Path(sys.argv[1]))
    for sym, runs in gone.items():
        print(sym, [[d.isoformat() for d in run] for run in runs])
    print(sum(len(run) for runs in gone.values() for run in runs), "sessions removed;", len(files), "files")
