{{
    config(
        tags=['risk'],
        pre_hook="{{ mwh_session_settings() }}",
    )
}}

{#
    Backtest of the VaR forecasts of fct_value_at_risk: per series, confidence level and method
    (historical, parametric), the number of forecasts with a realised return (T), of breaches (x), and
    Kupiec's proportion-of-failures test of the breach rate against p = 1 - confidence:
        LR = -2 ln[(1 - p)^(T - x) p^x] + 2 ln[(1 - x/T)^(T - x) (x/T)^x]   (0 ln 0 = 0),
    chi-square with 1 degree of freedom under the null of a correct breach rate; p_value = P(chi2_1 > LR).
    The model is rejected (is_rejected) when p_value < `risk_kupiec_significance` (0.05).
#}

{%- set significance = var('risk_kupiec_significance', 0.05) -%}

with

forecasts as (

    select * from {{ ref('fct_value_at_risk') }}
    where realized_return is not null

),

by_method as (

    select
        series_type,
        series_name,
        exchange,
        confidence_level,
        'historical' as var_method,
        forecast_session_date,
        is_historical_breach as is_breach
    from forecasts
    union all
    select
        series_type,
        series_name,
        exchange,
        confidence_level,
        'parametric' as var_method,
        forecast_session_date,
        is_parametric_breach as is_breach
    from forecasts

),

counts as (

    select
        series_type,
        series_name,
        exchange,
        confidence_level,
        var_method,
        min(forecast_session_date) as first_forecast_date,
        max(forecast_session_date) as last_forecast_date,
        count(*) as observations,
        {{ mwh_count_if('is_breach') }} as breaches,
        1 - confidence_level as expected_breach_rate
    from by_method
    group by series_type, series_name, exchange, confidence_level, var_method

),

likelihood as (

    select
        *,
        cast(breaches as double precision) / observations as breach_rate,
        -2 * (
            (observations - breaches) * ln(1 - expected_breach_rate)
            + breaches * ln(expected_breach_rate)
        )
        + 2 * (
            case
                when breaches < observations
                    then
                        (observations - breaches)
                        * ln(1 - cast(breaches as double precision) / observations)
                else 0
            end
            + case
                when breaches > 0 then breaches * ln(cast(breaches as double precision) / observations)
                else 0
            end
        ) as raw_likelihood_ratio
    from counts

),

final as (

    select
        series_type,
        series_name,
        exchange,
        confidence_level,
        var_method,
        first_forecast_date,
        last_forecast_date,
        observations,
        breaches,
        observations * expected_breach_rate as expected_breaches,
        breach_rate,
        expected_breach_rate,
        greatest(raw_likelihood_ratio, 0) as kupiec_lr,
        {{ mwh_chi2_1_sf('raw_likelihood_ratio') }} as kupiec_p_value,
        {{ mwh_chi2_1_sf('raw_likelihood_ratio') }} < {{ significance }} as is_rejected
    from likelihood

)

select * from final
