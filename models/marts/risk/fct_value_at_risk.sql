-- noqa: disable=LT02
{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy='append',
        on_schema_change='fail',
        tags=['risk'],
        pre_hook=[
            "{{ mwh_session_settings() }}",
            "{{ mwh_disable_join_method('nestloop') }}",
            "{{ mwh_forget_changed_var(ref('int_risk__daily_returns_unioned'),
                var('risk_var_window_returns', 250) | int, var('risk_backtest_returns', 250) | int) }}",
        ],
        post_hook=[
            "{{ mwh_reset_join_method('nestloop') }}",
            "{{ mwh_mark_checked_through(key=['series_type', 'series_name', 'exchange', 'as_of_date',
                'confidence_level'], column='returns_built_at',
                value='(select max(built_at) from ' ~ ref('int_risk__daily_returns_unioned') ~ ')') }}",
        ],
        indexes=mwh_indexes([{'columns': ['series_name', 'exchange', 'as_of_date']}]),
    )
}}

{#
    One-day value at risk and expected shortfall (CVaR) per series (symbol or portfolio), as-of date and
    confidence level, from the `risk_var_window_returns` daily returns up to and including the as-of date
    (int_risk__daily_returns_unioned), for the last `risk_backtest_returns` as-of dates of each series and
    its newest one. Each row forecasts the next return of the series (forecast_session_date), which the
    backtest compares with the realised return (null for the newest as-of date: not yet known).

    Losses are positive fractions of value (0.03 = 3%); with c the confidence level and p = 1 - c:
    - historical VaR = -(p-quantile of the window's returns), the continuous (linearly interpolated)
      empirical quantile (numpy's default, percentile_cont);
    - historical CVaR = -(mean of the window's returns at or below that quantile);
    - parametric (normal) VaR = -(mean + stddev * z_p), CVaR = -(mean - stddev * phi(z_p) / p), with the
      sample mean and sample standard deviation (n - 1) of the window and z_p = Phi^-1(p)
      (macros/risk/mwh_normal.sql).
    A breach is a realised return below -VaR.

    Incremental (macros/risk/mwh_risk_incremental.sql): only the series whose returns were written since
    the table's high-water mark (returns_built_at) are read, from the window before their first as-of row
    whose window or next return changed; those rows are written again and the rows that fell out of the
    last `risk_backtest_returns` are deleted. The same rows as a full refresh.
#}

{%- set window = var('risk_var_window_returns', 250) | int -%}
{%- set backtest = var('risk_backtest_returns', 250) | int -%}
{%- set levels = var('risk_confidence_levels', [0.95, 0.99]) -%}
{#- DuckDB incremental runs: series with at most this many as-of rows to write join their windows' members
    (window_lists) rather than framing every row read. -#}
{%- set few_as_of_rows = 20 -%}

{#- percentile_cont(p) of n sorted values v_1..v_n is q = v_k + f (v_(k+1) - v_k), with h = (n - 1) p,
    k = floor(h) + 1 and f = h - floor(h). Every window holds exactly `window` returns, so k and f are
    known here. The tail (returns <= q) is the returns <= v_k, i.e. those whose rank() is <= k (ties
    included). Computing both from ranks in one aggregation keeps the model free of joins between large
    intermediate results (PostgreSQL cannot estimate their sizes and picks nested loops). -#}
{%- set ranks = [] -%}
{%- for level in levels -%}
    {%- set h = (window - 1) * (1 - (level | float)) -%}
    {%- set k = (h | round(0, 'floor') | int) + 1 -%}
    {%- do ranks.append({'level': level, 'k': k, 'f': h - (k - 1), 'i': loop.index}) -%}
{%- endfor %}

with

returns as (

    select
        series_type,
        series_name,
        exchange,
        session_date,
        return_index,
        daily_return,
        lead(session_date) over series_order as next_session_date,
        lead(daily_return) over series_order as next_return,
        max(return_index) over (partition by series_type, series_name, exchange) as last_index,
        write_from_index
    {% if is_incremental() -%}
    from (
        select
            all_returns.*,
            rewrite.from_index as write_from_index
        from {{ ref('int_risk__daily_returns_unioned') }} as all_returns
        inner join {{ mwh_changed_window_table() }} as rewrite
            on
                all_returns.series_type = rewrite.series_type
                and all_returns.series_name = rewrite.series_name
                and all_returns.exchange = rewrite.exchange
                and all_returns.return_index >= rewrite.from_index - {{ window - 1 }}
    ) as read_returns
    {%- else -%}
    from (
        select
            *,
            1 as write_from_index
        from {{ ref('int_risk__daily_returns_unioned') }}
    ) as read_returns
    {%- endif %}
    window series_order as (partition by series_type, series_name, exchange order by return_index)

),

{% if target.type in ('duckdb', 'postgres') %}
{# DuckDB and PostgreSQL: each as-of row's window as one list (a 250-row window frame over the returns the
    as-of rows need), its statistics from the list's values: the same rows and values as the generic form
    below, without joining 250 members to each as-of row and numbering them in 250-row partitions (50
    series x 5,000 returns on DuckDB: see docs/risk_and_metrics.md; at 5M bars on PostgreSQL an external
    sort of 8.5 GB of 63M joined members, 1,978 s at work_mem 4 MB). #}
needed as (

    select * from returns
    where return_index >= last_index - {{ backtest + window - 1 }}

),

window_lists as (

    select
        series_type,
        series_name,
        exchange,
        return_index,
        last_index,
        write_from_index,
        session_date as as_of_date,
        next_session_date,
        next_return,
        {#- DuckDB sorts the list here; PostgreSQL sorts each array's values in window_stats #}
        {% if target.type == 'duckdb' -%}
        list_sort(list(daily_return) over member_rows)
        {%- else -%}
        array_agg(daily_return) over member_rows
        {%- endif %} as member_returns
    from needed
    {%- if target.type == 'duckdb' and is_incremental() %}
    where last_index - write_from_index > {{ few_as_of_rows }}
    {%- endif %}
    window member_rows as (
        partition by series_type, series_name, exchange
        order by return_index
        rows between {{ window - 1 }} preceding and current row
    )
    {%- if target.type == 'duckdb' and is_incremental() %}

    {#- DuckDB, incremental: a series with at most `few_as_of_rows` as-of rows to write (a new session: one)
        gets each one's window by joining its `window` members (return_index is 1, 2, ... per series: the
        same members as the 250-row frame), sorted by the aggregate. The frame above builds and sorts a
        250-value list for every row it reads, 250 per series of which one is kept: most of this model's
        incremental time at 5M bars. Same sorted lists, hence the same values. #}
    union all

    select
        as_of.series_type,
        as_of.series_name,
        as_of.exchange,
        as_of.return_index,
        as_of.last_index,
        as_of.write_from_index,
        as_of.session_date as as_of_date,
        as_of.next_session_date,
        as_of.next_return,
        list(members.daily_return order by members.daily_return) as member_returns
    from needed as as_of
    inner join needed as members
        on
            as_of.series_type = members.series_type
            and as_of.series_name = members.series_name
            and as_of.exchange = members.exchange
            and members.return_index > as_of.return_index - {{ window }}
            and members.return_index <= as_of.return_index
    where
        as_of.last_index - as_of.write_from_index <= {{ few_as_of_rows }}
        and as_of.return_index >= as_of.write_from_index
    group by all
    {%- endif %}

),

{# The as-of rows: each ends a full window; the last `backtest` of them (plus the newest) per series. #}
as_of_lists as (

    select * from window_lists
    where
        return_index >= {{ window }}
        and return_index >= last_index - {{ backtest }}
        and return_index >= write_from_index

),

window_stats as (

    {%- if target.type == 'duckdb' %}
    {#- list functions over the sorted list #}
    select
        series_type,
        series_name,
        exchange,
        return_index,
        as_of_date,
        next_session_date,
        next_return,
        len(member_returns) as window_size,
        list_avg(member_returns) as mean_return,
        list_aggregate(member_returns, 'stddev_samp') as stddev_return,
        {%- for r in ranks %}
        member_returns[{{ r.k }}]
        + {{ r.f }} * (member_returns[{{ r.k + 1 }}] - member_returns[{{ r.k }}]) as quantile_{{ r.i }},
        list_avg(list_filter(member_returns, x -> x <= member_returns[{{ r.k }}])) as tail_mean_{{ r.i }},
        len(list_filter(member_returns, x -> x <= member_returns[{{ r.k }}])) as tail_size_{{ r.i }}
        {{- ',' if not loop.last }}
        {%- endfor %}
    from as_of_lists
    {%- else %}
    {#- the array's values sorted in memory, one as-of row at a time #}
    select
        as_of_lists.series_type,
        as_of_lists.series_name,
        as_of_lists.exchange,
        as_of_lists.return_index,
        as_of_lists.as_of_date,
        as_of_lists.next_session_date,
        as_of_lists.next_return,
        member_stats.*
    from as_of_lists
    cross join lateral (
        select
            count(*) as window_size,
            avg(ranked.daily_return) as mean_return,
            stddev_samp(ranked.daily_return) as stddev_return,
            {%- for r in ranks %}
            max(case when ranked.value_number = {{ r.k }} then ranked.daily_return end)
            + {{ r.f }} * (
                max(case when ranked.value_number = {{ r.k + 1 }} then ranked.daily_return end)
                - max(case when ranked.value_number = {{ r.k }} then ranked.daily_return end)
            ) as quantile_{{ r.i }},
            avg(case when ranked.value_rank <= {{ r.k }} then ranked.daily_return end) as tail_mean_{{ r.i }},
            sum(case when ranked.value_rank <= {{ r.k }} then 1 else 0 end) as tail_size_{{ r.i }}
            {{- ',' if not loop.last }}
            {%- endfor %}
        from (
            select
                members.daily_return,
                row_number() over (order by members.daily_return) as value_number,
                rank() over (order by members.daily_return) as value_rank
            from unnest(as_of_lists.member_returns) as members (daily_return)
        ) as ranked
    ) as member_stats
    {%- endif %}

),
{% else %}
{# The as-of rows: each ends a full window; the last `backtest` of them (plus the newest) per series. #}
as_of as (

    select * from returns
    where
        return_index >= {{ window }}
        and return_index >= last_index - {{ backtest }}
        and return_index >= write_from_index

),

{# Each as-of row's members by index (Spark and other engines). #}
window_members as (

    select
        as_of.series_type,
        as_of.series_name,
        as_of.exchange,
        as_of.return_index,
        as_of.session_date as as_of_date,
        as_of.next_session_date,
        as_of.next_return,
        as_of.return_index - integer_series.n as member_index
    from as_of
    cross join {{ mwh_integer_series(0, window - 1) }}

),

window_returns as (

    select
        window_members.series_type,
        window_members.series_name,
        window_members.exchange,
        window_members.return_index,
        window_members.as_of_date,
        window_members.next_session_date,
        window_members.next_return,
        returns.daily_return,
        row_number() over as_of_window as value_number,
        rank() over as_of_window as value_rank
    from window_members
    inner join returns
        on
            window_members.series_type = returns.series_type
            and window_members.series_name = returns.series_name
            and window_members.exchange = returns.exchange
            and window_members.member_index = returns.return_index
    window as_of_window as (
        partition by
            window_members.series_type,
            window_members.series_name,
            window_members.exchange,
            window_members.return_index
        order by returns.daily_return
    )

),

window_stats as (

    select
        series_type,
        series_name,
        exchange,
        return_index,
        as_of_date,
        next_session_date,
        next_return,
        count(*) as window_size,
        avg(daily_return) as mean_return,
        stddev_samp(daily_return) as stddev_return,
        {%- for r in ranks %}
        max(case when value_number = {{ r.k }} then daily_return end)
        + {{ r.f }} * (
            max(case when value_number = {{ r.k + 1 }} then daily_return end)
            - max(case when value_number = {{ r.k }} then daily_return end)
        ) as quantile_{{ r.i }},
        avg(case when value_rank <= {{ r.k }} then daily_return end) as tail_mean_{{ r.i }},
        sum(case when value_rank <= {{ r.k }} then 1 else 0 end) as tail_size_{{ r.i }}{{ ',' if not loop.last }}
        {%- endfor %}
    from window_returns
    group by series_type, series_name, exchange, return_index, as_of_date, next_session_date, next_return

),
{% endif %}

levels_first_guess as (

    {% for level in levels %}
    select
        {{ level }} as confidence_level,
        {{ 1 - (level | float) }} as tail_probability,
        {{ mwh_norm_ppf_acklam(1 - (level | float)) }} as z_first_guess
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

levels as (

    select
        cast(confidence_level as double precision) as confidence_level,
        cast(tail_probability as double precision) as tail_probability,
        {{ mwh_norm_ppf_refine('z_first_guess', 'tail_probability') }} as z_score
    from levels_first_guess

),

by_level as (

    {% for r in ranks %}
    select
        window_stats.series_type,
        window_stats.series_name,
        window_stats.exchange,
        window_stats.as_of_date,
        window_stats.next_session_date,
        window_stats.next_return,
        window_stats.window_size,
        window_stats.mean_return,
        window_stats.stddev_return,
        levels.confidence_level,
        levels.tail_probability,
        levels.z_score,
        window_stats.quantile_{{ r.i }} as return_quantile,
        window_stats.tail_mean_{{ r.i }} as tail_mean_return,
        window_stats.tail_size_{{ r.i }} as tail_size
    from window_stats
    cross join levels
    where levels.confidence_level = cast({{ r.level }} as double precision)
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        by_level.series_type,
        by_level.series_name,
        by_level.exchange,
        by_level.as_of_date,
        by_level.confidence_level,
        cast(by_level.window_size as integer) as window_size,
        by_level.next_session_date as forecast_session_date,
        by_level.next_return as realized_return,
        by_level.mean_return,
        by_level.stddev_return,
        by_level.z_score,
        -by_level.return_quantile as historical_var,
        -by_level.tail_mean_return as historical_cvar,
        cast(by_level.tail_size as integer) as historical_tail_size,
        -(by_level.mean_return + by_level.stddev_return * by_level.z_score) as parametric_var,
        -(
            by_level.mean_return
            - by_level.stddev_return * {{ mwh_norm_pdf('by_level.z_score') }} / by_level.tail_probability
        ) as parametric_cvar,
        by_level.next_return < by_level.return_quantile as is_historical_breach,
        by_level.next_return < by_level.mean_return + by_level.stddev_return * by_level.z_score
            as is_parametric_breach,
        (
            select max(written.built_at) as mark
            from {{ ref('int_risk__daily_returns_unioned') }} as written
        ) as returns_built_at
    from by_level

)

select * from final
