{{ config(tags=['microstructure']) }}

{#- The book's data-quality events, for analysts: when the book was (re)built and when it broke. -#}

select
    ts,
    symbol,
    exchange,
    event,
    update_id,
    expected_prev_update_id,
    prev_update_id,
    diffs_affected,
    event in ('gap', 'no_straddle', 'unsynced') as is_break,
    detail,
    load_source
from {{ ref('stg_microstructure__book_sequence_events') }}
