{#
    One row per loaded symbol and exchange: reference data from the `symbols` seed where known,
    defaults of the exchange (`exchanges` seed) otherwise, and what was loaded (first and last bar,
    bar count, intervals).

    The loaded columns are aggregated per series (symbol, exchange, interval) first, then per symbol:
    the intervals are listed from a few rows per symbol, not by sorting every staged bar for a
    `string_agg(distinct ...)` (PostgreSQL sorts its whole input for a distinct aggregate).
#}

with

bars as (

    select * from {{ ref('stg_market__bars') }}

),

symbols as (

    select * from {{ ref('symbols') }}

),

exchanges as (

    select * from {{ ref('exchanges') }}

),

loaded_series as (

    select
        symbol,
        exchange,
        bar_interval,
        min(ts) as first_bar_ts,
        max(ts) as last_bar_ts,
        count(*) as bar_count
    from bars
    group by symbol, exchange, bar_interval

),

loaded as (

    select
        symbol,
        exchange,
        min(first_bar_ts) as first_bar_ts,
        max(last_bar_ts) as last_bar_ts,
        cast(sum(bar_count) as bigint) as bar_count,
        string_agg(bar_interval, ',' order by bar_interval) as bar_intervals
    from loaded_series
    group by symbol, exchange

),

final as (

    select
        loaded.symbol,
        loaded.exchange,
        coalesce(symbols.asset_class, exchanges.asset_class) as asset_class,
        exchanges.calendar,
        exchanges.timezone,
        coalesce(symbols.currency, exchanges.currency) as currency,
        symbols.name,
        loaded.first_bar_ts,
        loaded.last_bar_ts,
        loaded.bar_count,
        loaded.bar_intervals,
        symbols.symbol is not null as is_in_reference_data
    from loaded
    left join symbols
        on
            loaded.symbol = symbols.symbol
            and loaded.exchange = symbols.exchange
    left join exchanges
        on loaded.exchange = exchanges.exchange

)

select * from final
