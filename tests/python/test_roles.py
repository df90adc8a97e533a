"""`mwh roles`: least-privilege roles on TimescaleDB and PostgreSQL, proven with real logins.

One warehouse per target, in the order a real one lives: a first load as the administrator (objects owned
by `postgres`), `mwh roles` (hands raw to mwh_loader, the dbt schemas to mwh_transformer), a load as
mwh_loader, `mwh build` as mwh_transformer, then each role tries what it may and may not do. Roles are
cluster-wide: the test shares them with any other database of the server, as a real one would.
"""

from __future__ import annotations

import secrets
import time

import psycopg
import pytest

from market_warehouse import build_state, roles
from market_warehouse.cli import main
from market_warehouse.config import load_target
from market_warehouse.dbt import Warehouse

SAMPLE_FILES = ["data/sample/alphavantage/DA-AAPL-T-2021-04-21.csv.gz",
                "data/sample/alphavantage/DA-MSFT-T-2021-04-21.csv.gz"]
MART = "marts.fct_bars_1d"
DENIED = (psycopg.errors.InsufficientPrivilege,)


def _as(target, user: str) -> psycopg.Connection:
    return psycopg.connect(target.conninfo().replace(f"user={target.user}", f"user={user}"), autocommit=True)


def _denied(conn: psycopg.Connection, statement: str) -> bool:
    try:
        conn.execute(statement)
    except DENIED:
        return True
    return False


def _privileges(target) -> list[tuple]:
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        return roles._privileges(conn)


@pytest.mark.postgres
@pytest.mark.parametrize("which", ["timescale", "postgres"])
def test_roles_least_privilege(which, request, monkeypatch, capsys, tmp_path):
    t0 = time.monotonic()
    admin = request.getfixturevalue(f"{which}_target")
    passwords = {v: secrets.token_urlsafe(12) for v in
                 ("MWH_LOADER_PASSWORD", "MWH_TRANSFORMER_PASSWORD", "MWH_ANALYST_PASSWORD")}
    for var, value in passwords.items():
        monkeypatch.setenv(var, value)

    # An existing warehouse: loaded by the administrator before any role existed.
    assert main(["load", "csv", SAMPLE_FILES[0], "--format", "alphavantage"]) == 0
    capsys.readouterr()

    assert main(["roles"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for role in (roles.LOADER, roles.TRANSFORMER, roles.ANALYST):
        assert any(line.startswith(f"{role}: ") for line in lines), out
    assert "handed to their owner role" in out  # raw's tables changed hands
    assert not any(p in out for p in passwords.values())
    with psycopg.connect(admin.conninfo(), autocommit=True) as conn:
        stored = dict(conn.execute("select rolname, rolpassword from pg_authid where rolname like 'mwh\\_%%'"))
        owners = dict(conn.execute("select nspname, nspowner::regrole::text from pg_namespace "
                                   "where nspname in ('raw', 'marts', 'test_failures', 'staging')"))
        (bars_owner,) = conn.execute("select relowner::regrole::text from pg_class "
                                     "where oid = 'raw.bars'::regclass").fetchone()
    for role in (roles.LOADER, roles.TRANSFORMER, roles.ANALYST):  # SCRAM verifiers, never the clear text
        assert stored[role].startswith("SCRAM-SHA-256$")
        assert not any(p in stored[role] for p in passwords.values())
    assert owners == {"raw": roles.LOADER, "marts": roles.TRANSFORMER, "test_failures": roles.TRANSFORMER,
                      "staging": roles.TRANSFORMER}
    assert bars_owner == roles.LOADER

    # The loader loads; the transformer builds (dbt, with the marts' grants and the stored test failures).
    monkeypatch.setenv("MWH_PG_USER", roles.LOADER)
    assert main(["load", "csv", SAMPLE_FILES[1], "--format", "alphavantage"]) == 0
    monkeypatch.setenv("MWH_PG_USER", roles.TRANSFORMER)
    t_build = time.monotonic()
    assert main(["build", "--select", "+fct_bars_1d"]) == 0
    build_s = time.monotonic() - t_build
    monkeypatch.setenv("MWH_PG_USER", admin.user)
    capsys.readouterr()

    # Idempotent: a second run changes no privilege and no owner, and says so.
    before = _privileges(admin)
    assert main(["roles"]) == 0
    out = capsys.readouterr().out
    assert _privileges(admin) == before
    assert all(": up to date;" in line for line in out.splitlines()), out

    target = load_target()
    with _as(target, roles.ANALYST) as conn:
        n = conn.execute(f"select count(*), count(distinct symbol) from {MART}").fetchone()
        assert n[0] > 10_000 and n[1] == 2, n
        assert "Daily bars" in conn.execute(f"select obj_description('{MART}'::regclass)").fetchone()[0]
        schemas = {s for (s,) in conn.execute(
            "select distinct table_schema from information_schema.tables "
            "where table_schema not in ('information_schema', 'pg_catalog') "
            "and table_schema not like '%timescaledb%'")}
        assert schemas == {"marts"}, schemas  # test_failures, raw, staging ... are out of sight
        for statement in ("select * from raw.bars limit 1", "select * from staging.stg_market__bars limit 1",
                          "select * from reference.exchanges limit 1",
                          "select * from intermediate.int_market__bars_unioned_1d limit 1",
                          f"insert into {MART} select * from {MART} limit 1", f"delete from {MART}",
                          f"update {MART} set close = 0", f"truncate {MART}", f"drop table {MART}",
                          "create table marts.x (i int)", "create table public.x (i int)",
                          "create temporary table x (i int)", "create schema x",
                          "insert into raw.bars (symbol) values ('X')"):
            assert _denied(conn, statement), f"mwh_analyst may: {statement}"
    with psycopg.connect(admin.conninfo(), autocommit=True) as conn:
        (failures,) = conn.execute("select table_name from information_schema.tables "
                                   "where table_schema = 'test_failures' limit 1").fetchone()
    with _as(target, roles.ANALYST) as conn:
        assert _denied(conn, f'select * from test_failures."{failures}"')

    with _as(target, roles.LOADER) as conn:
        assert conn.execute("select count(distinct symbol) from raw.bars").fetchone()[0] == 2
        for statement in (f"select * from {MART} limit 1", f"delete from {MART}", f"drop table {MART}",
                          "create table marts.x (i int)", "create schema x",
                          "select * from staging.stg_market__bars limit 1",
                          f'select * from test_failures."{failures}"'):
            assert _denied(conn, statement), f"mwh_loader may: {statement}"

    with _as(target, roles.TRANSFORMER) as conn:
        assert conn.execute("select count(*) from raw.bars").fetchone()[0] > 10_000  # dbt reads raw
        assert _denied(conn, "delete from raw.bars")  # and does not write it

    # ... except `mwh build`'s bookkeeping: the fingerprints of its last successful build, written as a plain
    # build writes them (emptied when the build starts, written when it succeeds), without CREATE on raw.
    monkeypatch.setenv("MWH_PG_USER", roles.TRANSFORMER)
    capsys.readouterr()
    with Warehouse(load_target()) as wh:
        build_state.clear_state(wh)
        build_state.write_state(wh, "p", {"source.x": "1:2"})
        assert build_state.read_state(wh) == ("p", {"source.x": "1:2"})
    assert "warning" not in capsys.readouterr().out
    monkeypatch.setenv("MWH_PG_USER", admin.user)
    print(f"\n{which}: roles test {time.monotonic() - t0:.0f}s (build as mwh_transformer {build_s:.0f}s)")


def test_roles_duckdb_says_one_line(duckdb_target, capsys):
    assert main(["roles"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "server feature" in out[0]


@pytest.mark.postgres
def test_roles_needs_an_administrator(timescale_target, monkeypatch, capsys):
    """A user that may not create roles gets one line naming the setting, not a traceback."""
    assert main(["roles"]) == 0  # the roles exist
    capsys.readouterr()
    monkeypatch.setenv("MWH_PG_USER", roles.ANALYST)
    assert main(["roles"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MWH_PG_USER" in err[0] and "mwh_analyst" in err[0], err


@pytest.mark.postgres
def test_scheduler_login_with_both_roles_loads_and_builds(timescale_target, monkeypatch, capsys):
    """`mwh run` loads and builds, so its login is granted both roles (docs/bi.md): it loads into raw,
    and creates in the dbt schemas what a build creates (dbt's `create table ... as select` reading raw).
    What it creates is its own, not mwh_transformer's, until `mwh roles` hands it over."""
    t0 = time.monotonic()
    for var in ("MWH_LOADER_PASSWORD", "MWH_TRANSFORMER_PASSWORD", "MWH_ANALYST_PASSWORD"):
        monkeypatch.setenv(var, secrets.token_urlsafe(12))
    assert main(["load", "csv", SAMPLE_FILES[0], "--format", "alphavantage"]) == 0
    assert main(["roles"]) == 0
    login = f"mwh_scheduler_{secrets.token_hex(4)}"  # roles are cluster-wide: a name of its own
    admin = psycopg.connect(timescale_target.conninfo(), autocommit=True)
    admin.execute(psycopg.sql.SQL("create role {} login in role {}, {}").format(
        psycopg.sql.Identifier(login), psycopg.sql.Identifier(roles.LOADER),
        psycopg.sql.Identifier(roles.TRANSFORMER)))
    try:
        monkeypatch.setenv("MWH_PG_USER", login)
        assert main(["load", "csv", SAMPLE_FILES[1], "--format", "alphavantage"]) == 0
        with _as(load_target(), login) as conn:
            assert conn.execute("select count(distinct symbol) from raw.bars").fetchone()[0] == 2
            conn.execute("create table staging.scheduler_probe as select symbol, count(*) as n from raw.bars "
                         "group by symbol")
            assert conn.execute("select count(*) from staging.scheduler_probe").fetchone()[0] == 2

        def owner() -> str:
            return admin.execute("select relowner::regrole::text from pg_class "
                                 "where oid = 'staging.scheduler_probe'::regclass").fetchone()[0]

        assert owner() == login  # a later build as mwh_transformer could not replace it ...
        monkeypatch.setenv("MWH_PG_USER", timescale_target.user)
        assert main(["roles"]) == 0
        assert owner() == roles.TRANSFORMER  # ... until `mwh roles` hands it over
        capsys.readouterr()
    finally:
        admin.execute(psycopg.sql.SQL("drop owned by {}").format(psycopg.sql.Identifier(login)))
        admin.execute(psycopg.sql.SQL("drop role {}").format(psycopg.sql.Identifier(login)))
        admin.close()
    print(f"\nscheduler login test {time.monotonic() - t0:.0f}s")
