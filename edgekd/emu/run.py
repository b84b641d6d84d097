"""Run an ONNX or TFLite model in the real aarch64 runtime under ``qemu-aarch64 -cpu CORE``, and count.

:func:`run_emulated` prepares the inputs on the host exactly as the runtime takes them (layout, dtype,
quantization; batch 1), runs them in the guest (``guest.py``) with edgekd's TCG plugin counting instructions per
thread around each inference, and checks the guest's raw outputs against the host runtime's on the same inputs
every time (fp32: ``PARITY_DEFAULTS``; integer outputs: at most one quantization step apart). Instruction
counts are exact and repeatable (see :func:`_work` for what is counted); the emulation's wall time is
recorded only to say what the count cost — it is no latency.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, EmulationError, ParityError
from .cores import get_core
from .env import ArmEnv, find_env

RUNTIMES = {".onnx": "onnxruntime", ".tflite": "litert"}
# which kernels the runtime runs: its default (LiteRT: the XNNPACK delegate; onnxruntime: MLAS), or LiteRT's
# built-in kernels without the default delegate (ruy for convolutions and fully-connected layers), as TFLite ran
# before XNNPACK became its default
KERNELS = ("default", "builtin")
TRAFFIC_KEYS = ("loads", "stores", "load_bytes", "store_bytes", "llc_misses", "llc_writebacks")
LINE_BYTES = 64
GUEST = Path(__file__).with_name("guest.py")


@dataclass(frozen=True)
class EmuRun:
    model_path: str
    runtime: str  # onnxruntime | litert (the aarch64 build)
    precision: str
    core: str  # QEMU -cpu and the guest's cpuinfo
    n_cores: int  # cores the guest sees
    threads: int  # inference threads
    first_instructions: int  # first inference after loading (see _work)
    steady_instructions: int  # median over the steady-state inferences (see _work): the estimator's input
    busiest_thread_instructions: int  # the busiest thread, median over the steady-state inferences
    steady_spread: float  # (max - min) / median of the steady counts: how repeatable the count is
    traffic: dict[str, Any]  # memory counts per steady inference (median; see memory_traffic)
    windows: list[dict[str, Any]]  # per inference: total, max_thread, per-thread counts
    parity: dict[str, Any]  # guest vs host on the same inputs
    memory: dict[str, Any]  # emulator process RSS figures (kB) and the model file size
    emulation_wall_s: float  # what the emulated run cost here (not a latency)
    environment: dict[str, Any] = field(default_factory=dict)
    kernels: str = "default"

    @property
    def dram_bytes(self) -> int:
        """Bytes moved between the modelled last-level cache and DRAM per inference (line fills + write-backs)."""
        return int(self.traffic["dram_bytes"])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_emulated(model_path: str | Path, x: np.ndarray, core: str, *, n_cores: int = 4, threads: int = 1,
                 runs: int = 3, precision: str | None = None, timeout_s: float = 1800,
                 env: ArmEnv | None = None, kernels: str = "default", llc_kb: int | None = None,
                 warmup: int = 3) -> EmuRun:
    """Run ``x`` (``(N, ...)`` channels-first float, as for the host runtimes) through the model under emulation."""
    return run_emulated_many([(model_path, x, precision)], core, n_cores=n_cores, threads=threads, runs=runs,
                             timeout_s=timeout_s, env=env, kernels=kernels, llc_kb=llc_kb, warmup=warmup)[0]


def run_emulated_many(items: list[tuple[str | Path, np.ndarray, str | None]], core: str, *, n_cores: int = 4,
                      threads: int = 1, runs: int = 3, timeout_s: float = 1800,
                      env: ArmEnv | None = None, kernels: str = "default", llc_kb: int | None = None,
                      warmup: int = 3) -> list[EmuRun]:
    """Like :func:`run_emulated` for several ``(model, x, precision)`` in one emulated process (Python and the
    runtimes start once), in order; every model's outputs are checked against the host.

    ``kernels``: see :data:`KERNELS`; ``llc_kb``: the modelled last-level cache (default: the core's);
    ``warmup``: uncounted inferences between the first counted one and the steady-state ones."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1 or runs < 1 or warmup < 0:
        raise ConfigError(f"threads and runs must be >= 1 and warm-up >= 0 (got {threads}, {runs}, {warmup})",
                          "pass threads=1 or more")
    if not items:
        raise ConfigError("no models to emulate", "pass at least one exported model")
    if kernels not in KERNELS:
        raise ConfigError(f"unknown kernels {kernels!r}", f"use one of {', '.join(KERNELS)}")
    spec_core = get_core(core)
    llc = spec_core.llc_kb if llc_kb is None else int(llc_kb)
    env = env or find_env()
    prepared = [_prepare(Path(p), np.asarray(x), prec) for p, x, prec in items]
    with tempfile.TemporaryDirectory(prefix="edgekd-emu-") as tmp:
        work = Path(tmp)
        models = []
        for i, (path, runtime, feeds, *_rest) in enumerate(prepared):
            out = work / f"m{i}"
            out.mkdir()
            np.save(out / "feeds.npy", feeds)
            models.append({"model": str(path.resolve()), "runtime": runtime, "feeds": str(out / "feeds.npy"),
                           "out": str(out)})
        (work / "spec.json").write_text(json.dumps({"threads": threads, "runs": runs, "warmup": warmup,
                                                    "kernels": kernels, "models": models}))
        t0 = time.monotonic()
        _qemu(env, spec_core.name, n_cores, work, timeout_s, [p[0] for p in prepared], llc)
        wall = time.monotonic() - t0
        windows = _windows(work / "counts.jsonl", (runs + 1) * len(prepared))
        results = []
        for i, (path, runtime, _feeds, host_raw, out_quant, prec) in enumerate(prepared):
            guest_raw = np.load(work / f"m{i}" / "outputs.npy")
            stats = json.loads((work / f"m{i}" / "stats.json").read_text())
            mine = windows[i * (runs + 1):(i + 1) * (runs + 1)]
            parity = _parity(host_raw, guest_raw.reshape(host_raw.shape), out_quant, prec, runtime, spec_core.name,
                             path.name)
            results.append(_result(path, runtime, prec, spec_core, n_cores, threads, mine, parity, stats,
                                   wall / len(prepared), env, kernels))
    return results


def memory_traffic(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median per-inference memory counts over ``windows``: loads, stores, the bytes they move, and the modelled
    last-level cache's line fills and write-backs; ``dram_bytes`` = (fills + write-backs) x 64."""
    out: dict[str, Any] = {k: int(statistics.median(w.get(k, 0) for w in windows)) for k in TRAFFIC_KEYS}
    out["dram_bytes"] = (out["llc_misses"] + out["llc_writebacks"]) * LINE_BYTES
    out["llc_kb"] = int(windows[0].get("llc_kb", 0)) if windows else 0
    fills = [w.get("llc_misses", 0) for w in windows]
    out["llc_miss_spread"] = (max(fills) - min(fills)) / out["llc_misses"] if out["llc_misses"] else 0.0
    return out


def _result(path: Path, runtime: str, prec: str, core: Any, n_cores: int, threads: int, windows: list[dict],
            parity: dict, stats: dict, wall: float, env: ArmEnv, kernels: str) -> EmuRun:
    steady = windows[1:]
    work = [_work(w, threads) for w in steady]
    med = statistics.median(work)
    memory = {"emulator_peak_rss_kb": stats.get("hwm_kb"), "rss_before_model_kb": stats.get("rss_before_model_kb"),
              "rss_after_kb": stats.get("rss_after_kb"), "model_size_bytes": path.stat().st_size,
              "note": "RSS of the qemu-aarch64 process as the guest reads it (/proc/self/status): it includes "
                      "QEMU's own memory and translation cache; the growth after loading the model is the "
                      "closest figure to the runtime's working set"}
    return EmuRun(str(path), runtime, prec, core.name, n_cores, threads, _work(windows[0], threads), int(med),
                  int(statistics.median(w["max_thread"] for w in steady)),
                  (max(work) - min(work)) / med if med else 0.0, memory_traffic(steady), windows, parity, memory,
                  round(wall, 2),
                  {"qemu": env.qemu_version, "wheels": env.wheels, "guest_python": stats.get("python"),
                   "runtime_version": stats.get("runtime_version"), "cpu_part": hex(core.part),
                   "qemu_cpu": core.emulated_as}, kernels)


def _prepare(path: Path, x: np.ndarray, precision: str | None):
    runtime = RUNTIMES.get(path.suffix)
    if runtime is None:
        raise ConfigError(f"cannot emulate {path.name}: not an .onnx or .tflite file", "pass an exported model")
    if not path.is_file():
        raise ConfigError(f"model not found: {path}", "export the model first or fix the path")
    feeds, host_raw, out_quant, prec = host_reference(path, runtime, x, precision)
    return path, runtime, feeds, host_raw, out_quant, prec


def host_reference(path: Path, runtime: str, x: np.ndarray, precision: str | None):
    """Feeds (N, *input shape) as the runtime takes them, host outputs (raw), output quantization, precision."""
    if x.ndim < 2 or len(x) < 1 or not np.issubdtype(x.dtype, np.number):
        raise ConfigError(f"emulation needs a non-empty numeric batch (N, ...), got shape {x.shape}",
                          "pass float data with the batch dimension first")
    if runtime == "onnxruntime":
        from ..export.parity import run_onnx

        data = x.astype(np.float32)
        host = run_onnx(path, data)
        step = _onnx_output_step(path)
        prec = precision or ("int8" if onnx_is_quantized(path) else "fp32")
        return data[:, None], host, (None if step is None else ("dequantized", step)), prec
    from ..export.tflite_runtime import (
        feed_layout,
        load_interpreter,
        quantize_input,
        to_channels_last,
    )

    interp = load_interpreter(path)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    model_shape = tuple(int(s) for s in inp["shape"])
    data = to_channels_last(x) if feed_layout(model_shape[1:], x.shape[1:]) else x
    feeds = np.stack([quantize_input(data[i:i + 1].astype(np.float32), inp) for i in range(len(data))])
    host = []
    for feed in feeds:
        interp.set_tensor(inp["index"], feed)
        interp.invoke()
        host.append(np.array(interp.get_tensor(out["index"])))
    integer = np.dtype(out["dtype"]).kind in "iu"
    prec = precision or ("int8" if integer else "fp32")
    return feeds, np.stack(host), (out["quantization"] if integer else None), prec


QUANTIZED_ONNX_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
                      "MatMulInteger", "DynamicQuantizeLinear"}


def onnx_is_quantized(path: Path) -> bool:
    """Whether an ONNX model computes in int8 (QDQ or integer operators): its float input does not say so."""
    import onnx

    return any(n.op_type in QUANTIZED_ONNX_OPS for n in onnx.load(str(path)).graph.node)


def _onnx_output_step(path: Path) -> float | None:
    """The scale of the DequantizeLinear that produces the model's output (a QDQ int8 model), else None."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    out = graph.output[0].name
    producer = next((n for n in graph.node if out in n.output), None)
    if producer is None or producer.op_type != "DequantizeLinear" or len(producer.input) < 2:
        return None
    init = {t.name: t for t in graph.initializer}
    scale = init.get(producer.input[1])
    if scale is None:
        return None
    values = numpy_helper.to_array(scale).ravel()
    return float(values.max()) if values.size else None


def _qemu(env: ArmEnv, core: str, n_cores: int, work: Path, timeout_s: float, models: list[Path],
          llc_kb: int) -> None:
    view = env.view(core, n_cores)
    plugin = f"{env.plugin},out={work / 'counts.jsonl'},llc_kb={llc_kb}"
    cmd = [env.qemu, "-L", str(view), "-cpu", get_core(core).emulated_as, "-plugin", plugin,
           str(view) + env.python, "-I", str(GUEST), str(work / "spec.json")]  # -I: no host PYTHON* variables
    guest_env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1",
                 "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    names = ", ".join(m.name for m in models)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=guest_env, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise EmulationError(f"the emulated run of {names} on {core} took longer than {timeout_s:g} s",
                             "use a smaller model or input, or raise the timeout") from None
    done = [m for i, m in enumerate(models) if (work / f"m{i}" / "stats.json").is_file()]
    if proc.returncode != 0 or len(done) != len(models):
        failed = models[len(done)] if len(done) < len(models) else models[-1]
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        why = lines[-1][:240] if lines else f"exit code {proc.returncode}, no output"
        raise EmulationError(f"the aarch64 {_runtime_name(failed)} could not run {failed.name} under emulated "
                             f"{core} ({why})", "check that the model loads in the same runtime on the host; "
                             "re-export it, or rebuild the environment with edgekd emu setup")


def _runtime_name(model: Path) -> str:
    return RUNTIMES.get(model.suffix, "runtime")


def _windows(counts: Path, expected: int) -> list[dict[str, Any]]:
    if not counts.is_file():
        raise EmulationError("the QEMU plugin wrote no instruction counts", "rebuild the environment: edgekd emu setup")
    windows = [json.loads(line) for line in counts.read_text().splitlines() if line.strip()]
    if len(windows) != expected or any(w.get("overflow") for w in windows):
        raise EmulationError(f"expected {expected} counted inferences, the plugin recorded {len(windows)}",
                             "rebuild the environment: edgekd emu setup")
    return windows


def _work(window: dict[str, Any], threads: int) -> int:
    """The instructions of one inference: with 1 thread, the calling thread's (all the model's work runs there;
    the runtime's idle helper threads sometimes start up inside a window and would add a few hundred thousand
    instructions that depend on host scheduling); with several, the total over all threads (how the work is
    split between them depends on emulated timing, which is not the board's, so the busiest thread is recorded
    but not used)."""
    return int(window["max_thread"] if threads == 1 else window["total"])


def _parity(host: np.ndarray, guest: np.ndarray, out_quant, precision: str, runtime: str, core: str,
            name: str) -> dict:
    from ..export.parity import PARITY_DEFAULTS, check_parity

    route = f"{name}: host {runtime} -> emulated {core} {runtime} ({precision})"
    n = len(host)
    if out_quant is not None and out_quant[0] == "dequantized":  # a QDQ model's float output: at most one step
        step = float(out_quant[1])
        diff = float(np.abs(host.astype(np.float64) - guest.astype(np.float64)).max())
        if not np.isfinite(diff) or diff > step * 1.0001:
            raise ParityError(f"{route} on output 0: outputs differ by {diff:.3g}, more than one quantization step "
                              f"({step:.3g}) over {n} samples",
                              "report it: the same int8 model should agree within one step on every CPU")
        return {"route": route, "max_abs_diff": diff, "max_quant_steps": int(np.ceil(diff / step - 1e-6)),
                "quant_step": step, "identical_fraction": float(np.mean(host == guest)), "n_samples": n,
                "passed": True}
    if out_quant is not None:  # integer outputs: compare the raw integers
        steps = np.abs(host.astype(np.int64) - guest.astype(np.int64))
        worst = int(steps.max()) if steps.size else 0
        identical = float(np.mean(steps == 0))
        if worst > 1:
            raise ParityError(f"{route} on output 0: integer outputs differ by up to {worst} quantization steps "
                              f"(scale {out_quant[0]:.3g}) over {n} samples",
                              "report it: the same int8 model should agree within one step on every CPU")
        return {"route": route, "max_quant_steps": worst, "identical_fraction": identical, "n_samples": n,
                "passed": True}
    limits = PARITY_DEFAULTS.get(precision, PARITY_DEFAULTS["fp32"])
    rep = check_parity(host.reshape(n, -1), guest.reshape(n, -1), output="output 0", route=route, **limits)
    return rep.as_dict()
