{#
    Dividends and splits by ex-date, typed and deduplicated (newest load wins). Actions that cannot be
    applied (a non-positive split ratio or dividend, an unknown action) are excluded.
#}

with

source_actions as (

    select * from {{ source('market', 'corporate_actions') }}

),

typed as (

    select
        cast(symbol as varchar) as symbol,
        cast(exchange as varchar) as exchange,
        cast(ex_date as date) as ex_date,
        lower(cast(action as varchar)) as action,
        cast(value as double precision) as action_value,
        cast(source as varchar) as load_source,
        cast(run_id as varchar) as run_id,
        cast(loaded_at as timestamp with time zone) as loaded_at
    from source_actions

),

newest_load as (

    select distinct on (symbol, exchange, ex_date, action)  -- noqa: LT09
        *
    from typed
    order by symbol asc, exchange asc, ex_date asc, action asc, loaded_at desc, run_id desc

),

final as (

    select
        symbol,
        exchange,
        ex_date,
        action,
        action_value,
        load_source,
        run_id,
        loaded_at
    from newest_load
    where
        action in ('dividend', 'split')
        and action_value > 0

)

select * from final
