{#- The raw tick tables exist only once `mwh load ticks` / `mwh stream binance` ran. Until then the
    staging models read an empty relation of the declared types, so `dbt build` works on a
    warehouse that holds bars only (the same device as mwh_ml_source). -#}
{% macro mwh_microstructure_source(table_name) -%}
    {%- set relation = source('microstructure', table_name) -%}
    {%- if execute -%}
        {#- the database's answer, not dbt's relation cache: see mwh_relation_exists (macros/ml/ml_source.sql) -#}
        {%- if not mwh_relation_exists(relation) -%}
            {%- set node = graph.sources['source.' ~ project_name ~ '.microstructure.' ~ table_name] -%}
            {%- set columns = [] -%}
            {%- for name, column in node.columns.items() -%}
                {%- do columns.append('cast(null as ' ~ mwh_ml_physical_type(column.data_type) ~ ') as '
                                      ~ adapter.quote(name)) -%}
            {%- endfor -%}
            {{- return('(select ' ~ columns | join(', ') ~ ' where 1 = 0) as empty_' ~ table_name) -}}
        {%- endif -%}
    {%- endif -%}
    {{- return(relation) -}}
{%- endmacro %}


{#- The book snapshots' grid step in milliseconds: var `book_snapshot_interval_ms`, 100 or 1000. -#}
{% macro mwh_book_snapshot_interval_ms() -%}
    {%- set step = var('book_snapshot_interval_ms', 1000) | int -%}
    {%- if step not in [100, 1000] -%}
        {{ exceptions.raise_compiler_error("var book_snapshot_interval_ms=" ~ step ~ ": must be 100 or 1000") }}
    {%- endif -%}
    {{- return(step) -}}
{%- endmacro %}
