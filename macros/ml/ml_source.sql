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
    {%- if execute -%}
        {%- set existing = adapter.get_relation(
            database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
        {%- if existing is none -%}
            {{- return(mwh_ml_empty_source(table_name)) -}}
        {%- endif -%}
    {%- endif -%}
    {{- return(relation) -}}
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
