"""What `dagster dev -m orchestration.definitions` loads (docs/orchestration.md)."""


import dagster as dg

from orchestration.automation import asset_jobs, retrain_claim, retrain_queue_sensor, schedules
from orchestration.dbt_assets import build_dbt_assets, dbt_project, dbt_resource, prepare_manifest
from orchestration.loaders import LOADER_ASSETS_DEFS


def build_definitions() -> dg.Definitions:
    """Assets (loaders + dbt), jobs, schedules and the sensor, for the target MWH_TARGET selects.
    Steps run one after another in one process (DuckDB has one writer)."""
    manifest = prepare_manifest()
    project = dbt_project(manifest)
    dbt = build_dbt_assets(manifest, project)
    return dg.Definitions(
        assets=[*LOADER_ASSETS_DEFS, dbt],
        jobs=[*asset_jobs(dbt), retrain_claim],
        schedules=schedules(),
        sensors=[retrain_queue_sensor],
        resources={"dbt": dbt_resource(project)},
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
