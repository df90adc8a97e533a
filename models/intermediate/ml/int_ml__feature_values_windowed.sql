{#
    For each model version, the feature values of its two PSI windows:
    - reference: the training window, i.e. the model's training run's data range (data_start ..
      data_end) or, without a run, the var('ml_psi_reference_days') days before its training_date.
      Values come from every version of the same model name scored on bars in that window (live
      predictions of the previous version, or an in-sample scoring logged at training time): the
      warehouse keeps the vectors models saw, not the training matrix;
    - current: the last var('ml_psi_recent_days') days of the version's own predictions, counted back
      from its newest bar.
#}

with

features as (

    select * from {{ ref('int_ml__prediction_features_unpivoted') }}

),

registry as (

    select * from {{ ref('stg_ml__model_registry') }}

),

training_runs as (

    select * from {{ ref('stg_ml__training_runs') }}

),

newest_bar as (

    select
        model_id,
        max(bar_ts) as last_bar_ts
    from features
    group by model_id

),

windows as (

    select
        registry.model_id,
        registry.model_name,
        coalesce(
            training_runs.data_start,
            registry.training_date - interval '{{ var("ml_psi_reference_days") }} days'
        ) as reference_start,
        coalesce(training_runs.data_end, registry.training_date) as reference_end,
        newest_bar.last_bar_ts - interval '{{ var("ml_psi_recent_days") }} days' as current_start,
        newest_bar.last_bar_ts as current_end
    from registry
    inner join newest_bar
        on registry.model_id = newest_bar.model_id
    left join training_runs
        on registry.training_run_id = training_runs.training_run_id

),

reference_values as (

    select
        windows.model_id,
        'reference' as window_name,
        features.feature_name,
        features.symbol,
        features.bar_ts,
        avg(features.feature_value) as feature_value
    from windows
    inner join features
        on
            windows.model_name = features.model_name
            and windows.reference_start <= features.bar_ts
            and windows.reference_end >= features.bar_ts
    group by windows.model_id, features.feature_name, features.symbol, features.bar_ts

),

current_values as (

    select
        windows.model_id,
        'current' as window_name,
        features.feature_name,
        features.symbol,
        features.bar_ts,
        features.feature_value
    from windows
    inner join features
        on
            windows.model_id = features.model_id
            and windows.current_start < features.bar_ts
            and windows.current_end >= features.bar_ts

),

final as (

    select * from reference_values
    union all
    select * from current_values

)

select * from final
