"""Validation of loaded arrays and the deterministic, stratified train/val/test split."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


MAX_CLASSES = 10_000  # labels are class indices 0..K-1; more classes than this is a data error, not a classifier


def check_x(x: object, source: str, name: str = "x") -> np.ndarray:
    """Samples must be numeric N×C×H×W (images), N×C×L (sequences) or N×F (features), non-empty and finite. Floats become float32;
    integer arrays are kept (uint8 is scaled by 1/255 later, see ``to_float32``)."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise DataError(f"{source}: {name} has dtype {x.dtype}, not numbers", f"store {name} as a float array")
    if x.ndim not in (2, 3, 4):
        raise DataError(
            f"{source}: {name} has shape {x.shape} ({x.ndim}-D); expected N×C×H×W images (4-D), "
            "N×C×L sequences (3-D) or N×F features (2-D)", "reshape the samples to one of those layouts"
        )
    if len(x) == 0 or x.size == 0:
        raise DataError(f"{source}: {name} is empty (shape {x.shape})", "provide at least a few samples")
    if x.dtype.kind == "f":
        if x.dtype != np.float32:
            with np.errstate(over="ignore", invalid="ignore"):
                x = x.astype(np.float32)
        finite = np.isfinite(x)
        if not finite.all():
            n_nan = int(np.isnan(x).sum())
            n_inf = int(x.size - finite.sum()) - n_nan
            raise DataError(
                f"{source}: {name} holds {n_nan} NaN and {n_inf} inf values (after conversion to float32)",
                "drop or impute those samples before loading",
            )
    return x


def check_y(y: object, n: int, source: str, name: str = "y") -> np.ndarray:
    """Labels: one non-negative integer class index per sample → int64."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        fix = "store class indices, e.g. y.argmax(1) for one-hot rows" if y.ndim == 2 else "store a 1-D label array"
        raise DataError(f"{source}: {name} has shape {y.shape}; expected one label per sample", fix)
    if len(y) != n:
        xname = name.replace("y", "x")
        raise DataError(
            f"{source}: {xname} has {n} samples but {name} has {len(y)} labels",
            f"give {xname} and {name} the same length",
        )
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    elif y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (np.round(y) != y)
        if bad.any():
            raise DataError(
                f"{source}: {name} holds {int(bad.sum())} non-integer labels (e.g. {float(y[bad][0])!r})",
                "store integer class indices 0..K-1",
            )
        if len(y) and float(np.abs(y).max()) > MAX_CLASSES:  # would also overflow int64 beyond 2**63
            raise DataError(f"{source}: {name} holds label {float(y[np.abs(y).argmax()]):g}, not a class index",
                            f"store class indices 0..K-1 (K at most {MAX_CLASSES})")
    elif y.dtype.kind not in "iu":
        raise DataError(
            f"{source}: {name} has dtype {y.dtype}, not integer labels", "store integer class indices 0..K-1"
        )
    if y.dtype.kind in "if" and (y < 0).any():  # float labels too (-1.0 would read as an unlabelled sample)
        neg = y[y < 0]
        raise DataError(
            f"{source}: {name} holds {len(neg)} negative labels (e.g. {int(neg[0])})",
            "store class indices 0..K-1",
        )
    return y.astype(np.int64)


def count_classes(y: np.ndarray, y_test: np.ndarray | None, names: tuple[str, ...] | None, source: str) -> int:
    """num_classes = len(names) when the source names its classes, else max label + 1 (over train
    and test). Every label must be in range and the training source must hold 2+ classes."""
    top = int(y.max()) if y_test is None or len(y_test) == 0 else int(max(y.max(), y_test.max()))
    if names is not None:
        if top >= len(names):
            raise DataError(
                f"{source}: label {top} is out of range for {len(names)} class names",
                "give one class name per label 0..K-1",
            )
        num_classes = len(names)
    else:
        num_classes = top + 1
    if num_classes > MAX_CLASSES:  # e.g. raw ids instead of indices: a student with that many outputs is no use
        raise DataError(f"{source}: label {top} would make {num_classes} classes (at most {MAX_CLASSES})",
                        "re-number the labels as class indices 0..K-1, e.g. np.unique(y, return_inverse=True)[1]")
    present = np.unique(y)
    if len(present) < 2:
        raise DataError(
            f"{source}: the data has fewer than 2 classes (only label {int(present[0])})",
            "a classifier needs samples of at least 2 classes",
        )
    return num_classes


def split_indices(y: np.ndarray, n_take: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``n_take`` of ``len(y)`` samples: (taken, rest), each sorted.

    Stratified when every class present has at least 2 samples: each class gives about its share,
    by ranking samples within their class at random and taking the lowest (rank + 0.5) / count.
    Otherwise a plain random pick.
    """
    n = len(y)
    perm = rng.permutation(n)
    counts = np.bincount(y) if n else np.zeros(0, dtype=np.int64)
    if n and (counts[counts > 0] >= 2).all():
        yp = y[perm]
        order = np.argsort(yp, kind="stable")
        sorted_labels = yp[order]
        rank = np.arange(n) - np.searchsorted(sorted_labels, sorted_labels, side="left")
        key = np.empty(n)
        key[order] = (rank + 0.5) / counts[sorted_labels]
        chosen = perm[np.argsort(key, kind="stable")[:n_take]]
    else:
        chosen = perm[:n_take]
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    return np.flatnonzero(mask), np.flatnonzero(~mask)


def split_sizes(n: int, fraction: float, what: str, source: str, *, minimum_rest: int = 1) -> int:
    """How many of ``n`` samples ``fraction`` takes (at least 1 when fraction > 0); checks that
    ``minimum_rest`` samples remain (1 for training, +1 when a validation set follows)."""
    take = max(1, int(round(n * fraction))) if fraction > 0 else 0
    if n - take < minimum_rest:
        rest = "training" if minimum_rest == 1 else "training and validation"
        raise DataError(
            f"{source}: only {n} samples, too few to split off a {what} fraction of {fraction:g} "
            f"and keep {minimum_rest} for {rest}",
            "provide more samples or lower the fraction",
        )
    return take


def to_float32(x: np.ndarray) -> np.ndarray:
    """uint8 → float32 in [0, 1]; other numbers → float32 unchanged."""
    if x.dtype == np.uint8:
        out = x.astype(np.float32)
        out /= 255.0
        return out
    return np.ascontiguousarray(x, dtype=np.float32)
