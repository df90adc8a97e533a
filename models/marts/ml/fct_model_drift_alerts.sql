{#
    Drift alerts as they stand: one row per model version and reason.
    - performance: the version's latest day in fct_model_performance_drift is drifting (subject
      `accuracy`);
    - feature: a feature's PSI is at or above var('ml_psi_alert_threshold') (subject: the feature).
    `reason` says why in words and numbers, for the retrain queue and for people.
#}

with

performance as (

    select * from {{ ref('fct_model_performance_drift') }}

),

features as (

    select * from {{ ref('fct_feature_drift') }}

),

registry as (

    select * from {{ ref('stg_ml__model_registry') }}

),

windowed_features as (

    select * from {{ ref('int_ml__feature_values_windowed') }}

),

current_window_ends as (

    select
        model_id,
        max(bar_ts) as last_bar_ts
    from windowed_features
    where window_name = 'current'
    group by model_id

),

latest_performance as (

    select
        *,
        row_number() over (partition by model_id order by prediction_date desc) as recency
    from performance

),

performance_alerts as (

    select
        model_id,
        'performance' as alert_type,
        'accuracy' as alert_subject,
        prediction_date as alert_date,
        rolling_accuracy as observed_value,
        drift_threshold as threshold_value,
        'rolling {{ var("ml_rolling_window_days") }}d accuracy ' || {{ mwh_fmt('rolling_accuracy') }}
        || ' below baseline ' || {{ mwh_fmt('baseline_accuracy') }}
        || ' - {{ var("ml_drift_std_multiplier") }} x ' || {{ mwh_fmt('baseline_std') }}
        || ' (' || baseline_std_source || ' std) = ' || {{ mwh_fmt('drift_threshold') }}
        || ' over ' || cast(rolling_n_resolved as varchar) || ' predictions' as reason
    from latest_performance
    where recency = 1 and is_drifting

),

feature_alerts as (

    select
        features.model_id,
        'feature' as alert_type,
        features.feature_name as alert_subject,
        {{ mwh_utc_date('last_bars.last_bar_ts') }} as alert_date,
        features.psi as observed_value,
        cast({{ var('ml_psi_alert_threshold') }} as double precision) as threshold_value,
        'feature ' || features.feature_name || ' PSI ' || {{ mwh_fmt('features.psi') }}
        || ' >= {{ var("ml_psi_alert_threshold") }} between the training window ('
        || cast(features.reference_n as varchar) || ' values) and the last {{ var("ml_psi_recent_days") }} days ('
        || cast(features.current_n as varchar) || ' values)' as reason
    from features
    inner join current_window_ends as last_bars
        on features.model_id = last_bars.model_id
    where features.is_drifting

),

alerts as (

    select * from performance_alerts
    union all
    select * from feature_alerts

),

final as (

    select
        alerts.model_id,
        registry.model_name,
        registry.is_active,
        alerts.alert_type,
        alerts.alert_subject,
        alerts.alert_date,
        alerts.observed_value,
        alerts.threshold_value,
        alerts.reason
    from alerts
    inner join registry
        on alerts.model_id = registry.model_id

)

select * from final
