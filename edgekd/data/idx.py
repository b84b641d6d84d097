"""A small, strict reader (and writer) for IDX files, the format of MNIST and Fashion-MNIST.

Layout: two zero bytes, a dtype code, the number of dimensions, then one big-endian uint32 per
dimension, then the data in big-endian order. Files may be gzip-compressed (detected by content).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DataError

# IDX dtype code -> big-endian numpy dtype
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("<") if dt.itemsize > 1 else dt: code for code, dt in _DTYPES.items()}

_READ_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")  # type: ignore[return-value]


def _parse_header(path: Path, head: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return (dtype, dims, header length) from the first bytes of an IDX file."""
    if len(head) < 4:
        raise DataError(
            f"IDX file {path} is truncated ({len(head)} bytes, no complete header)",
            "re-download or re-create the file",
        )
    zero, code, ndim = struct.unpack(">HBB", head[:4])
    if zero != 0:
        raise DataError(
            f"{path} is not an IDX file (magic number 0x{head[:4].hex()} does not start with 0x0000)",
            "point the spec at MNIST-style IDX files (train-images-idx3-ubyte[.gz] ...)",
        )
    if code not in _DTYPES:
        raise DataError(
            f"IDX file {path} has unknown dtype code 0x{code:02x}",
            "use one of the IDX codes 0x08 (uint8), 0x09, 0x0B, 0x0C, 0x0D, 0x0E",
        )
    if ndim == 0:
        raise DataError(f"IDX file {path} declares 0 dimensions", "re-create the file")
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise DataError(
            f"IDX file {path} is truncated inside its header ({len(head)} of {header_len} bytes)",
            "re-download or re-create the file",
        )
    dims = struct.unpack(f">{ndim}I", head[4:header_len])
    return _DTYPES[code], tuple(int(d) for d in dims), header_len


def read_idx_header(path: str | Path) -> tuple[np.dtype, tuple[int, ...]]:
    """Read only the header: (dtype, shape). Cheap even for large gzip files."""
    path = Path(path)
    try:
        with _open(path) as f:
            head = f.read(4)
            if len(head) == 4:
                head += f.read(4 * head[3])
    except _READ_ERRORS as e:
        raise DataError(f"cannot read IDX file {path}: {e}", "re-download or re-create the file") from e
    dtype, dims, _ = _parse_header(path, head)
    return dtype.newbyteorder("="), dims


def read_idx(path: str | Path) -> np.ndarray:
    """Read a whole IDX file (gzip or plain) into an array in native byte order.

    A file whose data is shorter or longer than its header says is rejected with a DataError.
    The returned array may be read-only (it views the file's bytes); copy it to modify it.
    """
    path = Path(path)
    try:
        with _open(path) as f:
            raw = f.read()
    except _READ_ERRORS as e:
        raise DataError(f"cannot read IDX file {path}: {e}", "re-download or re-create the file") from e
    dtype, dims, header_len = _parse_header(path, raw[:64])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header_len
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        raise DataError(
            f"IDX file {path} is {what}: shape {dims} needs {expected} data bytes, found {found}",
            "re-download or re-create the file",
        )
    arr = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header_len)
    arr = arr.reshape(dims)
    if dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed when the name ends in ``.gz``."""
    path = Path(path)
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype
    if key not in _CODES:
        raise DataError(
            f"cannot write dtype {arr.dtype} as IDX",
            "use uint8, int8, int16, int32, float32 or float64",
        )
    if arr.ndim == 0 or arr.ndim > 255:
        raise DataError(f"cannot write a {arr.ndim}-D array as IDX", "use 1 to 255 dimensions")
    head = struct.pack(">HBB", 0, _CODES[key], arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as f:  # type: ignore[operator]
        f.write(head)
        f.write(body)
    return path


def find_idx(directory: Path, prefix: str, part: str) -> Path | None:
    """Find ``{prefix}-{part}-idx?-ubyte`` (``part``: images or labels), gzip or plain."""
    ndim = "3" if part == "images" else "1"
    for suffix in (".gz", ""):
        for sep in ("-", "."):  # some mirrors ship train-images.idx3-ubyte
            p = directory / f"{prefix}-{part}{sep}idx{ndim}-ubyte{suffix}"
            if p.is_file():
                return p
    return None
