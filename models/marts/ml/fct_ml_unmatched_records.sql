{#
    The signals and predictions that cannot be matched to a bar as of their time (int_ml__record_bars),
    with the reason: the quarantine of the ML records on the dbt side (dbt does not write
    raw.quarantine). `mwh build` prints their count. A record leaves this list by itself once the bars
    it waits for are loaded (`no bar at or after`), or once it is reloaded with a known symbol/interval.

    record_id: signals `strategy|symbol|exchange|bar_interval|signal_ts`, predictions
    `model_id|symbol|exchange|bar_interval|bar_ts|horizon_bars` (times in ISO form, UTC).
#}

with

signals as (

    select * from {{ ref('stg_ml__signals') }}

),

predictions as (

    select * from {{ ref('stg_ml__predictions') }}

),

record_bars as (

    select * from {{ ref('int_ml__record_bars') }}

),

market_bars as (

    select * from {{ ref('stg_market__bars') }}

),

series_extent as (

    select
        symbol,
        exchange,
        bar_interval,
        max(ts) as last_bar_ts
    from market_bars
    group by symbol, exchange, bar_interval

),

symbol_bars as (

    select distinct
        symbol,
        exchange
    from series_extent

),

records as (

    select
        'signal' as record_type,
        strategy || '|' || symbol || '|' || exchange || '|' || bar_interval || '|'
        || {{ mwh_iso_ts('signal_ts') }} as record_id,
        symbol,
        exchange,
        bar_interval,
        signal_ts as record_ts
    from signals
    union all
    select
        'prediction' as record_type,
        model_id || '|' || symbol || '|' || exchange || '|' || bar_interval || '|'
        || {{ mwh_iso_ts('bar_ts') }} || '|' || cast(horizon_bars as varchar) as record_id,
        symbol,
        exchange,
        bar_interval,
        bar_ts as record_ts
    from predictions

),

unmatched as (

    select
        records.*,
        series_extent.last_bar_ts,
        symbol_bars.symbol is not null as symbol_has_bars
    from records
    inner join record_bars
        on
            records.symbol = record_bars.symbol
            and records.exchange = record_bars.exchange
            and records.bar_interval = record_bars.bar_interval
            and records.record_ts = record_bars.record_ts
    left join series_extent
        on
            records.symbol = series_extent.symbol
            and records.exchange = series_extent.exchange
            and records.bar_interval = series_extent.bar_interval
    left join symbol_bars
        on
            records.symbol = symbol_bars.symbol
            and records.exchange = symbol_bars.exchange
    where record_bars.bar_index is null

),

final as (

    select
        record_type,
        record_id,
        symbol,
        exchange,
        bar_interval,
        record_ts as ts,
        case
            when last_bar_ts is not null
                then
                    'no bar at or after ' || {{ mwh_iso_ts('record_ts') }}
                    || ' (the series ends at ' || {{ mwh_iso_ts('last_bar_ts') }} || ')'
            when symbol_has_bars
                then 'no ' || bar_interval || ' bars for ' || symbol || ' on ' || exchange
            else 'unknown symbol ' || symbol || ' on ' || exchange || ': no bars loaded'
        end as reason
    from unmatched

)

select * from final
