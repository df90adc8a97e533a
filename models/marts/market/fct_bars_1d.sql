{{
    config(
        indexes=mwh_indexes([
            {'columns': ['symbol', 'ts desc']},
            {'columns': ['ts']},
        ]),
    )
}}

{#
    Daily bars, one per symbol and session, raw and adjusted side by side. Rebuilt in full on every run
    (a table): backward adjustment rewrites the whole history of a symbol whenever a new dividend or
    split arrives, so there is no stable past to keep.
#}

with

daily_bars as (

    select * from {{ ref('int_bars_unioned_1d') }}

),

factors as (

    select * from {{ ref('int_adjustment_factors') }}

),

final as (

    select
        daily_bars.symbol,
        daily_bars.exchange,
        daily_bars.ts,
        daily_bars.session_date,
        daily_bars.open,
        daily_bars.high,
        daily_bars.low,
        daily_bars.close,
        daily_bars.volume,
        daily_bars.vwap,
        daily_bars.trade_count,
        daily_bars.open * factors.price_factor as adj_open,
        daily_bars.high * factors.price_factor as adj_high,
        daily_bars.low * factors.price_factor as adj_low,
        daily_bars.close * factors.price_factor as adj_close,
        daily_bars.volume * factors.volume_factor as adj_volume,
        daily_bars.vwap * factors.price_factor as adj_vwap,
        factors.price_factor,
        factors.volume_factor,
        factors.split_ratio,
        factors.dividend,
        daily_bars.vendor_adj_close,
        daily_bars.source_interval,
        daily_bars.source_bar_count
    from daily_bars
    inner join factors
        on
            daily_bars.symbol = factors.symbol
            and daily_bars.exchange = factors.exchange
            and daily_bars.ts = factors.ts

)

select * from final
