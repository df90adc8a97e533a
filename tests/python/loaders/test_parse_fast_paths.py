"""The loader's shortcuts give the answers of the full checks they skip (pure Python, no database).

- A number or date column is first cast as written; only when a field does not cast (a blank, a
  space, 'NaN', a date with an offset) do the trimmed, field-by-field checks run, with their reasons.
- A group proves "no key repeats" in one pass (every series one run of rows, times strictly rising
  or falling); anything else is hashed, so a repeat far apart in a file is still found.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from market_warehouse.loaders.sources.alphavantage import parse_many
from market_warehouse.loaders.sources.common import FieldParser
from market_warehouse.loaders.validate import _no_repeated_key, validate_many

HEADER = "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient"


def _raw(values: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"x": pd.array(values, dtype=pd.ArrowDtype(pa.string()))})


def test_numbers_cast_as_written_or_checked_field_by_field():
    clean = FieldParser(_raw(["1.5", "2", "1e3", "-0.25"]))
    assert clean.number("x").tolist() == [1.5, 2.0, 1000.0, -0.25]
    assert clean.errors.tolist() == ["", "", "", ""]

    mixed = FieldParser(_raw([" 1.5", "NaN", "", "abc", "7 "]))
    values = mixed.number("x")
    assert values.iloc[0] == 1.5 and values.iloc[4] == 7.0  # spaces trimmed, as before
    assert values.iloc[1:4].isna().all()
    assert mixed.errors.tolist() == ["", "missing x", "missing x", "unparsable number in x: 'abc'", ""]

    optional = FieldParser(_raw(["nan", "3"]))
    assert optional.number("x", required=False).iloc[1] == 3.0
    assert optional.errors.tolist() == ["", ""]


def test_session_dates_cast_as_written_or_trimmed():
    clean = FieldParser(_raw(["2021-04-21", "2021-04-20"]))
    assert clean.times("x", date_label=True).tolist() == [pd.Timestamp("2021-04-21", tz="UTC"),
                                                          pd.Timestamp("2021-04-20", tz="UTC")]
    mixed = FieldParser(_raw([" 2021-04-21", "2023-04-14 00:00+09:00", "2021-13-01", ""]))
    ts = mixed.times("x", date_label=True)
    assert ts.iloc[0] == pd.Timestamp("2021-04-21", tz="UTC")
    assert ts.iloc[1] == pd.Timestamp("2023-04-14", tz="UTC")  # the session date, not 13 Apr 15:00 UTC
    assert ts.iloc[2:].isna().all()
    assert mixed.errors.tolist() == ["", "", "unparsable time: '2021-13-01'", "missing time"]


def _ints(part, symbol, ts):
    n = len(ts)
    return {"_part": np.array(part), "symbol": np.array(symbol), "exchange": np.zeros(n, dtype="int64"),
            "interval": np.zeros(n, dtype="int64"), "ts": np.array(ts, dtype="int64")}


@pytest.mark.parametrize(("part", "symbol", "ts", "proven"), [
    ([0, 0, 0, 1, 1], [0, 0, 0, 1, 1], [1, 2, 3, 1, 2], True),  # rising per file
    ([0, 0, 0, 1, 1], [0, 0, 0, 1, 1], [3, 2, 1, 2, 1], True),  # falling per file
    ([0, 0, 0, 0], [0, 0, 0, 0], [1, 2, 3, 1], False),  # a repeat three rows apart
    ([0, 0, 0], [0, 1, 0], [1, 2, 3], False),  # one series in two runs
    ([0, 0, 0, 0], [0, 0, 0, 0], [1, 2, 2, 3], False),  # a repeat side by side
])
def test_no_repeated_key_only_when_shown(part, symbol, ts, proven):
    assert _no_repeated_key(_ints(part, symbol, ts)) is proven


def test_a_repeat_far_apart_in_a_file_is_still_found(tmp_path):
    rows = [f"2021-04-{d:02d},10,11,9,10.5,10.5,100,0,1" for d in (21, 20, 19, 16, 15)]
    repeat = "2021-04-20,10,11,9,10.5,10.5,100,0,1"  # identical to line 3: a duplicate, not a conflict
    conflict = "2021-04-16,10,12,9,10.5,10.5,100,0,1"  # line 5's key with another high: both quarantined
    files = {"DA-AAA-T-2021-04-21.csv": rows,
             "DA-BBB-T-2021-04-21.csv": [*rows, repeat, conflict]}
    paths = []
    for name, lines in files.items():
        (tmp_path / name).write_text("\n".join([HEADER, *lines]) + "\n")
        paths.append(tmp_path / name)
    [(_where, group)] = parse_many(paths)
    g = validate_many(group.batch, group.bounds, group.sources, group.malformed)
    assert g.duplicates.tolist() == [0, 1]
    assert g.rejected_part.tolist() == [1, 1]
    assert g.checked.rejected["row_number"].tolist() == [5, 8]
    assert all("duplicate key (BBB, US, 1d" in r for r in g.checked.rejected["reason"])
    assert np.bincount(g.bar_part).tolist() == [5, 4]  # BBB: 7 rows, 2 quarantined, 1 repeat dropped
