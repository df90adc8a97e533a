{#
    THE FEATURE CATALOG: every market feature, declared once.

    Each entry:
      name         column name in fct_features_*
      family       returns | momentum | trend | volatility | oscillator | volume | liquidity | benchmark |
                   cross_section
      versions     feature-set versions that carry it (fct_features_daily_v1, _v2, ...)
                   (a version every entry of which a later one carries is a view of that
                   version's rows: mwh_feature_projection, so each feature is computed once)
      window       bars of history it reads (the bar itself counts as one): drives the incremental
                   look-back. `ewm: true`: it reads the exponential averages, joined from
                   int_market__ewm_states_* (mwh_ewm_states, macros/market/ewm.sql)
      sql          its definition: one SQL expression over the columns of the `base` stage of
                   mwh_market_features (macros/market/features.sql), with helpers
                   mwh_rolling(agg, expr, n) (null until n values) and mwh_lag(expr, n). A
                   cross-sectional feature names `of` (a feature) and `kind` (rank | zscore) instead
      description  what it is, for the docs (models/marts/market/*.yml are checked against it)
      range        optional [min, max] (null = open): tested on the column

    Adding a feature: one entry here, and one test (tests/python/models/test_features_reference.py
    checks every feature against an independent computation). The columns, the look-back, the
    rounding list, the training set and the docs follow from this list.

    Everything is point in time: lag, preceding frames and exponential sums over earlier bars only;
    prices are point-in-time adjusted (int_market__adjustment_factors.pit_price_factor), so a later split or
    dividend never changes a stored value.
#}
{% macro mwh_feature_catalog() %}
{% set catalog %}
- name: return_1
  family: returns
  versions: [1, 2]
  window: 2
  sql: "{{ mwh_safe_divide('close', 'previous_close') }} - 1"
  description: Simple return over 1 bar, on adjusted closes.
- name: return_5
  family: returns
  versions: [1, 2]
  window: 6
  sql: "{{ mwh_safe_divide('close', mwh_lag('close', 5)) }} - 1"
  description: Simple return over 5 bars.
- name: return_20
  family: returns
  versions: [1, 2]
  window: 21
  sql: "{{ mwh_safe_divide('close', mwh_lag('close', 20)) }} - 1"
  description: Simple return over 20 bars.
- name: log_return_1
  family: returns
  versions: [1, 2]
  window: 2
  sql: "log_return_1"
  description: Log return over 1 bar.
- name: overnight_return
  family: returns
  versions: [2]
  window: 2
  sql: "{{ mwh_safe_divide('open', 'previous_close') }} - 1"
  description: Open over the previous close, minus 1 (the gap).
- name: intraday_return
  family: returns
  versions: [2]
  window: 1
  sql: "{{ mwh_safe_divide('close', 'open') }} - 1"
  description: Close over open, minus 1.
- name: momentum_60
  family: momentum
  versions: [2]
  window: 61
  sql: "{{ mwh_safe_divide('close', mwh_lag('close', 60)) }} - 1"
  description: Return over 60 bars (about 3 months of sessions).
- name: momentum_120
  family: momentum
  versions: [2]
  window: 121
  sql: "{{ mwh_safe_divide('close', mwh_lag('close', 120)) }} - 1"
  description: Return over 120 bars (about 6 months).
- name: momentum_252
  family: momentum
  versions: [2]
  window: 253
  sql: "{{ mwh_safe_divide('close', mwh_lag('close', 252)) }} - 1"
  description: Return over 252 bars (about 12 months).
- name: momentum_12_1
  family: momentum
  versions: [2]
  window: 253
  sql: "{{ mwh_safe_divide(mwh_lag('close', 21), mwh_lag('close', 252)) }} - 1"
  description: 12-1 momentum, the return from 252 to 21 bars ago (skips the last month's reversal).
- name: sma_50_distance
  family: trend
  versions: [2]
  window: 50
  sql: "{{ mwh_safe_divide('close', mwh_rolling('avg', 'close', 50)) }} - 1"
  description: Close over its 50-bar simple moving average, minus 1.
- name: sma_200_distance
  family: trend
  versions: [2]
  window: 200
  sql: "{{ mwh_safe_divide('close', mwh_rolling('avg', 'close', 200)) }} - 1"
  description: Close over its 200-bar simple moving average, minus 1.
- name: high_52w_distance
  family: trend
  versions: [2]
  window: 252
  sql: "{{ mwh_safe_divide('close', mwh_rolling('max', 'high', 252)) }} - 1"
  description: Close over the highest high of the last 252 bars, minus 1 (0 at a 52-week high).
- name: low_52w_distance
  family: trend
  versions: [2]
  window: 252
  sql: "{{ mwh_safe_divide('close', mwh_rolling('min', 'low', 252)) }} - 1"
  description: Close over the lowest low of the last 252 bars, minus 1.
- name: volatility_20
  range: [0, null]
  family: volatility
  versions: [1, 2]
  window: 21
  sql: "{{ mwh_rolling('stddev_samp', 'log_return_1', 20) }}"
  description: Sample standard deviation of the last 20 log returns (per bar, not annualised).
- name: volatility_60
  range: [0, null]
  family: volatility
  versions: [1, 2]
  window: 61
  sql: "{{ mwh_rolling('stddev_samp', 'log_return_1', 60) }}"
  description: Sample standard deviation of the last 60 log returns.
- name: volatility_20_annualized
  range: [0, null]
  family: volatility
  versions: [2]
  window: 21
  sql: "{{ mwh_rolling('stddev_samp', 'log_return_1', 20) }} * sqrt({{ var('feature_bars_per_year') }})"
  description: volatility_20 times the square root of var feature_bars_per_year (252 sessions).
- name: parkinson_volatility_20
  range: [0, null]
  family: volatility
  versions: [2]
  window: 20
  sql: "sqrt({{ mwh_rolling('avg', 'log_high_low * log_high_low', 20) }} / (4 * ln(2)))"
  description: Parkinson's range estimator over 20 bars, sqrt(mean(ln(high/low)^2) / (4 ln 2)), per bar.
- name: garman_klass_volatility_20
  range: [0, null]
  family: volatility
  versions: [2]
  window: 20
  sql: "{% set gk = mwh_rolling('avg', '0.5 * log_high_low * log_high_low - (2 * ln(2) - 1) * log_close_open * log_close_open', 20) %}sqrt(case when {{ gk }} < 0 then 0 else {{ gk }} end)"
  description: Garman-Klass estimator over 20 bars, sqrt(mean(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2)), per bar.
- name: rsi_14
  range: [0, 100]
  family: oscillator
  versions: [1, 2]
  ewm: true
  window: 15
  sql: "case when wilder_gain_14 + wilder_loss_14 = 0 then 0 else 100 * wilder_gain_14 / (wilder_gain_14 + wilder_loss_14) end"
  description: Wilder's RSI over 14 bars, TA-Lib's definition (averages seeded with the simple mean of the first 14 changes; from bar 14).
- name: atr_14
  range: [0, null]
  family: volatility
  versions: [1, 2]
  ewm: true
  window: 15
  sql: "wilder_true_range_14 / pit_price_factor"
  description: Wilder's average true range over 14 bars, TA-Lib's definition, in the prices traded at the bar.
- name: atr_14_pct
  range: [0, null]
  family: volatility
  versions: [2]
  ewm: true
  window: 15
  sql: "{{ mwh_safe_divide('wilder_true_range_14', 'close') }}"
  description: atr_14 divided by the close (scale-free; unchanged by splits).
- name: macd_12_26
  family: trend
  versions: [1, 2]
  ewm: true
  window: 34
  sql: "case when bar_index >= 33 then macd_line / pit_price_factor end"
  description: MACD line (EMA 12 - EMA 26 of the close), TA-Lib's definition (from bar 33), in traded prices.
- name: macd_signal_9
  family: trend
  versions: [1, 2]
  ewm: true
  window: 34
  sql: "macd_signal / pit_price_factor"
  description: 9-bar EMA of the MACD line (TA-Lib), in traded prices.
- name: macd_histogram
  family: trend
  versions: [1, 2]
  ewm: true
  window: 34
  sql: "(macd_line - macd_signal) / pit_price_factor"
  description: MACD line minus its signal, in traded prices.
- name: macd_12_26_pct
  family: trend
  versions: [2]
  ewm: true
  window: 34
  sql: "case when bar_index >= 33 then {{ mwh_safe_divide('macd_line', 'close') }} end"
  description: macd_12_26 divided by the close (scale-free).
- name: macd_histogram_pct
  family: trend
  versions: [2]
  ewm: true
  window: 34
  sql: "{{ mwh_safe_divide('macd_line - macd_signal', 'close') }}"
  description: macd_histogram divided by the close (scale-free).
- name: bollinger_pct_b_20
  family: volatility
  versions: [1, 2]
  window: 20
  sql: "{{ mwh_safe_divide('close - (' ~ mwh_rolling('avg', 'close', 20) ~ ' - 2 * ' ~ mwh_rolling('stddev_pop', 'close', 20) ~ ')', '4 * ' ~ mwh_rolling('stddev_pop', 'close', 20)) }}"
  description: Bollinger %b over 20 bars (2 population standard deviations).
- name: volume_zscore_20
  family: volume
  versions: [1, 2]
  window: 20
  sql: "{{ mwh_safe_divide('volume - ' ~ mwh_rolling('avg', 'volume', 20), mwh_rolling('stddev_samp', 'volume', 20)) }}"
  description: Volume's z-score against its last 20 bars.
- name: vwap_distance_20
  family: volume
  versions: [1, 2]
  window: 20
  sql: "{{ mwh_safe_divide('close', mwh_safe_divide(mwh_rolling('sum', 'typical_price * volume', 20), mwh_rolling('sum', 'volume', 20))) }} - 1"
  description: Close over the 20-bar volume-weighted average price, minus 1.
- name: dollar_volume
  family: liquidity
  versions: [2]
  window: 1
  sql: "traded_close * traded_volume"
  description: Traded close times traded volume (currency of the listing).
- name: adv_20
  family: liquidity
  versions: [2]
  window: 20
  sql: "{{ mwh_rolling('avg', 'traded_close * traded_volume', 20) }}"
  description: Average daily dollar volume over 20 bars.
- name: amihud_illiquidity_20
  family: liquidity
  versions: [2]
  window: 21
  sql: "1000000 * {{ mwh_rolling('avg', mwh_safe_divide('abs(close / previous_close - 1)', 'traded_close * traded_volume'), 20) }}"
  description: Amihud illiquidity, mean of |return| / dollar volume over 20 bars, per million of currency.
- name: benchmark_return_1
  family: benchmark
  versions: [2]
  window: 2
  sql: "benchmark_return_1"
  description: The benchmark's 1-bar return on the same session (var feature_benchmark; equal_weight = mean return of the exchange's symbols).
- name: relative_return_1
  family: benchmark
  versions: [2]
  window: 2
  sql: "({{ mwh_safe_divide('close', 'previous_close') }} - 1) - benchmark_return_1"
  description: return_1 minus the benchmark's return.
- name: beta_60
  family: benchmark
  versions: [2]
  window: 61
  sql: "{{ mwh_safe_divide(mwh_rolling('covar_samp', 'bar_return_1, benchmark_return_1', 60, 'bar_return_1 * benchmark_return_1'), mwh_rolling('var_samp', 'benchmark_return_1', 60)) }}"
  description: Rolling 60-bar beta of return_1 on the benchmark's return (sample covariance / variance).
- name: momentum_252_rank
  range: [0, 1]
  family: cross_section
  versions: [2]
  of: momentum_252
  kind: rank
  description: Percentile rank (0..1) of momentum_252 among the exchange's symbols on the session.
- name: momentum_252_zscore
  family: cross_section
  versions: [2]
  of: momentum_252
  kind: zscore
  description: Cross-sectional z-score of momentum_252 among the exchange's symbols on the session.
- name: return_20_rank
  range: [0, 1]
  family: cross_section
  versions: [2]
  of: return_20
  kind: rank
  description: Percentile rank of return_20 on the session.
- name: volatility_20_rank
  range: [0, 1]
  family: cross_section
  versions: [2]
  of: volatility_20
  kind: rank
  description: Percentile rank of volatility_20 on the session.
- name: volatility_20_zscore
  family: cross_section
  versions: [2]
  of: volatility_20
  kind: zscore
  description: Cross-sectional z-score of volatility_20 on the session.
- name: adv_20_rank
  range: [0, 1]
  family: cross_section
  versions: [2]
  of: adv_20
  kind: rank
  description: Percentile rank of adv_20 (liquidity) on the session.
{% endset %}
{{ return(fromyaml(catalog)) }}
{% endmacro %}


{# The catalog's entries carried by one feature-set version, in catalog order. #}
{% macro mwh_features_of_version(version) %}
    {%- set selected = [] -%}
    {%- for feature in mwh_feature_catalog() if version in feature.versions -%}
        {%- do selected.append(feature) -%}
    {%- endfor -%}
    {{ return(selected) }}
{% endmacro %}
