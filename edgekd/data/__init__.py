"""Data sets from specs: ``fashion-mnist`` (default), ``digits``, ``basic-motions``, ``npz:PATH``, ``idx:DIR``,
``folder:DIR``.

``load_dataset(spec)`` loads, validates and splits the data deterministically into train / val /
test. No torch here: arrays are numpy (x float32, y int64).
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import ConfigError, DataError
from .folder import ImageOptions
from .image_rows import is_rows
from .checks import check_x, check_y, count_classes, split_indices, split_sizes, to_float32
from .idx import read_idx, read_idx_header, write_idx
from .specs import DEFAULT_SPEC, SCHEMES, UNLABELED, load_raw, parse_spec

if TYPE_CHECKING:
    from ..preprocess import Preprocess

__all__ = [
    "DEFAULT_SPEC",
    "Dataset",
    "ImageOptions",
    "UNLABELED",
    "list_builtin_specs",
    "load_dataset",
    "parse_spec",
    "read_idx",
    "read_idx_header",
    "write_idx",
]

log = logging.getLogger(__name__)
_ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A split data set. Treat the arrays as read-only: the fingerprint is cached."""

    spec: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple[str, ...]
    kind: str  # "image" (x is N×C×H×W), "sequence" (N×C×L, e.g. sensor channels × time) or "features" (N×F)
    teacher_view: "Dataset | None" = field(default=None, repr=False)  # paired data: the teacher's inputs, same rows
    preprocess: "Preprocess | None" = None  # image folders: how a raw image becomes x (None: x as stored)
    _fingerprint: str | None = field(default=None, init=False, repr=False)

    @property
    def n_unlabeled(self) -> int:
        """Training samples without a label (``y_train == UNLABELED``), added with ``--unlabeled``."""
        return int((self.y_train < 0).sum())

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. (1, 28, 28) or (F,)."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    def fingerprint(self) -> str:
        """sha256 hex of the content (arrays' dtypes, shapes and bytes, and the class count);
        independent of the spec string, so the same data from two specs hashes alike."""
        if self._fingerprint is None:
            h = hashlib.sha256(b"edgekd-dataset-v1")
            h.update(f"classes={self.num_classes}".encode())
            for name in _ARRAYS:
                arr = getattr(self, name)
                if is_rows(arr):  # ImageRows: the images' content, rows and contract, not their pixels
                    h.update(f"|{name}:rows:{arr.token()}|".encode())
                    continue
                arr = np.ascontiguousarray(arr)
                h.update(f"|{name}:{arr.dtype.str}:{arr.shape}|".encode())
                h.update(memoryview(arr).cast("B"))
            object.__setattr__(self, "_fingerprint", h.hexdigest())
        return self._fingerprint  # type: ignore[return-value]

    def calibration_samples(self, n: int, seed: int) -> np.ndarray:
        """``min(n, len(x_train))`` distinct training samples, the same for the same seed."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"calibration sample count must be a positive integer, got {n!r}", "pass n >= 1")
        k = min(int(n), len(self.x_train))
        idx = np.random.default_rng(seed).choice(len(self.x_train), size=k, replace=False)
        return self.x_train[idx]

    @property
    def is_lazy(self) -> bool:
        """Whether the splits are ImageRows read from the decode cache a batch at a time (image folders)."""
        return is_rows(self.x_train)

    def at_size(self, size: int) -> "Dataset":
        """The same rows with images resized to ``size`` (a candidate's input resolution; image folders only)."""
        self.require_images("--resolution")
        if size == self.preprocess.size:
            return self
        # the teacher keeps seeing the rows as it did (its outputs were computed on that view)
        return replace(self._viewed(self.preprocess.at_size(size)), teacher_view=self.teacher_view or self)

    def require_images(self, option: str) -> None:
        """ConfigError unless this is image-folder data (what ``option`` needs)."""
        if self.preprocess is None or not self.is_lazy:
            raise ConfigError(f"{option} needs image folder data (folder:DIR), not {self.spec!r}",
                              f"pass the images as folder:DIR, or drop {option}")

    def _viewed(self, pre: "Preprocess") -> "Dataset":
        """The same rows through contract ``pre``."""
        arrays = {n: getattr(self, n).with_preprocess(pre) for n in ("x_train", "x_val", "x_test")}
        return replace(self, preprocess=pre, **arrays)

    def for_shape(self, input_shape: tuple[int, ...]) -> "Dataset":
        """This data as a model with ``input_shape`` takes it (another square size: ``at_size``)."""
        shape = tuple(int(d) for d in input_shape)
        if shape == self.input_shape:
            return self
        if len(shape) == 3 and shape[1] == shape[2] and shape[0] == self.input_shape[0]:
            return self.at_size(shape[1])
        raise ConfigError(f"a model for samples of shape {shape} cannot take {self.spec}'s {self.input_shape}",
                          "pass the data the model was built for")

    def with_teacher_input(self, pre: "Preprocess") -> "Dataset":
        """The teacher sees the same rows through its own contract ``pre`` (size, mean/std, order, layout)."""
        self.require_images("--teacher-input")
        if pre.channels != self.preprocess.channels:
            raise ConfigError(f"the teacher takes {pre.channels}-channel images but the data is read with "
                              f"{self.preprocess.channels}", "pass --channels rgb or grey to match the teacher")
        return replace(self, teacher_view=replace(self._viewed(pre), teacher_view=None))

    def __repr__(self) -> str:
        return (
            f"Dataset(spec={self.spec!r}, kind={self.kind!r}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes}, train={len(self.x_train)}, val={len(self.x_val)}, "
            f"test={len(self.x_test)})"
        )


def list_builtin_specs() -> list[str]:
    """Specs that need no path (data sets edgekd knows by name)."""
    return [name for name in SCHEMES.names() if not SCHEMES.get(name).takes_arg]


def _check_options(seed: int, val_fraction: float, test_fraction: float, limit: int | None) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}", "pass e.g. seed=0")
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}", "pass e.g. 0.1")
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}", "pass e.g. 0.2")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ConfigError(f"limit must be a positive integer or None, got {limit!r}", "pass e.g. limit=1000")


def _cap(limit: int, fraction: float) -> int:
    """Size of a val/test set that keeps its ratio ``fraction`` to ``limit`` training samples."""
    return math.ceil(limit * fraction / (1.0 - fraction))


def _subset(idx: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``n`` of ``idx`` (stratified by ``labels[idx]``), in their original order."""
    return idx if len(idx) <= n else idx[split_indices(labels[idx], n, rng)[0]]


def load_dataset(
    spec: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    limit: int | None = None,
    unlabeled: str | None = None,
    images: "ImageOptions | None" = None,
    cache_dir: "Path | None" = None,
    progress: Callable[[str], None] | None = None,
) -> Dataset:
    """Load, validate and split the data named by ``spec``.

    The source's own test split is the test set when it has one; otherwise ``test_fraction`` of it
    is carved off (stratified when every class has 2+ samples). Then ``val_fraction`` of the rest
    becomes val. ``limit`` keeps at most that many training samples (a stratified subset) and caps
    val, and a test split carved from the data, in proportion (``ceil(limit * f / (1 - f))``), for fast runs;
    a test split the source supplies (npz ``x_test``, IDX t10k files) is kept whole, so accuracies stay
    measured on all of it. All choices come
    from ``numpy.random.default_rng(seed)``: the same seed gives identical arrays.

    ``unlabeled`` adds training inputs without labels (their ``y_train`` is ``UNLABELED``; distillation labels
    them with the teacher): ``"rest"`` = the training samples ``limit`` left out, or any data spec whose inputs
    (not its labels) are used. Validation and test stay labelled.

    ``images`` (``folder:`` data only): size, channels and what to do with unreadable files; the decoded pixels are
    kept under ``cache_dir`` (default: edgekd's cache folder) and the splits are lazy ``ImageRows`` views.
    """
    _check_options(seed, val_fraction, test_fraction, limit)
    if spec.strip().lower().startswith("paired:"):
        from .paired import load_paired

        data = load_paired(spec, lambda inner: load_dataset(inner, seed=seed, val_fraction=val_fraction,
                                                            test_fraction=test_fraction, limit=limit))
        left_out = None  # --unlabeled refuses paired data before asking for it
    else:
        data, left_out = _load_split(spec, seed, val_fraction, test_fraction, limit, images, cache_dir,
                                     progress or (lambda _m: None))
    if unlabeled is None:
        return data
    from .unlabeled import add_unlabeled

    return add_unlabeled(data, unlabeled, left_out)


def _load_split(spec: str, seed: int, val_fraction: float, test_fraction: float, limit: int | None,
                images: "ImageOptions | None", cache_dir: "Path | None",
                say: Callable[[str], None]) -> tuple[Dataset, Callable[[], np.ndarray]]:
    """``load_dataset`` for an unpaired spec, and a function giving the training inputs ``limit`` left out."""
    kind, arg = parse_spec(spec)
    if kind == "folder":
        return _load_folder_split(spec, arg, seed, val_fraction, test_fraction, limit, images, cache_dir, say)
    if images is not None and images != ImageOptions():
        raise ConfigError(f"--image-size, --channels and --skip-bad-images apply to folder: data, not {spec!r}",
                          "drop them, or pass the images as folder:DIR")
    raw = load_raw(spec)
    src = raw.source or spec
    x = check_x(raw.x, src, "x")
    y = check_y(raw.y, len(x), src, "y")
    x_test = y_test = None
    if raw.x_test is not None:
        x_test = check_x(raw.x_test, src, "x_test")
        y_test = check_y(raw.y_test, len(x_test), src, "y_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(
                f"{src}: x_test samples have shape {x_test.shape[1:]} but x samples have {x.shape[1:]}",
                "give train and test samples the same shape",
            )
    num_classes = count_classes(y, y_test, raw.class_names, src)
    test_x = x if x_test is None else x_test
    test_y = y if y_test is None else y_test
    train_idx, val_idx, test_idx, left_out = _split(y, y_test, num_classes, seed, val_fraction, test_fraction,
                                                    limit, src)
    x_tr = to_float32(x[train_idx])
    return Dataset(
        spec=spec,
        x_train=x_tr,
        y_train=y[train_idx],
        x_val=to_float32(x[val_idx]),
        y_val=y[val_idx],
        x_test=to_float32(test_x[test_idx]),
        y_test=test_y[test_idx],
        num_classes=num_classes,
        class_names=raw.class_names or tuple(str(i) for i in range(num_classes)),
        kind={4: "image", 3: "sequence"}.get(x_tr.ndim, "features"),
    ), lambda: to_float32(x[left_out])


def _split(y: np.ndarray, y_test: np.ndarray | None, num_classes: int, seed: int, val_fraction: float,
           test_fraction: float, limit: int | None, src: str) -> tuple[np.ndarray, ...]:
    """Row indices (train, val, test, left out by ``limit``): test into ``y_test`` when the source has its own."""
    rng = np.random.default_rng(seed)
    if y_test is None:
        n_test = split_sizes(len(y), test_fraction, "test", src, minimum_rest=2 if val_fraction > 0 else 1)
        test_idx, pool = split_indices(y, n_test, rng)
        test_y = y
    else:
        test_idx, pool = np.arange(len(y_test)), np.arange(len(y))
        test_y = y_test
    n_val = split_sizes(len(pool), val_fraction, "validation", src)
    val_sub, train_sub = split_indices(y[pool], n_val, rng)
    val_idx, train_idx = pool[val_sub], pool[train_sub]
    pool_train = train_idx
    if limit is not None and len(train_idx) > limit:
        train_idx = _subset(train_idx, y, int(limit), rng)
        val_idx = _subset(val_idx, y, _cap(limit, val_fraction), rng)
        if y_test is None:  # a test split carved from the data shrinks with it; the source's own stays whole
            test_idx = _subset(test_idx, test_y, _cap(limit, test_fraction), rng)
    missing = set(range(num_classes)) - set(np.unique(y[train_idx]).tolist())
    if missing:
        log.warning("%s: classes %s have no training samples", src, sorted(missing)[:10])
    return train_idx, val_idx, test_idx, np.setdiff1d(pool_train, train_idx)


def _load_folder_split(spec: str, arg: str, seed: int, val_fraction: float, test_fraction: float,
                       limit: int | None, images: "ImageOptions | None", cache_dir: "Path | None",
                       say: Callable[[str], None]) -> tuple[Dataset, Callable[[], np.ndarray]]:
    """An image folder, split like any data set, its splits lazy :class:`ImageRows` views of the decode cache."""
    from ..cache import default_cache_dir
    from ..preprocess import student_preprocess
    from .folder import load_folder
    from .image_rows import ImageRows
    from .specs import _existing

    directory = _existing(arg, "image folder", "folder:DIR", want_dir=True)
    fd = load_folder(directory, images or ImageOptions(), Path(cache_dir) if cache_dir else default_cache_dir(), say)
    pre = student_preprocess(fd.size, fd.store.channels)
    rows = ImageRows(fd.store, fd.train_rows, pre)
    y = fd.labels[fd.train_rows]
    y_test = None if fd.test_rows is None else fd.labels[fd.test_rows]
    src = str(directory)
    num_classes = count_classes(y, y_test, fd.class_names, src)
    train_idx, val_idx, test_idx, left_out = _split(y, y_test, num_classes, seed, val_fraction, test_fraction,
                                                    limit, src)
    test_rows = rows if fd.test_rows is None else ImageRows(fd.store, fd.test_rows, pre)
    test_y = y if y_test is None else y_test
    return Dataset(spec=spec, x_train=rows.take(train_idx), y_train=y[train_idx], x_val=rows.take(val_idx),
                   y_val=y[val_idx], x_test=test_rows.take(test_idx), y_test=test_y[test_idx],
                   num_classes=num_classes, class_names=fd.class_names, kind="image",
                   preprocess=pre), lambda: np.asarray(rows.take(left_out))
