{#- fct_bar_gaps' pre-hook: on an incremental run, compute its window (mwh_bar_gaps_window) once into
    the run's temporary table (mwh_changed_window_table(), which the model reads), then forget the gaps
    after each changed series' start_ts (they are recomputed). -#}
{% macro mwh_bar_gaps_forget_changed_once() -%}
    {%- if is_incremental() -%}
    {%- set window_table = mwh_changed_window_table() -%}
    drop table if exists {{ window_table }};
    create temporary table {{ window_table }} as
    {{ mwh_bar_gaps_window(this) }};
    {{ mwh_forget_in_changed_window(['symbol', 'exchange', 'bar_interval'],
        this.identifier ~ '.last_missing_ts > changed_window.start_ts') }}
    {%- endif -%}
{%- endmacro %}
