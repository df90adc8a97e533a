"""Validation rules, one reason each, on rows shaped like a real vendor file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from market_warehouse.loaders.sources import alphavantage
from market_warehouse.loaders.validate import validate

HEADER = "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n"


def _load(tmp_path: Path, rows: list[str]):
    f = tmp_path / "DA-TEST-T-2021-01-01.csv"
    f.write_text(HEADER + "\n".join(rows) + "\n")
    return validate(alphavantage.parse(f), now=pd.Timestamp("2021-06-01", tz="UTC"))


@pytest.mark.parametrize("row,reason", [
    ("2020-01-02,10,9,9.5,9.6,9.6,100,0,1", "high < low; high below open/close"),
    ("2020-01-02,10,10.5,9,10.8,10.8,100,0,1", "high below open/close"),
    ("2020-01-02,10,11,10.2,10.1,10.1,100,0,1", "low above open/close"),
    ("2020-01-02,10,11,9,10.5,10.5,-5,0,1", "negative volume"),
    ("2020-01-02,-1,11,-2,10.5,10.5,100,0,1", "open not positive; low not positive"),
    ("2022-01-02,10,11,9,10.5,10.5,100,0,1", "time in the future"),
])
def test_rule_violations_are_quarantined_with_the_reason(tmp_path, row, reason):
    v = _load(tmp_path, ["2020-01-03,10,11,9,10.5,10.5,100,0,1", row])
    assert len(v.bars) == 1
    assert v.rejected["reason"].tolist() == [reason]
    assert v.rejected["row_number"].tolist() == [3]


def test_identical_repeats_load_once(tmp_path):
    row = "2020-01-02,10,11,9,10.5,10.5,100,0,1"
    v = _load(tmp_path, [row, row, "2020-01-03,10,11,9,10.5,10.5,100,0,1"])
    assert len(v.bars) == 2 and v.duplicates_in_source == 1 and v.rejected.empty
    assert v.rows_read == 3


def test_conflicting_repeats_are_all_quarantined(tmp_path):
    v = _load(tmp_path, ["2020-01-02,10,11,9,10.5,10.5,100,0,1",
                         "2020-01-03,10,11,9,10.5,10.5,100,0,1",
                         "2020-01-02,10,11,9,10.7,10.7,100,0,1"])
    assert len(v.bars) == 1
    assert v.rejected["row_number"].tolist() == [2, 4]
    assert all("duplicate key (TEST, US, 1d, 2020-01-02" in r and "lines 2, 4" in r
               for r in v.rejected["reason"])


def test_actions_of_rejected_rows_wait_in_quarantine(tmp_path):
    v = _load(tmp_path, ["2020-01-02,10,9,9.5,9.6,9.6,100,0.5,1",  # invalid, with a dividend
                         "2020-01-03,10,11,9,10.5,10.5,100,0.25,2"])
    assert sorted(v.actions["action"]) == ["dividend", "split"]
    assert v.actions["ex_date"].dt.strftime("%Y-%m-%d").unique().tolist() == ["2020-01-03"]
