{#
    One row per model version: its performance over every resolved prediction, next to the registry's
    training baseline. The leaderboard (analyses/ml/model_leaderboard.sql) ranks these.
    information_coefficient is the Pearson correlation of predicted and realized return (regression
    models); rank_information_coefficient the same on ranks (Spearman).
#}

with

outcomes as (

    select * from {{ ref('fct_prediction_outcomes') }}

),

registry as (

    select * from {{ ref('stg_ml__model_registry') }}

),

ranked as (

    select
        *,
        rank() over (partition by model_id order by predicted_value) as predicted_rank,
        rank() over (partition by model_id order by realized_return) as realized_rank
    from outcomes
    where is_resolved

),

resolved as (

    select
        model_id,
        count(*) as n_resolved,
        avg(cast({{ mwh_int('is_correct') }} as double precision))
        filter (where is_correct is not null) as accuracy,
        avg(cast({{ mwh_int('is_direction_hit') }} as double precision)) as hit_rate,
        avg(brier_score) as brier_score,
        avg(log_loss) as log_loss,
        avg(abs(prediction_error)) as mae,
        sqrt(avg(power(prediction_error, 2))) as rmse,
        corr(predicted_value, realized_return) as information_coefficient,
        corr(
            cast(predicted_rank as double precision), cast(realized_rank as double precision)
        ) filter (where predicted_value is not null) as rank_information_coefficient,
        avg(realized_return * case predicted_direction when 'up' then 1 when 'down' then -1 else 0 end)
            as avg_directional_return
    from ranked
    group by model_id

),

all_predictions as (

    select
        model_id,
        count(*) as n_predictions,
        min(bar_ts) as first_bar_ts,
        max(bar_ts) as last_bar_ts,
        {{ mwh_percentile('latency_ms', 0.5) }} as latency_p50_ms,
        {{ mwh_percentile('latency_ms', 0.95) }} as latency_p95_ms
    from outcomes
    group by model_id

),

final as (

    select
        registry.model_id,
        registry.model_name,
        registry.model_version,
        registry.model_type,
        registry.task,
        registry.is_active,
        registry.training_date,
        registry.baseline_accuracy,
        coalesce(all_predictions.n_predictions, 0) as n_predictions,
        coalesce(resolved.n_resolved, 0) as n_resolved,
        all_predictions.first_bar_ts,
        all_predictions.last_bar_ts,
        resolved.accuracy,
        resolved.accuracy - registry.baseline_accuracy as accuracy_vs_baseline,
        resolved.hit_rate,
        resolved.brier_score,
        resolved.log_loss,
        resolved.mae,
        resolved.rmse,
        resolved.information_coefficient,
        resolved.rank_information_coefficient,
        resolved.avg_directional_return,
        all_predictions.latency_p50_ms,
        all_predictions.latency_p95_ms
    from registry
    left join all_predictions
        on registry.model_id = all_predictions.model_id
    left join resolved
        on registry.model_id = resolved.model_id

)

select * from final
