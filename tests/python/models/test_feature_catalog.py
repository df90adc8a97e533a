"""The feature catalog is the one declaration: the docs are written from it, and every feature has an
independent reference check."""

from __future__ import annotations

import pandas as pd

from market_warehouse import feature_catalog

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
