"""Connection problems, said in one line: what is wrong and which setting to change.

`describe(exc, target)` turns the exceptions psycopg and duckdb raise when the warehouse cannot be
reached into one sentence naming the setting (the MWH_* variable the profile reads); `mwh` prints it
instead of a traceback. `check(target)` connects once and raises `ConnectionProblem` with that sentence
(used before handing a target to dbt, whose own message is long and does not name our settings).
"""

from __future__ import annotations

import re
from pathlib import Path

from market_warehouse.config import Target


class ConnectionProblem(Exception):
    """The warehouse of a target cannot be reached; the message is the one line to print."""


def _pg_settings(target: Target) -> tuple[str, str]:
    """(the database variable, the server variables) of a PostgreSQL target of profiles.example.yml."""
    db_var = "MWH_PG_PLAIN_DATABASE" if target.name == "postgres" else "MWH_PG_DATABASE"
    return db_var, "MWH_PG_HOST/MWH_PG_PORT"


def describe(exc: BaseException, target: Target | None) -> str | None:
    """One line for a connection problem, or None when `exc` is not one."""
    text = " ".join(str(exc).split())
    mod = type(exc).__module__ or ""
    if mod.startswith("psycopg") and type(exc).__name__ in ("OperationalError", "ConnectionTimeout"):
        where = f"{target.host}:{target.port}" if target else "the server"
        db_var, server_vars = _pg_settings(target) if target else ("MWH_PG_DATABASE", "MWH_PG_HOST/MWH_PG_PORT")
        m = re.search(r'database "([^"]+)" does not exist', text)
        if m:
            return (f"database {m.group(1)!r} does not exist on {where}: create it "
                    f"(`createdb -h {target.host if target else '...'} -p {target.port if target else '...'} "
                    f"{m.group(1)}`, or `scripts/timescaledb.sh up` for the local server) or set {db_var}")
        m = re.search(r'role "([^"]+)" does not exist', text)
        if m:
            return f"user {m.group(1)!r} does not exist on {where}: set MWH_PG_USER"
        if "password authentication failed" in text or "no password supplied" in text:
            return f"the server at {where} refused the password of user {target.user if target else ''!r}: " \
                   f"set MWH_PG_PASSWORD"
        if "Connection refused" in text or "could not connect" in text or "No such file" in text \
                or "timeout expired" in text or "Name or service not known" in text \
                or "could not translate host name" in text:
            return (f"no PostgreSQL server answers at {where}: start it (`scripts/timescaledb.sh up` "
                    f"for the local one) or set {server_vars}")
        if "connection failed" in text or "server closed the connection" in text:
            return f"cannot connect to {where}: {text[:200]} (settings: {server_vars}, MWH_PG_USER, {db_var})"
        return None
    if mod.startswith(("duckdb", "_duckdb")):
        path = target.path if target and target.type == "duckdb" else None
        name = type(exc).__name__
        if name == "IOException" and "No such file or directory" in text:
            folder = Path(path).parent if path else None
            return (f"cannot create the DuckDB file {path or ''}: the folder {folder or ''} does not exist; "
                    f"create it or set MWH_DUCKDB_PATH")
        if name == "IOException" and "lock" in text.lower():
            m = re.search(r"PID (\d+)", text)
            who = f"process {m.group(1)}" if m else "another process"
            return (f"the DuckDB file {path or ''} is in use by {who} (DuckDB allows one writer): "
                    f"wait for it or set MWH_DUCKDB_PATH to another file")
        if name == "IOException" and ("Permission denied" in text or "Read-only" in text):
            return f"cannot write the DuckDB file {path or ''} (permission denied): set MWH_DUCKDB_PATH"
        if name in ("IOException", "SerializationException") and "not a valid DuckDB database" in text:
            return f"{path or 'the file'} is not a DuckDB database: set MWH_DUCKDB_PATH"
        return None
    return None


def check(target: Target) -> None:
    """Connect to `target` once (nothing is created); raise ConnectionProblem with one line if that fails."""
    try:
        if target.type == "duckdb":
            import duckdb  # deferred: a PostgreSQL-only run need not load it

            duckdb.connect(target.path).close()
        else:
            import psycopg  # deferred: a DuckDB-only run need not load it

            psycopg.connect(target.conninfo(), connect_timeout=10).close()
    except Exception as exc:  # translated below, re-raised when not a connection problem
        msg = describe(exc, target)
        if msg is None:
            raise
        raise ConnectionProblem(msg) from None
