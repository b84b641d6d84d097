"""Backend ``npu-emu``: estimate a full-int8 TFLite model on an Arm Ethos-U NPU target with the real Vela compiler.

For a target whose profile has an ``[npu]`` table, :func:`bench_npu`

1. refuses a model the NPU would run none of (float, float16, dynamic-range: Vela compiles them with exit 0
   and places every operator on the CPU);
2. writes a Vela ``.ini`` for the target (:mod:`.vela_ini`: NPU clock, SRAM and flash timings, arena size);
3. runs Vela (``python -m ethosu.vela``) in a separate process with ``--verbose-performance``;
4. reads Vela's summary CSV (inference time, cycles, SRAM and flash used, MACs), its per-layer CSV (each
   operator's target NPU/CPU and cycles) and its operator counts, and returns an :class:`NpuEstimate`.

Everything is Vela's *estimate*, not a measurement on a device. Operators that fall back to the CPU are named;
their time is not part of ``inference_time_ms`` and is reported as unknown, never as zero.
"""

from __future__ import annotations

import csv
import re
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BenchError, ConfigError
from ..fsio import atomic_path, ensure_dir, write_json_atomic
from ..records import LatencyFigure, NpuEstimate, NpuLayer
from .base import Backend, Job, Settings

if TYPE_CHECKING:
    from ..targets import TargetProfile
from ..bench.measure import MB, host_environment
from .tflite_graph import NO_NPU_KINDS, TfliteGraph, read_graph
from .vela_ini import MEMORY_MODE, SYSTEM_CONFIG, write_vela_ini

BACKEND = "npu-emu"
_OPS_LINE = re.compile(r"^(CPU|NPU) operators = (\d+)", re.MULTILINE)
_EXPORT_FIX = ("export full int8 with int8 input and output: edgekd export STUDENT.json --format tflite "
               "--precision int8 --out model_int8.tflite")


def vela_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ethos-u-vela")
    except PackageNotFoundError:
        raise BenchError("Arm Vela (ethos-u-vela) is not installed", "run ./setup.sh") from None


def check_npu_model(model_path: str | Path) -> TfliteGraph:
    """The model's graph, or a :class:`BenchError` when an Ethos-U NPU would run none of it."""
    path = Path(model_path)
    if path.suffix.lower() != ".tflite" or not path.is_file():
        raise ConfigError(f"npu-emu needs an existing .tflite model, got {path}",
                          "export one with edgekd export --format tflite --precision int8")
    graph = read_graph(path)
    if graph.kind in NO_NPU_KINDS:
        raise BenchError(f"{path.name} is a {NO_NPU_KINDS[graph.kind]}: Vela compiles it, but the Ethos-U NPU "
                         f"runs none of its operators (all {len(graph.ops)} fall back to the CPU)", _EXPORT_FIX)
    return graph


def bench_npu(model_path: str | Path, target: "TargetProfile", *, out_dir: str | Path | None = None,
              timeout_s: float = 300) -> NpuEstimate:
    """Vela's estimate of ``model_path`` on ``target`` (a TargetProfile with ``npu``).

    ``out_dir``: keep Vela's compiled model, its CSVs, the ``.ini`` and ``npu_estimate.json`` there.
    The arena size Vela plans for is the target's ``budget.sram_kib`` (else the board's SRAM).
    """
    if target.backend != NpuEmuBackend.name:
        raise ConfigError(f"target {target.name!r} has no NPU ([npu] table)",
                          "use an Ethos-U target, e.g. --target ethos-u55-128 (see edgekd targets list)")
    npu = target.npu
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise ConfigError(f"timeout_s must be a positive number, got {timeout_s!r}", "pass e.g. timeout_s=300")
    path = Path(model_path)
    graph = check_npu_model(path)
    arena_kib = target.budget.sram_kib or npu.sram_kib
    with tempfile.TemporaryDirectory(prefix="edgekd-vela-") as tmp:
        work = Path(tmp)
        ini = write_vela_ini(npu, arena_kib, work / f"{target.name}.ini", title=target.name)
        stdout, summary, rows = _run_vela(path, npu.accelerator, ini, work, timeout_s)
        est = _estimate(path, target, graph, stdout, summary, rows, arena_kib)
        if out_dir is not None:
            est = _keep(est, work, ini, ensure_dir(out_dir))
    return est


def _run_vela(model: Path, accelerator: str, ini: Path, work: Path, timeout_s: float):
    """Run Vela; return its stdout, the summary row and the per-layer rows."""
    out = work / "vela"
    cmd = [sys.executable, "-m", "ethosu.vela", str(model.resolve()), "--accelerator-config", accelerator,
           "--config", str(ini), "--system-config", SYSTEM_CONFIG, "--memory-mode", MEMORY_MODE,
           "--verbose-performance", "--output-dir", str(out)]
    from ..isolate import ConverterFailed, Limits, default_limits, run_program

    try:  # watched like the converters: a time limit, a memory limit, a crash named
        proc = run_program(cmd, step="Vela", cwd=work, limits=Limits(timeout_s, default_limits().memory_mb))
    except ConverterFailed as e:
        raise BenchError(f"Vela on {model.name}: {e.what}" + (f" (its last output: {e.tail})" if e.tail else ""),
                         "raise timeout_s, or try a smaller model") from None
    summaries, layers = sorted(out.glob("*_summary_*.csv")), sorted(out.glob("*_per-layer.csv"))
    if proc.returncode != 0 or not summaries or not layers:
        raise BenchError(f"Vela could not compile {model.name} for {accelerator} (exit {proc.returncode}): "
                         f"{_last_line(proc.stderr or proc.stdout)}",
                         "check that the model is a full-int8 TFLite file that LiteRT can run")
    return proc.stdout, _read_csv(summaries[0])[0], _read_csv(layers[0])


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise BenchError(f"Vela wrote an empty {path.name}", "re-run; report a bug with the model if it persists")
    return rows


def _num(row: dict[str, str], key: str) -> float:
    try:
        return float(row[key])
    except (KeyError, ValueError):
        raise BenchError(f"Vela's summary has no numeric {key!r} (Vela {vela_version()})",
                         "use the ethos-u-vela version pinned in pyproject.toml") from None


def _estimate(path: Path, target: "TargetProfile", graph: TfliteGraph, stdout: str, s: dict[str, str],
              rows: list[dict[str, str]], arena_kib: float) -> NpuEstimate:
    npu = target.npu
    layers = tuple(NpuLayer(name=r.get("Name", ""), op=r.get("Original Operator", ""),
                            tflite_op=_tflite_op(graph, r), target=r.get("Target", "").upper(),
                            cycles=int(float(r.get("Op Cycles") or 0)), macs=int(float(r.get("MAC Count") or 0)))
                   for r in rows)
    counts = {kind: int(n) for kind, n in _OPS_LINE.findall(stdout)}
    cpu_layers = [layer for layer in layers if layer.target == "CPU"]
    cpu_ops = counts.get("CPU", len(cpu_layers))
    fallback = tuple(dict.fromkeys(_op_name(layer) for layer in cpu_layers))
    if cpu_ops and not fallback:
        fallback = ("(Vela did not name them)",)
    ver = vela_version()
    flash_kib = _num(s, "off_chip_flash_memory_used") + _num(s, "on_chip_flash_memory_used")
    how = (f"estimated by Arm Vela {ver} for {npu.accelerator} at {npu.clock_mhz:g} MHz with the {target.name} "
           f"profile's memory timings ({npu.timing_source or 'see the profile'}); arena in SRAM planned for "
           f"{arena_kib:g} KiB, weights in flash (Shared_Sram); batch 1; Vela's performance model, not a "
           f"measurement on a device")
    if cpu_ops:
        how += f"; {cpu_ops} operator(s) fall back to the CPU ({', '.join(fallback)}): their time is NOT included"
    return NpuEstimate(
        backend=BACKEND, model_path=str(path), target=target.name, accelerator=npu.accelerator,
        clock_mhz=float(npu.clock_mhz), source="estimated", how=how,
        inference_time_ms=_num(s, "inference_time") * 1e3, cycles_total=int(_num(s, "cycles_total")),
        cycles_npu=int(_num(s, "cycles_npu")), macs=int(_num(s, "nn_macs")),
        sram_kib=_num(s, "sram_memory_used"), flash_kib=flash_kib,
        npu_ops=counts.get("NPU", sum(1 for layer in layers if layer.target == "NPU")), cpu_ops=cpu_ops,
        cpu_fallback=fallback, cpu_fallback_cost="unknown" if cpu_ops else "none", layers=layers,
        model_size_mb=path.stat().st_size / MB,
        environment={**host_environment(), "ethos-u-vela": ver, "system_config": s.get("system_config", ""),
                     "arena_kib": arena_kib, "model_kind": graph.kind})


def _tflite_op(graph: TfliteGraph, row: dict[str, str]) -> str:
    """The TFLite builtin of a per-layer row: by its output tensor, else by name ('Mean' -> 'MEAN') when unique."""
    by_tensor = graph.op_of(row.get("Name", ""))
    if by_tensor:
        return by_tensor
    wanted = row.get("Original Operator", "").upper()
    same = {op for op, _name, _t in graph.ops if op.replace("_", "") == wanted}
    return same.pop() if len(same) == 1 else ""


def _op_name(layer: NpuLayer) -> str:
    """Vela's name with the TFLite builtin where they differ, e.g. 'L2Norm (L2_NORMALIZATION)'."""
    if layer.op and layer.tflite_op and layer.op.upper() != layer.tflite_op.replace("_", ""):
        return f"{layer.op} ({layer.tflite_op})"
    return layer.op or layer.tflite_op or "unnamed operator"


def _keep(est: NpuEstimate, work: Path, ini: Path, out: Path) -> NpuEstimate:
    """Copy Vela's compiled model, CSVs and the .ini into ``out`` (atomically) and write npu_estimate.json."""
    from dataclasses import replace

    kept = {}
    for src in [ini, *sorted((work / "vela").iterdir())]:
        with atomic_path(out / src.name) as tmp:
            shutil.copyfile(src, tmp)
        kept[src.name] = out / src.name
    compiled = next((p for name, p in kept.items() if name.endswith("_vela.tflite")), None)
    est = replace(est, compiled_path=str(compiled) if compiled else "")
    write_json_atomic(out / "npu_estimate.json", asdict(est))
    return est


def describe(est: NpuEstimate, target: "TargetProfile", top: int = 5) -> list[str]:
    """Lines for the console: the figures, the op split, the costliest layers."""
    npu = target.npu
    lines = [f"{BACKEND} {est.target} ({est.accelerator} @ {est.clock_mhz:g} MHz): "
             f"{est.inference_time_ms:.4f} ms, {est.cycles_total:,} cycles, {est.macs:,} MACs",
             f"SRAM {est.sram_kib:.1f} KiB (board {npu.sram_kib:g}), flash {est.flash_kib:.1f} KiB (board "
             f"{npu.flash_kib:g}); operators on the NPU {est.npu_ops}/{est.npu_ops + est.cpu_ops} "
             f"({est.npu_fraction:.0%})"]
    if est.cpu_ops:
        lines.append(f"CPU FALLBACK ({est.cpu_ops} operator(s) on the CPU): {', '.join(est.cpu_fallback)}; "
                     f"their time is unknown and NOT included in the {est.inference_time_ms:.4f} ms")
    costly = sorted((layer for layer in est.layers if layer.target == "NPU"), key=lambda x: -x.cycles)[:top]
    for layer in costly:
        lines.append(f"  {layer.cycles:>10,} cycles  {layer.op:<16s} {_short(layer.name)}")
    return lines


def _short(name: str, width: int = 60) -> str:
    """Exporters write long scoped tensor names; keep the informative tail."""
    tail = name.split(";")[0].split("/")[-1] or name
    return tail if len(tail) <= width else "..." + tail[-width:]


def _last_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no error output"


class NpuEmuBackend(Backend):
    """Arm Ethos-U NPUs: Vela's estimate of each full-int8 TFLite file (no band: Vela states none)."""

    name = BACKEND
    kind = "estimated"
    precisions = ("int8",)
    probes_latency = True  # Vela compiles a random-weight probe in seconds (the search also checks SRAM)

    def figures(self, jobs: list[Job], target: "TargetProfile", settings: Settings) -> list[LatencyFigure]:
        return [estimated(bench_npu(j.model, target, out_dir=None if j.keep_dir is None else Path(j.keep_dir) / "npu"))
                for j in jobs]

    def key(self, target: "TargetProfile", settings: Settings) -> tuple:
        return asdict(target.npu), target.budget.as_dict()  # Vela's version is in every stage key already

    def note(self, target: "TargetProfile", threads: int, runs: int) -> str:
        n = target.npu
        return (f"Time, SRAM and flash are ESTIMATED by Arm Vela for the {n.accelerator} at {n.clock_mhz:g} MHz with "
                f"the {target.name} profile's memories (Vela's performance model, not a measurement on a device); "
                f"these estimates are what the budget is checked against. The host CPU latencies in the candidates "
                f"table (LiteRT, {threads} thread(s), {runs} runs) are for reference only.")

    def progress(self, name: str, fig: LatencyFigure, fp32: LatencyFigure | None) -> str:
        e = fig.detail
        fallback = f", CPU fallback {', '.join(e.cpu_fallback)} (time unknown)" if e.cpu_ops else ""
        return (f"    {name}: npu-emu {e.accelerator}: {e.inference_time_ms:.4f} ms, {e.cycles_total:,} cycles, "
                f"SRAM {e.sram_kib:.1f} KiB, flash {e.flash_kib:.1f} KiB, {e.npu_ops}/{e.npu_ops + e.cpu_ops} ops on "
                f"the NPU{fallback}")

    def describe(self, fig: LatencyFigure, target: "TargetProfile") -> list[str]:
        return [*describe(fig.detail, target), fig.how]


def estimated(e: NpuEstimate) -> LatencyFigure:
    """Vela's estimate as a figure: the NPU time (CPU-fallback operators left out, and named), SRAM and flash."""
    return LatencyFigure(backend=BACKEND, kind="estimated",
                         source=f"estimated by Arm Vela for {e.accelerator} @ {e.clock_mhz:g} MHz, not measured",
                         how=e.how, detail=e, estimate_ms=e.inference_time_ms, sram_kib=e.sram_kib,
                         flash_kib=e.flash_kib, untimed_ops=tuple(e.cpu_fallback))
