"""Teacher outputs computed once per (teacher, data) and reused across epochs, students and runs.

Valid only while nothing changes the inputs between epochs (with ``--augment`` the teacher runs per batch
instead); the key is the teacher's identity (file hash or built-in recipe) and the fingerprint of the inputs it
sees (its own view of the rows when the data carries one).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..cache import content_key
from ..fsio import atomic_path

if TYPE_CHECKING:
    from ..models.teachers import Teacher
    from ..data import Dataset


def cached_teacher_logits(teacher: "Teacher", teacher_id: str, data: "Dataset", cache_dir: Path | None, *,
                          split: str = "train", progress: Callable[[str], None] | None = None,
                          fast: bool = False) -> np.ndarray:
    """The teacher's logits on ``data.x_<split>`` (aligned row for row), from the cache when present; ``fast``:
    through the teacher's channels-last path where it has one (``Teacher.logits``; other float sums, its own
    cache entry)."""
    say = progress or (lambda _m: None)
    view = data.teacher_view or data  # the teacher's own inputs for the same rows, when it has a contract
    x = {"train": view.x_train, "val": view.x_val, "test": view.x_test}[split]
    fast = fast and teacher.run_fast is not None
    key = content_key("teacher-logits", teacher_id, teacher.outputs, view.fingerprint(), split,
                      *(["channels-last"] if fast else []))
    path = Path(cache_dir) / "teacher-logits" / f"{key}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):  # a damaged cache entry is recomputed, never trusted
            z = np.zeros(0)
        if z.shape == (len(x), data.num_classes) and np.isfinite(z).all():
            say(f"teacher outputs ({split}): reused from cache ({path.name})")
            return z
    say(f"teacher outputs ({split}): computing on {len(x)} samples (once; cached)")
    z = teacher.logits(x, fast=True) if fast else teacher.logits(x)
    if path is not None and z.shape == (len(x), data.num_classes):
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, z, allow_pickle=False)
    return z
