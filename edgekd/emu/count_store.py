"""Emulated counts kept on disk, so that a refit or a second build never recounts the same model.

Counting one 224x224 model under emulation takes a minute or more here; the counts depend only on the exported
model's bytes, the runtime and its kernels, the emulated core and its modelled cache, the thread and core counts,
and the emulation environment (QEMU, wheel versions and plugin source: the environment's own content key). They
are stored as one JSON file per key under ``<cache>/arm-counts/`` (atomic renames: two processes counting the
same model at once both write the same record).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cache import content_key, default_cache_dir
from ..fsio import sha256_file, write_json_atomic
from .cores import get_core
from .env import ArmEnv, find_env

if TYPE_CHECKING:
    from .run import EmuRun

FORMAT = 1


@dataclass(frozen=True)
class Counts:
    """What the estimator needs from one emulated model: per steady-state inference, all threads."""

    model_sha256: str
    runtime: str
    kernels: str
    precision: str
    core: str
    threads: int
    n_cores: int
    llc_kb: int
    instructions: int
    spread: float  # (max - min) / median of the steady instruction counts
    traffic: dict[str, Any]  # loads, stores, their bytes, modelled LLC fills/write-backs, dram_bytes
    env: str  # the emulation environment's content key
    count_wall_s: float  # what counting cost when it was done (not a latency)

    @property
    def dram_bytes(self) -> int:
        return int(self.traffic["dram_bytes"])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def store_dir(cache_dir: str | Path | None = None) -> Path:
    return (Path(cache_dir) if cache_dir else default_cache_dir()) / "arm-counts"


def _key(sha: str, runtime: str, kernels: str, core: str, threads: int, n_cores: int, llc_kb: int, env: str) -> str:
    return content_key(FORMAT, sha, runtime, kernels, core, threads, n_cores, llc_kb, env)


def counted(items: list[tuple[str | Path, np.ndarray, str | None]], core: str, *, threads: int, n_cores: int = 4,
            kernels: str = "default", llc_kb: int | None = None, runs: int = 2, warmup: int = 1,
            timeout_s: float = 3600, env: ArmEnv | None = None, cache_dir: str | Path | None = None,
            say=None) -> list[Counts]:
    """Counts for every ``(model, x, precision)`` in ``items`` on ``core``: read from the store where present,
    the rest counted in one emulated process and stored."""
    from .run import RUNTIMES, run_emulated_many

    env = env or find_env()
    llc = get_core(core).llc_kb if llc_kb is None else int(llc_kb)
    folder = store_dir(cache_dir)
    keys, found = [], {}
    for path, _x, _prec in items:
        sha = sha256_file(path)
        key = _key(sha, RUNTIMES.get(Path(path).suffix, "?"), kernels, core, threads, n_cores, llc, env.root.name)
        keys.append((key, sha))
        record = folder / f"{key}.json"
        if record.is_file():
            try:
                found[key] = Counts(**json.loads(record.read_text()))
            except (ValueError, TypeError):  # an unreadable record is counted again and replaced
                pass
    todo = [i for i, (key, _sha) in enumerate(keys) if key not in found]
    if todo:
        if say:
            say(f"counting {len(todo)} model(s) under emulated {core} ({threads} thread(s), {kernels} kernels)")
        runs_ = run_emulated_many([items[i] for i in todo], core, n_cores=n_cores, threads=threads, runs=runs,
                                  warmup=warmup, timeout_s=timeout_s, env=env, kernels=kernels, llc_kb=llc)
        for i, r in zip(todo, runs_):
            found[keys[i][0]] = keep(r, core, n_cores, env, cache_dir, sha=keys[i][1])
    return [found[key] for key, _sha in keys]


def keep(run: "EmuRun", core: str, n_cores: int, env: ArmEnv, cache_dir: str | Path | None = None,
         sha: str | None = None) -> Counts:
    """Store what an emulated run counted (so that a later count of the same model is read back)."""
    sha = sha or sha256_file(run.model_path)
    llc = int(run.traffic.get("llc_kb", 0))
    c = Counts(sha, run.runtime, run.kernels, run.precision, core, run.threads, n_cores, llc, run.steady_instructions,
               run.steady_spread, run.traffic, env.root.name, run.emulation_wall_s)
    key = _key(sha, run.runtime, run.kernels, core, run.threads, n_cores, llc, env.root.name)
    write_json_atomic(store_dir(cache_dir) / f"{key}.json", c.as_dict())
    return c
