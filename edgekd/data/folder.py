"""``folder:DIR`` — one sub-folder per class, images read with Pillow.

Sorted sub-folder names are the class names. Images become grayscale when every image is
grayscale, RGB otherwise, and must all have one size. Hidden files and folders are skipped.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import DataError

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def _visible(p: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in p.relative_to(root).parts)


def _class_files(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise DataError(f"image folder {root} {what}", "pass folder:DIR with one sub-folder of images per class")
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    stray = [p for p in entries if not p.is_dir()]
    if stray:
        raise DataError(
            f"{stray[0]} lies directly in the image folder {root}, outside any class sub-folder",
            f"move it into {root}/<class name>/ or remove it",
        )
    if not entries:
        raise DataError(f"image folder {root} has no class sub-folders", f"put images in {root}/<class name>/")
    names, files = [], []
    for label, d in enumerate(entries):
        found = sorted(p for p in d.rglob("*") if p.is_file() and _visible(p, root))
        if not found:
            raise DataError(f"class folder {d} holds no images", "add images to it or remove it")
        names.append(d.name)
        files.extend((p, label) for p in found)
    return names, files


def _pixels(im, mode: str) -> np.ndarray:
    """uint8 H×W (mode L) or H×W×3 (mode RGB); 16-bit grayscale keeps its top 8 bits."""
    if im.mode.startswith("I;16"):
        gray = (np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8)
        return gray if mode == "L" else np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(im.convert(mode))


def load_folder(root: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Return (x uint8 N×C×H×W, y int64, class names) for an image folder."""
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    names, files = _class_files(root)
    sizes: list[tuple[int, int]] = []
    gray = True
    for path, _ in files:
        try:
            with Image.open(path) as im:
                sizes.append(im.size)
                gray = gray and im.mode in _GRAY_MODES
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(
                f"{path} is not an image Pillow can read ({type(e).__name__})",
                "remove non-image files from the class folders",
            ) from e
    expected = Counter(sizes).most_common(1)[0][0]
    for (path, _), size in zip(files, sizes):
        if size != expected:
            raise DataError(
                f"image {path} is {size[0]}x{size[1]} but the other images are "
                f"{expected[0]}x{expected[1]}",
                f"resize all images to one size (e.g. {expected[0]}x{expected[1]})",
            )
    mode = "L" if gray else "RGB"
    w, h = expected
    x = np.empty((len(files), 1 if gray else 3, h, w), dtype=np.uint8)
    for i, (path, _) in enumerate(files):
        try:
            with Image.open(path) as im:
                arr = _pixels(im, mode)
        except (OSError, ValueError) as e:
            raise DataError(f"cannot decode image {path}: {e}", "re-save or remove the file") from e
        x[i] = arr[None] if gray else arr.transpose(2, 0, 1)
    y = np.fromiter((label for _, label in files), dtype=np.int64, count=len(files))
    return x, y, tuple(names)
