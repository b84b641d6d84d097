"""Which operators take the time: onnxruntime's own per-node profiler on this host's CPU.

onnxruntime records every kernel it runs when ``SessionOptions.enable_profiling`` is set and writes the events
as Chrome-trace JSON; :func:`profile_onnx_ops` runs a model ``warmup + runs`` times at batch 1 on real samples,
drops the warm-up runs' events and sums each node's ``*_kernel_time`` events over the timed runs.

LiteRT's Python API (``ai_edge_litert.interpreter.Interpreter``) has no per-operator profiler, so a ``.tflite``
artifact cannot be profiled here. :func:`profile_candidates` then profiles the same student's fp32 ONNX export
in onnxruntime instead and says so in the result (``is_deployed_artifact`` false, ``profiled_runtime``
onnxruntime): one runtime's profile is never presented as another's.

A result is cached next to the artifact (``ops_profile_<runtime>.json``) and reused while the artifact's sha256
and the settings are unchanged, so a re-run of a finished build does not profile again.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import BenchError, ConfigError, first_line
from ..fsio import sha256_file, write_json_atomic
from ..records import Deployable
from .measure import cpu_model

TOP_NODES = 10
PROFILE_VERSION = 2
LITERT_NOTE = ("LiteRT's Python API has no per-operator profiler, so the deployed .tflite file was not profiled; "
               "shown instead: onnxruntime's profile of the same student's fp32 ONNX export (a different runtime "
               "and precision: the ranking of layers is indicative, the times are not the .tflite file's)")


def profile_onnx_ops(model_path: str | Path, samples: np.ndarray, *, threads: int = 1, runs: int = 100,
                     warmup: int = 5, top: int = TOP_NODES) -> dict[str, Any]:
    """Per-node time of an ONNX model in onnxruntime (CPU), batch 1, over ``runs`` inferences after ``warmup``.

    ``samples``: inputs without the batch dimension (N x sample shape, float); run ``i`` uses sample ``i % N``.
    Returns the slowest ``top`` nodes by median time per run (name, op type, total, mean and median
    microseconds, share of the summed node medians), the same per operator type, the median profiled run, and
    how it was obtained.
    """
    path = Path(model_path)
    if not path.is_file():
        raise ConfigError(f"model file {path} does not exist", "pass an .onnx file")
    if runs < 1 or warmup < 0 or threads < 1:
        raise ConfigError(f"bad profile settings: runs {runs}, warmup {warmup}, threads {threads}",
                          "use runs >= 1, warmup >= 0, threads >= 1")
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise ConfigError(f"profile samples have shape {x.shape}", "pass N samples (N x sample shape), N >= 1")
    events = _run_profiled(path, x, threads, runs + warmup)
    nodes, run_us = _node_times(events, skip_runs=warmup)
    if not nodes:
        raise BenchError(f"onnxruntime's profile of {path} holds no operator timings",
                         "check that the model runs in onnxruntime's CPU provider")
    return _summary(nodes, run_us, runs, top) | {
        "profiled_runtime": "onnxruntime", "provider": "CPUExecutionProvider",
        "where": f"this host's CPU ({cpu_model()}), {threads} thread(s), batch 1",
        "runs": runs, "warmup": warmup, "threads": threads,
        "how": (f"onnxruntime per-node profiling (SessionOptions.enable_profiling) on this host's CPU, {threads} "
                f"thread(s), batch 1, {runs} runs on test samples after {warmup} warm-up runs; nodes ranked by the "
                f"median of their kernel events over the timed runs (share: of the summed medians). Profiling adds "
                f"a few microseconds per node, so small models' times are inflated: compare profiled_run_median_us "
                f"with the benchmark"),
    }


def _run_profiled(path: Path, x: np.ndarray, threads: int, total_runs: int) -> list[dict[str, Any]]:
    import onnxruntime as ort

    from ..export.parity import exact_int8

    with tempfile.TemporaryDirectory(prefix="edgekd-ortprof-") as tmp:
        so = ort.SessionOptions()
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "ort")
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        exact_int8(so)  # profile the kernels the benchmark and the parity checks run
        try:
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            for i in range(total_runs):
                sess.run(None, {name: x[i % len(x)][None]})
            trace = sess.end_profiling()
        except Exception as e:  # onnxruntime raises its own pybind error types
            raise BenchError(f"onnxruntime could not run {path} for profiling ({first_line(e)})",
                             "check that the model runs in onnxruntime with this input shape") from None
        try:
            with open(trace, encoding="utf-8") as f:
                return json.load(f)
        except ValueError:  # onnxruntime's C++ writer stops silently at a file size limit or a full disk
            import errno

            from ..fsio import at_size_limit, nearly_full, write_error

            no = errno.EFBIG if at_size_limit(Path(trace)) else errno.ENOSPC if nearly_full(Path(trace).parent) \
                else None
            err = None if no is None else write_error(OSError(no, os.strerror(no), str(trace)), trace)
            raise err or BenchError(f"onnxruntime's profile of {path} could not be read (truncated)",
                                    "re-run the build; check free space in the temporary folder") from None


def _node_times(events: list[dict[str, Any]], skip_runs: int) -> tuple[dict[str, dict[str, Any]], list[float]]:
    """Each node's kernel times (us) over the model runs after the first ``skip_runs``, and those runs' times."""
    runs = sorted((e["ts"], e["dur"]) for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    if len(runs) <= skip_runs:
        return {}, []
    start = runs[skip_runs][0]
    nodes: dict[str, dict[str, Any]] = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") != "Node" or not name.endswith("_kernel_time") or e.get("ts", 0) < start:
            continue
        node = name[: -len("_kernel_time")]
        n = nodes.setdefault(node, {"node": node, "op_type": e.get("args", {}).get("op_name", "?"), "us": []})
        n["us"].append(float(e.get("dur", 0)))
    return nodes, [float(d) for _, d in runs[skip_runs:]]


def _summary(nodes: dict[str, dict[str, Any]], run_us: list[float], runs: int, top: int) -> dict[str, Any]:
    """Nodes ranked by their median time per run (robust to the odd preempted run); totals and means kept."""
    med = {k: float(np.median(n["us"])) for k, n in nodes.items()}
    totals = {k: sum(n["us"]) for k, n in nodes.items()}
    whole = sum(med.values()) or 1.0
    ranked = sorted(nodes, key=lambda k: (-med[k], -totals[k], k))
    by_type: dict[str, float] = {}
    for k in ranked:
        by_type[nodes[k]["op_type"]] = by_type.get(nodes[k]["op_type"], 0.0) + med[k]
    return {
        "n_nodes": len(nodes), "node_us_per_run": sum(totals.values()) / runs, "node_median_us_per_run": whole,
        "profiled_run_median_us": float(np.median(run_us)) if run_us else None,
        "ops": [{"node": k, "op_type": nodes[k]["op_type"], "calls": len(nodes[k]["us"]), "total_us": totals[k],
                 "mean_us": totals[k] / len(nodes[k]["us"]), "median_us": med[k], "share": med[k] / whole}
                for k in ranked[:top]],
        "by_op_type": [{"op_type": k, "median_us": v, "share": v / whole}
                       for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])],
    }


def profile_candidate(candidate: Deployable, samples: np.ndarray, *, runs: int = 100, warmup: int = 5,
                      fresh: bool = False) -> dict[str, Any]:
    """Profile one build candidate: its deployed int8 ONNX file, or for a LiteRT candidate its fp32 ONNX twin.

    ``candidate``: a build's deployable (runtime, int8 record, threads). Cached next to the file;
    ``fresh`` ignores the cached result.
    """
    runtime, artifact = candidate.runtime, Path(candidate.int8.path)
    deployed = artifact.suffix.lower() == ".onnx"
    profiled = artifact if deployed else artifact.with_name("model_fp32.onnx")
    if not profiled.is_file():
        return {"error": f"no ONNX file to profile ({profiled} is missing)", "is_deployed_artifact": False,
                "deployed_artifact": str(artifact), "note": LITERT_NOTE}
    threads = candidate.threads
    key = {"version": PROFILE_VERSION, "artifact_sha256": sha256_file(profiled), "runs": runs, "warmup": warmup,
           "threads": threads, "onnxruntime": _ort_version()}
    cache = artifact.with_name(f"ops_profile_{runtime}.json")
    cached = None if fresh else _read_cached(cache, key)
    if cached is not None:
        return cached
    result = {**profile_onnx_ops(profiled, samples, threads=threads, runs=runs, warmup=warmup), "key": key,
              "artifact": str(profiled), "deployed_artifact": str(artifact), "deployed_runtime": runtime,
              "is_deployed_artifact": deployed,
              "artifact_kind": "the deployed int8 ONNX file" if deployed else
              f"the fp32 ONNX twin of the deployed {artifact.suffix} file (not the deployed artifact)"}
    if not deployed:
        result["note"] = LITERT_NOTE
    write_json_atomic(cache, result)
    return result


def _read_cached(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) and old.get("key") == key else None


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def profile_candidates(candidates: list[Deployable], samples: np.ndarray, *, runs: int = 100, warmup: int = 5,
                       fresh: bool = False, timings: dict[str, float] | None = None,
                       say: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Profile every build candidate (see :func:`profile_candidate`), in order.

    A candidate whose profile fails gets ``{"error": ...}`` instead: the profile explains the latency, it
    does not judge the candidate, so it never stops a build.
    """
    say = say or (lambda _m: None)
    t0 = time.perf_counter()
    out = []
    for c in candidates:
        try:
            p = profile_candidate(c, samples, runs=runs, warmup=warmup, fresh=fresh)
        except BenchError as e:
            p = {"error": str(e), "deployed_artifact": c.int8.path}
        out.append(p)
        if "error" in p:
            say(f"    ops profile {c.name}: not available ({p['error']})")
        elif p["ops"]:
            o = p["ops"][0]
            say(f"    ops profile {c.name}: slowest node {o['node']} ({o['op_type']}) {o['median_us']:.1f} us/run "
                f"(median), {100 * o['share']:.0f}% of node time" + ("" if p["is_deployed_artifact"] else
                                                                     " (fp32 ONNX twin)"))
    if timings is not None:
        timings["profile_ops"] = timings.get("profile_ops", 0.0) + time.perf_counter() - t0
    return out
