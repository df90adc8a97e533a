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

from market_warehouse.loaders.schema import AUDIT_COLUMNS, Table


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
        raise ValueError("not a time")
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
        raise ValueError("not a number")
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
        raise ValueError("not a JSON object or array")
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


def _blank_mask(values: pd.Series) -> pd.Series:
    """Vectorised _blank: null, NaN, NaT, or a string of spaces."""
    mask = values.isna()
    strings = values.map(type).eq(str)
    if strings.any():
        mask |= strings & (values.where(strings, "x").str.strip() == "")
    return mask


def _fast(values: pd.Series, kind: str) -> pd.Series | None:
    """Vectorised conversion of non-blank values; NaN/NaT where a value needs the careful path.
    None: this type has no fast path (or these values do not suit it)."""
    if kind == "timestamp":
        if not values.map(type).eq(str).all():
            return None
        return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    if kind in ("double", "bigint", "integer"):
        if values.map(type).isin((bool, np.bool_)).any():
            return None  # a boolean is not a number here; the careful path says so
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        numbers[~np.isfinite(numbers)] = np.nan
        if kind != "double":
            numbers[numbers != np.floor(numbers)] = np.nan
        return numbers
    if kind == "text":
        if not values.map(type).eq(str).all():
            return None
        return values.str.strip()
    return None


_DTYPES = {"timestamp": "datetime64[ns, UTC]", "double": "float64"}


def coerce(raw: pd.DataFrame, table: Table, defaults: dict | None = None,
           optional: Iterable[str] = ()) -> Coerced:
    """Type every data column of `table` from `raw` (columns absent from `raw` are null, or the default).
    Required columns that end up null are reported as missing, except `optional` ones (filled later).
    Times and numbers convert column-wise; only values that fail (or other types) go value by value,
    which is also where the reason for a failure is worded."""
    defaults = defaults or {}
    optional = set(optional)
    errors = pd.Series("", index=raw.index, dtype=object)
    frame = pd.DataFrame(index=raw.index)
    for col in table.columns:
        if col.name in AUDIT_COLUMNS:
            continue
        source = (raw[col.name].astype(object) if col.name in raw.columns
                  else pd.Series(None, index=raw.index, dtype=object))
        blank = _blank_mask(source)
        if blank.any() and defaults.get(col.name) is not None:
            source = source.where(~blank, defaults[col.name])
            blank = _blank_mask(source)
        if blank.any() and not col.nullable and col.name not in optional:
            errors[blank] = [_join(e, f"missing {col.name}") for e in errors[blank]]
        present = source[~blank]
        converted = _fast(present, col.type) if len(present) else None
        column = pd.Series(None, index=raw.index, dtype=_DTYPES.get(col.type, object))
        if converted is None:
            todo = present
        else:
            ok = converted.notna()
            column.loc[converted.index[ok]] = converted[ok]
            todo = present[~ok]
        convert = _CONVERT[col.type]
        done: dict = {}
        for idx, value in todo.items():
            try:
                done[idx] = convert(value)
            except ValueError as exc:
                errors[idx] = _join(errors[idx], f"{col.name} {value!r}: {exc}")
        if done:
            column.loc[list(done)] = pd.Series(list(done.values()), index=list(done), dtype=column.dtype)
        if col.type in ("bigint", "integer"):
            frame[col.name] = pd.array([None if pd.isna(v) else int(v) for v in column], dtype="Int64")
        elif col.type == "boolean":
            frame[col.name] = column.astype("boolean")
        else:
            frame[col.name] = column
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
