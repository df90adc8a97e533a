{#
    Training runs with their duration, the span of data they trained on, and the model versions
    registered from them (registry.training_run_id).
#}

with

training_runs as (

    select * from {{ ref('stg_ml__training_runs') }}

),

registry as (

    select * from {{ ref('stg_ml__model_registry') }}

),

versions as (

    select
        training_run_id,
        count(*) as n_versions_registered,
        max({{ mwh_int('is_active') }}) = 1 as produced_active_version
    from registry
    where training_run_id is not null
    group by training_run_id

),

final as (

    select
        training_runs.training_run_id,
        training_runs.model_name,
        training_runs.status,
        training_runs.started_at,
        training_runs.ended_at,
        {{ mwh_as_double(mwh_seconds_between('training_runs.started_at', 'training_runs.ended_at')) }}
            as duration_seconds,
        training_runs.data_start,
        training_runs.data_end,
        {{ mwh_as_double(mwh_seconds_between('training_runs.data_start', 'training_runs.data_end')) }} / 86400.0
            as data_span_days,
        training_runs.symbols_json,
        training_runs.sample_count,
        training_runs.parameters_json,
        training_runs.error_log,
        training_runs.created_by,
        coalesce(versions.n_versions_registered, 0) as n_versions_registered,
        coalesce(versions.produced_active_version, false) as produced_active_version
    from training_runs
    left join versions
        on training_runs.training_run_id = versions.training_run_id

)

select * from final
