{{
    config(
        indexes=mwh_indexes([{'columns': ['check_name', 'symbol']}]),
    )
}}

{#
    Data facts found by the build, one row per (check_name, symbol, exchange, bar_interval, start_date):
    vendor gaps, disagreements with the vendor's adjusted close, corporate actions we cannot explain,
    stale sources, raw bars dropped by staging for invalid OHLC. These warn (they never stop the build); see docs/data_quality.md. A row matching the
    `known_data_issues` seed is kept with is_acknowledged = true.

    first_seen_at survives rebuilds: the previous table (when it exists) is read before it is replaced.
    Issues seen before but not in this build stay, with is_current = false and their last_seen_at.
#}

{%- set tolerance = var('vendor_agreement_tolerance', 0.005) %}
{%- set min_share = var('vendor_agreement_min_share', 0.995) %}
{%- set built_at = "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S') ~ "+00' as " ~ mwh_timestamptz() ~ ")" %}

{%- set previous = load_relation(this) if execute else none %}
{%- if previous is not none %}
    {%- set previous_columns = adapter.get_columns_in_relation(previous) | map(attribute='name') | map('lower') | list %}
    {%- if 'first_seen_at' not in previous_columns or 'start_date' not in previous_columns %}
        {%- set previous = none %}
    {%- endif %}
{%- endif %}

{%- set vendor_bars -%}
    select
        bars.symbol,
        bars.exchange,
        bars.ts,
        bars.session_date,
        abs(bars.adj_close / bars.vendor_adj_close - 1) as deviation,
        abs(bars.adj_close - bars.vendor_adj_close) > {{ tolerance }} * abs(bars.vendor_adj_close) as is_outside
    from {{ ref('fct_bars_1d') }} as bars
    where bars.adj_close is not null and bars.vendor_adj_close is not null and bars.vendor_adj_close != 0
{%- endset %}

with

known as (

    select
        cast(symbol as {{ mwh_varchar() }}) as symbol,
        cast(exchange as {{ mwh_varchar() }}) as exchange,
        cast(check_name as {{ mwh_varchar() }}) as check_name,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date,
        cast(reason as {{ mwh_varchar() }}) as reason
    from {{ ref('known_data_issues') }}

),

-- Missing sessions: fct_bar_gaps' ranges, those on consecutive sessions of the calendar (or sharing a
-- session) collapsed to one row (gaps and islands over the calendar's session numbers).
calendar_sessions as (

    select
        calendar,
        session_date,
        row_number() over (partition by calendar order by session_date) as session_index
    from {{ ref('int_market__trading_sessions') }}

),

gap_ranges as (

    select
        gaps.symbol,
        gaps.exchange,
        gaps.bar_interval,
        gaps.first_session_date,
        gaps.last_session_date,
        gaps.missing_bars,
        first_sessions.session_index as first_session_index,
        last_sessions.session_index as last_session_index
    from {{ ref('fct_bar_gaps') }} as gaps
    inner join {{ ref('exchanges') }} as exchanges
        on gaps.exchange = exchanges.exchange
    inner join calendar_sessions as first_sessions
        on
            exchanges.calendar = first_sessions.calendar
            and gaps.first_session_date = first_sessions.session_date
    inner join calendar_sessions as last_sessions
        on
            exchanges.calendar = last_sessions.calendar
            and gaps.last_session_date = last_sessions.session_date

),

gap_islands as (

    select
        *,
        sum(is_new_island) over (
            partition by symbol, exchange, bar_interval order by first_session_index, last_session_index
            rows between unbounded preceding and current row
        ) as island_id
    from (
        select
            *,
            case
                when first_session_index <= max(last_session_index) over (
                    partition by symbol, exchange, bar_interval order by first_session_index, last_session_index
                    rows between unbounded preceding and 1 preceding
                ) + 1 then 0
                else 1
            end as is_new_island
        from gap_ranges
    ) as flagged

),

missing_sessions as (

    select
        'missing_sessions' as check_name,
        symbol,
        exchange,
        bar_interval,
        min(first_session_date) as start_date,
        max(last_session_date) as end_date,
        max(last_session_index) - min(first_session_index) + 1 as issue_count,
        cast(max(last_session_index) - min(first_session_index) + 1 as {{ mwh_varchar() }}) || ' session(s) with '
        || bar_interval || ' bars missing: ' || cast(sum(missing_bars) as {{ mwh_varchar() }}) || ' bars in '
        || cast(count(*) as {{ mwh_varchar() }}) || ' gap(s)' as detail
    from gap_islands
    group by symbol, exchange, bar_interval, island_id

),

-- Adjusted close against the vendor's: bars further than the tolerance, consecutive bars collapsed.
-- fct_bars_1d is read by three small selects rather than one 5M-row CTE read three times (DuckDB and
-- PostgreSQL both materialize a CTE read more than once: at 5M bars, writing and re-reading it was about
-- half of this model's time): the per-series counts in one pass, the acknowledged bars (a join with the
-- seed's few rows of these checks) and the bars of the series with a disagreeing bar (rarely any).
series_counts as (

    select
        bars.symbol,
        bars.exchange,
        min(bars.session_date) as start_date,
        max(bars.session_date) as end_date,
        count(*) as compared_bars,
        sum(case when bars.is_outside then 1 else 0 end) as outside_bars
    from ({{ vendor_bars }}) as bars
    group by bars.symbol, bars.exchange

),

-- The bars an acknowledgement of these checks covers (mwh_is_acknowledged's predicate, as a join with the
-- seed's few rows of these checks: a correlated `exists` per bar was most of this model's time at 5M bars).
acknowledged_bars as (

    select distinct
        bars.symbol,
        bars.exchange,
        bars.ts,
        bars.is_outside
    from ({{ vendor_bars }}) as bars
    inner join known
        on
            known.check_name in ('adjusted_close_disagrees_with_vendor', 'adjusted_close_share_below_min')
            and (known.symbol is null or bars.symbol = known.symbol)
            and (known.exchange is null or bars.exchange = known.exchange)
            and (known.start_date is null or bars.session_date >= known.start_date)
            and (known.end_date is null or bars.session_date <= known.end_date)

),

acknowledged_counts as (

    select
        symbol,
        exchange,
        count(*) as acknowledged_bars,
        sum(case when is_outside then 1 else 0 end) as acknowledged_outside_bars
    from acknowledged_bars
    group by symbol, exchange

),

-- Runs of consecutive disagreeing bars need each compared bar's position in its series: numbered only in
-- the series that have a disagreeing bar (the vendor rarely disagrees; numbering every series' whole
-- history was most of this model's time at 5M bars, on every run). Same positions: whole series.
numbered_bars as (

    select
        bars.symbol,
        bars.exchange,
        bars.session_date,
        bars.deviation,
        bars.is_outside,
        row_number() over (partition by bars.symbol, bars.exchange order by bars.ts) as bar_index
    from ({{ vendor_bars }}) as bars
    inner join series_counts as disagreeing_series
        on
            bars.symbol = disagreeing_series.symbol
            and bars.exchange = disagreeing_series.exchange
            and disagreeing_series.outside_bars > 0

),

outside_runs as (

    select
        symbol,
        exchange,
        session_date,
        deviation,
        bar_index - row_number() over (partition by symbol, exchange order by bar_index) as run_id
    from numbered_bars
    where is_outside

),

adjusted_close_bars as (

    select
        'adjusted_close_disagrees_with_vendor' as check_name,
        symbol,
        exchange,
        cast('1d' as {{ mwh_varchar() }}) as bar_interval,
        min(session_date) as start_date,
        max(session_date) as end_date,
        count(*) as issue_count,
        cast(count(*) as {{ mwh_varchar() }}) || ' bar(s) with the adjusted close more than '
        || cast({{ tolerance * 100 }} as {{ mwh_varchar() }}) || '% from the vendor''s; largest deviation '
        || cast(round(cast(100 * max(deviation) as numeric), 2) as {{ mwh_varchar() }}) || '%' as detail
    from outside_runs
    group by symbol, exchange, run_id

),

-- A bar is acknowledged or not, outside or not: the unacknowledged counts are the series' counts less
-- its acknowledged bars'.
symbol_shares as (

    select
        series_counts.symbol,
        series_counts.exchange,
        series_counts.start_date,
        series_counts.end_date,
        series_counts.compared_bars,
        series_counts.outside_bars,
        cast(series_counts.compared_bars - series_counts.outside_bars as {{ mwh_double() }})
        / series_counts.compared_bars as share_within,
        series_counts.compared_bars - coalesce(acknowledged_counts.acknowledged_bars, 0) as unacknowledged_bars,
        cast(
            series_counts.compared_bars - series_counts.outside_bars
            - coalesce(acknowledged_counts.acknowledged_bars, 0)
            + coalesce(acknowledged_counts.acknowledged_outside_bars, 0) as {{ mwh_double() }}
        )
        / nullif(series_counts.compared_bars - coalesce(acknowledged_counts.acknowledged_bars, 0), 0)
            as share_within_unacknowledged
    from series_counts
    left join acknowledged_counts
        on
            series_counts.symbol = acknowledged_counts.symbol
            and series_counts.exchange = acknowledged_counts.exchange

),

adjusted_close_share as (

    select
        'adjusted_close_share_below_min' as check_name,
        symbol,
        exchange,
        cast('1d' as {{ mwh_varchar() }}) as bar_interval,
        start_date,
        end_date,
        outside_bars as issue_count,
        cast(round(cast(100 * share_within as numeric), 2) as {{ mwh_varchar() }}) || '% of '
        || cast(compared_bars as {{ mwh_varchar() }}) || ' bars within '
        || cast({{ tolerance * 100 }} as {{ mwh_varchar() }})
        || '% of the vendor''s adjusted close (minimum ' || cast({{ min_share * 100 }} as {{ mwh_varchar() }}) || '%)'
        || case
            when unacknowledged_bars < compared_bars
                then
                    '; ' || coalesce(
                        cast(round(cast(100 * share_within_unacknowledged as numeric), 2) as {{ mwh_varchar() }}), '-'
                    )
                    || '% of the ' || cast(unacknowledged_bars as {{ mwh_varchar() }}) || ' bars not acknowledged'
            else ''
        end as detail,
        coalesce(share_within_unacknowledged >= {{ min_share }}, true) as is_covered_by_bar_acknowledgements
    from symbol_shares
    where share_within < {{ min_share }}

),

-- Corporate actions we cannot explain (int_market__adjustment_issues): one row per check and bar.
adjustment_issues as (

    select
        check_name,
        symbol,
        exchange,
        bar_interval,
        issue_date as start_date,
        issue_date as end_date,
        1 as issue_count,
        detail
    from {{ ref('int_market__adjustment_issues') }}

),

-- Stale sources: the rows of the bars_are_fresh test (tests/generic/bars_are_fresh.sql), given each
-- series' last bar only (the test's newest bar of each series of these, an aggregate over 1,000 rows: the
-- same rows). The last bars by mwh_series_newest: on PostgreSQL one index probe per
-- series, not a scan of every staged bar (1.4 s at 5M bars, on every build).
{%- set last_bars -%}
(
        select
            staged_series.symbol,
            staged_series.exchange,
            staged_series.bar_interval,
            staged_series.last_ts as ts
        from ({{ mwh_series_newest(ref('stg_market__bars'), by_interval=true) | indent(12) }}) as staged_series
    )
{%- endset %}
stale as (

    {{ test_bars_are_fresh(model=last_bars) | indent(4) }}

),

stale_sources as (

    select
        'stale_source' as check_name,
        symbol,
        exchange,
        bar_interval,
        {{ mwh_utc_date('last_ts') }} as start_date,
        {{ mwh_utc_date('last_ts') }} as end_date,
        1 as issue_count,
        'last ' || bar_interval || ' bar ' || cast({{ mwh_utc_date('last_ts') }} as {{ mwh_varchar() }}) || '; '
        || case
            when bar_interval in ('1d', '1wk')
                then cast(sessions_behind as {{ mwh_varchar() }}) || ' sessions closed since'
            else
                cast(cast(round(cast(open_minutes_behind as numeric), 0) as bigint) as {{ mwh_varchar() }})
                || ' open-market minutes since'
        end as detail
    from stale

),

-- Bars in raw.bars breaking the OHLC invariants: stg_market__bars drops them (the loader quarantines
-- such rows, so these were written around it). Recorded here so the drop is never silent.
invalid_raw_bars as (

    select
        cast(symbol as {{ mwh_varchar() }}) as symbol,
        cast(exchange as {{ mwh_varchar() }}) as exchange,
        cast({{ adapter.quote('interval') }} as {{ mwh_varchar() }}) as bar_interval,  -- noqa: RF06
        {{ mwh_utc_date('ts') }} as bar_date,
        ts
    from {{ source('market', 'bars') }}
    -- the negation of stg_market__bars' filter (a null comparison counts as invalid there too)
    where not coalesce({{ mwh_bar_is_valid() }}, false)

),

invalid_bars as (

    select
        'invalid_bar_dropped' as check_name,
        symbol,
        exchange,
        bar_interval,
        bar_date as start_date,
        bar_date as end_date,
        count(*) as issue_count,
        cast(count(*) as {{ mwh_varchar() }}) || ' bar(s) in raw.bars break the OHLC invariants (first at '
        || cast(min(ts) as {{ mwh_varchar() }}) || '); dropped by stg_market__bars' as detail
    from invalid_raw_bars
    group by symbol, exchange, bar_interval, bar_date

),

unioned as (

    select
        *,
        false as is_covered_by_bar_acknowledgements
    from missing_sessions
    union all
    select
        *,
        false as is_covered_by_bar_acknowledgements
    from adjusted_close_bars
    union all
    select * from adjusted_close_share
    union all
    select
        *,
        false as is_covered_by_bar_acknowledgements
    from adjustment_issues
    union all
    select
        *,
        false as is_covered_by_bar_acknowledgements
    from stale_sources
    union all
    select
        *,
        false as is_covered_by_bar_acknowledgements
    from invalid_bars

),

current_issues as (

    select
        cast(check_name as {{ mwh_varchar() }}) as check_name,
        cast(symbol as {{ mwh_varchar() }}) as symbol,
        cast(exchange as {{ mwh_varchar() }}) as exchange,
        cast(bar_interval as {{ mwh_varchar() }}) as bar_interval,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date,
        cast(issue_count as bigint) as issue_count,
        cast(detail as {{ mwh_varchar() }}) as detail,
        is_covered_by_bar_acknowledgements
    from unioned

),

{% if previous is not none -%}
previous_issues as (

    select
        check_name,
        symbol,
        exchange,
        bar_interval,
        start_date,
        end_date,
        issue_count,
        detail,
        first_seen_at,
        last_seen_at
    from {{ previous }}

),
{%- endif %}

seen as (

    select
        current_issues.check_name,
        current_issues.symbol,
        current_issues.exchange,
        current_issues.bar_interval,
        current_issues.start_date,
        current_issues.end_date,
        current_issues.issue_count,
        current_issues.detail,
        current_issues.is_covered_by_bar_acknowledgements,
        {% if previous is not none -%}
        coalesce(previous_issues.first_seen_at, {{ built_at }}) as first_seen_at,
        {%- else -%}
        {{ built_at }} as first_seen_at,
        {%- endif %}
        {{ built_at }} as last_seen_at,
        true as is_current
    from current_issues
    {% if previous is not none -%}
    left join previous_issues
        on
            current_issues.check_name = previous_issues.check_name
            and current_issues.symbol = previous_issues.symbol
            and current_issues.exchange = previous_issues.exchange
            and current_issues.bar_interval = previous_issues.bar_interval
            and current_issues.start_date = previous_issues.start_date

    union all

    select
        previous_issues.check_name,
        previous_issues.symbol,
        previous_issues.exchange,
        previous_issues.bar_interval,
        previous_issues.start_date,
        previous_issues.end_date,
        previous_issues.issue_count,
        previous_issues.detail,
        false as is_covered_by_bar_acknowledgements,
        previous_issues.first_seen_at,
        previous_issues.last_seen_at,
        false as is_current
    from previous_issues
    where not exists (
        select 1
        from current_issues
        where
            current_issues.check_name = previous_issues.check_name
            and current_issues.symbol = previous_issues.symbol
            and current_issues.exchange = previous_issues.exchange
            and current_issues.bar_interval = previous_issues.bar_interval
            and current_issues.start_date = previous_issues.start_date
    )
    {%- endif %}

),

-- An issue is acknowledged when one seed row of its check covers its whole date range.
acknowledgements as (

    select
        seen.check_name,
        seen.symbol,
        seen.exchange,
        seen.bar_interval,
        seen.start_date,
        min(known.reason) as reason
    from seen
    inner join known
        on
            seen.check_name = known.check_name
            and (known.symbol is null or seen.symbol = known.symbol)
            and (known.exchange is null or seen.exchange = known.exchange)
            and (known.start_date is null or seen.start_date >= known.start_date)
            and (known.end_date is null or seen.end_date <= known.end_date)
    group by seen.check_name, seen.symbol, seen.exchange, seen.bar_interval, seen.start_date

),

final as (

    select
        seen.check_name,
        seen.symbol,
        seen.exchange,
        seen.bar_interval,
        seen.start_date,
        seen.end_date,
        seen.issue_count,
        seen.detail,
        (acknowledgements.reason is not null or seen.is_covered_by_bar_acknowledgements) as is_acknowledged,
        cast(coalesce(
            acknowledgements.reason,
            case
                when seen.is_covered_by_bar_acknowledgements
                    then 'its disagreeing bars are acknowledged (adjusted_close_disagrees_with_vendor)'
            end
        ) as {{ mwh_varchar() }}) as acknowledgement_reason,
        seen.first_seen_at,
        seen.last_seen_at,
        seen.is_current
    from seen
    left join acknowledgements
        on
            seen.check_name = acknowledgements.check_name
            and seen.symbol = acknowledgements.symbol
            and seen.exchange = acknowledgements.exchange
            and seen.bar_interval = acknowledgements.bar_interval
            and seen.start_date = acknowledgements.start_date

)

select * from final
