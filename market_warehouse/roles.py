"""`mwh roles`: least-privilege roles on PostgreSQL/TimescaleDB, created idempotently.

- `mwh_loader` writes raw only: it owns the schema `raw` and its tables (the loaders create them),
  and has no privilege on any schema dbt builds.
- `mwh_transformer` is dbt: it owns the schemas dbt builds (staging, intermediate, marts, reference,
  snapshots, test_failures, analytics) and everything in them, and reads raw (SELECT, also on raw
  tables the loader creates later); in raw it writes only `mwh build`'s bookkeeping: the record of the
  seed files (raw.mwh_seed_state) and of the last successful build (raw.mwh_build_state), which it owns.
- `mwh_analyst` reads marts, nothing else: USAGE on `marts`, SELECT on its tables and views, and
  default privileges so marts built later are readable too (dbt's `grants` config in
  dbt_project.yml grants the same on every build). The docs dbt persists as comments
  (`persist_docs`) are readable with them. `test_failures` and every other schema stay out of its
  sight (no USAGE: it can neither read them nor list their tables in information_schema).

Run it as an administrator of the target (a superuser, or a role with CREATEROLE that owns the
database). Passwords come from the environment only (MWH_LOADER_PASSWORD, MWH_TRANSFORMER_PASSWORD,
MWH_ANALYST_PASSWORD); they are sent to the server as SCRAM verifiers, never in clear. A role whose
variable is unset keeps its password (or has none). Objects an earlier user created in these
schemas (a warehouse loaded and built as `postgres`) are handed to their role's owner, so the roles
can replace them. Re-running changes nothing and says so.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import psycopg
from psycopg import sql

from market_warehouse import build_state
from market_warehouse.config import Target, load_target
from market_warehouse.loaders.schema import RAW_SCHEMA

LOADER, TRANSFORMER, ANALYST = "mwh_loader", "mwh_transformer", "mwh_analyst"
# Every schema dbt builds (dbt_project.yml's +schema configs, and the profile's default schema).
DBT_SCHEMAS = ("staging", "intermediate", "marts", "reference", "snapshots", "test_failures", "analytics")
ANALYST_SCHEMAS = ("marts",)
SEED_STATE = "mwh_seed_state"  # market_warehouse/loaders/sinks/base.py Sink.SEED_STATE, in raw
# The tables in raw that `mwh build` (dbt's role) writes, and their columns.
BUILD_BOOKKEEPING = {SEED_STATE: "checksum text not null",
                     build_state.STATE_TABLE.split(".", 1)[1]: build_state.STATE_COLUMNS}


@dataclass(frozen=True)
class RoleSpec:
    name: str
    password_var: str
    what: str


ROLES = (
    RoleSpec(LOADER, "MWH_LOADER_PASSWORD", f"writes {RAW_SCHEMA} only (owns it)"),
    RoleSpec(TRANSFORMER, "MWH_TRANSFORMER_PASSWORD",
             f"dbt: owns {', '.join(DBT_SCHEMAS)}; reads {RAW_SCHEMA}"),
    RoleSpec(ANALYST, "MWH_ANALYST_PASSWORD", f"reads {', '.join(ANALYST_SCHEMAS)} (and their docs) only"),
)


class RolesError(Exception):
    """The administrator cannot apply the roles; the message is the one line to print."""


def _ident(*parts: str) -> sql.Identifier:
    return sql.Identifier(*parts)


def _role_exists(conn: psycopg.Connection, name: str) -> bool:
    return bool(conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone())


def _privileges(conn: psycopg.Connection) -> list[tuple]:
    """Every privilege our roles were granted in this database (an owner's own are implied, whether its
    ACL is spelled out or not), and every owner of our schemas' objects: what a re-run must leave
    unchanged."""
    names = [r.name for r in ROLES]
    rows = conn.execute(
        """
        select 'schema', n.nspname, '', a.grantee::regrole::text, a.privilege_type
        from pg_namespace n, aclexplode(n.nspacl) a
        where a.grantee <> 0 and a.grantee <> n.nspowner and a.grantee::regrole::text = any(%(r)s)
        union all
        select 'relation', n.nspname, c.relname, a.grantee::regrole::text, a.privilege_type
        from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a
        where a.grantee <> 0 and a.grantee <> c.relowner and a.grantee::regrole::text = any(%(r)s)
        union all
        select 'default', coalesce(n.nspname, ''), d.defaclobjtype::text, a.grantee::regrole::text,
               d.defaclrole::regrole::text || ':' || a.privilege_type
        from pg_default_acl d left join pg_namespace n on n.oid = d.defaclnamespace,
             aclexplode(d.defaclacl) a
        where a.grantee <> 0 and a.grantee::regrole::text = any(%(r)s)
        union all
        select 'owner', n.nspname, c.relname, c.relowner::regrole::text, c.relkind::text
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any(%(s)s) and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
        order by 1, 2, 3, 4, 5
        """,
        {"r": names, "s": [RAW_SCHEMA, *DBT_SCHEMAS]},
    ).fetchall()
    return rows


def _ensure_role(conn: psycopg.Connection, spec: RoleSpec) -> tuple[str, str]:
    """Create the role if missing, pin its attributes, set its password from the environment."""
    state = "exists"
    if not _role_exists(conn, spec.name):
        try:
            with conn.transaction():  # a savepoint: the outer transaction survives a lost race
                conn.execute(sql.SQL("create role {} login").format(_ident(spec.name)))
            state = "created"
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):  # another `mwh roles` won
            pass
    conn.execute(sql.SQL("alter role {} login nosuperuser nocreatedb nocreaterole noreplication nobypassrls")
                 .format(_ident(spec.name)))
    password = os.environ.get(spec.password_var)
    if password:
        # A SCRAM verifier computed here by libpq: the clear password never reaches the server or its logs.
        verifier = conn.pgconn.encrypt_password(password.encode(), spec.name.encode(), b"scram-sha-256")
        conn.execute(sql.SQL("alter role {} password {}").format(_ident(spec.name),
                                                                 sql.Literal(verifier.decode())))
        pw = f"password from {spec.password_var}"
    elif state == "created":
        pw = f"no password ({spec.password_var} unset: set it and rerun for password logins)"
    else:
        pw = f"password left as it was ({spec.password_var} unset)"
    return state, pw


def _own_schema(conn: psycopg.Connection, schema: str, owner: str, exclude: tuple[str, ...] = ()) -> int:
    """The schema exists and belongs to `owner`, and so does every relation in it. Returns how many
    objects changed owner."""
    changed = 0
    row = conn.execute("select nspowner::regrole::text from pg_namespace where nspname = %s",
                       (schema,)).fetchone()
    if row is None:
        conn.execute(sql.SQL("create schema {} authorization {}").format(_ident(schema), _ident(owner)))
    elif row[0] != owner:
        conn.execute(sql.SQL("alter schema {} owner to {}").format(_ident(schema), _ident(owner)))
        changed += 1
    has_caggs = bool(conn.execute(
        "select 1 from pg_extension where extname = 'timescaledb'").fetchone())
    caggs: set[str] = set()
    if has_caggs:
        caggs = {r[0] for r in conn.execute(
            "select view_name from timescaledb_information.continuous_aggregates where view_schema = %s",
            (schema,))}
    # Tables, views, materialized views, foreign tables, and sequences not owned by a column (those
    # follow their table). Indexes and a hypertable's chunks follow their table too.
    rows = conn.execute(
        """
        select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = %s and c.relowner::regrole::text <> %s and c.relname <> all(%s)
          and (c.relkind in ('r', 'p', 'v', 'm', 'f')
               or (c.relkind = 'S' and not exists (
                   select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid
                     and d.deptype in ('a', 'i'))))
        order by c.relname
        """, (schema, owner, list(exclude))).fetchall()
    kinds = {"r": "table", "p": "table", "f": "foreign table", "v": "view", "m": "materialized view",
             "S": "sequence"}
    for name, kind in rows:
        what = "materialized view" if name in caggs else kinds[kind]
        conn.execute(sql.SQL("alter {} {} owner to {}").format(
            sql.SQL(what), _ident(schema, name), _ident(owner)))
        changed += 1
    conn.execute(sql.SQL("revoke all on schema {} from public").format(_ident(schema)))
    return changed


def apply_roles(target: Target) -> list[str]:
    """Create or converge the roles and their privileges in the target's database; one line per role."""
    db = target.dbname
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        before = _privileges(conn) if all(_role_exists(conn, r.name) for r in ROLES) else None
        with conn.transaction():
            states = {spec.name: _ensure_role(conn, spec) for spec in ROLES}
            dbi = _ident(db)
            # Nobody writes by default: no temporary tables for PUBLIC (PostgreSQL's default grants them
            # to everyone), no CREATE in `public` (the default before PostgreSQL 15).
            conn.execute(sql.SQL("revoke temporary on database {} from public").format(dbi))
            if conn.execute("select 1 from pg_namespace where nspname = 'public'").fetchone():
                conn.execute("revoke create on schema public from public")
            for spec in ROLES:
                conn.execute(sql.SQL("grant connect on database {} to {}").format(dbi, _ident(spec.name)))
            # The loader and dbt stage rows in temporary tables; dbt may add a schema.
            conn.execute(sql.SQL("grant temporary on database {} to {}, {}").format(
                dbi, _ident(LOADER), _ident(TRANSFORMER)))
            conn.execute(sql.SQL("grant create on database {} to {}").format(dbi, _ident(TRANSFORMER)))
            conn.execute(sql.SQL("revoke create, temporary on database {} from {}").format(
                dbi, _ident(ANALYST)))

            moved = _own_schema(conn, RAW_SCHEMA, LOADER, exclude=tuple(BUILD_BOOKKEEPING))
            raw = _ident(RAW_SCHEMA)
            # `mwh build`'s bookkeeping (which seed files `reference` was built from, and the fingerprints
            # of its last successful build) is dbt's to write.
            for table, columns in BUILD_BOOKKEEPING.items():
                owner = conn.execute("select relowner::regrole::text from pg_class where oid = to_regclass(%s)",
                                     (f"{RAW_SCHEMA}.{table}",)).fetchone()
                if owner is None:
                    conn.execute(sql.SQL("create table {} ({})").format(_ident(RAW_SCHEMA, table),
                                                                        sql.SQL(columns)))
                if owner is None or owner[0] != TRANSFORMER:
                    conn.execute(sql.SQL("alter table {} owner to {}").format(_ident(RAW_SCHEMA, table),
                                                                             _ident(TRANSFORMER)))
                    moved += owner is not None
            conn.execute(sql.SQL("grant usage on schema {} to {}").format(raw, _ident(TRANSFORMER)))
            conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(
                raw, _ident(TRANSFORMER)))
            conn.execute(sql.SQL("alter default privileges for role {} in schema {} grant select on tables to {}")
                         .format(_ident(LOADER), raw, _ident(TRANSFORMER)))
            for schema in DBT_SCHEMAS:
                moved += _own_schema(conn, schema, TRANSFORMER)
            for schema in DBT_SCHEMAS + (RAW_SCHEMA,):  # converge: nothing but what is granted here
                s = _ident(schema)
                if schema not in ANALYST_SCHEMAS:
                    conn.execute(sql.SQL("revoke all on schema {} from {}").format(s, _ident(ANALYST)))
                    conn.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(
                        s, _ident(ANALYST)))
                if schema != RAW_SCHEMA:
                    conn.execute(sql.SQL("revoke all on schema {} from {}").format(s, _ident(LOADER)))
                    conn.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(
                        s, _ident(LOADER)))
            for schema in ANALYST_SCHEMAS:
                s = _ident(schema)
                conn.execute(sql.SQL("grant usage on schema {} to {}").format(s, _ident(ANALYST)))
                conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(
                    s, _ident(ANALYST)))
                conn.execute(sql.SQL(
                    "alter default privileges for role {} in schema {} grant select on tables to {}")
                    .format(_ident(TRANSFORMER), s, _ident(ANALYST)))
        after = _privileges(conn)
    unchanged = before is not None and before == after and not moved
    lines = []
    for spec in ROLES:
        state, pw = states[spec.name]
        verb = "created" if state == "created" else ("up to date" if unchanged else "updated")
        lines.append(f"{spec.name}: {verb}; {spec.what}; {pw}")
    if moved:
        lines.append(f"{moved} existing schemas/tables/views handed to their owner role "
                     f"({LOADER} for {RAW_SCHEMA}, {TRANSFORMER} for the dbt schemas)")
    return lines


def cmd_roles(args) -> int:
    target = load_target(args.target)
    if target.type == "duckdb":
        print(f"mwh roles: {target.describe()} is DuckDB, an embedded file with no users: roles are a "
              f"PostgreSQL/TimescaleDB server feature (MWH_TARGET=timescale or postgres)")
        return 0
    try:
        lines = apply_roles(target)
    except psycopg.errors.InsufficientPrivilege as exc:
        msg = " ".join(str(exc).split())
        print(f"mwh roles: user {target.user!r} cannot set up the roles in database {target.dbname!r}: {msg} "
              f"(run it as a superuser, or a role with CREATEROLE that owns the database: set MWH_PG_USER)",
              file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def register(sub) -> None:
    r = sub.add_parser(
        "roles", help="create the least-privilege roles mwh_loader, mwh_transformer, mwh_analyst "
                      "(PostgreSQL/TimescaleDB; idempotent)",
        description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    r.set_defaults(func=cmd_roles)


__all__ = ["ANALYST", "DBT_SCHEMAS", "LOADER", "ROLES", "TRANSFORMER", "apply_roles", "register"]
