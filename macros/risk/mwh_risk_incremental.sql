{#
    Incremental risk tables (int_risk__daily_returns_unioned, fct_value_at_risk): what a run rewrites,
    computed once by the pre-hook into a temporary table (mwh_changed_window_table()), which the model
    then reads.
#}

{#- Pre-hook of int_risk__daily_returns_unioned. Per symbol with bars or corporate actions loaded since
    the table's high-water mark (mwh_daily_changed_window_sql over fct_bars_1d's valid bars), and per
    portfolio with such a constituent, the first session whose return may differ (from_date: the first
    changed bar's session; the series' first when its actions changed) and where its bars are read from
    (read_from_ts: the bar before, for lag()). Then forgets the table's rows from from_date on. -#}
{% macro mwh_forget_changed_returns(daily_bars) -%}
    {%- if is_incremental() -%}
    {%- set window_table = mwh_changed_window_table() -%}
    {%- set valid_bars = '(select symbol, exchange, ts from ' ~ daily_bars ~ ' where adj_close > 0)' -%}
    drop table if exists {{ window_table }};
    create temporary table {{ window_table }} as
    with
    symbol_changes as (
        {{ mwh_daily_changed_window_sql(this, valid_bars, daily_bars_indexed=true) | indent(8) }}
    ),
    symbol_rows as (
        select
            cast('symbol' as {{ mwh_varchar() }}) as series_type,
            symbol as series_name,
            exchange,
            {{ mwh_utc_date('first_changed_ts') }} as from_date,
            read_from_ts
        from symbol_changes
    )
    select * from symbol_rows
    union all
    select
        cast('portfolio' as {{ mwh_varchar() }}) as series_type,
        weights.portfolio as series_name,
        cast('ALL' as {{ mwh_varchar() }}) as exchange,
        min(symbol_rows.from_date) as from_date,
        min(symbol_rows.read_from_ts) as read_from_ts
    from {{ ref('risk_portfolio_weights') }} as weights
    inner join symbol_rows
        on
            weights.symbol = symbol_rows.series_name
            and weights.exchange = symbol_rows.exchange
    group by weights.portfolio;
    {{ mwh_forget_in_changed_window(['series_type', 'series_name', 'exchange'],
        this.identifier ~ '.session_date >= changed_window.from_date') }}
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook of fct_value_at_risk. Per series whose returns were written since the table's high-water
    mark (returns_built_at: the newest int_risk__daily_returns_unioned.built_at it has seen), with c its
    first return written since and n its last return index now:
      from_index      the first as-of row written again: max(c - 1 (its next return changed), window,
                      n - backtest); its window reads returns from from_index - window + 1
      keep_from_date  as-of rows before the session of index n - backtest fall out (deleted)
    Then forgets the series' as-of rows from the session of index c - 1 on, and those that fell out. -#}
{% macro mwh_forget_changed_var(returns, window, backtest) -%}
    {%- if is_incremental() -%}
    {%- if 'returns_built_at' not in (adapter.get_columns_in_relation(this) | map(attribute='name')
            | map('lower') | list) -%}
        {{ exceptions.raise_compiler_error(this ~ " was built by an earlier version of the project (no "
            ~ "returns_built_at column): run `mwh build --full-refresh --select " ~ this.identifier
            ~ "` once, then build as usual") }}
    {%- endif -%}
    {%- set window_table = mwh_changed_window_table() -%}
    {%- set min_date = "cast('1900-01-01' as date)" -%}
    drop table if exists {{ window_table }};
    create temporary table {{ window_table }} as
    with
    mark as (
        select coalesce(max(returns_built_at), {{ mwh_min_ts() }}) as returns_built_at
        from {{ this }}
    ),
    changed as (
        select
            written.series_type,
            written.series_name,
            written.exchange,
            min(written.return_index) as first_written_index
        from {{ returns }} as written
        where written.built_at > (select mark.returns_built_at from mark)
        group by written.series_type, written.series_name, written.exchange
    ),
    {#- n and the sessions of c - 1 and n - backtest, each a lookup of one series' return by the
        (series_type, series_name, exchange, return_index) index: as joins, PostgreSQL hashed the whole
        returns table three times (10.8 s of this pre-hook's 10.8 s at 5M bars, one new session). -#}
    bounds as (
        select
            changed.series_type,
            changed.series_name,
            changed.exchange,
            changed.first_written_index,
            coalesce((
                select max(series_returns.return_index)
                from {{ returns }} as series_returns
                where
                    {{ mwh_same_return_series('series_returns', 'changed') | indent(20) }}
                    and series_returns.return_index >= changed.first_written_index - 1
            ), 0) as last_index
        from changed
    )
    select
        bounds.series_type,
        bounds.series_name,
        bounds.exchange,
        greatest(bounds.first_written_index - 1, {{ window }}, bounds.last_index - {{ backtest }}) as from_index,
        coalesce((
            select max(changed_from.session_date)
            from {{ returns }} as changed_from
            where
                {{ mwh_same_return_series('changed_from', 'bounds') | indent(16) }}
                and changed_from.return_index = bounds.first_written_index - 1
        ), {{ min_date }}) as forget_from_date,
        coalesce((
            select max(keep_from.session_date)
            from {{ returns }} as keep_from
            where
                {{ mwh_same_return_series('keep_from', 'bounds') | indent(16) }}
                and keep_from.return_index = bounds.last_index - {{ backtest }}
        ), {{ min_date }}) as keep_from_date
    from bounds;
    {{ mwh_forget_in_changed_window(['series_type', 'series_name', 'exchange'],
        '(' ~ this.identifier ~ '.as_of_date >= changed_window.forget_from_date or '
        ~ this.identifier ~ '.as_of_date < changed_window.keep_from_date)') }}
    {%- endif -%}
{%- endmacro %}


{#- The same return series (series_type, series_name, exchange) in two relations. -#}
{% macro mwh_same_return_series(left, right) -%}
{{ left }}.series_type = {{ right }}.series_type
and {{ left }}.series_name = {{ right }}.series_name
and {{ left }}.exchange = {{ right }}.exchange
{%- endmacro %}
