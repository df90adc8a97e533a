"""dbt's target folder, as every reader of its artifacts resolves it (market_warehouse.config.target_dir): dbt
runs in the project directory (run_dbt), so a relative DBT_TARGET_PATH is relative to the project, not to
the directory `mwh` was started from. The build report and the docs site read from there."""

from __future__ import annotations

import json

from market_warehouse.build_report import last_run_results
from market_warehouse.config import target_dir
from market_warehouse.docs_site import site_dir


def _run_results(folder, unique_id: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run_results.json").write_text(json.dumps(
        {"results": [{"unique_id": unique_id, "status": "warn", "failures": 3, "message": "Got 3 results"}]}))


def test_a_relative_target_path_is_read_in_the_project_not_the_working_directory(tmp_path, monkeypatch):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    _run_results(project / "build_out", "test.market_warehouse.in_project.abc")
    _run_results(elsewhere / "build_out", "test.market_warehouse.in_working_dir.abc")
    monkeypatch.setenv("MWH_PROJECT_DIR", str(project))
    monkeypatch.setenv("DBT_TARGET_PATH", "build_out")
    monkeypatch.delenv("MWH_DOCS_DIR", raising=False)
    monkeypatch.chdir(elsewhere)

    assert target_dir() == project.resolve() / "build_out"
    assert [r.node.name for r in last_run_results()] == ["in_project"]
    assert site_dir() == project.resolve() / "build_out" / "docs_site"


def test_an_absolute_target_path_and_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("MWH_PROJECT_DIR", str(tmp_path / "project"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "artifacts"))
    assert target_dir() == tmp_path / "artifacts"
    monkeypatch.delenv("DBT_TARGET_PATH")
    assert target_dir() == (tmp_path / "project").resolve() / "target"
