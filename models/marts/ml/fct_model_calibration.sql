{#
    Calibration of classification models: resolved predictions bucketed by the probability the model
    gave its predicted class (var('ml_calibration_buckets') equal-width buckets over [0, 1]); a
    calibrated model's observed accuracy in a bucket is close to its mean probability.
#}

{% set buckets = var('ml_calibration_buckets') %}

with

outcomes as (

    select * from {{ ref('fct_prediction_outcomes') }}
    where prediction_kind = 'classification' and is_resolved

),

bucketed as (

    select
        model_id,
        probability,
        is_correct,
        least(cast(floor(probability * {{ buckets }}) as integer), {{ buckets - 1 }}) as bucket
    from outcomes

),

final as (

    select
        model_id,
        bucket,
        cast(bucket as double precision) / {{ buckets }} as probability_lower,
        cast(bucket + 1 as double precision) / {{ buckets }} as probability_upper,
        count(*) as n_predictions,
        avg(probability) as mean_probability,
        avg(cast({{ mwh_int('is_correct') }} as double precision)) as observed_accuracy,
        avg(cast({{ mwh_int('is_correct') }} as double precision)) - avg(probability) as calibration_gap
    from bucketed
    group by model_id, bucket

)

select * from final
