{{
    config(
        indexes=mwh_indexes([{'columns': ['calendar', 'session_date desc']}]),
    )
}}

{#
    Trading sessions of every calendar in use: XNYS from exchange_calendars (the seed) and the 24/7
    UTC days of crypto. Holidays and unscheduled closures (2001-09-11..14, 2012-10-29..30) are absent
    rows; early closes are flagged.
#}

with

sessions as (

    select * from {{ ref('int_market__trading_sessions') }}

),

final as (

    select
        calendar,
        session_date,
        open_utc,
        close_utc,
        is_early_close,
        is_late_open,
        cast(extract(epoch from close_utc - open_utc) / 60 as integer) as session_minutes
    from sessions

)

select * from final
