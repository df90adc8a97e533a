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
        cast(null as {{ mwh_varchar() }}) as symbol,
        cast(null as {{ mwh_varchar() }}) as exchange,
        cast(null as {{ mwh_timestamptz() }}) as actions_loaded_at
    where 1 = 0
    {%- endif %}

),

{% if is_incremental() %}

rewrite_built as (

    select
        symbol,
        exchange,
        max(ts) as max_ts,
        {{ 'max(actions_loaded_at)' if actions_aware else 'cast(null as ' ~ mwh_timestamptz() ~ ')' }} as actions_loaded_at
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


{#
    The high-water-mark predicate of incremental market models: true for a row (with loaded_at and
    run_id) loaded after `mark` (an SQL expression), or written by a load run (raw.loader_runs) that
    finished at or after it: a run that started before the mark but committed after it still counts.
    What changed since the last build, by load run, rather than a wall-clock window.
#}
{% macro mwh_loaded_since(mark, loaded_at='loaded_at', run_id='run_id') -%}
    ({{ loaded_at }} > {{ mark }}
        or {{ run_id }} in (
            select loader_runs.run_id
            from {{ source('market', 'loader_runs') }} as loader_runs
            where loader_runs.finished_at >= {{ mark }}
        ))
{%- endmacro %}


{#
    fct_bar_gaps' incremental window (a select): per series (symbol, exchange, bar_interval) with rows
    in stg_market__bars changed since the mart's high-water mark (checked_through_loaded_at), the bar
    before its earliest changed bar (start_ts): gaps are recomputed from there on, earlier ones kept.
#}
{% macro mwh_bar_gaps_window(gaps_relation) -%}
    select
        changed.symbol,
        changed.exchange,
        changed.bar_interval,
        coalesce((
            select max(prior.ts)
            from {{ ref('stg_market__bars') }} as prior
            where
                prior.symbol = changed.symbol
                and prior.exchange = changed.exchange
                and prior.bar_interval = changed.bar_interval
                and prior.ts < changed.first_changed_ts
        ), changed.first_changed_ts) as start_ts
    from (
        select
            bars.symbol,
            bars.exchange,
            bars.bar_interval,
            min(bars.ts) as first_changed_ts
        from {{ ref('stg_market__bars') }} as bars
        where
            bars.bar_interval in ('{{ var("gap_check_intervals") | join("', '") }}')
            and {{ mwh_loaded_since(
                '(select coalesce(max(built.checked_through_loaded_at), ' ~ mwh_min_ts() ~ ') from ' ~ gaps_relation ~ ' as built)',
                'bars.loaded_at', 'bars.run_id') }}
        group by bars.symbol, bars.exchange, bars.bar_interval
    ) as changed
{%- endmacro %}


{#- fct_bar_gaps' pre-hook: on an incremental run, forget the gaps after each changed series' start_ts
    (they are recomputed). -#}
{% macro mwh_bar_gaps_forget_changed() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as gaps
    where exists (
        select 1
        from ({{ mwh_bar_gaps_window(this) }}) as changed_window
        where
            gaps.symbol = changed_window.symbol
            and gaps.exchange = changed_window.exchange
            and gaps.bar_interval = changed_window.bar_interval
            and gaps.last_missing_ts > changed_window.start_ts
    )
    {%- endif -%}
{%- endmacro %}


{#
    The newest row (by ts) of every (symbol, exchange) of `relation` (a select of its columns), for the
    small latest-row marts. PostgreSQL/TimescaleDB: one index probe per series of `series_relation`
    (a relation with symbol, exchange) on the relation's (symbol, ts desc) index, so the cost follows
    the number of symbols, never the history. DuckDB: the newest ts per series by one hash aggregate
    over the ts column, then its row.
#}
{% macro mwh_latest_rows(relation, series_relation) -%}
    {{ return(adapter.dispatch('mwh_latest_rows', 'market_warehouse')(relation, series_relation)) }}
{%- endmacro %}

{% macro postgres__mwh_latest_rows(relation, series_relation) -%}
    select latest.*
    from (select distinct series_all.symbol, series_all.exchange from {{ series_relation }} as series_all) as series
    cross join lateral (
        select newest_row.*
        from {{ relation }} as newest_row
        where newest_row.symbol = series.symbol and newest_row.exchange = series.exchange
        order by newest_row.ts desc
        limit 1
    ) as latest
{%- endmacro %}

{% macro default__mwh_latest_rows(relation, series_relation) -%}
    select all_rows.*
    from {{ relation }} as all_rows
    inner join (
        select
            symbol,
            exchange,
            max(ts) as ts
        from {{ relation }}
        group by symbol, exchange
    ) as newest
        on
            all_rows.symbol = newest.symbol
            and all_rows.exchange = newest.exchange
            and all_rows.ts = newest.ts
{%- endmacro %}
