{#
    Completeness against the trading calendar: fails with one row per (symbol, session) that has bars
    missing between the symbol's first and last bar, naming the symbol, the session date, how many bars
    are missing and the first and last missing bar time. See macros/market/completeness.sql.
#}
{% test no_missing_sessions(model, bar_interval, interval_column=none) %}

{{ missing_sessions(model, bar_interval, interval_column) }}

{% endtest %}
