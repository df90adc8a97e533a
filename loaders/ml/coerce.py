"""Records as read (dicts from JSONL or the API, strings from CSV) -> a frame typed like a raw table,
with the reasons a field could not be converted. Pure: no I/O.

Times: ISO 8601 strings (an offset is honoured; a naive time is taken as UTC), datetime objects, or
epoch seconds. JSON fields: objects/arrays, or a string holding JSON (CSV cells); stored with sorted keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from loaders.schema import AUDIT_COLUMNS, Table


@dataclass
class Coerced:
    frame: pd.DataFrame  # the table's data columns, typed; NaN/NaT/None where a field did not parse
    errors: pd.Series  # "" or "; "-joined reasons, same index


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if value is pd.NaT:
        return True
    return isinstance(value, str) and value.strip() == ""


def to_timestamp(value: object) -> pd.Timestamp:
    """One value -> a UTC Timestamp; raises ValueError with a short reason."""
    if isinstance(value, bool):
        raise ValueError("not a time")  # noqa: TRY004 - a reason for quarantine, not a bug
    if isinstance(value, (int, float, np.integer, np.floating)):
        ts = pd.Timestamp(float(value), unit="s", tz="UTC")
    else:
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError) as exc:
            raise ValueError("not a time") from exc
    if ts is pd.NaT:
        raise ValueError("not a time")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def to_float(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("not a number")  # noqa: TRY004 - a reason for quarantine, not a bug
    try:
        out = float(value)
    except (ValueError, TypeError) as exc:
        raise ValueError("not a number") from exc
    if math.isnan(out) or math.isinf(out):
        raise ValueError("not a finite number")
    return out


def to_int(value: object) -> int:
    out = to_float(value)
    if out != int(out):
        raise ValueError("not a whole number")
    return int(out)


def to_bool(value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "t", "1", "yes", "y"):
        return True
    if text in ("false", "f", "0", "no", "n"):
        return False
    raise ValueError("not true/false")


def to_json(value: object) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError("not valid JSON") from exc
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, (dict, list)):
        raise ValueError("not a JSON object or array")  # noqa: TRY004 - a reason for quarantine
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except ValueError as exc:
        raise ValueError("holds NaN or infinity, which JSON cannot") from exc


_CONVERT = {
    "timestamp": to_timestamp,
    "double": to_float,
    "bigint": to_int,
    "integer": to_int,
    "boolean": to_bool,
    "json": to_json,
    "text": lambda v: str(v).strip(),
}

_EMPTY = {"timestamp": pd.NaT, "double": np.nan}


def coerce(raw: pd.DataFrame, table: Table, defaults: dict | None = None,
           optional: Iterable[str] = ()) -> Coerced:
    """Type every data column of `table` from `raw` (columns absent from `raw` are null, or the default).
    Required columns that end up null are reported as missing, except `optional` ones (filled later)."""
    defaults = defaults or {}
    optional = set(optional)
    errors = pd.Series("", index=raw.index, dtype=object)
    out: dict[str, list] = {}
    for col in table.columns:
        if col.name in AUDIT_COLUMNS:
            continue
        convert = _CONVERT[col.type]
        source = raw[col.name] if col.name in raw.columns else pd.Series(None, index=raw.index, dtype=object)
        values: list = []
        for idx, value in zip(raw.index, source.tolist()):
            if _blank(value):
                value = defaults.get(col.name)
            if _blank(value):
                values.append(_EMPTY.get(col.type))
                if not col.nullable and col.name not in optional:
                    errors[idx] = _join(errors[idx], f"missing {col.name}")
                continue
            try:
                values.append(convert(value))
            except ValueError as exc:
                values.append(_EMPTY.get(col.type))
                errors[idx] = _join(errors[idx], f"{col.name} {value!r}: {exc}")
        out[col.name] = values
    frame = pd.DataFrame(out, index=raw.index)
    for col in table.columns:
        if col.name not in frame.columns:
            continue
        if col.type == "timestamp":
            frame[col.name] = pd.to_datetime(frame[col.name], utc=True)
        elif col.type == "double":
            frame[col.name] = frame[col.name].astype("float64")
        elif col.type in ("bigint", "integer"):
            frame[col.name] = frame[col.name].astype("Int64")
        elif col.type == "boolean":
            frame[col.name] = frame[col.name].astype("boolean")
    return Coerced(frame=frame, errors=errors)


def _join(current: str, reason: str) -> str:
    return reason if not current else f"{current}; {reason}"


def records_json(raw: pd.DataFrame, index: pd.Index) -> list[str]:
    """The rows as read, as JSON text (for quarantine.record)."""
    def clean(v: object) -> object:
        if _blank(v):
            return None
        if isinstance(v, (pd.Timestamp,)):
            return v.isoformat()
        if isinstance(v, np.generic):
            return v.item()
        return v
    return [json.dumps({k: clean(v) for k, v in row.items()}, ensure_ascii=False, default=str)
            for row in raw.loc[index].to_dict(orient="records")]
