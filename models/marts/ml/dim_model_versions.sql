{#
    Model versions with their history (SCD2), from the registry snapshot: one row per version and
    period during which its metrics and active flag were as shown. valid_from is the registry's change
    time; valid_to is null for the current row. "Which version of model M was active at t":

        select model_id from dim_model_versions
        where model_name = 'M' and is_active and valid_from <= t and (valid_to is null or t < valid_to)
#}

with

snapshot as (

    select * from {{ ref('snap_ml__model_registry') }}

),

final as (

    select
        model_id,
        model_name,
        model_version,
        model_type,
        task,
        training_date,
        metrics_json,
        baseline_accuracy,
        baseline_accuracy_std,
        hyperparameters_json,
        feature_columns_json,
        feature_set_version,
        training_run_id,
        artifact_uri,
        artifact_checksum,
        is_active,
        created_at,
        {#- the snapshot keeps UTC change times without time zone (updated_at_utc) -#}
        (cast(dbt_valid_from as timestamp) at time zone 'UTC') as valid_from,
        (cast(dbt_valid_to as timestamp) at time zone 'UTC') as valid_to,
        dbt_valid_to is null as is_current,
        dbt_scd_id as model_version_scd_id
    from snapshot

)

select * from final
