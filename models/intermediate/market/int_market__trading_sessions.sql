{#
    Every calendar's sessions in one table: the exchange calendars of the seed (generated from
    exchange_calendars) and the 24/7 calendar of crypto, whose sessions are the UTC days.
#}

with

exchange_sessions as (

    select
        cast(calendar as {{ mwh_varchar() }}) as calendar,
        cast(session_date as date) as session_date,
        cast(open_utc as {{ mwh_timestamptz() }}) as open_utc,
        cast(close_utc as {{ mwh_timestamptz() }}) as close_utc,
        cast(is_early_close as boolean) as is_early_close,
        cast(is_late_open as boolean) as is_late_open
    from {{ ref('trading_sessions') }}

),

utc_days as (
    {%- set start_date = "cast('" ~ var('calendar_start_date') ~ "' as date)" %}
    {%- set day_count = mwh_days_between(start_date, "cast('" ~ var('calendar_end_date') ~ "' as date)") %}

    select
        cast(
            cast('{{ var("calendar_start_date") }}' as date) + cast(integer_series.n as integer) as date
        ) as session_date
    from {{ mwh_integer_series(0, day_count) }}

),

always_open_sessions as (

    select
        cast('24/7' as {{ mwh_varchar() }}) as calendar,
        session_date,
        {{ mwh_date_to_utc_ts('session_date') }} as open_utc,
        {{ mwh_date_to_utc_ts('session_date') }} + interval '1 day' as close_utc,
        false as is_early_close,
        false as is_late_open
    from utc_days

),

unioned as (

    select * from exchange_sessions
    union all
    select * from always_open_sessions

),

final as (

    select
        calendar,
        session_date,
        open_utc,
        close_utc,
        is_early_close,
        is_late_open
    from unioned

)

select * from final
