{#
    Backtest extract: the daily training set of a few symbols over a date range, with the label
    horizons a walk-forward split needs for purging (drop training rows whose horizon_end_ts_20
    reaches into the test period). Compile with `dbt compile --select market_backtest_extract`
    and run the SQL in target/compiled/, or paste it into a notebook.
#}

{% set symbols = ['AAPL', 'MSFT', 'KO'] %}
{% set start_date = '2015-01-01' %}
{% set end_date = '2021-01-01' %}

with

training_set as (

    select * from {{ ref('fct_training_set_daily') }}

),

symbols as (

    select * from {{ ref('dim_symbols') }}

),

final as (

    select
        training_set.symbol,
        symbols.asset_class,
        training_set.ts,
        training_set.return_1,
        training_set.return_5,
        training_set.return_20,
        training_set.volatility_20,
        training_set.volatility_60,
        training_set.rsi_14,
        training_set.atr_14,
        training_set.macd_histogram,
        training_set.bollinger_pct_b_20,
        training_set.volume_zscore_20,
        training_set.vwap_distance_20,
        training_set.forward_return_5 as target,
        training_set.horizon_end_ts_5 as target_known_at
    from training_set
    inner join symbols
        on
            training_set.symbol = symbols.symbol
            and training_set.exchange = symbols.exchange
    where
        training_set.symbol in ('{{ symbols | join("', '") }}')
        and training_set.ts >= cast('{{ start_date }}' as timestamp with time zone)
        and training_set.ts < cast('{{ end_date }}' as timestamp with time zone)
        and training_set.forward_return_5 is not null
        and training_set.volatility_60 is not null

)

select * from final
order by symbol, ts
