"""``edgekd verify RUN_DIR``: check every artifact of a run against the sha256 its ``manifest.json`` recorded.

A build hashes every file it leaves in the run directory (``pipeline.write_manifest``; a smoke run's result.json is left out); this re-hashes them.
A changed or missing artifact is an :class:`IntegrityError` naming it (exit 2). Files the manifest does not list
(e.g. a ``result.json`` a smoke run wrote later) are reported, not failed. The manifest itself is not signed: it
detects corruption and accidental edits, not someone who rewrites the manifest too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import IntegrityError
from .fsio import sha256_file

_HEX64 = re.compile(r"[0-9a-f]{64}")
_RERUN = "re-run the build into this directory (`edgekd build ... --out RUN_DIR`) to write it again"


@dataclass(frozen=True)
class Verified:
    run: Path
    checked: int  # artifacts whose sha256 matched
    unlisted: tuple[str, ...]  # files present that the manifest does not list (not an error)
    made_by: str  # the edgekd version that wrote the manifest


def read_manifest(run: Path) -> dict[str, str]:
    """The manifest's ``artifacts`` (relative path -> sha256), validated: IntegrityError when it is missing,
    unreadable, from an edgekd that wrote no hashes, or names a file outside the run."""
    path = run / "manifest.json"
    if not path.is_file():
        raise IntegrityError(f"{run} has no manifest.json: not an edgekd run directory, or its build did not finish",
                             "pass the --out directory of a finished build, or " + _RERUN)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise IntegrityError(f"{path} cannot be read as JSON ({type(e).__name__})", _RERUN) from None
    artifacts = manifest.get("artifacts") if isinstance(manifest, dict) else None
    if not isinstance(artifacts, dict) or not artifacts:
        raise IntegrityError(f"{path} lists no artifact hashes (written by another or an older edgekd?)", _RERUN)
    for name, digest in artifacts.items():
        rel = PurePosixPath(name) if isinstance(name, str) else None
        if rel is None or not name or rel.is_absolute() or ".." in rel.parts or "\\" in name:
            raise IntegrityError(f"{path} names a file outside the run directory: {name!r}",
                                 "do not trust this run; " + _RERUN)
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise IntegrityError(f"{path} holds a malformed sha256 for {name}: {digest!r}", _RERUN)
    return artifacts


def verify_run(run_dir: str | Path) -> Verified:
    """Re-hash every artifact the manifest lists; IntegrityError naming each changed or missing one."""
    run = Path(run_dir)
    if not run.is_dir():
        raise IntegrityError(f"{run} is not a directory", "pass the run directory of a build, e.g. runs/raspberrypi")
    artifacts = read_manifest(run)
    root = run.resolve()
    changed, missing = [], []
    for name, digest in sorted(artifacts.items()):
        path = run / name
        if not path.is_file():
            missing.append(name)
        elif root not in path.resolve().parents:
            changed.append(f"{name} (a link to outside the run)")
        elif sha256_file(path) != digest:
            changed.append(name)
    if changed or missing:
        parts = [f"{n} changed (sha256 differs from the manifest)" for n in changed]
        parts += [f"{n} is missing" for n in missing]
        shown = "; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")
        raise IntegrityError(f"{len(parts)} of {len(artifacts)} artifacts in {run} do not match manifest.json: {shown}",
                             "do not deploy from this run; restore the files or " + _RERUN)
    present = {str(p.relative_to(run).as_posix()) for p in run.rglob("*") if p.is_file()}
    unlisted = tuple(sorted(present - set(artifacts) - {"manifest.json"}))
    made_by = json.loads((run / "manifest.json").read_text(encoding="utf-8")).get("edgekd", "?")
    return Verified(run, len(artifacts), unlisted, str(made_by))
