"""The built-in teacher: a larger member of the conv/MLP families, trained by edgekd itself.

For Fashion-MNIST a checkpoint ships inside the package (``models/weights/``, made by
``benchmarks/make_default_teacher.py`` with the recipe below), so the default build needs no teacher
training. For any other data the teacher is trained on first use with the same recipe and cached under
the cache directory, keyed by the data's fingerprint and the recipe.
"""

from __future__ import annotations

from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from ..cache import content_key
from ..distill.config import DistillConfig
from ..fsio import atomic_path
from .students import StudentSpec, data_kind, default_family
from .teachers import Teacher, _torch_teacher

# width/depth of the teacher per data kind: several times the largest default student.
TEACHER_SIZE = {"image": (2.0, 2), "sequence": (2.0, 2), "features": (4.0, 2)}
TEACHER_TRAINING = DistillConfig(loss="ce", alpha=0.0, epochs=8, lr=3e-3, patience=3, batch_size=128)
SHIPPED = {"fashion-mnist": "fashion_mnist_teacher.pt"}


def teacher_spec(input_shape: tuple[int, ...], num_classes: int) -> StudentSpec:
    width, depth = TEACHER_SIZE[data_kind(input_shape)]
    return StudentSpec(default_family(input_shape), width, depth, tuple(input_shape), num_classes)


def default_teacher(data: Any, cache_dir: Path, *, epochs: int | None = None,
                    progress: Callable[[str], None] | None = None) -> tuple[Teacher, dict[str, Any]]:
    """The built-in teacher for ``data``: shipped, cached, or trained now (and cached)."""
    import torch

    from ..distill.trainer import train
    from .students import build_student

    say = progress or (lambda _m: None)
    spec = teacher_spec(data.input_shape, data.num_classes)
    config = replace(TEACHER_TRAINING, epochs=epochs or TEACHER_TRAINING.epochs)
    model = build_student(spec)
    if data.n_unlabeled:  # the teacher learns from labelled samples only (it is what labels the others)
        from dataclasses import replace as _replace

        keep = data.y_train >= 0
        data = _replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])
    shipped = _shipped_path(data.spec)
    if shipped is not None and epochs is None:
        model.load_state_dict(torch.load(shipped, map_location="cpu", weights_only=True))
        origin = f"shipped checkpoint {shipped.name}"
    else:
        key = content_key("teacher", data.fingerprint(), spec.as_dict(), config.as_dict())
        path = Path(cache_dir) / "teachers" / f"{spec.name}-{key}.pt"
        if path.is_file() and _load_cached(model, path, say):
            origin = f"cached {path}"
        else:
            say(f"training the default teacher {spec.name} on {data.spec} (first use; cached afterwards)")
            model = train(model, data, config, progress=lambda m: say("  teacher " + m)).model
            with atomic_path(path) as tmp:
                torch.save(model.state_dict(), tmp)
            origin = f"trained now, cached at {path}"
    teacher = _torch_teacher("default", model)
    teacher.outputs = "logits"
    return teacher, {"spec": spec.as_dict(), "origin": origin, "training": config.as_dict(),
                     "weights_sha256": state_dict_sha256(model)}


def _load_cached(model: Any, path: Path, say: Callable[[str], None]) -> bool:
    """Load cached teacher weights; a damaged cache file (truncated, corrupt) is reported and retrained."""
    import torch

    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return True
    except Exception as e:  # a cache entry is never trusted over retraining
        say(f"cached teacher {path} is unreadable ({type(e).__name__}); training it again")
        return False


def state_dict_sha256(model: Any) -> str:
    """Content hash of a module's weights (identifies a teacher for the teacher-output cache)."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _shipped_path(spec: str) -> Path | None:
    name = SHIPPED.get(spec)
    if name is None:
        return None
    entry = resources.files("edgekd.models.weights") / name
    return Path(str(entry)) if entry.is_file() else None
