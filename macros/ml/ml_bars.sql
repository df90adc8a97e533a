{#
    Bar time arithmetic of the ML models. A bar labelled `ts` stands for its whole interval:
    [ts, ts + interval). Intraday bars are labelled with their UTC open time, daily and weekly bars with
    their session date at 00:00 UTC, so a daily bar covers its UTC date. Hours, not days, so the result
    does not depend on the session time zone.
#}

{% macro mwh_ml_bar_end(ts, bar_interval) -%}
    case {{ bar_interval }}
        when '1m' then {{ ts }} + interval '1 minute'
        when '5m' then {{ ts }} + interval '5 minutes'
        when '15m' then {{ ts }} + interval '15 minutes'
        when '30m' then {{ ts }} + interval '30 minutes'
        when '1h' then {{ ts }} + interval '1 hour'
        when '1d' then {{ ts }} + interval '24 hours'
        when '1wk' then {{ ts }} + interval '168 hours'
    end
{%- endmacro %}
