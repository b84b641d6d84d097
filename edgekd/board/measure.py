"""Measure a model on a real board over SSH: its smoke bundle is copied there, run with the board's own Python
and runtime, and its timings come back as a :class:`~edgekd.records.BoardMeasurement`.

One ``ssh`` call checks the board (its interpreter, numpy and a runtime for the model), one more copies the
bundle (a tar stream on stdin, unpacked in a fresh temporary folder that is removed afterwards) and runs
``run_smoke.py --describe --print-result`` there: outputs checked against this host's reference, then warm
inferences timed (p50/p90/p99), cold start, peak memory and the board's description.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BoardError
from ..fsio import sha256_file
from ..records import BoardMeasurement
from .ssh import SshDevice, quote, run_remote

if TYPE_CHECKING:
    from ..smoke.bundle import RawImages
    from ..targets import TargetProfile

PROBE = """
import json, sys
out = {"python": sys.version.split()[0], "runtimes": []}
try:
    import numpy
    out["numpy"] = numpy.__version__
except Exception as e:
    out["numpy_error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
for mod in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow", "onnxruntime"):
    try:
        __import__(mod)
        out["runtimes"].append(mod.split(".")[0])
    except Exception:
        pass
print("EDGEKD-PROBE " + json.dumps(out))
"""
RUNTIMES_FOR = {".tflite": ("ai_edge_litert", "tflite_runtime", "tensorflow"), ".onnx": ("onnxruntime",)}
INSTALL = {".tflite": "python3 -m pip install numpy ai-edge-litert", ".onnx": "python3 -m pip install numpy onnxruntime"}


def probe(device: SshDevice, model: Path) -> dict[str, Any]:
    """The board's interpreter and runtimes; :class:`BoardError` when it cannot run ``model``."""
    proc = run_remote(device, quote(device.python, "-"), stdin=PROBE.encode(), timeout_s=120,
                      what="check the board's Python")
    out = proc.stdout.decode(errors="replace")
    line = next((ln for ln in out.splitlines() if ln.startswith("EDGEKD-PROBE ")), None)
    if line is None:
        err = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        raise BoardError(f"the board {device.destination} cannot run {device.python} "
                         f"({err[-1][:160] if err else f'exit status {proc.returncode}'})",
                         "install python3 there, or name the interpreter: ssh://user@host?python=/path/to/python3")
    info = json.loads(line.split(" ", 1)[1])
    suffix = model.suffix.lower()
    if "numpy" not in info:
        raise BoardError(f"the board's {device.python} cannot import numpy ({info.get('numpy_error', '?')})",
                         f"on the board: {INSTALL[suffix]} (or pass ?python= for the interpreter that has it)")
    if not set(RUNTIMES_FOR[suffix]) & set(info["runtimes"]):
        raise BoardError(f"the board has no runtime for {model.name}: none of {', '.join(RUNTIMES_FOR[suffix])} "
                         f"imports in its {device.python}",
                         f"on the board: {INSTALL[suffix]} (or pass ?python= for the interpreter that has it)")
    return info


def measure_on_board(device: SshDevice, model: str | Path, target: "TargetProfile", x: np.ndarray,
                     labels: np.ndarray | None = None, *, runs: int = 100, images: "RawImages | None" = None,
                     timeout_s: float = 900) -> tuple[BoardMeasurement, dict[str, Any]]:
    """Run ``model``'s smoke bundle (samples ``x``) on the board with ``target.threads``; the measurement and
    the runner's whole result.json. Every failure is a :class:`BoardError` naming the cause."""
    from ..smoke.bundle import make_bundle
    from ..smoke.run_smoke import RESULT_MARK

    model = Path(model)
    probe(device, model)
    with tempfile.TemporaryDirectory(prefix="edgekd-board-") as tmp:
        bundle = make_bundle(model, target, Path(tmp) / "bundle", x, labels, images=images)
        archive = (Path(tmp) / "bundle.tar.gz").read_bytes()
        precision = json.loads((bundle / "manifest.json").read_text())["precision"]  # found while bundling
    runner = f'"$d"/{bundle.name}/run_smoke.py'
    remote = (f'd=$(mktemp -d) && tar -xzf - -C "$d" && {quote(device.python)} {runner} "$d"/{bundle.name} '
              f"--runs {int(runs)} --threads {int(target.threads)} --describe --print-result; "
              f'rc=$?; rm -rf "$d"; exit $rc')
    proc = run_remote(device, remote, stdin=archive, timeout_s=timeout_s, what="run the smoke bundle")
    out = proc.stdout.decode(errors="replace")
    if RESULT_MARK not in out:
        err = [ln.strip() for ln in (proc.stderr.decode(errors="replace") or out).splitlines() if ln.strip()]
        raise BoardError(f"the smoke runner did not finish on {device.destination} "
                         f"({err[-1][:200] if err else f'exit status {proc.returncode}'})",
                         "run the bundle by hand there: edgekd smoke MODEL --target T --out DIR, copy DIR, "
                         "python3 DIR/run_smoke.py")
    result = json.loads(out.split(RESULT_MARK, 1)[1].strip().splitlines()[0])
    if result.get("status") != "PASS":
        why = "; ".join(result.get("reasons") or ["no reason given"])
        raise BoardError(f"the smoke bundle for {model.name} failed on {device.destination}: {why[:300]}",
                         "the board's runtime disagrees with this host or cannot run the model: run the bundle "
                         "there by hand (edgekd smoke) and compare runtime versions")
    board = result.get("board") or {}
    m = BoardMeasurement(
        device.url, board, board_core(board), str(result.get("runtime", "")), precision,
        str(model), sha256_file(model), int(result["threads"]), int(result["runs"]), float(result["p50_ms"]),
        float(result["p90_ms"]), float(result["p99_ms"]), float(result["mean_ms"]),
        float(result["cold_start_ms"]), result.get("peak_rss_mb"), result.get("model_memory_mb"),
        float(result.get("max_difference", 0.0)), None, None,
        f"measured on the board {device.destination} ({board.get('cpu') or board.get('machine', '?')}, "
        f"{result['threads']} thread(s), {result.get('runtime', '?')}): {result['runs']} warm inferences after 5 "
        f"warm-up ones, outputs within the bundle's tolerance of this host's")
    return m, result


def with_estimate(m: BoardMeasurement, estimate_ms: float, band: tuple[float, float]) -> BoardMeasurement:
    return replace(m, estimate_ms=float(estimate_ms), estimate_band_ms=(float(band[0]), float(band[1])))


def board_core(board: dict[str, Any]) -> str:
    """The emulated core whose MIDR part the board reports (its biggest, on a big.LITTLE board); "" if none."""
    from ..emu.cores import CORES

    parts = {str(p).lower() for p in board.get("cpu_parts") or ()}
    matches = [CORES.get(n) for n in CORES.names() if f"{CORES.get(n).part:#05x}" in parts]
    return max(matches, key=lambda c: c.part).name if matches else ""
