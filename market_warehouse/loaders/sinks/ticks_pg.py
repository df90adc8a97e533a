"""The tick tables into PostgreSQL / TimescaleDB by binary COPY.

The server parses no text: a timestamp, a bigint or a double goes in as its 8 bytes, so the same rows
cost the server less than as CSV (measured in benchmarks/ticks.py, which COPYs both ways). The rows
are encoded column by column with numpy, not row by row in Python: every cell's bytes are written at
its place in one buffer (see `encode_binary`).

`BinaryCopyTransaction` is the sink's transaction with its COPY (`copy`: used by `append` and `stage`) in binary:
the merge itself (optimistic COPY under a savepoint, else stage, count, replace, insert) is the
sinks' shared one, so the guarantees are the same as every other table's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from market_warehouse.loaders.schema import Table
from market_warehouse.loaders.sinks.postgres_sink import PostgresTransaction

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_EPOCH_2000_US = 946_684_800_000_000  # PostgreSQL's timestamps count microseconds from 2000-01-01
_FIXED = {"bigint": ">i8", "integer": ">i4", "double": ">f8", "timestamp": ">i8", "boolean": "u1"}


def _fixed_cells(kind: str, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(is null, the values as big-endian bytes, one row each) of a fixed-width column."""
    if kind == "timestamp":
        if not pd.api.types.is_datetime64_any_dtype(values):
            values = pd.to_datetime(values, utc=True)
        null = values.isna().to_numpy()
        ns = values.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view("int64")  # UTC, or naive as UTC
        if (ns[~null] % 1000).any():
            raise ValueError(f"column {values.name}: a time finer than a microsecond (the databases keep µs)")
        data = ns // 1000 - _EPOCH_2000_US
    elif kind == "double":
        data = pd.to_numeric(values).to_numpy(dtype="float64", na_value=np.nan)
        null = np.isnan(data)  # NaN is stored as null, as the CSV path (Arrow) writes it
    elif kind == "boolean":
        null = values.isna().to_numpy()
        data = values.to_numpy(dtype="bool", na_value=False)
    else:
        null = values.isna().to_numpy()
        if values.dtype.kind in "iu":  # numpy or pandas' nullable integers: exact
            data = values.to_numpy(dtype="int64", na_value=0)
        else:
            number = pd.to_numeric(values).to_numpy(dtype="float64", na_value=np.nan)
            if not (np.isfinite(number[~null]).all() and (number[~null] == np.round(number[~null])).all()):
                raise ValueError(f"column {values.name}: a value is not a whole number")
            data = np.where(null, 0, number).astype("int64")
        if kind == "integer" and ((data < -2**31) | (data >= 2**31)).any():
            raise ValueError(f"column {values.name}: a value is out of the integer range")
    width = np.dtype(_FIXED[kind]).itemsize
    return null, np.ascontiguousarray(data.astype(_FIXED[kind])).view("u1").reshape(len(values), width)


def _bytes_array(cells: np.ndarray, keep: np.ndarray | None = None) -> pa.Array:
    """Rows of a (rows, width) byte matrix as one large_binary value each; with `keep` (rows, width) a
    mask of the bytes each row keeps (a null cell keeps only its length)."""
    n, width = cells.shape
    if keep is None:
        fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(cells)])
        return fixed.cast(pa.large_binary())
    offsets = np.zeros(n + 1, dtype="int64")
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets),
                                                                 pa.py_buffer(cells[keep])])


def _lengths(null: np.ndarray, size) -> np.ndarray:
    """Each cell's 4-byte big-endian length (-1: null), one row each."""
    return np.where(null, -1, size).astype(">i4").view("u1").reshape(len(null), 4)


def encode_binary(table: Table, frame: pd.DataFrame) -> list:
    """`frame` (the table's columns) as a whole COPY ... (format binary) stream, in pieces to write in
    order: header, one tuple per row (field count, then per field its length, -1 for null, and its
    bytes), trailer. Each column's cells are built as one array of byte strings (fixed-width columns
    side by side in one matrix) and Arrow joins them row by row in C++."""
    n, columns = len(frame), table.columns
    pieces: list[pa.Array] = []
    block = [np.full((n, 1), len(columns) >> 8, "u1"), np.full((n, 1), len(columns) & 0xFF, "u1")]

    def flush():
        if block:
            pieces.append(_bytes_array(np.ascontiguousarray(np.hstack(block))))
            block.clear()

    for col in columns:
        kind = col.type
        if kind in _FIXED:
            null, fixed = _fixed_cells(kind, frame[col.name])
            cells = np.hstack([_lengths(null, fixed.shape[1]), fixed])
            if not null.any():
                block.append(cells)
                continue
            flush()
            keep = np.ones(cells.shape, dtype=bool)
            keep[null, 4:] = False
            pieces.append(_bytes_array(cells, keep))
        elif kind == "text":
            text = pa.array(frame[col.name], type=pa.large_string(), from_pandas=True)
            if isinstance(text, pa.ChunkedArray):
                text = text.combine_chunks()
            null = text.is_null().to_numpy(zero_copy_only=False)
            size = pc.binary_length(text).to_numpy(zero_copy_only=False)
            block.append(_lengths(null, np.nan_to_num(size).astype("int64")))
            flush()
            pieces.append(pc.fill_null(text, "").cast(pa.large_binary()))
        else:
            raise ValueError(f"binary COPY: column {col.name} of type {kind} is not supported")
    flush()
    rows = pc.binary_join_element_wise(*pieces, pa.scalar(b"", pa.large_binary())) if n else None
    if rows is None:
        return [HEADER, TRAILER]
    offsets = np.frombuffer(rows.buffers()[1], dtype="int64")[rows.offset:rows.offset + n + 1]
    return [HEADER, rows.buffers()[2][int(offsets[0]):int(offsets[-1])], TRAILER]


def copy_binary(cur: psycopg.Cursor, target: str, table: Table, frame: pd.DataFrame) -> None:
    with cur.copy(f"copy {target} ({', '.join(table.column_names)}) from stdin (format binary)") as copy:
        for piece in encode_binary(table, frame[table.column_names]):
            copy.write(piece)


class BinaryCopyTransaction(PostgresTransaction):
    """A PostgreSQL transaction whose COPYs (the optimistic append and the merge's stage) are binary;
    everything else (the merge, counts, history, the savepoint, the stage table) is
    `PostgresTransaction`'s. Opened on the connection of a transaction already running: its writes are
    part of it."""

    def copy(self, target: str, table: Table, frame: pd.DataFrame, encoded: object = None) -> None:
        copy_binary(self.cur, target, table, frame)


def binary_copies(tx):
    """`tx` with binary COPYs when its sink says it can take them (the transaction's `binary_copy`,
    set by `PostgresTransaction`); any other sink's transaction (DuckDB, Spark, one that does not
    say) as it is."""
    if not getattr(tx, "binary_copy", False) or isinstance(tx, BinaryCopyTransaction):
        return tx
    return BinaryCopyTransaction(tx.conn)
