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


{#- Types (Spark has no `double precision`, `timestamp with time zone` or unsized `varchar`). Spark's
    `timestamp` is an instant (TIMESTAMP_LTZ), shown in the session time zone, which the profile sets to UTC. -#}
{% macro spark__mwh_double() -%}
    double
{%- endmacro %}

{% macro spark__mwh_timestamptz() -%}
    timestamp
{%- endmacro %}

{% macro spark__mwh_varchar() -%}
    string
{%- endmacro %}

{#- Incremental models on Spark: dbt-spark offers append, insert_overwrite (whole partitions) and merge
    (Delta, Iceberg and Hudi only). The models replace rows by key (delete+insert), which a Parquet table
    cannot do, and a partition overwrite would drop the rows of a partition outside the run's window; so
    on Parquet they are tables rebuilt by every run (incremental equals full refresh by construction).
    With a table format that has MERGE (var mwh_spark_table_format: delta or iceberg, once its jars can
    be installed) they stay incremental with the merge strategy on the same unique_key. -#}
{% macro spark__mwh_incremental_materialization(materialized='incremental') -%}
    {%- if var('mwh_spark_table_format', 'parquet') in ('delta', 'iceberg', 'hudi') -%}
        {{ return('incremental') }}
    {%- endif -%}
    {{ return('table') }}
{%- endmacro %}

{% macro spark__mwh_incremental_strategy(strategy='delete+insert') -%}
    {{ return('merge' if strategy == 'delete+insert' else strategy) }}
{%- endmacro %}

{#- Dates and instants: the session time zone is UTC (profile), so a timestamp cast to a date is its
    UTC date and a date cast to a timestamp is its UTC midnight. -#}
{% macro spark__mwh_utc_date(ts) -%}
    cast({{ ts }} as date)
{%- endmacro %}

{% macro spark__mwh_local_date(ts, tz_expr) -%}
    cast(from_utc_timestamp({{ ts }}, {{ tz_expr }}) as date)
{%- endmacro %}

{% macro spark__mwh_date_to_utc_ts(date_expr) -%}
    cast({{ date_expr }} as timestamp)
{%- endmacro %}

{% macro spark__mwh_utc_midnight_days_before(ts, days) -%}
    cast(date_sub(cast({{ ts }} as date), {{ days }}) as timestamp)
{%- endmacro %}

{% macro spark__mwh_integer_series(start, stop) -%}
    explode(sequence({{ start }}, {{ stop }})) as integer_series (n)
{%- endmacro %}

{% macro spark__mwh_min_ts() -%}
    timestamp '1900-01-01 00:00:00'
{%- endmacro %}

{% macro spark__mwh_json_text(json_col) -%}
    cast({{ json_col }} as string)
{%- endmacro %}

{#- No `distinct on`, and Spark 4.0 has no QUALIFY: a row_number() in a subquery. The result carries
    one extra column, mwh_newest_rank (always 1); callers select their columns by name. -#}
{% macro spark__mwh_newest_per_key(relation, key, newest_first) -%}
    select *
    from (
        select
            *,
            row_number() over (partition by {{ key | join(', ') }} order by {{ newest_first | join(', ') }}) as mwh_newest_rank
        from {{ relation }}
    ) as ranked
    where mwh_newest_rank = 1
{%- endmacro %}

{#- Spark has no MATERIALIZED CTEs (its optimizer reuses a CTE's exchange where it can). -#}
{% macro spark__mwh_materialized_cte() -%}
{%- endmacro %}


{#- Seeds on Spark: dbt-spark 1.11 inserts seed rows as literals with each value in quotes, unescaped
    (a name such as McDonald's fails the statement), and parses one large INSERT per 10,000 rows
    (the 35,525-row calendar took minutes). Spark reads the CSV file itself instead: a temporary view
    over it, then one insert casting every column to the seed's column_types (or dbt's inferred type);
    empty fields are null, as dbt's loader makes them. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set path = model['root_path'] ~ '/' ~ model['original_file_path'] -%}
    {%- call statement('mwh_seed_view') -%}
        create or replace temporary view mwh_seed_csv
        using csv options (path '{{ path }}', header 'true', escape '"', multiLine 'true')
    {%- endcall -%}
    {%- set sql -%}
        insert into {{ this.render() }}
        select
            {%- for col_name in agate_table.column_names %}
            cast(`{{ col_name }}` as {{ column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) }})
            {%- if not loop.last %},{% endif %}
            {%- endfor %}
        from mwh_seed_csv
    {%- endset -%}
    {%- call statement('mwh_seed_insert') -%}{{ sql }}{%- endcall -%}
    {{ return(sql) }}
{% endmacro %}

{% macro spark__mwh_days_between(start_date, end_date) -%}
    datediff({{ end_date }}, {{ start_date }})
{%- endmacro %}

{% macro spark__mwh_named_window(name, definition) -%}
    {{ definition }}
{%- endmacro %}


{#- Model contracts on Spark. dbt checks a contracted model by selecting `cast(null as <data_type>)` for
    every declared column, and the contracts declare the types DuckDB and PostgreSQL share (`timestamp
    with time zone`, `double precision`), which Spark does not parse. Here the model's columns are
    checked by name (none missing, none extra); their types are Spark's own (double, timestamp,
    string: mwh_double, mwh_timestamptz, mwh_varchar) and are checked on the other targets. -#}
{% macro spark__get_assert_columns_equivalent(sql) -%}
    {%- set got = get_column_schema_from_query(sql) | map(attribute='name') | map('lower') | list -%}
    {%- set declared = model['columns'].values() | map(attribute='name') | map('lower') | list -%}
    {%- set missing = declared | reject('in', got) | list -%}
    {%- set extra = got | reject('in', declared) | list -%}
    {%- if missing or extra -%}
        {{ exceptions.raise_compiler_error(
            "The contract of " ~ model['name'] ~ " does not match its query on Spark: missing "
            ~ (missing | join(', ') or 'none') ~ "; not declared " ~ (extra | join(', ') or 'none')) }}
    {%- endif -%}
{%- endmacro %}


