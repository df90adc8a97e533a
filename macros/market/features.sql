{#
    A feature-set version, per symbol and bar, for a bar series (series 'daily' | 'hourly',
    mwh_feature_series): the columns of every catalog entry (macros/market/mwh_feature_catalog.sql) that
    carries `feature_version`; `feature_version` is written to every row.

    Stages: source bars (mwh_feature_source_bars) -> `base` (mwh_market_base_ctes: lags, returns, true
    range; then the benchmark's return) -> the exponential averages, joined from the series' state model
    int_market__ewm_states_<series> (mwh_ewm_states in ewm.sql: TA-Lib's definitions, computed once for
    every version, carried between incremental runs) -> the per-bar features, rounded to
    var feature_round_digits -> cross-sectional ranks and z-scores per exchange and session, over the
    rounded values.

    Incremental runs rewrite the bars chosen by mwh_bars_to_rewrite (incremental.sql) and read, before
    the first of them (found per symbol without numbering its whole history; only the bars read are
    numbered, from the count of bars before them), the version's longest window less the bar itself
    (`window` counts it; test_feature_catalog checks every entry's window against its independent
    reference: enough, and one bar fewer is not). The averages come from the state model, which carries
    them, so no exponential read-back. Cross-sectional and
    benchmark features depend on every symbol of a session, so a version that has them rewrites all
    symbols from the earliest session any symbol needs; one with benchmark features (a beta looks back over
    the benchmark of earlier sessions) also reads every symbol from the earliest bar any symbol reads, so
    a symbol whose read-back reaches across a hole in its history sees the whole benchmark there
    (test_incremental_long_history's hole test). The rows written are what a full refresh
    computes, to floating-point accuracy after rounding (see ewm.sql).
#}
{% macro mwh_market_features(series, feature_version) -%}
{%- set s = mwh_feature_series(series) -%}
{%- set features = mwh_features_of_version(feature_version) -%}
{%- set per_bar = [] -%}
{%- set cross = [] -%}
{%- for feature in features -%}
    {%- if feature.kind is defined -%}{%- do cross.append(feature) -%}{%- else -%}{%- do per_bar.append(feature) -%}{%- endif -%}
{%- endfor -%}
{%- set uses_ewm = per_bar | selectattr('ewm', 'defined') | list | length > 0 -%}
{%- set uses_benchmark = per_bar | selectattr('family', 'equalto', 'benchmark') | list | length > 0 -%}
{%- set windows = per_bar | map(attribute='window') | list -%}
{%- set lookback = (windows | max) - 1 -%}
{%- set digits = var('feature_round_digits') -%}
{#- Incremental runs evaluate the per-bar features in two tiers: the long windows over every bar read, the
    short ones over the bars from their own look-back before the first written bar (a window computes a
    value for every row it is given, and a run writes a few bars a symbol). The split is the window
    length that minimizes (bars read a symbol x features) summed over the tiers. A full refresh reads
    every bar for both tiers, so one tier, as one window stage. -#}
{%- set tiers = namespace(short_window=lookback + 1, cost=none) -%}
{%- if is_incremental() -%}
    {%- for split in windows | unique | sort -%}
        {%- set n_long = windows | select('gt', split) | list | length -%}
        {%- set cost = (lookback + 1) * n_long + split * (windows | length - n_long) -%}
        {%- if tiers.cost is none or cost < tiers.cost -%}
            {%- set tiers.short_window = split -%}
            {%- set tiers.cost = cost -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif -%}
{%- set long_names = per_bar | selectattr('window', 'gt', tiers.short_window) | map(attribute='name') | list -%}

with

source_bars as (

    {{ mwh_feature_source_bars(s) | indent(4) }}

),

{{ mwh_bars_to_rewrite(s.bars, var('features_late_window_days'), 0, lookback, s.actions_aware,
    across_symbols=cross | length > 0, read_across_symbols=uses_benchmark) }},

{# the bars read, numbered over the symbol's whole series (from output_from_index: the bars before the first written one) #}
bars_in_scope as (

    {{ mwh_bars_read('rewrite_from', ['output_from_ts', 'actions_loaded_at', 'output_from_index']) | indent(4) }}

),

{{ mwh_market_base_ctes('bars_in_scope') }},

base as (

    select
        *,
        {%- if not uses_benchmark %}
        cast(null as {{ mwh_double() }}) as benchmark_return_1
        {%- elif var('feature_benchmark') == 'equal_weight' %}
        {# ordered frames: the same additions in the same order in every run, so the same bits #}
        avg(bar_return_1) over (
            partition by exchange, ts order by symbol rows between unbounded preceding and unbounded following
        ) as benchmark_return_1
        {%- else %}
        max(case when symbol = '{{ var("feature_benchmark") }}' then bar_return_1 end) over (
            partition by ts order by symbol rows between unbounded preceding and unbounded following
        ) as benchmark_return_1
        {%- endif %}
    from with_returns

),

{% if uses_ewm %}

{# the averages from the state model (built before this one), from the first bar any symbol writes #}
states_read as (

    select
        symbol,
        exchange,
        ts,
        wilder_gain_14,
        wilder_loss_14,
        wilder_true_range_14,
        ema_fast_12 - ema_slow_26 as macd_line,
        macd_signal
    from {{ ref('int_market__ewm_states_' ~ series) }}
    where ts >= (select min(rewrite_from.output_from_ts) from rewrite_from)

),

signalled as (

    select
        base.*,
        states_read.wilder_gain_14,
        states_read.wilder_loss_14,
        states_read.wilder_true_range_14,
        states_read.macd_line,
        states_read.macd_signal
    from base
    left join states_read
        on
            base.symbol = states_read.symbol
            and base.exchange = states_read.exchange
            and base.ts = states_read.ts

),

{% else %}

signalled as (

    select * from base

),

{% endif %}

{%- set extremes = mwh_rolling_extreme_ctes('extremes', 'signalled', per_bar | map(attribute='sql') | list) %}
{%- if extremes %}

{{ extremes }},
{%- endif %}

{%- set per_bar_from = 'extremes' if extremes else 'signalled' %}
{%- if long_names %}

{# the long-window features over every bar read (unrounded on PostgreSQL, rounded one layer up) #}
long_window_features as (

    select
        *,
        {%- for feature in per_bar if feature.name in long_names %}
        {{ feature.sql if target.type == 'postgres' else mwh_round(feature.sql, digits) }} as mwh_long__{{ feature.name }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ per_bar_from }}

),
{%- set per_bar_from = 'long_window_features' %}
{%- endif %}

{%- if target.type == 'postgres' %}

{# PostgreSQL: the features unrounded (the windows), then rounded by mwh_round_double_column over those
   columns (mostly in double, to the numeric round trip's bits); `offset 0` keeps the rounding in
   this subquery, evaluated once a row, not copied into the cross-sectional windows that read it #}
per_bar_features as (

    select
        symbol,
        exchange,
        ts,
        bar_index,
        output_from_ts,
        actions_loaded_at,
        {%- for feature in per_bar %}
        {{ mwh_round_double_column(feature.name, digits) | indent(8) }} as {{ feature.name }}{{ "," if not loop.last }}
        {%- endfor %}
    from (
        select
            symbol,
            exchange,
            ts,
            bar_index,
            output_from_ts,
            actions_loaded_at,
            {%- for feature in per_bar %}
            {{ 'mwh_long__' ~ feature.name if feature.name in long_names else feature.sql }} as {{ feature.name }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ per_bar_from }}
        {{ mwh_short_window_rows(long_names, tiers.short_window) | indent(8) }}
    ) as per_bar_unrounded
    offset 0

),
{%- else %}

per_bar_features as (

    select
        symbol,
        exchange,
        ts,
        bar_index,
        output_from_ts,
        actions_loaded_at,
        {%- for feature in per_bar %}
        {{ 'mwh_long__' ~ feature.name if feature.name in long_names else mwh_round(feature.sql, digits) }} as {{ feature.name }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ per_bar_from }}
    {{ mwh_short_window_rows(long_names, tiers.short_window) | indent(4) }}

),
{%- endif %}

written_rows as (

    select * from per_bar_features
    where ts >= output_from_ts

),

{%- if target.type == 'postgres' and cross | length > 0 %}

{# PostgreSQL: the cross-sectional values unrounded, then rounded as the per-bar ones #}
final as (

    select
        symbol,
        exchange,
        ts,
        feature_version,
        {%- for feature in features %}
        {%- if feature.kind is defined %}
        {{ mwh_round_double_column(feature.name, digits) | indent(8) }} as {{ feature.name }},
        {%- else %}
        {{ feature.name }},
        {%- endif %}
        {%- endfor %}
        actions_loaded_at
    from (
        select
            symbol,
            exchange,
            ts,
            cast({{ feature_version }} as integer) as feature_version,
            {%- for feature in features %}
            {%- if feature.kind is defined %}
            {{ mwh_cross_sectional_sql(feature) }} as {{ feature.name }},
            {%- else %}
            {{ feature.name }},
            {%- endif %}
            {%- endfor %}
            actions_loaded_at
        from written_rows
    ) as cross_unrounded
    offset 0

)
{%- else %}

final as (

    select
        symbol,
        exchange,
        ts,
        cast({{ feature_version }} as integer) as feature_version,
        {%- for feature in features %}
        {%- if feature.kind is defined %}
        {{ mwh_cross_sectional_sql(feature, digits) }} as {{ feature.name }},
        {%- else %}
        {{ feature.name }},
        {%- endif %}
        {%- endfor %}
        actions_loaded_at
    from written_rows

)
{%- endif %}

select * from final
{%- endmacro %}


{#- A cross-sectional feature's SQL over the written rows: the percent rank (`kind` 'rank') or z-score of
    `feature.of` among the symbols of one exchange and session that have it, rounded to `digits` inside,
    or unrounded (digits none: PostgreSQL rounds it one layer up, mwh_round_double_column). -#}
{% macro mwh_cross_sectional_sql(feature, digits=none) -%}
    {%- set cross_section = 'partition by exchange, ts, ' ~ feature.of ~ ' is null' -%}
    {%- if feature.kind == 'rank' -%}
        {%- set value = 'percent_rank() over (' ~ cross_section ~ ' order by ' ~ feature.of ~ ')' -%}
    {%- else -%}
        {%- set frame = '(' ~ cross_section ~ ' order by symbol rows between unbounded preceding and unbounded following)' -%}
        {%- set value = mwh_safe_divide(feature.of ~ ' - avg(' ~ feature.of ~ ') over ' ~ frame,
            'stddev_samp(' ~ feature.of ~ ') over ' ~ frame) -%}
    {%- endif -%}
    {%- set value = mwh_round(value, digits) if digits is not none else value -%}
    {%- if feature.kind == 'rank' -%}
    case when {{ feature.of }} is not null then {{ value }} end
    {%- else -%}
    {{ value }}
    {%- endif -%}
{%- endmacro %}


{#
    A bar series' feature inputs (series 'daily' | 'hourly'), for the features and their state models:
      bars          the bars relation (fct_bars_1d | fct_bars_1h)
      columns       SQL over it for open, high, low, close, volume, vwap (daily: point-in-time
                    adjusted), traded_close, traded_volume (as traded), pit_price_factor (adjusted /
                    traded price; '1' when unadjusted)
      actions_aware true for adjusted prices: a symbol whose corporate actions changed is rewritten
#}
{% macro mwh_feature_series(series) -%}
{%- if series == 'daily' -%}
{{ return({
    'bars': ref('fct_bars_1d'),
    'columns': {
        'open': 'open * pit_price_factor',
        'high': 'high * pit_price_factor',
        'low': 'low * pit_price_factor',
        'close': 'close * pit_price_factor',
        'volume': 'volume * pit_volume_factor',
        'vwap': 'vwap * pit_price_factor',
        'traded_close': 'close',
        'traded_volume': 'volume',
        'pit_price_factor': 'pit_price_factor',
    },
    'actions_aware': true,
}) }}
{%- elif series == 'hourly' -%}
{#- traded (unadjusted) hourly prices -#}
{{ return({
    'bars': ref('fct_bars_1h'),
    'columns': {
        'open': 'open', 'high': 'high', 'low': 'low', 'close': 'close', 'volume': 'volume', 'vwap': 'vwap',
        'traded_close': 'close', 'traded_volume': 'volume', 'pit_price_factor': '1',
    },
    'actions_aware': false,
}) }}
{%- else -%}
{{ exceptions.raise_compiler_error("feature series '" ~ series ~ "' is not one of: daily, hourly") }}
{%- endif -%}
{%- endmacro %}


{#- The source bars of a series (mwh_feature_series' dict): symbol, exchange, ts and the inputs as doubles (a select). -#}
{% macro mwh_feature_source_bars(s) -%}
select
    symbol,
    exchange,
    ts,
    {%- for name in ['open', 'high', 'low', 'close', 'volume', 'vwap', 'traded_close', 'traded_volume', 'pit_price_factor'] %}
    cast({{ s.columns[name] }} as {{ mwh_double() }}) as {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
from {{ s.bars }}
{%- endmacro %}


{#- The bars a run reads (a select): `source_bars` from each symbol's scope_from_ts in `scope_cte` on, with
    the scope's `scope_columns`, numbered over the symbol's whole series: bar_index is the scope's
    output_from_index (the symbol's bars before its first written one, output_from_ts) plus the row's place
    among the bars read from there (negative places before it, for the bars read back). The bars read back
    are counted here, among the bars read, not in another pass over the relation. A full refresh reads
    every bar from the first, so it numbers them from 0. -#}
{% macro mwh_bars_read(scope_cte, scope_columns) -%}
select
    source_bars.*,
    row_number() over (partition by source_bars.symbol, source_bars.exchange order by source_bars.ts) - 1
    {%- if is_incremental() %}
    + {{ scope_cte }}.output_from_index - count(case when source_bars.ts < {{ scope_cte }}.output_from_ts then 1 end) over (
        partition by source_bars.symbol, source_bars.exchange
    )
    {%- endif %} as bar_index,
    {%- for column in scope_columns %}
    {{ scope_cte }}.{{ column }}{{ "," if not loop.last }}
    {%- endfor %}
from source_bars
inner join {{ scope_cte }}
    on
        source_bars.symbol = {{ scope_cte }}.symbol
        and source_bars.exchange = {{ scope_cte }}.exchange
where source_bars.ts >= {{ scope_cte }}.scope_from_ts
{%- endmacro %}


{#
    The base stage of a series' bars, for the features and the exponential state models alike: CTEs
    `with_previous` (previous_close) and `with_returns` (bar_return_1, log_return_1, gain, loss,
    true_range, typical_price, log_high_low, log_close_open) over `from_cte` (mwh_feature_source_bars'
    columns, one row per bar read).
#}
{% macro mwh_market_base_ctes(from_cte) -%}
with_previous as (

    select
        *,
        lag(close) over bar_order as previous_close
    from {{ from_cte }}
    window bar_order as (partition by symbol, exchange order by ts)

),

with_returns as (

    select
        *,
        {{ mwh_safe_divide('close', 'previous_close') }} - 1 as bar_return_1,
        {{ mwh_safe_ln(mwh_safe_divide('close', 'previous_close')) }} as log_return_1,
        case when close > previous_close then close - previous_close when previous_close is not null then 0 end as gain,
        case when close < previous_close then previous_close - close when previous_close is not null then 0 end as loss,
        {# TA-Lib's true range starts at bar 1 (it needs the previous close) #}
        case
            when previous_close is not null
                then greatest(high - low, abs(high - previous_close), abs(low - previous_close))
        end as true_range,
        coalesce(vwap, (high + low + close) / 3) as typical_price,
        {{ mwh_safe_ln(mwh_safe_divide('high', 'low')) }} as log_high_low,
        {{ mwh_safe_ln(mwh_safe_divide('close', 'open')) }} as log_close_open
    from with_previous

)
{%- endmacro %}


{#- A daily feature-set version over fct_bars_1d on point-in-time adjusted prices (the body of every
    fct_features_daily_v* model). -#}
{% macro mwh_daily_features(feature_version) -%}
{{ mwh_market_features('daily', feature_version) }}
{%- endmacro %}


{#- A feature-set version of `model_name` read from a later version of it (`source_version`) that carries
    every catalog entry of `feature_version`: a view selecting `feature_version`'s columns (in catalog
    order, as mwh_market_features writes them) from that version's rows. The same entries are the same
    SQL over the same point-in-time bars, rounded alike, so the values are those the version would
    compute itself; each feature is computed once. A compiler error names any entry the source version
    does not carry. -#}
{% macro mwh_feature_projection(model_name, feature_version, source_version) -%}
{{ config(materialized='view') }}
{%- set features = mwh_features_of_version(feature_version) -%}
{%- set missing = [] -%}
{%- for feature in features if source_version not in feature.versions -%}
    {%- do missing.append(feature.name) -%}
{%- endfor -%}
{%- if missing -%}
    {{ exceptions.raise_compiler_error(model_name ~ " version " ~ feature_version ~ " cannot be read from version "
        ~ source_version ~ ", which does not carry " ~ missing | join(", ") ~ ": build it with its own table ("
        ~ "mwh_daily_features(" ~ feature_version ~ ") and mwh_feature_model_config())") }}
{%- endif %}
select
    symbol,
    exchange,
    ts,
    cast({{ feature_version }} as integer) as feature_version,
    {%- for feature in features %}
    {{ feature.name }},
    {%- endfor %}
    actions_loaded_at
from {{ ref(model_name, v=source_version) }}
{%- endmacro %}


{#- A window aggregate over the last n bars of the symbol, null until n values are there
    (count_expr: what must be non-null, default the aggregate's argument).
    PostgreSQL has no inverse transition for `double precision` sums: a moving frame re-adds its n values
    on every row (a 200-bar avg: 200 additions a bar). There, over 100 bars or more, the sums, averages,
    variances and the covariance run over `numeric` (exact sums; PostgreSQL's moving-aggregate inverse
    removes the value leaving the frame: O(1) a row), cast back to double; shorter frames stay in double
    (the numeric conversions cost more than re-adding 20-60 doubles: v1's backend CPU on the sample
    11.3 s in double, 14.1 s in numeric). A min/max over more than 32 bars of a column is read from
    mwh_rolling_extreme_ctes' column (log2(n) lag steps instead of n comparisons a row). -#}
{% macro mwh_rolling(agg, expr, n, count_expr=none) -%}
{%- set frame = 'over (partition by symbol, exchange order by ts rows between ' ~ (n - 1) ~ ' preceding and current row)' -%}
{%- set counted = 'count(' ~ (count_expr or expr) ~ ') ' ~ frame ~ ' = ' ~ n -%}
{%- set pg = target.type == 'postgres' -%}
{%- if pg and n >= 100 and agg in ['avg', 'sum'] -%}
(case when {{ counted }} then cast({{ agg }}(cast(({{ expr }}) as numeric)) {{ frame }} as {{ mwh_double() }}) end)
{%- elif pg and n >= 100 and agg in ['stddev_samp', 'stddev_pop', 'var_samp', 'var_pop', 'covar_samp'] -%}
{#- n * sum(x y) - sum(x) sum(y), exact in numeric over the n rows (count = n: every row has its values;
    covar_samp's count_expr 'x * y' is n pairs), then one division in double precision (PostgreSQL's numeric
    stddev/variance round to the inputs' scale: to integers for integral volumes) -#}
{%- set xy = expr.split(',') if agg == 'covar_samp' else [expr, expr] -%}
{%- set x = 'cast((' ~ xy[0] | trim ~ ') as numeric)' -%}
{%- set y = 'cast((' ~ xy[1] | trim ~ ') as numeric)' -%}
{%- set moment = 'cast(' ~ n ~ ' * sum(' ~ x ~ ' * ' ~ y ~ ') ' ~ frame ~ ' - sum(' ~ x ~ ') ' ~ frame ~ ' * sum('
    ~ y ~ ') ' ~ frame ~ ' as ' ~ mwh_double() ~ ') / ' ~ (n * (n if agg.endswith('_pop') else n - 1)) -%}
(case when {{ counted }} then {{ 'sqrt(' ~ moment ~ ')' if agg.startswith('stddev') else moment }} end)
{%- elif pg and agg in ['max', 'min'] and n > 32 and expr.replace('_', '').isalnum() -%}
(case when {{ counted }} then mwh_extreme__{{ agg }}__{{ expr }}__{{ n }} end)
{%- else -%}
(case when {{ counted }} then {{ agg }}({{ expr }}) {{ frame }} end)
{%- endif -%}
{%- endmacro %}


{#- PostgreSQL: CTEs (after a comma; ending without one) named `<cte_name>_extreme_<k>`, over from_cte,
    adding a column mwh_extreme__<max|min>__<column>__<n> for every such name that `sqls` (the features'
    SQL) reads (mwh_rolling): the max/min of the column over the last n bars, by doubling (the extreme of
    2k bars is the extreme of the k at t and the k at t - k: greatest/least of a lag), then two
    overlapping powers of two. greatest/least skip nulls as max/min do; mwh_rolling's count keeps it null
    until n values are there. Returns '' (nothing to add) when no feature reads one. -#}
{% macro mwh_rolling_extreme_ctes(cte_name, from_cte, sqls) -%}
{%- set names = [] -%}
{%- for sql in sqls -%}
    {%- for part in sql.split('mwh_extreme__')[1:] -%}
        {%- set name = 'mwh_extreme__' ~ part.split(' ')[0].split(')')[0].split(',')[0] -%}
        {%- if name not in names -%}{%- do names.append(name) -%}{%- endif -%}
    {%- endfor -%}
{%- endfor -%}
{%- if names | length == 0 -%}{{ return('') }}{%- endif -%}
{%- set order = 'over (partition by symbol, exchange order by ts)' -%}
{%- set ns = [] -%}
{%- for name in names -%}{%- do ns.append(name.split('__')[-1] | int) -%}{%- endfor -%}
{%- set steps = [] -%}
{%- for i in range(0, 20) if 2 ** (i + 1) <= ns | max -%}{%- do steps.append(2 ** i) -%}{%- endfor -%}
{%- set ns = namespace(previous=from_cte) -%}
{%- for k in steps %}
{{ cte_name }}_extreme_{{ k }} as (
    select
        *
        {%- for name in names -%}
        {%- set agg, column, n = name.split('__')[1], name.split('__')[2], name.split('__')[3] | int -%}
        {%- if 2 * k <= n -%}
        {%- set f = 'greatest' if agg == 'max' else 'least' -%}
        {%- set level = column if k == 1 else name ~ '__' ~ k %},
        {{ f }}({{ level }}, lag({{ level }}, {{ k }}) {{ order }}) as {{ name }}__{{ 2 * k }}
        {%- endif -%}
        {%- endfor %}
    from {{ ns.previous }}
),
{%- set ns.previous = cte_name ~ '_extreme_' ~ k %}
{%- endfor %}

{{ cte_name }} as (
    select
        *
        {%- for name in names -%}
        {%- set agg, column, n = name.split('__')[1], name.split('__')[2], name.split('__')[3] | int -%}
        {%- set p = namespace(v=1) -%}
        {%- for k in steps if 2 * k <= n -%}{%- set p.v = 2 * k -%}{%- endfor -%}
        {%- set f = 'greatest' if agg == 'max' else 'least' %},
        {{ f }}({{ name }}__{{ p.v }}, lag({{ name }}__{{ p.v }}, {{ n - p.v }}) {{ order }}) as {{ name }}
        {%- endfor %}
    from {{ ns.previous }}
)
{%- endmacro %}


{#- With long-window features in their own tier (mwh_market_features), the filter that gives the short
    ones only the bars they read: from short_window - 1 bars before the first written bar on (the
    written bars' frames are whole; the earlier rows are not written). -#}
{% macro mwh_short_window_rows(long_names, short_window) -%}
{%- if long_names -%}
where bar_index >= output_from_index - {{ short_window - 1 }}
{%- endif -%}
{%- endmacro %}


{#- The value n bars earlier in the symbol's series. -#}
{% macro mwh_lag(expr, n) -%}
lag({{ expr }}, {{ n }}) over (partition by symbol, exchange order by ts)
{%- endmacro %}


{#- The column list of a feature-set version, in catalog order (for the training set and docs). -#}
{% macro mwh_feature_columns(version) -%}
{%- set names = [] -%}
{%- for feature in mwh_features_of_version(version) -%}{%- do names.append(feature.name) -%}{%- endfor -%}
{{ return(names) }}
{%- endmacro %}


{#- The config every feature model and exponential state model shares: incremental by (symbol, exchange,
    ts), a fixed schema (a change is a new version), indexes for one symbol's history and one day across
    symbols; on PostgreSQL no nested loops (the join of the bars read, `ts >= scope_from_ts`, is estimated
    at 8k-25k rows for 5M, and the states were joined by one index probe per bar); for a feature version (latest_view), the unversioned latest-version view re-pointed after
    each build. -#}
{% macro mwh_feature_model_config(latest_view=true) -%}
    {{ config(
        materialized=mwh_incremental_materialization(),
        incremental_strategy=mwh_incremental_strategy(),
        unique_key=['symbol', 'exchange', 'ts'],
        on_schema_change='fail',
        indexes=mwh_indexes([{'columns': ['symbol', 'ts desc']}, {'columns': ['ts']}]),
        pre_hook=["{{ mwh_disable_join_method('nestloop') }}"],
        post_hook=["{{ mwh_reset_join_method('nestloop') }}"] + ([
            "{{ mwh_latest_version_view_sql('drop') }}",
            "{{ mwh_latest_version_view_sql('create') }}",
        ] if latest_view else []),
    ) }}
{%- endmacro %}


{#
    Post-hooks for a versioned model: when this version is the latest, (re)create a view under the
    model's unversioned name (marts.fct_features_daily -> fct_features_daily_v1), so queries that do
    not care about versions always read the latest, while every version's own relation stays.
#}
{% macro mwh_latest_version_view_sql(action) -%}
    {%- if model.get('version') is not none and model.get('version') == model.get('latest_version') -%}
        {%- set view = api.Relation.create(
            database=this.database, schema=this.schema, identifier=model.get('name'), type='view'
        ) -%}
        {%- if action == 'drop' -%}
            drop view if exists {{ view }}
        {%- else -%}
            {#- The view carries the model's table and column comments (analysts browse it, not the _vN
                tables): one hook, several statements, as DuckDB and PostgreSQL both run them. -#}
            {%- set name = view.include(database=False) -%}
            {%- set about = 'Latest version (v' ~ model.get('version') ~ ') of ' ~ model.get('name')
                ~ ', a view of ' ~ this.identifier ~ '. ' ~ (model.get('description') or '') -%}
            create view {{ view }} as select * from {{ this }}
            {%- if target.type == 'spark' -%}
                {#- Spark runs one statement per hook and has no COMMENT ON VIEW/COLUMN. -#}
                {{ return('create view ' ~ view ~ ' as select * from ' ~ this) }}
            {%- endif -%};
            comment on view {{ name }} is '{{ about | replace("'", "''") }}'
            {%- for column in (model.get('columns') or {}).values() if column.get('description') %};
            comment on column {{ name }}.{{ adapter.quote(column.get('name')) }} is '{{ column.get('description') | replace("'", "''") }}'
            {%- endfor -%}
        {%- endif -%}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
