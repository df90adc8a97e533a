{{
    config(
        materialized='table',
        schema='marts',
    )
}}

{#
    MetricFlow's daily time spine: one row per calendar day from var('calendar_start_date') to
    var('calendar_end_date') (the range the trading calendars cover). Declared as the time spine in
    metricflow_time_spine.yml (`time_spine:`), and named as MetricFlow's legacy default too.
#}

{%- set start = modules.datetime.date.fromisoformat(var('calendar_start_date')) %}
{%- set stop = modules.datetime.date.fromisoformat(var('calendar_end_date')) %}

with

days as (

    select cast('{{ start }}' as date) + cast(integer_series.n as integer) as date_day
    from {{ mwh_integer_series(0, (stop - start).days) }}

)

select date_day from days
