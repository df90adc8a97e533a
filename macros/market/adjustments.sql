{#
    Each bar with the cumulative adjustment of the events in force on its date: the running sums
    (log_factor_to_date, log_split_to_date) of the latest event on or before the bar's session_date,
    0 before the first event. Used by int_market__adjustment_factors.

    bars_cte    CTE with symbol, exchange, ts, session_date, actions_loaded_at
    events_cte  CTE with symbol, exchange, session_date (one row per event date), next_session_date,
                log_factor_to_date, log_split_to_date

    The values are copied from the event row, never re-added, so every target gives the event's own bits.
#}
{% macro mwh_bars_with_events_in_force(bars_cte, events_cte) -%}
    {{ return(adapter.dispatch('mwh_bars_with_events_in_force', 'market_warehouse')(bars_cte, events_cte)) }}
{%- endmacro %}

{#- DuckDB (and Spark): a range join, the bar's date between an event's date and the next one's. DuckDB
    joins it by hash on (symbol, exchange) with the range as a filter: 36.4 s at 5M bars x 56k events
    (load average 16) against 62.7 s for the window form below. -#}
{% macro default__mwh_bars_with_events_in_force(bars_cte, events_cte) -%}
    select
        {{ bars_cte }}.symbol,
        {{ bars_cte }}.exchange,
        {{ bars_cte }}.ts,
        {{ bars_cte }}.session_date,
        {{ bars_cte }}.actions_loaded_at,
        coalesce({{ events_cte }}.log_factor_to_date, 0) as log_factor_to_date,
        coalesce({{ events_cte }}.log_split_to_date, 0) as log_split_to_date
    from {{ bars_cte }}
    left join {{ events_cte }}
        on
            {{ bars_cte }}.symbol = {{ events_cte }}.symbol
            and {{ bars_cte }}.exchange = {{ events_cte }}.exchange
            and {{ bars_cte }}.session_date >= {{ events_cte }}.session_date
            {#- no OR here: `next is null or ...` made DuckDB join by a nested loop (5M bars x 56k events) #}
            and {{ bars_cte }}.session_date < coalesce({{ events_cte }}.next_session_date, cast('9999-12-31' as date))
{%- endmacro %}

{#- PostgreSQL: the range join is a hash join that tests every bar against every event of its symbol
    (5M bars x 56 events each at the seeds' scale), and it cannot know the row counts of CTEs to do
    better. Instead bars and events form one series per symbol, an event sorting before a bar of the
    same date (its ts is null); a running count numbers each bar with the latest event before it, and
    within each (symbol, event number) group the first row, the event itself, hands its values to
    the bars after it. Two sorts, no join. -#}
{% macro postgres__mwh_bars_with_events_in_force(bars_cte, events_cte) -%}
    select
        symbol,
        exchange,
        ts,
        session_date,
        actions_loaded_at,
        coalesce(log_factor_to_date, 0) as log_factor_to_date,
        coalesce(log_split_to_date, 0) as log_split_to_date
    from (
        select
            symbol,
            exchange,
            ts,
            session_date,
            actions_loaded_at,
            first_value(log_factor_to_date) over in_force as log_factor_to_date,
            first_value(log_split_to_date) over in_force as log_split_to_date
        from (
            select
                *,
                count(is_event) over (
                    partition by symbol, exchange order by session_date, ts nulls first
                    rows between unbounded preceding and current row
                ) as events_so_far
            from (
                select
                    symbol,
                    exchange,
                    ts,
                    session_date,
                    actions_loaded_at,
                    cast(null as integer) as is_event,
                    cast(null as double precision) as log_factor_to_date,
                    cast(null as double precision) as log_split_to_date
                from {{ bars_cte }}
                union all
                select
                    symbol,
                    exchange,
                    cast(null as timestamptz) as ts,
                    session_date,
                    cast(null as timestamptz) as actions_loaded_at,
                    1 as is_event,
                    log_factor_to_date,
                    log_split_to_date
                from {{ events_cte }}
            ) as bars_and_events
        ) as numbered
        window in_force as (
            partition by symbol, exchange, events_so_far order by session_date, ts nulls first
            rows between unbounded preceding and current row
        )
    ) as carried
    where ts is not null
{%- endmacro %}
