{{ mwh_feature_model_config() }}

{#
    Hourly features, version 1, on traded (unadjusted) hourly prices; the catalog's version-1 entries (macros/market/mwh_feature_catalog.sql).
    Windows count bars, not clock hours: 20 bars of a 24/7 pair are 20 hours, of an equity about three
    sessions.
#}

{{ mwh_market_features(
    ref('fct_bars_1h'),
    {
        'open': 'open',
        'high': 'high',
        'low': 'low',
        'close': 'close',
        'volume': 'volume',
        'vwap': 'vwap',
        'traded_close': 'close',
        'traded_volume': 'volume',
        'pit_price_factor': '1',
    },
    1
) }}
