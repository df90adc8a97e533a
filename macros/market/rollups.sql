{#
    Rollups of 1-minute bars: what a TimescaleDB continuous aggregate would maintain, as incremental
    dbt models that run the same on every target.

    open = first open, close = last close (by bar time), high = max, low = min, volume = sum,
    vwap = volume-weighted mean of the minute bars' vwap (their typical price where the vendor sent
    none), trade_count = sum. A run re-aggregates every bucket from `rollup_late_window_days` UTC days
    before the newest bucket already built: a late or corrected minute bar in that window replaces its
    buckets (delete+insert on the bucket key), buckets before it are left alone.
#}

{% macro rollup_late_cutoff(ts_column='ts') -%}
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


{% macro rollup_intraday(bucket_width, bar_interval) -%}

with

minute_bars as (

    select * from {{ ref('stg_market__bars') }}
    where
        bar_interval = '1m'
        {% if is_incremental() -%}
        and ts >= {{ rollup_late_cutoff() }}
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
        {{ mwh_first('open', 'ts') }} as open,
        max(high) as high,
        min(low) as low,
        {{ mwh_last('close', 'ts') }} as close,
        sum(volume) as volume,
        {{ mwh_safe_divide('sum(bar_vwap * volume)', 'sum(volume)') }} as vwap,
        sum(trade_count) as trade_count,
        sum(quote_volume) as quote_volume,
        count(*) as source_bar_count,
        min(ts) as first_source_ts,
        max(ts) as last_source_ts,
        max(loaded_at) as source_loaded_at
    from bucketed
    group by symbol, exchange, bucket_ts

),

final as (

    select
        symbol,
        exchange,
        cast('{{ bar_interval }}' as varchar) as bar_interval,
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
