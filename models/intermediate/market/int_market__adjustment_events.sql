{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{{ mwh_forget_changed_daily(ref('int_market__bars_unioned_1d')) }}",
            "{{ mwh_disable_join_method('mergejoin') }}",
        ],
        post_hook=[
            "{{ mwh_reset_join_method('mergejoin') }}",
            "{{ mwh_mark_checked_through() }}",
        ],
    )
}}

{#
    One row per adjustment event of a daily series: each bar where a corporate action applies, and
    each bar where the vendor's own adjusted series steps without an action we know of.

    Two estimates of an event's price factor (older prices are multiplied by it):
      computed  from the action: 1 / split ratio, times 1 - dividend / previous close (post-split);
                null when a "dividend" is at or above the previous close (a spin-off or recapitalisation
                booked as a dividend cannot be a cash dividend)
      vendor    from the vendor's adjusted close, where the source sends one: the step of
                adjusted close / close between the previous bar and this one

    The factor applied (`applied_factor`) is the vendor's where it is plausible (positive, and no
    larger than the split part alone: a distribution never raises older prices), else the computed
    one, else the split alone. A vendor step with no action is not applied (nothing we know explains
    it) and is flagged. Every doubtful case is listed in `int_market__adjustment_issues`.

    Incremental (macros/market/incremental_tables.sql): a run recomputes, per series with daily bars, 1m
    bars or corporate actions loaded since the table's high-water mark (checked_through_loaded_at), the
    events from its first changed bar on, reading 30 days before it (the previous close, and the bars an
    action's ex-date can land on); the pre-hook forgets those events first. A full history is read only
    for a series whose corporate actions changed, or that is new. The same rows as a full refresh.

    Vendors that send closes already split-adjusted (Yahoo) show no step at a split: the split part the
    vendor applied (`applied_split_ratio`) is the ratio or 1, whichever its factor is closer to.
#}

with

high_water as (

    select {{ mwh_load_mark() }} as checked_through_loaded_at

),

{% if is_incremental() -%}
changed_window as (

    {{ mwh_daily_changed_window(this, ref('int_market__bars_unioned_1d')) | indent(4) }}

),

unioned_bars as (

    select unioned_all.*
    from {{ ref('int_market__bars_unioned_1d') }} as unioned_all
    inner join changed_window
        on
            unioned_all.symbol = changed_window.symbol
            and unioned_all.exchange = changed_window.exchange
            and unioned_all.ts >= changed_window.read_from_ts

),

{% else -%}
unioned_bars as (

    select * from {{ ref('int_market__bars_unioned_1d') }}

),

{% endif -%}

actions as (

    select * from {{ ref('stg_market__corporate_actions') }}

),

daily_bars as (

    select
        symbol,
        exchange,
        ts,
        session_date,
        close,
        vendor_adj_close,
        lag(close) over bar_order as previous_close,
        {{ mwh_safe_divide('vendor_adj_close', 'close') }} as vendor_ratio,
        lag({{ mwh_safe_divide('vendor_adj_close', 'close') }}) over bar_order as previous_vendor_ratio
    from unioned_bars
    window bar_order as (partition by symbol, exchange order by ts)

),

{# the first bar on or after each ex-date (within 10 days; an older action with no bar is ignored): each
    action's ten candidate dates joined to the bars by equality (a hash join of 10 x the actions), not a
    range join (on PostgreSQL a join filter comparing every bar with every action of its symbol: ~280M
    comparisons at 5M bars). On PostgreSQL a materialized CTE: inlined, the planner (which expects a few
    actions: the staging view's filter has no statistics) joins the actions to the bars by symbol first
    and checks the dates as a join filter again. No merge joins on PostgreSQL (the pre-hook): the planner
    expects one action per symbol and merged on (symbol, exchange) alone, the dates a join filter (123M
    rows removed on the 204k-bar sample, 110 s; hash joins on all three keys: 3 s) #}
action_days as {% if target.type == 'postgres' %}materialized {% endif %}(

    select
        actions.symbol,
        actions.exchange,
        actions.ex_date,
        actions.action,
        actions.action_value,
        actions.ex_date + cast(integer_series.n as integer) as candidate_date
    from actions
    cross join {{ mwh_integer_series(0, 9) }}

),

action_bars as (

    select
        action_days.symbol,
        action_days.exchange,
        action_days.ex_date,
        action_days.action,
        action_days.action_value,
        min(daily_bars.session_date) as applied_session_date
    from action_days
    inner join daily_bars
        on
            action_days.symbol = daily_bars.symbol
            and action_days.exchange = daily_bars.exchange
            and action_days.candidate_date = daily_bars.session_date
    group by
        action_days.symbol, action_days.exchange, action_days.ex_date, action_days.action, action_days.action_value

),

actions_per_bar as (

    select
        symbol,
        exchange,
        applied_session_date as session_date,
        exp(sum(case when action = 'split' then ln(action_value) else 0 end)) as split_ratio,
        sum(case when action = 'dividend' then action_value else 0 end) as dividend
    from action_bars
    group by symbol, exchange, applied_session_date

),

candidates as (

    select
        daily_bars.symbol,
        daily_bars.exchange,
        daily_bars.ts,
        daily_bars.session_date,
        daily_bars.close,
        daily_bars.previous_close,
        actions_per_bar.session_date is not null as has_action,
        coalesce(actions_per_bar.split_ratio, 1) as split_ratio,
        coalesce(actions_per_bar.dividend, 0) as dividend,
        {{ mwh_safe_divide('daily_bars.previous_vendor_ratio', 'daily_bars.vendor_ratio') }} as vendor_factor
    from daily_bars
    left join actions_per_bar
        on
            daily_bars.symbol = actions_per_bar.symbol
            and daily_bars.exchange = actions_per_bar.exchange
            and daily_bars.session_date = actions_per_bar.session_date
    where
        actions_per_bar.session_date is not null
        or abs({{ mwh_safe_divide('daily_bars.previous_vendor_ratio', 'daily_bars.vendor_ratio') }} - 1)
        > {{ var('vendor_step_tolerance') }}

),

split_applied as (

    select
        *,
        case
            when split_ratio = 1 or vendor_factor is null or vendor_factor <= 0 then split_ratio
            when abs(ln(vendor_factor * split_ratio)) <= abs(ln(vendor_factor)) then split_ratio
            else 1
        end as applied_split_ratio
    from candidates

),

estimated as (

    select
        *,
        previous_close / applied_split_ratio as previous_close_ex_split,
        case
            when dividend = 0 then 1.0 / applied_split_ratio
            when previous_close is null then null
            when dividend < previous_close / applied_split_ratio
                then (1 - dividend / (previous_close / applied_split_ratio)) / applied_split_ratio
        end as computed_factor,
        coalesce(vendor_factor > 0 and vendor_factor * applied_split_ratio <= 1.001, false) as is_vendor_plausible
    from split_applied

),

final as (

    select
        symbol,
        exchange,
        ts,
        session_date,
        has_action,
        split_ratio,
        applied_split_ratio,
        dividend,
        previous_close,
        previous_close_ex_split,
        computed_factor,
        vendor_factor,
        is_vendor_plausible,
        case
            when not has_action then 1.0
            when is_vendor_plausible then vendor_factor
            when computed_factor is not null then computed_factor
            else 1.0 / applied_split_ratio
        end as applied_factor,
        case
            when not has_action then 'not_applied'
            when is_vendor_plausible then 'vendor'
            when computed_factor is not null then 'computed'
            else 'split_only'
        end as factor_source,
        high_water.checked_through_loaded_at
    from estimated
    cross join high_water

)

select final.*
from final
{% if is_incremental() -%}
inner join changed_window
    on
        final.symbol = changed_window.symbol
        and final.exchange = changed_window.exchange
        and final.ts >= changed_window.first_changed_ts
{%- endif %}
