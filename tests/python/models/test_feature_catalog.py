"""The feature catalog is the one declaration: the docs are written from it, and every feature has an
independent reference check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from market_warehouse import feature_catalog

from market_fixtures import load_sample
from test_features_reference import _reference

CHECKED_ELSEWHERE = {"benchmark_return_1", "relative_return_1", "beta_60"}  # test_benchmark_and_cross_sections


def test_feature_docs_are_generated_from_the_catalog():
    for path, text in feature_catalog.expected_files().items():
        assert path.read_text() == text, (
            f"{path.name} differs from the catalog: run `.venv/bin/python -m market_warehouse.feature_catalog`")


def test_every_feature_has_a_reference_check():
    bars = pd.DataFrame({k: [1.0] * 3 for k in ("open", "high", "low", "close", "volume", "traded_close",
                                                 "traded_volume", "pit_price_factor")})
    referenced = set(_reference(bars))
    for feature in feature_catalog.catalog():
        if "kind" in feature or feature["name"] in CHECKED_ELSEWHERE:
            continue
        assert feature["name"] in referenced, f"{feature['name']}: add its reference to test_features_reference.py"


def test_versions_only_add_columns():
    v1, v2 = feature_catalog.columns_of(1), feature_catalog.columns_of(2)
    assert set(v1) < set(v2)
    assert len(v1) == 14 and len(v2) > 35


def test_declared_windows_are_what_the_features_read():
    """Each entry's `window` (bars read, the bar itself included) drives the incremental read-back (the
    longest window, less the bar itself): on a real daily series, the independent reference computed from
    the last `window` bars alone gives the last bar's value computed from the whole history, and from one
    bar fewer it has none. Exponential entries read their averages from the state model (no window);
    cross-sectional and benchmark entries are checked in test_features_reference."""
    bars, _ = load_sample(symbols=["AAPL"], crypto=False)
    s = bars.sort_values("ts").reset_index(drop=True)
    s["traded_close"], s["traded_volume"], s["pit_price_factor"] = s["close"], s["volume"], 1.0
    full = _reference(s)
    checked = 0
    for feature in feature_catalog.catalog():
        name = feature["name"]
        if "kind" in feature or feature.get("ewm") or name in CHECKED_ELSEWHERE:
            continue
        window = feature["window"]
        expected = full[name].iloc[-1]
        assert np.isfinite(expected), name
        enough = _reference(s.iloc[-window:].reset_index(drop=True))[name].iloc[-1]
        assert enough == pytest.approx(expected, rel=1e-9), f"{name}: window {window} is too short"
        if window > 1:
            short = _reference(s.iloc[-(window - 1):].reset_index(drop=True))[name].iloc[-1]
            assert not np.isfinite(short), f"{name}: window {window} is longer than what it reads"
        checked += 1
    assert checked >= 25
