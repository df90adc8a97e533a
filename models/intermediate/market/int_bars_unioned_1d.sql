{#
    One daily bar per symbol and session: the vendor's own daily bar where one was loaded, otherwise
    the session rolled up from 1-minute bars. Prices are raw (as traded); adjustment comes later.
#}

with

vendor_daily as (

    select * from {{ ref('stg_market__bars') }}
    where bar_interval = '1d'

),

rolled_up_daily as (

    select * from {{ ref('int_bars_rolled_up_1d') }}

),

vendor_bars as (

    select
        symbol,
        exchange,
        ts,
        {{ mwh_utc_date('ts') }} as session_date,
        open,
        high,
        low,
        close,
        volume,
        vwap,
        trade_count,
        vendor_adj_close,
        cast('1d' as varchar) as source_interval,
        cast(1 as bigint) as source_bar_count
    from vendor_daily

),

rolled_up_bars as (

    select
        rolled_up_daily.symbol,
        rolled_up_daily.exchange,
        rolled_up_daily.ts,
        rolled_up_daily.session_date,
        rolled_up_daily.open,
        rolled_up_daily.high,
        rolled_up_daily.low,
        rolled_up_daily.close,
        rolled_up_daily.volume,
        rolled_up_daily.vwap,
        rolled_up_daily.trade_count,
        cast(null as double precision) as vendor_adj_close,
        cast('1m' as varchar) as source_interval,
        cast(rolled_up_daily.source_bar_count as bigint) as source_bar_count
    from rolled_up_daily
    left join vendor_daily
        on
            rolled_up_daily.symbol = vendor_daily.symbol
            and rolled_up_daily.exchange = vendor_daily.exchange
            and rolled_up_daily.ts = vendor_daily.ts
    where vendor_daily.symbol is null

),

final as (

    select * from vendor_bars
    union all
    select * from rolled_up_bars

)

select * from final
