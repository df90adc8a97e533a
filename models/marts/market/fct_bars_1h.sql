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
    bars (int_bars_rolled_up_1h). Raw prices: intraday series are not adjusted for corporate actions.
#}

with

vendor_hourly as (

    select * from {{ ref('stg_market__bars') }}
    where bar_interval = '1h'

),

rolled_up_hourly as (

    select * from {{ ref('int_bars_rolled_up_1h') }}

),

vendor_bars as (

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
        trade_count,
        cast('1h' as varchar) as source_interval,
        cast(1 as bigint) as source_bar_count
    from vendor_hourly

),

rolled_up_bars as (

    select
        rolled_up_hourly.symbol,
        rolled_up_hourly.exchange,
        rolled_up_hourly.ts,
        rolled_up_hourly.open,
        rolled_up_hourly.high,
        rolled_up_hourly.low,
        rolled_up_hourly.close,
        rolled_up_hourly.volume,
        rolled_up_hourly.vwap,
        rolled_up_hourly.trade_count,
        cast('1m' as varchar) as source_interval,
        cast(rolled_up_hourly.source_bar_count as bigint) as source_bar_count
    from rolled_up_hourly
    left join vendor_hourly
        on
            rolled_up_hourly.symbol = vendor_hourly.symbol
            and rolled_up_hourly.exchange = vendor_hourly.exchange
            and rolled_up_hourly.ts = vendor_hourly.ts
    where vendor_hourly.symbol is null

),

final as (

    select * from vendor_bars
    union all
    select * from rolled_up_bars

)

select * from final
