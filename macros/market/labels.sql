{#
    Forward returns over 1, 5 and 20 bars of a bar series, with the time of the horizon's bar (so a
    backtest can purge overlapping labels). `close_column` is the price to use.
#}
{% macro forward_return_labels(bars_relation, close_column) -%}

with

bars as (

    select
        symbol,
        exchange,
        ts,
        cast({{ close_column }} as double precision) as close
    from {{ bars_relation }}

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
        symbol,
        exchange,
        ts,
        {{ mwh_round(mwh_safe_divide('close_1_ahead', 'close') ~ ' - 1', var('feature_round_digits')) }} as forward_return_1,
        {{ mwh_round(mwh_safe_divide('close_5_ahead', 'close') ~ ' - 1', var('feature_round_digits')) }} as forward_return_5,
        {{ mwh_round(mwh_safe_divide('close_20_ahead', 'close') ~ ' - 1', var('feature_round_digits')) }} as forward_return_20,
        ts_1_ahead as horizon_end_ts_1,
        ts_5_ahead as horizon_end_ts_5,
        ts_20_ahead as horizon_end_ts_20
    from with_future

)

select * from final
{%- endmacro %}
