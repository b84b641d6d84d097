"""``folder:DIR`` — image folders as users have them (torchvision's ImageFolder layout).

``DIR/<class>/**/<image>`` (sorted class folder names are the class names), or ``DIR/train/<class>/...`` with
``DIR/test/<class>/...`` (or ``val/``) for a test split of the user's own. JPEG, PNG, BMP, WebP, GIF, TIFF and
PPM/PGM files of any size and mode; other files (and hidden ones) are ignored and counted.

Images are decoded once into the decode cache (``image_store``) at ``--image-size`` (shorter side resized,
centre crop) in RGB or grey (``--channels``; by default grey only when every image is grey) and served as
:class:`~edgekd.data.image_rows.ImageRows`, a batch at a time. Without ``--image-size``, images that all have one
size keep it; images of several sizes ask for ``--image-size``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    from .image_store import ImageStore

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm",
                            ".pbm", ".pnm"})
SPLIT_NAMES = ("train", "val", "test")
CHANNELS = {"auto": None, "rgb": 3, "grey": 1, "gray": 1}
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ImageOptions:
    """How ``folder:`` data is read (``--image-size``, ``--channels``, ``--skip-bad-images``)."""

    size: int | None = None  # square side after resize + centre crop; None: the images' own (one square size)
    channels: str = "auto"  # "auto", "rgb" or "grey"
    skip_bad: bool = False  # leave unreadable images out (counted and named) instead of stopping

    def __post_init__(self) -> None:
        if self.channels not in CHANNELS:
            raise ConfigError(f"unknown --channels {self.channels!r}", "use auto, rgb or grey")
        if self.size is not None and not 8 <= self.size <= 4096:
            raise ConfigError(f"--image-size {self.size} is outside 8..4096 pixels", "pass e.g. --image-size 96")


@dataclass(frozen=True)
class FolderData:
    """What a folder holds: the store, its train (and own test) rows, labels and class names."""

    store: "ImageStore"
    train_rows: np.ndarray
    test_rows: np.ndarray | None
    labels: np.ndarray  # per store row
    class_names: tuple[str, ...]
    size: int | None  # None: the images' own (one non-square) size, kept as is


def _visible(p: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in p.relative_to(root).parts)


def _class_dirs(root: Path) -> list[Path]:
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    stray = [p for p in entries if not p.is_dir()]
    if stray:
        raise DataError(f"{stray[0]} lies directly in the image folder {root}, outside any class sub-folder",
                        f"move it into {root}/<class name>/ or remove it")
    if not entries:
        raise DataError(f"image folder {root} has no class sub-folders", f"put images in {root}/<class name>/")
    return entries


def _split_layout(root: Path) -> dict[str, Path] | None:
    """{"train": DIR/train, "test": DIR/test or DIR/val} when DIR is split that way, else None."""
    subs = {p.name.lower(): p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if "train" not in subs or not ({"test", "val"} & set(subs)) or set(subs) - set(SPLIT_NAMES):
        return None
    if not all(any(c.is_dir() for c in d.iterdir()) for d in subs.values()):
        return None
    return {"train": subs["train"], "test": subs.get("test") or subs["val"]}


def _files(split_root: Path, names: list[str], root: Path, ignored: list[Path]) -> list[tuple[Path, int]]:
    out = []
    for label, name in enumerate(names):
        d = split_root / name
        if not d.is_dir():
            continue
        found = sorted(p for p in d.rglob("*") if p.is_file() and _visible(p, root))
        images = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
        ignored += [p for p in found if p.suffix.lower() not in IMAGE_SUFFIXES]
        out += [(p, label) for p in images]
    return out


def scan_folder(root: Path, say: Progress) -> tuple[list[str], list[tuple[Path, int]], int | None]:
    """(class names, (file, label) list, number of train files or None without a split layout)."""
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise DataError(f"image folder {root} {what}", "pass folder:DIR with one sub-folder of images per class")
    layout = _split_layout(root)
    ignored: list[Path] = []
    if layout is None:
        names = [d.name for d in _class_dirs(root)]
        files, n_train = _files(root, names, root, ignored), None
        by_class = Counter(label for _, label in files)
        empty = [n for i, n in enumerate(names) if not by_class[i]]
        if empty:
            raise DataError(f"class folder {root / empty[0]} holds no images", "add images to it or remove it")
    else:
        names = sorted({d.name for d in _class_dirs(layout["train"])} | {d.name for d in _class_dirs(layout["test"])})
        train = _files(layout["train"], names, root, ignored)
        test = _files(layout["test"], names, root, ignored)
        if not train or not test:
            which = "train" if not train else "test"
            raise DataError(f"{layout[which]} holds no images", f"put images in {layout[which]}/<class name>/")
        files, n_train = train + test, len(train)
    if ignored:
        say(f"data: ignored {len(ignored)} file(s) that are not images by their suffix (e.g. {ignored[0]})")
    if not files:
        raise DataError(f"image folder {root} holds no image files", "add .jpg/.png/.bmp/.webp images per class")
    return names, files, n_train


def load_folder(root: str | Path, opts: ImageOptions, cache_dir: Path, say: Progress) -> FolderData:
    """Scan, index and decode (or read back) an image folder at the size ``opts`` asks for."""
    from .image_store import ImageStore, index_files
    from ..smoke.image_io import GRAY_MODES

    root = Path(root)
    names, files, n_train = scan_folder(root, say)
    indexed = index_files(files, cache_dir, root, say)
    modes = [f.mode for f in indexed if f.mode != "?"]
    channels = CHANNELS[opts.channels] or (1 if modes and all(m in GRAY_MODES for m in modes) else 3)
    readable = [f for f in indexed if f.mode != "?"]
    if not readable and not opts.skip_bad:  # not one file opens: name the first, as decoding would
        from ..smoke.image_io import decode
        from .image_store import DECODE_ERRORS, undecodable

        try:
            decode(indexed[0].path, None, 3)
        except DECODE_ERRORS as e:
            raise undecodable(indexed[0].path, e) from None
    if not readable:
        raise DataError(f"no image in {root} could be decoded", "check the files are images Pillow can read")
    size, native = (opts.size, None) if opts.size else _common_size(indexed)
    store = ImageStore(str(root), tuple(indexed), channels, Path(cache_dir), opts.skip_bad, say, native_hw=native)
    store.pixels(size)  # decode now: unreadable files are named (or skipped) before any training
    good = store.good
    if not len(good):
        raise DataError(f"no image in {root} could be decoded", "check the files are images Pillow can read")
    labels = np.array([f.label for f in indexed], dtype=np.int64)
    if n_train is None:
        return FolderData(store, good, None, labels, tuple(names), size)
    return FolderData(store, good[good < n_train], good[good >= n_train], labels, tuple(names), size)


def _common_size(files: list) -> tuple[int | None, tuple[int, int] | None]:
    """(side, None) when every image has one square size, (None, (h, w)) for one non-square size (kept as is)."""
    sizes = Counter(f.size for f in files if f.mode != "?")
    (w, h), _ = sizes.most_common(1)[0]
    for f in files:
        if f.mode != "?" and f.size != (w, h):
            raise DataError(f"image {f.path} is {f.size[0]}x{f.size[1]} but the other images are {w}x{h}",
                            f"pass --image-size N to resize them all (shorter side to N, centre crop), e.g. "
                            f"--image-size {min(w, h)}")
    return (w, None) if w == h else (None, (h, w))
