{#
    The ML raw tables exist once `market_warehouse/ml` first writes (or `open_ml_sink` opens) a warehouse; a
    warehouse holding only market data has none. So that `dbt build` works there too, the ML staging
    models read their source through this macro: the table when it exists, else an empty relation with
    the declared columns (`data_type` in models/staging/ml/_ml__sources.yml, the loaders' logical types,
    mapped to this target's types by the source's meta.physical_types; both generated from the Python
    declarations by `mwh schema --write`).
    source() is called either way, so the lineage is the same.
#}

{% macro mwh_ml_source(table_name) -%}
    {%- set relation = source('ml', table_name) -%}
    {%- if execute and not mwh_relation_exists(relation) -%}
        {{- return(mwh_ml_empty_source(table_name)) -}}
    {%- endif -%}
    {{- return(relation) -}}
{%- endmacro %}


{#-
    Whether a relation exists, asked of the database at the moment of the call, not of dbt's relation
    cache. No model lives in `raw`, so dbt does not list that schema when a run starts: the first
    adapter.get_relation on it lists it and adds its relations to the cache one by one, and the first
    one added already marks the schema as cached (dbt-adapters 1.24, BaseAdapter.list_relations and
    RelationsCache.add). Another thread asking in that moment is answered from the half-filled cache,
    so a table that exists can come back as missing: make test once built stg_ml__signals as the
    empty stand-in that way (tests/python/models/test_ml_source_cache_race.py forces the interleaving).
    Spark builds no model that reads a source through this (and runs one thread): the cache there.
-#}
{% macro mwh_relation_exists(relation) -%}
    {{- return(adapter.dispatch('mwh_relation_exists', 'market_warehouse')(relation)) -}}
{%- endmacro %}

{% macro duckdb__mwh_relation_exists(relation) -%}
    {%- set found = run_query(
        "select count(*) from system.information_schema.tables"
        ~ " where lower(table_catalog) = lower('" ~ relation.database ~ "')"
        ~ " and lower(table_schema) = lower('" ~ relation.schema ~ "')"
        ~ " and lower(table_name) = lower('" ~ relation.identifier ~ "')") -%}
    {{- return(found.columns[0].values()[0] > 0) -}}
{%- endmacro %}

{#- pg_class, as dbt's own listing (pg_tables, pg_views, pg_matviews): it shows a relation whatever the
    role's privileges on it, where information_schema shows only those it may use. -#}
{% macro postgres__mwh_relation_exists(relation) -%}
    {%- set found = run_query(
        "select count(*) from pg_catalog.pg_class as c"
        ~ " join pg_catalog.pg_namespace as n on n.oid = c.relnamespace"
        ~ " where n.nspname = lower('" ~ relation.schema ~ "')"
        ~ " and c.relname = lower('" ~ relation.identifier ~ "')"
        ~ " and c.relkind in ('r', 'p', 'v', 'm', 'f')") -%}
    {{- return(found.columns[0].values()[0] > 0) -}}
{%- endmacro %}

{% macro default__mwh_relation_exists(relation) -%}
    {{- return(adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier) is not none) -}}
{%- endmacro %}


{% macro mwh_ml_empty_source(table_name) -%}
    {%- set node = graph.sources['source.' ~ project_name ~ '.ml.' ~ table_name] -%}
    {%- set columns = [] -%}
    {%- for name, column in node.columns.items() -%}
        {%- do columns.append('cast(null as ' ~ mwh_ml_physical_type(column.data_type) ~ ') as ' ~ adapter.quote(name)) -%}
    {%- endfor -%}
    {{- return('(select ' ~ columns | join(', ') ~ ' where 1 = 0) as empty_' ~ table_name) -}}
{%- endmacro %}


{#- A logical type of market_warehouse/loaders/schema.py as this target spells it. The map is not copied here: it is
    generated from market_warehouse/loaders/schema.py TYPES into the ml source's meta.physical_types (`mwh schema --write`). -#}
{% macro mwh_ml_physical_type(logical_type) -%}
    {%- set source = graph.sources.values() | selectattr('source_name', 'equalto', 'ml') | first -%}
    {%- set dialect = 'duckdb' if target.type == 'duckdb' else 'postgres' -%}
    {{- return(source.meta.physical_types[dialect][logical_type]) -}}
{%- endmacro %}
