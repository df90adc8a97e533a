"""Superset's configuration for market-warehouse (`make bi`; loaded through SUPERSET_CONFIG_PATH).

Everything Superset writes lives under MWH_BI_HOME (default `.bi/` in the repository, gitignored): its
metadata database (SQLite), the generated secret key. No credential is in this file: the warehouse
connection (as mwh_analyst, password from MWH_ANALYST_PASSWORD) is created by bi/superset_bi.py through
Superset's API and stored encrypted in the metadata database.
"""

import os
import secrets
from pathlib import Path

BI_HOME = Path(os.environ.get("MWH_BI_HOME") or Path(__file__).resolve().parent.parent / ".bi").resolve()
BI_HOME.mkdir(parents=True, exist_ok=True)

SQLALCHEMY_DATABASE_URI = f"sqlite:///{BI_HOME / 'superset.db'}?check_same_thread=false"


def _secret_key() -> str:
    if os.environ.get("SUPERSET_SECRET_KEY"):
        return os.environ["SUPERSET_SECRET_KEY"]
    path = BI_HOME / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()

# A local analyst's server: no HTTPS to enforce, no telemetry, no example data.
TALISMAN_ENABLED = False
SESSION_COOKIE_SECURE = False
WTF_CSRF_ENABLED = True
SCHEDULED_QUERIES = {}
ENABLE_PROXY_FIX = False
SQLLAB_CTAS_NO_LIMIT = True
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
FEATURE_FLAGS = {"DASHBOARD_RBAC": False}
# Analysts read; the connection is read-only on the server side already (mwh_analyst), and Superset is
# told not to offer DML either.
PREVENT_UNSAFE_DB_CONNECTIONS = True


def FLASK_APP_MUTATOR(app):  # Superset's setting name
    """Superset lists schemas through SQLAlchemy's inspector, which reads pg_namespace: every schema name,
    readable or not. Show mwh_analyst only the schemas it may use (marts), so `test_failures`, `raw` and
    the other inputs stay out of the dataset and SQL Lab pickers."""
    from superset.db_engine_specs.postgres import PostgresEngineSpec

    listed = PostgresEngineSpec.get_schema_names.__func__

    def get_schema_names(cls, inspector):
        names = listed(cls, inspector)
        query = "select nspname from pg_namespace where has_schema_privilege(oid, 'USAGE')"
        bind = inspector.bind
        if hasattr(bind, "exec_driver_sql"):
            usable = {r[0] for r in bind.exec_driver_sql(query)}
        else:
            with bind.connect() as conn:
                usable = {r[0] for r in conn.exec_driver_sql(query)}
        return {n for n in names if n in usable}

    PostgresEngineSpec.get_schema_names = classmethod(get_schema_names)
