"""Image folders decoded once into compact uint8 files in the cache, keyed by the images' content.

An :class:`ImageStore` is the list of an image folder's files (path, label, sha256 of the bytes) and, per image
size, one uint8 file of N x C x S x S pixels under ``<cache>/images/<key>/`` (``key`` = the files' hashes and
labels, the channels, the size and the decoder's version). The first build at a size decodes every image
(``smoke.image_io.decode``: the same code a smoke bundle runs on the board) and writes the file under a temporary
name; every later build, and every other candidate at that size, reads it back. Rows are read with ``pread`` a
batch at a time, so memory stays bounded by the batch, not by the data set, and no memory map inflates the
process's resident size.

Hashing is skipped for a file whose size and modification time match the folder's index
(``<cache>/images/index-<folder hash>.json``), as ``git`` does. An image Pillow cannot decode (unreadable,
truncated) is an error naming the file, or, with ``skip_bad``, is left out and counted.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..cache import content_key
from ..errors import DataError
from ..fsio import atomic_path, sha256_file, write_json_atomic

DECODER_VERSION = 1  # bump when smoke.image_io.decode changes what it returns
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ImageFile:
    path: str
    label: int
    sha256: str
    mode: str  # Pillow's mode of the file (from its header)
    size: tuple[int, int]  # width, height


@dataclass(frozen=True)
class BadImage:
    path: str
    reason: str


@dataclass(frozen=True)
class RowFile:
    """N rows of uint8 pixels in one file, read a batch at a time."""

    path: str
    rows: int
    row_shape: tuple[int, ...]

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.row_shape))

    def read(self, rows: np.ndarray) -> np.ndarray:
        """uint8 (len(rows), *row_shape) in the order of ``rows``; runs of consecutive rows are one read each."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), *self.row_shape), np.uint8)
        if not len(rows):
            return out
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        flat = out.reshape(len(rows), -1)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            start = 0
            while start < len(srt):
                end = start + 1
                while end < len(srt) and srt[end] == srt[end - 1] + 1:
                    end += 1
                blob = os.pread(fd, (end - start) * self.row_bytes, int(srt[start]) * self.row_bytes)
                chunk = np.frombuffer(blob, np.uint8).reshape(end - start, -1)
                flat[order[start:end]] = chunk
                start = end
        finally:
            os.close(fd)
        return out


@dataclass
class ImageStore:
    """An image folder's files and their decoded pixels per size (see the module's doc)."""

    root: str
    files: tuple[ImageFile, ...]
    channels: int
    cache_dir: Path
    skip_bad: bool = False
    say: Progress = field(default=lambda _m: None, repr=False)
    native_hw: tuple[int, int] | None = None  # (h, w) of images kept at their own size (size None)
    bad: tuple[BadImage, ...] = ()
    _pixels: dict[int | None, RowFile] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        return content_key("images", DECODER_VERSION, self.channels,
                           [(f.sha256, f.label) for f in self.files])

    @property
    def good(self) -> np.ndarray:
        """Row indices of the images that decoded (every row until a size is decoded)."""
        bad = {b.path for b in self.bad}
        return np.array([i for i, f in enumerate(self.files) if f.path not in bad], dtype=np.int64)

    def row_shape(self, size: int | None) -> tuple[int, int, int]:
        if size is None:
            if self.native_hw is None:
                raise DataError(f"the images in {self.root} have no common size", "pass --image-size N")
            return (self.channels, *self.native_hw)
        return (self.channels, size, size)

    def pixels(self, size: int | None) -> RowFile:
        """The images at ``size`` x ``size`` (None: their own size), decoded now or read back from the cache."""
        if size in self._pixels:
            return self._pixels[size]
        where = self.cache_dir / "images" / self.key
        row_shape = self.row_shape(size)
        tag = size if size is not None else "x".join(map(str, row_shape[1:]))
        data, meta = where / f"pixels_{tag}.u8", where / f"pixels_{tag}.json"
        if data.is_file() and meta.is_file() and self._read_meta(meta, data, row_shape):
            self.say(f"data: {len(self.files)} images at {row_shape[2]}x{row_shape[1]} read from the decode cache "
                     f"({where})")
        else:
            self._decode(size, data, meta, row_shape)
        self._pixels[size] = RowFile(str(data), len(self.files), row_shape)
        return self._pixels[size]

    def _read_meta(self, meta: Path, data: Path, row_shape: tuple[int, ...]) -> bool:
        try:
            m = json.loads(meta.read_text())
        except (OSError, ValueError):
            return False
        if m.get("rows") != len(self.files) or data.stat().st_size != len(self.files) * int(np.prod(row_shape)):
            return False
        self._note_bad(tuple(BadImage(**b) for b in m.get("bad", [])))
        return True

    def _decode(self, size: int | None, data: Path, meta: Path, row_shape: tuple[int, ...]) -> None:
        from ..smoke.image_io import decode

        n, t0, bad = len(self.files), time.perf_counter(), []
        self.say(f"data: decoding {n} images to {row_shape[2]}x{row_shape[1]} {'grey' if self.channels == 1 else 'RGB'} "
                 f"(once; kept in the decode cache)")
        blank = np.zeros(row_shape, np.uint8)
        with atomic_path(data) as tmp, open(tmp, "wb") as f:
            for i, img in enumerate(self.files):
                try:
                    px = decode(img.path, size, self.channels)
                except DECODE_ERRORS as e:
                    if not self.skip_bad:
                        raise undecodable(img.path, e) from None
                    bad.append(BadImage(img.path, reason_of(e)))
                    px = blank
                f.write(np.ascontiguousarray(px).tobytes())
                if (i + 1) % 5000 == 0 and i + 1 < n:
                    self.say(f"data: decoded {i + 1}/{n} images ({time.perf_counter() - t0:.0f} s)")
        write_json_atomic(meta, {"rows": n, "size": size, "channels": self.channels, "root": self.root,
                                 "bad": [b.__dict__ for b in bad], "seconds": time.perf_counter() - t0})
        self.say(f"data: decoded {n} images in {time.perf_counter() - t0:.1f} s")
        self._note_bad(tuple(bad))

    def _note_bad(self, bad: tuple[BadImage, ...]) -> None:
        if bad and not self.bad:
            shown = "; ".join(f"{b.path} ({b.reason})" for b in bad[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            self.say(f"data: skipped {len(bad)} unreadable image(s) (--skip-bad-images): {shown}{more}")
        self.bad = bad


DECODE_ERRORS = (OSError, ValueError, SyntaxError)  # PIL.UnidentifiedImageError is an OSError


def reason_of(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip()


def undecodable(path: str, e: BaseException) -> DataError:
    """The one-line error for an image Pillow cannot decode."""
    return DataError(f"image {path} cannot be decoded ({reason_of(e)})",
                     "re-save or remove the file, or pass --skip-bad-images to leave such files out")


def index_files(files: list[tuple[Path, int]], cache_dir: Path, root: Path, say: Progress) -> list[ImageFile]:
    """Each file's sha256, mode and size; read back from the folder's index when its size and mtime match."""
    from PIL import Image, UnidentifiedImageError

    index_path = Path(cache_dir) / "images" / f"index-{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]}.json"
    try:
        old = json.loads(index_path.read_text())
    except (OSError, ValueError):
        old = {}
    new, out, hashed, t0 = {}, [], 0, time.perf_counter()
    for path, label in files:
        st = path.stat()
        rel = path.relative_to(root).as_posix()
        entry = old.get(rel)
        if not (entry and entry[0] == st.st_size and entry[1] == st.st_mtime_ns):
            digest = sha256_file(path)
            try:
                with Image.open(path) as im:
                    mode, wh = im.mode, list(im.size)
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
                mode, wh = "?", [0, 0]  # named when decoding (or skipped with --skip-bad-images)
            entry = [st.st_size, st.st_mtime_ns, digest, mode, wh]
            hashed += 1
            if hashed % 5000 == 0:
                say(f"data: indexed {hashed} new or changed images ({time.perf_counter() - t0:.0f} s)")
        new[rel] = entry
        out.append(ImageFile(str(path), label, entry[2], entry[3], (int(entry[4][0]), int(entry[4][1]))))
    if new != old:
        write_json_atomic(index_path, new)
    if hashed:
        say(f"data: indexed {hashed} new or changed image file(s) of {len(files)} in {time.perf_counter() - t0:.1f} s")
    return out

