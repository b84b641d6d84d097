"""Distilled students shared between builds: trained once, whatever the target.

A student depends on the data, the teacher, its spec, the distillation config and the tool versions (the build's
distill stage key), never on the target. Each one is kept under ``<cache>/students/<key>/`` (``student.pt`` and
``student.json``); a build for another target, or into another run directory, copies it instead of training it
again. Two builds at once are safe: the first to need a key holds ``<key>.lock`` (``flock``) while it trains and
publishes; the other waits, then reads what was published. A published entry is a folder renamed into place
whole, so a crash never leaves half of one; a worker killed while training leaves nothing there.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Callable, Iterator

from .fsio import atomic_path, ensure_dir, sha256_file
from .records import Checkpoint

FILES = ("student.pt", "student.json")


def store_dir(cache_dir: str | Path) -> Path:
    return Path(cache_dir) / "students"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    ensure_dir(path.parent)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def stored(cache_dir: str | Path, key: str) -> bool:
    entry = store_dir(cache_dir) / key
    return all((entry / name).is_file() for name in FILES)


def trained_once(cache_dir: str | Path, key: str, cdir: Path, train: Callable[[], Checkpoint],
                 say: Callable[[str], None]) -> Checkpoint:
    """The student for ``key`` in ``cdir``: copied from the store when it is there, else trained by ``train``
    (which writes ``cdir/student.pt`` and ``student.json``) and published to the store."""
    store = store_dir(cache_dir)
    entry = store / key
    with _locked(store / f"{key}.lock"):
        if stored(cache_dir, key):
            ckpt = _copy_out(entry, cdir)
            say(f"    reused the student trained by an earlier build ({entry})")
            return ckpt
        ckpt = train()
        _publish(cdir, store, key)
        return ckpt


def _copy_out(entry: Path, cdir: Path) -> Checkpoint:
    ensure_dir(cdir)
    with atomic_path(cdir / "student.pt") as tmp:
        shutil.copyfile(entry / "student.pt", tmp)
    record = json.loads((entry / "student.json").read_text())  # as the distill stage wrote it (+ "record")
    record["path"] = str(cdir / "student.pt")
    ckpt = Checkpoint(**{f.name: record[f.name] for f in fields(Checkpoint) if f.name in record})
    if sha256_file(cdir / "student.pt") != ckpt.sha256:
        raise OSError(f"the stored student {entry} does not match its record")
    with atomic_path(cdir / "student.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    os.utime(entry)  # used now: `edgekd cache prune` removes what has not been used for a while
    return ckpt


def _publish(cdir: Path, store: Path, key: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=ensure_dir(store)))
    try:
        for name in FILES:
            shutil.copyfile(cdir / name, tmp / name)
        os.rename(tmp, store / key)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # published by another process meanwhile, or no space: keep going
