{{
    config(
        tags=['risk'],
        pre_hook="{{ mwh_session_settings() }}",
        indexes=mwh_indexes([{'columns': ['series_name', 'exchange', 'as_of_date']}]),
    )
}}

{#
    One-day value at risk and expected shortfall (CVaR) per series (symbol or portfolio), as-of date and
    confidence level, from the `risk_var_window_returns` daily returns up to and including the as-of date
    (int_risk__daily_returns_unioned), for the last `risk_backtest_returns` as-of dates of each series and
    its newest one. Each row forecasts the next return of the series (forecast_session_date), which the
    backtest compares with the realised return (null for the newest as-of date: not yet known).

    Losses are positive fractions of value (0.03 = 3%); with c the confidence level and p = 1 - c:
    - historical VaR = -(p-quantile of the window's returns), the continuous (linearly interpolated)
      empirical quantile (numpy's default, percentile_cont);
    - historical CVaR = -(mean of the window's returns at or below that quantile);
    - parametric (normal) VaR = -(mean + stddev * z_p), CVaR = -(mean - stddev * phi(z_p) / p), with the
      sample mean and sample standard deviation (n - 1) of the window and z_p = Phi^-1(p)
      (macros/risk/mwh_normal.sql).
    A breach is a realised return below -VaR.
#}

{%- set window = var('risk_var_window_returns', 250) | int -%}
{%- set backtest = var('risk_backtest_returns', 250) | int -%}
{%- set levels = var('risk_confidence_levels', [0.95, 0.99]) -%}

with

returns as (

    select * from {{ ref('int_risk__daily_returns_unioned') }}

),

series_last as (

    select
        series_type,
        series_name,
        exchange,
        max(return_index) as last_index
    from returns
    group by series_type, series_name, exchange

),

{# The as-of rows: each ends a full window; the last `backtest` of them (plus the newest) per series. #}
as_of as (

    select
        returns.series_type,
        returns.series_name,
        returns.exchange,
        returns.session_date as as_of_date,
        returns.return_index
    from returns
    inner join series_last
        on
            returns.series_type = series_last.series_type
            and returns.series_name = series_last.series_name
            and returns.exchange = series_last.exchange
    where
        returns.return_index >= {{ window }}
        and returns.return_index >= series_last.last_index - {{ backtest }}

),

window_returns as (

    select
        as_of.series_type,
        as_of.series_name,
        as_of.exchange,
        as_of.as_of_date,
        as_of.return_index,
        returns.daily_return
    from as_of
    cross join {{ mwh_integer_series(0, window - 1) }}
    inner join returns
        on
            as_of.series_type = returns.series_type
            and as_of.series_name = returns.series_name
            and as_of.exchange = returns.exchange
            and returns.return_index = as_of.return_index - integer_series.n

),

levels_first_guess as (

    {% for level in levels %}
    select
        {{ level }} as confidence_level,
        {{ 1 - (level | float) }} as tail_probability,
        {{ mwh_norm_ppf_acklam(1 - (level | float)) }} as z_first_guess
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

levels as (

    select
        cast(confidence_level as double precision) as confidence_level,
        cast(tail_probability as double precision) as tail_probability,
        {{ mwh_norm_ppf_refine('z_first_guess', 'tail_probability') }} as z_score
    from levels_first_guess

),

moments as (

    select
        series_type,
        series_name,
        exchange,
        as_of_date,
        return_index,
        count(*) as window_size,
        avg(daily_return) as mean_return,
        stddev_samp(daily_return) as stddev_return
    from window_returns
    group by series_type, series_name, exchange, as_of_date, return_index

),

quantiles as (

    {# One aggregate per level: DuckDB's percentile_cont takes a constant fraction only. #}
    {% for level in levels %}
    select
        series_type,
        series_name,
        exchange,
        return_index,
        cast({{ level }} as double precision) as confidence_level,
        {{ mwh_percentile('daily_return', 1 - (level | float)) }} as return_quantile
    from window_returns
    group by series_type, series_name, exchange, return_index
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

tails as (

    select
        quantiles.series_type,
        quantiles.series_name,
        quantiles.exchange,
        quantiles.return_index,
        quantiles.confidence_level,
        avg(window_returns.daily_return) as tail_mean_return,
        count(*) as tail_size
    from quantiles
    inner join window_returns
        on
            quantiles.series_type = window_returns.series_type
            and quantiles.series_name = window_returns.series_name
            and quantiles.exchange = window_returns.exchange
            and quantiles.return_index = window_returns.return_index
            and quantiles.return_quantile >= window_returns.daily_return
    group by
        quantiles.series_type,
        quantiles.series_name,
        quantiles.exchange,
        quantiles.return_index,
        quantiles.confidence_level

),

final as (

    select
        moments.series_type,
        moments.series_name,
        moments.exchange,
        moments.as_of_date,
        levels.confidence_level,
        moments.window_size,
        next_return.session_date as forecast_session_date,
        next_return.daily_return as realized_return,
        moments.mean_return,
        moments.stddev_return,
        levels.z_score,
        -quantiles.return_quantile as historical_var,
        -tails.tail_mean_return as historical_cvar,
        tails.tail_size as historical_tail_size,
        -(moments.mean_return + moments.stddev_return * levels.z_score) as parametric_var,
        -(
            moments.mean_return
            - moments.stddev_return * {{ mwh_norm_pdf('levels.z_score') }} / levels.tail_probability
        ) as parametric_cvar,
        next_return.daily_return < quantiles.return_quantile as is_historical_breach,
        next_return.daily_return < moments.mean_return + moments.stddev_return * levels.z_score
            as is_parametric_breach
    from moments
    cross join levels
    inner join quantiles
        on
            moments.series_type = quantiles.series_type
            and moments.series_name = quantiles.series_name
            and moments.exchange = quantiles.exchange
            and moments.return_index = quantiles.return_index
            and levels.confidence_level = quantiles.confidence_level
    inner join tails
        on
            moments.series_type = tails.series_type
            and moments.series_name = tails.series_name
            and moments.exchange = tails.exchange
            and moments.return_index = tails.return_index
            and levels.confidence_level = tails.confidence_level
    left join returns as next_return
        on
            moments.series_type = next_return.series_type
            and moments.series_name = next_return.series_name
            and moments.exchange = next_return.exchange
            and next_return.return_index = moments.return_index + 1

)

select * from final
