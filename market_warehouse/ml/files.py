"""Reading ML record files: JSON Lines (one object per line) or CSV with a header, optionally gzipped.
Values stay as read (strings from CSV, JSON values from JSONL); coerce.py types them. No database code.

A JSONL line that is not a JSON object is not fatal: it comes back with its reason so the batch can
quarantine it and load the rest. A file that cannot be read at all raises FileFormatError.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from market_warehouse.loaders.sources.common import FormatError, read_text


class FileFormatError(FormatError):
    """The file is not JSONL/CSV of records."""


@dataclass
class RecordFile:
    source: str
    rows: pd.DataFrame  # one row per record, columns as read (object dtype)
    row_numbers: pd.Series  # 1-based line numbers (CSV: the header is line 1)
    read_errors: pd.Series  # "" or why the line could not be read


def detect_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    raise FileFormatError(f"{path}: cannot tell the format from the name; use .jsonl or .csv "
                          f"(optionally .gz), or pass --file-format")


def read_jsonl(path: Path, text: str | None = None) -> RecordFile:
    text = read_text(path) if text is None else text
    records: list[dict] = []
    numbers: list[int] = []
    errors: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append({"_line": line[:500]})
            errors.append(f"not valid JSON ({exc.msg} at column {exc.colno})")
        else:
            if isinstance(obj, dict):
                records.append(obj)
                errors.append("")
            else:
                records.append({"_line": line[:500]})
                errors.append("not a JSON object")
        numbers.append(n)
    if not records:
        raise FileFormatError(f"{path}: no records")
    if all(e for e in errors):
        raise FileFormatError(f"{path}: not JSON Lines: line {numbers[0]}: {errors[0]}")
    rows = pd.DataFrame.from_records(records).astype(object)
    return RecordFile(str(path), rows, pd.Series(numbers, index=rows.index),
                      pd.Series(errors, index=rows.index, dtype=object))


def read_csv(path: Path, text: str | None = None) -> RecordFile:
    text = read_text(path) if text is None else text
    head = text.lstrip()[:1]
    if head in ("{", "["):
        raise FileFormatError(f"{path}: not CSV: the file starts with JSON (use a .jsonl name)")
    delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration as exc:
        raise FileFormatError(f"{path}: empty") from exc
    if len(set(header)) != len(header) or any(not h for h in header):
        raise FileFormatError(f"{path}: header has blank or repeated column names: {header}")
    records, numbers, errors = [], [], []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        line = reader.line_num
        if len(values) != len(header):
            records.append({"_line": delimiter.join(values)[:500]})
            errors.append(f"{len(values)} fields where the header has {len(header)}")
        else:
            records.append(dict(zip(header, values)))
            errors.append("")
        numbers.append(line)
    if not records:
        raise FileFormatError(f"{path}: header only, no records")
    rows = pd.DataFrame.from_records(records, columns=None).astype(object)
    rows = rows.where(rows.notna(), None)
    return RecordFile(str(path), rows, pd.Series(numbers, index=rows.index),
                      pd.Series(errors, index=rows.index, dtype=object))


def read_records(path: str | Path, file_format: str | None = None) -> RecordFile:
    path = Path(path)
    fmt = file_format or detect_format(path)
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "csv":
        return read_csv(path)
    raise FileFormatError(f"{path}: unknown file format {fmt!r}; jsonl or csv")
