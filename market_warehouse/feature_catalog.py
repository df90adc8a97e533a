"""The feature catalog (macros/market/mwh_feature_catalog.sql), read from Python.

The catalog is YAML inside a dbt macro, so dbt and Python read the same declaration. This module
parses it and writes the docs of the feature models from it (`mwh features --write`): the column
list, descriptions and types of fct_features_daily / fct_features_hourly (and fct_latest_features_daily,
fct_training_set_daily) and which version carries which column, with the enforced contract every public
mart carries (`access: public`, group `market_data`; every feature is a double precision).
tests/python/models/test_feature_catalog.py fails when the written files drift.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CATALOG = REPO / "macros" / "market" / "mwh_feature_catalog.sql"
MODELS = REPO / "models" / "marts" / "market"
_BLOCK = re.compile(r"{% set catalog %}(.*?){% endset %}", re.S)
_JINJA = re.compile(r"{{.*?}}", re.S)

# Every feature is a double; the key columns' types are those of the bars they come from.
FEATURE_TYPE = "double precision"
CONTRACT = {"contract": {"enforced": True}, "access": "public", "group": "market_data"}

_HEADER = ("# GENERATED from macros/market/mwh_feature_catalog.sql by `python -m market_warehouse.feature_catalog`: "
           "edit the catalog, not this file.\n")

# Model name -> (description, versions it has, latest version)
FEATURE_MODELS = {
    "fct_features_daily": ("Daily features on point-in-time adjusted prices.", [1, 2], 2),
    "fct_features_hourly": ("Hourly features on traded prices (windows count bars).", [1], 1),
}


def catalog() -> list[dict]:
    """The catalog entries (the `sql` fields keep their Jinja, unrendered)."""
    text = _BLOCK.search(CATALOG.read_text()).group(1)
    # The Jinja in `sql` values is opaque to YAML: quote-safe placeholders keep the structure.
    return yaml.safe_load(_JINJA.sub("JINJA", text))


def columns_of(version: int) -> list[str]:
    return [f["name"] for f in catalog() if version in f["versions"]]


def _column(feature: dict) -> dict:
    col = {"name": feature["name"], "data_type": FEATURE_TYPE,
           "description": f"{feature['description']} ({feature['family']})"}
    if "range" in feature:
        lo, hi = feature["range"]
        args = {"min_value": lo} if hi is None else {"min_value": lo, "max_value": hi}
        col["data_tests"] = [{"accepted_range": {"arguments": args}}]
    return col


KEY_COLUMNS = ("symbol", "exchange", "ts", "feature_version")


def _key_columns(tested: tuple[str, ...] = KEY_COLUMNS) -> list[dict]:
    """The key columns, with a not_null test on those in `tested`."""
    cols = [
        {"name": "symbol", "data_type": "varchar", "description": '{{ doc("market_col_symbol") }}'},
        {"name": "exchange", "data_type": "varchar", "description": '{{ doc("market_col_exchange") }}'},
        {"name": "ts", "data_type": "timestamp with time zone", "description": '{{ doc("market_col_ts") }}'},
        {"name": "feature_version", "data_type": "integer",
         "description": '{{ doc("market_col_feature_version") }}'},
    ]
    for col in cols:
        if col["name"] in tested:
            col["data_tests"] = ["not_null"]
    return cols


def _tail_columns() -> list[dict]:
    return [{"name": "actions_loaded_at", "data_type": "timestamp with time zone",
             "description": '{{ doc("market_col_actions_loaded_at") }}'}]


def model_yaml(name: str) -> str:
    description, versions, latest = FEATURE_MODELS[name]
    features = [f for f in catalog() if any(v in f["versions"] for v in versions)]
    head = _key_columns()
    tail = _tail_columns()
    latest_columns = set(columns_of(latest))
    model = {
        "name": name,
        "description": description + ' {{ doc("market_features") }}',
        "latest_version": latest,
        "config": {"tags": ["features"], **CONTRACT},
        "data_tests": [{"unique_combination": {"arguments": {"columns": ["symbol", "exchange", "ts"]}}}],
        "columns": head + [_column(f) for f in features if f["name"] in latest_columns] + tail,
        "versions": [],
    }
    for v in versions:
        entry: dict = {"v": v}
        mine = set(columns_of(v))
        excluded = [c for c in latest_columns if c not in mine]
        extra = [f for f in features if f["name"] in mine and f["name"] not in latest_columns]
        if excluded or extra:
            entry["columns"] = [{"include": "all", "exclude": sorted(excluded)}] + [_column(f) for f in extra]
        model["versions"].append(entry)
    return _HEADER + yaml.safe_dump({"version": 2, "models": [model]}, sort_keys=False, width=110)


def training_set_yaml(version: int = 2) -> str:
    """fct_training_set_daily: the catalog's columns of var training_feature_version, then the labels."""
    by_name = {f["name"]: f for f in catalog()}
    label_docs = [("forward_return_1", True), ("forward_return_5", False), ("forward_return_20", False),
                  ("horizon_end_ts_1", False), ("horizon_end_ts_5", False), ("horizon_end_ts_20", False)]
    columns = [
        *_key_columns(tested=("symbol", "exchange", "ts")),
        *[_column(by_name[c]) for c in columns_of(version)],
        *_tail_columns(),
    ]
    for name, required in label_docs:
        col = {"name": name, "data_type": "timestamp with time zone" if name.startswith("horizon") else FEATURE_TYPE,
               "description": '{{ doc("market_col_' + name + '") }}'}
        if required:
            col["data_tests"] = ["not_null"]
        columns.append(col)
    model = {
        "name": "fct_training_set_daily",
        "description": (
            "Training rows for daily models: the catalog's features (macros/market/mwh_feature_catalog.sql) of "
            "version var training_feature_version for bar t, joined with the labels from bar t "
            "(fct_labels_daily); rows without a 1-bar label (the newest bar) are left out. Point-in-time "
            "correct: no feature of bar t uses a bar after t (tests/python/models: truncating history after t "
            "and rebuilding gives the same features); the labels' horizon_end_ts_* tell a backtest when each "
            "label became known. A view over the two incremental tables."),
        "config": dict(CONTRACT),
        "data_tests": [{"unique_combination": {"arguments": {"columns": ["symbol", "exchange", "ts"]}}},
                       "features_precede_labels"],
        "columns": columns,
    }
    return _HEADER + yaml.safe_dump({"version": 2, "models": [model]}, sort_keys=False, width=110)


def latest_features_yaml() -> str:
    """fct_latest_features_daily: the newest row per symbol of fct_features_daily (its latest version)."""
    _, _, latest = FEATURE_MODELS["fct_features_daily"]
    by_name = {f["name"]: f for f in catalog()}
    model = {
        "name": "fct_latest_features_daily",
        "description": (
            'The newest row of the latest daily feature version (fct_features_daily) for every symbol: one row '
            'per (symbol, exchange), for "the latest features of all symbols" in one small read. Rebuilt every '
            "run at a cost bounded by the number of symbols (one index probe per symbol on "
            "PostgreSQL/TimescaleDB). Columns as in fct_features_daily."),
        "config": dict(CONTRACT),
        "data_tests": [{"unique_combination": {"arguments": {"columns": ["symbol", "exchange"]}}}],
        "columns": [*_key_columns(tested=()), *[_column(by_name[c]) for c in columns_of(latest)],
                    *_tail_columns()],
    }
    return _HEADER + yaml.safe_dump({"version": 2, "models": [model]}, sort_keys=False, width=110)


def expected_files() -> dict[Path, str]:
    files = {MODELS / f"{name}.yml": model_yaml(name) for name in FEATURE_MODELS}
    files[MODELS / "fct_latest_features_daily.yml"] = latest_features_yaml()
    files[MODELS / "fct_training_set_daily.yml"] = training_set_yaml(_training_version())
    return files


def _training_version() -> int:
    project = yaml.safe_load((REPO / "dbt_project.yml").read_text())
    return int(project["vars"]["training_feature_version"])


def write() -> list[Path]:
    changed = []
    for path, text in expected_files().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


if __name__ == "__main__":
    for p in write():
        print(f"wrote {p.relative_to(REPO)}")
