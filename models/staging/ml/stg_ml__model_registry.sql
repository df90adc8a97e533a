{#
    Model versions as registered, typed. The performance-drift baseline (training `accuracy` and its
    standard deviation `accuracy_std`) is lifted out of the metrics JSON here, so no downstream model
    reads JSON. The registry is merged on model_id, so it holds one row per version already; the
    newest-load-wins rank guards append-only writes all the same.
#}

with

source_registry as (

    select * from {{ mwh_ml_source('ml_model_registry') }}

),

ranked as (

    select
        *,
        row_number() over (partition by model_id order by loaded_at desc, run_id desc) as load_rank
    from source_registry

),

final as (

    select
        cast(model_id as varchar) as model_id,
        cast(model_name as varchar) as model_name,
        cast(model_version as varchar) as model_version,
        cast(model_type as varchar) as model_type,
        cast(task as varchar) as task,
        cast(training_date as timestamp with time zone) as training_date,
        {{ mwh_json_text('metrics') }} as metrics_json,
        {{ mwh_json_number('metrics', 'accuracy') }} as baseline_accuracy,
        {{ mwh_json_number('metrics', 'accuracy_std') }} as baseline_accuracy_std,
        {{ mwh_json_text('hyperparameters') }} as hyperparameters_json,
        {{ mwh_json_text('feature_columns') }} as feature_columns_json,
        cast(feature_set_version as varchar) as feature_set_version,
        cast(training_run_id as varchar) as training_run_id,
        cast(artifact_uri as varchar) as artifact_uri,
        cast(artifact_checksum as varchar) as artifact_checksum,
        cast(is_active as boolean) as is_active,
        cast(created_at as timestamp with time zone) as created_at,
        cast(updated_at as timestamp with time zone) as updated_at,
        {#- dbt snapshots stamp their rows with a timestamp without time zone; give them the change
            time in the same type (UTC) so the snapshot compares like with like. -#}
        cast(updated_at at time zone 'UTC' as timestamp) as updated_at_utc,
        cast(loaded_at as timestamp with time zone) as loaded_at
    from ranked
    where load_rank = 1

)

select * from final
