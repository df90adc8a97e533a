{#
    Point-in-time guard for a training set: every label's horizon ends after the features' bar
    (horizon_end_ts_* > ts). A label that ends at or before its features' bar means the two were joined
    on the wrong time.
#}
{% test features_precede_labels(model, ts_column='ts') %}

select *
from {{ model }}
where
    horizon_end_ts_1 <= {{ ts_column }}
    or horizon_end_ts_5 <= {{ ts_column }}
    or horizon_end_ts_20 <= {{ ts_column }}

{% endtest %}
