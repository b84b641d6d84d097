"""Unlabelled training inputs (``--unlabeled``): a transfer set for distillation.

A teacher is often trained on more data than the product team can label for the student. Distillation needs no
labels on its transfer set (Hinton et al. 2015, section 2: the soft targets carry the teacher's knowledge), so
unlabelled inputs of the same kind are added to the training split with the label ``UNLABELED`` (-1). The trainer
gives each such sample the teacher's top class as its hard label (so every loss's hard-label term is defined) and
its soft targets as usual; a method that needs real labels on every sample refuses them. Validation and test stay
labelled: early stopping and every reported accuracy use real labels only.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from typing import Callable

import numpy as np

from ..errors import ConfigError, DataError

REST = "rest"
log = logging.getLogger(__name__)


def add_unlabeled(data, spec: str, left_out: Callable[[], np.ndarray]):
    """``data`` with unlabelled inputs appended to its training split (see the module docstring)."""
    from .specs import UNLABELED, load_raw
    from .checks import check_x, to_float32

    text = spec.strip()
    if not text:
        raise ConfigError("--unlabeled is empty", "pass 'rest' (the samples --limit left out) or a data spec")
    if data.is_lazy:
        raise ConfigError("--unlabeled with image folders (folder:DIR) is not supported yet (the training split is "
                          "read from the decode cache a batch at a time, not held in memory)",
                          "put the unlabelled photos in the folder under their predicted class, or drop --unlabeled")
    if data.teacher_view is not None:
        raise ConfigError("--unlabeled with paired data is not supported (the teacher's view of the extra inputs "
                          "is unknown)", "drop --unlabeled, or use an unpaired data spec")
    if text.lower() == REST:
        x = left_out()
        if len(x) == 0:
            raise ConfigError("--unlabeled rest: --limit left no training sample out",
                              "pass a --limit below the training set's size, or another --unlabeled data spec")
        source = "the training samples --limit left out"
    else:
        raw = load_raw(text)
        x = to_float32(check_x(raw.x, raw.source or text, "x"))
        source = raw.source or text
    if x.shape[1:] != data.x_train.shape[1:]:
        raise DataError(f"--unlabeled {source}: samples have shape {x.shape[1:]}, the labelled data "
                        f"{data.x_train.shape[1:]}", "give unlabelled inputs of the same shape and scaling")
    x = _without_held_out(x, data, source)
    out = replace(data, x_train=np.concatenate([data.x_train, x]).astype(np.float32, copy=False),
                  y_train=np.concatenate([data.y_train, np.full(len(x), UNLABELED, dtype=data.y_train.dtype)]))
    return out  # its fingerprint covers the added inputs and their UNLABELED marks


def _without_held_out(x: np.ndarray, data, source: str) -> np.ndarray:
    """``x`` less any input identical to a validation or test sample (training on those, even unlabelled, would
    leak the held-out sets into the student and inflate every accuracy reported on them) or to a labelled training
    sample (it is there already)."""
    def digests(rows: np.ndarray) -> list[bytes]:
        return [hashlib.sha1(np.ascontiguousarray(r).tobytes()).digest() for r in rows]

    held = set(digests(data.x_val)) | set(digests(data.x_test))
    labelled = set(digests(data.x_train))
    mine = digests(x)
    is_held = np.array([d in held for d in mine], dtype=bool)
    keep = ~is_held & np.array([d not in labelled for d in mine], dtype=bool)
    if is_held.any():
        log.warning("--unlabeled %s: %d inputs are validation or test samples and were left out", source,
                    int(is_held.sum()))
    if not keep.any():
        raise DataError(f"--unlabeled {source}: every input is already a labelled, validation or test sample",
                        "pass inputs the student is not trained or evaluated on, e.g. 'rest' with --limit")
    return x[keep]
