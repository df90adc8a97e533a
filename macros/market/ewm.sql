{#
    Exponential moving averages as TA-Lib defines them, as window functions (no recursion).

    TA-Lib seeds an average at bar s with the simple mean of its first p inputs, then recurses
        y_s = mean(x_{s-p+1} .. x_s),      y_t = y_{t-1} + alpha * (x_t - y_{t-1})   (t > s)
    (EMA: alpha = 2 / (p + 1), s = p - 1; Wilder's RSI and ATR: alpha = 1 / p, s = p, inputs from bar 1;
    MACD: both EMAs seeded at bar 25, the signal at bar 33). Unrolled, with r = 1 - alpha,
        y_t = alpha * sum_{i=s..t} r^(t-i) z_i,   z_s = y_s / alpha,  z_i = x_i for i > s.

    The sum is taken over the last K bars (K = var ewm_window_bars). The terms left out weigh
    r^K * y_{t-K} / y_t of the value; K is checked at compile time so that r^K < 2^-60 (8.7e-19) for
    every average, so the truncation is below double precision's own rounding (2^-53 = 1.1e-16): the
    result is the recursion's value to floating-point accuracy (measured against TA-Lib on every bar of
    the sample in tests/python/models/test_features_reference.py). Because each value is a function of
    the last K bars only, an incremental run that reads enough earlier bars gives a full refresh's value to
    floating-point accuracy. Not always to the bit: a block's running sum may start at a different row, so
    the last bits can differ (one macd_signal_9 of 10,800 values on two 5,400-bar histories,
    tests/python/models/test_incremental_long_history.py). A rebuild from history cut at any bar reads
    from the same first bar and gives the same bits.

    How, without an N-row self-join: a weight r^(t-i) = r^t * r^-i; r^-i overflows for long series, so
    rows are grouped in blocks of K and every row is duplicated into its own block's group and the next;
    in group g the exponent of row i is e = i - (g - 1) K < 2K (r^-2K < 1e39 for every average here). The
    window sum over [t-K+1, t] is a running sum minus the running sum K rows earlier, both inside the
    group that holds t in its second half. O(rows), the same on every target.

    Continuing from a stored state (incremental runs of int_market__ewm_states_*, mwh_ewm_states): the
    average y_b stored for bar b enters the same seed form as z_b = y_b / alpha (as TA-Lib's seed mean
    enters at s), the bars after b are inputs: y_t = alpha * sum_{i=b..t} r^(t-i) z_i is the recursion
    continued from y_b. The window sum covers the seed until it is K bars old; after that it is left out
    like any earlier term (weight < 2^-60). So the series is read from b, never from its first bar.

    Arguments:
      cte_name    name of the CTE this emits (helper CTEs are prefixed with it)
      from_cte    CTE with the partition columns, `bar_index` (0-based, gapless) and the inputs' columns
      partition   list of partition columns
      specs       list of {'name', 'expr' (SQL over from_cte), 'alpha', 'seed_index', 'seed_period'}
      passthrough list of from_cte columns to keep
      window      K
      resume_index optional from_cte column: the bar_index b of the partition's stored state (null:
                  none, seed as TA-Lib from the first bar); with it, from_cte has a column
                  `resume__<name>` per spec holding the stored average y_b (on every row of the
                  partition), and every row read has bar_index >= b
    Emits CTEs (call it after a comma; it ends without one). The last CTE has the passthrough columns
    plus one column per spec, null before its seed bar.
#}
{% macro mwh_ema_ctes(cte_name, from_cte, partition, specs, passthrough, window, resume_index=none) -%}
{%- set part = partition | join(', ') -%}
{%- for spec in specs -%}
    {%- set residual = (1 - spec.alpha) ** window -%}
    {%- if residual > 2 ** -60 -%}
        {{ exceptions.raise_compiler_error(
            "ewm_window_bars = " ~ window ~ " is too short for " ~ spec.name ~ " (alpha " ~ spec.alpha
            ~ "): (1 - alpha)^K = " ~ residual ~ " must be below 2^-60") }}
    {%- endif -%}
{%- endfor -%}
{{ cte_name }}_seeded as (
    select
        *,
        {%- for spec in specs %}
        case
            {%- if resume_index %}
            when {{ resume_index }} is not null
                then case
                    when bar_index = {{ resume_index }} then resume__{{ spec.name }} / {{ spec.alpha }}
                    when bar_index > {{ resume_index }} then {{ spec.expr }}
                end
            {%- endif %}
            when bar_index = {{ spec.seed_index }}
                {%- if target.type == 'postgres' %}
                {#- PostgreSQL: a moving double frame without an inverse re-adds its rows on every row
                    (seed_period additions a bar, for one bar's value); the same rows in the same order,
                    aggregated once per symbol: the same bits #}
                then avg({{ spec.expr }}) filter (
                    where bar_index between {{ spec.seed_index - spec.seed_period + 1 }} and {{ spec.seed_index }}
                ) over (
                    partition by {{ part }} order by bar_index
                    rows between unbounded preceding and unbounded following
                ) / {{ spec.alpha }}
                {%- else %}
                then avg({{ spec.expr }}) over (
                    partition by {{ part }} order by bar_index
                    rows between {{ spec.seed_period - 1 }} preceding and current row
                ) / {{ spec.alpha }}
                {%- endif %}
            when bar_index > {{ spec.seed_index }} then {{ spec.expr }}
        end as {{ spec.name }}__z{{ "," if not loop.last }}
        {%- endfor %}
    from {{ from_cte }}
),

{{ cte_name }}_blocks as (
    select
        src.*,
        dup.block_offset,
        floor(src.bar_index / {{ window }}) + dup.block_offset as ewm_block,
        cast(
            src.bar_index - (floor(src.bar_index / {{ window }}) + dup.block_offset - 1) * {{ window }}
            as {{ mwh_double() }}
        ) as ewm_exponent
    from {{ cte_name }}_seeded as src
    cross join (select 0 as block_offset union all select 1 as block_offset) as dup
),

{{ cte_name }}_running as (
    select
        *,
        {%- for spec in specs %}
        sum(coalesce({{ spec.name }}__z * power(cast({{ 1 - spec.alpha }} as {{ mwh_double() }}), -ewm_exponent), 0))
            over (partition by {{ part }}, ewm_block order by bar_index rows between unbounded preceding and current row)
            as {{ spec.name }}__cum{{ "," if not loop.last }}
        {%- endfor %}
    from {{ cte_name }}_blocks
),

{{ cte_name }}_windowed as (
    select
        *,
        {%- for spec in specs %}
        {{ spec.name }}__cum - lag({{ spec.name }}__cum, {{ window }}, 0) over (
            partition by {{ part }}, ewm_block order by bar_index
        ) as {{ spec.name }}__sum{{ "," if not loop.last }}
        {%- endfor %}
    from {{ cte_name }}_running
    {# only the copy of each row whose group holds it in the second half is kept (block_offset 0) #}
),

{{ cte_name }} as (
    select
        {%- for column in passthrough %}
        {{ column }},
        {%- endfor %}
        {%- for spec in specs %}
        case
            when bar_index >= {{ spec.seed_index }}
                then {{ spec.alpha }} * power(cast({{ 1 - spec.alpha }} as {{ mwh_double() }}), ewm_exponent)
                    * {{ spec.name }}__sum
        end as {{ spec.name }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ cte_name }}_windowed
    where block_offset = 0
)
{%- endmacro %}


{#
    The exponential averages of a bar series' features, as state: the body of the incremental models
    int_market__ewm_states_daily / _hourly (series 'daily' | 'hourly', mwh_feature_series), one row per
    bar with its 0-based bar_index and the six unrounded averages every feature version reads
    (TA-Lib's EMA 12 and 26 of the close, Wilder's 14-bar averages of gain, loss and true range, and the
    9-bar EMA of the MACD line, macd_signal), null before their seed bars.

    Full refresh: mwh_ema_ctes over every symbol's whole series. Incremental: the bars that
    mwh_bars_to_rewrite selects (the same late window and corporate-action rule as the features), each
    symbol continued from its stored row of the last bar before them (ewm.sql's header: the stored y_b
    enters as the seed z_b = y_b / alpha), so a run reads one bar before the rewrite point, not the
    whole history. A symbol without a usable stored row (new; rewritten from its first bar because its
    corporate actions changed; its stored bar_index not that bar's index; or the row before the MACD
    signal's seed bar) is computed from its first bar, as in a full refresh.
#}
{% macro mwh_ewm_states(series) -%}
{%- set s = mwh_feature_series(series) -%}
{%- set k = var('ewm_window_bars') -%}
{%- set averages = ['ema_fast_12', 'ema_slow_26', 'wilder_gain_14', 'wilder_loss_14', 'wilder_true_range_14',
    'macd_signal'] -%}
{%- set kept = ['symbol', 'exchange', 'ts', 'bar_index', 'output_from_ts', 'actions_loaded_at', 'resume_index',
    'resume__macd_signal'] -%}

with

source_bars as (

    {{ mwh_feature_source_bars(s) | indent(4) }}

),

{{ mwh_bars_to_rewrite(s.bars, var('features_late_window_days'), 0, 1, s.actions_aware) }},

{# per symbol: the stored row of the bar before the rewrite point (scope_from_ts, the one bar read
   back, whose index is output_from_index - 1), when it is that bar's row and every average has started #}
resume_from as (

    select
        rewrite_from.symbol,
        rewrite_from.exchange,
        rewrite_from.actions_loaded_at,
        rewrite_from.output_from_ts,
        rewrite_from.output_from_index,
        {%- if is_incremental() %}
        case when stored.bar_index is not null then rewrite_from.scope_from_ts else {{ mwh_min_ts() }} end
            as scope_from_ts,
        stored.bar_index as resume_index,
        {%- for name in averages %}
        stored.{{ name }} as resume__{{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from rewrite_from
    left join {{ this }} as stored
        on
            rewrite_from.symbol = stored.symbol
            and rewrite_from.exchange = stored.exchange
            and rewrite_from.scope_from_ts = stored.ts
            and rewrite_from.output_from_index - 1 = stored.bar_index
            and stored.macd_signal is not null
        {%- else %}
        rewrite_from.scope_from_ts,
        cast(null as bigint) as resume_index,
        {%- for name in averages %}
        cast(null as {{ mwh_double() }}) as resume__{{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from rewrite_from
        {%- endif %}

),

{%- set resume_columns = [] -%}
{%- for name in averages -%}{%- do resume_columns.append('resume__' ~ name) -%}{%- endfor %}
bars_in_scope as (

    {{ mwh_bars_read('resume_from', ['output_from_ts', 'actions_loaded_at', 'resume_index'] + resume_columns)
        | indent(4) }}

),

{{ mwh_market_base_ctes('bars_in_scope') }},

{{ mwh_ema_ctes('averaged', 'with_returns', ['symbol', 'exchange'], [
    {'name': 'ema_fast_12', 'expr': 'close', 'alpha': 2 / 13, 'seed_index': 25, 'seed_period': 12},
    {'name': 'ema_slow_26', 'expr': 'close', 'alpha': 2 / 27, 'seed_index': 25, 'seed_period': 26},
    {'name': 'wilder_gain_14', 'expr': 'gain', 'alpha': 1 / 14, 'seed_index': 14, 'seed_period': 14},
    {'name': 'wilder_loss_14', 'expr': 'loss', 'alpha': 1 / 14, 'seed_index': 14, 'seed_period': 14},
    {'name': 'wilder_true_range_14', 'expr': 'true_range', 'alpha': 1 / 14, 'seed_index': 14, 'seed_period': 14},
], kept, k, 'resume_index') }},

with_macd_line as (

    select
        *,
        ema_fast_12 - ema_slow_26 as macd_line
    from averaged

),

{{ mwh_ema_ctes('signalled', 'with_macd_line', ['symbol', 'exchange'], [
    {'name': 'macd_signal', 'expr': 'macd_line', 'alpha': 2 / 10, 'seed_index': 33, 'seed_period': 9},
], kept + averages[:5], k, 'resume_index') }}

select
    symbol,
    exchange,
    ts,
    bar_index,
    {%- for name in averages %}
    {{ name }},
    {%- endfor %}
    actions_loaded_at
from signalled
where ts >= output_from_ts
{%- endmacro %}
