{#
    Rollups of 1-minute bars. On TimescaleDB's full edition the intraday ones are continuous aggregates
    over raw.bars (materialization `continuous_aggregate`, macros/materializations/); everywhere else
    (DuckDB, plain PostgreSQL, the Apache edition) the same model files build incremental tables that
    give the same rows.

    open = first open, close = last close (by bar time), high = max, low = min, volume = sum,
    vwap = volume-weighted mean of the minute bars' vwap (their typical price where the vendor sent
    none), trade_count = sum. An incremental run re-aggregates every bucket from `rollup_late_window_days`
    UTC days before the newest bucket already built: a late or corrected minute bar in that window
    replaces its buckets (delete+insert on the bucket key), buckets before it are left alone. A
    continuous aggregate re-aggregates the buckets TimescaleDB's invalidation log marks, at any age.
#}

{% macro mwh_is_incremental() -%}
    {#- is_incremental() for this project's two incremental materializations: dbt's own answers false
        for `continuous_aggregate`, whose fallback is the incremental materialization. -#}
    {%- if not execute -%}
        {%- do return(false) -%}
    {%- endif -%}
    {%- if model.config.materialized not in ('incremental', 'continuous_aggregate') or should_full_refresh() -%}
        {%- do return(false) -%}
    {%- endif -%}
    {%- set relation = adapter.get_relation(this.database, this.schema, this.table) -%}
    {%- do return(relation is not none and relation.type == 'table') -%}
{%- endmacro %}


{% macro mwh_rollup_refresh_start_offset() -%}
    {#- Refresh window start of the rollups' continuous aggregates: the whole history (null), or, when
        raw minute bars expire (var mwh_minute_bars_retention_days), one day less than they live, so a
        refresh never re-aggregates buckets whose minute bars are gone (that would empty them). -#}
    {%- set days = var('mwh_minute_bars_retention_days', none) -%}
    {%- do return("'" ~ (days | int - 1) ~ " days'" if days else 'null') -%}
{%- endmacro %}


{% macro mwh_rollup_late_cutoff(ts_column='ts') -%}
    {#- Midnight UTC, `rollup_late_window_days` before the newest bucket built: every bucket of every
        width used here starts on or after it, so re-aggregated buckets are always whole. -#}
    (
        select coalesce(
            {{ mwh_utc_midnight_days_before('max(' ~ ts_column ~ ')', var('rollup_late_window_days')) }},
            {{ mwh_min_ts() }}
        )
        from {{ this }}
    )
{%- endmacro %}


{% macro mwh_bar_aggregates(ts='ts', vwap='bar_vwap', loaded_at='loaded_at') -%}
    {#- The aggregate columns of a rollup, shared by the intraday rollups, the daily one and the
        continuous aggregates: one definition of how bars combine. `vwap` is the per-bar price the
        volume weights. -#}
    {{ mwh_first('open', ts) }} as open,
        max(high) as high,
        min(low) as low,
        {{ mwh_last('close', ts) }} as close,
        sum(volume) as volume,
        {{ mwh_safe_divide('sum(' ~ vwap ~ ' * volume)', 'sum(volume)') }} as vwap,
        sum(trade_count) as trade_count,
        sum(quote_volume) as quote_volume,
        count(*) as source_bar_count,
        min({{ ts }}) as first_source_ts,
        max({{ ts }}) as last_source_ts,
        max({{ loaded_at }}) as source_loaded_at
{%- endmacro %}


{#- A whole intraday rollup model: its config (a continuous aggregate where the engine has them, see
    macros/materializations/continuous_aggregate.sql; an incremental table elsewhere) and its query. -#}
{% macro mwh_rollup_intraday(bucket_width, bar_interval) -%}
    {{ config(
        materialized=mwh_incremental_materialization('continuous_aggregate'),
        incremental_strategy=mwh_incremental_strategy(),
        unique_key=['symbol', 'exchange', 'ts'],
        on_schema_change='fail',
        refresh_policy={'start_offset': mwh_rollup_refresh_start_offset(), 'end_offset': 'null', 'schedule_interval': "'30 minutes'"},
        materialized_only=false,
    ) }}
    {%- if mwh_continuous_aggregate_enabled() -%}
        {#- raw.bars by name, not source(): the dependency dbt records at parse time is the fallback's
            (stg_market__bars), and unit tests give only that input. -#}
        {%- set raw_bars = api.Relation.create(database=target.database, schema=var('raw_schema', 'raw'), identifier='bars') -%}
        {{ mwh_rollup_intraday_continuous(raw_bars, bucket_width, bar_interval) }}
    {%- else -%}
        {{ mwh_rollup_intraday_incremental(bucket_width, bar_interval) }}
    {%- endif -%}
{%- endmacro %}


{% macro mwh_rollup_intraday_continuous(raw_bars, bucket_width, bar_interval) -%}
{#- A continuous aggregate reads the hypertable itself, in one select (no CTEs, no joins). The filter
    and casts are stg_market__bars' (valid OHLC rows, typed as staging types them); raw.bars' primary
    key already holds one row per bar, which staging's newest-load dedup yields on PostgreSQL. Buckets
    of widths that divide a day are the same from time_bucket's default origin as from UTC midnight. -#}
select
    cast(symbol as varchar) as symbol,
    cast(exchange as varchar) as exchange,
    cast('{{ bar_interval }}' as varchar) as bar_interval,
    time_bucket(interval '{{ bucket_width }}', ts) as ts,
    first(cast(open as double precision), ts) as open,
    max(cast(high as double precision)) as high,
    min(cast(low as double precision)) as low,
    last(cast(close as double precision), ts) as close,
    sum(cast(volume as double precision)) as volume,
    sum(cast(coalesce(vwap, (high + low + close) / 3) as double precision) * cast(volume as double precision))
    / nullif(sum(cast(volume as double precision)), 0) as vwap,
    sum(cast(trade_count as bigint)) as trade_count,
    sum(cast(quote_volume as double precision)) as quote_volume,
    count(*) as source_bar_count,
    min(ts) as first_source_ts,
    max(ts) as last_source_ts,
    max(loaded_at) as source_loaded_at
from {{ raw_bars }}
where
    "interval" = {{ mwh_read_interval('1m') }}
    and {{ mwh_bar_is_valid() }}
group by symbol, exchange, time_bucket(interval '{{ bucket_width }}', ts)
{%- endmacro %}


{% macro mwh_rollup_intraday_incremental(bucket_width, bar_interval) -%}

with

minute_bars as (

    select * from {{ ref('stg_market__bars') }}
    where
        bar_interval = {{ mwh_read_interval('1m') }}
        {% if mwh_is_incremental() -%}
        and ts >= {{ mwh_rollup_late_cutoff() }}
        {%- endif %}

),

bucketed as (

    select
        symbol,
        exchange,
        {{ mwh_time_bucket(bucket_width, 'ts') }} as bucket_ts,
        ts,
        open,
        high,
        low,
        close,
        volume,
        coalesce(vwap, (high + low + close) / 3) as bar_vwap,
        trade_count,
        quote_volume,
        loaded_at
    from minute_bars

),

aggregated as (

    select
        symbol,
        exchange,
        bucket_ts,
        {{ mwh_bar_aggregates() }}
    from bucketed
    group by symbol, exchange, bucket_ts

),

final as (

    select
        symbol,
        exchange,
        cast('{{ bar_interval }}' as {{ mwh_varchar() }}) as bar_interval,
        bucket_ts as ts,
        open,
        high,
        low,
        close,
        volume,
        vwap,
        trade_count,
        quote_volume,
        source_bar_count,
        first_source_ts,
        last_source_ts,
        source_loaded_at
    from aggregated

)

select * from final

{%- endmacro %}


{% macro mwh_vendor_or_rollup(bar_interval, rolled_up, changed=none, mark=none) -%}
{#-
    One bar per symbol and period: the vendor's own bar of `bar_interval` where one was loaded,
    otherwise the period rolled up from 1-minute bars (`rolled_up`, a relation with the rollup
    columns). Prices are raw (as traded). The daily union also carries the session date and the
    vendor's adjusted close (for the adjustment models).
    `changed` (optional): a relation with symbol, exchange and first_changed_ts; only those series'
    bars from first_changed_ts on are produced (an incremental run). `mark` (optional): an expression
    added as column checked_through_loaded_at (the table's high-water mark).
-#}
{%- set daily = bar_interval == '1d' %}

with

vendor as (

    select vendor_all.* from {{ ref('stg_market__bars') }} as vendor_all
    {%- if changed is not none %}
    inner join {{ changed }} as vendor_changed
        on
            vendor_all.symbol = vendor_changed.symbol
            and vendor_all.exchange = vendor_changed.exchange
            and vendor_all.ts >= vendor_changed.first_changed_ts
    {%- endif %}
    where vendor_all.bar_interval = {{ mwh_read_interval(bar_interval) }}

),

rolled_up as (

    select rolled_up_all.* from {{ rolled_up }} as rolled_up_all
    {%- if changed is not none %}
    inner join {{ changed }} as rolled_up_changed
        on
            rolled_up_all.symbol = rolled_up_changed.symbol
            and rolled_up_all.exchange = rolled_up_changed.exchange
            and rolled_up_all.ts >= rolled_up_changed.first_changed_ts
    {%- endif %}

),

vendor_bars as (

    select
        symbol,
        exchange,
        ts,
        {% if daily -%}
        {{ mwh_utc_date('ts') }} as session_date,
        {% endif -%}
        open,
        high,
        low,
        close,
        volume,
        vwap,
        trade_count,
        {% if daily -%}
        vendor_adj_close,
        {% endif -%}
        cast('{{ bar_interval }}' as {{ mwh_varchar() }}) as source_interval,
        cast(1 as bigint) as source_bar_count
    from vendor

),

rolled_up_bars as (

    select
        rolled_up.symbol,
        rolled_up.exchange,
        rolled_up.ts,
        {% if daily -%}
        rolled_up.session_date,
        {% endif -%}
        rolled_up.open,
        rolled_up.high,
        rolled_up.low,
        rolled_up.close,
        rolled_up.volume,
        rolled_up.vwap,
        rolled_up.trade_count,
        {% if daily -%}
        cast(null as {{ mwh_double() }}) as vendor_adj_close,
        {% endif -%}
        cast('1m' as {{ mwh_varchar() }}) as source_interval,
        cast(rolled_up.source_bar_count as bigint) as source_bar_count
    from rolled_up
    left join vendor
        on
            rolled_up.symbol = vendor.symbol
            and rolled_up.exchange = vendor.exchange
            and rolled_up.ts = vendor.ts
    where vendor.symbol is null

),

final as (

    select * from vendor_bars
    union all
    select * from rolled_up_bars

)

select
    final.*{% if mark is not none %},
    {{ mark }} as checked_through_loaded_at{% endif %}
from final

{%- endmacro %}
