{#
    Predictions, typed; one row per (model_id, symbol, exchange, bar_interval, bar_ts, horizon_bars),
    newest load wins. `prediction_kind` says which columns carry the prediction: a class with its
    probability, or a value (a return).
#}

with

source_predictions as (

    select * from {{ mwh_ml_source('ml_predictions') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by model_id, symbol, exchange, bar_interval, bar_ts, horizon_bars
            order by loaded_at desc, run_id desc
        ) as load_rank
    from source_predictions

),

final as (

    select
        cast(model_id as varchar) as model_id,
        cast(symbol as varchar) as symbol,
        cast(exchange as varchar) as exchange,
        cast(bar_interval as varchar) as bar_interval,
        cast(bar_ts as timestamp with time zone) as bar_ts,
        cast(horizon_bars as integer) as horizon_bars,
        cast(predicted_at as timestamp with time zone) as predicted_at,
        case
            when predicted_class is not null then 'classification' else 'regression'
        end as prediction_kind,
        cast(predicted_class as varchar) as predicted_class,
        cast(probability as double precision) as probability,
        cast(predicted_value as double precision) as predicted_value,
        cast(latency_ms as double precision) as latency_ms,
        features,
        cast(loaded_at as timestamp with time zone) as loaded_at
    from ranked
    where load_rank = 1

)

select * from final
