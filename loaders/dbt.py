"""Running dbt from Python (dbtRunner), against the same profile the loaders use."""

from __future__ import annotations

import os
from collections.abc import Sequence

from loaders.config import Target, load_target, profiles_dir, project_dir


def dbt_env(target: Target) -> None:
    """Settings dbt must see: no tracking, and the absolute DuckDB path the loaders wrote to."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    if target.type == "duckdb" and target.path:
        os.environ["MWH_DUCKDB_PATH"] = target.path


def run_dbt(args: Sequence[str], target: str | Target | None = None, quiet: bool = False):
    """Run one dbt command (e.g. ["build", "--select", "staging"]); returns dbt's result object.
    Raises nothing for failed models/tests: check `.success`."""
    from dbt.cli.main import dbtRunner

    if not isinstance(target, Target):
        target = load_target(target)
    dbt_env(target)
    pdir = project_dir()
    argv = [*args, "--project-dir", str(pdir), "--profiles-dir", str(profiles_dir()),
            "--target", target.name]
    if quiet:
        argv = ["--quiet", *argv]
    cwd = os.getcwd()
    os.chdir(pdir)  # dbt resolves target/ and logs/ against the working directory
    try:
        return dbtRunner().invoke(argv)
    finally:
        os.chdir(cwd)


def seeds_checksum() -> str:
    """One checksum over the seed files (contents and names)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((project_dir() / "seeds").rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
