-- depends_on: {{ ref('stg_market__corporate_actions') }}
{{
    config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy='append',
        on_schema_change='fail',
        tags=['risk'],
        pre_hook=["{{ mwh_session_settings() }}", "{{ mwh_forget_changed_returns(ref('fct_bars_1d')) }}"],
        post_hook="{{ mwh_mark_checked_through(key=['series_type', 'series_name', 'exchange', 'session_date']) }}",
        indexes=mwh_indexes([{'columns': ['series_type', 'series_name', 'exchange', 'return_index']}]),
    )
}}

{#
    Daily returns of every series the risk marts measure, as one set: each symbol of fct_bars_1d
    (series_type 'symbol') and each portfolio of seeds/risk_portfolio_weights.csv ('portfolio', exchange
    'ALL').
    - A symbol's return is its simple adjusted close-to-close return, adj_close / previous adj_close - 1,
      over exactly one session of its exchange's calendar: a return spanning missing sessions (a data gap)
      is left out rather than counted as one day's move. Symbols whose calendar has no sessions in
      dim_trading_sessions use consecutive bars.
    - A portfolio's return is sum(weight * constituent return) on the sessions where every constituent has
      a return (constant weights, rebalanced daily).
    return_index numbers each series' returns 1, 2, ... in time order (the rolling VaR windows count them).

    Incremental (macros/risk/mwh_risk_incremental.sql): per symbol with bars or corporate actions loaded
    into staging since the table's high-water mark (checked_through_loaded_at), and per portfolio holding
    one, the pre-hook forgets the returns from the first changed session on (the whole series when its
    actions changed: its adjusted history is rewritten); the run reads the symbol's bars from the one
    before and numbers the new returns on from the series' last kept return_index. A portfolio's
    constituents' returns come from this run and from the kept rows. built_at marks the rows a build
    wrote (fct_value_at_risk follows them). The same rows as a full refresh.
#}

{%- set built_at = "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') ~ "+00' as "
    ~ mwh_timestamptz() ~ ")" %}

with

{% if is_incremental() -%}
rewrite as (

    select * from {{ mwh_changed_window_table() }}

),

bars as (

    select
        daily.symbol,
        daily.exchange,
        daily.session_date,
        daily.adj_close
    from {{ ref('fct_bars_1d') }} as daily
    inner join rewrite
        on
            rewrite.series_type = 'symbol'
            and daily.symbol = rewrite.series_name
            and daily.exchange = rewrite.exchange
            and daily.ts >= rewrite.read_from_ts
    where daily.adj_close > 0

),

{% else -%}
bars as (

    select
        symbol,
        exchange,
        session_date,
        adj_close
    from {{ ref('fct_bars_1d') }}
    where adj_close > 0

),

{% endif -%}

exchanges as (

    select
        exchange,
        calendar
    from {{ ref('exchanges') }}

),

sessions as (

    select
        calendar,
        session_date,
        row_number() over (partition by calendar order by session_date) as session_number
    from {{ ref('dim_trading_sessions') }}

),

numbered as (

    select
        bars.symbol,
        bars.exchange,
        bars.session_date,
        bars.adj_close,
        sessions.session_number,
        lag(bars.adj_close) over (
            partition by bars.symbol, bars.exchange order by bars.session_date
        ) as previous_adj_close,
        lag(sessions.session_number) over (
            partition by bars.symbol, bars.exchange order by bars.session_date
        ) as previous_session_number,
        lag(bars.session_date) over (
            partition by bars.symbol, bars.exchange order by bars.session_date
        ) as previous_session_date
    from bars
    left join exchanges
        on bars.exchange = exchanges.exchange
    left join sessions
        on
            exchanges.calendar = sessions.calendar
            and bars.session_date = sessions.session_date

),

symbol_returns as (

    select
        symbol,
        exchange,
        session_date,
        previous_session_date,
        adj_close / previous_adj_close - 1 as daily_return
    from numbered
    where
        previous_adj_close is not null
        and (
            session_number is null
            or previous_session_number is null
            or session_number = previous_session_number + 1
        )

),

weights as (

    select
        portfolio,
        symbol,
        exchange,
        weight,
        count(*) over (partition by portfolio) as constituent_count
    from {{ ref('risk_portfolio_weights') }}

),

{% if is_incremental() -%}
{# the constituents' returns from each rewritten portfolio's from_date on: this run's, and the rows kept #}
constituent_returns as (

    select
        weights.portfolio,
        weights.weight,
        weights.constituent_count,
        all_returns.session_date,
        all_returns.previous_session_date,
        all_returns.daily_return
    from weights
    inner join rewrite
        on
            rewrite.series_type = 'portfolio'
            and weights.portfolio = rewrite.series_name
    inner join (
        select
            symbol_returns.symbol,
            symbol_returns.exchange,
            symbol_returns.session_date,
            symbol_returns.previous_session_date,
            symbol_returns.daily_return
        from symbol_returns
        inner join rewrite as symbol_rewrite
            on
                symbol_rewrite.series_type = 'symbol'
                and symbol_returns.symbol = symbol_rewrite.series_name
                and symbol_returns.exchange = symbol_rewrite.exchange
                and symbol_returns.session_date >= symbol_rewrite.from_date
        union all
        select
            series_name as symbol,
            exchange,
            session_date,
            previous_session_date,
            daily_return
        from {{ this }}
        where series_type = 'symbol'
    ) as all_returns
        on
            weights.symbol = all_returns.symbol
            and weights.exchange = all_returns.exchange
            and all_returns.session_date >= rewrite.from_date

),

{% else -%}
constituent_returns as (

    select
        weights.portfolio,
        weights.weight,
        weights.constituent_count,
        symbol_returns.session_date,
        symbol_returns.previous_session_date,
        symbol_returns.daily_return
    from weights
    inner join symbol_returns
        on
            weights.symbol = symbol_returns.symbol
            and weights.exchange = symbol_returns.exchange

),

{% endif -%}
portfolio_returns as (

    select
        portfolio,
        session_date,
        max(previous_session_date) as previous_session_date,
        sum(weight * daily_return) as daily_return,
        count(*) as constituents_with_return,
        max(constituent_count) as constituent_count
    from constituent_returns
    group by portfolio, session_date

),

unioned as (

    select
        'symbol' as series_type,
        symbol as series_name,
        exchange,
        session_date,
        previous_session_date,
        daily_return
    from symbol_returns
    union all
    select
        'portfolio' as series_type,
        portfolio as series_name,
        'ALL' as exchange,
        session_date,
        previous_session_date,
        daily_return
    from portfolio_returns
    where constituents_with_return = constituent_count

),

{% if is_incremental() -%}
{# this run's returns (from each rewritten series' from_date on), numbered on from its last kept return #}
written as (

    select unioned.*
    from unioned
    inner join rewrite
        on
            unioned.series_type = rewrite.series_type
            and unioned.series_name = rewrite.series_name
            and unioned.exchange = rewrite.exchange
            and unioned.session_date >= rewrite.from_date

),

kept_last as (

    select
        kept.series_type,
        kept.series_name,
        kept.exchange,
        max(kept.return_index) as base_index
    from {{ this }} as kept
    inner join rewrite
        on
            kept.series_type = rewrite.series_type
            and kept.series_name = rewrite.series_name
            and kept.exchange = rewrite.exchange
    group by kept.series_type, kept.series_name, kept.exchange

),

{% else -%}
written as (

    select * from unioned

),

kept_last as (

    select
        cast(null as {{ mwh_varchar() }}) as series_type,
        cast(null as {{ mwh_varchar() }}) as series_name,
        cast(null as {{ mwh_varchar() }}) as exchange,
        cast(0 as bigint) as base_index
    where 1 = 0

),

{% endif -%}
final as (

    select
        written.series_type,
        written.series_name,
        written.exchange,
        written.session_date,
        written.previous_session_date,
        written.daily_return,
        coalesce(kept_last.base_index, 0) + row_number() over (
            partition by written.series_type, written.series_name, written.exchange order by written.session_date
        ) as return_index,
        {{ mwh_load_mark() }} as checked_through_loaded_at,
        {{ built_at }} as built_at
    from written
    left join kept_last
        on
            written.series_type = kept_last.series_type
            and written.series_name = kept_last.series_name
            and written.exchange = kept_last.exchange

)

select * from final
