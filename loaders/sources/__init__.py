"""Where each vendor format is parsed: one module per format, each returning a ``ParsedBatch``
(typed rows, the original fields, line numbers and per-row parse errors). No database code here."""
