{#
    OHLC invariants of a bar (mwh_bar_is_valid: prices positive, low <= open/close <= high, volume not
    negative). Fails with every bar that breaks one.
#}
{% test ohlc_is_consistent(model, open='open', high='high', low='low', close='close', volume='volume') %}

select *
from {{ model }}
where not {{ mwh_bar_is_valid(open, high, low, close, volume, ts=none) }}

{% endtest %}
