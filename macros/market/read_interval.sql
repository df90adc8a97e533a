{% macro mwh_read_interval(bar_interval) -%}
    {#- The quoted literal of one bar interval a model reads from stg_market__bars (or raw.bars), written
        where the model filters on it (`where bar_interval = {{ mwh_read_interval('1m') }}`), and recorded in
        the model's meta (reads_bar_interval_<interval>: true) for the build state
        (market_warehouse/build_state.py): a plain `mwh build` after a load of other intervals only (a daily
        session, no minute bars) leaves the model out. A model must call it for every interval it reads from
        the bars, or not at all (it then runs after a load of any interval). -#}
    {%- do config(meta={'reads_bar_interval_' ~ bar_interval: true}) -%}
    '{{ bar_interval }}'
{%- endmacro %}
