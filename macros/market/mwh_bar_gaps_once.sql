{#- fct_bar_gaps' pre-hook: on an incremental run, compute its window (mwh_bar_gaps_window) once into
    the run's temporary table (mwh_changed_window_table(), which the model reads), then forget the gaps
    after each changed series' start_ts (they are recomputed). The high-water mark is the newest
    checked_through_loaded_at of the mart's rows or of its mark table (mwh_mark_table), so an
    empty mart (no gaps at 5M clean daily bars) keeps its mark instead of rechecking all history. -#}
{% macro mwh_bar_gaps_forget_changed_once() -%}
    {%- if is_incremental() -%}
    {%- set window_table = mwh_changed_window_table() -%}
    {%- set marks = mwh_mark_table() -%}
    {%- set marked -%}
        (select marked_rows.checked_through_loaded_at from {{ this }} as marked_rows
        {%- if load_relation(marks) is not none %}
        union all
        select kept_mark.checked_through_loaded_at from {{ marks }} as kept_mark
        {%- endif %})
    {%- endset -%}
    drop table if exists {{ window_table }};
    create temporary table {{ window_table }} as
    {{ mwh_bar_gaps_window(marked) }};
    {{ mwh_forget_in_changed_window(['symbol', 'exchange', 'bar_interval'],
        this.identifier ~ '.last_missing_ts > changed_window.start_ts') }}
    {%- endif -%}
{%- endmacro %}
