{#
    Completeness of a bar series against its trading calendar, computed without expanding missing bars.

    Every bar of a series gets its position among the buckets its calendar expects: on the 24/7
    calendar arithmetically (seconds since the epoch / the interval's width); on an exchange calendar
    from the session it falls in (the buckets expected before that session, a running sum over the
    small sessions table, plus its bucket within the session). A gap is two consecutive bars whose
    positions differ by more than one (lead() over the bars that exist); its sessions come from the
    calendar's session numbers. Cost: one pass over the bars, whatever the size of the gaps.

    Daily bars: one bar per session, stamped with the session date at 00:00 UTC.
    Intraday bars: every bucket of the interval (aligned to UTC midnight, as the rollups are) that
    overlaps the session's regular hours, so an XNYS 1h series expects 13:00..20:00 UTC buckets and a
    24/7 1m series all 1,440 minutes of every UTC day. Only buckets between a series' first and last
    bar are expected; bars outside the calendar's buckets are ignored. Exchanges missing from the
    `exchanges` seed expect nothing (the relationships test on stg_market__bars flags them).

    model            relation with symbol, exchange, ts (bar open time, UTC)
    bar_interval     1d, 1h, 15m, 5m or 1m
    interval_column  optional column to filter on `bar_interval` (for a table of several intervals)
    window_cte       optional CTE of the caller with (symbol, exchange, bar_interval, start_ts): only
                     these series, from their bar at start_ts on (an incremental or bounded check)
#}

{%- macro mwh_gap_widths() -%}
{{ return({'1d': 86400, '1h': 3600, '15m': 900, '5m': 300, '1m': 60}) }}
{%- endmacro %}


{#- The sessions of the calendars with the buckets of `bar_interval` each expects: first and last
    bucket, bucket count, session number and the running count of buckets before the session (a CTE
    body). `where` filters the sessions (columns calendar, session_date); numbers and running counts
    then start at the first session kept, which is all a difference of positions needs. -#}
{% macro mwh_calendar_buckets(bar_interval, where=none) -%}
{%- set width = mwh_gap_widths()[bar_interval] -%}
    select
        calendar,
        session_date,
        session_index,
        first_bucket_ts,
        bucket_count,
        first_bucket_ts + (bucket_count - 1) * interval '{{ width }} seconds' as last_bucket_ts,
        sum(bucket_count) over (
            partition by calendar order by session_date rows between unbounded preceding and current row
        ) - bucket_count as buckets_before
    from (
        select
            calendar,
            session_date,
            row_number() over (partition by calendar order by session_date) as session_index,
            {% if bar_interval == '1d' -%}
            {{ mwh_date_to_utc_ts('session_date') }} as first_bucket_ts,
            cast(1 as bigint) as bucket_count
            {%- else -%}
            {{ mwh_time_bucket(width ~ ' seconds', 'open_utc') }} as first_bucket_ts,
            cast(ceil(
                {{ mwh_seconds_between(mwh_time_bucket(width ~ ' seconds', 'open_utc'), 'close_utc') }} / {{ width }}
            ) as bigint) as bucket_count
            {%- endif %}
        from {{ ref('int_market__trading_sessions') }}
        {% if where is not none -%}
        where {{ where }}
        {%- endif %}
    ) as sessions
{%- endmacro %}


{#- Gaps as ranges: one row per run of consecutive missing buckets between two loaded bars of a
    series: symbol, exchange, bar_interval, first_missing_ts, last_missing_ts, first_session_date,
    last_session_date, missing_sessions (sessions the run touches), missing_bars, series_first_ts and
    series_last_ts (the series' first and last bar considered). A select statement. -#}
{% macro mwh_bar_gap_ranges(model, bar_interval, interval_column=none, window_cte=none) -%}
{%- set width = mwh_gap_widths()[bar_interval] -%}
{%- set step = "interval '" ~ width ~ " seconds'" -%}

with

gap_bars as (

    select
        bars.symbol,
        bars.exchange,
        bars.ts,
        exchanges.calendar,
        exchanges.timezone
    from {{ model }} as bars
    inner join {{ ref('exchanges') }} as exchanges
        on bars.exchange = exchanges.exchange
    {% if window_cte is not none -%}
    inner join {{ window_cte }}
        on
            bars.symbol = {{ window_cte }}.symbol
            and bars.exchange = {{ window_cte }}.exchange
            and {{ window_cte }}.bar_interval = '{{ bar_interval }}'
            and bars.ts >= {{ window_cte }}.start_ts
    {% endif -%}
    {% if interval_column is not none -%}
    where bars.{{ interval_column }} = '{{ bar_interval }}'
    {%- endif %}

),

{#- exchange calendars only (24/7 positions are arithmetic), from the window's first session on #}
gap_calendar as {{ mwh_materialized_cte() }} (

    {{ mwh_calendar_buckets(
        bar_interval,
        "calendar != '24/7' and calendar in (select gap_bars.calendar from gap_bars)"
        ~ (" and session_date >= (select " ~ mwh_utc_date('min(' ~ window_cte ~ '.start_ts)') ~ " - 1 from "
           ~ window_cte ~ ")" if window_cte is not none else "")
    ) | indent(4) }}

),

gap_positions as (

    -- 24/7: the bucket's number since the epoch; its session is the UTC day
    select
        symbol,
        exchange,
        calendar,
        ts,
        cast(floor({{ mwh_seconds_between(mwh_min_ts(), 'ts') }} / {{ width }}) as bigint) as bucket_position,
        cast(null as bigint) as session_index,
        cast(null as bigint) as session_end_position
    from gap_bars
    where
        calendar = '24/7'
        and cast({{ mwh_seconds_between(mwh_min_ts(), 'ts') }} as bigint) % {{ width }} = 0

    union all

    -- exchange calendars: buckets of the sessions before + the bucket within the session
    select
        gap_bars.symbol,
        gap_bars.exchange,
        gap_bars.calendar,
        gap_bars.ts,
        gap_calendar.buckets_before
        + cast({{ mwh_seconds_between('gap_calendar.first_bucket_ts', 'gap_bars.ts') }} as bigint) / {{ width }}
        as bucket_position,
        gap_calendar.session_index,
        gap_calendar.buckets_before + gap_calendar.bucket_count as session_end_position
    from gap_bars
    inner join gap_calendar
        on
            gap_bars.calendar = gap_calendar.calendar
            {% if bar_interval == '1d' -%}
            and gap_calendar.session_date = {{ mwh_utc_date('gap_bars.ts') }}
            and gap_bars.ts = gap_calendar.first_bucket_ts
            {%- else -%}
            and gap_calendar.session_date = {{ mwh_local_date('gap_bars.ts', 'gap_bars.timezone') }}
            and gap_bars.ts >= gap_calendar.first_bucket_ts
            and gap_bars.ts <= gap_calendar.last_bucket_ts
            {%- endif %}
    where
        gap_bars.calendar != '24/7'
        {% if bar_interval != '1d' -%}
        and cast({{ mwh_seconds_between('gap_calendar.first_bucket_ts', 'gap_bars.ts') }} as bigint) % {{ width }} = 0
        {%- endif %}

),

gap_steps as (

    select
        *,
        lead(ts) over series as next_ts,
        lead(bucket_position) over series as next_position,
        lead(session_index) over series as next_session_index,
        min(ts) over (partition by symbol, exchange) as series_first_ts,
        max(ts) over (partition by symbol, exchange) as series_last_ts
    from gap_positions
    window series as (partition by symbol, exchange order by bucket_position)

),

gap_found as (

    select * from gap_steps
    where next_position > bucket_position + 1

),

gap_ends as (

    select
        gap_found.symbol,
        gap_found.exchange,
        gap_found.next_position - gap_found.bucket_position - 1 as missing_bars,
        gap_found.series_first_ts,
        gap_found.series_last_ts,
        case
            when gap_found.calendar = '24/7' or gap_found.bucket_position + 1 < gap_found.session_end_position
                then gap_found.ts + {{ step }}
            else session_after.first_bucket_ts
        end as first_missing_ts,
        case
            when
                gap_found.calendar = '24/7'
                or gap_found.next_position > session_next.buckets_before
                then gap_found.next_ts - {{ step }}
            else session_before.last_bucket_ts
        end as last_missing_ts,
        case
            when gap_found.calendar = '24/7' then null
            when gap_found.bucket_position + 1 < gap_found.session_end_position then gap_found.session_index
            else gap_found.session_index + 1
        end as first_session_index,
        case
            when gap_found.calendar = '24/7' then null
            when gap_found.next_position > session_next.buckets_before then gap_found.next_session_index
            else gap_found.next_session_index - 1
        end as last_session_index,
        gap_found.calendar
    from gap_found
    left join gap_calendar as session_after
        on
            gap_found.calendar = session_after.calendar
            and session_after.session_index = gap_found.session_index + 1
    left join gap_calendar as session_next
        on
            gap_found.calendar = session_next.calendar
            and session_next.session_index = gap_found.next_session_index
    left join gap_calendar as session_before
        on
            gap_found.calendar = session_before.calendar
            and session_before.session_index = gap_found.next_session_index - 1

),

gap_ranges as (

    select
        gap_ends.symbol,
        gap_ends.exchange,
        cast('{{ bar_interval }}' as {{ mwh_varchar() }}) as bar_interval,
        gap_ends.first_missing_ts,
        gap_ends.last_missing_ts,
        coalesce(first_session.session_date, {{ mwh_utc_date('gap_ends.first_missing_ts') }}) as first_session_date,
        coalesce(last_session.session_date, {{ mwh_utc_date('gap_ends.last_missing_ts') }}) as last_session_date,
        gap_ends.last_session_index - gap_ends.first_session_index + 1 as exchange_sessions,
        gap_ends.missing_bars,
        gap_ends.series_first_ts,
        gap_ends.series_last_ts,
        gap_ends.calendar
    from gap_ends
    left join gap_calendar as first_session
        on
            gap_ends.calendar = first_session.calendar
            and gap_ends.first_session_index = first_session.session_index
    left join gap_calendar as last_session
        on
            gap_ends.calendar = last_session.calendar
            and gap_ends.last_session_index = last_session.session_index

)

select
    symbol,
    exchange,
    bar_interval,
    first_missing_ts,
    last_missing_ts,
    first_session_date,
    last_session_date,
    cast(case
        when calendar = '24/7' then {{ mwh_days_between("first_session_date", "last_session_date") }} + 1
        else exchange_sessions
    end as bigint) as missing_sessions,
    cast(missing_bars as bigint) as missing_bars,
    series_first_ts,
    series_last_ts,
    calendar
from gap_ranges

{%- endmacro %}


{#- Per (symbol, session) with bars missing: symbol, exchange, bar_interval, session_date,
    missing_bars, expected_bars, first_missing_ts, last_missing_ts (what the `no_missing_sessions`
    test reports). The ranges of mwh_bar_gap_ranges spread over the sessions they touch: as many rows
    as missing sessions, never one per missing bar. A select statement. -#}
{% macro mwh_missing_sessions(model, bar_interval, interval_column=none, window_cte=none) -%}
{%- set width = mwh_gap_widths()[bar_interval] -%}

with

missing_ranges as (

    {{ mwh_bar_gap_ranges(model, bar_interval, interval_column, window_cte) | indent(4) }}

),

missing_calendar as (

    {{ mwh_calendar_buckets(
        bar_interval,
        "session_date >= (select min(missing_ranges.first_session_date) from missing_ranges)"
        ~ " and session_date <= (select max(missing_ranges.last_session_date) from missing_ranges)"
    ) | indent(4) }}

),

missing_in_session as (

    select
        missing_ranges.symbol,
        missing_ranges.exchange,
        missing_calendar.session_date,
        greatest(missing_ranges.first_missing_ts, missing_calendar.first_bucket_ts) as first_missing_ts,
        least(missing_ranges.last_missing_ts, missing_calendar.last_bucket_ts) as last_missing_ts,
        greatest(missing_ranges.series_first_ts, missing_calendar.first_bucket_ts) as first_expected_ts,
        least(missing_ranges.series_last_ts, missing_calendar.last_bucket_ts) as last_expected_ts
    from missing_ranges
    inner join missing_calendar
        on
            missing_ranges.calendar = missing_calendar.calendar
            and missing_calendar.session_date >= missing_ranges.first_session_date
            and missing_calendar.session_date <= missing_ranges.last_session_date

)

select
    symbol,
    exchange,
    cast('{{ bar_interval }}' as {{ mwh_varchar() }}) as bar_interval,
    session_date,
    cast(sum(
        cast({{ mwh_seconds_between('first_missing_ts', 'last_missing_ts') }} as bigint) / {{ width }} + 1
    ) as bigint) as missing_bars,
    cast(max(
        cast({{ mwh_seconds_between('first_expected_ts', 'last_expected_ts') }} as bigint) / {{ width }} + 1
    ) as bigint) as expected_bars,
    min(first_missing_ts) as first_missing_ts,
    max(last_missing_ts) as last_missing_ts
from missing_in_session
where first_missing_ts <= last_missing_ts
group by symbol, exchange, session_date

{%- endmacro %}


{#- The bounded window of the completeness and rollup tests (a select of symbol, exchange,
    bar_interval, start_ts): per symbol with bars loaded into stg_market__bars within
    `mwh_test_window_hours` of its newest load, from `mwh_test_lookback_days` (UTC midnight) before the
    earliest of those bars. `source_interval` restricts the loaded bars to one interval. -#}
{% macro mwh_test_window(bar_interval, source_interval=none) -%}
    select
        recent.symbol,
        recent.exchange,
        cast('{{ bar_interval }}' as {{ mwh_varchar() }}) as bar_interval,
        {{ mwh_utc_midnight_days_before('min(recent.ts)', var('mwh_test_lookback_days', 7)) }} as start_ts
    from {{ ref('stg_market__bars') }} as recent
    where
        recent.loaded_at >= (
            select max(newest.loaded_at) - interval '{{ var("mwh_test_window_hours", 24) }} hours'
            from {{ ref('stg_market__bars') }} as newest
        )
        {% if source_interval is not none -%}
        and recent.bar_interval = '{{ source_interval }}'
        {%- endif %}
    group by recent.symbol, recent.exchange
{%- endmacro %}
