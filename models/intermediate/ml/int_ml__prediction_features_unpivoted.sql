{#
    The feature vectors predictions were made with, one row per prediction and feature (numeric
    features only; others are null and dropped). A bar scored at several horizons or by several
    versions of one model carries the same features: they are averaged to one value per model name,
    bar and feature, so no bar weighs twice in a distribution.
#}

with

predictions as (

    select * from {{ ref('stg_ml__predictions') }}
    where features is not null

),

registry as (

    select * from {{ ref('stg_ml__model_registry') }}

),

unpivoted as (

    select
        predictions.model_id,
        predictions.symbol,
        predictions.exchange,
        predictions.bar_interval,
        predictions.bar_ts,
        f.feature_name,
        f.feature_value
    from predictions
    cross join lateral {{ mwh_json_numbers('predictions.features') }} as f

),

final as (

    select
        registry.model_name,
        unpivoted.model_id,
        unpivoted.symbol,
        unpivoted.exchange,
        unpivoted.bar_interval,
        unpivoted.bar_ts,
        unpivoted.feature_name,
        avg(unpivoted.feature_value) as feature_value
    from unpivoted
    inner join registry
        on unpivoted.model_id = registry.model_id
    where unpivoted.feature_value is not null
    group by
        registry.model_name,
        unpivoted.model_id,
        unpivoted.symbol,
        unpivoted.exchange,
        unpivoted.bar_interval,
        unpivoted.bar_ts,
        unpivoted.feature_name

)

select * from final
