{#
    The bars predictions and signals are judged on, numbered per series (symbol, exchange, interval)
    so "the bar h bars later" is an equality join. Only series that carry a prediction or a signal are
    read, and only from the bar in progress at the first time either refers to.

    bar_end_ts is where the bar's interval ends (mwh_ml_bar_end): a record stamped at t is matched to
    the first bar whose interval ends after t (int_ml__record_bars).

    split_factor is the product of the split ratios with ex-date on or before the bar's (UTC) date, from
    stg_market__corporate_actions: a price of bar b in the share units of bar s is
    price * b.split_factor / s.split_factor (a 4:1 split between them: x 4).
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

actions as (

    select * from {{ ref('stg_market__corporate_actions') }}

),

referenced_bars as (

    select
        symbol,
        exchange,
        bar_interval,
        bar_ts as ts
    from predictions
    union all
    select
        symbol,
        exchange,
        bar_interval,
        signal_ts as ts
    from signals

),

series_used as (

    select
        symbol,
        exchange,
        bar_interval,
        min(ts) as first_ts
    from referenced_bars
    group by symbol, exchange, bar_interval

),

series_bars as (

    select
        bars.symbol,
        bars.exchange,
        bars.bar_interval,
        bars.ts,
        {{ mwh_ml_bar_end('bars.ts', 'bars.bar_interval') }} as bar_end_ts,
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
            and {{ mwh_ml_bar_end('bars.ts', 'bars.bar_interval') }} > series_used.first_ts

),

splits as (

    select
        series_used.symbol,
        series_used.exchange,
        series_used.bar_interval,
        actions.ex_date,
        ln(actions.action_value) as log_ratio
    from actions
    inner join series_used
        on
            actions.symbol = series_used.symbol
            and actions.exchange = series_used.exchange
    where actions.action = 'split'

),

{# Splits and bars in one stream per series, by date (a split before the bars of its ex-date): the
    running sum of log ratios at a bar is the log of its split factor. #}

stream as (

    select
        symbol,
        exchange,
        bar_interval,
        ts,
        bar_end_ts,
        open,
        high,
        low,
        close,
        {{ mwh_utc_date('ts') }} as stream_date,
        1 as stream_kind,
        cast(0 as double precision) as log_ratio
    from series_bars
    union all
    select
        symbol,
        exchange,
        bar_interval,
        null as ts,
        null as bar_end_ts,
        null as open,
        null as high,
        null as low,
        null as close,
        ex_date as stream_date,
        0 as stream_kind,
        log_ratio
    from splits

),

factored as (

    select
        *,
        sum(log_ratio) over (
            partition by symbol, exchange, bar_interval
            order by stream_date, stream_kind, ts
            rows between unbounded preceding and current row
        ) as log_split_factor
    from stream

),

final as (

    select
        symbol,
        exchange,
        bar_interval,
        ts,
        bar_end_ts,
        open,
        high,
        low,
        close,
        {#- ratios such as 4 or 1/3 come back exact to 10 decimals after exp(ln) -#}

        {{ mwh_round('exp(log_split_factor)', 10) }} as split_factor,
        row_number() over (partition by symbol, exchange, bar_interval order by ts) as bar_index
    from factored
    where stream_kind = 1

)

select * from final
