{#
    The changed series of the data tests on what changed (issue #14 item 3), computed once per dbt
    invocation and written into each test as constants.

    mwh_test_changed_series() asks the warehouse, once, which (symbol, exchange, bar_interval) have bars
    loaded into stg_market__bars since the older build mark (mwh_test_scope_since), and from which bar
    on; a series whose corporate actions changed counts from its first bar (bar_interval none: every
    interval; not asked when stg_market__corporate_actions is not built). The answer is kept in dbt's
    graph for the rest of the invocation, keyed by invocation_id (a manifest that `mwh` reuses for a
    later invocation asks again). Every test of a build reads the same marks: int_market__build_marks
    and staging are built before the tests that read them. Each scoped test gets the answer as a VALUES
    list with a constant lower bound on ts, so the engine prunes by ts before the join (DuckDB's zone
    maps, TimescaleDB's chunk exclusion at plan time) instead of scanning staging's load times and
    joining a subquery in every test.

    Above var `mwh_test_scope_max_series` changed series, or when the marks or staging do not exist
    yet, none is returned and the callers fall back to the subquery (mwh_test_scope) or to
    mwh_test_window.
#}
{% macro mwh_test_changed_series() -%}
    {%- set cache = graph.get('mwh_test_changed_series_cache') -%}
    {%- if cache is not none and cache.get('invocation_id') == invocation_id -%}
        {%- do return(cache.get('series')) -%}
    {%- endif -%}
    {%- set series = mwh_test_changed_series_query() -%}
    {%- do graph.update({'mwh_test_changed_series_cache': {'invocation_id': invocation_id, 'series': series}}) -%}
    {%- do return(series) -%}
{%- endmacro %}


{#- The query behind mwh_test_changed_series: a list of dicts (symbol, exchange, bar_interval or none,
    from_ts: a UTC datetime, or none for the whole series), or none (no marks, or too many series). -#}
{% macro mwh_test_changed_series_query() -%}
    {%- set marks = mwh_graph_relation('model.market_warehouse.int_market__build_marks') -%}
    {%- set bars = mwh_graph_relation('model.market_warehouse.stg_market__bars') -%}
    {%- set actions = mwh_graph_relation('model.market_warehouse.stg_market__corporate_actions') -%}
    {%- set runs = mwh_graph_relation('source.market_warehouse.market.loader_runs') -%}
    {%- if marks is none or bars is none or runs is none -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set limit = var('mwh_test_scope_max_series', 1000) | int -%}
    {%- set sql -%}
        with since as (
            {{ mwh_test_scope_since(marks, runs) }}
        ),

        changed as (
            select
                changed_bars.symbol,
                changed_bars.exchange,
                changed_bars.bar_interval,
                floor(extract(epoch from min(changed_bars.ts))) as from_epoch
            from {{ bars }} as changed_bars
            where changed_bars.loaded_at >= (select since.mark from since)
            group by changed_bars.symbol, changed_bars.exchange, changed_bars.bar_interval
            {%- if actions is not none %}
            union all
            select distinct
                changed_actions.symbol,
                changed_actions.exchange,
                cast(null as {{ mwh_varchar() }}) as bar_interval,
                cast(null as double precision) as from_epoch
            from {{ actions }} as changed_actions
            where changed_actions.loaded_at >= (select since.mark from since)
            {%- endif %}
        )

        select symbol, exchange, bar_interval, from_epoch
        from changed
        limit {{ limit + 1 }}
    {%- endset -%}
    {%- set table = run_query(sql) -%}
    {%- if table.rows | length > limit -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set series = [] -%}
    {%- for row in table.rows -%}
        {%- do series.append({
            'symbol': row[0], 'exchange': row[1], 'bar_interval': row[2],
            'from_ts': none if row[3] is none
                else modules.datetime.datetime(1970, 1, 1) + modules.datetime.timedelta(seconds=row[3] | int)}) -%}
    {%- endfor -%}
    {%- do return(series) -%}
{%- endmacro %}


{#- The older of the two build marks (none yet: everything), moved back to the start of any load run
    that finished after it: a select of one row, `mark`. -#}
{% macro mwh_test_scope_since(marks, runs) -%}
    select least(mark_row.mark, coalesce(min(cast(mark_runs.started_at as {{ mwh_timestamptz() }})), mark_row.mark)) as mark
    from (
        select case when count(*) >= 2 then min(built_marks.built_at) else {{ mwh_min_ts() }} end as mark
        from {{ marks }} as built_marks
    ) as mark_row
    left join {{ runs }} as mark_runs
        on mark_runs.finished_at >= mark_row.mark
    group by mark_row.mark
{%- endmacro %}


{#- A UTC datetime as a timestamptz literal. -#}
{% macro mwh_test_ts_literal(ts) -%}
    cast('{{ ts.strftime("%Y-%m-%d %H:%M:%S") }}+00' as {{ mwh_timestamptz() }})
{%- endmacro %}


{#- Per (symbol, exchange): the first bar to test, `days` before the first changed bar (of interval
    `bar_interval` when given; a corporate action: the whole series, as none), at UTC midnight when
    `midnight`. A dict keyed by (symbol, exchange). -#}
{% macro mwh_test_series_starts(series, days, bar_interval=none, midnight=false) -%}
    {%- set starts = {} -%}
    {%- set whole = [] -%}
    {%- for s in series
        if bar_interval is none or s['bar_interval'] is none or s['bar_interval'] == bar_interval -%}
        {%- set key = (s['symbol'], s['exchange']) -%}
        {%- if s['from_ts'] is none -%}
            {%- do whole.append(key) -%}
        {%- else -%}
            {%- set start = s['from_ts'] - modules.datetime.timedelta(days=days) -%}
            {%- if midnight -%}
                {%- set start = start.replace(hour=0, minute=0, second=0, microsecond=0) -%}
            {%- endif -%}
            {%- if key not in starts or start < starts[key] -%}
                {%- do starts.update({key: start}) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for key in whole -%}
        {%- do starts.update({key: none}) -%}
    {%- endfor -%}
    {%- do return(starts) -%}
{%- endmacro %}


{#- A VALUES relation (symbol, exchange, start_ts) of mwh_test_series_starts, or none when empty. -#}
{% macro mwh_test_starts_values(starts) -%}
    {%- if starts | length == 0 -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set rows = [] -%}
    {%- for key in starts | sort -%}
        {%- do rows.append("('" ~ (key[0] | replace("'", "''")) ~ "', '" ~ (key[1] | replace("'", "''")) ~ "', "
            ~ (mwh_min_ts() if starts[key] is none else mwh_test_ts_literal(starts[key])) ~ ")") -%}
    {%- endfor -%}
    {%- do return("(values " ~ rows | join(", ") ~ ")") -%}
{%- endmacro %}


{#- The earliest start of mwh_test_series_starts as a literal (the constant ts bound), or none. -#}
{% macro mwh_test_min_start(starts) -%}
    {%- set found = [] -%}
    {%- for key in starts -%}
        {%- if starts[key] is none -%}
            {%- do return(none) -%}
        {%- endif -%}
        {%- do found.append(starts[key]) -%}
    {%- endfor -%}
    {%- do return(mwh_test_ts_literal(found | min) if found else none) -%}
{%- endmacro %}


{#- The scoped relation of get_where_subquery from the changed series' constants (a subquery with an
    alias): the rows of the changed series from `mwh_test_scope_days` before their first changed bar. -#}
{% macro mwh_test_scope_constant(relation, series) -%}
    {%- set starts = mwh_test_series_starts(series, var('mwh_test_scope_days', 35) | int) -%}
    {%- set values = mwh_test_starts_values(starts) -%}
    {%- if values is none -%}
        {%- do return("(select scoped_rows.* from " ~ relation ~ " as scoped_rows where 1 = 0) as mwh_test_scope") -%}
    {%- endif -%}
    {%- set bound = mwh_test_min_start(starts) -%}
    {%- set scoped -%}
    (
        select scoped_rows.*
        from {{ relation }} as scoped_rows
        inner join {{ values }} as changed_series (symbol, exchange, start_ts)
            on
                scoped_rows.symbol = changed_series.symbol
                and scoped_rows.exchange = changed_series.exchange
                and scoped_rows.ts >= changed_series.start_ts
        {% if bound is not none -%}
        where scoped_rows.ts >= {{ bound }}
        {%- endif %}
    ) as mwh_test_scope
    {%- endset -%}
    {%- do return(scoped) -%}
{%- endmacro %}


{#- The bounded window of the completeness and rollup tests on an incremental build (a select of
    symbol, exchange, bar_interval, start_ts): the series with bars loaded since the build before (of
    `source_interval` when given), from `mwh_test_lookback_days` (UTC midnight) before their first such
    bar. Corporate actions do not change bars: they are left out here. Without build marks (a first
    build) every series from its first bar; with more changed series than mwh_test_scope_max_series,
    mwh_test_window (the last mwh_test_window_hours of loads). -#}
{% macro mwh_test_changed_window(bar_interval, source_interval=none) -%}
    {%- set series = mwh_test_changed_series() if execute else none -%}
    {%- if series is none -%}
        {{- return(mwh_test_window(bar_interval, source_interval)) -}}
    {%- endif -%}
    {%- set starts = mwh_test_series_starts(series | selectattr('from_ts') | list,
        var('mwh_test_lookback_days', 7) | int, source_interval, midnight=true) -%}
    {%- set values = mwh_test_starts_values(starts) -%}
    {%- if values is none -%}
    select
        cast(null as {{ mwh_varchar() }}) as symbol,
        cast(null as {{ mwh_varchar() }}) as exchange,
        cast(null as {{ mwh_varchar() }}) as bar_interval,
        {{ mwh_min_ts() }} as start_ts
    where 1 = 0
    {%- else %}
    select
        changed_series.symbol,
        changed_series.exchange,
        cast('{{ bar_interval }}' as {{ mwh_varchar() }}) as bar_interval,
        changed_series.start_ts
    from {{ values }} as changed_series (symbol, exchange, start_ts)
    {%- endif -%}
{%- endmacro %}


{#- The keys (`columns`) of a table of return series (series_type, series_name, exchange, session_date:
    int_risk__daily_returns_unioned) that an incremental build may have written: the rows of each
    symbol's series changed since the build before (mwh_test_changed_series) from `mwh_test_scope_days`
    before its first new bar, and of every portfolio from the earliest of those. A select of `columns`,
    or none when every key is to be checked (no build marks, a full refresh, `mwh_full_tests`, too many
    changed series). -#}
{% macro mwh_test_changed_return_keys(model, columns) -%}
    {%- if mwh_test_scope_marks() is none -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set series = mwh_test_changed_series() -%}
    {%- if series is none -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set starts = mwh_test_series_starts(series, var('mwh_test_scope_days', 35) | int) -%}
    {%- set values = mwh_test_starts_values(starts) -%}
    {%- set keys = 'changed_rows.' ~ columns | join(', changed_rows.') -%}
    {%- if values is none -%}
        {%- do return('select ' ~ keys ~ ' from ' ~ model ~ ' as changed_rows where 1 = 0') -%}
    {%- endif -%}
    {%- set bound = mwh_test_min_start(starts) -%}
    {%- set sql -%}
select {{ keys }}
from {{ model }} as changed_rows
inner join {{ values }} as changed_series (symbol, exchange, start_ts)
    on
        changed_rows.series_type = 'symbol'
        and changed_rows.series_name = changed_series.symbol
        and changed_rows.exchange = changed_series.exchange
        and changed_rows.session_date >= {{ mwh_utc_date('changed_series.start_ts') }}
union all
select {{ keys }}
from {{ model }} as changed_rows
where
    changed_rows.series_type = 'portfolio'
    {%- if bound is not none %}
    and changed_rows.session_date >= {{ mwh_utc_date(bound) }}
    {%- endif %}
    {%- endset -%}
    {%- do return(sql) -%}
{%- endmacro %}
