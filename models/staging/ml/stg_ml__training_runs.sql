{# Training runs, typed; one row per run (newest load wins). #}

with

source_runs as (

    select * from {{ mwh_ml_source('ml_training_runs') }}

),

ranked as (

    select
        *,
        row_number() over (partition by training_run_id order by loaded_at desc, run_id desc) as load_rank
    from source_runs

),

final as (

    select
        cast(training_run_id as varchar) as training_run_id,
        cast(model_name as varchar) as model_name,
        cast(started_at as timestamp with time zone) as started_at,
        cast(ended_at as timestamp with time zone) as ended_at,
        cast(status as varchar) as status,
        cast(data_start as timestamp with time zone) as data_start,
        cast(data_end as timestamp with time zone) as data_end,
        {{ mwh_json_text('symbols') }} as symbols_json,
        cast(sample_count as bigint) as sample_count,
        {{ mwh_json_text('parameters') }} as parameters_json,
        cast(error_log as varchar) as error_log,
        cast(created_by as varchar) as created_by,
        cast(loaded_at as timestamp with time zone) as loaded_at
    from ranked
    where load_rank = 1

)

select * from final
