{#
    JSON and statistics helpers of the ML models. The raw ML tables store JSON as `json` on DuckDB and
    `jsonb` on PostgreSQL/TimescaleDB; these macros hide the difference (adapter.dispatch).
#}

{#- A number stored under `key` of a JSON object column; null when absent or not a number. -#}
{% macro mwh_ml_json_number(json_col, key) -%}
    {{ return(adapter.dispatch('mwh_ml_json_number', 'market_warehouse')(json_col, key)) }}
{%- endmacro %}

{% macro duckdb__mwh_ml_json_number(json_col, key) -%}
    try_cast(json_extract_string({{ json_col }}, '$.{{ key }}') as double)
{%- endmacro %}

{% macro postgres__mwh_ml_json_number(json_col, key) -%}
    (case
        when jsonb_typeof(cast({{ json_col }} as jsonb) -> '{{ key }}') = 'number'
            then cast(cast({{ json_col }} as jsonb) ->> '{{ key }}' as double precision)
    end)
{%- endmacro %}


{#- The JSON value as text (for display and for comparing JSON across targets). -#}
{% macro mwh_ml_json_text(json_col) -%}
    cast({{ json_col }} as varchar)
{%- endmacro %}


{#- A subquery yielding one row (feature_name, feature_value) per key of a JSON object column; use as
    `cross join lateral {{ mwh_ml_json_numbers('p.features') }} as f`. Non-numeric values are null. -#}
{% macro mwh_ml_json_numbers(json_col) -%}
    {{ return(adapter.dispatch('mwh_ml_json_numbers', 'market_warehouse')(json_col)) }}
{%- endmacro %}

{% macro duckdb__mwh_ml_json_numbers(json_col) -%}
    (
        select
            j.key as feature_name,
            case
                when j.type in ('DOUBLE', 'BIGINT', 'UBIGINT', 'INTEGER') then cast(j.atom as double)
            end as feature_value
        from json_each({{ json_col }}) as j
    )
{%- endmacro %}

{% macro postgres__mwh_ml_json_numbers(json_col) -%}
    (
        select
            j.key as feature_name,
            case
                when jsonb_typeof(j.value) = 'number' then cast(j.value #>> '{}' as double precision)
            end as feature_value
        from jsonb_each(cast({{ json_col }} as jsonb)) as j
    )
{%- endmacro %}


{#- Continuous percentile (0..1) of `expr`, as an ordered-set aggregate (both targets have it). -#}
{% macro mwh_ml_percentile(expr, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expr }})
{%- endmacro %}


{#- A boolean as 1/0 (for sums and means). -#}
{% macro mwh_ml_int(bool_expr) -%}
    (case when {{ bool_expr }} then 1 else 0 end)
{%- endmacro %}


{#- A double rounded for messages, as text. -#}
{% macro mwh_ml_fmt(expr, digits=4) -%}
    cast({{ mwh_round(expr, digits) }} as varchar)
{%- endmacro %}


{#- Pearson correlation from sums (n, sum x, sum y, sum xy, sum x^2, sum y^2), so that it can be
    recomputed over any window of summed rows; null below two values or without variance. -#}
{% macro mwh_ml_correlation_from_sums(n, sx, sy, sxy, sxx, syy) -%}
    (case
        when {{ n }} >= 2
            and ({{ n }} * {{ sxx }} - {{ sx }} * {{ sx }}) > 0
            and ({{ n }} * {{ syy }} - {{ sy }} * {{ sy }}) > 0
            then ({{ n }} * {{ sxy }} - {{ sx }} * {{ sy }})
            / sqrt(({{ n }} * {{ sxx }} - {{ sx }} * {{ sx }}) * ({{ n }} * {{ syy }} - {{ sy }} * {{ sy }}))
    end)
{%- endmacro %}


{#- Seconds from one timestamptz to another (null if either is null). -#}
{% macro mwh_ml_seconds_between(start_ts, end_ts) -%}
    {{ return(adapter.dispatch('mwh_ml_seconds_between', 'market_warehouse')(start_ts, end_ts)) }}
{%- endmacro %}

{% macro duckdb__mwh_ml_seconds_between(start_ts, end_ts) -%}
    (epoch({{ end_ts }}) - epoch({{ start_ts }}))
{%- endmacro %}

{% macro postgres__mwh_ml_seconds_between(start_ts, end_ts) -%}
    (extract(epoch from {{ end_ts }}) - extract(epoch from {{ start_ts }}))
{%- endmacro %}
