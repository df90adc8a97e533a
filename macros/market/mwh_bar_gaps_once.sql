{#- fct_bar_gaps' pre-hook: on an incremental run, compute its window (mwh_bar_gaps_window) once into
    the run's temporary table (mwh_changed_window_table(), which the model reads), then forget the gaps
    after each changed series' start_ts (they are recomputed). The high-water mark is the newest
    checked_through_loaded_at of the mart's rows or of its mark table (mwh_bar_gaps_mark_table), so an
    empty mart (no gaps at 5M clean daily bars) keeps its mark instead of rechecking all history. -#}
{% macro mwh_bar_gaps_forget_changed_once() -%}
    {%- if is_incremental() -%}
    {%- set window_table = mwh_changed_window_table() -%}
    {%- set marks = mwh_bar_gaps_mark_table() -%}
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


{#- fct_bar_gaps' mark table: one row, the newest staged load the mart has seen (written by
    mwh_bar_gaps_keep_mark after every build, full or incremental). It sits in the intermediate schema,
    beside int_market__build_marks, out of the analysts' sight. Dropping it is safe: the next run then
    takes the mark from the mart's rows (an empty mart: all history is rechecked). -#}
{% macro mwh_bar_gaps_mark_table() -%}
    {%- set node = (graph.get('nodes') or {}).get('model.market_warehouse.int_market__build_marks') -%}
    {%- do return(api.Relation.create(database=this.database, schema=node.schema if node else this.schema,
        identifier=this.identifier ~ '__checked_through', type='table')) -%}
{%- endmacro %}


{#- fct_bar_gaps' post-hook (every build): keep its high-water mark in mwh_bar_gaps_mark_table, the same
    value its rows carry, then the usual one-row update of the rows' mark (mwh_mark_checked_through). -#}
{% macro mwh_bar_gaps_keep_mark() -%}
    {#- Spark rebuilds the mart whole every run (mwh_incremental_materialization): no mark to keep. -#}
    {%- if mwh_incremental_materialization() != 'incremental' -%}
    select 1
    {%- else -%}
    {%- set marks = mwh_bar_gaps_mark_table() -%}
    create schema if not exists {{ marks.include(database=false, identifier=false) }};
    create table if not exists {{ marks }} (checked_through_loaded_at {{ mwh_timestamptz() }});
    delete from {{ marks }};
    insert into {{ marks }} (checked_through_loaded_at)
    select max(staged.loaded_at) from {{ ref('stg_market__bars') }} as staged;
    {{ mwh_mark_checked_through(key=['symbol', 'exchange', 'bar_interval', 'first_missing_ts']) }}
    {%- endif -%}
{%- endmacro %}
