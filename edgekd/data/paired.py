"""Paired data for cross-modal distillation: the teacher and the student see different inputs of each sample.

``paired:VIEW:SPEC`` loads ``SPEC`` (any data spec) as the teacher's view and derives the student's view:

* ``lowres`` (or ``lowres4``...): images average-pooled by 2 (or the given factor): a low-resolution camera.
* ``channels=0,2``: only the listed input channels (e.g. fewer sensor channels on the device).

``paired:npz:PATH`` reads an .npz with the student's inputs as ``x`` (``x_test``) and the teacher's as
``x_teacher`` (``x_teacher_test``), rows paired, labels ``y`` (``y_test``).
Both views share labels, splits and row order; the returned Dataset is the student's, with the teacher's
as its ``teacher_view``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np

from ..errors import DataError

USAGE = "paired:lowres:SPEC, paired:channels=0,1:SPEC or paired:npz:PATH"


def load_paired(spec: str, load: Callable[[str], Any]) -> Any:
    rest = spec.strip()[len("paired:"):]
    view, _, inner = rest.partition(":")
    view = view.strip().lower()
    if view == "npz":
        return _npz(inner, load)
    if not inner:
        raise DataError(f"paired data spec {spec!r} lacks the data it pairs", f"write {USAGE}")
    teacher = load(inner)
    if view.startswith("lowres"):
        factor = int(view[len("lowres"):] or 2)
        if teacher.kind != "image" or factor < 2 or any(d % factor for d in teacher.input_shape[1:]):
            raise DataError(f"{spec}: lowres needs images whose sides divide by {factor}, got {teacher.input_shape}",
                            "use a factor that divides the image size (lowres2, lowres4)")
        fn = lambda x: _pool(x, factor)  # noqa: E731
    elif view.startswith("channels="):
        try:
            keep = [int(c) for c in view[len("channels="):].split(",")]
        except ValueError:
            raise DataError(f"bad channel list in {spec!r}", "write channels=0,1,2") from None
        if teacher.kind == "features" or not keep or max(keep) >= teacher.input_shape[0] or min(keep) < 0:
            raise DataError(f"{spec}: channels {keep} do not exist in samples of shape {teacher.input_shape}",
                            f"pick channels in 0..{teacher.input_shape[0] - 1}")
        fn = lambda x: np.ascontiguousarray(x[:, keep])  # noqa: E731
    else:
        raise DataError(f"unknown paired view {view!r} in {spec!r}", f"write {USAGE}")
    student = replace(teacher, spec=spec, x_train=fn(teacher.x_train), x_val=fn(teacher.x_val),
                      x_test=fn(teacher.x_test), teacher_view=teacher)
    return student


def _pool(x: np.ndarray, f: int) -> np.ndarray:
    n, c, h, w = x.shape
    return np.ascontiguousarray(x.reshape(n, c, h // f, f, w // f, f).mean(axis=(3, 5)), dtype=np.float32)


def _npz(path: str, load: Callable[[str], Any]) -> Any:
    import tempfile
    from pathlib import Path

    try:
        with np.load(Path(path).expanduser(), allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read paired npz {path} ({e})", "save it with numpy.savez(x=..., x_teacher=..., y=...)")
    for k in ("x", "x_teacher", "y"):
        if k not in arrays:
            raise DataError(f"paired npz {path} has no array {k!r}", "save x (student), x_teacher and y")
    if len(arrays["x"]) != len(arrays["x_teacher"]):
        raise DataError(f"paired npz {path}: x has {len(arrays['x'])} rows, x_teacher {len(arrays['x_teacher'])}",
                        "pair every student input with one teacher input")
    with tempfile.TemporaryDirectory() as tmp:  # each view as a plain npz, split alike (same labels, same seed)
        specs = []
        for who, key in (("student", "x"), ("teacher", "x_teacher")):
            p = Path(tmp) / f"{who}.npz"
            extra = {"x_test": arrays[f"{key}_test"], "y_test": arrays["y_test"]} if f"{key}_test" in arrays else {}
            np.savez(p, x=arrays[key], y=arrays["y"], **extra)
            specs.append(load(f"npz:{p}"))
    student, teacher = specs
    return replace(student, spec=f"paired:npz:{path}", teacher_view=teacher)
