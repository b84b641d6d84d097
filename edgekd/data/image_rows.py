"""Rows of a decoded image folder, seen as a float32 array of model inputs, a batch at a time.

:class:`ImageRows` stands where a ``Dataset`` holds an ndarray: ``len``, ``shape``, ``dtype``, slicing and
integer-array indexing return float32 ndarrays (read from the decode cache, then the :class:`Preprocess`
applied), ``take`` returns another view without reading anything, and ``np.asarray`` materialises it (only for
small splits). So a 50,000-photo folder costs one batch of memory, not the data set as float32.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..preprocess import Preprocess
    from .image_store import ImageStore


class ImageRows:
    """``rows`` of ``store`` at ``pre.size``, as ``pre`` makes them model inputs (see the module's doc)."""

    dtype = np.dtype(np.float32)

    def __init__(self, store: "ImageStore", rows: np.ndarray, pre: "Preprocess") -> None:
        self.store, self.rows, self.pre = store, np.asarray(rows, dtype=np.int64), pre

    # array protocol -----------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        c, h, w = self.store.row_shape(self.pre.size)
        return (len(self.rows), c, h, w) if self.pre.layout == "NCHW" else (len(self.rows), h, w, c)

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.pre.apply(self.raw(self.rows[[int(key)]]))[0]
        if isinstance(key, tuple):  # x[idx, ...]: rows only
            return self[key[0]][(slice(None), *key[1:])]
        sel = self.rows[key]
        return self.pre.apply(self.raw(sel))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    # views ---------------------------------------------------------------------------------------------------
    def raw(self, store_rows: np.ndarray) -> np.ndarray:
        """uint8 N x C x S x S pixels of store rows (not view rows)."""
        return self.store.pixels(self.pre.size).read(store_rows)

    def raw_rows(self, key: Any) -> np.ndarray:
        """uint8 pixels of view rows ``key`` (before the contract's normalisation)."""
        return self.raw(self.rows[key])

    def take(self, idx: np.ndarray) -> "ImageRows":
        return ImageRows(self.store, self.rows[np.asarray(idx, dtype=np.int64)], self.pre)

    def with_preprocess(self, pre: "Preprocess") -> "ImageRows":
        return ImageRows(self.store, self.rows, pre)

    def paths(self, key: Any) -> list[str]:
        """The image files behind view rows ``key``."""
        return [self.store.files[int(i)].path for i in np.atleast_1d(self.rows[key])]

    def token(self) -> str:
        """Identifies the content (images, rows, contract) for a data fingerprint without reading pixels."""
        h = hashlib.sha256(f"{self.store.key}|{self.pre.to_json()}|".encode())
        h.update(self.rows.tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        return f"ImageRows({len(self)} images of {self.store.root}, {self.pre.describe()})"


def is_rows(x: Any) -> bool:
    return isinstance(x, ImageRows)


def batchable(x: Any) -> Any:
    """``x`` as something sliceable into float batches: an ImageRows stays lazy, anything else is an ndarray."""
    return x if isinstance(x, ImageRows) else np.asarray(x)


BATCH_ELEMENTS = 2**22  # input numbers per inference batch (16 MB of float32): 512 at 28x28, 151 at 3x96x96, 27 at 224


def inference_batch(sample_shape: tuple[int, ...], default: int) -> int:
    """A batch size for running a model over a split: ``default`` for small samples, fewer for large ones, so the
    activations of one batch stay bounded (at 96 px a MobileNetV2 holds ~3 MB of activations a sample)."""
    numel = 1
    for d in sample_shape:
        numel *= max(1, int(d))
    return max(8, min(default, BATCH_ELEMENTS // numel))
