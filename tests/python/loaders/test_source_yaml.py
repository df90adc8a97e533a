"""One schema truth: the dbt sources' YAML is generated from the Python table declarations, and this
test fails the moment the two drift apart (run `mwh schema --write`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from market_warehouse import source_yaml
from market_warehouse.cli import main as mwh
from market_warehouse.loaders.schema import BARS, TYPES

REPO = Path(__file__).resolve().parents[3]


def test_the_sources_yaml_is_what_the_declarations_generate():
    stale = source_yaml.check()
    assert not stale, f"out of date (run `mwh schema --write`): {', '.join(map(str, stale))}"


def test_drift_is_detected_and_write_repairs_it(tmp_path, capsys):
    for source in source_yaml.SOURCES:
        (tmp_path / source.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / source.path, tmp_path / source.path)
    market = tmp_path / source_yaml.SOURCES[0].path
    market.write_text(market.read_text().replace("Highest trade price.", "Highest price."))
    assert source_yaml.check(root=tmp_path) == [market]
    assert source_yaml.check(write=True, root=tmp_path) == [market]
    assert source_yaml.check(root=tmp_path) == []
    assert mwh(["schema"]) == 0 and "matches" in capsys.readouterr().out


def test_the_yaml_carries_every_column_with_type_and_description():
    for source in source_yaml.SOURCES:
        parsed = yaml.safe_load((REPO / source.path).read_text())["sources"][0]
        assert parsed["config"]["meta"]["physical_types"] == {
            d: {k: v[d] for k, v in TYPES.items()} for d in ("duckdb", "postgres")}
        for table, declared in zip(parsed["tables"], source.tables, strict=True):
            assert table["name"] == declared.name
            assert [(c["name"], c["data_type"], c["description"]) for c in table["columns"]] == [
                (c.name, c.type, c.description) for c in declared.columns]
    bars = yaml.safe_load((REPO / source_yaml.SOURCES[0].path).read_text())["sources"][0]["tables"][0]
    assert bars["config"]["freshness"] == BARS.freshness
