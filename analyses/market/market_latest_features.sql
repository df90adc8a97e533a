{#
    The latest daily features of every symbol, next to its last close: the screen an analyst starts
    from (oversold by RSI, stretched by %b, unusual volume).
#}

with

features as (

    select * from {{ ref('fct_features_daily') }}

),

bars as (

    select * from {{ ref('fct_bars_1d') }}

),

latest_per_symbol as (

    select
        symbol,
        exchange,
        max(ts) as ts
    from features
    group by symbol, exchange

),

final as (

    select
        features.symbol,
        features.exchange,
        features.ts,
        bars.close,
        bars.adj_close,
        features.return_1,
        features.return_20,
        features.volatility_20,
        features.rsi_14,
        features.atr_14,
        features.macd_histogram,
        features.bollinger_pct_b_20,
        features.volume_zscore_20,
        features.vwap_distance_20,
        case
            when features.rsi_14 < 30 then 'oversold'
            when features.rsi_14 > 70 then 'overbought'
            else 'neutral'
        end as rsi_state
    from features
    inner join latest_per_symbol
        on
            features.symbol = latest_per_symbol.symbol
            and features.exchange = latest_per_symbol.exchange
            and features.ts = latest_per_symbol.ts
    inner join bars
        on
            features.symbol = bars.symbol
            and features.exchange = bars.exchange
            and features.ts = bars.ts

)

select * from final
order by rsi_14
