"""Data specs: one parser and a registry of loaders.

A spec is ``NAME`` for a built-in data set (``fashion-mnist``, ``digits``, ``basic-motions``) or ``SCHEME:ARG`` for
user data (``npz:PATH``, ``idx:DIR``, ``folder:DIR``). Loaders return :class:`RawData`: arrays as
stored (validated later, in one place) plus an optional own test split and class names.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from ..registry import Registry
from .idx import find_idx, read_idx

UNLABELED = -1  # y_train value of an unlabelled training sample (--unlabeled): the teacher's top class stands in

DEFAULT_SPEC = "fashion-mnist"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


@dataclass
class RawData:
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    source: str = ""  # names the data in error messages


@dataclass(frozen=True)
class Scheme:
    load: Callable[[str], RawData]
    usage: str  # "digits", "npz:PATH", ...
    takes_arg: bool


SCHEMES: Registry[Scheme] = Registry("data spec scheme")


def _scheme(name: str, usage: str, takes_arg: bool) -> Callable[[Callable[[str], RawData]], Callable[[str], RawData]]:
    def deco(fn: Callable[[str], RawData]) -> Callable[[str], RawData]:
        SCHEMES.add(name, Scheme(fn, usage, takes_arg))
        return fn

    return deco


def valid_specs() -> str:
    return ", ".join(SCHEMES.get(n).usage for n in SCHEMES.names())


def parse_spec(spec: str) -> tuple[str, str]:
    """``"npz:/a/b.npz"`` → ``("npz", "/a/b.npz")``; ``"digits"`` → ``("digits", "")``."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"empty data spec {spec!r}", f"use one of: {valid_specs()}")
    text = spec.strip()
    kind, sep, arg = text.partition(":")
    kind = kind.strip().lower()
    if kind not in SCHEMES:
        fix = f"use one of: {valid_specs()}"
        if text.endswith(".npz"):
            fix = f"write npz:{text}"
        elif _is_dir(text):
            fix = f"write folder:{text} (class sub-folders) or idx:{text} (IDX files)"
        raise DataError(f"unknown data spec {spec!r}", fix)
    scheme = SCHEMES.get(kind)
    if scheme.takes_arg and not arg.strip():
        raise DataError(f"data spec {spec!r} lacks its path", f"write it as {scheme.usage}")
    if not scheme.takes_arg and sep:
        raise DataError(f"data spec {kind!r} takes no argument (got {spec!r})", f"write just {kind}")
    return kind, arg.strip()


def load_raw(spec: str) -> RawData:
    kind, arg = parse_spec(spec)
    return SCHEMES.get(kind).load(arg)


def _is_dir(text: str) -> bool:
    try:
        return Path(text).expanduser().is_dir()
    except (ValueError, RuntimeError, OSError):  # a NUL byte, an unknown ~user, a name too long
        return False


def _existing(arg: str, what: str, usage: str, want_dir: bool) -> Path:
    try:
        path = Path(arg).expanduser()
        exists = path.exists()
    except (ValueError, RuntimeError, OSError) as e:
        raise DataError(f"{what} {arg!r} is not a usable path ({e})", f"check the path in {usage}") from None
    if not exists:
        raise DataError(f"{what} {path} does not exist", f"check the path in {usage}")
    if want_dir and not path.is_dir():
        raise DataError(f"{what} {path} is not a directory", f"pass a directory to {usage}")
    if not want_dir and path.is_dir():
        raise DataError(f"{what} {path} is a directory, not a file", f"pass a .npz file to {usage}")
    return path


def _load_idx_dir(directory: Path, source: str, missing_fix: str) -> RawData:
    parts = ("images", "labels")
    train = {part: find_idx(directory, "train", part) for part in parts}
    test = {part: find_idx(directory, "t10k", part) for part in parts}
    missing = [f"train-{part}-idx{3 if part == 'images' else 1}-ubyte[.gz]" for part in parts if train[part] is None]
    if missing:
        raise DataError(f"{source}: {' and '.join(missing)} not found in {directory}", missing_fix)
    if (test["images"] is None) != (test["labels"] is None):
        have, lack = ("images", "labels") if test["labels"] is None else ("labels", "images")
        raise DataError(
            f"{directory} has t10k {have} but no t10k {lack}",
            f"add the t10k {lack} file or remove the other",
        )
    raw = RawData(read_idx(train["images"]), read_idx(train["labels"]), source=source)
    if test["images"] is not None and test["labels"] is not None:
        raw.x_test, raw.y_test = read_idx(test["images"]), read_idx(test["labels"])
    for attr in ("x", "x_test"):
        arr = getattr(raw, attr)
        if arr is not None and arr.ndim == 3:  # IDX images are N×H×W
            setattr(raw, attr, arr[:, None])
    return raw


@_scheme("fashion-mnist", "fashion-mnist", takes_arg=False)
def _fashion_mnist(_: str) -> RawData:
    fix = (
        "install the Debian package dataset-fashion-mnist "
        "(sudo apt-get install dataset-fashion-mnist) or run ./setup.sh"
    )
    if not FASHION_MNIST_DIR.is_dir():
        raise DataError(f"Fashion-MNIST not found: {FASHION_MNIST_DIR} does not exist", fix)
    raw = _load_idx_dir(FASHION_MNIST_DIR, "fashion-mnist", fix)
    if raw.x_test is None:
        raise DataError(f"fashion-mnist: the t10k test files are missing from {FASHION_MNIST_DIR}", fix)
    raw.class_names = FASHION_MNIST_CLASSES
    return raw


@_scheme("digits", "digits", takes_arg=False)
def _digits(_: str) -> RawData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]  # values 0..16 → [0, 1], N×1×8×8
    return RawData(x, bunch.target, class_names=tuple(str(c) for c in bunch.target_names), source="digits")


@_scheme("basic-motions", "basic-motions", takes_arg=False)
def _basic_motions(_: str) -> RawData:
    from .ts_format import load_basic_motions

    x, y, x_test, y_test, names = load_basic_motions()  # N×6×100: accelerometer xyz, gyroscope xyz
    return RawData(x, y, x_test, y_test, class_names=names, source="basic-motions")


@_scheme("npz", "npz:PATH", takes_arg=True)
def _npz(arg: str) -> RawData:
    path = _existing(arg, "npz file", "npz:PATH", want_dir=False)
    fix = "save it with numpy.savez(PATH, x=..., y=...)"
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise DataError(f"{path} is a .npy file, not an .npz archive", fix)
        with f:
            keys = list(f.files)
            arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test", "class_names") if k in keys}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        detail = "not an .npz archive, or holds object arrays" if "pickle" in str(e) else str(e) or type(e).__name__
        raise DataError(f"cannot read {path} as .npz ({detail})", fix) from e
    for k in ("x", "y"):
        if k not in arrays:
            raise DataError(f"{path} has no array {k!r} (it has: {', '.join(keys) or 'none'})", fix)
    if ("x_test" in arrays) != ("y_test" in arrays):
        have, lack = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise DataError(f"{path} has {have} but no {lack}", f"save both {have} and {lack}, or neither")
    names = None
    if "class_names" in arrays:
        cn = arrays["class_names"]
        if cn.ndim != 1 or cn.dtype.kind not in "US":
            raise DataError(f"{path}: class_names must be a 1-D string array", "save class_names=np.array([...])")
        names = tuple(str(s) for s in cn.tolist())
    return RawData(arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test"), names, source=str(path))


@_scheme("idx", "idx:DIR", takes_arg=True)
def _idx(arg: str) -> RawData:
    directory = _existing(arg, "IDX directory", "idx:DIR", want_dir=True)
    return _load_idx_dir(directory, str(directory), "name the files like MNIST's (train-images-idx3-ubyte[.gz], ...)")


@_scheme("folder", "folder:DIR", takes_arg=True)
def _folder(arg: str) -> RawData:
    from .folder import load_folder

    directory = _existing(arg, "image folder", "folder:DIR", want_dir=True)
    x, y, names = load_folder(directory)
    return RawData(x, y, class_names=names, source=str(directory))
