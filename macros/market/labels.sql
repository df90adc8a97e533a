{#
    Forward returns over 1, 5 and 20 bars of a bar series, with the time of the horizon's bar (so a
    backtest can purge overlapping labels). `close_column` is the price to use.

    Incremental: a new bar completes the labels of the 20 bars before it, so a run rewrites each
    symbol's bars from `late_window_days` before its newest built bar minus 20 bars; with
    `actions_aware` (adjusted prices) a symbol whose corporate actions changed is rewritten in full.
    The 20 bars are found per symbol by mwh_bars_to_rewrite, not by numbering the whole history.
#}
{% macro mwh_forward_return_labels(bars_relation, close_column, late_window_days, actions_aware) -%}

with

all_bars as (

    select
        symbol,
        exchange,
        ts,
        cast({{ close_column }} as {{ mwh_double() }}) as close
    from {{ bars_relation }}

),

{{ mwh_bars_to_rewrite(bars_relation, late_window_days, 20, 0, actions_aware) }},

bars as (

    select
        all_bars.*,
        rewrite_from.actions_loaded_at
    from all_bars
    inner join rewrite_from
        on
            all_bars.symbol = rewrite_from.symbol
            and all_bars.exchange = rewrite_from.exchange
    where all_bars.ts >= rewrite_from.output_from_ts

),

with_future as (

    select
        *,
        lead(close, 1) over bar_order as close_1_ahead,
        lead(close, 5) over bar_order as close_5_ahead,
        lead(close, 20) over bar_order as close_20_ahead,
        lead(ts, 1) over bar_order as ts_1_ahead,
        lead(ts, 5) over bar_order as ts_5_ahead,
        lead(ts, 20) over bar_order as ts_20_ahead
    from bars
    window bar_order as (partition by symbol, exchange order by ts)

),

final as (

    select
        with_future.symbol,
        with_future.exchange,
        with_future.ts,
        {{ mwh_round(mwh_safe_divide('close_1_ahead', 'close') ~ ' - 1', var('feature_round_digits')) }} as forward_return_1,
        {{ mwh_round(mwh_safe_divide('close_5_ahead', 'close') ~ ' - 1', var('feature_round_digits')) }} as forward_return_5,
        {{ mwh_round(mwh_safe_divide('close_20_ahead', 'close') ~ ' - 1', var('feature_round_digits')) }} as forward_return_20,
        ts_1_ahead as horizon_end_ts_1,
        ts_5_ahead as horizon_end_ts_5,
        ts_20_ahead as horizon_end_ts_20
        {%- if actions_aware %},
        actions_loaded_at
        {%- endif %}
    from with_future

)

select * from final
{%- endmacro %}
