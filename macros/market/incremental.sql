{#
    Which bars a run of an incremental per-symbol model writes, found without numbering any symbol's
    whole history. Emits CTEs prefixed `rewrite_`, the last one `rewrite_from`, one row per (symbol,
    exchange) of `bars_relation` (a relation with symbol, exchange and ts, one row per bar; pass the
    relation itself, not a CTE over it: PostgreSQL probes its (symbol, ts desc) index per symbol):

      output_from_ts   the run writes the symbol's bars with ts >= this (mwh_min_ts(): all of them)
      scope_from_ts    with read_lookback_bars: the first bar the run must read, read_lookback_bars bars
                       before the first written one (mwh_min_ts(): from the first bar)
      output_from_index with read_lookback_bars: the 0-based index of the first bar written within the
                       symbol's whole series (its bars before output_from_ts; 0 on a full refresh, which
                       reads from the first bar). mwh_bars_read numbers the bars read from it (ewm.sql's
                       blocks need each bar's index over all its bars); features.sql reads its shorter
                       windows from fewer bars back
      actions_loaded_at the symbol's current newest action load time (null without actions_aware)

    Full refresh: every bar. Incremental, per symbol:
      - not in {{ this }} yet, or its corporate actions changed since the last run (actions_aware: their
        newest loaded_at differs from the `actions_loaded_at` stored in {{ this }}), or none of its bars
        is in the late window: all its bars;
      - otherwise its bars from `late_window_days` before its newest bar in {{ this }}, minus
        `rewrite_lookback_bars` more (labels look 20 bars ahead: a new bar completes 20 earlier labels).
    across_symbols: every symbol from the earliest session any symbol writes (for features that depend
    on the whole cross-section of a session: ranks, benchmark returns).
    read_across_symbols (implies across_symbols; with read_lookback_bars): every symbol also reads from the
    earliest bar any symbol reads (for features that look back over a value of the whole cross-section,
    such as a beta against the equal-weight benchmark: a symbol whose read-back reaches across a hole
    needs the other symbols' bars of those sessions, which their own read-back would not include).

    The bars n before a point come from an aggregate per symbol (mwh_nth_ts_before: a top-n list on
    DuckDB, an index probe on PostgreSQL), not from a row_number() over every bar: the rows and indexes
    are those a numbering of the whole history gives. `rewrite_from` is a materialized CTE: PostgreSQL
    then reads each symbol's bars from its output_from_ts by the (symbol, ts desc) index (inlined, it
    read every bar of each symbol and filtered: 25 s of fct_labels_daily's 41 s at 5M bars). The newest
    bar of each series, in {{ this }} and in `bars_relation`, comes from mwh_series_newest (index probes
    on PostgreSQL; `bars_indexed` false: `bars_relation` has no (symbol, ts desc) index, so aggregate).
#}
{% macro mwh_bars_to_rewrite(bars_relation, late_window_days, rewrite_lookback_bars=0, read_lookback_bars=0,
    actions_aware=true, across_symbols=false, bars_indexed=true, read_across_symbols=false) -%}
{%- set min_ts = mwh_min_ts() -%}
{%- set across_symbols = across_symbols or read_across_symbols -%}
{#- mwh_series_newest's series list on PostgreSQL, referenced at parse time too (dbt records a model's
    refs while parsing, when the incremental branch below is not rendered). Only there: on DuckDB a direct
    edge from staging would make a load of other intervals run these models (build_state.py follows
    intervals through staging on DuckDB only). -#}
{%- if target.type == 'postgres' -%}
    {%- set series_source = ref('stg_market__bars') -%}
{%- endif -%}

rewrite_actions as (

    {% if actions_aware -%}
    select
        symbol,
        exchange,
        max(loaded_at) as actions_loaded_at
    from {{ ref('stg_market__corporate_actions') }}
    group by symbol, exchange
    {%- else -%}
    select
        cast(null as {{ mwh_varchar() }}) as symbol,
        cast(null as {{ mwh_varchar() }}) as exchange,
        cast(null as {{ mwh_timestamptz() }}) as actions_loaded_at
    where 1 = 0
    {%- endif %}

),

{% if is_incremental() %}

{#- the model's own newest bar per series, and the action load time its rows carry (one value per series:
    a run writes a symbol's rows with its current actions_loaded_at, and all of them when that changed) #}
rewrite_built as (

    select
        symbol,
        exchange,
        last_ts as max_ts,
        {{ 'actions_loaded_at' if actions_aware else 'cast(null as ' ~ mwh_timestamptz() ~ ')' }} as actions_loaded_at
    from ({{ mwh_series_newest(this, ['actions_loaded_at'] if actions_aware else []) | indent(8) }}) as built_series

),

rewrite_series as (

    {{ mwh_series_newest(bars_relation, indexed=bars_indexed) | indent(4) }}

),

{# the first point each symbol's rewrite starts from, before the look-back #}
rewrite_late_start as (

    select
        rewrite_series.symbol,
        rewrite_series.exchange,
        rewrite_actions.actions_loaded_at,
        case
            when rewrite_built.max_ts is null then {{ min_ts }}
            {%- if actions_aware %}
            when not (
                rewrite_built.actions_loaded_at = rewrite_actions.actions_loaded_at
                or (rewrite_built.actions_loaded_at is null and rewrite_actions.actions_loaded_at is null)
            ) then {{ min_ts }}
            {%- endif %}
            {#- no bar left in the late window (its bars were removed): all of them, as before #}
            when rewrite_series.last_ts < rewrite_built.max_ts - interval '{{ late_window_days }} days' then {{ min_ts }}
            else rewrite_built.max_ts - interval '{{ late_window_days }} days'
        end as late_start_ts
    from rewrite_series
    left join rewrite_built
        on
            rewrite_series.symbol = rewrite_built.symbol
            and rewrite_series.exchange = rewrite_built.exchange
    left join rewrite_actions
        on
            rewrite_series.symbol = rewrite_actions.symbol
            and rewrite_series.exchange = rewrite_actions.exchange

),

{% if rewrite_lookback_bars > 0 %}

rewrite_back as (

    {{ mwh_nth_ts_before(bars_relation, 'rewrite_late_start', 'late_start_ts', rewrite_lookback_bars, false) | indent(4) }}

),

rewrite_per_symbol as (

    select
        rewrite_late_start.symbol,
        rewrite_late_start.exchange,
        rewrite_late_start.actions_loaded_at,
        coalesce(rewrite_back.nth_ts, {{ min_ts }}) as output_from_ts
    from rewrite_late_start
    inner join rewrite_back
        on
            rewrite_late_start.symbol = rewrite_back.symbol
            and rewrite_late_start.exchange = rewrite_back.exchange

),

{% else %}

rewrite_per_symbol as (

    select
        symbol,
        exchange,
        actions_loaded_at,
        late_start_ts as output_from_ts
    from rewrite_late_start

),

{% endif %}

{% if across_symbols %}

{# the earliest bar any symbol writes #}
rewrite_first_ts as (

    {{ mwh_first_ts_from(bars_relation, 'rewrite_per_symbol', 'output_from_ts') | indent(4) }}

),

rewrite_output as (

    select
        rewrite_per_symbol.symbol,
        rewrite_per_symbol.exchange,
        rewrite_per_symbol.actions_loaded_at,
        rewrite_first_ts.first_ts as output_from_ts
    from rewrite_per_symbol
    cross join rewrite_first_ts

),

{% else %}

rewrite_output as (

    select * from rewrite_per_symbol

),

{% endif %}

{% if read_lookback_bars > 0 %}

rewrite_read_back as (

    {{ mwh_nth_ts_before(bars_relation, 'rewrite_output', 'output_from_ts', read_lookback_bars) | indent(4) }}

),

{% if read_across_symbols %}

{#- the earliest bar any symbol reads (a symbol with fewer bars than the read-back reads from its first) #}
rewrite_shared_scope as (

    select
        min(case
            when rewrite_read_back.bars_before >= {{ read_lookback_bars }} then rewrite_read_back.nth_ts
            else rewrite_read_back.first_ts
        end) as scope_from_ts
    from rewrite_read_back

),

{%- set scope_from_ts = 'coalesce(rewrite_shared_scope.scope_from_ts, ' ~ min_ts ~ ')' -%}

{% else %}
{%- set scope_from_ts -%}
case
            when rewrite_read_back.bars_before >= {{ read_lookback_bars }} then rewrite_read_back.nth_ts
            else {{ min_ts }}
        end
{%- endset -%}
{% endif %}

rewrite_from as {{ mwh_materialized_cte() }} (

    select
        rewrite_output.symbol,
        rewrite_output.exchange,
        rewrite_output.actions_loaded_at,
        rewrite_output.output_from_ts,
        {{ scope_from_ts }} as scope_from_ts,
        rewrite_read_back.bars_before as output_from_index
    from rewrite_output
    inner join rewrite_read_back
        on
            rewrite_output.symbol = rewrite_read_back.symbol
            and rewrite_output.exchange = rewrite_read_back.exchange
    {%- if read_across_symbols %}
    cross join rewrite_shared_scope
    {%- endif %}

)

{% else %}

rewrite_from as {{ mwh_materialized_cte() }} (

    select
        *,
        output_from_ts as scope_from_ts
    from rewrite_output

)

{% endif %}

{% else %}

rewrite_from as {{ mwh_materialized_cte() }} (

    select
        rewrite_series.symbol,
        rewrite_series.exchange,
        rewrite_actions.actions_loaded_at,
        {{ min_ts }} as output_from_ts,
        {{ min_ts }} as scope_from_ts
        {%- if read_lookback_bars > 0 %},
        0 as output_from_index
        {%- endif %}
    from (select distinct symbol, exchange from {{ bars_relation }}) as rewrite_series
    left join rewrite_actions
        on
            rewrite_series.symbol = rewrite_actions.symbol
            and rewrite_series.exchange = rewrite_actions.exchange

)

{% endif %}
{%- endmacro %}


{#
    The newest bar of every series (symbol, exchange; with `by_interval`, of a relation with bar_interval
    such as staging itself: symbol, exchange, bar_interval) of `relation` (a select: the key, last_ts,
    and each of `columns` there; elsewhere than PostgreSQL their max over the series: callers pass columns
    that hold one value per series). On PostgreSQL/TimescaleDB, when `indexed` (the relation has the
    (symbol, ts desc) index every per-symbol market table has): the series of stg_market__bars (every
    series of a relation built from bars is one of them) by a loose scan of staging's unique
    (symbol, exchange, bar_interval, ts) index (one probe per series: a recursive step to the next
    (symbol, exchange)), then one probe of the relation's index for each one's newest row
    (mwh_latest_rows); a series the relation does not hold has none and is left out. The cost follows the number of series, never the
    history: a max(ts) per series read every bar, 1.0-1.8 s a relation at 5M bars, two or three
    relations in each incremental feature, label and state model. No new index: one on (symbol,
    exchange, ts) turned fct_bars_1d's join of the bars in scope into a nested loop of 5M probes (57 s
    instead of 3.8). Other engines, and a relation without that index, aggregate.
#}
{% macro mwh_series_newest(relation, columns=[], indexed=true, by_interval=false) -%}
    {{ return(adapter.dispatch('mwh_series_newest', 'market_warehouse')(relation, columns, indexed, by_interval)) }}
{%- endmacro %}

{% macro default__mwh_series_newest(relation, columns, indexed, by_interval) -%}
{%- set key = ['symbol', 'exchange'] + (['bar_interval'] if by_interval else []) -%}
select
    {{ key | join(',\n    ') }},
    max(ts) as last_ts
    {%- for column in columns %},
    max({{ column }}) as {{ column }}
    {%- endfor %}
from {{ relation }}
group by {{ key | join(', ') }}
{%- endmacro %}

{% macro postgres__mwh_series_newest(relation, columns, indexed, by_interval) -%}
{%- if not indexed -%}
{{ return(default__mwh_series_newest(relation, columns, indexed, by_interval)) }}
{%- endif -%}
{%- set staged = ref('stg_market__bars') -%}
{%- set key = ['symbol', 'exchange'] + (['bar_interval'] if by_interval else []) -%}
{#- the series: a loose scan of staging's unique index, one probe to the next key each -#}
{%- set series_walk -%}
(
    with recursive series_walk as (
        (
            select {{ 'first_row.' ~ key | join(', first_row.') }}
            from {{ staged }} as first_row
            order by {{ 'first_row.' ~ key | join(', first_row.') }}
            limit 1
        )
        union all
        select {{ 'next_series.' ~ key | join(', next_series.') }}
        from series_walk
        cross join lateral (
            select {{ 'next_row.' ~ key | join(', next_row.') }}
            from {{ staged }} as next_row
            where ({{ 'next_row.' ~ key | join(', next_row.') }}) > ({{ 'series_walk.' ~ key | join(', series_walk.') }})
            order by {{ 'next_row.' ~ key | join(', next_row.') }}
            limit 1
        ) as next_series
    )

    select * from series_walk
)
{%- endset -%}
select
    {{ 'newest.' ~ key | join(',\n    newest.') }},
    newest.ts as last_ts
    {%- for column in columns %},
    newest.{{ column }}
    {%- endfor %}
from ({{ mwh_latest_rows(relation, series_walk, key) | indent(4) }}) as newest
{%- endmacro %}


{#- A bar (alias `bars`) of a threshold's series (alias `thresholds`: symbol, exchange and
    `threshold_column`) on the side `op` ('<' before, '>=' from) of its threshold: the predicate of
    mwh_first_ts_from and mwh_nth_ts_before, as a join condition or, on PostgreSQL, an index probe's. -#}
{% macro mwh_threshold_series_bar(bars, op, threshold_column) -%}
{{ bars }}.symbol = thresholds.symbol
and {{ bars }}.exchange = thresholds.exchange
and {{ bars }}.ts {{ op }} thresholds.{{ threshold_column }}
{%- endmacro %}

{#- PostgreSQL: one bar of a threshold's series (a parenthesized select of its ts, for a lateral join): on
    the side `op` of the threshold, the (skip + 1)-th in `direction` order of ts, by the relation's
    (symbol, ts desc) index. -#}
{% macro mwh_threshold_series_probe(bars_relation, op, threshold_column, direction, skip=0) -%}
(
    select probed_bars.ts
    from {{ bars_relation }} as probed_bars
    where
        {{ mwh_threshold_series_bar('probed_bars', op, threshold_column) | indent(8) }}
    order by probed_bars.ts {{ direction }}
    {%- if skip > 0 %}
    offset {{ skip }}
    {%- endif %}
    limit 1
)
{%- endmacro %}


{#
    The earliest bar of `bars_relation` at or after each (symbol, exchange)'s `threshold_column` in
    `thresholds_cte`, over all of them: a select of one row, `first_ts`. PostgreSQL probes the
    (symbol, ts desc) index once per symbol (a join of every bar with its threshold read all 5M bars: 6.4 s
    of features v2's incremental select at 5M); other engines join.
#}
{% macro mwh_first_ts_from(bars_relation, thresholds_cte, threshold_column) -%}
    {{ return(adapter.dispatch('mwh_first_ts_from', 'market_warehouse')(bars_relation, thresholds_cte, threshold_column)) }}
{%- endmacro %}

{% macro default__mwh_first_ts_from(bars_relation, thresholds_cte, threshold_column) -%}
select min(rewrite_bars.ts) as first_ts
from {{ bars_relation }} as rewrite_bars
inner join {{ thresholds_cte }} as thresholds
    on
        {{ mwh_threshold_series_bar('rewrite_bars', '>=', threshold_column) | indent(8) }}
{%- endmacro %}

{% macro postgres__mwh_first_ts_from(bars_relation, thresholds_cte, threshold_column) -%}
select min(first_bar.ts) as first_ts
from {{ thresholds_cte }} as thresholds
cross join lateral {{ mwh_threshold_series_probe(bars_relation, '>=', threshold_column, 'asc') }} as first_bar
{%- endmacro %}


{#
    Per (symbol, exchange) of `thresholds_cte` (with symbol, exchange and `threshold_column`): the ts of
    the n-th bar of `bars_relation` counting back from the threshold (`nth_ts`; null when there are
    fewer than n), and with `count_before` how many bars lie before the threshold (`bars_before`) and the
    first of them (`first_ts`, null when none). A select; no window over the whole history:
    - DuckDB: each series' count, first and last bar in one aggregate (no join); then a top-n aggregate
      over the bars of the 1.5 n mean bar spacings before each threshold (the series' span over its
      count; a filter on the scan from the earliest such point: about 8,000 of 5M bars at 5M daily bars),
      and over the series' whole history only where fewer than n are there and the span does not reach
      its first bar (a hole before the threshold). The count is the series' bars less those from the
      threshold on. A top-n aggregate over every bar before the thresholds, joined, took 0.17 s of one
      core at 5M bars, in each of four incremental models;
    - PostgreSQL: an index probe per symbol on the relation's (symbol, ts desc) index; the count is the
      series' bars, counted in one pass, less those from the threshold on, counted by index;
    - other engines number the bars before the threshold.
#}
{% macro mwh_nth_ts_before(bars_relation, thresholds_cte, threshold_column, n, count_before=true) -%}
    {{ return(adapter.dispatch('mwh_nth_ts_before', 'market_warehouse')(bars_relation, thresholds_cte, threshold_column, n, count_before)) }}
{%- endmacro %}

{% macro duckdb__mwh_nth_ts_before(bars_relation, thresholds_cte, threshold_column, n, count_before) -%}
with

series_stats as (
    select
        bars.symbol,
        bars.exchange,
        count(*) as series_bars,
        min(bars.ts) as first_ts,
        max(bars.ts) as last_ts
    from {{ bars_relation }} as bars
    group by bars.symbol, bars.exchange
),

bounds as (
    select
        thresholds.symbol,
        thresholds.exchange,
        thresholds.{{ threshold_column }} as threshold_ts,
        series_stats.series_bars,
        series_stats.first_ts,
        case
            when thresholds.{{ threshold_column }} > series_stats.first_ts
                then thresholds.{{ threshold_column }} - to_microseconds(cast(
                    (epoch_us(series_stats.last_ts) - epoch_us(series_stats.first_ts))
                    * {{ 1.5 * n }} / series_stats.series_bars as bigint
                ))
        end as lower_ts
    from {{ thresholds_cte }} as thresholds
    left join series_stats
        on thresholds.symbol = series_stats.symbol and thresholds.exchange = series_stats.exchange
),

nearby as (
    select
        thresholds.symbol,
        thresholds.exchange,
        count(*) filter (where bars.ts >= thresholds.threshold_ts) as bars_from,
        count(*) filter (where bars.ts < thresholds.threshold_ts) as nearby_before,
        list_min(max(bars.ts, {{ n }}) filter (where bars.ts < thresholds.threshold_ts)) as nth_ts
    from bounds as thresholds
    inner join {{ bars_relation }} as bars
        on
            {{ mwh_threshold_series_bar('bars', '>=', 'lower_ts') | indent(12) }}
    where bars.ts >= (select min(lowest.lower_ts) from bounds as lowest)
    group by thresholds.symbol, thresholds.exchange
),

{#- the series short of n bars there whose span does not reach the first bar, chosen before the join (as a
    filter after it, DuckDB joined every bar first) -#}
far as (
    select
        thresholds.symbol,
        thresholds.exchange,
        list_min(max(bars.ts, {{ n }})) as nth_ts
    from (
        select bounds.*
        from bounds
        left join nearby on bounds.symbol = nearby.symbol and bounds.exchange = nearby.exchange
        where bounds.lower_ts > bounds.first_ts and coalesce(nearby.nearby_before, 0) < {{ n }}
    ) as thresholds
    inner join {{ bars_relation }} as bars
        on
            {{ mwh_threshold_series_bar('bars', '<', 'threshold_ts') | indent(12) }}
    group by thresholds.symbol, thresholds.exchange
)

select
    bounds.symbol,
    bounds.exchange,
    {%- if count_before %}
    case when bounds.lower_ts is null then 0 else bounds.series_bars - coalesce(nearby.bars_from, 0) end as bars_before,
    case when bounds.lower_ts is not null then bounds.first_ts end as first_ts,
    {%- endif %}
    case
        when nearby.nearby_before >= {{ n }} then nearby.nth_ts
        else far.nth_ts
    end as nth_ts
from bounds
left join nearby on bounds.symbol = nearby.symbol and bounds.exchange = nearby.exchange
left join far on bounds.symbol = far.symbol and bounds.exchange = far.exchange
{%- endmacro %}

{% macro postgres__mwh_nth_ts_before(bars_relation, thresholds_cte, threshold_column, n, count_before) -%}
select
    thresholds.symbol,
    thresholds.exchange,
    {%- if count_before %}
    series_bars.bar_count - from_threshold.bar_count as bars_before,
    first_bar.ts as first_ts,
    {%- endif %}
    nth.ts as nth_ts
from {{ thresholds_cte }} as thresholds
{%- if count_before %}
{#- one pass over the bars, not a join of every bar with its threshold (that sorted whole histories) #}
inner join (
    select
        symbol,
        exchange,
        count(*) as bar_count
    from {{ bars_relation }}
    group by symbol, exchange
) as series_bars
    on
        thresholds.symbol = series_bars.symbol
        and thresholds.exchange = series_bars.exchange
cross join lateral (
    select count(*) as bar_count
    from {{ bars_relation }} as recent_bars
    where
        {{ mwh_threshold_series_bar('recent_bars', '>=', threshold_column) | indent(8) }}
) as from_threshold
left join lateral {{ mwh_threshold_series_probe(bars_relation, '<', threshold_column, 'asc') }} as first_bar on true
{%- endif %}
left join lateral {{ mwh_threshold_series_probe(bars_relation, '<', threshold_column, 'desc', n - 1) }} as nth on true
{%- endmacro %}

{% macro default__mwh_nth_ts_before(bars_relation, thresholds_cte, threshold_column, n, count_before) -%}
select
    symbol,
    exchange,
    {%- if count_before %}
    count(ts) as bars_before,
    min(ts) as first_ts,
    {%- endif %}
    max(case when back_rank = {{ n }} then ts end) as nth_ts
from (
    select
        thresholds.symbol,
        thresholds.exchange,
        before_bars.ts,
        row_number() over (partition by thresholds.symbol, thresholds.exchange order by before_bars.ts desc) as back_rank
    from {{ thresholds_cte }} as thresholds
    left join {{ bars_relation }} as before_bars
        on
            {{ mwh_threshold_series_bar('before_bars', '<', threshold_column) | indent(12) }}
) as ranked
group by symbol, exchange
{%- endmacro %}


{#
    The high-water-mark predicate of incremental market models: true for a row (with loaded_at, run_id
    and load_source) loaded after `mark` (an SQL expression, a load mark: mwh_load_mark), or written by a
    load entry (a raw.loader_runs row: one source of one run, committed in the same transaction as its
    rows) that finished after it: a load that started before the mark but committed after it still
    counts. What changed since the last build, by load entry, rather than a wall-clock window.

    `standalone_mark`: `mark` is a scalar query of its own (mwh_kept_mark), not a column of the caller's
    CTE. On PostgreSQL it is then read when the model compiles, and written as a literal with the run ids
    of the load entries finished after it: the planner estimates the rows loaded after a literal from the
    column's statistics and reads them by the loaded_at and (run_id, load_source) indexes (a bitmap OR).
    With the mark a subquery it assumed a third of the table and read all of it, in three parallel
    processes: 1.8 s of int_market__bars_unioned_1d's pre-hook at 5M bars, for no row. The same rows.
    When no load entry finished after the mark (the usual case), the predicate is the loaded_at range
    alone, which raw.bars' BRIN index on loaded_at serves (staging read all 10M 1-minute bars of raw.bars
    for 178,560 new ones, 31.7 s, before).
#}
{% macro mwh_loaded_since(mark, loaded_at='loaded_at', run_id='run_id', load_source='load_source', standalone_mark=false) -%}
    {%- set runs_after = none -%}
    {%- if standalone_mark and target.type == 'postgres' and execute -%}
        {%- set known = run_query("select cast(mark.value as text), (select string_agg(distinct quote_literal(load_entry.run_id), ', ')"
            ~ " from " ~ source('market', 'loader_runs') ~ " as load_entry where load_entry.finished_at > mark.value)"
            ~ " from (select " ~ mark ~ " as value) as mark").rows[0] -%}
        {%- set mark = "cast('" ~ known[0] ~ "' as " ~ mwh_timestamptz() ~ ")" -%}
        {%- set runs_after = known[1] or 'null' -%}
    {%- endif -%}
    {%- if runs_after == 'null' -%}
    {#- no load entry finished after the mark: the rows loaded after it, one range (an index or BRIN scan) -#}
    ({{ loaded_at }} > {{ mark }})
    {%- else -%}
    ({{ loaded_at }} > {{ mark }}
        or (
            {%- if runs_after is not none %}{{ run_id }} in ({{ runs_after }}) and {% endif -%}
            ({{ run_id }}, {{ load_source }}) in (
                select load_entry.run_id, load_entry.source
                from {{ source('market', 'loader_runs') }} as load_entry
                where load_entry.finished_at > {{ mark }}
            )))
    {%- endif -%}
{%- endmacro %}


{#
    The load mark of `staged` (a relation with loaded_at, run_id and load_source, by default
    stg_market__bars), an SQL scalar on the loaders' clock: how far a table that has read it has seen
    the loads. The newest loaded_at it holds, moved on to the finish of every load entry
    (raw.loader_runs) that finished after that and whose rows it holds. A load entry always finishes
    after its rows' loaded_at: without the second step, mwh_loaded_since would count the newest entry (a
    whole backfill) as changed again in every later build. Null when `staged` is empty.
#}
{% macro mwh_load_mark(staged=none) -%}
    {%- set staged = staged if staged is not none else ref('stg_market__bars') -%}
    (
        select greatest(newest.loaded_at, coalesce((
            select cast(max(load_entry.finished_at) as {{ mwh_timestamptz() }})
            from {{ source('market', 'loader_runs') }} as load_entry
            where
                load_entry.finished_at > newest.loaded_at
                and exists (
                    select 1
                    from {{ staged }} as staged_row
                    where
                        staged_row.run_id = load_entry.run_id
                        and staged_row.load_source = load_entry.source
                )
        ), newest.loaded_at))
        from (select max(held.loaded_at) as loaded_at from {{ staged }} as held) as newest
    )
{%- endmacro %}


{#
    The one-row table keeping an incremental model's load mark (mwh_load_mark of staging once the model
    has read it): for models whose rows cannot carry it (fct_bars_1m, fct_volume_profile), and beside the
    rows' checked_through_loaded_at (mwh_mark_checked_through), so that an empty table (no gaps, no
    adjustment events in a 1-minute-only warehouse) keeps its mark instead of rereading all history. It
    sits in the intermediate schema, beside int_market__build_marks, out of the analysts' sight. Dropping
    it is safe: the next run takes the mark from the model's rows (mwh_kept_mark's `fallback`), or reads
    everything.
#}
{% macro mwh_mark_table() -%}
    {%- set node = (graph.get('nodes') or {}).get('model.market_warehouse.int_market__build_marks') -%}
    {%- do return(api.Relation.create(database=this.database, schema=node.schema if node else this.schema,
        identifier=this.identifier ~ '__checked_through', type='table')) -%}
{%- endmacro %}


{#- The model's load mark (an SQL scalar), the one every incremental market model reads: its mark
    table's, which mwh_keep_mark writes after every build, so it is the newest the model has seen (one
    row, not a scan of every row's mark); for a table built before mark tables existed, `fallback` (an
    SQL scalar over the model's rows); the earliest time when neither holds one (everything is read). -#}
{% macro mwh_kept_mark(fallback) -%}
    {%- set marks = mwh_mark_table() -%}
    {%- if load_relation(marks) is not none -%}
    (select coalesce(max(kept_mark.checked_through_loaded_at), {{ mwh_min_ts() }}) from {{ marks }} as kept_mark)
    {%- else -%}
    coalesce({{ fallback }}, {{ mwh_min_ts() }})
    {%- endif -%}
{%- endmacro %}


{#- Post-hook of a model with a mark table (every build, full or incremental): keep the load mark of
    staging, which the model has just read (or `value`, an SQL scalar). -#}
{% macro mwh_keep_mark(value=none) -%}
    {#- Spark rebuilds these models whole every run (mwh_incremental_materialization): no mark to keep. -#}
    {%- if mwh_incremental_materialization() != 'incremental' -%}
    select 1
    {%- else -%}
    {%- set marks = mwh_mark_table() -%}
    create schema if not exists {{ marks.include(database=false, identifier=false) }};
    create table if not exists {{ marks }} (checked_through_loaded_at {{ mwh_timestamptz() }});
    delete from {{ marks }};
    insert into {{ marks }} (checked_through_loaded_at)
    select {{ value if value is not none else mwh_load_mark() }}
    {%- endif -%}
{%- endmacro %}


{#
    fct_bar_gaps' incremental window (a select): per series (symbol, exchange, bar_interval) with rows
    in stg_market__bars changed since the mart's load mark (`mark`, an SQL scalar: mwh_kept_mark), the bar
    before its earliest changed bar (start_ts): gaps are recomputed from there on, earlier ones kept.
    PostgreSQL finds that bar by one index probe a series. DuckDB has no such index, and a join of every
    staged bar with its series' threshold aggregated 5M rows at 5M bars (0.18 s of one core): there, the
    previous bar is looked for among the bars of the 31 days before (those from 31 days before the earliest
    change, a filter on the scan), and only a series with none there is searched over its whole history.
#}
{% macro mwh_bar_gaps_window(mark) -%}
    {{ return(adapter.dispatch('mwh_bar_gaps_window', 'market_warehouse')(mark)) }}
{%- endmacro %}

{% macro mwh_bar_gaps_changed(mark) -%}
select
    bars.symbol,
    bars.exchange,
    bars.bar_interval,
    min(bars.ts) as first_changed_ts
from {{ ref('stg_market__bars') }} as bars
where
    bars.bar_interval in ('{{ var("gap_check_intervals") | join("', '") }}')
    and {{ mwh_loaded_since(mark, 'bars.loaded_at', 'bars.run_id', 'bars.load_source', standalone_mark=true) }}
group by bars.symbol, bars.exchange, bars.bar_interval
{%- endmacro %}

{% macro duckdb__mwh_bar_gaps_window(mark) -%}
{%- set same_series = mwh_same_bar_series('prior', 'changed') -%}
{#- the bar before each change: among the 31 days before it (scan-filtered from the earliest change), then
    over the whole series for the series with none there -#}
{%- set searches = [
    ('nearby', "and prior.ts >= changed.first_changed_ts - interval '31 days'",
        "where prior.ts >= (select min(earliest.first_changed_ts) from changed as earliest) - interval '31 days'"),
    ('far', '',
        "where not exists (select 1 from nearby where " ~ mwh_same_bar_series('nearby', 'changed') ~ ")"),
] -%}
    with

    changed as (
        {{ mwh_bar_gaps_changed(mark) | indent(8) }}
    ),
    {%- for name, bound, filter in searches %}

    {{ name }} as (
        select
            changed.symbol,
            changed.exchange,
            changed.bar_interval,
            max(prior.ts) as prior_ts
        from changed
        inner join {{ ref('stg_market__bars') }} as prior
            on
                {{ same_series }}
                and prior.ts < changed.first_changed_ts
                {{ bound }}
        {{ filter }}
        group by changed.symbol, changed.exchange, changed.bar_interval
    ){{ "," if not loop.last }}
    {%- endfor %}

    select
        changed.symbol,
        changed.exchange,
        changed.bar_interval,
        coalesce(nearby.prior_ts, far.prior_ts, changed.first_changed_ts) as start_ts
    from changed
    left join nearby on {{ mwh_same_bar_series('nearby', 'changed') }}
    left join far on {{ mwh_same_bar_series('far', 'changed') }}
{%- endmacro %}

{#- The same bar series (symbol, exchange, bar_interval) in two relations. -#}
{% macro mwh_same_bar_series(left, right) -%}
{{ left }}.symbol = {{ right }}.symbol and {{ left }}.exchange = {{ right }}.exchange and {{ left }}.bar_interval = {{ right }}.bar_interval
{%- endmacro %}

{% macro default__mwh_bar_gaps_window(mark) -%}
    select
        changed.symbol,
        changed.exchange,
        changed.bar_interval,
        coalesce((
            select max(prior.ts)
            from {{ ref('stg_market__bars') }} as prior
            where
                prior.symbol = changed.symbol
                and prior.exchange = changed.exchange
                and prior.bar_interval = changed.bar_interval
                and prior.ts < changed.first_changed_ts
        ), changed.first_changed_ts) as start_ts
    from (
        {{ mwh_bar_gaps_changed(mark) | indent(8) }}
    ) as changed
{%- endmacro %}



{#
    The newest row (by ts) of every series of `relation` (a select of its columns), for the small
    latest-row marts and mwh_series_newest. A series is a distinct `key` (default symbol, exchange).
    PostgreSQL/TimescaleDB: one index probe per series of `series_relation` (a relation or a
    parenthesized select with the key's columns) on the relation's (symbol, ts desc) index, so the cost
    follows the number of series, never the history. DuckDB: the newest ts per series by one hash
    aggregate over the ts column, then its row.
#}
{% macro mwh_latest_rows(relation, series_relation, key=['symbol', 'exchange']) -%}
    {{ return(adapter.dispatch('mwh_latest_rows', 'market_warehouse')(relation, series_relation, key)) }}
{%- endmacro %}

{% macro postgres__mwh_latest_rows(relation, series_relation, key) -%}
    select latest.*
    from (select distinct {{ 'series_all.' ~ key | join(', series_all.') }} from {{ series_relation }} as series_all) as series
    cross join lateral (
        select newest_row.*
        from {{ relation }} as newest_row
        where
            {%- for column in key %}
            {{ "and " if not loop.first }}newest_row.{{ column }} = series.{{ column }}
            {%- endfor %}
        order by newest_row.ts desc
        limit 1
    ) as latest
{%- endmacro %}

{% macro default__mwh_latest_rows(relation, series_relation, key) -%}
    select all_rows.*
    from {{ relation }} as all_rows
    inner join (
        select
            {{ key | join(',\n            ') }},
            max(ts) as ts
        from {{ relation }}
        group by {{ key | join(', ') }}
    ) as newest
        on
            {%- for column in key %}
            {{ "and " if not loop.first }}all_rows.{{ column }} = newest.{{ column }}
            {%- endfor %}
            and all_rows.ts = newest.ts
{%- endmacro %}
