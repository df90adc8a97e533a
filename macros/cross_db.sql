{#
    Cross-database helpers. One model file serves DuckDB, TimescaleDB and plain PostgreSQL: anything
    whose SQL differs between them lives here behind adapter.dispatch (`duckdb__`, `postgres__`,
    `default__`). TimescaleDB and plain PostgreSQL share the postgres adapter, so the postgres variants
    ask `mwh_timescaledb_enabled()` whether the extension's functions (time_bucket, first, last) exist.
#}

{% macro mwh_timescaledb_enabled() -%}
    {#- var `timescaledb` (true/false) overrides the detection; otherwise look at pg_extension once
        per call site at run time. At parse time nothing is executed: answer false. -#}
    {%- if target.type != 'postgres' -%}
        {%- do return(false) -%}
    {%- endif -%}
    {%- set forced = var('timescaledb', none) -%}
    {%- if forced is not none -%}
        {%- do return(forced in [true, 'true', 'True', 1, '1']) -%}
    {%- endif -%}
    {%- if not execute -%}
        {%- do return(false) -%}
    {%- endif -%}
    {%- set result = run_query("select count(*) from pg_extension where extname = 'timescaledb'") -%}
    {%- do return(result.columns[0].values()[0] | int > 0) -%}
{%- endmacro %}


{# Start of the fixed-width bucket (e.g. '5 minutes', '1 hour') holding `ts`, aligned to UTC midnight. #}
{% macro mwh_time_bucket(width, ts) -%}
    {{ return(adapter.dispatch('mwh_time_bucket', 'market_warehouse')(width, ts)) }}
{%- endmacro %}

{% macro duckdb__mwh_time_bucket(width, ts) -%}
    time_bucket(interval '{{ width }}', {{ ts }}, timestamptz '2000-01-01 00:00:00+00')
{%- endmacro %}

{% macro postgres__mwh_time_bucket(width, ts) -%}
    {%- if mwh_timescaledb_enabled() -%}
        time_bucket(interval '{{ width }}', {{ ts }}, timestamptz '2000-01-01 00:00:00+00')
    {%- else -%}
        date_bin(interval '{{ width }}', {{ ts }}, timestamptz '2000-01-01 00:00:00+00')
    {%- endif -%}
{%- endmacro %}

{% macro default__mwh_time_bucket(width, ts) -%}
    date_bin(interval '{{ width }}', {{ ts }}, timestamp '2000-01-01 00:00:00')
{%- endmacro %}


{# Aggregate: `value` of the row with the smallest `order_by` in the group (a bar's open). #}
{% macro mwh_first(value, order_by) -%}
    {{ return(adapter.dispatch('mwh_first', 'market_warehouse')(value, order_by)) }}
{%- endmacro %}

{% macro duckdb__mwh_first(value, order_by) -%}
    arg_min({{ value }}, {{ order_by }})
{%- endmacro %}

{% macro postgres__mwh_first(value, order_by) -%}
    {%- if mwh_timescaledb_enabled() -%}
        first({{ value }}, {{ order_by }})
    {%- else -%}
        (array_agg({{ value }} order by {{ order_by }} asc))[1]
    {%- endif -%}
{%- endmacro %}

{% macro default__mwh_first(value, order_by) -%}
    min({{ value }})
{%- endmacro %}


{# Aggregate: `value` of the row with the largest `order_by` in the group (a bar's close). #}
{% macro mwh_last(value, order_by) -%}
    {{ return(adapter.dispatch('mwh_last', 'market_warehouse')(value, order_by)) }}
{%- endmacro %}

{% macro duckdb__mwh_last(value, order_by) -%}
    arg_max({{ value }}, {{ order_by }})
{%- endmacro %}

{% macro postgres__mwh_last(value, order_by) -%}
    {%- if mwh_timescaledb_enabled() -%}
        last({{ value }}, {{ order_by }})
    {%- else -%}
        (array_agg({{ value }} order by {{ order_by }} desc))[1]
    {%- endif -%}
{%- endmacro %}

{% macro default__mwh_last(value, order_by) -%}
    max({{ value }})
{%- endmacro %}


{# Round a double to `digits` decimals; PostgreSQL only rounds numeric. #}
{% macro mwh_round(expr, digits) -%}
    {{ return(adapter.dispatch('mwh_round', 'market_warehouse')(expr, digits)) }}
{%- endmacro %}

{% macro postgres__mwh_round(expr, digits) -%}
    cast(round(cast({{ expr }} as numeric), {{ digits }}) as double precision)
{%- endmacro %}

{% macro default__mwh_round(expr, digits) -%}
    round({{ expr }}, {{ digits }})
{%- endmacro %}


{#- The calendar date of a timestamptz in UTC (not in the session's time zone). -#}
{% macro mwh_utc_date(ts) -%}
    cast(({{ ts }}) at time zone 'UTC' as date)
{%- endmacro %}

{#- The calendar date of a timestamptz in an IANA time zone (an expression or a quoted literal). -#}
{% macro mwh_local_date(ts, tz_expr) -%}
    cast(({{ ts }}) at time zone {{ tz_expr }} as date)
{%- endmacro %}

{#- A date as the timestamptz of its midnight UTC (how daily bars are stamped). -#}
{% macro mwh_date_to_utc_ts(date_expr) -%}
    (cast({{ date_expr }} as timestamp) at time zone 'UTC')
{%- endmacro %}

{#- Midnight UTC of the day `days` before the UTC day of `ts` (a bucket-aligned cut-off). -#}
{% macro mwh_utc_midnight_days_before(ts, days) -%}
    ((cast(cast(({{ ts }}) at time zone 'UTC' as date) as timestamp) - interval '{{ days }} days') at time zone 'UTC')
{%- endmacro %}

{#- `a / b`, null when b is 0 or null (DuckDB and PostgreSQL disagree on x / 0). -#}
{% macro mwh_safe_divide(numerator, denominator) -%}
    (({{ numerator }}) / nullif({{ denominator }}, 0))
{%- endmacro %}

{#- Natural log, null for non-positive input (PostgreSQL raises on ln(0)). -#}
{% macro mwh_safe_ln(expr) -%}
    (case when ({{ expr }}) > 0 then ln({{ expr }}) end)
{%- endmacro %}

{#- A from-clause item yielding integers `start`..`stop` as column `n`. -#}
{% macro mwh_integer_series(start, stop) -%}
    generate_series({{ start }}, {{ stop }}) as integer_series (n)
{%- endmacro %}

{#- A very early timestamptz, for coalescing an empty max(ts) in incremental filters. -#}
{% macro mwh_min_ts() -%}
    timestamptz '1900-01-01 00:00:00+00'
{%- endmacro %}

{#- Index configs for marts: btree indexes on PostgreSQL/TimescaleDB, none on DuckDB (whose ART
    indexes slow every load and do not help its columnar scans). -#}
{% macro mwh_indexes(index_list) -%}
    {%- if target.type == 'postgres' -%}
        {%- do return(index_list) -%}
    {%- endif -%}
    {%- do return([]) -%}
{%- endmacro %}


{#- Session settings for every market model (a pre-hook). PostgreSQL's JIT compiles any query whose
    estimated cost passes jit_above_cost; the window-heavy feature and gap queries pass it, and the
    compilation (2-3 s) costs more than an incremental run's whole query. -#}
{% macro mwh_session_settings() -%}
    {%- if target.type == 'postgres' -%}
        set jit = off
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
