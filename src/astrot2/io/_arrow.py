"""Small Arrow helpers shared by the survey readers: struct fields and list flattening."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["column", "list_points", "struct_child", "to_float", "to_str", "valid"]


def column(table: pa.Table, name: str) -> pa.Array | None:
    """The column ``name`` as one contiguous array, or None if the table lacks it."""
    if name not in table.column_names:
        return None
    col = table.column(name)
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def struct_child(arr: pa.Array | None, names: Sequence[str]) -> pa.Array | None:
    """The first child among ``names`` of a struct array that has a type, parent nulls applied.

    A field of Arrow type ``null`` (absent from every record) counts as missing, so an
    alias later in ``names`` can be used.  Returns None when ``arr`` is None, not a
    struct, or has none of the fields.
    """
    if arr is None or not pa.types.is_struct(arr.type):
        return None
    fields = {arr.type.field(i).name: i for i in range(arr.type.num_fields)}
    for name in names:
        i = fields.get(name)
        if i is not None and not pa.types.is_null(arr.type.field(i).type):
            return arr.flatten()[i]  # flatten applies the struct's own validity
    return None


def list_points(arr: pa.Array | None) -> tuple[np.ndarray, pa.Array | None]:
    """Flatten a list column: (owner row of each element, flat values).

    Null lists contribute nothing.  Returns ``(empty, None)`` when ``arr`` is None or an
    all-null column of type null.
    """
    if arr is None or pa.types.is_null(arr.type):
        return np.zeros(0, dtype=np.int64), None
    owner = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False).astype(np.int64)
    return owner, arr.flatten()


def to_float(arr: pa.Array | None, n: int) -> np.ndarray:
    """Numeric array as float64 with NaN for nulls; all-NaN of length ``n`` when absent."""
    if arr is None or pa.types.is_null(arr.type):
        return np.full(n, np.nan)
    if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
        arr = pc.cast(arr, pa.float64(), safe=False)
    return pc.cast(arr, pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)


def to_str(arr: pa.Array | None, n: int) -> np.ndarray:
    """Array as an object array of str ('' for nulls); integers print without '.0'."""
    if arr is None or pa.types.is_null(arr.type):
        return np.full(n, "", dtype=object)
    if pa.types.is_floating(arr.type):
        arr = pc.cast(arr, pa.int64(), safe=False)
    # to_pylist, not to_numpy: pyarrow converts string arrays to NumPy through pandas,
    # which would cost every process a pandas import (~0.2 s).
    return np.array(pc.cast(arr, pa.string()).fill_null("").to_pylist(), dtype=object)


def valid(arr: pa.Array) -> np.ndarray:
    """True where ``arr`` is not null, as a NumPy bool array (without pandas)."""
    return pc.cast(arr.is_valid(), pa.uint8()).to_numpy(zero_copy_only=False).astype(bool)
