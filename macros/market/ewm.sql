{#
    Exponentially weighted means over a finite window, as window functions (no recursion).

    For a series x_i (i = bar_index, 0-based per partition), alpha and window N, the value at bar i is

        ewm_i = sum_{k=0}^{m} (1 - alpha)^k * x_{i-k}  /  sum_{k=0}^{m} (1 - alpha)^k,   m = min(i, N - 1)

    i.e. pandas' `ewm(alpha=..., adjust=True)` truncated to the last N bars. For i < N it equals the
    untruncated recursive average exactly; beyond that the dropped weight is (1 - alpha)^N of the total
    (N = 150: < 2e-5 for Wilder's 14, < 1e-5 for span 26), far below the features' rounding. Truncation is
    what makes an incremental run reproduce a full refresh from a finite look-back.

    How, without recursion or an N-row self-join: a weight (1-alpha)^(i-j) = r^i * r^-j. r^-j overflows
    for long series, so rows are grouped in blocks of N and every row is duplicated into its own block's
    group and the next one; in group g the anchor is a = (g-1)*N and the exponent j - a stays below 2N.
    The window sum over [i-N+1, i] is then a running sum minus the running sum N rows earlier, both
    inside the group that holds i in its second half. O(rows), and the same for every target.

    Arguments:
      from_cte    CTE with the partition columns, `bar_index`, and the input expressions' columns
      cte_name    name of the CTE this emits (plus helper CTEs prefixed with it)
      partition   list of partition columns (e.g. ['symbol', 'exchange'])
      specs       list of {'name': output column, 'expr': SQL over from_cte columns, 'alpha': float}
      passthrough list of from_cte columns to keep in the output
      window      N (var ewm_window_bars)
    Emits CTEs (call it after a comma, it ends without one).
#}
{% macro ewm_ctes(cte_name, from_cte, partition, specs, passthrough, window) -%}
{%- set part = partition | join(', ') -%}
{{ cte_name }}_blocks as (
    select
        src.*,
        dup.block_offset,
        floor(src.bar_index / {{ window }}) + dup.block_offset as ewm_block,
        cast(src.bar_index - (floor(src.bar_index / {{ window }}) + dup.block_offset - 1) * {{ window }} as double precision) as ewm_exponent
    from {{ from_cte }} as src
    cross join (select 0 as block_offset union all select 1 as block_offset) as dup
),

{{ cte_name }}_weighted as (
    select
        *,
        {%- for spec in specs %}
        case
            when ({{ spec.expr }}) is not null
                then power(cast({{ 1 - spec.alpha }} as double precision), -ewm_exponent)
            else 0
        end as {{ spec.name }}__w,
        case
            when ({{ spec.expr }}) is not null
                then ({{ spec.expr }}) * power(cast({{ 1 - spec.alpha }} as double precision), -ewm_exponent)
            else 0
        end as {{ spec.name }}__wx{{ "," if not loop.last }}
        {%- endfor %}
    from {{ cte_name }}_blocks
),

{{ cte_name }}_running as (
    select
        *,
        {%- for spec in specs %}
        sum({{ spec.name }}__w) over (
            partition by {{ part }}, ewm_block order by bar_index rows between unbounded preceding and current row
        ) as {{ spec.name }}__cw,
        sum({{ spec.name }}__wx) over (
            partition by {{ part }}, ewm_block order by bar_index rows between unbounded preceding and current row
        ) as {{ spec.name }}__cwx{{ "," if not loop.last }}
        {%- endfor %}
    from {{ cte_name }}_weighted
),

{{ cte_name }}_windowed as (
    select
        *,
        {%- for spec in specs %}
        {{ spec.name }}__cw - lag({{ spec.name }}__cw, {{ window }}, 0) over (
            partition by {{ part }}, ewm_block order by bar_index
        ) as {{ spec.name }}__sw,
        {{ spec.name }}__cwx - lag({{ spec.name }}__cwx, {{ window }}, 0) over (
            partition by {{ part }}, ewm_block order by bar_index
        ) as {{ spec.name }}__swx{{ "," if not loop.last }}
        {%- endfor %}
    from {{ cte_name }}_running
),

{{ cte_name }} as (
    select
        {%- for column in passthrough %}
        {{ column }},
        {%- endfor %}
        {%- for spec in specs %}
        {{ mwh_safe_divide(spec.name ~ '__swx', spec.name ~ '__sw') }} as {{ spec.name }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ cte_name }}_windowed
    {# the copy of each row whose group holds it in the second half (block_offset 0) #}
    where block_offset = 0
)
{%- endmacro %}
