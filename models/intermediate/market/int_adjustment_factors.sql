{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['symbol', 'exchange', 'ts'],
        on_schema_change='fail',
    )
}}

{#
    Backward adjustment factors per daily bar, as vendors compute them (CRSP style): prices before an
    ex-date are scaled so the series has no jump at it, and the newest bar keeps its traded price.

    For each corporate-action event (all actions of one symbol on one ex-date):
        split factor     = 1 / split ratio               (2-for-1: older prices halve)
        dividend factor  = 1 - dividend / previous close  (previous close in post-split terms)
    A bar's price factor is the product of the event factors of every event after it; its volume factor
    is the product of the split ratios after it (older volumes double in a 2-for-1 split).
    An action whose ex-date has no bar is applied at the next bar (the first one trading ex).

    Incremental (macros/market/incremental.sql): a run rewrites every bar of a symbol whose actions
    changed, and otherwise only the bars of the late-data window (var daily_late_window_days): new
    bars without new actions leave earlier factors as they were.
#}

with

daily_bars as (

    select
        symbol,
        exchange,
        ts,
        session_date,
        close,
        row_number() over (partition by symbol, exchange order by ts) - 1 as bar_index
    from {{ ref('int_bars_unioned_1d') }}

),

actions as (

    select * from {{ ref('stg_market__corporate_actions') }}

),

{{ current_actions_cte() }},

{% if is_incremental() %}

{{ rewrite_from_cte('daily_bars', var('daily_late_window_days', 7)) }},

bars_in_scope as (

    select
        daily_bars.*,
        rewrite_from.first_output_index
    from daily_bars
    inner join rewrite_from
        on
            daily_bars.symbol = rewrite_from.symbol
            and daily_bars.exchange = rewrite_from.exchange
    {# one bar more: the first rewritten bar needs its previous close #}
    where daily_bars.bar_index >= rewrite_from.first_output_index - 1

),

{% else %}

bars_in_scope as (

    select
        *,
        0 as first_output_index
    from daily_bars

),

{% endif %}

bars_with_previous as (

    select
        symbol,
        exchange,
        ts,
        session_date,
        close,
        bar_index,
        first_output_index,
        lag(close) over (partition by symbol, exchange order by ts) as previous_close
    from bars_in_scope

),

{# the first bar on or after each ex-date (within 10 days; an older action with no bar is ignored),
    looked up in all bars, not only those in scope #}
action_bars as (

    select
        actions.symbol,
        actions.exchange,
        actions.ex_date,
        actions.action,
        actions.action_value,
        min(daily_bars.session_date) as applied_session_date
    from actions
    inner join daily_bars
        on
            actions.symbol = daily_bars.symbol
            and actions.exchange = daily_bars.exchange
            and actions.ex_date <= daily_bars.session_date
            and actions.ex_date + 10 > daily_bars.session_date
    group by actions.symbol, actions.exchange, actions.ex_date, actions.action, actions.action_value

),

events as (

    select
        symbol,
        exchange,
        applied_session_date as session_date,
        exp(sum(case when action = 'split' then ln(action_value) else 0 end)) as split_ratio,
        sum(case when action = 'dividend' then action_value else 0 end) as dividend
    from action_bars
    group by symbol, exchange, applied_session_date

),

event_factors as (

    select
        bars_with_previous.symbol,
        bars_with_previous.exchange,
        bars_with_previous.ts,
        bars_with_previous.session_date,
        bars_with_previous.bar_index,
        bars_with_previous.first_output_index,
        coalesce(events.split_ratio, 1) as split_ratio,
        coalesce(events.dividend, 0) as dividend,
        bars_with_previous.previous_close,
        case
            when
                events.dividend > 0
                and bars_with_previous.previous_close / events.split_ratio > events.dividend
                then 1 - events.dividend / (bars_with_previous.previous_close / events.split_ratio)
            else 1
        end as dividend_factor
    from bars_with_previous
    left join events
        on
            bars_with_previous.symbol = events.symbol
            and bars_with_previous.exchange = events.exchange
            and bars_with_previous.session_date = events.session_date

),

cumulated as (

    select
        symbol,
        exchange,
        ts,
        session_date,
        bar_index,
        first_output_index,
        split_ratio,
        dividend,
        dividend_factor,
        {# the events strictly after this bar: a running sum in descending time, excluding the row #}
        coalesce(sum(ln(split_ratio)) over (
            partition by symbol, exchange order by ts desc
            rows between unbounded preceding and 1 preceding
        ), 0) as log_split_after,
        coalesce(sum(ln(dividend_factor)) over (
            partition by symbol, exchange order by ts desc
            rows between unbounded preceding and 1 preceding
        ), 0) as log_dividend_after
    from event_factors

),

final as (

    select
        cumulated.symbol,
        cumulated.exchange,
        cumulated.ts,
        cumulated.session_date,
        cumulated.split_ratio,
        cumulated.dividend,
        cumulated.dividend_factor,
        {# products through sums of logs are exact only to ~1e-15: round so equal inputs give
            equal factors everywhere (12 decimals is far below a cent on any adjusted price) #}
        {{ mwh_round('exp(-cumulated.log_split_after)', 12) }} as split_factor,
        {{ mwh_round('exp(-cumulated.log_split_after + cumulated.log_dividend_after)', 12) }} as price_factor,
        {{ mwh_round('exp(cumulated.log_split_after)', 12) }} as volume_factor,
        current_actions.actions_loaded_at
    from cumulated
    left join current_actions
        on
            cumulated.symbol = current_actions.symbol
            and cumulated.exchange = current_actions.exchange
    where cumulated.bar_index >= cumulated.first_output_index

)

select * from final
