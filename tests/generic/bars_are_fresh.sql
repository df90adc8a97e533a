{#
    Freshness that knows the trading calendar: a symbol's bars are stale when
      - daily bars: more than `max_sessions_behind` sessions have closed (plus `load_grace_hours` for
        the nightly load) after its last bar: weekends and holidays are not sessions, so a Monday
        morning check of Friday's bar passes;
      - intraday bars: more than `max_open_minutes_behind` minutes of *open market* have passed since
        its last bar: nights, weekends and holidays of an exchange do not count, every minute of a
        24/7 market does.
    Fails with each stale (symbol, interval), its last bar and how far behind it is. Historical
    datasets (the shared sample ends in 2021) are stale by definition, hence severity warn in the YAML.
    fct_data_quality_issues lists the same rows as `stale_source` (it calls this test's macro).

    acknowledged_check  optional check name in the `known_data_issues` seed (`stale_source`): a stale
                        (symbol, interval) whose last bar's date is acknowledged there is left out.
    indexed             true when `model` has staging's unique (symbol, exchange, bar_interval, ts) index
                        (stg_market__bars): on PostgreSQL each series' last bar is then one index probe
                        (mwh_series_newest), not an aggregate over every staged bar (2.2 s of TimescaleDB's
                        incremental tests at 5M daily bars). Default false: an aggregate, on any relation.
#}
{% test bars_are_fresh(model, interval_column='bar_interval', max_sessions_behind=1, load_grace_hours=6,
                       max_open_minutes_behind=30, acknowledged_check=none, indexed=false) %}

{#- each series' newest bar; another interval column is renamed bar_interval first (then no index to probe) -#}
{%- if interval_column == 'bar_interval' -%}
    {%- set newest_bars = mwh_series_newest(model, indexed=indexed, by_interval=true) -%}
{%- else -%}
    {%- set renamed = '(select symbol, exchange, ' ~ interval_column ~ ' as bar_interval, ts from ' ~ model
        ~ ') as interval_bars' -%}
    {%- set newest_bars = mwh_series_newest(renamed, indexed=false, by_interval=true) -%}
{%- endif %}

with

latest as (

    select
        newest_bars.symbol,
        newest_bars.exchange,
        newest_bars.bar_interval,
        exchanges.calendar,
        newest_bars.last_ts
    from ({{ newest_bars | indent(8) }}) as newest_bars
    inner join {{ ref('exchanges') }} as exchanges
        on newest_bars.exchange = exchanges.exchange

),

daily_lag as (

    select
        latest.symbol,
        latest.exchange,
        latest.bar_interval,
        latest.last_ts,
        count(sessions.session_date) as sessions_behind,
        cast(null as {{ mwh_double() }}) as open_minutes_behind
    from latest
    left join {{ ref('int_market__trading_sessions') }} as sessions
        on
            latest.calendar = sessions.calendar
            and sessions.session_date > {{ mwh_utc_date('latest.last_ts') }}
            and sessions.close_utc + interval '{{ load_grace_hours }} hours' <= current_timestamp
    where latest.bar_interval in ('1d', '1wk')
    group by latest.symbol, latest.exchange, latest.bar_interval, latest.last_ts

),

intraday_lag as (

    select
        latest.symbol,
        latest.exchange,
        latest.bar_interval,
        latest.last_ts,
        count(sessions.session_date) as sessions_behind,
        coalesce(sum(
            {{ mwh_seconds_between(
                'greatest(sessions.open_utc, latest.last_ts)', 'least(sessions.close_utc, current_timestamp)'
            ) }} / 60
        ), 0) as open_minutes_behind
    from latest
    left join {{ ref('int_market__trading_sessions') }} as sessions
        on
            latest.calendar = sessions.calendar
            and sessions.close_utc > latest.last_ts
            and sessions.open_utc < current_timestamp
    where latest.bar_interval not in ('1d', '1wk')
    group by latest.symbol, latest.exchange, latest.bar_interval, latest.last_ts

),

failures as (

    select * from daily_lag
    where sessions_behind > {{ max_sessions_behind }}

    union all

    select * from intraday_lag
    where open_minutes_behind > {{ max_open_minutes_behind }}

)

select *
from failures
{% if acknowledged_check is not none -%}
where not {{ mwh_is_acknowledged([acknowledged_check], 'failures', mwh_utc_date('failures.last_ts')) }}
{%- endif %}

{% endtest %}
