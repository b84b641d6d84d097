"""Atomic file writes and hashing: nothing half-written is ever left under its final name."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import EdgeKDError, OutputError, first_line


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def ensure_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) and check it is writable, with a clear error if not."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output directory {p} ({e.strerror or e})",
                          "choose a writable location with --out") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputError(f"output directory {p} is not writable", "choose a writable location with --out")
    return p


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it onto ``final`` only if the block succeeds.

    The temporary name starts with ``.tmp-`` so an interrupted write never looks like an artifact.
    """
    final = Path(final)
    ensure_dir(final.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{final.name}.", dir=final.parent)
        os.close(fd)
    except OSError as e:
        raise write_error(e, final) or e from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp_path, final)
    except BaseException as e:
        plain = isinstance(e, Exception) and not isinstance(e, (OSError, EdgeKDError))  # ours already say why
        full = plain and nearly_full(final.parent)
        capped = plain and at_size_limit(tmp_path)
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        err = write_error(e, final) if isinstance(e, OSError) else None
        if err is None and (full or capped):  # e.g. torch.save's "unexpected pos" when a write is cut short
            why = f"the disk holding {final.parent} is full" if full else "the file size limit (ulimit -f) was reached"
            err = OutputError(f"{why}: {final.name} could not be written "
                              f"({type(e).__name__}: {first_line(e, 120)})", _FULL_FIX)
        if err is not None:
            raise err from None
        raise


_FULL_FIX = ("free space (or raise the file size limit) or write elsewhere (--out, --cache-dir); finished artifacts "
             "are kept, re-run the command to resume")
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


def write_error(e: OSError, final: str | Path) -> OutputError | None:
    """An OutputError naming ``final`` when ``e`` is about writing it (no space, file too large, read-only or
    forbidden location); None when ``e`` is some other failure."""
    final = Path(final)
    where = e.filename2 or e.filename or final  # copies name the source first, the destination second
    if e.errno in _NO_SPACE:
        what = "the file size limit was reached" if e.errno == errno.EFBIG else "no space is left on the device"
        return OutputError(f"cannot write {final} ({what}: {e.strerror}, while writing {where})", _FULL_FIX)
    if e.errno in _NOT_WRITABLE and (e.filename is None or Path(str(where)).parent == final.parent):
        return OutputError(f"cannot write {final} ({e.strerror})", "choose a writable location with --out")
    return None


def at_size_limit(path: Path) -> bool:
    """True when the process has a file size limit (RLIMIT_FSIZE) and ``path`` has grown to it."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        return soft != resource.RLIM_INFINITY and path.stat().st_size >= soft
    except (OSError, ValueError, ImportError):
        return False


def nearly_full(directory: Path, slack: int = 1 << 20) -> bool:
    try:
        return shutil.disk_usage(directory).free < slack
    except OSError:
        return False


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(final: str | Path, text: str) -> Path:
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(final)


def write_json_atomic(final: str | Path, obj: Any) -> Path:
    return write_text_atomic(final, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import dataclasses

    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
