{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['model_id', 'symbol', 'exchange', 'bar_interval', 'bar_ts', 'horizon_bars'],
        on_schema_change='fail',
        indexes=mwh_indexes([
            {'columns': ['model_id', 'bar_ts']},
            {'columns': ['symbol', 'bar_ts']},
        ]),
    )
}}

{#
    Each prediction joined to what the market then did. The reference price is the close of the bar
    the model last saw: the bar matched to bar_ts as of that time (int_ml__record_bars: the bar in
    progress at bar_ts, a daily bar covering its UTC session date, else the next bar); the outcome is
    the close `horizon_bars` bars later in the same series. realized_return compares them in the same
    share units (a split between them is undone with the bars' split factors); outcome_close is as traded.
    A prediction that matches no bar is unresolved and listed in fct_ml_unmatched_records.
    realized_class is `up` / `down` beyond +/- var('ml_flat_return_threshold'), else `flat`.
    A prediction whose horizon has not yet passed (or whose bars are missing) is unresolved: its
    outcome columns are null and is_resolved is false.

    Incremental: a run recomputes the predictions on bars from var('ml_outcomes_late_window_days') days
    before the newest one built (new bars and late bar corrections resolve or change those), every
    prediction still unresolved, and every prediction loaded since the last run (late or re-scored).
    A correction of bars older than the window needs --full-refresh.

    Scores per prediction (averaged in the performance marts):
    - classification: is_correct; brier_score = (probability - is_correct)^2 and
      log_loss = -ln(probability of what happened), where `probability` is the model's probability of
      its predicted class, so both judge that one probability (one-vs-rest);
    - regression: error = predicted_value - realized_return;
    - both: is_direction_hit, whether the predicted direction (class, or sign of the value) matched.
#}

with

predictions as (

    select * from {{ ref('stg_ml__predictions') }} as staged  -- noqa: AL05
    {% if is_incremental() -%}
    where
        staged.bar_ts >= (
            select {{ mwh_utc_midnight_days_before(
                'coalesce(max(bar_ts), ' ~ mwh_min_ts() ~ ')', var('ml_outcomes_late_window_days')) }}
            from {{ this }}
        )
        or staged.loaded_at > (select coalesce(max(prediction_loaded_at), {{ mwh_min_ts() }}) from {{ this }})
        or exists (
            select 1
            from {{ this }} as built
            where
                not built.is_resolved
                and built.model_id = staged.model_id
                and built.symbol = staged.symbol
                and built.exchange = staged.exchange
                and built.bar_interval = staged.bar_interval
                and built.bar_ts = staged.bar_ts
                and built.horizon_bars = staged.horizon_bars
        )
    {%- endif %}

),

bars as (

    select * from {{ ref('int_ml__bars_indexed') }}

),

record_bars as (

    select * from {{ ref('int_ml__record_bars') }}

),

registry as (

    select * from {{ ref('stg_ml__model_registry') }}

),

with_bars as (

    select
        predictions.*,
        entry_bar.close as entry_close,
        exit_bar.ts as outcome_bar_ts,
        exit_bar.close as outcome_close,
        exit_bar.close * coalesce(exit_bar.split_factor / entry_bar.split_factor, 1) as outcome_close_entry_units
    from predictions
    left join record_bars as matched
        on
            predictions.symbol = matched.symbol
            and predictions.exchange = matched.exchange
            and predictions.bar_interval = matched.bar_interval
            and predictions.bar_ts = matched.record_ts
    left join bars as entry_bar
        on
            matched.symbol = entry_bar.symbol
            and matched.exchange = entry_bar.exchange
            and matched.bar_interval = entry_bar.bar_interval
            and matched.bar_index = entry_bar.bar_index
    left join bars as exit_bar
        on
            entry_bar.symbol = exit_bar.symbol
            and entry_bar.exchange = exit_bar.exchange
            and entry_bar.bar_interval = exit_bar.bar_interval
            and exit_bar.bar_index = entry_bar.bar_index + predictions.horizon_bars

),

realized as (

    select
        *,
        outcome_close_entry_units / entry_close - 1 as realized_return
    from with_bars

),

classified as (

    select
        *,
        realized_return is not null as is_resolved,
        case
            when realized_return > {{ var('ml_flat_return_threshold') }} then 'up'
            when realized_return < -{{ var('ml_flat_return_threshold') }} then 'down'
            when realized_return is not null then 'flat'
        end as realized_class,
        case
            when prediction_kind = 'classification' then predicted_class
            when predicted_value > 0 then 'up'
            when predicted_value < 0 then 'down'
            else 'flat'
        end as predicted_direction
    from realized

),

scored as (

    select
        *,
        case
            when is_resolved and prediction_kind = 'classification' then predicted_class = realized_class
        end as is_correct,
        case when is_resolved then predicted_direction = realized_class end as is_direction_hit
    from classified

),

final as (

    select
        scored.model_id,
        registry.model_name,
        registry.model_version,
        scored.symbol,
        scored.exchange,
        scored.bar_interval,
        scored.bar_ts,
        scored.horizon_bars,
        {{ mwh_utc_date('scored.bar_ts') }} as prediction_date,
        scored.predicted_at,
        scored.prediction_kind,
        scored.predicted_class,
        scored.probability,
        scored.predicted_value,
        scored.predicted_direction,
        scored.latency_ms,
        scored.entry_close,
        scored.outcome_bar_ts,
        scored.outcome_close,
        scored.is_resolved,
        scored.realized_return,
        scored.realized_class,
        scored.is_correct,
        scored.is_direction_hit,
        case
            when scored.is_correct is not null
                then power(scored.probability - {{ mwh_int('scored.is_correct') }}, 2)
        end as brier_score,
        case
            when scored.is_correct
                then -ln(greatest(scored.probability, 1e-15))
            when not scored.is_correct
                then -ln(greatest(1 - scored.probability, 1e-15))
        end as log_loss,
        case
            when scored.is_resolved and scored.prediction_kind = 'regression'
                then scored.predicted_value - scored.realized_return
        end as prediction_error,
        scored.loaded_at as prediction_loaded_at
    from scored
    left join registry
        on scored.model_id = registry.model_id

)

select * from final
