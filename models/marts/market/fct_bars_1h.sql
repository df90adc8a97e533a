{{
    config(
        indexes=mwh_indexes([
            {'columns': ['symbol', 'ts desc']},
            {'columns': ['ts']},
        ]),
    )
}}

{#
    Hourly bars: the vendor's own 1h bars where loaded, otherwise the hour rolled up from 1-minute
    bars; the union is int_market__bars_unioned_1h. Raw prices: intraday series are not adjusted for
    corporate actions.
#}

with

final as (

    select
        symbol,
        exchange,
        ts,
        open,
        high,
        low,
        close,
        volume,
        vwap,
        {{ mwh_as_bigint('trade_count') }} as trade_count,
        source_interval,
        source_bar_count
    from {{ ref('int_market__bars_unioned_1h') }}

)

select * from final
