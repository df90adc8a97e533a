"""Public marts carry enforced contracts (column names and types), `access: public` and an owning group
(models/groups.yml), and a contract violation fails the build.

The violation is made in a copy of the project (a column's declared type changed; a column added to the
model's SQL): the build of that model fails with dbt's contract error, while the untouched copy builds.
The semantic-layer test (test_semantic_layer.py) builds the contracted ML marts and fct_labels_daily on
both targets, so their declared types are checked there on real rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "models"))
from market_fixtures import Warehouse, copy_project, load_sample

MODEL = "dim_symbols"  # a public mart with a contract and a cheap upstream (staging bars, two seeds)
YML = Path("models/marts/market/dim_symbols.yml")
SQL = Path("models/marts/market/dim_symbols.sql")
BUILD = ["build", "--select", f"+{MODEL}", "--exclude-resource-type", "test", "unit_test"]
RUN = ["run", "--select", MODEL]  # its parents built


def run_dbt(proj: Path, *args: str) -> tuple[bool, str]:
    """dbt in a subprocess (in-process, dbt-duckdb keeps the file open until the process ends)."""
    res = subprocess.run([str(Path(sys.executable).parent / "dbt"), "--no-use-colors", *args, "--project-dir",
                          str(proj), "--target-path", str(proj / "target")], capture_output=True, text=True,
                         timeout=1200)
    return res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]


def test_public_marts_declare_contract_access_group_and_types(tmp_path):
    """Every contracted model is public, in a group with an owner, and types every column."""
    proj = copy_project(tmp_path / "project")
    ok, out = run_dbt(proj, "parse")
    assert ok, out
    manifest = json.loads((proj / "target" / "manifest.json").read_text())
    groups = {g["name"]: g for g in manifest["groups"].values()}
    assert set(groups) >= {"market_data", "ml_platform"}
    assert all(g["owner"].get("name") or g["owner"].get("email") for g in groups.values())
    contracted = {n["name"]: n for n in manifest["nodes"].values()
                  if n["resource_type"] == "model" and n["config"]["contract"]["enforced"]}
    assert {"dim_symbols", "fct_signal_outcomes", "fct_prediction_outcomes", "fct_model_drift_alerts",
            "fct_model_performance", "fct_labels_daily"} <= set(contracted), sorted(contracted)
    # every mart is public and contracted, the feature versions and generated ymls included
    marts = {n["name"] + (f"_v{n['version']}" if n.get("version") else ""): n for n in manifest["nodes"].values()
             if n["resource_type"] == "model" and n["fqn"][1:2] == ["marts"]}
    assert len(marts) >= 40, sorted(marts)
    uncontracted = sorted(name for name, n in marts.items() if not n["config"]["contract"]["enforced"])
    assert not uncontracted, f"marts without an enforced contract: {uncontracted}"
    assert {"fct_features_daily_v1", "fct_features_daily_v2", "fct_features_hourly_v1", "fct_training_set_daily",
            "fct_bars_1d", "fct_bars_1h", "fct_value_at_risk", "fct_book_snapshots"} <= set(marts)
    for name, node in contracted.items():
        assert node["access"] == "public", name
        assert node["group"] in groups, name
        assert node["columns"], name
        untyped = [c for c, col in node["columns"].items() if not col.get("data_type")]
        assert not untyped, f"{name}: columns without data_type: {untyped}"
        assert node["config"]["materialized"] in ("table", "view", "incremental"), name
        if node["config"]["materialized"] == "incremental":
            assert node["config"]["on_schema_change"] in ("fail", "append_new_columns"), name


def check_enforced(kind: str, tmp_path: Path) -> None:
    wh = Warehouse(kind)
    wh.create_raw()
    bars, actions = load_sample(symbols=["AAPL", "MSFT"], start="2021-01-01", crypto=False)
    wh.upsert(bars, actions)
    proj = copy_project(tmp_path / "project")

    ok, out = run_dbt(proj, *BUILD)  # as declared: builds
    assert ok, out
    assert set(wh.query(f"select symbol from marts.{MODEL}")["symbol"]) == {"AAPL", "MSFT"}

    yml = (proj / YML).read_text()
    assert "        data_type: timestamp with time zone" in yml
    # 1. a declared type that is not what the model yields: the build fails, the table is left as it was
    (proj / YML).write_text(yml.replace("        data_type: timestamp with time zone", "        data_type: date", 1))
    ok, out = run_dbt(proj, *RUN)
    assert not ok
    assert "enforced contract that failed" in out and MODEL in out, out
    assert len(wh.query(f"select * from marts.{MODEL}")) == 2
    (proj / YML).write_text(yml)

    # 2. a column the contract does not declare: the build fails
    sql = (proj / SQL).read_text()
    assert sql.rstrip().endswith("select * from final"), sql[-200:]
    (proj / SQL).write_text(sql.rstrip()[: -len("select * from final")]
                            + "select final.*, 1 as undeclared_column from final\n")
    ok, out = run_dbt(proj, *RUN)
    assert not ok
    assert "enforced contract that failed" in out and "undeclared_column" in out, out
    assert len(wh.query(f"select * from marts.{MODEL}")) == 2


def test_contract_violation_fails_the_build_duckdb(duckdb_target, tmp_path):
    check_enforced("duckdb", tmp_path)

# On PostgreSQL every build of a contracted mart (test_market_incremental, test_semantic_layer, ...) checks the
# declared types on real rows; that a violation fails the build is dbt's own behaviour, shown here once.
