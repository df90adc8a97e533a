-- noqa: disable=LT02
{#
    Performance per model version, symbol and day (the UTC date of the bar predicted from), over
    resolved predictions, with a rolling window of var('ml_rolling_window_days') days ending that day.
    Rolling figures are recomputed from summed counts and sums, never averaged averages.
    Regression rows have accuracy, Brier and log loss null; classification rows have MAE, RMSE and the
    information coefficient (Pearson correlation of predicted and realized returns, recomputed from sums
    so the rolling window's is exact) null; a correlation needs two predictions and some variance.
#}

{% set classes = ['up', 'down', 'flat'] %}
{% set class_counts = [] %}
{% for c in classes %}{% do class_counts.extend(['n_predicted_' ~ c, 'n_realized_' ~ c, 'n_true_' ~ c]) %}{% endfor %}

with

outcomes as (

    select * from {{ ref('fct_prediction_outcomes') }}

),

daily as (

    select
        model_id,
        symbol,
        prediction_date,
        max(prediction_kind) as prediction_kind,
        count(*) as n_predictions,
        {{ mwh_count_if('is_resolved') }} as n_resolved,
        {{ mwh_count_if('is_correct') }} as n_correct,
        count(is_correct) as n_scored,
        sum({{ mwh_int('is_direction_hit') }}) as n_direction_hits,
        count(is_direction_hit) as n_direction_scored,
        {%- for c in classes %}
        sum({{ mwh_int("is_resolved and predicted_class = '" ~ c ~ "'") }}) as n_predicted_{{ c }},
        sum({{ mwh_int("realized_class = '" ~ c ~ "' and prediction_kind = 'classification'") }})
            as n_realized_{{ c }},
        sum({{ mwh_int("is_correct and predicted_class = '" ~ c ~ "'") }}) as n_true_{{ c }},
        {%- endfor %}
        sum(brier_score) as sum_brier,
        sum(log_loss) as sum_log_loss,
        sum(abs(prediction_error)) as sum_abs_error,
        sum(power(prediction_error, 2)) as sum_squared_error,
        count(prediction_error) as n_errors,
        {#- Sums from which a correlation is recomputed over any window: the information coefficient. #}
        sum(predicted_value * realized_return) filter (where prediction_error is not null) as sum_xy,
        sum(predicted_value) filter (where prediction_error is not null) as sum_x,
        sum(realized_return) filter (where prediction_error is not null) as sum_y,
        sum(power(predicted_value, 2)) filter (where prediction_error is not null) as sum_xx,
        sum(power(realized_return, 2)) filter (where prediction_error is not null) as sum_yy,
        avg(latency_ms) as avg_latency_ms
    from outcomes
    group by model_id, symbol, prediction_date

),

rolling as (

    select
        *,
        {%- for col in ['n_resolved', 'n_correct', 'n_scored', 'n_direction_hits', 'n_direction_scored',
                        'sum_brier', 'sum_log_loss', 'sum_abs_error', 'sum_squared_error', 'n_errors',
                        'sum_xy', 'sum_x', 'sum_y', 'sum_xx', 'sum_yy'] + class_counts %}
        cast(sum({{ col }}) over (
            partition by model_id, symbol
            order by prediction_date
            range between interval '{{ var("ml_rolling_window_days") - 1 }} days' preceding and current row
        ) as {{ 'bigint' if col.startswith('n_') else 'double precision' }})
            as rolling_{{ col }}{{ ',' if not loop.last }}
        {%- endfor %}
    from daily

),

final as (

    select
        model_id,
        symbol,
        prediction_date,
        prediction_kind,
        n_predictions,
        n_resolved,
        n_correct,
        {{ mwh_safe_divide('cast(n_correct as double precision)', 'n_scored') }} as accuracy,
        {{ mwh_safe_divide('cast(n_direction_hits as double precision)', 'n_direction_scored') }} as hit_rate,
        {{ mwh_safe_divide('sum_brier', 'n_scored') }} as brier_score,
        {{ mwh_safe_divide('sum_log_loss', 'n_scored') }} as log_loss,
        {{ mwh_safe_divide('sum_abs_error', 'n_errors') }} as mae,
        sqrt({{ mwh_safe_divide('sum_squared_error', 'n_errors') }}) as rmse,
        {{ mwh_correlation_from_sums('n_errors', 'sum_x', 'sum_y', 'sum_xy', 'sum_xx', 'sum_yy') }}
            as information_coefficient,
        {%- for c in classes %}
        {{ mwh_safe_divide('cast(n_true_' ~ c ~ ' as double precision)', 'n_predicted_' ~ c) }} as precision_{{ c }},
        {{ mwh_safe_divide('cast(n_true_' ~ c ~ ' as double precision)', 'n_realized_' ~ c) }} as recall_{{ c }},
        {%- endfor %}
        avg_latency_ms,
        rolling_n_resolved,
        {{ mwh_safe_divide('cast(rolling_n_correct as double precision)', 'rolling_n_scored') }}
            as rolling_accuracy,
        {{ mwh_safe_divide('cast(rolling_n_direction_hits as double precision)', 'rolling_n_direction_scored') }}
            as rolling_hit_rate,
        {{ mwh_safe_divide('rolling_sum_brier', 'rolling_n_scored') }} as rolling_brier_score,
        {{ mwh_safe_divide('rolling_sum_log_loss', 'rolling_n_scored') }} as rolling_log_loss,
        {{ mwh_safe_divide('rolling_sum_abs_error', 'rolling_n_errors') }} as rolling_mae,
        sqrt({{ mwh_safe_divide('rolling_sum_squared_error', 'rolling_n_errors') }}) as rolling_rmse,
        {{ mwh_correlation_from_sums(
            'rolling_n_errors', 'rolling_sum_x', 'rolling_sum_y', 'rolling_sum_xy', 'rolling_sum_xx', 'rolling_sum_yy'
        ) }} as rolling_information_coefficient,
        {%- for c in classes %}
        {{ mwh_safe_divide('cast(rolling_n_true_' ~ c ~ ' as double precision)', 'rolling_n_predicted_' ~ c) }}
            as rolling_precision_{{ c }},
        {{ mwh_safe_divide('cast(rolling_n_true_' ~ c ~ ' as double precision)', 'rolling_n_realized_' ~ c) }}
            as rolling_recall_{{ c }}{{ ',' if not loop.last }}
        {%- endfor %}
    from rolling

)

select * from final
