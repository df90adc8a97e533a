"""Where the warehouse is: the dbt profile (profiles.yml) rendered with environment variables.

dbt and the loaders read the same profile, so one file (or one set of MWH_* variables) configures
both. Nothing here holds credentials.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml

PROFILE_NAME = "market_warehouse"


class ConfigError(Exception):
    """The profile is missing, malformed, or names a target that does not exist."""


def project_dir() -> Path:
    """The dbt project directory (the repository root unless MWH_PROJECT_DIR says otherwise)."""
    env = os.environ.get("MWH_PROJECT_DIR")
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent


def target_dir() -> Path:
    """dbt's target folder (its artifacts: run_results.json, manifest.json): DBT_TARGET_PATH, relative to the
    project directory when not absolute (dbt runs there), else target/ in the project directory."""
    env = os.environ.get("DBT_TARGET_PATH")
    path = Path(env) if env else Path("target")
    return path if path.is_absolute() else project_dir() / path


def profiles_dir() -> Path:
    """DBT_PROFILES_DIR if set, else the project directory, where profiles.yml is created from
    profiles.example.yml on first use."""
    env = os.environ.get("DBT_PROFILES_DIR")
    if env:
        return Path(env).resolve()
    pdir = project_dir()
    profile = pdir / "profiles.yml"
    if not profile.exists():
        example = pdir / "profiles.example.yml"
        if not example.exists():
            raise ConfigError(f"no profiles.yml and no profiles.example.yml in {pdir}")
        shutil.copyfile(example, profile)
    return pdir


@dataclass(frozen=True)
class Target:
    """One output of the profile, resolved."""

    name: str
    type: str  # "duckdb" or "postgres"
    path: str | None = None  # duckdb
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    dbname: str | None = None
    settings: tuple[tuple[str, str], ...] = ()  # duckdb: the profile's `settings:` (memory_limit, ...)

    def duckdb_config(self) -> dict[str, str]:
        """DuckDB settings for a Python connection: the same ones dbt-duckdb applies from the profile."""
        return {k: v for k, v in self.settings}

    @property
    def dialect(self) -> str:
        return self.type

    def conninfo(self, dbname: str | None = None) -> str:
        """libpq connection string (PostgreSQL targets)."""
        parts = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": dbname or self.dbname,
        }
        return " ".join(f"{k}={_quote(v)}" for k, v in parts.items() if v not in (None, ""))

    def describe(self) -> str:
        if self.type == "duckdb":
            return f"{self.name} (duckdb {self.path})"
        return f"{self.name} (postgres {self.host}:{self.port}/{self.dbname})"


def _quote(value: object) -> str:
    s = str(value)
    if s and all(c not in s for c in " '\\"):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _env_var(name: str, default: str | None = None) -> str:
    if name in os.environ:
        return os.environ[name]
    if default is None:
        raise ConfigError(f"profile needs environment variable {name}, which is not set")
    return default


def _as_number(value: str) -> int | float:
    try:
        return int(value)
    except ValueError:
        return float(value)


def _render(node, env: jinja2.Environment):
    if isinstance(node, str) and "{{" in node:
        return env.from_string(node).render()
    if isinstance(node, dict):
        return {k: _render(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_render(v, env) for v in node]
    return node


def load_target(name: str | None = None, profiles_path: Path | None = None) -> Target:
    """Resolve a target of the market_warehouse profile (default: the profile's own default,
    which is MWH_TARGET or duckdb)."""
    path = profiles_path or profiles_dir() / "profiles.yml"
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.globals["env_var"] = _env_var
    env.filters["as_number"] = _as_number
    profile = (doc or {}).get(PROFILE_NAME)
    if not profile:
        raise ConfigError(f"{path}: no profile named {PROFILE_NAME}")
    target_name = name or _render(profile.get("target", "duckdb"), env)
    outputs = profile.get("outputs", {})
    if target_name not in outputs:
        raise ConfigError(f"{path}: profile {PROFILE_NAME} has no target {target_name!r} "
                          f"(have: {', '.join(outputs)})")
    out = _render(outputs[target_name], env)
    kind = out.get("type")
    if kind == "duckdb":
        db_path = Path(str(out.get("path", "warehouse.duckdb")))
        if not db_path.is_absolute():
            db_path = project_dir() / db_path
        settings = {str(k): str(v) for k, v in (out.get("settings") or {}).items()}
        if settings.get("temp_directory") and not Path(settings["temp_directory"]).is_absolute():
            settings["temp_directory"] = str(project_dir() / settings["temp_directory"])
        return Target(name=target_name, type="duckdb", path=str(db_path), settings=tuple(settings.items()))
    if kind == "postgres":
        return Target(
            name=target_name,
            type="postgres",
            host=str(out.get("host", "127.0.0.1")),
            port=int(out.get("port", 5432)),
            user=str(out.get("user", "postgres")),
            password=str(out.get("password", "") or ""),
            dbname=str(out.get("dbname") or out.get("database")),
        )
    if kind == "spark":  # the session settings are read by loaders/sinks/spark_sink.py
        return Target(name=target_name, type="spark")
    raise ConfigError(f"{path}: target {target_name!r} has type {kind!r}; supported: duckdb, postgres, spark")
