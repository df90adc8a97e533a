{#
    The feature set of version 1, per symbol and bar, for any bar series (daily or hourly).

    bars_relation  a relation with symbol, exchange, ts and the columns named in `columns`
    columns        dict: open, high, low, close, volume, vwap (SQL expressions over bars_relation;
                   daily uses the adjusted prices) and price_factor (adjusted / traded price; 1 when
                   unadjusted), used to report ATR and MACD in the price units traded at bar t
    feature_version integer written to every row
    actions_aware  true for adjusted prices: a symbol whose corporate actions changed is rewritten in
                   full (a late dividend changes the return across its ex-date), see incremental.sql

    Incremental runs: per symbol, the rows to (re)write are the bars from `features_late_window_days`
    before the newest bar already built (all bars of a symbol not built yet, or whose corporate
    actions changed when `actions_aware`); the run reads
    `ewm_window_bars * 4 + 100` bars before the first of them, enough for every window (the nested MACD
    signal needs two exponential windows, each reaching back at most 2N bars, see ewm.sql). The result
    is exactly what a full refresh computes for those rows.

    Point in time: every expression looks only at the bar and earlier bars (lag, preceding frames,
    running sums); nothing reads a later row. Features that are ratios (returns, RSI, %b, z-scores,
    VWAP distance) do not change when a later split or dividend rescales adjusted history; ATR and
    MACD are divided by the bar's price factor for the same reason.
#}

{% macro market_features(bars_relation, columns, feature_version, actions_aware=false) -%}
{%- set n = var('ewm_window_bars') -%}
{%- set lookback = n * 4 + 100 -%}
{%- set digits = var('feature_round_digits') -%}

with

source_bars as (

    select
        symbol,
        exchange,
        ts,
        cast({{ columns.open }} as double precision) as open,
        cast({{ columns.high }} as double precision) as high,
        cast({{ columns.low }} as double precision) as low,
        cast({{ columns.close }} as double precision) as close,
        cast({{ columns.volume }} as double precision) as volume,
        cast({{ columns.vwap }} as double precision) as vwap,
        cast({{ columns.price_factor }} as double precision) as price_factor
    from {{ bars_relation }}

),

bars_indexed as (

    select
        *,
        row_number() over (partition by symbol, exchange order by ts) - 1 as bar_index
    from source_bars

),

{% if actions_aware %}
{{ current_actions_cte() }},
{% endif %}

{% if is_incremental() %}

{{ rewrite_from_cte('bars_indexed', var('features_late_window_days'), 0, actions_aware) }},

bars_in_scope as (

    select
        bars_indexed.*,
        rewrite_from.first_output_index
    from bars_indexed
    inner join rewrite_from
        on
            bars_indexed.symbol = rewrite_from.symbol
            and bars_indexed.exchange = rewrite_from.exchange
    where bars_indexed.bar_index >= rewrite_from.first_output_index - {{ lookback }}

),

{% else %}

bars_in_scope as (

    select
        *,
        0 as first_output_index
    from bars_indexed

),

{% endif %}

bars_with_previous as (

    select
        *,
        lag(close) over bar_order as previous_close,
        lag(close, 5) over bar_order as close_5_back,
        lag(close, 20) over bar_order as close_20_back,
        coalesce(vwap, (high + low + close) / 3) as typical_price
    from bars_in_scope
    window bar_order as (partition by symbol, exchange order by ts)

),

bar_changes as (

    select
        *,
        close - previous_close as price_change,
        case when close > previous_close then close - previous_close when previous_close is not null then 0 end as gain,
        case when close < previous_close then previous_close - close when previous_close is not null then 0 end as loss,
        case
            when previous_close is null then high - low
            else greatest(high - low, abs(high - previous_close), abs(low - previous_close))
        end as true_range,
        {{ mwh_safe_ln(mwh_safe_divide('close', 'previous_close')) }} as log_return_1
    from bars_with_previous

),

{# rolling windows reach back at most 59 bars: compute them only for the rows written and the 60
   before each symbol's first one, not for the whole exponential look-back #}
rolling as (

    select
        symbol,
        exchange,
        ts,
        volume,
        log_return_1,
        count(log_return_1) over last_20 as log_return_count_20,
        stddev_samp(log_return_1) over last_20 as volatility_20_raw,
        count(log_return_1) over last_60 as log_return_count_60,
        stddev_samp(log_return_1) over last_60 as volatility_60_raw,
        count(close) over last_20 as close_count_20,
        avg(close) over last_20 as close_mean_20,
        stddev_pop(close) over last_20 as close_stddev_20,
        avg(volume) over last_20 as volume_mean_20,
        stddev_samp(volume) over last_20 as volume_stddev_20,
        sum(typical_price * volume) over last_20 as price_volume_20,
        sum(volume) over last_20 as volume_sum_20
    from bar_changes
    where bar_index >= first_output_index - 60
    window
        last_20 as (partition by symbol, exchange order by ts rows between 19 preceding and current row),
        last_60 as (partition by symbol, exchange order by ts rows between 59 preceding and current row)

),

{{ ewm_ctes(
    'smoothed', 'bar_changes', ['symbol', 'exchange'],
    [
        {'name': 'ema_12', 'expr': 'close', 'alpha': 2 / 13},
        {'name': 'ema_26', 'expr': 'close', 'alpha': 2 / 27},
        {'name': 'wilder_gain_14', 'expr': 'gain', 'alpha': 1 / 14},
        {'name': 'wilder_loss_14', 'expr': 'loss', 'alpha': 1 / 14},
        {'name': 'wilder_true_range_14', 'expr': 'true_range', 'alpha': 1 / 14},
    ],
    ['symbol', 'exchange', 'ts', 'bar_index', 'first_output_index', 'close', 'price_factor',
     'previous_close', 'close_5_back', 'close_20_back'],
    n
) }},

with_macd as (

    select
        *,
        case when bar_index >= 25 then ema_12 - ema_26 end as macd_raw
    from smoothed

),

{{ ewm_ctes(
    'signalled_only', 'with_macd', ['symbol', 'exchange'],
    [{'name': 'macd_signal_raw', 'expr': 'macd_raw', 'alpha': 2 / 10}],
    ['symbol', 'exchange', 'ts', 'bar_index', 'first_output_index', 'close', 'price_factor',
     'previous_close', 'close_5_back', 'close_20_back',
     'wilder_gain_14', 'wilder_loss_14', 'wilder_true_range_14', 'macd_raw'],
    n
) }},

{# the two halves side by side: a union and group by rather than a join, so PostgreSQL cannot pick a
   nested loop on a misestimated row count #}
{%- set exponential_columns = ['bar_index', 'first_output_index', 'close', 'price_factor', 'previous_close', 'close_5_back', 'close_20_back', 'wilder_gain_14', 'wilder_loss_14', 'wilder_true_range_14', 'macd_raw', 'macd_signal_raw'] -%}
{%- set rolling_columns = ['volume', 'log_return_1', 'log_return_count_20', 'volatility_20_raw', 'log_return_count_60', 'volatility_60_raw', 'close_count_20', 'close_mean_20', 'close_stddev_20', 'volume_mean_20', 'volume_stddev_20', 'price_volume_20', 'volume_sum_20'] %}
both_halves as (

    select
        symbol,
        exchange,
        ts,
        {%- for column in exponential_columns %}
        {{ column }},
        {%- endfor %}
        {%- for column in rolling_columns %}
        cast(null as double precision) as {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from signalled_only
    union all
    select
        symbol,
        exchange,
        ts,
        {%- for column in exponential_columns %}
        cast(null as {{ 'bigint' if column.endswith('index') else 'double precision' }}) as {{ column }},
        {%- endfor %}
        {%- for column in rolling_columns %}
        {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from rolling

),

signalled as (

    select
        symbol,
        exchange,
        ts,
        {%- for column in exponential_columns + rolling_columns %}
        max({{ column }}) as {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from both_halves
    group by symbol, exchange, ts
    having max(bar_index) >= max(first_output_index)

),

features as (

    select
        symbol,
        exchange,
        ts,
        {{ mwh_safe_divide('close', 'previous_close') }} - 1 as return_1,
        {{ mwh_safe_divide('close', 'close_5_back') }} - 1 as return_5,
        {{ mwh_safe_divide('close', 'close_20_back') }} - 1 as return_20,
        log_return_1,
        case when log_return_count_20 = 20 then volatility_20_raw end as volatility_20,
        case when log_return_count_60 = 60 then volatility_60_raw end as volatility_60,
        case
            when bar_index < 14 then null
            when wilder_loss_14 = 0 and wilder_gain_14 = 0 then 50
            when wilder_loss_14 = 0 then 100
            else 100 - 100 / (1 + wilder_gain_14 / wilder_loss_14)
        end as rsi_14,
        case when bar_index >= 14 then {{ mwh_safe_divide('wilder_true_range_14', 'price_factor') }} end as atr_14,
        {{ mwh_safe_divide('macd_raw', 'price_factor') }} as macd_12_26,
        case when bar_index >= 33 then {{ mwh_safe_divide('macd_signal_raw', 'price_factor') }} end as macd_signal_9,
        case when bar_index >= 33 then {{ mwh_safe_divide('macd_raw - macd_signal_raw', 'price_factor') }} end as macd_histogram,
        case
            when close_count_20 = 20
                then {{ mwh_safe_divide('close - (close_mean_20 - 2 * close_stddev_20)', '4 * close_stddev_20') }}
        end as bollinger_pct_b_20,
        case
            when close_count_20 = 20
                then {{ mwh_safe_divide('volume - volume_mean_20', 'volume_stddev_20') }}
        end as volume_zscore_20,
        case
            when close_count_20 = 20
                then {{ mwh_safe_divide('close', mwh_safe_divide('price_volume_20', 'volume_sum_20')) }} - 1
        end as vwap_distance_20
    from signalled
    where bar_index >= first_output_index

),

final as (

    select
        features.symbol,
        features.exchange,
        features.ts,
        cast({{ feature_version }} as integer) as feature_version,
        {%- for column in ['return_1', 'return_5', 'return_20', 'log_return_1', 'volatility_20',
                           'volatility_60', 'rsi_14', 'atr_14', 'macd_12_26', 'macd_signal_9',
                           'macd_histogram', 'bollinger_pct_b_20', 'volume_zscore_20',
                           'vwap_distance_20'] %}
        {{ mwh_round(column, digits) }} as {{ column }},
        {%- endfor %}
        {% if actions_aware -%}
        current_actions.actions_loaded_at
        {%- else -%}
        cast(null as timestamp with time zone) as actions_loaded_at
        {%- endif %}
    from features
    {%- if actions_aware %}
    left join current_actions
        on
            features.symbol = current_actions.symbol
            and features.exchange = current_actions.exchange
    {%- endif %}

)

select * from final
{%- endmacro %}


{#
    Post-hooks for a versioned model: when this version is the latest, (re)create a view under the
    model's unversioned name (marts.fct_features_daily -> fct_features_daily_v1), so queries that do
    not care about versions always read the latest, while every version's own relation stays.
#}
{% macro latest_version_view_sql(action) -%}
    {%- if model.get('version') is not none and model.get('version') == model.get('latest_version') -%}
        {%- set view = api.Relation.create(
            database=this.database, schema=this.schema, identifier=model.get('name'), type='view'
        ) -%}
        {%- if action == 'drop' -%}
            drop view if exists {{ view }}
        {%- else -%}
            create view {{ view }} as select * from {{ this }}
        {%- endif -%}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
