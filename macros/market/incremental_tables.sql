{#
    Data tests on what changed (issue #14 item 3). dbt hands every generic test its model through
    `get_where_subquery` (dbt-core's where_subquery.sql); this project's version keeps dbt's `where`
    config and, for the relations of var `mwh_test_scoped_models` (each with symbol, exchange and ts),
    narrows the test to the rows the last build could have written:

      each (symbol, exchange) with bars or corporate actions loaded into staging since the older mark of
      int_market__build_marks (the build before this one), from `mwh_test_scope_days` days before its
      first such bar on (from its first bar when its corporate actions changed: its whole adjusted
      history is rewritten)

    `mwh_test_scope_days` covers what an incremental run rewrites behind a new bar: the labels' 20-bar
    horizon and the features' late window. Nothing is narrowed when `mwh_full_tests` is true (the
    nightly job), on a full refresh, when the build marks do not exist yet or hold one build (a first
    build), or for the tests of var `mwh_test_unscoped_tests`, which judge a whole series or table
    (completeness and rollups bound themselves with mwh_test_changed_window: the same
    changed series). On DuckDB the tests of var
    `mwh_test_unscoped_tests_duckdb` (not_null, accepted_range) are not narrowed either on a table: its
    zone maps answer them over the whole table in about 1 ms at 5M bars, where the scope's join took
    120-190 ms. On a view they are narrowed: the training set is a view joining features and labels, and
    unscoped, each of its twelve such tests computed the whole join (0.2 s alone at 5M daily bars, 0.56-0.84 s
    beside the other tests in the incremental build of 2026-11-24 03:09: 7.4 of the tests' 44.1 node-s);
    scoped, 0.012-0.019 s alone.

    Relations are looked up in the graph, not by ref(): dbt's built-in not_null/unique tests are not
    rendered at parse time, so a ref() here would be a dependency dbt never recorded. A load run that
    started before the mark and committed after it counts: the bars loaded from its start on are in scope.
#}
{% macro get_where_subquery(relation) -%}
    {%- if config.get('where', '') -%}
        {%- do return(adapter.dispatch('get_where_subquery', 'dbt')(relation)) -%}
    {%- endif -%}
    {%- if not execute -%}
        {%- do return(relation) -%}
    {%- endif -%}
    {%- if ((relation.identifier or '') | lower) not in var('mwh_test_scoped_models', []) -%}
        {%- do return(relation) -%}
    {%- endif -%}
    {%- set test_metadata = model.get('test_metadata') if model is mapping else none -%}
    {%- set test_name = test_metadata.get('name') if test_metadata else none -%}
    {%- if test_name in var('mwh_test_unscoped_tests', [])
        or (target.type == 'duckdb' and test_name in var('mwh_test_unscoped_tests_duckdb', [])
            and ((relation.identifier or '') | lower) not in mwh_view_names()) -%}
        {%- do return(relation) -%}
    {%- endif -%}
    {%- set marks = mwh_test_scope_marks() -%}
    {%- if marks is none -%}
        {%- do return(relation) -%}
    {%- endif -%}
    {#- the changed series as constants, asked once per invocation (macros/market/test_scope.sql) -#}
    {%- set series = mwh_test_changed_series() -%}
    {%- if series is not none -%}
        {%- do return(mwh_test_scope_constant(relation, series)) -%}
    {%- endif -%}
    {%- do return(mwh_test_scope(relation, marks)) -%}
{%- endmacro %}


{#- The build marks (int_market__build_marks) the data tests on what changed are scoped by, or none when
    every row is to be tested: at parse time, with `mwh_full_tests`, on a full refresh, or before the first
    build. get_where_subquery and the grain tests' scope (mwh_test_changed_return_keys) ask it. -#}
{% macro mwh_test_scope_marks() -%}
    {%- if not execute or var('mwh_full_tests', false) or flags.FULL_REFRESH -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- do return(mwh_graph_relation('model.market_warehouse.int_market__build_marks')) -%}
{%- endmacro %}


{#- The lower-case names (alias, else name) of the project's models materialized as views: read from dbt's
    graph once and kept there (they follow from the parsed project alone, so unlike mwh_test_changed_series
    the answer holds for every invocation that reuses the graph). -#}
{% macro mwh_view_names() -%}
    {%- set cached = graph.get('mwh_view_names') -%}
    {%- if cached is not none -%}
        {%- do return(cached) -%}
    {%- endif -%}
    {%- set names = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.config.materialized == 'view' -%}
        {%- do names.append((node.alias or node.name) | lower) -%}
    {%- endfor -%}
    {%- do graph.update({'mwh_view_names': names}) -%}
    {%- do return(names) -%}
{%- endmacro %}


{#- The relation of a graph node (model or source) as it exists in the warehouse, or none. A source's
    schema (raw) holds no model, so dbt's relation cache may be half-filled by another thread: a source
    is asked of the database (mwh_relation_exists), a model of the cache. -#}
{% macro mwh_graph_relation(unique_id) -%}
    {%- set node = graph.nodes.get(unique_id) -%}
    {%- if node is not none -%}
        {%- do return(adapter.get_relation(database=node.database, schema=node.schema,
            identifier=node.alias or node.name)) -%}
    {%- endif -%}
    {%- set node = graph.sources.get(unique_id) -%}
    {%- if node is none -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set relation = api.Relation.create(database=node.database, schema=node.schema,
        identifier=node.identifier or node.name) -%}
    {%- do return(relation if mwh_relation_exists(relation) else none) -%}
{%- endmacro %}


{#- The scoped relation of get_where_subquery (a subquery with an alias). -#}
{% macro mwh_test_scope(relation, marks) -%}
    {%- set bars = mwh_graph_relation('model.market_warehouse.stg_market__bars') -%}
    {%- set actions = mwh_graph_relation('model.market_warehouse.stg_market__corporate_actions') -%}
    {%- set runs = mwh_graph_relation('source.market_warehouse.market.loader_runs') -%}
    {%- if bars is none or actions is none or runs is none -%}
        {%- do return(relation) -%}
    {%- endif -%}
    {%- set min_ts = mwh_min_ts() -%}
    {#- the older of the two marks (none yet: everything), moved back to the start of any load run that
        finished after it (mwh_test_scope_since, which the constant scope reads too) -#}
    {%- set since = '(select since_mark.mark from (' ~ mwh_test_scope_since(marks, runs) ~ ') as since_mark)' -%}
    {%- set scoped -%}
    (
        select scoped_rows.*
        from {{ relation }} as scoped_rows
        inner join (
            select
                changed_rows.symbol,
                changed_rows.exchange,
                min(changed_rows.changed_ts) as changed_from_ts
            from (
                select
                    changed_bars.symbol,
                    changed_bars.exchange,
                    changed_bars.ts as changed_ts
                from {{ bars }} as changed_bars
                where changed_bars.loaded_at >= {{ since }}
                union all
                select
                    changed_actions.symbol,
                    changed_actions.exchange,
                    {{ min_ts }} as changed_ts
                from {{ actions }} as changed_actions
                where changed_actions.loaded_at >= {{ since }}
            ) as changed_rows
            group by changed_rows.symbol, changed_rows.exchange
        ) as changed_series
            on
                scoped_rows.symbol = changed_series.symbol
                and scoped_rows.exchange = changed_series.exchange
                and scoped_rows.ts >= changed_series.changed_from_ts - interval '{{ var("mwh_test_scope_days", 35) }} days'
    ) as mwh_test_scope
    {%- endset -%}
    {%- do return(scoped) -%}
{%- endmacro %}


{#
    What changed in the daily series since a table's high-water mark (the newest staged load it has
    seen: the largest `checked_through_loaded_at` of `marked_relation`; none, or an empty table:
    everything). A select, one row per changed (symbol, exchange):

      first_changed_ts  the first daily bar that may differ: the first 1d bar loaded since the mark, the
                        UTC day before the first 1m bar loaded since (its session's rolled-up bar), or the
                        series' first bar when its corporate actions changed (mwh_loaded_since: a load
                        run that finished after the mark counts)
      read_from_ts      where a run recomputing from first_changed_ts reads `daily_bars` from: 30 days
                        earlier (the previous bar, for lag(), and every bar an action's 10-day ex-date
                        window can land on), or the series' first bar when no bar lies in those 30 days

    Computed once per run: the pre-hook mwh_forget_changed_daily stores it in a temporary table
    (mwh_changed_window_table) and deletes from it; the model's call returns a select from that table.
#}
{% macro mwh_daily_changed_window(marked_relation, daily_bars) -%}
    {%- if is_incremental() -%}
select * from {{ mwh_changed_window_table() }}
    {%- else -%}
{{ mwh_daily_changed_window_sql(marked_relation, daily_bars) }}
    {%- endif -%}
{%- endmacro %}


{#- The temporary table holding this model's changed window for the run (one per model and session). -#}
{% macro mwh_changed_window_table() -%}
    {{- return('mwh_changed__' ~ this.identifier) -}}
{%- endmacro %}


{#- The end of a pre-hook that stored this run's changed window (mwh_changed_window_table): analyze it,
    then forget this table's rows that match a window row on `keys` and meet `condition` (SQL over
    this.identifier and changed_window); the run writes them again. The window holds one row per key.
    DuckDB: a join (delete ... using), not a correlated exists: DuckDB turns that into a semi join on
    every distinct (keys, columns of the condition) of the table, 3.4 s at 5M bars against 0.2 s. -#}
{% macro mwh_forget_in_changed_window(keys, condition) -%}
    {%- set matches_window -%}
        {%- for key in keys %}
        {{ this.identifier }}.{{ key }} = changed_window.{{ key }}
        and
        {%- endfor %}
        {{ condition }}
    {%- endset -%}
    {{ mwh_analyze_window_table() }}
    {%- if target.type == 'duckdb' %}
    delete from {{ this }}
    using {{ mwh_changed_window_table() }} as changed_window
    where {{ matches_window }}
    {%- else %}
    delete from {{ this }}
    where exists (
        select 1
        from {{ mwh_changed_window_table() }} as changed_window
        where {{ matches_window }}
    )
    {%- endif %}
{%- endmacro %}


{#- PostgreSQL: statistics for the window table before the model joins it (autovacuum never analyzes a
    temporary table; without them the planner assumes 750 rows and default selectivities). -#}
{% macro mwh_analyze_window_table() -%}
    {%- if target.type == 'postgres' -%}
    analyze {{ mwh_changed_window_table() }};
    {%- endif -%}
{%- endmacro %}


{% macro mwh_daily_changed_window_sql(marked_relation, daily_bars, daily_bars_indexed=false) -%}
{%- set min_ts = mwh_min_ts() -%}
{#- A table built by an earlier version of the project has no mark column: say what to run, in one line,
    instead of the engine's binder error (an in-place upgrade, ALTER then insert, failed on DuckDB). -#}
{%- if execute and 'checked_through_loaded_at' not in (adapter.get_columns_in_relation(marked_relation)
        | map(attribute='name') | map('lower') | list) -%}
    {{ exceptions.raise_compiler_error(marked_relation ~ " was built by an earlier version of the project (no "
        ~ "checked_through_loaded_at column): run `mwh build --full-refresh --select "
        ~ marked_relation.identifier ~ "` once, then build as usual") }}
{%- endif -%}
{#- the table's kept mark (its mark table, written with the rows' mark after every build; read in place of
    every row's mark: 4 scans of 5M rows a window on PostgreSQL) -#}
{%- set mark = mwh_kept_mark('(select max(held.checked_through_loaded_at) from ' ~ marked_relation ~ ' as held)') -%}
{#- read_from_ts: one join of the changed series with `daily_bars`, counted per series (a correlated
    exists per series was a sequential scan of all bars per series on PostgreSQL without an index:
    216.6 s for 1,000 series at 5M bars; an index for it turned fct_bars_1d's hash joins into 5M index
    probes, 9 -> 50 s). On PostgreSQL, when `daily_bars_indexed` (the caller's bars have a (symbol, ts)
    index, as fct_bars_1d has), that correlated exists instead: one index probe per changed series, where
    the join hashed all 5M bars (4.5 s of int_risk__daily_returns_unioned's 6.1 s pre-hook, one new
    session). -#}
{%- set probe = daily_bars_indexed and target.type == 'postgres' %}
{%- set before_changed_bar -%}
                changed.symbol = before_bars.symbol
                and changed.exchange = before_bars.exchange
                and before_bars.ts < changed.first_changed_ts
                and before_bars.ts >= changed.first_changed_ts - interval '30 days'
{%- endset %}
select
    changed.symbol,
    changed.exchange,
    changed.first_changed_ts,
    case
        {%- if probe %}
        when exists (
            select 1
            from {{ daily_bars }} as before_bars
            where
{{ before_changed_bar }}
        ) then changed.first_changed_ts - interval '30 days'
        {%- else %}
        when count(before_bars.ts) > 0 then changed.first_changed_ts - interval '30 days'
        {%- endif %}
        else {{ min_ts }}
    end as read_from_ts
from (
    select
        changes.symbol,
        changes.exchange,
        min(changes.changed_ts) as first_changed_ts
    from (
        select
            changed_bars.symbol,
            changed_bars.exchange,
            case
                when changed_bars.bar_interval = '1d' then changed_bars.ts
                else {{ mwh_date_to_utc_ts(mwh_utc_date('changed_bars.ts')) }} - interval '1 day'
            end as changed_ts
        from {{ ref('stg_market__bars') }} as changed_bars
        where
            changed_bars.bar_interval in ('1d', '1m')
            and {{ mwh_loaded_since(mark, 'changed_bars.loaded_at', 'changed_bars.run_id', 'changed_bars.load_source', standalone_mark=true) }}
        union all
        select
            changed_actions.symbol,
            changed_actions.exchange,
            {{ min_ts }} as changed_ts
        from {{ ref('stg_market__corporate_actions') }} as changed_actions
        where {{ mwh_loaded_since(mark, 'changed_actions.loaded_at', 'changed_actions.run_id', 'changed_actions.load_source', standalone_mark=true) }}
    ) as changes
    group by changes.symbol, changes.exchange
) as changed
{%- if not probe %}
left join {{ daily_bars }} as before_bars
    on
{{ before_changed_bar }}
group by changed.symbol, changed.exchange, changed.first_changed_ts
{%- endif %}
{%- endmacro %}


{#- Pre-hook of a table kept by mwh_daily_changed_window: on an incremental run, compute the changed
    window once into its temporary table (`daily_bars`: where read_from_ts looks for earlier bars;
    none: this table), then forget this table's rows of the changed series from their first changed
    bar on (the run writes them again). `ts_column`: this table's bar time column. -#}
{% macro mwh_forget_changed_daily(daily_bars=none, ts_column='ts') -%}
    {%- if is_incremental() -%}
    {%- set window_table = mwh_changed_window_table() -%}
    drop table if exists {{ window_table }};
    create temporary table {{ window_table }} as
    {{ mwh_daily_changed_window_sql(this, daily_bars if daily_bars is not none else this) }};
    {{ mwh_forget_in_changed_window(['symbol', 'exchange'],
        this.identifier ~ '.' ~ ts_column ~ ' >= changed_window.first_changed_ts') }}
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook of an intraday bar table kept from the vendor's `bar_interval` bars and 1-minute bars rolled
    up into `bucket_width` buckets (fct_bars_1h): on an incremental run, the changed window into its
    temporary table (one row per series with bars of either interval loaded into staging since the
    table's kept load mark: first_changed_ts, its earliest such bar, a 1-minute bar counted from its
    bucket), then this table's rows of those series from there on forgotten; the run writes them again.
    No corporate actions: intraday bars are not adjusted. -#}
{% macro mwh_forget_changed_intraday(bar_interval, bucket_width) -%}
    {%- if is_incremental() -%}
    {%- set window_table = mwh_changed_window_table() -%}
    {%- set mark = mwh_kept_mark('null') -%}
    drop table if exists {{ window_table }};
    create temporary table {{ window_table }} as
    select
        changed_bars.symbol,
        changed_bars.exchange,
        min(
            case
                when changed_bars.bar_interval = '1m' then {{ mwh_time_bucket(bucket_width, 'changed_bars.ts') }}
                else changed_bars.ts
            end
        ) as first_changed_ts
    from {{ ref('stg_market__bars') }} as changed_bars
    where
        changed_bars.bar_interval in ('{{ bar_interval }}', '1m')
        and {{ mwh_loaded_since(mark, 'changed_bars.loaded_at', 'changed_bars.run_id', 'changed_bars.load_source', standalone_mark=true) }}
    group by changed_bars.symbol, changed_bars.exchange;
    {{ mwh_forget_in_changed_window(['symbol', 'exchange'],
        this.identifier ~ '.ts >= changed_window.first_changed_ts') }}
    {%- endif -%}
{%- endmacro %}


{#- Post-hook: the table has seen every staged load up to now (its new high-water mark, `value`; the
    largest `column` over the table). The rows a run writes carry the new mark already; when a run
    writes none (nothing it keeps changed), one row of the newest mark takes the new one: never the
    whole table. `key`: columns naming one row. The load mark (column checked_through_loaded_at) is
    also kept in the model's mark table (mwh_keep_mark, every build), which an empty table needs. -#}
{% macro mwh_mark_checked_through(key=['symbol', 'exchange', 'ts'], column='checked_through_loaded_at',
    value=none) -%}
    {%- set new_mark = value if value is not none else mwh_load_mark() -%}
    {%- if column == 'checked_through_loaded_at' %}
    {{ mwh_keep_mark(new_mark) }};
    {#- the rows take the value just kept, not the load mark computed again (twice below) #}
    {%- set new_mark = '(select max(kept_mark.checked_through_loaded_at) from ' ~ mwh_mark_table() ~ ' as kept_mark)' %}
    {%- endif %}
    {%- if is_incremental() %}
    update {{ this }} set {{ column }} = {{ new_mark }}
    where
        {{ new_mark }} > (select coalesce(max(old_marks.{{ column }}), {{ mwh_min_ts() }}) from {{ this }} as old_marks)
        and exists (
            select 1
            from (
                select {% for k in key %}newest_row.{{ k }}{{ ', ' if not loop.last }}{% endfor %}
                from {{ this }} as newest_row
                order by newest_row.{{ column }} desc
                limit 1
            ) as newest
            where
                {%- for k in key %}
                {{ 'and ' if not loop.first }}newest.{{ k }} = {{ this.identifier }}.{{ k }}
                {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}
