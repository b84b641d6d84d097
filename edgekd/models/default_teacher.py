"""The built-in teacher: a larger member of the conv/MLP families, trained by edgekd itself.

For Fashion-MNIST a checkpoint ships inside the package (``models/weights/``, made by
``benchmarks/make_default_teacher.py`` with the recipe below), so the default build needs no teacher
training. For any other data the teacher is trained on first use with the same recipe and cached under
the cache directory, keyed by the data's fingerprint and the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..cache import content_key
from ..distill.config import DistillConfig
from ..fsio import atomic_path
from .students import FAMILY_FOR_KIND, StudentSpec, data_kind, default_family
from .teachers import Teacher, torch_teacher

if TYPE_CHECKING:
    from ..data import Dataset

# width/depth of the teacher per data kind: several times the largest default student.
TEACHER_SIZE = {"image": (2.0, 2), "sequence": (2.0, 2), "features": (4.0, 2)}
# the built-in teacher's recipe is fixed (teachers trained and cached before issue 19 trained contiguous)
TEACHER_TRAINING = DistillConfig(loss="ce", alpha=0.0, epochs=8, lr=3e-3, patience=3, batch_size=128,
                                 channels_last=False)
SHIPPED = {"fashion-mnist": "fashion_mnist_teacher.pt"}


def teacher_spec(input_shape: tuple[int, ...], num_classes: int) -> StudentSpec:
    kind = data_kind(input_shape)
    width, depth = TEACHER_SIZE[kind]
    # plain conv nets train fastest on a CPU; at real resolution too (a stride-2 stem keeps compute small)
    return StudentSpec(FAMILY_FOR_KIND.get(kind) or default_family(input_shape), width, depth, tuple(input_shape),
                       num_classes)


@dataclass(frozen=True)
class DefaultTeacher:
    """Where the built-in teacher came from."""

    spec: dict[str, Any]  # its StudentSpec
    origin: str  # "shipped checkpoint ...", "cached ...", or "trained now, cached at ..."
    training: dict[str, Any]  # the DistillConfig it was (or would be) trained with
    weights_sha256: str  # content hash of its weights (identifies it for the teacher-output cache)


def default_teacher(data: "Dataset", cache_dir: Path, *, epochs: int | None = None,
                    progress: Callable[[str], None] | None = None) -> tuple[Teacher, DefaultTeacher]:
    """The built-in teacher for ``data``: shipped, cached, or trained now (and cached)."""
    import torch

    from ..distill.trainer import train
    from .students import build_student

    say = progress or (lambda _m: None)
    spec = teacher_spec(data.input_shape, data.num_classes)
    config = replace(TEACHER_TRAINING, epochs=epochs or TEACHER_TRAINING.epochs)
    torch.manual_seed(config.seed)  # the same initial weights in every process (torch seeds itself at random)
    model = build_student(spec)
    if data.n_unlabeled:  # the teacher learns from labelled samples only (it is what labels the others)
        from dataclasses import replace as _replace

        keep = data.y_train >= 0
        data = _replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])
    shipped = shipped_path(data.spec)
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
    teacher = torch_teacher("default", model)
    teacher.outputs = "logits"
    return teacher, DefaultTeacher(spec.as_dict(), origin, config.as_dict(), state_dict_sha256(model))


def load_shipped_teacher(spec: str, input_shape: tuple[int, ...], num_classes: int) -> Teacher | None:
    """The teacher shipped for data spec ``spec`` without any data (``--data none``); None when none ships."""
    import torch

    from .students import build_student

    path = shipped_path(spec)
    if path is None:
        return None
    model = build_student(teacher_spec(input_shape, num_classes))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    teacher = torch_teacher("default", model)
    teacher.outputs = "logits"
    return teacher


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


def shipped_path(spec: str) -> Path | None:
    """The teacher checkpoint shipped inside the package for data spec ``spec`` (None: none ships)."""
    name = SHIPPED.get(spec)
    if name is None:
        return None
    entry = resources.files("edgekd.models.weights") / name
    return Path(str(entry)) if entry.is_file() else None
