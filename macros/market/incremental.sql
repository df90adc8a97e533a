{#
    Which bars a run of an incremental per-symbol model writes: emits CTE `rewrite_from` (symbol,
    exchange, first_output_index, actions_loaded_at), one row per symbol of `indexed_cte` (a CTE of the
    caller with symbol, exchange, ts and bar_index, 0-based per symbol over all bars). Helper CTEs are
    prefixed `rewrite_`; nothing is expected of the caller beyond `indexed_cte`.

    Full refresh: every bar (first_output_index 0). Incremental, per symbol:
      - not in {{ this }} yet: all its bars;
      - its corporate actions changed since the last run (actions_aware; their newest loaded_at differs
        from the `actions_loaded_at` stored in {{ this }}): all its bars;
      - otherwise its bars from `late_window_days` before its newest bar in {{ this }}, minus
        `lookback_bars` more (labels look 20 bars ahead: a new bar completes 20 earlier labels).
    across_symbols: every symbol from the earliest session any symbol needs (for features that depend
    on the whole cross-section of a session: ranks, benchmark returns).
    actions_loaded_at is the symbol's current newest action load time (null without actions_aware).
#}
{% macro mwh_bars_to_rewrite(indexed_cte, late_window_days, lookback_bars=0, actions_aware=true, across_symbols=false) -%}

rewrite_actions as (

    {% if actions_aware -%}
    select
        symbol,
        exchange,
        max(loaded_at) as actions_loaded_at
    from {{ ref('stg_market__corporate_actions') }}
    group by symbol, exchange
    {%- else -%}
    select
        cast(null as varchar) as symbol,
        cast(null as varchar) as exchange,
        cast(null as timestamp with time zone) as actions_loaded_at
    where 1 = 0
    {%- endif %}

),

{% if is_incremental() %}

rewrite_built as (

    select
        symbol,
        exchange,
        max(ts) as max_ts,
        {{ 'max(actions_loaded_at)' if actions_aware else 'cast(null as timestamp with time zone)' }} as actions_loaded_at
    from {{ this }}
    group by symbol, exchange

),

rewrite_per_symbol as (

    select
        {{ indexed_cte }}.symbol,
        {{ indexed_cte }}.exchange,
        rewrite_actions.actions_loaded_at,
        case
            when rewrite_built.max_ts is null then 0
            {%- if actions_aware %}
            when not (
                rewrite_built.actions_loaded_at = rewrite_actions.actions_loaded_at
                or (rewrite_built.actions_loaded_at is null and rewrite_actions.actions_loaded_at is null)
            ) then 0
            {%- endif %}
            else greatest(min(
                case
                    when {{ indexed_cte }}.ts >= rewrite_built.max_ts - interval '{{ late_window_days }} days'
                        then {{ indexed_cte }}.bar_index
                end
            ) - {{ lookback_bars }}, 0)
        end as first_output_index
    from {{ indexed_cte }}
    left join rewrite_built
        on
            {{ indexed_cte }}.symbol = rewrite_built.symbol
            and {{ indexed_cte }}.exchange = rewrite_built.exchange
    left join rewrite_actions
        on
            {{ indexed_cte }}.symbol = rewrite_actions.symbol
            and {{ indexed_cte }}.exchange = rewrite_actions.exchange
    group by
        {{ indexed_cte }}.symbol,
        {{ indexed_cte }}.exchange,
        rewrite_built.max_ts,
        rewrite_built.actions_loaded_at,
        rewrite_actions.actions_loaded_at

),

{% if across_symbols %}

rewrite_first_ts as (

    select min({{ indexed_cte }}.ts) as first_ts
    from {{ indexed_cte }}
    inner join rewrite_per_symbol
        on
            {{ indexed_cte }}.symbol = rewrite_per_symbol.symbol
            and {{ indexed_cte }}.exchange = rewrite_per_symbol.exchange
            and {{ indexed_cte }}.bar_index = rewrite_per_symbol.first_output_index

),

rewrite_from as (

    select
        {{ indexed_cte }}.symbol,
        {{ indexed_cte }}.exchange,
        max(rewrite_per_symbol.actions_loaded_at) as actions_loaded_at,
        coalesce(min(case when {{ indexed_cte }}.ts >= rewrite_first_ts.first_ts then {{ indexed_cte }}.bar_index end),
            max({{ indexed_cte }}.bar_index) + 1) as first_output_index
    from {{ indexed_cte }}
    cross join rewrite_first_ts
    inner join rewrite_per_symbol
        on
            {{ indexed_cte }}.symbol = rewrite_per_symbol.symbol
            and {{ indexed_cte }}.exchange = rewrite_per_symbol.exchange
    group by {{ indexed_cte }}.symbol, {{ indexed_cte }}.exchange

)

{% else %}

rewrite_from as (

    select * from rewrite_per_symbol

)

{% endif %}

{% else %}

rewrite_from as (

    select
        {{ indexed_cte }}.symbol,
        {{ indexed_cte }}.exchange,
        max(rewrite_actions.actions_loaded_at) as actions_loaded_at,
        0 as first_output_index
    from {{ indexed_cte }}
    left join rewrite_actions
        on
            {{ indexed_cte }}.symbol = rewrite_actions.symbol
            and {{ indexed_cte }}.exchange = rewrite_actions.exchange
    group by {{ indexed_cte }}.symbol, {{ indexed_cte }}.exchange

)

{% endif %}
{%- endmacro %}
