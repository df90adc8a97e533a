{#- fct_bar_gaps' pre-hook: on an incremental run, compute its window (mwh_bar_gaps_window) once into
    the run's temporary table (mwh_changed_window_table(), which the model reads), then forget the gaps
    after each changed series' start_ts (they are recomputed). The mark is the mart's kept one
    (mwh_kept_mark: its mark table, so an empty mart, no gaps at 5M clean daily bars, keeps its mark
    instead of rechecking all history). -#}
{% macro mwh_bar_gaps_forget_changed_once() -%}
    {%- if is_incremental() -%}
    {%- set window_table = mwh_changed_window_table() -%}
    drop table if exists {{ window_table }};
    create temporary table {{ window_table }} as
    {{ mwh_bar_gaps_window(mwh_kept_mark(
        '(select max(marked_rows.checked_through_loaded_at) from ' ~ this ~ ' as marked_rows)')) }};
    {{ mwh_forget_in_changed_window(['symbol', 'exchange', 'bar_interval'],
        this.identifier ~ '.last_missing_ts > changed_window.start_ts') }}
    {%- endif -%}
{%- endmacro %}
