"""Deterministic scale data from real vendor files (`make bench-scale`, `python -m benchmarks.scale.generate`).

Every generated symbol is a real symbol's history under a new name (`AAPL_007`, `FIL012USDT`), its
prices rescaled by a per-symbol factor and its volumes by another, both drawn from a fixed seed, so two
runs write the same bytes. Dates and times are the vendor's own: daily bars keep the NYSE sessions of
the source (holidays, half-days and listing dates included), minute bars Binance's 24/7 clock with its
real gaps. Corporate actions stay with the renamed symbol (dividends rescaled with the prices, split
ratios unchanged), so adjusted prices and the vendor's adjusted close agree as they do in the source.

Sources: `MWH_SHARED_DATA` (a folder with `daily/alphavantage_sp500/` and `intraday/binance_klines/`;
default `../shared/data` beside the repository when it exists), else the trimmed copies in
`data/sample/` (41 Alpha Vantage files, FILUSDT's two months), so a fresh clone can run it.

The last session of every daily symbol is held back into `new_session/`: the benchmark's incremental
build loads it after the full build. Minute symbols hold back their last UTC day the same way (from the
newest month of each source symbol, e.g. 2026-02-28 of FILUSDT-1m-2026-02): `new_session/` then also
holds one Binance file per minute symbol, named as its month's file.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parents[2]
SEED = 20261121
AV_HEADER = ("timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient")
KL_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
             "taker_buy_quote_volume,ignore")

# name -> (daily symbols, minute bars wanted); minute symbols follow from the bars.
SIZES = {
    "small": (40, 160_000),
    "daily": (1000, 0),
    "minute": (0, 10_000_000),
    "scale": (1000, 10_000_000),
}


class GeneratorError(Exception):
    """A source folder without usable files, or an unknown size."""


@dataclass(frozen=True)
class Sources:
    root: Path
    daily: list[Path]
    minute: list[Path]


def _read(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8-sig")


def find_sources(root: str | Path | None = None) -> Sources:
    """The real files to build from: `root`, else MWH_SHARED_DATA, else ../shared/data, else data/sample."""
    candidates = []
    if root is not None:
        candidates.append(Path(root))
    elif os.environ.get("MWH_SHARED_DATA"):
        candidates.append(Path(os.environ["MWH_SHARED_DATA"]))
    else:
        candidates += [REPO.parent / "shared" / "data", REPO / "data" / "sample"]
    for base in candidates:
        daily_dir = next((d for d in (base / "daily" / "alphavantage_sp500", base / "alphavantage")
                          if d.is_dir()), None)
        minute_dir = next((d for d in (base / "intraday" / "binance_klines", base / "binance_klines")
                           if d.is_dir()), None)
        if daily_dir is None and minute_dir is None:
            if root is not None or os.environ.get("MWH_SHARED_DATA"):
                raise GeneratorError(f"{base}: no daily/alphavantage_sp500/ or intraday/binance_klines/ "
                                     f"folder (set MWH_SHARED_DATA to the shared data folder)")
            continue
        # Only files that are what they say: the vendor's JSON error body saved as .csv is skipped.
        daily = sorted(p for p in (daily_dir.glob("DA-*.csv*") if daily_dir else [])
                       if _read(p).startswith(AV_HEADER))
        minute = sorted(minute_dir.glob("*-1m-*.csv*")) if minute_dir else []
        return Sources(base, daily, minute)
    raise GeneratorError("no source data: set MWH_SHARED_DATA or keep data/sample/ in the repository")


def _factors(seed: int, kind: str, i: int) -> tuple[float, float]:
    """Price and volume factors of generated symbol i (deterministic per seed, kind and i)."""
    rng = np.random.default_rng([seed, 1 if kind == "daily" else 2, i])
    price = float(np.exp(rng.uniform(np.log(0.2), np.log(5.0))))
    volume = float(rng.uniform(0.5, 2.0))
    return price, volume


def _av_symbol(path: Path) -> str:
    return re.fullmatch(r"DA-(.+)-T-\d{4}-\d{2}-\d{2}\.csv(?:\.gz)?", path.name)[1]


def _write_csv(path: Path, header: str, table: pa.Table) -> None:
    with path.open("wb") as f:
        f.write((header + "\n").encode())
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def _daily_table(text: str, price: float, volume: float) -> pa.Table:
    t = pacsv.read_csv(pa.py_buffer(text.encode()), convert_options=pacsv.ConvertOptions(
        column_types={"timestamp": pa.string(), "volume": pa.float64()}))
    cols = {"timestamp": t["timestamp"]}
    for c in ("open", "high", "low", "close"):
        cols[c] = pa.array(np.round(t[c].to_numpy() * price, 4))
    cols["adjusted_close"] = pa.array(np.round(t["adjusted_close"].to_numpy() * price, 8))
    cols["volume"] = pa.array(np.round(t["volume"].to_numpy() * volume).astype("int64"))
    cols["dividend_amount"] = pa.array(np.round(t["dividend_amount"].to_numpy() * price, 6))
    cols["split_coefficient"] = t["split_coefficient"]
    return pa.table(cols)


def _minute_table(text: str, price: float, volume: float) -> pa.Table:
    has_header = text.startswith("open_time")
    names = KL_HEADER.split(",")
    t = pacsv.read_csv(pa.py_buffer(text.encode()), read_options=pacsv.ReadOptions(
        column_names=None if has_header else names, skip_rows=0))
    cols = {"open_time": t["open_time"]}
    for c in ("open", "high", "low", "close"):
        cols[c] = pa.array(np.round(t[c].to_numpy() * price, 6))
    cols["volume"] = pa.array(np.round(t["volume"].to_numpy() * volume, 3))
    cols["close_time"] = t["close_time"]
    cols["quote_volume"] = pa.array(np.round(t["quote_volume"].to_numpy() * price * volume, 4))
    cols["count"] = t["count"]
    cols["taker_buy_volume"] = pa.array(np.round(t["taker_buy_volume"].to_numpy() * volume, 3))
    cols["taker_buy_quote_volume"] = pa.array(
        np.round(t["taker_buy_quote_volume"].to_numpy() * price * volume, 4))
    cols["ignore"] = t["ignore"]
    return pa.table(cols)


def generate(out: str | Path, daily_symbols: int, minute_bars: int, seed: int = SEED,
             sources: Sources | None = None, hold_back: bool = True) -> dict:
    """Write `daily_symbols` Alpha Vantage files and about `minute_bars` Binance 1m bars under `out`
    (daily/, new_session/, minute/) and a manifest.json; return the manifest."""
    src = sources or find_sources()
    out = Path(out)
    if daily_symbols and not src.daily:
        raise GeneratorError(f"{src.root}: no Alpha Vantage daily files")
    if minute_bars and not src.minute:
        raise GeneratorError(f"{src.root}: no Binance 1m files")
    for sub in ("daily", "new_session", "minute"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for old in (out / sub).iterdir():
            old.unlink()
    manifest = {"seed": seed, "source": str(src.root), "daily_files": 0, "daily_bars": 0,
                "new_session_bars": 0, "dividends": 0, "splits": 0, "minute_files": 0, "minute_bars": 0,
                "minute_new_session_bars": 0,
                "daily_symbols": [], "minute_symbols": []}  # minute: one entry per file

    texts = {p: _read(p) for p in src.daily} if daily_symbols else {}
    for i in range(daily_symbols):
        path = src.daily[i % len(src.daily)]
        symbol = f"{_av_symbol(path).replace('.', '')}_{i // len(src.daily):03d}"
        price, volume = _factors(seed, "daily", i)
        table = _daily_table(texts[path], price, volume)
        name = f"DA-{symbol}-T-2021-04-21.csv"
        if hold_back and table.num_rows > 1:
            _write_csv(out / "new_session" / name, AV_HEADER, table.slice(table.num_rows - 1))
            manifest["new_session_bars"] += 1
            table = table.slice(0, table.num_rows - 1)
        _write_csv(out / "daily" / name, AV_HEADER, table)
        manifest["daily_files"] += 1
        manifest["daily_bars"] += table.num_rows
        div = table["dividend_amount"].to_numpy()
        split = table["split_coefficient"].to_numpy()
        manifest["dividends"] += int((div > 0).sum())
        manifest["splits"] += int(((split > 0) & (split != 1)).sum())
        manifest["daily_symbols"].append(symbol)

    if minute_bars:
        mtexts = {p: _read(p) for p in src.minute}
        newest = {}  # source symbol -> its newest month's file: the one whose last UTC day is held back
        for p in src.minute:
            base, _, month = p.name.split(".")[0].partition("-1m-")
            newest[base] = max(newest.get(base, p), p, key=lambda q: q.name.split(".")[0].partition("-1m-")[2])
        i = 0
        while manifest["minute_bars"] < minute_bars:
            path = src.minute[i % len(src.minute)]
            base, _, month = path.name.split(".")[0].partition("-1m-")
            symbol = f"{base.removesuffix('USDT')}{i // len(src.minute):03d}USDT"
            price, volume = _factors(seed, "minute", i)
            table = _minute_table(mtexts[path], price, volume)
            name = f"{symbol}-1m-{month}.csv"
            if hold_back and newest[base] == path and table.num_rows > 1:
                day = table["open_time"].to_numpy() // 86_400_000  # UTC days (Binance's milliseconds)
                keep = int(np.searchsorted(day, day[-1]))  # rows are in time order
                if keep > 0:
                    _write_csv(out / "new_session" / name, KL_HEADER, table.slice(keep))
                    manifest["minute_new_session_bars"] += table.num_rows - keep
                    table = table.slice(0, keep)
            _write_csv(out / "minute" / name, KL_HEADER, table)
            manifest["minute_files"] += 1
            manifest["minute_bars"] += table.num_rows
            manifest["minute_symbols"].append(symbol)
            i += 1
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def digest(folder: str | Path) -> str:
    """sha256 over every generated file's name and bytes (what determinism means here)."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*.csv")):
        h.update(str(p.relative_to(folder)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--daily-symbols", type=int, help="override the size's daily symbol count")
    ap.add_argument("--minute-bars", type=int, help="override the size's 1-minute bar count")
    ap.add_argument("--out", help="folder (default .bench/scale/<size>)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--source", help="source folder (default MWH_SHARED_DATA, ../shared/data, data/sample)")
    args = ap.parse_args(argv)
    daily, minute = SIZES[args.size]
    daily = args.daily_symbols if args.daily_symbols is not None else daily
    minute = args.minute_bars if args.minute_bars is not None else minute
    out = Path(args.out) if args.out else REPO / ".bench" / "scale" / args.size
    try:
        m = generate(out, daily, minute, seed=args.seed, sources=find_sources(args.source))
    except GeneratorError as exc:
        print(f"bench-scale: {exc}", file=sys.stderr)
        return 2
    print(f"generated in {out} from {m['source']} (seed {m['seed']}): {m['daily_files']:,} daily files, "
          f"{m['daily_bars']:,} daily bars (+{m['new_session_bars']:,} held back for the new session), "
          f"{m['dividends']:,} dividends, {m['splits']:,} splits; {m['minute_files']:,} 1m files, "
          f"{m['minute_bars']:,} 1m bars (+{m['minute_new_session_bars']:,} held back)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
