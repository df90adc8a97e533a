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

    Arguments:
      cte_name    name of the CTE this emits (helper CTEs are prefixed with it)
      from_cte    CTE with the partition columns, `bar_index` (0-based, gapless) and the inputs' columns
      partition   list of partition columns
      specs       list of {'name', 'expr' (SQL over from_cte), 'alpha', 'seed_index', 'seed_period'}
      passthrough list of from_cte columns to keep
      window      K
    Emits CTEs (call it after a comma; it ends without one). The last CTE has the passthrough columns
    plus one column per spec, null before its seed bar.
#}
{% macro mwh_ema_ctes(cte_name, from_cte, partition, specs, passthrough, window) -%}
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
            when bar_index = {{ spec.seed_index }}
                then avg({{ spec.expr }}) over (
                    partition by {{ part }} order by bar_index
                    rows between {{ spec.seed_period - 1 }} preceding and current row
                ) / {{ spec.alpha }}
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
