{#
    The bars predictions and signals are judged on, numbered per series (symbol, exchange, interval)
    so "the bar h bars later" is an equality join. Only series that carry a prediction or a signal are
    read, and only from the first bar either refers to.
#}

with

bars as (

    select * from {{ ref('stg_market__bars') }}

),

predictions as (

    select * from {{ ref('stg_ml__predictions') }}

),

signals as (

    select * from {{ ref('stg_ml__signals') }}

),

referenced_bars as (

    select symbol, exchange, bar_interval, bar_ts as ts from predictions
    union all
    select symbol, exchange, bar_interval, signal_ts as ts from signals

),

series_used as (

    select symbol, exchange, bar_interval, min(ts) as first_ts
    from referenced_bars
    group by symbol, exchange, bar_interval

),

series_bars as (

    select
        bars.symbol,
        bars.exchange,
        bars.bar_interval,
        bars.ts,
        bars.open,
        bars.high,
        bars.low,
        bars.close
    from bars
    inner join series_used
        on
            bars.symbol = series_used.symbol
            and bars.exchange = series_used.exchange
            and bars.bar_interval = series_used.bar_interval
            and bars.ts >= series_used.first_ts

),

final as (

    select
        *,
        row_number() over (partition by symbol, exchange, bar_interval order by ts) as bar_index
    from series_bars

)

select * from final
