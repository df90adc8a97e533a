{#
    Trading performance per strategy, model (model_key: model_id or '(none)') and symbol, plus one row
    per strategy and model over all its symbols (symbol = 'ALL'). Over closed trades (fct_signal_outcomes
    with is_closed), on per-trade returns (return_pct), so symbols of any price level add up:
    - win_rate: share of trades with pnl > 0; profit_factor: gross winning return / gross losing return;
    - sharpe_per_trade: mean / standard deviation of trade returns, not annualized (trades are not
      evenly spaced in time);
    - max_drawdown: the largest fall of the cumulative sum of trade returns (in exit order) from its
      running peak (starting at 0);
    - latency p50/p95 over every signal of the group (open and HOLD ones too).
#}

with

outcomes as (

    select * from {{ ref('fct_signal_outcomes') }}

),

signals_scoped as (

    {# Each signal counts in its symbol's group and in its strategy and model's 'ALL' group. #}
    select
        strategy as group_strategy,
        model_key as group_model_key,
        symbol as group_symbol,
        is_closed,
        pnl,
        return_pct,
        exit_ts,
        signal_ts,
        latency_ms
    from outcomes
    union all
    select
        strategy as group_strategy,
        model_key as group_model_key,
        'ALL' as group_symbol,
        is_closed,
        pnl,
        return_pct,
        exit_ts,
        signal_ts,
        latency_ms
    from outcomes

),

equity as (

    select
        *,
        sum(return_pct) over (
            partition by group_strategy, group_model_key, group_symbol
            order by coalesce(exit_ts, signal_ts), signal_ts
            rows between unbounded preceding and current row
        ) as cumulative_return
    from signals_scoped
    where is_closed

),

drawdowns as (

    select
        *,
        greatest(
            max(cumulative_return) over (
                partition by group_strategy, group_model_key, group_symbol
                order by coalesce(exit_ts, signal_ts), signal_ts
                rows between unbounded preceding and current row
            ),
            0
        ) - cumulative_return as drawdown
    from equity

),

trades as (

    select
        group_strategy,
        group_model_key,
        group_symbol,
        count(*) as n_trades,
        {{ mwh_count_if('pnl > 0') }} as n_wins,
        sum(pnl) as total_pnl,
        avg(pnl) as avg_pnl,
        sum(return_pct) as total_return,
        avg(return_pct) as avg_return,
        max(return_pct) as best_trade_return,
        min(return_pct) as worst_trade_return,
        sum(case when return_pct > 0 then return_pct else 0 end) as gross_profit,
        -sum(case when return_pct < 0 then return_pct else 0 end) as gross_loss,
        stddev_samp(return_pct) as return_stddev,
        max(drawdown) as max_drawdown
    from drawdowns
    group by group_strategy, group_model_key, group_symbol

),

all_signals as (

    select
        group_strategy,
        group_model_key,
        group_symbol,
        count(*) as n_signals,
        {{ mwh_count_if('not is_closed') }} as n_not_closed,
        {{ mwh_percentile('latency_ms', 0.5) }} as latency_p50_ms,
        {{ mwh_percentile('latency_ms', 0.95) }} as latency_p95_ms
    from signals_scoped
    group by group_strategy, group_model_key, group_symbol

),

final as (

    select
        all_signals.group_strategy as strategy,
        all_signals.group_model_key as model_key,
        all_signals.group_symbol as symbol,
        all_signals.n_signals,
        coalesce(trades.n_trades, 0) as n_trades,
        all_signals.n_not_closed,
        coalesce(trades.n_wins, 0) as n_wins,
        {{ mwh_safe_divide('cast(trades.n_wins as double precision)', 'trades.n_trades') }} as win_rate,
        {{ mwh_safe_divide('trades.gross_profit', 'trades.gross_loss') }} as profit_factor,
        trades.avg_pnl,
        trades.total_pnl,
        trades.avg_return,
        trades.total_return,
        trades.best_trade_return,
        trades.worst_trade_return,
        {{ mwh_safe_divide('trades.avg_return', 'trades.return_stddev') }} as sharpe_per_trade,
        trades.max_drawdown,
        all_signals.latency_p50_ms,
        all_signals.latency_p95_ms
    from all_signals
    left join trades
        on
            all_signals.group_strategy = trades.group_strategy
            and all_signals.group_model_key = trades.group_model_key
            and all_signals.group_symbol = trades.group_symbol

)

select * from final
