{{
    config(
        indexes=mwh_indexes([{'columns': ['symbol', 'ts desc']}]),
    )
}}

{# Forward returns of hourly bars (traded prices); see fct_labels_daily. #}

{{ forward_return_labels(ref('fct_bars_1h'), 'close') }}
