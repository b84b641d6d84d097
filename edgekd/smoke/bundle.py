"""On-device smoke-test bundles: write one, run one (here or under emulated ARM), unpack one safely.

A bundle is a folder (and a ``.tar.gz`` of it, for copying to a board) holding the model, a handful of real input
samples already in the model's own layout and dtype (and, for image data, the raw image files with the input
contract and ``image_io.py``, so the board makes its inputs from the photos itself), the reference runtime's raw outputs for them (computed on this
host), the tolerance for the model's precision, the expected labels, ``run_smoke.py`` (standard library + numpy +
the device's runtime, Python 3.9+), a README and ``manifest.json`` with the sha256 of every file and the versions
that made them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, OutputError
from ..fsio import atomic_path, ensure_dir, sha256_file, write_error

if TYPE_CHECKING:
    from ..preprocess import Preprocess
    from ..targets import TargetProfile

RUNNER = Path(__file__).with_name("run_smoke.py")
IMAGE_IO = Path(__file__).with_name("image_io.py")  # decoding + the contract's arithmetic, shipped with images
RESULT = "result.json"  # what a run of a bundle writes beside run_smoke.py (on the board, or in place here)
PI_LINES = ("tar -xzf {name}.tar.gz", "python3 -m pip install numpy ai-edge-litert   # or onnxruntime for .onnx",
            "python3 {name}/run_smoke.py")


def make_bundle(model_path: str | Path, target: "TargetProfile", out_dir: str | Path, x: np.ndarray,
                labels: np.ndarray | None = None, precision: str | None = None, *,
                images: "RawImages | None" = None) -> Path:
    """Write the bundle for ``model_path`` (.tflite or .onnx) into ``out_dir`` (replaced when it exists) and
    ``out_dir.tar.gz``; ``x`` are channels-first float samples as the host runtimes take them.

    ``images``: the raw image files behind ``x`` and the input contract that made ``x`` from them; the bundle
    then carries them, ``image_io.py`` and the contract, and its runner feeds the model from the raw files."""
    from ..emu.run import RUNTIMES, host_reference

    model = Path(model_path)
    runtime = RUNTIMES.get(model.suffix)
    if runtime is None or not model.is_file():
        raise ConfigError(f"cannot bundle {model}: not an existing .tflite or .onnx file", "pass an exported model")
    x = np.asarray(x)
    if x.ndim < 2 or not 1 <= len(x) <= 64:
        raise ConfigError(f"smoke samples must be a batch of 1 to 64, got shape {x.shape}", "pass a few samples")
    feeds, raw, out_quant, prec = host_reference(model, runtime, x, precision)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder", "pass a new folder for --out")
    ensure_dir(out.parent)
    if images is not None and len(images.paths) != len(x):
        raise ConfigError(f"{len(images.paths)} raw images for {len(x)} samples", "pass one image per sample")
    try:
        _stage_bundle(model, runtime, target, out, feeds, raw, labels, x, out_quant, prec, images)
    except OSError as e:  # no space left, read-only: one clear line; the staging folder is already removed
        raise write_error(e, out) or e from None
    with atomic_path(out.parent / f"{out.name}.tar.gz") as tmp, tarfile.open(tmp, "w:gz") as tar:
        tar.add(out, arcname=out.name, filter=_plain)
    return out


@dataclass(frozen=True)
class RawImages:
    """Raw image files and the contract (``Preprocess``) that turns each into the model's input."""

    paths: tuple[str, ...]
    preprocess: "Preprocess"


def _feed_spec(model: Path, runtime: str, sample_shape: tuple[int, ...]) -> dict[str, Any]:
    """How the runner turns a contract's float NCHW input into this model's feed: layout and int quantization."""
    if runtime == "onnxruntime":
        return {"layout": "NCHW", "dtype": "float32"}
    from ..export.tflite_runtime import feed_layout, load_interpreter

    inp = load_interpreter(model).get_input_details()[0]
    shape, dtype = tuple(int(v) for v in inp["shape"]), np.dtype(inp["dtype"]).name
    spec: dict[str, Any] = {"layout": "NHWC" if feed_layout(shape[1:], sample_shape) else "NCHW", "dtype": dtype}
    if np.dtype(dtype).kind in "iu":
        spec["scale"], spec["zero_point"] = float(inp["quantization"][0]), int(inp["quantization"][1])
    return spec


def _stage_images(stage: Path, images: RawImages, model: Path, runtime: str,
                  sample_shape: tuple[int, ...]) -> dict[str, Any]:
    names = []
    for i, src in enumerate(images.paths):
        name = f"image_{i:02d}{Path(src).suffix.lower()}"
        shutil.copy2(src, stage / name)
        names.append(name)
    shutil.copy2(IMAGE_IO, stage / IMAGE_IO.name)
    return {"images": names, "preprocess": images.preprocess.as_dict(), "feed": _feed_spec(model, runtime, sample_shape)}


def _stage_bundle(model: Path, runtime: str, target: "TargetProfile", out: Path, feeds: np.ndarray, raw: np.ndarray,
                  labels: np.ndarray | None, x: np.ndarray, out_quant: Any, prec: str,
                  images: RawImages | None = None) -> None:
    """Write the bundle into a temporary folder beside ``out`` and swap it in; an existing ``out`` is replaced
    only once the new one is complete (it is kept when anything fails before)."""
    from .. import __version__

    stage = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    old = out.parent / f".tmp-{out.name}-old"
    try:
        shutil.copy2(model, stage / f"model{model.suffix}")
        shutil.copy2(RUNNER, stage / RUNNER.name)
        np.save(stage / "inputs.npy", feeds)
        np.save(stage / "reference_outputs.npy", raw)
        ref_labels = [int(np.argmax(r.reshape(-1))) for r in raw]
        expected = {"tolerance": _tolerance(out_quant, prec), "reference_labels": ref_labels,
                    "true_labels": None if labels is None else [int(v) for v in labels[:len(x)]],
                    "precision": prec, "output_quantization": None if out_quant is None else list(out_quant)[-2:]}
        (stage / "expected.json").write_text(json.dumps(expected, indent=2))
        (stage / "README.txt").write_text(_readme(out.name, target, model, runtime, prec))
        contract = _stage_images(stage, images, model, runtime, x.shape[1:]) if images is not None else {}
        files = {p.name: sha256_file(p) for p in sorted(stage.iterdir())}
        manifest = {"format": 1, "model": f"model{model.suffix}", "runtime": runtime, "precision": prec,
                    "target": getattr(target, "name", None), "threads": getattr(target, "threads", 1),
                    "budget_p90_ms": getattr(getattr(target, "budget", None), "p90_latency_ms", None),
                    "files": files, "source_model": str(model), "source_sha256": sha256_file(model),
                    "made_by": {"edgekd": __version__, "python": sys.version.split()[0], **_versions()},
                    **contract}
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2))
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        try:
            stage.rename(out)
        except BaseException:
            if old.exists() and not out.exists():
                old.rename(out)  # put the earlier bundle back
            raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def is_run_output(rel: Path) -> bool:
    """Whether ``rel`` (a path inside a build's run directory) is what running one of its smoke bundles writes:
    not an artifact of the build (the manifest leaves it out; ``edgekd verify`` only notes it)."""
    parts = rel.parts
    return len(parts) == 3 and parts[0] == "smoke" and parts[2] == RESULT


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _tolerance(out_quant: Any, precision: str) -> dict[str, Any]:
    from ..export.parity import PARITY_DEFAULTS

    if out_quant is not None and out_quant[0] == "dequantized":  # ORT QDQ: float output, one step allowed
        return {"kind": "abs", "atol": float(out_quant[1]) * 1.0001, "rtol": 0.0}
    if out_quant is not None:  # integer output tensor (full-int8 TFLite): one quantization step
        return {"kind": "steps", "max_steps": 1}
    lim = PARITY_DEFAULTS.get(precision, {})
    atol, rtol = lim.get("atol"), lim.get("rtol")
    if atol is None and rtol is None:  # dynamic-range: activations quantized at run time, per CPU
        return {"kind": "abs", "atol": 0.0, "rtol": 0.05}
    return {"kind": "abs", "atol": float(atol or 0.0), "rtol": float(rtol or 0.0)}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("numpy", "onnxruntime", "ai-edge-litert"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def _readme(name: str, target: "TargetProfile", model: Path, runtime: str, precision: str) -> str:
    lines = [f"edgekd smoke test for {model.name} ({runtime}, {precision}) on "
             f"{getattr(target, 'description', 'the target')}.", "", "On the board:", ""]
    lines += ["    " + ln.format(name=name) for ln in PI_LINES]
    lines += ["", "It prints PASS or FAIL with the reasons and writes result.json. Add --strict to make a p90 over "
              "the target's budget a FAIL.", ""]
    return "\n".join(lines)


def run_bundle(bundle: str | Path, *, emulate_target: "TargetProfile" = None, strict: bool = False,
               runs: int = 50, timeout_s: float = 1800) -> dict[str, Any]:
    """Run ``bundle`` (a folder or a .tar.gz) with this host's Python, or under emulated ARM for
    ``emulate_target``; returns result.json plus the runner's printed line under ``line``."""
    path = Path(bundle)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        path = safe_extract(path, Path(tempfile.mkdtemp(prefix="edgekd-smoke-")))
    if not (path / "manifest.json").is_file() or not (path / RUNNER.name).is_file():
        raise ConfigError(f"{bundle} is not a smoke bundle (no manifest.json / {RUNNER.name})",
                          "pass a folder written by `edgekd smoke` or its .tar.gz")
    args = [str(path / RUNNER.name), str(path), "--runs", str(runs)] + (["--strict"] if strict else [])
    if emulate_target is None:
        cmd, env = [sys.executable, *args], None
    else:
        from ..emu.cores import get_core
        from ..emu.env import find_env

        arm = find_env()
        view = arm.view(emulate_target.core, emulate_target.cores)
        cpu = get_core(emulate_target.core).emulated_as
        cmd = [arm.qemu, "-L", str(view), "-cpu", cpu, str(view) + arm.python, "-I", *args, "--emulated", "--threads", str(emulate_target.threads)]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(path), "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1"}
    (path / "result.json").unlink(missing_ok=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    result_file = path / "result.json"
    if not result_file.is_file():
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise OutputError(f"the smoke runner wrote no result ({lines[-1][:200] if lines else 'no output'})",
                          "run it by hand: python3 run_smoke.py in the bundle")
    result = json.loads(result_file.read_text())
    result["line"] = next((ln for ln in proc.stdout.splitlines() if ln.startswith(("PASS", "FAIL"))), "")
    result["exit_code"], result["bundle"] = proc.returncode, str(path)
    result["where"] = "host" if emulate_target is None else f"emulated {emulate_target.core}"
    return result


def safe_extract(archive: str | Path, dest: str | Path) -> Path:
    """Unpack a bundle archive into ``dest``; refuse links, devices and any member that would land outside it."""
    dest = Path(dest).resolve()
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for m in members:
            target = (dest / m.name).resolve()
            if not (m.isfile() or m.isdir()) or (target != dest and dest not in target.parents):
                raise ConfigError(f"unsafe archive {Path(archive).name}: member {m.name!r} "
                                  f"({'link or device' if not (m.isfile() or m.isdir()) else 'outside the folder'})",
                                  "use a bundle written by edgekd; do not unpack this file")
        tar.extractall(dest, members=members, filter="data")
    tops = {Path(m.name).parts[0] for m in members if Path(m.name).parts}
    return dest / tops.pop() if len(tops) == 1 else dest
