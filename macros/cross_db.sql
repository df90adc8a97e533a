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

{#- DuckDB: bucketed as a plain TIMESTAMP of the same UTC instant (epoch microseconds), not through ICU's
    TIMESTAMPTZ time_bucket: same result, ~200x less time (72.6 s against 0.3 s on 1.5M 1m bars). -#}
{% macro duckdb__mwh_time_bucket(width, ts) -%}
    make_timestamptz(epoch_us(time_bucket(interval '{{ width }}', make_timestamp(epoch_us({{ ts }})), timestamp '2000-01-01')))
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

{#
    PostgreSQL: mwh_round of a double COLUMN (a name: it is read several times), to the same bits as
    postgres__mwh_round's numeric round trip, mostly without it (its float8 -> numeric -> text -> float8
    conversions were a third of the feature models' CPU). The numeric path is round(%.15g of x, digits)
    (float8 -> numeric keeps 15 significant digits), then the nearest double (strtod). In double,
    y = x * 10^digits is within 2^-53 |y| of x * 10^digits, and 15 digits move x by at most 5e-15 |x|:
    when y is further than 1e-14 |y| from a half-integer, both round to the same integer k, and
    k / 10^digits (k and 10^digits exact, one correctly rounded division) is the double nearest the
    numeric result. Otherwise (near a tie), and for |x| >= 10^(14 - digits) (15 digits hold no more than
    `digits` decimals), NaN, infinities and nulls: the numeric round trip. `+ 0` turns -0 into 0 as
    numeric does. Any other adapter: mwh_round.
#}
{% macro mwh_round_double_column(column, digits) -%}
    {%- if target.type != 'postgres' or digits < 0 or digits > 13 -%}
        {{ return(mwh_round(column, digits)) }}
    {%- endif -%}
    {%- set scale = 'cast(1e' ~ digits ~ ' as double precision)' -%}
    {%- set y = '(' ~ column ~ ' * ' ~ scale ~ ')' -%}
case
    when abs({{ column }}) < cast(1e{{ 14 - digits }} as double precision)
        and cast(0.5 as double precision) - abs({{ y }} - round({{ y }})) > cast(1e-14 as double precision) * abs({{ y }})
        then round({{ y }}) / {{ scale }} + cast(0 as double precision)
    else {{ postgres__mwh_round(column, digits) | trim }}
end
{%- endmacro %}


{#- The calendar date of a timestamptz in UTC (not in the session's time zone). -#}
{% macro mwh_utc_date(ts) -%}
    {{ return(adapter.dispatch('mwh_utc_date', 'market_warehouse')(ts)) }}
{%- endmacro %}

{% macro default__mwh_utc_date(ts) -%}
    cast(({{ ts }}) at time zone 'UTC' as date)
{%- endmacro %}

{#- The calendar date of a timestamptz in an IANA time zone (an expression or a quoted literal). -#}
{% macro mwh_local_date(ts, tz_expr) -%}
    {{ return(adapter.dispatch('mwh_local_date', 'market_warehouse')(ts, tz_expr)) }}
{%- endmacro %}

{% macro default__mwh_local_date(ts, tz_expr) -%}
    cast(({{ ts }}) at time zone {{ tz_expr }} as date)
{%- endmacro %}

{#- A date as the timestamptz of its midnight UTC (how daily bars are stamped). -#}
{% macro mwh_date_to_utc_ts(date_expr) -%}
    {{ return(adapter.dispatch('mwh_date_to_utc_ts', 'market_warehouse')(date_expr)) }}
{%- endmacro %}

{% macro default__mwh_date_to_utc_ts(date_expr) -%}
    (cast({{ date_expr }} as timestamp) at time zone 'UTC')
{%- endmacro %}

{#- Midnight UTC of the day `days` before the UTC day of `ts` (a bucket-aligned cut-off). -#}
{% macro mwh_utc_midnight_days_before(ts, days) -%}
    {{ return(adapter.dispatch('mwh_utc_midnight_days_before', 'market_warehouse')(ts, days)) }}
{%- endmacro %}

{% macro default__mwh_utc_midnight_days_before(ts, days) -%}
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
    {{ return(adapter.dispatch('mwh_integer_series', 'market_warehouse')(start, stop)) }}
{%- endmacro %}

{% macro default__mwh_integer_series(start, stop) -%}
    generate_series({{ start }}, {{ stop }}) as integer_series (n)
{%- endmacro %}

{#- A very early timestamptz, for coalescing an empty max(ts) in incremental filters. -#}
{% macro mwh_min_ts() -%}
    {{ return(adapter.dispatch('mwh_min_ts', 'market_warehouse')()) }}
{%- endmacro %}

{% macro default__mwh_min_ts() -%}
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


{#- The rows' physical order for a mart analysts read one symbol at a time: on DuckDB an `order by`
    on the model's last select, so each row group holds few symbols and its zone maps skip the rest
    (DuckDB's equivalent of the PostgreSQL index mwh_indexes declares); nothing elsewhere. -#}
{% macro mwh_physical_order(columns) -%}
    {%- if target.type == 'duckdb' %}
order by {{ columns }}
    {%- endif -%}
{%- endmacro %}


{#- Session settings for every market model (a pre-hook). PostgreSQL's JIT compiles any query whose
    estimated cost passes jit_above_cost; the window-heavy feature and gap queries pass it, and the
    compilation (2-3 s) costs more than an incremental run's whole query. Nothing on DuckDB: dbt runs no
    statement for an empty hook (a `select 1` there cost each market model a round trip). -#}
{% macro mwh_session_settings() -%}
    {%- if target.type == 'postgres' -%}
        set jit = off
    {%- endif -%}
{%- endmacro %}


{#- PostgreSQL plans each model from the statistics of the tables it reads, and autovacuum analyzes a new or
    rewritten table only a while later: a model reading a table built seconds before was planned blind (at 5M
    bars, 8k-25k rows estimated for 5M, and a nested loop per bar in the features). So a post-hook on every
    model analyzes what it built, where that changes the statistics:
    - a table model: always (the table is new);
    - an incremental model: when it was never analyzed (a first build or a full refresh makes a new table),
      or when more rows changed since its last analyze than autovacuum would wait for (mwh_analyze_threshold:
      the table's or the server's autovacuum_analyze_threshold + autovacuum_analyze_scale_factor x the rows
      it had; a hypertable's chunks counted with it): the server's counters (n_mod_since_analyze) plus this
      transaction's own writes (pg_stat_xact_user_tables; a profile without autocommit). A daily run that
      adds one session to a long history is not analyzed again (an analyze samples the whole table).
      Counting this backend's unflushed writes alone (pg_stat_xact_user_tables) missed a full refresh under
      `autocommit: true` (the profile's setting since the continuous aggregates' direct refresh) whenever
      the server had flushed them, which it does once a statement has run a second or more: at 10M 1-minute
      bars `stg_market__bars` stayed unanalyzed, the rollup reconciliation tests were planned for 52 source
      bars, joined each symbol's first bars to its last bars and filled the disk with temporary files;
      analyzed, the 15-minute one ran in 25 s. The small test sets build too fast to show it.
    Nothing on DuckDB, views or continuous aggregates. -#}
{% macro mwh_analyze_built_table() -%}
    {%- set materialized = config.get('materialized') -%}
    {%- if target.type == 'postgres' and materialized == 'table' -%}
        analyze {{ this }}
    {%- elif target.type == 'postgres' and materialized == 'incremental' -%}
        do $mwh_analyze$
        declare
            -- the table, and a hypertable's chunks with it
            relids oid[] := array(
                select '{{ this }}'::regclass::oid
                union all
                select i.inhrelid from pg_inherits as i where i.inhparent = '{{ this }}'::regclass
            );
        begin
            if not exists (
                select 1
                from pg_stat_user_tables as s
                where s.relid = '{{ this }}'::regclass
                    and coalesce(s.last_analyze, s.last_autoanalyze) is not null
            ) or (
                select coalesce(sum(s.n_mod_since_analyze), 0)
                from pg_stat_user_tables as s
                where s.relid = any(relids)
            ) + (
                select coalesce(sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del), 0)
                from pg_stat_xact_user_tables as s
                where s.relid = any(relids)
            ) > (
                select {{ mwh_analyze_threshold("(select own.reloptions from pg_class as own where own.oid = '"
                    ~ this ~ "'::regclass)", 'coalesce(sum(greatest(c.reltuples, 0)), 0)') }}
                from pg_class as c
                where c.oid = any(relids)
            ) then
                analyze {{ this }};
            end if;
        end
        $mwh_analyze$
    {%- endif -%}
{%- endmacro %}


{#- How many changed rows make a table's statistics stale, by autovacuum's own rule: its analyze threshold
    plus its scale factor times the table's rows, each from the table's storage parameters
    (`alter table ... set (autovacuum_analyze_scale_factor = ...)`; a hypertable's chunks copy its own) or
    else the server's settings (50 and 0.1 by default). `reloptions`: an SQL expression, the table's
    pg_class.reloptions; `row_count`: its rows. The rule in one place: the loaders' check before a build
    (market_warehouse/loaders/sinks/postgres_sink.py, stale_statistics) uses this macro's SQL too
    (_analyze_threshold_sql renders it from this file). PostgreSQL only. -#}
{% macro mwh_analyze_threshold(reloptions, row_count) -%}
coalesce((
    select cast(option_value as float8) from pg_options_to_table({{ reloptions }})
    where option_name = 'autovacuum_analyze_threshold'
), cast(current_setting('autovacuum_analyze_threshold') as float8))
+ coalesce((
    select cast(option_value as float8) from pg_options_to_table({{ reloptions }})
    where option_name = 'autovacuum_analyze_scale_factor'
), cast(current_setting('autovacuum_analyze_scale_factor') as float8)) * ({{ row_count }})
{%- endmacro %}


{#- JSON, statistics and formatting helpers (first written for the ML models; generic). The raw tables
    store JSON as `json` on DuckDB and `jsonb` on PostgreSQL/TimescaleDB; these macros hide the difference. -#}

{#- A number stored under `key` of a JSON object column; null when absent or not a number. -#}
{% macro mwh_json_number(json_col, key) -%}
    {{ return(adapter.dispatch('mwh_json_number', 'market_warehouse')(json_col, key)) }}
{%- endmacro %}

{% macro duckdb__mwh_json_number(json_col, key) -%}
    try_cast(json_extract_string({{ json_col }}, '$.{{ key }}') as double)
{%- endmacro %}

{% macro postgres__mwh_json_number(json_col, key) -%}
    (case
        when jsonb_typeof(cast({{ json_col }} as jsonb) -> '{{ key }}') = 'number'
            then cast(cast({{ json_col }} as jsonb) ->> '{{ key }}' as double precision)
    end)
{%- endmacro %}


{#- The JSON value as text (for display and for comparing JSON across targets). -#}
{% macro mwh_json_text(json_col) -%}
    {{ return(adapter.dispatch('mwh_json_text', 'market_warehouse')(json_col)) }}
{%- endmacro %}

{% macro default__mwh_json_text(json_col) -%}
    cast({{ json_col }} as varchar)
{%- endmacro %}


{#- A subquery yielding one row (feature_name, feature_value) per key of a JSON object column; use as
    `cross join lateral {{ mwh_json_numbers('p.features') }} as f`. Non-numeric values are null. -#}
{% macro mwh_json_numbers(json_col) -%}
    {{ return(adapter.dispatch('mwh_json_numbers', 'market_warehouse')(json_col)) }}
{%- endmacro %}

{% macro duckdb__mwh_json_numbers(json_col) -%}
    (
        select
            j.key as feature_name,
            case
                when j.type in ('DOUBLE', 'BIGINT', 'UBIGINT', 'INTEGER') then cast(j.atom as double)
            end as feature_value
        from json_each({{ json_col }}) as j
    )
{%- endmacro %}

{% macro postgres__mwh_json_numbers(json_col) -%}
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
{% macro mwh_percentile(expr, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expr }})
{%- endmacro %}


{#- A boolean as 1/0 (for sums and means). -#}
{% macro mwh_int(bool_expr) -%}
    (case when {{ bool_expr }} then 1 else 0 end)
{%- endmacro %}


{#- A double rounded for messages, as text. -#}
{% macro mwh_fmt(expr, digits=4) -%}
    cast({{ mwh_round(expr, digits) }} as {{ mwh_varchar() }})
{%- endmacro %}


{#- Pearson correlation from sums (n, sum x, sum y, sum xy, sum x^2, sum y^2), so that it can be
    recomputed over any window of summed rows; null below two values or without variance. -#}
{% macro mwh_correlation_from_sums(n, sx, sy, sxy, sxx, syy) -%}
    (case
        when {{ n }} >= 2
            and ({{ n }} * {{ sxx }} - {{ sx }} * {{ sx }}) > 0
            and ({{ n }} * {{ syy }} - {{ sy }} * {{ sy }}) > 0
            then ({{ n }} * {{ sxy }} - {{ sx }} * {{ sy }})
            / sqrt(({{ n }} * {{ sxx }} - {{ sx }} * {{ sx }}) * ({{ n }} * {{ syy }} - {{ sy }} * {{ sy }}))
    end)
{%- endmacro %}


{#- Seconds from one timestamptz to another (null if either is null). -#}
{% macro mwh_seconds_between(start_ts, end_ts) -%}
    {{ return(adapter.dispatch('mwh_seconds_between', 'market_warehouse')(start_ts, end_ts)) }}
{%- endmacro %}

{% macro duckdb__mwh_seconds_between(start_ts, end_ts) -%}
    (epoch({{ end_ts }}) - epoch({{ start_ts }}))
{%- endmacro %}

{% macro postgres__mwh_seconds_between(start_ts, end_ts) -%}
    (extract(epoch from {{ end_ts }}) - extract(epoch from {{ start_ts }}))
{%- endmacro %}


{#- A timestamptz as ISO text in UTC, the same on every target: 2021-03-09T21:00:00Z. -#}
{% macro mwh_iso_ts(ts) -%}
    {{ return(adapter.dispatch('mwh_iso_ts', 'market_warehouse')(ts)) }}
{%- endmacro %}

{% macro duckdb__mwh_iso_ts(ts) -%}
    strftime(timezone('UTC', {{ ts }}), '%Y-%m-%dT%H:%M:%SZ')
{%- endmacro %}

{% macro postgres__mwh_iso_ts(ts) -%}
    to_char({{ ts }} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
{%- endmacro %}


{#- The newest row per key of a relation (a CTE name): `key` and `newest_first` are column lists.
    PostgreSQL: distinct on, which keeps the planner's row estimates (downstream joins depend on them).
    DuckDB: a row_number() filter, which streams per partition: distinct on's full sort ran out of
    memory at 5M bars under a 3 GB memory_limit, the window form took 27 s at 1.7 GB (docs/performance.md). -#}
{% macro mwh_newest_per_key(relation, key, newest_first) -%}
    {{ return(adapter.dispatch('mwh_newest_per_key', 'market_warehouse')(relation, key, newest_first)) }}
{%- endmacro %}

{% macro default__mwh_newest_per_key(relation, key, newest_first) -%}
    select distinct on ({{ key | join(', ') }})  -- noqa: LT09
        *
    from {{ relation }}
    order by {{ key | join(' asc, ') }} asc, {{ newest_first | join(', ') }}
{%- endmacro %}

{% macro duckdb__mwh_newest_per_key(relation, key, newest_first) -%}
    select *
    from {{ relation }}
    qualify row_number() over (
        partition by {{ key | join(', ') }} order by {{ newest_first | join(', ') }}
    ) = 1
{%- endmacro %}


{#- Hooks for models whose joins PostgreSQL mis-estimates (materialized CTEs used twice, window
    members generated by a series, a range filter estimated at 8k-25k of 5M bars): with a join method
    ('nestloop', 'mergejoin') turned off it takes hash joins. A session setting (a hook may run outside the
    model's transaction), reset by mwh_reset_join_method(method) in the post-hook. fct_value_at_risk on 43k
    returns ran over 45 minutes with nested loops; int_market__adjustment_events merged on (symbol,
    exchange) alone with the dates a join filter (110 s on the sample; 3 s hashed). A no-op elsewhere. -#}
{% macro mwh_disable_join_method(method) -%}
    {%- if target.type == 'postgres' -%}
        set enable_{{ method }} = off
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{% macro mwh_reset_join_method(method) -%}
    {%- if target.type == 'postgres' -%}
        reset enable_{{ method }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}


{#- dbt's delete+insert on PostgreSQL (the incremental models' strategy, mwh_incremental_strategy), with the
    join methods a model's pre-hook turned off (mwh_disable_join_method) restored first: those settings are
    for the model's select; the delete finds the rows it replaces by the unique key, one index probe each,
    where with nested loops off it hashed the whole table (a sequential scan of 5M rows: 2.0-3.5 s of each
    feature version's incremental run, for 7,000 rows replaced). -#}
{% macro postgres__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) -%}
    reset enable_nestloop;
    reset enable_mergejoin;
    {{ default__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) }}
{%- endmacro %}


{#- Type names and incremental configs that differ on Spark (macros/spark/spark__cross_db.sql; docs/spark.md).
    The defaults render what the models wrote before, so DuckDB and PostgreSQL SQL is unchanged. -#}
{% macro mwh_double() -%}
    {{ return(adapter.dispatch('mwh_double', 'market_warehouse')()) }}
{%- endmacro %}

{% macro default__mwh_double() -%}
    double precision
{%- endmacro %}

{#- An instant (timestamptz on PostgreSQL and DuckDB). -#}
{% macro mwh_timestamptz() -%}
    {{ return(adapter.dispatch('mwh_timestamptz', 'market_warehouse')()) }}
{%- endmacro %}

{% macro default__mwh_timestamptz() -%}
    timestamp with time zone
{%- endmacro %}

{% macro mwh_varchar() -%}
    {{ return(adapter.dispatch('mwh_varchar', 'market_warehouse')()) }}
{%- endmacro %}

{% macro default__mwh_varchar() -%}
    varchar
{%- endmacro %}

{#- The materialization of an incremental model (`materialized=mwh_incremental_materialization()`, or
    with 'continuous_aggregate' for the rollups) and its strategy: the model's own everywhere but Spark. -#}
{% macro mwh_incremental_materialization(materialized='incremental') -%}
    {{ return(adapter.dispatch('mwh_incremental_materialization', 'market_warehouse')(materialized)) }}
{%- endmacro %}

{% macro default__mwh_incremental_materialization(materialized='incremental') -%}
    {{ return(materialized) }}
{%- endmacro %}

{% macro mwh_incremental_strategy(strategy='delete+insert') -%}
    {{ return(adapter.dispatch('mwh_incremental_strategy', 'market_warehouse')(strategy)) }}
{%- endmacro %}

{% macro default__mwh_incremental_strategy(strategy='delete+insert') -%}
    {{ return(strategy) }}
{%- endmacro %}


{#- Contract-stable types: the marts' enforced contracts declare one type per column for DuckDB,
    TimescaleDB and PostgreSQL, so an expression whose type differs between them is cast here.
    A count of rows meeting a condition, as bigint (sum() of integers is HUGEINT on DuckDB, bigint or
    numeric on PostgreSQL). -#}
{% macro mwh_count_if(condition) -%}
    {{ return(adapter.dispatch('mwh_count_if', 'market_warehouse')(condition)) }}
{%- endmacro %}

{% macro default__mwh_count_if(condition) -%}
    cast(sum(case when {{ condition }} then 1 else 0 end) as bigint)
{%- endmacro %}

{#- An integer expression as bigint (a sum of counts: HUGEINT on DuckDB, numeric on PostgreSQL). -#}
{% macro mwh_as_bigint(expr) -%}
    {{ return(adapter.dispatch('mwh_as_bigint', 'market_warehouse')(expr)) }}
{%- endmacro %}

{% macro default__mwh_as_bigint(expr) -%}
    cast({{ expr }} as bigint)
{%- endmacro %}

{#- A numeric expression as a double (extract(epoch ...) and numeric arithmetic are numeric on
    PostgreSQL, DOUBLE on DuckDB): a cast to the target's double type, mwh_double(). -#}
{% macro mwh_as_double(expr) -%}
    cast({{ expr }} as {{ mwh_double() }})
{%- endmacro %}

{#- The keyword that makes a CTE materialized (computed once) where the engine has it; Spark has not. -#}
{% macro mwh_materialized_cte() -%}
    {{ return(adapter.dispatch('mwh_materialized_cte', 'market_warehouse')()) }}
{%- endmacro %}

{% macro default__mwh_materialized_cte() -%}
    materialized
{%- endmacro %}

{#- Whole days from one date to a later one, as an integer (date - date is an interval on Spark). -#}
{% macro mwh_days_between(start_date, end_date) -%}
    {{ return(adapter.dispatch('mwh_days_between', 'market_warehouse')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__mwh_days_between(start_date, end_date) -%}
    {{ end_date }} - {{ start_date }}
{%- endmacro %}

{#- A named window (`window name as (definition)`) extended with a frame inside over(...): PostgreSQL
    and DuckDB take the name; Spark cannot extend a named window, so it gets the definition. -#}
{% macro mwh_named_window(name, definition) -%}
    {{ return(adapter.dispatch('mwh_named_window', 'market_warehouse')(name, definition)) }}
{%- endmacro %}

{% macro default__mwh_named_window(name, definition) -%}
    {{ name }}
{%- endmacro %}
