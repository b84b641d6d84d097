"""``--jobs N`` and ``--ray auto|ADDRESS``: the candidates' trainings as independent jobs on an existing engine.

A job is one student: a worker process (``concurrent.futures`` with ``spawn``) or a Ray task prepares the build's
inputs itself (data, teacher, teacher outputs: all cached by content, so this is quick on the build's machine),
trains the student with the build's distillation config and sends back its weights and record. Workers write
nothing shared: the build adopts each student through its normal distill stage (stamp, shared store, atomic
renames), exactly as if it had trained it, so a killed worker leaves nothing half-written and its candidate is
trained by the build itself afterwards (said on the console).

Bit-identical to a serial build: a worker trains with the build's own torch thread count (floating-point sums
are ordered by how the work is split between threads), the same seed and the same data. ``--jobs N`` therefore
runs N trainings each with that many threads: on a machine with few cores the jobs share them.
A Ray task asks for one CPU (or one GPU when training on CUDA) of the cluster; every node must be able to read the
data spec and the teacher (the built-in data sets ship with the package; files need a shared filesystem).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .errors import ConfigError

if TYPE_CHECKING:
    from .build_config import BuildConfig
    from .candidate_stages import BuildContext
    from .models.students import StudentSpec
    from .records import Checkpoint

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainJob:
    config: "BuildConfig"
    spec: "StudentSpec"
    threads: int  # the build's torch intra-op threads (the same reduction order as a serial build)
    debug: bool = False


@dataclass(frozen=True)
class Trained:
    """What a worker sends back: the student's weights and record, and where/how long it trained."""

    name: str
    weights: bytes
    record: dict[str, Any]
    pid: int
    host: str
    seconds: float


def train_job(job: TrainJob) -> Trained:
    """Runs in the worker: prepare the inputs, train ``job.spec``, return it (nothing is written outside a temp dir)."""
    import platform
    import tempfile

    import torch

    from .cache import default_cache_dir
    from .console import quiet_third_party
    from .prepare import build_inputs
    from .stages import distill_student

    quiet_third_party(job.debug)
    torch.set_num_threads(job.threads)
    print(f"    {job.spec.name}: training in worker pid {os.getpid()}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    cache_dir = Path(job.config.cache_dir) if job.config.cache_dir else default_cache_dir()
    data, loaded, _info, logits = build_inputs(job.config, cache_dir, lambda _m: None)
    with tempfile.TemporaryDirectory(prefix="edgekd-job-") as d:
        ckpt = distill_student(data.for_shape(tuple(job.spec.input_shape)), job.spec, job.config.distill, d,
                               teacher=loaded.teacher, teacher_logits=logits)
        weights = (Path(d) / "student.pt").read_bytes()
    return Trained(job.spec.name, weights, asdict(ckpt), os.getpid(), platform.node(), time.perf_counter() - t0)


def adopter(trained: Trained) -> Callable[[Path], "Checkpoint"]:
    """Writes a worker's student into a candidate folder as ``distill_student`` would have (checked by sha256)."""
    from hashlib import sha256

    from .fsio import atomic_path, write_json_atomic
    from .records import Checkpoint, to_dict

    def adopt(cdir: Path) -> "Checkpoint":
        if sha256(trained.weights).hexdigest() != trained.record["sha256"]:
            raise OSError(f"the weights a worker sent for {trained.name} do not match its record")
        with atomic_path(cdir / "student.pt") as tmp:
            tmp.write_bytes(trained.weights)
        ckpt = Checkpoint(**{**trained.record, "path": str(cdir / "student.pt")})
        write_json_atomic(cdir / "student.json", to_dict(ckpt))
        return ckpt

    return adopt


def train_in_parallel(ctx: "BuildContext", todo: "list[tuple[StudentSpec, Path]]", say: Progress) -> dict[str, Trained]:
    """Train the (spec, candidate folder) pairs not trained yet on ``--jobs`` processes or ``--ray``; the
    students that came back, by name (a failed job is said and left out: the build trains it itself)."""
    import torch

    from .candidate_stages import already_trained
    from .console import debugging

    config = ctx.config
    specs = [s for s, cdir in todo if not already_trained(ctx, s, cdir)]
    if not specs:
        return {}
    jobs = [TrainJob(config, s, torch.get_num_threads(), debugging()) for s in specs]
    where = f"Ray ({config.ray})" if config.ray else f"{min(config.jobs, len(jobs))} worker processes"
    say(f"training {len(jobs)} student(s) on {where}, {jobs[0].threads} torch thread(s) each")
    run = _on_ray if config.ray else _in_processes
    results: dict[str, Trained] = {}
    for name, outcome in run(config, jobs):
        if isinstance(outcome, Trained):
            results[name] = outcome
            say(f"    {name}: trained by pid {outcome.pid} on {outcome.host} in {outcome.seconds:.0f} s")
        else:
            say(f"    {name}: its job failed ({outcome}); the build trains it itself")
    return results


def _in_processes(config: "BuildConfig", jobs: list[TrainJob]):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")  # never fork a process that holds torch's / JAX's threads
    with ProcessPoolExecutor(max_workers=min(config.jobs, len(jobs)), mp_context=ctx) as pool:
        futures = {pool.submit(train_job, j): j.spec.name for j in jobs}
        for f in as_completed(futures):
            try:
                yield futures[f], f.result()
            except Exception as e:  # a worker killed (BrokenProcessPool), or an error inside it
                yield futures[f], _why(e)


def check_ray(address: str) -> None:
    """Before any work: Ray is installed, and a HOST:PORT address answers (``ray.init`` would wait on it for
    minutes). ``auto`` is left to Ray (it finds the running cluster, or says there is none)."""
    import importlib.util
    import socket

    if importlib.util.find_spec("ray") is None:
        raise ConfigError("--ray needs Ray, which is not installed", "pip install 'edgekd[ray]' (or ray)")
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            pass
    except ValueError:
        raise ConfigError(f"--ray {address} is not auto or HOST:PORT", "pass e.g. --ray 10.0.0.5:6379") from None
    except OSError as e:
        raise ConfigError(f"no Ray cluster at --ray {address} ({e.strerror or type(e).__name__})",
                          "start one (`ray start --head`) or pass its address, e.g. --ray 10.0.0.5:6379") from None


def _on_ray(config: "BuildConfig", jobs: list[TrainJob]):
    import logging

    import ray

    from .console import debugging

    try:
        ray.init(address=config.ray, log_to_driver=debugging(), logging_level=logging.INFO if debugging()
                 else logging.ERROR, include_dashboard=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise ConfigError(f"no Ray cluster at --ray {config.ray} ({str(e).splitlines()[0][:160]})",
                          "start one (`ray start --head`) or pass its address, e.g. --ray 10.0.0.5:6379") from None
    try:
        gpus = 1 if config.distill.device == "cuda" else 0
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=1)(train_job)  # a dead worker is retried once
        refs = [(j.spec.name, task.remote(j)) for j in jobs]
        for name, ref in refs:
            try:
                yield name, ray.get(ref)
            except Exception as e:  # the task failed twice, or its worker died twice
                yield name, _why(e)
    finally:
        ray.shutdown()


def _why(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__
