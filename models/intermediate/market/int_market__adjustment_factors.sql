{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy=mwh_incremental_strategy(),
        unique_key=['symbol', 'exchange', 'ts'],
        on_schema_change='fail',
    )
}}

{#
    Adjustment factors per daily bar, from the events of int_market__adjustment_events (the vendor's
    own adjustment where it sends one, else the split and the cash dividend; see there).

      price_factor      backward (CRSP style, what vendors publish): adjusted / traded price, the
                        product of the event factors after this bar; the newest bar keeps its price
      pit_price_factor  point in time: 1 / the product of the event factors up to and including this
                        bar, so prices are in the units of the symbol's first bar. A later event never
                        changes it: features computed on it equal a rebuild from the history as of
                        that bar, to the bit
      pit_volume_factor point in time for volumes: 1 / the product of the split ratios up to this bar
      split_factor      backward, splits only (the split part the vendor applied)
      volume_factor     1 / split_factor: older volumes scale up in a split

    Cumulative products are sums of logs over the events only (few rows, the same in a full and an
    incremental run), looked up by each bar, then rounded to 12 decimals.

    Incremental (the rule of mwh_bars_to_rewrite in macros/market/incremental.sql, without its bar
    numbering): a run rewrites every bar of a symbol that is new or whose actions changed, and
    otherwise only the bars of the late-data window (var daily_late_window_days) before its newest
    built bar. The scope is a filter on ts (one hash join), not a row_number() over every symbol's
    whole history; the event lookup is a range join of the bars in scope against the few events of
    their year.
#}

with

daily_bars as (

    select
        symbol,
        exchange,
        ts,
        session_date
    from {{ ref('int_market__bars_unioned_1d') }}

),

adjustment_events as (

    select * from {{ ref('int_market__adjustment_events') }}
    where has_action

),

rewrite_actions as (

    select
        symbol,
        exchange,
        max(loaded_at) as actions_loaded_at
    from {{ ref('stg_market__corporate_actions') }}
    group by symbol, exchange

),

{% if is_incremental() -%}
rewrite_built as (

    select
        symbol,
        exchange,
        max(ts) as max_ts,
        {#- the late window's start once per symbol: a timestamptz minus an interval, per bar, was most of
            this model's incremental time on DuckDB (time-zone-aware arithmetic, 5M times at 5M bars) #}
        max(ts) - interval '{{ var("daily_late_window_days", 7) }} days' as late_from_ts,
        max(actions_loaded_at) as actions_loaded_at
    from {{ this }}
    group by symbol, exchange

),

{% endif -%}

bars_in_scope as (

    select
        daily_bars.*,
        rewrite_actions.actions_loaded_at
    from daily_bars
    {% if is_incremental() -%}
    left join rewrite_built
        on
            daily_bars.symbol = rewrite_built.symbol
            and daily_bars.exchange = rewrite_built.exchange
    {% endif -%}
    left join rewrite_actions
        on
            daily_bars.symbol = rewrite_actions.symbol
            and daily_bars.exchange = rewrite_actions.exchange
    {% if is_incremental() -%}
    where
        rewrite_built.max_ts is null
        or not (
            rewrite_built.actions_loaded_at = rewrite_actions.actions_loaded_at
            or (rewrite_built.actions_loaded_at is null and rewrite_actions.actions_loaded_at is null)
        )
        or daily_bars.ts >= rewrite_built.late_from_ts
    {%- endif %}

),

events_cumulated as (

    select
        symbol,
        exchange,
        session_date,
        lead(session_date) over event_order as next_session_date,
        sum(ln(applied_factor)) over (
            {{ mwh_named_window('event_order', 'partition by symbol, exchange order by session_date') }}
            rows between unbounded preceding and current row
        ) as log_factor_to_date,
        sum(ln(applied_split_ratio)) over (
            {{ mwh_named_window('event_order', 'partition by symbol, exchange order by session_date') }}
            rows between unbounded preceding and current row
        ) as log_split_to_date
    from adjustment_events
    window event_order as (partition by symbol, exchange order by session_date)

),

{# the totals are the last running sums (not a separate sum: the same additions, the same bits) #}
symbol_totals as (

    select
        symbol,
        exchange,
        log_factor_to_date as log_factor_total,
        log_split_to_date as log_split_total
    from events_cumulated
    where next_session_date is null

),

{# each event's range [session_date, next_session_date) once per calendar year of the series' bars it
    covers: the bars join it by equality on (symbol, exchange, year), then check the range on the few
    events of that year, not on every event of the symbol (a join filter of 5M bars x ~56 events on
    PostgreSQL at 5M bars: 458 s). The ranges do not overlap: each bar still finds at most one event. #}
bar_years as (

    select distinct
        symbol,
        exchange,
        extract(year from session_date) as session_year
    from bars_in_scope

),

event_years as (

    select
        events_cumulated.*,
        bar_years.session_year
    from events_cumulated
    inner join bar_years
        on
            events_cumulated.symbol = bar_years.symbol
            and events_cumulated.exchange = bar_years.exchange
            and bar_years.session_year >= extract(year from events_cumulated.session_date)
            and bar_years.session_year
            <= extract(year from coalesce(events_cumulated.next_session_date, cast('9999-12-31' as date)))

),

bars_cumulated as (

    select
        bars_in_scope.symbol,
        bars_in_scope.exchange,
        bars_in_scope.ts,
        bars_in_scope.session_date,
        bars_in_scope.actions_loaded_at,
        coalesce(event_years.log_factor_to_date, 0) as log_factor_to_date,
        coalesce(event_years.log_split_to_date, 0) as log_split_to_date,
        coalesce(symbol_totals.log_factor_total, 0) as log_factor_total,
        coalesce(symbol_totals.log_split_total, 0) as log_split_total
    from bars_in_scope
    left join event_years
        on
            bars_in_scope.symbol = event_years.symbol
            and bars_in_scope.exchange = event_years.exchange
            and extract(year from bars_in_scope.session_date) = event_years.session_year
            and bars_in_scope.session_date >= event_years.session_date
            {#- no OR here: `next is null or ...` made DuckDB join by a nested loop (5M bars x 56k events) #}
            and bars_in_scope.session_date < coalesce(event_years.next_session_date, cast('9999-12-31' as date))
    left join symbol_totals
        on
            bars_in_scope.symbol = symbol_totals.symbol
            and bars_in_scope.exchange = symbol_totals.exchange

),

final as (

    select
        bars_cumulated.symbol,
        bars_cumulated.exchange,
        bars_cumulated.ts,
        bars_cumulated.session_date,
        coalesce(adjustment_events.split_ratio, 1) as split_ratio,
        coalesce(adjustment_events.dividend, 0) as dividend,
        coalesce(adjustment_events.applied_factor, 1) as event_factor,
        adjustment_events.factor_source,
        {{ mwh_round('exp(bars_cumulated.log_factor_total - bars_cumulated.log_factor_to_date)', 12) }}
            as price_factor,
        {{ mwh_round('exp(-bars_cumulated.log_factor_to_date)', 12) }} as pit_price_factor,
        {{ mwh_round('exp(-bars_cumulated.log_split_to_date)', 12) }} as pit_volume_factor,
        {{ mwh_round('exp(bars_cumulated.log_split_to_date - bars_cumulated.log_split_total)', 12) }}
            as split_factor,
        {{ mwh_round('exp(bars_cumulated.log_split_total - bars_cumulated.log_split_to_date)', 12) }}
            as volume_factor,
        bars_cumulated.actions_loaded_at
    from bars_cumulated
    left join adjustment_events
        on
            bars_cumulated.symbol = adjustment_events.symbol
            and bars_cumulated.exchange = adjustment_events.exchange
            and bars_cumulated.session_date = adjustment_events.session_date

)

select * from final
