{{
    config(
        indexes=mwh_indexes([{'columns': ['symbol', 'ts desc']}]),
    )
}}

{#
    Forward returns of daily bars: what a model is trained to predict. They look into the future by
    design, so they live apart from the features and only meet them in the training set. Returns use
    adjusted closes (dividends and splits included); the label of a bar is null until its horizon's bar
    exists. Rebuilt in full: a new bar completes the labels of the 20 bars before it.
#}

{{ forward_return_labels(ref('fct_bars_1d'), 'adj_close') }}
