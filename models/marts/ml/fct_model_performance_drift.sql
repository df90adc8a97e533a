{#
    Performance drift of classification models, per model version and day: accuracy over the
    var('ml_rolling_window_days') days ending that day (all symbols together), against the registry's
    training baseline. The threshold is baseline accuracy - var('ml_drift_std_multiplier') standard
    deviations, the deviation being the registry's `accuracy_std` (e.g. across validation folds) or, when
    the registry has none, the binomial standard error of an accuracy measured on the window's count:
    sqrt(p (1 - p) / n). Drift is judged only on windows with at least var('ml_drift_min_predictions')
    resolved predictions.
#}

with

daily as (

    select * from {{ ref('fct_model_performance_daily') }}
    where prediction_kind = 'classification'

),

registry as (

    select * from {{ ref('stg_ml__model_registry') }}

),

model_days as (

    select
        model_id,
        prediction_date,
        cast(sum(n_resolved) as bigint) as n_resolved,
        cast(sum(n_correct) as bigint) as n_correct
    from daily
    group by model_id, prediction_date

),

rolling as (

    select
        model_id,
        prediction_date,
        n_resolved,
        n_correct,
        cast(sum(n_resolved) over (
            partition by model_id
            order by prediction_date
            range between interval '{{ var("ml_rolling_window_days") - 1 }} days' preceding and current row
        ) as bigint) as rolling_n_resolved,
        cast(sum(n_correct) over (
            partition by model_id
            order by prediction_date
            range between interval '{{ var("ml_rolling_window_days") - 1 }} days' preceding and current row
        ) as bigint) as rolling_n_correct
    from model_days

),

with_baseline as (

    select
        rolling.*,
        {{ mwh_safe_divide('cast(rolling.rolling_n_correct as double precision)', 'rolling.rolling_n_resolved') }}
            as rolling_accuracy,
        registry.baseline_accuracy,
        coalesce(
            registry.baseline_accuracy_std,
            sqrt(
                registry.baseline_accuracy * (1 - registry.baseline_accuracy)
                / nullif(rolling.rolling_n_resolved, 0)
            )
        ) as baseline_std,
        case
            when registry.baseline_accuracy_std is not null then 'registry' else 'binomial'
        end as baseline_std_source
    from rolling
    inner join registry
        on rolling.model_id = registry.model_id

),

final as (

    select
        model_id,
        prediction_date,
        n_resolved,
        n_correct,
        rolling_n_resolved,
        rolling_n_correct,
        rolling_accuracy,
        baseline_accuracy,
        baseline_std,
        baseline_std_source,
        baseline_accuracy - {{ var('ml_drift_std_multiplier') }} * baseline_std as drift_threshold,
        coalesce(
            rolling_n_resolved >= {{ var('ml_drift_min_predictions') }}
            and baseline_accuracy is not null
            and rolling_accuracy < baseline_accuracy - {{ var('ml_drift_std_multiplier') }} * baseline_std,
            false
        ) as is_drifting
    from with_baseline

)

select * from final
