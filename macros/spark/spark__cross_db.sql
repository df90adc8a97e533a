{#
    Spark (dbt-spark, Spark 4) implementations of the dispatched cross-database macros in
    macros/cross_db.sql; adapter.dispatch finds them by their `spark__` prefix. The session time zone is
    UTC (profile), so Spark's `timestamp` (an instant) reads and prints as UTC. docs/spark.md lists
    what the models still need before they build on Spark.
#}

{#- Microseconds in a width such as '1000 milliseconds', '5 minutes', '1 hour', '1 day'. -#}
{% macro mwh_spark_width_micros(width) -%}
    {%- set parts = width.strip().split() -%}
    {%- set n = parts[0] | int -%}
    {%- set unit = parts[1].lower().rstrip('s') -%}
    {%- set micros = {'microsecond': 1, 'millisecond': 1000, 'second': 1000000, 'minute': 60000000,
                      'hour': 3600000000, 'day': 86400000000, 'week': 604800000000} -%}
    {%- if unit not in micros -%}
        {{ exceptions.raise_compiler_error("mwh_time_bucket on Spark: unsupported width '" ~ width ~ "'") }}
    {%- endif -%}
    {{- n * micros[unit] -}}
{%- endmacro %}

{#- Buckets aligned to 2000-01-01 00:00 UTC, as time_bucket/date_bin elsewhere. -#}
{% macro spark__mwh_time_bucket(width, ts) -%}
    {%- set w = mwh_spark_width_micros(width) -%}
    timestamp_micros(946684800000000 + floor((unix_micros({{ ts }}) - 946684800000000) / {{ w }}) * {{ w }})
{%- endmacro %}

{% macro spark__mwh_first(value, order_by) -%}
    min_by({{ value }}, {{ order_by }})
{%- endmacro %}

{% macro spark__mwh_last(value, order_by) -%}
    max_by({{ value }}, {{ order_by }})
{%- endmacro %}

{% macro spark__mwh_round(expr, digits) -%}
    round(cast({{ expr }} as double), {{ digits }})
{%- endmacro %}

{#- A JSON number under `key` (strings, booleans and objects give null, as on the other targets). -#}
{% macro spark__mwh_json_number(json_col, key) -%}
    (case
        when schema_of_variant(try_variant_get(parse_json({{ json_col }}), '$.{{ key }}'))
            in ('BIGINT', 'DOUBLE', 'FLOAT', 'INT', 'SMALLINT', 'TINYINT')
            or schema_of_variant(try_variant_get(parse_json({{ json_col }}), '$.{{ key }}')) like 'DECIMAL%'
            then try_variant_get(parse_json({{ json_col }}), '$.{{ key }}', 'double')
    end)
{%- endmacro %}

{% macro spark__mwh_json_numbers(json_col) -%}
    (
        select
            j.key as feature_name,
            case
                when schema_of_variant(j.value) in ('BIGINT', 'DOUBLE', 'FLOAT', 'INT', 'SMALLINT', 'TINYINT')
                    or schema_of_variant(j.value) like 'DECIMAL%'
                    then cast(j.value as double)
            end as feature_value
        from variant_explode(parse_json({{ json_col }})) as j
    )
{%- endmacro %}

{% macro spark__mwh_seconds_between(start_ts, end_ts) -%}
    ((unix_micros({{ end_ts }}) - unix_micros({{ start_ts }})) / 1000000.0)
{%- endmacro %}

{% macro spark__mwh_iso_ts(ts) -%}
    date_format({{ ts }}, "yyyy-MM-dd'T'HH:mm:ss'Z'")
{%- endmacro %}
