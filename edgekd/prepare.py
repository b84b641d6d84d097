"""Data and teacher(s), prepared the same way for ``edgekd build`` and ``edgekd distill``.

:func:`load_data` loads and splits a data spec (saying what it got); :func:`load_teachers` loads the teacher
files (or the built-in teacher for the data), checks each accepts the data and has its classes, and identifies
each for the teacher-output cache; :func:`teacher_outputs` gives a teacher's training-set outputs through that
cache and its test accuracy; :func:`build_inputs` does all three for a build.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .errors import TeacherError
from .fsio import sha256_file
from .records import TeacherInfo

if TYPE_CHECKING:
    from .build_config import BuildConfig
    from .data import Dataset, ImageOptions
    from .preprocess import Preprocess
    from .models.teachers import Teacher

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TeacherSource:
    """Which teacher(s): files, or none for edgekd's built-in teacher."""

    paths: tuple[str, ...] = ()  # .pt/.pt2/.onnx/.tflite files, or a student.json (a checkpoint as teacher)
    arch: str | None = None  # module:factory for a state_dict teacher
    outputs: str = "auto"  # "auto", "logits" or "probs"
    trust_pickle: bool = False  # DANGEROUS: unpickle torch files in full
    input: str | None = None  # the teacher's input contract (--teacher-input text; see edgekd.preprocess)


@dataclass(frozen=True)
class LoadedTeacher:
    teacher: "Teacher"
    info: TeacherInfo  # accuracy not yet measured


def load_data(spec: str, *, seed: int, limit: int | None, unlabeled: str | None, say: Progress,
              images: "ImageOptions | None" = None, cache_dir: Path | None = None) -> "Dataset":
    """Load and split ``spec``; say how many samples each split holds (and, for images, the input contract)."""
    from .data import load_dataset

    data = load_dataset(spec, seed=seed, limit=limit, unlabeled=unlabeled, images=images, cache_dir=cache_dir,
                        progress=say)
    unl = f" ({data.n_unlabeled} of them unlabelled: the teacher labels them)" if data.n_unlabeled else ""
    say(f"data: {len(data.x_train)} train{unl} / {len(data.x_val)} val / {len(data.x_test)} test, "
        f"{data.num_classes} classes, samples {data.input_shape}")
    if data.preprocess is not None:
        say(f"data: student input {data.preprocess.describe()}")
    return data


def with_teacher_contract(source: TeacherSource, data: "Dataset", say: Progress) -> "Dataset":
    """``data`` with the teacher's own view when its input contract differs from the student's: declared with
    ``--teacher-input``, or read from an ONNX teacher's ``edgekd.preprocess`` metadata."""
    from .preprocess import parse_teacher_input

    pre = None
    channels = data.preprocess.channels if data.preprocess is not None else data.input_shape[0]
    if source.input:
        data.require_images("--teacher-input")
        pre = parse_teacher_input(source.input, channels)
    elif len(source.paths) == 1 and data.is_lazy:
        pre = declared_contract(source.paths[0])
    if pre is None or pre == data.preprocess:
        return data
    say(f"teacher input: {pre.describe()}" + ("" if source.input else " (from the model's metadata)"))
    return data.with_teacher_input(pre)


def declared_contract(path: str) -> "Preprocess | None":
    """The input contract an ONNX or TFLite model carries in its metadata (``edgekd.preprocess``), if any."""
    import json

    from .preprocess import META_KEY, Preprocess

    suffix = str(path).lower().rsplit(".", 1)[-1]
    try:
        if suffix == "onnx":
            import onnx

            props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        elif suffix == "tflite":
            from .export.tflite_metadata import read_metadata

            props = read_metadata(path)
        else:
            return None
        return Preprocess.from_dict(json.loads(props[META_KEY])) if META_KEY in props else None
    except Exception:  # unreadable or foreign metadata: the model is checked against the data like any other
        return None


def load_data_as(spec: str, pre: "Preprocess | dict | None", seed: int = 0) -> "Dataset":
    """Data for a model that has an input contract (image folders: its size and channels), e.g. to export or
    quantize a student trained on ``folder:`` data; any other data as ``load_dataset`` loads it."""
    from .data import ImageOptions, load_dataset, parse_spec
    from .preprocess import Preprocess

    if isinstance(pre, dict):
        pre = Preprocess.from_dict(pre)
    if pre is None or parse_spec(spec)[0] != "folder":
        return load_dataset(spec, seed=seed)
    # unreadable files are left out: the build that trained the model could only have run without them
    images = ImageOptions(size=pre.size, channels="grey" if pre.channels == 1 else "rgb", skip_bad=True)
    return load_dataset(spec, seed=seed, images=images)


def load_teachers(source: TeacherSource, data: "Dataset", cache_dir: Path, say: Progress) -> tuple[LoadedTeacher, ...]:
    """Every teacher ``source`` names (the built-in one for ``data`` when it names none), each checked
    against ``data`` (the teacher's own view for paired data); a checkpoint teacher is not checked here
    (self-ckpt checks it is the same student)."""
    from .models.default_teacher import default_teacher

    view = data.teacher_view or data
    if not source.paths:
        teacher, d = default_teacher(view, cache_dir, progress=say)
        loaded = [LoadedTeacher(teacher, TeacherInfo(id="default:" + d.weights_sha256, accuracy=None,
                                                     outputs=teacher.outputs, origin=d.origin, spec=d.spec,
                                                     training=d.training, weights_sha256=d.weights_sha256))]
    else:
        loaded = []
        for p in source.paths:
            t, digest = teacher_from_file(p, source), sha256_file(p)
            loaded.append(LoadedTeacher(t, TeacherInfo(id=digest, accuracy=None, outputs=t.outputs, path=str(p),
                                                       kind=t.kind, sha256=digest)))
    for lt in loaded:
        if lt.teacher.kind != "checkpoint":
            try:
                check_teacher_fits(lt.teacher, view)
            except TeacherError as e:
                if not data.is_lazy or data.teacher_view is not None:
                    raise
                raise TeacherError(e.cause, "declare the teacher's input with --teacher-input (e.g. imagenet, or "
                                   "size=224,mean=0.485/0.456/0.406,std=0.229/0.224/0.225)") from None
    return tuple(loaded)


def teacher_from_file(path: str, source: TeacherSource) -> "Teacher":
    if path.endswith(".json"):
        from .stages import checkpoint_teacher

        return checkpoint_teacher(path)
    from .models.teachers import load_teacher

    return load_teacher(path, arch=source.arch, outputs=source.outputs, trust_pickle=source.trust_pickle)


def check_teacher_fits(teacher: "Teacher", data: "Dataset") -> np.ndarray:
    """Run the teacher on a few samples: it must accept the data's inputs and output one score per class."""
    z = teacher.logits(data.x_val[:8] if len(data.x_val) else data.x_train[:8])
    if z.shape[1] != data.num_classes:
        raise TeacherError(f"teacher {teacher.name} outputs {z.shape[1]} classes but the data has {data.num_classes}",
                           "use a teacher trained on the same classes as the data (or the matching --data)")
    return z


def teacher_outputs(lt: LoadedTeacher, data: "Dataset", cache_dir: Path, say: Progress,
                    fast: bool = False) -> tuple[TeacherInfo, np.ndarray]:
    """The teacher's training-set outputs (through the on-disk cache) and its info with the test accuracy;
    ``fast``: a torch teacher runs in channels-last memory (the build's layout, ``DistillConfig.channels_last``)."""
    from .distill.cache import cached_teacher_logits
    from .stages import accuracy_of

    logits = cached_teacher_logits(lt.teacher, lt.info.id, data, cache_dir, progress=say, fast=fast)
    test = cached_teacher_logits(lt.teacher, lt.info.id, data, cache_dir, split="test", progress=say, fast=fast)
    info = replace(lt.info, accuracy=accuracy_of(test, data.y_test), outputs=lt.teacher.outputs)
    say(f"teacher: test accuracy {info.accuracy:.4f} ({info.origin or info.path})")
    return info, logits




def build_inputs(config: "BuildConfig", cache_dir: Path, say: Progress,
                 timed: "Callable[[str, str], Any] | None" = None) -> "tuple[Dataset, LoadedTeacher, TeacherInfo, np.ndarray]":
    """What every candidate of a build trains on: the data (with the teacher's input contract), the teacher and its
    training-set outputs. The build and its ``--jobs``/``--ray`` workers both call this (all cached by content)."""
    from contextlib import nullcontext

    step = timed or (lambda _stage, _message: nullcontext())
    with step("data", f"data: loading {config.data}"):
        data = load_data(config.data, seed=config.distill.seed, limit=config.data_limit, unlabeled=config.unlabeled,
                         say=say, images=config.images, cache_dir=cache_dir)
    with step("teacher", "teacher: preparing"):
        source = TeacherSource((config.teacher,) if config.teacher else (), config.teacher_arch,
                               config.teacher_outputs, config.trust_pickle, config.teacher_input)
        data = with_teacher_contract(source, data, say)
        loaded = load_teachers(source, data, cache_dir, say)[0]
        info, logits = teacher_outputs(loaded, data, cache_dir, say, fast=config.distill.channels_last)
    return data, loaded, info, logits
