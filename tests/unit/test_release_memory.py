"""edgekd.memory: freed heap is handed back to the OS after a build (issue 9's soak)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgekd.memory import release_free_memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmRSS and malloc_trim are Linux/glibc")
def test_freed_small_allocations_go_back_to_the_os():
    """Many small blocks (below glibc's mmap threshold, so they live on the heap) freed but one in 64 kept:
    the heap cannot shrink from its top, its free pages stay resident until malloc_trim returns them."""
    if not release_free_memory():
        pytest.skip("not glibc: nothing to trim")
    blocks = [bytearray(16 * 1024) for _ in range(12_000)]  # ~190 MB of heap
    keep = blocks[::64]
    del blocks
    held = _rss_mb()
    assert release_free_memory()
    assert _rss_mb() < held - 100, "the freed blocks were not returned to the OS"
    del keep


def test_build_releases_memory_even_when_it_fails(monkeypatch):
    from edgekd import pipeline
    from edgekd.errors import ConfigError

    calls = []
    monkeypatch.setattr("edgekd.memory.release_free_memory", lambda: calls.append(1) or True)

    def failing(config, progress):
        raise ConfigError("boom", "fix it")

    monkeypatch.setattr(pipeline, "_build", failing)
    with pytest.raises(ConfigError):
        pipeline.build(pipeline.BuildConfig())
    assert calls == [1]
