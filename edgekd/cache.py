"""Where edgekd keeps reusable results between runs (default teachers, teacher outputs)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/edgekd`` or ``~/.cache/edgekd`` (the usual place for a per-user cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgekd"


def content_key(*parts: Any) -> str:
    """A short, stable hash of JSON-able parts: the cache key of a result."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]
