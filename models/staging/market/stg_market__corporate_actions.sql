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
        cast(symbol as {{ mwh_varchar() }}) as symbol,
        cast(exchange as {{ mwh_varchar() }}) as exchange,
        cast(ex_date as date) as ex_date,
        lower(cast(action as {{ mwh_varchar() }})) as action,
        cast(value as {{ mwh_double() }}) as action_value,
        cast(source as {{ mwh_varchar() }}) as load_source,
        cast(run_id as {{ mwh_varchar() }}) as run_id,
        cast(loaded_at as {{ mwh_timestamptz() }}) as loaded_at
    from source_actions

),

{% set action_key = ['symbol', 'exchange', 'ex_date', 'action'] %}
newest_load as (

    {{ mwh_newest_per_key('typed', action_key, ['loaded_at desc', 'run_id desc']) | indent(4) }}

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
