"""Pure checks: coercion, the rules of each record kind, in-batch duplicates, file readers."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from market_warehouse.ml.files import FileFormatError, read_records
from market_warehouse.ml.validate import KINDS, Context, check_records

NOW = pd.Timestamp("2024-01-10T12:00:00Z")
CTX = Context(known_models=frozenset({"m@1"}), now=NOW)


def _check(kind: str, rows: list[dict]):
    raw = pd.DataFrame.from_records(rows).astype(object)
    return check_records(KINDS[kind], raw, pd.Series(range(2, len(rows) + 2)), CTX)


def _reasons(checked) -> dict[int, str]:
    return dict(zip(checked.rejected["row_number"], checked.rejected["reason"]))


def test_predictions_bad_rows_get_their_reason_and_the_rest_is_valid():
    ok = {"model_id": "m@1", "symbol": "AAPL", "bar_ts": "2024-01-05", "predicted_at": "2024-01-05T21:00:00Z",
          "predicted_class": "up", "probability": 0.6}
    checked = _check("predictions", [
        ok,
        {**ok, "model_id": "m@9"},
        {**ok, "bar_ts": "2024-01-08", "probability": 1.2},
        {**ok, "bar_ts": "2024-01-09", "predicted_at": "2024-01-11T00:00:00Z"},
        {**ok, "bar_ts": "not a date"},
        {**ok, "bar_ts": "2024-01-04", "predicted_class": None, "probability": None},
        {"model_name": "m", "model_version": "1", "symbol": "MSFT", "bar_ts": "2024-01-05",
         "predicted_at": "2024-01-05T21:00:00Z", "predicted_value": 0.01},
    ])
    reasons = _reasons(checked)
    assert reasons[3] == "unknown model version (not in ml_model_registry)"
    assert reasons[4] == "probability outside [0, 1]"
    assert reasons[5] == "predicted_at in the future"
    assert reasons[6].startswith("bar_ts 'not a date': not a time")
    assert reasons[7] == "neither predicted_class nor predicted_value"
    assert len(checked.valid) == 2
    assert set(checked.valid["symbol"]) == {"AAPL", "MSFT"}
    # Defaults and the model id derived from name + version.
    msft = checked.valid[checked.valid["symbol"] == "MSFT"].iloc[0]
    assert (msft["model_id"], msft["exchange"], msft["bar_interval"], msft["horizon_bars"]) == ("m@1", "US", "1d", 1)
    assert json.loads(checked.rejected["record"].iloc[0])["model_id"] == "m@9"


def test_signals_stop_on_the_wrong_side_is_rejected():
    base = {"strategy": "s", "symbol": "AAPL", "signal_ts": "2024-01-05", "entry_price": 100.0}
    checked = _check("signals", [
        {**base, "signal_type": "BUY", "stop_price": 95.0, "target_price": 110.0},
        {**base, "signal_ts": "2024-01-04", "signal_type": "BUY", "stop_price": 101.0, "target_price": 110.0},
        {**base, "signal_ts": "2024-01-03", "signal_type": "SELL", "stop_price": 99.0, "target_price": 90.0},
        {**base, "signal_ts": "2024-01-02", "signal_type": "SELL", "stop_price": 105.0, "target_price": 90.0},
        {**base, "signal_ts": "2023-12-29", "signal_type": "HOLD", "entry_price": None},
        {**base, "signal_ts": "2023-12-28", "signal_type": "BUY", "stop_price": 95.0, "confidence": 1.5,
         "model_id": "m@2"},
        {**base, "signal_ts": "2023-12-27", "signal_type": "BUY", "entry_price": None},
    ])
    reasons = _reasons(checked)
    assert reasons[3] == "BUY stop_price not below entry_price"
    assert reasons[4] == "SELL stop_price not above entry_price"
    assert 5 not in reasons  # SELL: stop above, target below the entry
    assert reasons[7] == "unknown model version (not in ml_model_registry); confidence outside [0, 1]"
    assert reasons[8] == "BUY/SELL signal without entry_price"
    assert sorted(checked.valid["signal_type"]) == ["BUY", "HOLD", "SELL"]
    assert set(checked.valid["status"]) == {"ACTIVE"}


def test_duplicate_keys_in_one_batch():
    row = {"agent_id": "a", "symbol": "X", "decision_ts": "2024-01-05T10:00:00Z", "action": "BUY"}
    checked = _check("agent-decisions", [row, dict(row), {**row, "action": "SELL"},
                                         {**row, "decision_ts": "2024-01-05T11:00:00Z"},
                                         {**row, "decision_ts": "2024-01-05T11:00:00Z"}])
    # 2, 3 and 4 share a key with different actions: all quarantined; 5 and 6 are one row loaded twice.
    assert sorted(_reasons(checked)) == [2, 3, 4]
    assert "with different values on rows 2, 3, 4" in checked.rejected["reason"].iloc[0]
    assert len(checked.valid) == 1 and checked.duplicates_in_source == 1


def test_jsonl_reader_keeps_bad_lines_with_their_line_number(tmp_path):
    path = tmp_path / "p.jsonl.gz"
    lines = [json.dumps({"a": 1}), "{not json", "", json.dumps([1, 2]), json.dumps({"a": 2})]
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    f = read_records(path)
    assert list(f.row_numbers) == [1, 2, 4, 5]
    assert f.read_errors.tolist()[1].startswith("not valid JSON")
    assert f.read_errors.tolist()[2] == "not a JSON object"


def test_csv_reader_and_unreadable_files(tmp_path):
    good = tmp_path / "s.csv"
    good.write_text("strategy,symbol\ns,AAPL\ns,MSFT,extra\n")
    f = read_records(good)
    assert list(f.row_numbers) == [2, 3]
    assert f.read_errors.tolist() == ["", "3 fields where the header has 2"]
    body = tmp_path / "error.csv"
    body.write_text('{"Error Message": "Invalid API call"}')
    with pytest.raises(FileFormatError, match="error.csv: not CSV"):
        read_records(body)
    with pytest.raises(FileFormatError, match="cannot tell the format"):
        read_records(tmp_path / "x.parquet")


def test_coercion_of_times_numbers_and_json():
    from market_warehouse.ml.coerce import coerce
    from market_warehouse.ml.schema import PREDICTIONS

    raw = pd.DataFrame({
        "model_id": ["m@1", "m@1", " m@1 ", "m@1"],
        "bar_ts": ["2024-01-05T10:00:00-05:00", "2024-01-05", 1704448800, "2024-13-45"],
        "horizon_bars": ["2", 1, "1.5", True],
        "probability": ["0.25", float("nan"), "inf", 0.5],
        "features": ['{"b": 1, "a": 2}', {"x": 1.0}, "[1, 2]", "{oops"],
    }).astype(object)
    c = coerce(raw, PREDICTIONS)
    assert c.frame["bar_ts"].tolist()[:3] == [pd.Timestamp("2024-01-05T15:00:00Z"), pd.Timestamp("2024-01-05T00:00:00Z"),
                                             pd.Timestamp("2024-01-05T10:00:00Z")]
    assert c.frame["model_id"].tolist()[2] == "m@1"
    assert c.frame["horizon_bars"].tolist()[:2] == [2, 1]
    assert c.frame["probability"].tolist()[0] == 0.25
    assert c.frame["features"].tolist()[:3] == ['{"a": 2, "b": 1}', '{"x": 1.0}', "[1, 2]"]
    errors = c.errors.tolist()
    assert "horizon_bars '1.5': not a whole number" in errors[2] and "probability 'inf': not a finite number" in errors[2]
    assert "bar_ts '2024-13-45': not a time" in errors[3]
    assert "horizon_bars True: not a number" in errors[3] and "features '{oops': not valid JSON" in errors[3]
    assert "missing symbol" in errors[0]
